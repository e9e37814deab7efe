// vogtorch implements vogtorch.h over libtorch.
#include "vogtorch.h"

#include <malloc.h>
#include <torch/script.h>
#include <torch/torch.h>

#include <atomic>
#include <cstring>
#include <sstream>
#include <string>

namespace {

struct Model {
  torch::jit::script::Module module;
  torch::Device device;
  torch::ScalarType dtype;
};

void set_err(char *err, int errlen, const std::string &msg) {
  if (err == nullptr || errlen <= 0) return;
  std::strncpy(err, msg.c_str(), errlen - 1);
  err[errlen - 1] = '\0';
}

// Raising glibc's mmap and trim thresholds keeps the large per-batch
// activation buffers in the heap instead of mapping and unmapping them on
// every call; measured 1.3x on CPU (DESIGN section 7).
struct MallocTuning {
  MallocTuning() {
    mallopt(M_MMAP_THRESHOLD, 256 << 20);
    mallopt(M_TRIM_THRESHOLD, 1 << 30);
  }
} malloc_tuning;

torch::Tensor input(const Model *m, const float *x, int64_t n, int64_t c, int64_t h, int64_t w) {
  auto t = torch::from_blob(const_cast<float *>(x), {n, c, h, w}, torch::kFloat32);
  if (!m->device.is_cpu()) t = t.to(m->device, /*non_blocking=*/false);
  return m->dtype == torch::kFloat32 ? t : t.to(m->dtype);
}

// copy_logits checks the model's output and copies it out.
void copy_logits(const torch::Tensor &out, int64_t n, float *logits, int64_t cap, int64_t *classes) {
  if (out.dim() != 2 || out.size(0) != n) {
    std::ostringstream msg;
    msg << "model output has shape " << out.sizes() << ", want [" << n << ", classes]";
    throw std::runtime_error(msg.str());
  }
  *classes = out.size(1);
  if (n * *classes > cap) throw std::runtime_error("logits buffer too small");
  auto cpu = out.detach().to(torch::kCPU, torch::kFloat32).contiguous();
  std::memcpy(logits, cpu.data_ptr<float>(), sizeof(float) * n * *classes);
}

// OpenMP keeps the thread count per calling thread, and Go may call from
// another thread than the one that set it: every entry point applies it.
std::atomic<int> g_threads{0};

void apply_threads() {
  int n = g_threads.load();
  if (n > 0 && torch::get_num_threads() != n) torch::set_num_threads(n);
}

}  // namespace

extern "C" {

int vog_version(void) { return 2; }

int vog_set_threads(int n, char *err, int errlen) {
  try {
    if (n <= 0) throw std::runtime_error("thread count must be positive");
    g_threads = n;
    torch::set_num_threads(n);
    return 0;
  } catch (const std::exception &e) {
    set_err(err, errlen, e.what());
    return 1;
  }
}

int vog_cuda_device_count(void) { return static_cast<int>(torch::cuda::device_count()); }

void *vog_load(const char *data, int64_t len, const char *device, int precision, char *err, int errlen) {
  try {
    torch::Device dev(device);
    std::istringstream in(std::string(data, static_cast<size_t>(len)));
    auto module = torch::jit::load(in, dev);
    module.eval();
    auto dtype = torch::kFloat32;
    switch (precision) {
      case VOG_FP32:
        break;
      case VOG_TF32:
        // A process-wide setting: a worker scores one job at a time.
        at::globalContext().setAllowTF32CuBLAS(true);
        at::globalContext().setAllowTF32CuDNN(true);
        break;
      case VOG_BF16:
        dtype = torch::kBFloat16;
        module.to(dtype);
        break;
      default:
        throw std::runtime_error("unknown precision " + std::to_string(precision));
    }
    if (precision != VOG_TF32) {
      at::globalContext().setAllowTF32CuBLAS(false);
      at::globalContext().setAllowTF32CuDNN(false);
    }
    for (auto p : module.parameters()) p.set_requires_grad(false);
    return new Model{std::move(module), dev, dtype};
  } catch (const std::exception &e) {
    set_err(err, errlen, e.what());
    return nullptr;
  }
}

void vog_free(void *model) { delete static_cast<Model *>(model); }

int vog_forward(void *model, const float *x, int64_t n, int64_t c, int64_t h, int64_t w,
                float *logits, int64_t cap, int64_t *classes, char *err, int errlen) {
  try {
    auto *m = static_cast<Model *>(model);
    apply_threads();
    torch::NoGradGuard no_grad;
    auto out = m->module.forward({input(m, x, n, c, h, w)}).toTensor();
    copy_logits(out, n, logits, cap, classes);
    return 0;
  } catch (const std::exception &e) {
    set_err(err, errlen, e.what());
    return 1;
  }
}

int vog_grad(void *model, const float *x, int64_t n, int64_t c, int64_t h, int64_t w,
             const int64_t *targets, float *logits, int64_t cap, int64_t *classes,
             float *grads, char *err, int errlen) {
  try {
    auto *m = static_cast<Model *>(model);
    apply_threads();
    auto in = input(m, x, n, c, h, w).clone().requires_grad_(true);
    auto out = m->module.forward({in}).toTensor();
    copy_logits(out, n, logits, cap, classes);
    auto tgt = torch::from_blob(const_cast<int64_t *>(targets), {n, 1}, torch::kInt64).to(m->device);
    if (tgt.min().item<int64_t>() < 0 || tgt.max().item<int64_t>() >= *classes) {
      throw std::runtime_error("target class outside the model's " + std::to_string(*classes) + " outputs");
    }
    // Examples are independent in eval mode, so the gradient of the sum of
    // the selected logits holds each example's own input gradient.
    auto selected = out.gather(1, tgt).sum();
    auto g = torch::autograd::grad({selected}, {in})[0];
    auto avg = g.mean(1).to(torch::kCPU, torch::kFloat32).contiguous();
    std::memcpy(grads, avg.data_ptr<float>(), sizeof(float) * n * h * w);
    return 0;
  } catch (const std::exception &e) {
    set_err(err, errlen, e.what());
    return 1;
  }
}

}  // extern "C"
