// vogtorch implements vogtorch.h over libtorch.
#include "vogtorch.h"

#include <c10/core/Event.h>
#include <c10/core/StreamGuard.h>
#include <c10/core/impl/VirtualGuardImpl.h>
#include <malloc.h>
#include <torch/script.h>
#include <torch/torch.h>
#include <torch/version.h>

#include <atomic>
#include <map>
#include <vector>
#include <cstring>
#include <memory>
#include <optional>
#include <sstream>
#include <string>

namespace {

struct Model {
  torch::jit::script::Module module;
  torch::Device device;
  torch::ScalarType dtype;
  bool channels_last;
  // CUDA: the stream batches are copied on. One per model, not one per
  // batch: the caching allocator reuses a freed block only on its stream.
  std::optional<c10::Stream> side;
};

// Batch is an input batch on a model's device, in its dtype and format.
struct Batch {
  torch::Tensor x;
  torch::Device device;
  torch::ScalarType dtype;
  bool channels_last;
  int64_t n, h, w;
  // On CUDA: the pinned host copy the transfer reads, and an event recorded
  // on the side stream once x is ready.
  torch::Tensor pinned;
  std::unique_ptr<c10::Event> ready;
};

void set_err(char *err, int errlen, const std::string &msg) {
  if (err == nullptr || errlen <= 0) return;
  std::strncpy(err, msg.c_str(), errlen - 1);
  err[errlen - 1] = '\0';
}

// Raising glibc's mmap and trim thresholds keeps the large per-batch
// activation buffers in the heap instead of mapping and unmapping them on
// every call; measured 1.3x on CPU (docs/design.md, "Measured facts").
struct MallocTuning {
  MallocTuning() {
    mallopt(M_MMAP_THRESHOLD, 256 << 20);
    mallopt(M_TRIM_THRESHOLD, 1 << 30);
  }
} malloc_tuning;

// OpenMP keeps the thread count per calling thread, and Go may call from
// another thread than the one that set it: every entry point applies it.
std::atomic<int> g_threads{0};

void apply_threads() {
  int n = g_threads.load();
  if (n > 0 && torch::get_num_threads() != n) torch::set_num_threads(n);
}

at::MemoryFormat format(bool channels_last) {
  return channels_last ? at::MemoryFormat::ChannelsLast : at::MemoryFormat::Contiguous;
}

// stage puts x on m's device. On the CPU, unless own is set, the result may
// alias x and is valid only while x is.
std::unique_ptr<Batch> stage(const Model *m, const float *x, int64_t n, int64_t c, int64_t h, int64_t w, bool own) {
  apply_threads();
  auto host = torch::from_blob(const_cast<float *>(x), {n, c, h, w}, torch::kFloat32);
  auto b = std::make_unique<Batch>(Batch{{}, m->device, m->dtype, m->channels_last, n, h, w, {}, nullptr});
  auto fmt = format(m->channels_last);
  if (m->device.is_cpu()) {
    b->x = host.to(m->dtype).contiguous(fmt);
    if (own && b->x.data_ptr() == host.data_ptr()) b->x = b->x.clone();
    return b;
  }
  // A pageable copy would make the host wait for the device; a pinned one
  // is queued on a side stream and overlaps the computation in flight.
  b->pinned = torch::empty({n, c, h, w}, torch::TensorOptions().dtype(torch::kFloat32).pinned_memory(true));
  b->pinned.copy_(host);
  c10::StreamGuard guard(*m->side);
  b->x = b->pinned.to(m->device, /*non_blocking=*/true).to(m->dtype).contiguous(fmt);
  b->ready = std::make_unique<c10::Event>(m->device.type());
  b->ready->record(*m->side);
  return b;
}

// use returns b's tensor for a computation on m's current stream.
torch::Tensor use(const Model *m, Batch *b) {
  if (b->device != m->device || b->dtype != m->dtype || b->channels_last != m->channels_last) {
    throw std::runtime_error("batch was staged for another device, precision or memory format");
  }
  if (b->ready) {
    c10::impl::VirtualGuardImpl impl(m->device.type());
    auto current = impl.getStream(m->device);
    b->ready->block(current);
    // The caching allocator must not hand x's memory to the side stream
    // again before this stream is done reading it.
    b->x.record_stream(current);
  }
  return b->x;
}

// logits_of returns a module's output as the logits tensor: the tensor
// itself, or the first element of a tuple or list (as Hugging Face models
// traced with torchscript=True return).
torch::Tensor logits_of(const c10::IValue &out) {
  if (out.isTensor()) return out.toTensor();
  if (out.isTuple() && !out.toTupleRef().elements().empty()) return logits_of(out.toTupleRef().elements()[0]);
  if (out.isList() && out.toListRef().size() > 0) return logits_of(out.toListRef()[0]);
  throw std::runtime_error("the model returns " + out.tagKind() + ", not a tensor of logits");
}

// check_output checks the model's output shape and returns its class count.
int64_t check_output(const torch::Tensor &out, int64_t n, int64_t cap) {
  if (out.dim() != 2 || out.size(0) != n) {
    std::ostringstream msg;
    msg << "model output has shape " << out.sizes() << ", want [" << n << ", classes]";
    throw std::runtime_error(msg.str());
  }
  if (n * out.size(1) > cap) throw std::runtime_error("logits buffer too small");
  return out.size(1);
}

void copy_out(const torch::Tensor &t, float *dst) {
  auto cpu = t.detach().to(torch::kCPU, torch::kFloat32).contiguous();
  std::memcpy(dst, cpu.data_ptr<float>(), sizeof(float) * cpu.numel());
}

void forward(Model *m, Batch *b, float *logits, int64_t cap, int64_t *classes) {
  apply_threads();
  torch::NoGradGuard no_grad;
  auto out = logits_of(m->module.forward({use(m, b)}));
  *classes = check_output(out, b->n, cap);
  copy_out(out, logits);
}

// selected returns the sum over the batch of each example's target scalar:
// its class's logit, softmax probability or cross-entropy loss, computed in
// float32 whatever the model's precision.
torch::Tensor selected(const torch::Tensor &out, const torch::Tensor &tgt, int kind) {
  switch (kind) {
    case VOG_LOGIT:
      return out.gather(1, tgt).sum();
    case VOG_PROB:
      return torch::softmax(out.to(torch::kFloat32), 1).gather(1, tgt).sum();
    case VOG_LOSS:
      return -torch::log_softmax(out.to(torch::kFloat32), 1).gather(1, tgt).sum();
  }
  throw std::runtime_error("unknown target kind " + std::to_string(kind));
}

void grad(Model *m, Batch *b, int kind, const int64_t *targets, float *logits, int64_t cap, int64_t *classes,
          float *grads) {
  apply_threads();
  const int64_t n = b->n;
  // Copied before the forward pass: a pageable copy waits for the stream.
  auto tgt = torch::from_blob(const_cast<int64_t *>(targets), {n, 1}, torch::kInt64).to(m->device);
  auto in = use(m, b).detach().requires_grad_(true);
  auto out = logits_of(m->module.forward({in}));
  *classes = check_output(out, n, cap);
  for (int64_t i = 0; i < n; i++) {
    if (targets[i] < 0 || targets[i] >= *classes) {
      throw std::runtime_error("target class outside the model's " + std::to_string(*classes) + " outputs");
    }
  }
  // Examples are independent in eval mode, so the gradient of the sum of
  // the selected scalars holds each example's own input gradient. Nothing
  // is read back until the backward pass is queued, so the device never
  // waits for the host in between.
  auto g = torch::autograd::grad({selected(out, tgt, kind)}, {in})[0];
  auto avg = g.mean({1}, /*keepdim=*/false, torch::kFloat32);
  copy_out(out, logits);
  copy_out(avg, grads);
}

// scalar_type maps the VOG_DT_* codes of vogtorch.h to libtorch's.
torch::ScalarType scalar_type(int code) {
  switch (code) {
    case VOG_DT_F32: return torch::kFloat32;
    case VOG_DT_F16: return torch::kFloat16;
    case VOG_DT_BF16: return torch::kBFloat16;
    case VOG_DT_F64: return torch::kFloat64;
    case VOG_DT_I64: return torch::kInt64;
    case VOG_DT_I32: return torch::kInt32;
    case VOG_DT_I16: return torch::kInt16;
    case VOG_DT_I8: return torch::kInt8;
    case VOG_DT_U8: return torch::kUInt8;
    case VOG_DT_BOOL: return torch::kBool;
  }
  throw std::runtime_error("unknown tensor type " + std::to_string(code));
}

// list names the first few of keys, and how many more there are.
std::string list(const std::vector<std::string> &keys) {
  std::ostringstream out;
  for (size_t i = 0; i < keys.size() && i < 5; i++) out << (i ? ", " : "") << keys[i];
  if (keys.size() > 5) out << " and " << keys.size() - 5 << " more";
  return out.str();
}

// load_state copies n named tensors into the module's parameters and
// buffers, as load_state_dict(strict=True) does: every key of the module
// must be given and no other, each of the module's shape; values are
// converted to the module's dtype.
void load_state(torch::jit::Module &module, int n, const char *names, const int *dtypes, const int64_t *ndims,
                const int64_t *shapes, const int64_t *offsets, const char *data) {
  std::map<std::string, torch::Tensor> want;
  for (const auto &p : module.named_parameters(/*recurse=*/true)) want[p.name] = p.value;
  for (const auto &b : module.named_buffers(/*recurse=*/true)) want[b.name] = b.value;
  std::map<std::string, torch::Tensor> given;
  const char *name = names;
  const int64_t *shape = shapes;
  for (int i = 0; i < n; i++) {
    std::vector<int64_t> sizes(shape, shape + ndims[i]);
    shape += ndims[i];
    given[name] = torch::from_blob(const_cast<char *>(data) + offsets[i], sizes,
                                   torch::TensorOptions().dtype(scalar_type(dtypes[i])));
    name += std::strlen(name) + 1;
  }
  std::vector<std::string> missing, unexpected;
  for (const auto &w : want)
    if (!given.count(w.first)) missing.push_back(w.first);
  for (const auto &g : given)
    if (!want.count(g.first)) unexpected.push_back(g.first);
  if (!missing.empty() || !unexpected.empty()) {
    std::string msg = "the checkpoint's keys do not match the model's:";
    if (!missing.empty()) msg += " missing " + list(missing) + ";";
    if (!unexpected.empty()) msg += " unexpected " + list(unexpected) + ";";
    throw std::runtime_error(msg + " (--state-dict-prefix strips a prefix such as model.)");
  }
  torch::NoGradGuard no_grad;
  for (auto &w : want) {
    auto &g = given[w.first];
    if (!g.sizes().equals(w.second.sizes())) {
      std::ostringstream msg;
      msg << "size mismatch for " << w.first << ": the checkpoint has " << g.sizes() << ", the model "
          << w.second.sizes();
      throw std::runtime_error(msg.str());
    }
    w.second.copy_(g);
  }
}

template <typename F>
int guarded(char *err, int errlen, F f) {
  try {
    f();
    return 0;
  } catch (const std::exception &e) {
    set_err(err, errlen, e.what());
    return 1;
  }
}

}  // namespace

extern "C" {

int vog_version(void) { return 6; }

const char *vog_torch_version(void) { return TORCH_VERSION; }

int vog_set_threads(int n, char *err, int errlen) {
  return guarded(err, errlen, [&] {
    if (n <= 0) throw std::runtime_error("thread count must be positive");
    g_threads = n;
    torch::set_num_threads(n);
  });
}

int vog_cuda_device_count(void) { return static_cast<int>(torch::cuda::device_count()); }

void *vog_load(const char *data, int64_t len, const char *device, int precision, int channels_last,
               char *err, int errlen) {
  return vog_load_weights(data, len, -1, nullptr, nullptr, nullptr, nullptr, nullptr, nullptr, device, precision,
                          channels_last, err, errlen);
}

void *vog_load_weights(const char *module_data, int64_t module_len, int n, const char *names, const int *dtypes,
                       const int64_t *ndims, const int64_t *shapes, const int64_t *offsets, const char *data,
                       const char *device, int precision, int channels_last, char *err, int errlen) {
  Model *model = nullptr;
  guarded(err, errlen, [&] {
    torch::Device dev(device);
    // Streams and events need a device index.
    if (dev.is_cuda() && !dev.has_index()) dev = torch::Device(torch::kCUDA, 0);
    std::istringstream in(std::string(module_data, static_cast<size_t>(module_len)));
    auto module = torch::jit::load(in, n >= 0 ? torch::Device(torch::kCPU) : dev);
    if (n >= 0) {
      load_state(module, n, names, dtypes, ndims, shapes, offsets, data);
      module.to(dev);
    }
    module.eval();
    auto dtype = torch::kFloat32;
    switch (precision) {
      case VOG_FP32:
      case VOG_TF32:
        break;
      case VOG_BF16:
        dtype = torch::kBFloat16;
        module.to(dtype);
        break;
      default:
        throw std::runtime_error("unknown precision " + std::to_string(precision));
    }
    for (auto p : module.parameters()) {
      p.set_requires_grad(false);
      if (channels_last && p.dim() == 4) p.set_data(p.contiguous(at::MemoryFormat::ChannelsLast));
    }
    std::unique_ptr<Model> m(new Model{std::move(module), dev, dtype, channels_last != 0, std::nullopt});
    if (dev.is_cuda()) {
      c10::impl::VirtualGuardImpl impl(dev.type());
      m->side = impl.getStreamFromGlobalPool(dev);
      if (dtype == torch::kFloat32) {
        // A process-wide switch, read at every launch: the driver keeps
        // CUDA fp32 and tf32 models from being alive at once.
        at::globalContext().setAllowTF32CuBLAS(precision == VOG_TF32);
        at::globalContext().setAllowTF32CuDNN(precision == VOG_TF32);
      }
    }
    model = m.release();
  });
  return model;
}

void vog_free(void *model) { delete static_cast<Model *>(model); }

void *vog_stage(void *model, const float *x, int64_t n, int64_t c, int64_t h, int64_t w, char *err, int errlen) {
  Batch *batch = nullptr;
  guarded(err, errlen, [&] { batch = stage(static_cast<Model *>(model), x, n, c, h, w, /*own=*/true).release(); });
  return batch;
}

void vog_unstage(void *batch) { delete static_cast<Batch *>(batch); }

int vog_forward(void *model, const float *x, int64_t n, int64_t c, int64_t h, int64_t w,
                float *logits, int64_t cap, int64_t *classes, char *err, int errlen) {
  return guarded(err, errlen, [&] {
    auto *m = static_cast<Model *>(model);
    forward(m, stage(m, x, n, c, h, w, /*own=*/false).get(), logits, cap, classes);
  });
}

int vog_grad(void *model, const float *x, int64_t n, int64_t c, int64_t h, int64_t w, int target_kind,
             const int64_t *targets, float *logits, int64_t cap, int64_t *classes,
             float *grads, char *err, int errlen) {
  return guarded(err, errlen, [&] {
    auto *m = static_cast<Model *>(model);
    grad(m, stage(m, x, n, c, h, w, /*own=*/false).get(), target_kind, targets, logits, cap, classes, grads);
  });
}

int vog_forward_staged(void *model, void *batch, float *logits, int64_t cap, int64_t *classes, char *err,
                       int errlen) {
  return guarded(err, errlen,
                 [&] { forward(static_cast<Model *>(model), static_cast<Batch *>(batch), logits, cap, classes); });
}

int vog_grad_staged(void *model, void *batch, int target_kind, const int64_t *targets, float *logits, int64_t cap,
                    int64_t *classes, float *grads, char *err, int errlen) {
  return guarded(err, errlen, [&] {
    grad(static_cast<Model *>(model), static_cast<Batch *>(batch), target_kind, targets, logits, cap, classes,
         grads);
  });
}

}  // extern "C"
