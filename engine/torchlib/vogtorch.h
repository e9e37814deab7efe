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

/* vog_torch_version returns the version of the libtorch this library was
 * built against, as "2.5.1". */
const char *vog_torch_version(void);

/* vog_set_threads sets libtorch's intra-op thread count (n > 0). */
int vog_set_threads(int n, char *err, int errlen);

/* vog_cuda_device_count reports the number of visible CUDA devices. */
int vog_cuda_device_count(void);

/* Precisions for vog_load. */
#define VOG_FP32 0 /* float32 throughout */
#define VOG_TF32 1 /* float32 weights; CUDA matmuls and convolutions in TF32 */
#define VOG_BF16 2 /* bfloat16 weights and inputs; gradients returned as float32 */

/* vog_load loads a TorchScript module from memory onto device
 * ("cpu", "cuda", "cuda:N") in the given precision, puts it in eval mode and
 * freezes its parameters. With channels_last nonzero its 4-d weights and its
 * inputs are stored channels-last (NHWC), which tensor-core convolutions
 * prefer. It returns NULL on failure. */
void *vog_load(const char *data, int64_t len, const char *device, int precision, int channels_last,
               char *err, int errlen);

/* Element types of the tensors vog_load_weights takes. */
#define VOG_DT_F32 0
#define VOG_DT_F16 1
#define VOG_DT_BF16 2
#define VOG_DT_F64 3
#define VOG_DT_I64 4
#define VOG_DT_I32 5
#define VOG_DT_I16 6
#define VOG_DT_I8 7
#define VOG_DT_U8 8
#define VOG_DT_BOOL 9

/* vog_load_weights is vog_load of a TorchScript module (the architecture)
 * whose parameters and buffers are first replaced by n named tensors, as
 * load_state_dict(strict=True) does: names holds n NUL-terminated names one
 * after another; tensor i has type dtypes[i] (VOG_DT_*), ndims[i]
 * dimensions (its sizes next in shapes), and its little-endian, row-major
 * values at data + offsets[i]. Missing or unexpected keys, and shapes that
 * differ from the module's, are errors naming them. */
void *vog_load_weights(const char *module, int64_t module_len, int n, const char *names, const int *dtypes,
                       const int64_t *ndims, const int64_t *shapes, const int64_t *offsets, const char *data,
                       const char *device, int precision, int channels_last, char *err, int errlen);

/* vog_free releases a model returned by vog_load. */
void vog_free(void *model);

/* vog_forward computes the logits of a batch x of shape [n, c, h, w]
 * into logits, which holds cap floats. *classes receives the number of
 * outputs per example; it is an error for n * *classes to exceed cap. */
int vog_forward(void *model, const float *x, int64_t n, int64_t c, int64_t h, int64_t w,
                float *logits, int64_t cap, int64_t *classes, char *err, int errlen);

/* What vog_grad differentiates for class p = targets[i] of example i. */
#define VOG_LOGIT 0 /* the pre-softmax logit of p */
#define VOG_PROB 1  /* the softmax probability of p */
#define VOG_LOSS 2  /* the cross-entropy loss of p, -log softmax(p) */

/* vog_grad computes, for each example i of x, the logits and the gradient
 * with respect to the input of the scalar target_kind (VOG_LOGIT, VOG_PROB,
 * VOG_LOSS) of class targets[i], averaged over the c channels, into grads
 * ([n, h, w]). Only the input requires a gradient. */
int vog_grad(void *model, const float *x, int64_t n, int64_t c, int64_t h, int64_t w, int target_kind,
             const int64_t *targets, float *logits, int64_t cap, int64_t *classes,
             float *grads, char *err, int errlen);

/* vog_stage copies a batch x of shape [n, c, h, w] to the model's device,
 * in its precision and memory format, and returns a handle that the _staged
 * calls of any model loaded with the same device, precision and format
 * accept, so that K checkpoints read one copy. On CUDA the copy goes through
 * pinned host memory on a side stream: it overlaps the computation already
 * queued on the device, and the calls that use the batch wait for it on the
 * device, not on the host. x may be reused when vog_stage returns. It
 * returns NULL on failure. */
void *vog_stage(void *model, const float *x, int64_t n, int64_t c, int64_t h, int64_t w, char *err, int errlen);

/* vog_unstage releases a batch returned by vog_stage. */
void vog_unstage(void *batch);

/* vog_forward_staged and vog_grad_staged are vog_forward and vog_grad on a
 * staged batch. */
int vog_forward_staged(void *model, void *batch, float *logits, int64_t cap, int64_t *classes, char *err,
                       int errlen);
int vog_grad_staged(void *model, void *batch, int target_kind, const int64_t *targets, float *logits, int64_t cap,
                    int64_t *classes, float *grads, char *err, int errlen);

#ifdef __cplusplus
}
#endif
#endif
