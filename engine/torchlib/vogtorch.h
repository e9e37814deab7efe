/* vogtorch: the C interface of vog's libtorch gradient engine.
 *
 * Every function that can fail returns 0 on success and nonzero on failure,
 * writing a NUL-terminated message into err (at most errlen bytes).
 * Tensors cross the interface as float32 row-major buffers owned by the caller.
 */
#ifndef VOGTORCH_H
#define VOGTORCH_H
#include <stdint.h>
#ifdef __cplusplus
extern "C" {
#endif

/* vog_version returns the version of this C interface (bumped on change). */
int vog_version(void);

/* vog_set_threads sets libtorch's intra-op thread count (n > 0). */
int vog_set_threads(int n, char *err, int errlen);

/* vog_cuda_available reports the number of visible CUDA devices. */
int vog_cuda_device_count(void);

/* Precisions for vog_load. */
#define VOG_FP32 0 /* float32 throughout */
#define VOG_TF32 1 /* float32 weights; CUDA matmuls and convolutions in TF32 */
#define VOG_BF16 2 /* bfloat16 weights and inputs; gradients returned as float32 */

/* vog_load loads a TorchScript module from memory onto device
 * ("cpu", "cuda", "cuda:N") in the given precision, puts it in eval mode and
 * freezes its parameters. It returns NULL on failure. */
void *vog_load(const char *data, int64_t len, const char *device, int precision, char *err, int errlen);

/* vog_free releases a model returned by vog_load. */
void vog_free(void *model);

/* vog_forward computes the logits of a batch x of shape [n, c, h, w]
 * into logits, which holds cap floats. *classes receives the number of
 * outputs per example; it is an error for n * *classes to exceed cap. */
int vog_forward(void *model, const float *x, int64_t n, int64_t c, int64_t h, int64_t w,
                float *logits, int64_t cap, int64_t *classes, char *err, int errlen);

/* vog_grad computes, for each example i of x, the logits and the gradient of
 * logit targets[i] with respect to the input, averaged over the c channels,
 * into grads ([n, h, w]). Only the input requires a gradient. */
int vog_grad(void *model, const float *x, int64_t n, int64_t c, int64_t h, int64_t w,
             const int64_t *targets, float *logits, int64_t cap, int64_t *classes,
             float *grads, char *err, int errlen);

#ifdef __cplusplus
}
#endif
#endif
