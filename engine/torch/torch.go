// Package torch is vog's libtorch engine driver. It loads libvogtorch.so
// (built from engine/torchlib by build.sh against the machine's libtorch) at
// run time with purego, so vog itself builds without cgo or libtorch, and one
// vog binary runs on CPU and CUDA machines alike.
package torch

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/ebitengine/purego"

	"github.com/vogscore/vog/checkpoint"
	"github.com/vogscore/vog/engine"
)

// LibraryEnv names the environment variable that points at libvogtorch.so.
const LibraryEnv = "VOG_ENGINE_LIB"

const errLen = 4096

// Library is the loaded engine library.
type Library struct {
	path string

	version      func() int32
	torchVersion func() string
	setThreads   func(n int32, err *byte, errlen int32) int32
	cudaCount    func() int32
	load         func(data *byte, n int64, device string, precision, channelsLast int32, err *byte, errlen int32) uintptr
	loadWeights  func(module *byte, moduleLen int64, n int32, names *byte, dtypes *int32, ndims, shapes, offsets *int64, data *byte, device string, precision, channelsLast int32, err *byte, errlen int32) uintptr
	free         func(model uintptr)
	forward      func(model uintptr, x *float32, n, c, h, w int64, logits *float32, cap int64, classes *int64, err *byte, errlen int32) int32
	grad         func(model uintptr, x *float32, n, c, h, w int64, kind int32, targets *int64, logits *float32, cap int64, classes *int64, grads *float32, err *byte, errlen int32) int32

	stage         func(model uintptr, x *float32, n, c, h, w int64, err *byte, errlen int32) uintptr
	unstage       func(batch uintptr)
	forwardStaged func(model, batch uintptr, logits *float32, cap int64, classes *int64, err *byte, errlen int32) int32
	gradStaged    func(model, batch uintptr, kind int32, targets *int64, logits *float32, cap int64, classes *int64, grads *float32, err *byte, errlen int32) int32
}

// interfaceVersion is the vogtorch.h version this driver speaks.
const interfaceVersion = 6

// ErrNotFound is returned by Find when no engine library can be located.
var ErrNotFound = errors.New("torch: libvogtorch.so not found: build it with engine/torchlib/build.sh, or set " + LibraryEnv)

// Find returns the path of libvogtorch.so: $VOG_ENGINE_LIB, else beside the
// running executable, else build/ under the current directory or one of its
// parents (so tests in package directories find the repository's build).
func Find() (string, error) {
	if p := os.Getenv(LibraryEnv); p != "" {
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("torch: %s=%s: %w", LibraryEnv, p, err)
		}
		return p, nil
	}
	var dirs []string
	if exe, err := os.Executable(); err == nil {
		dirs = append(dirs, filepath.Dir(exe))
	}
	if wd, err := os.Getwd(); err == nil {
		for d := wd; ; d = filepath.Dir(d) {
			dirs = append(dirs, filepath.Join(d, "build"))
			if filepath.Dir(d) == d {
				break
			}
		}
	}
	for _, d := range dirs {
		p := filepath.Join(d, "libvogtorch.so")
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	return "", ErrNotFound
}

var (
	openMu sync.Mutex
	opened = map[string]*Library{}
)

// Open loads the engine library at path (once per process) and sets
// libtorch's thread count when threads > 0.
func Open(path string, threads int) (*Library, error) {
	openMu.Lock()
	defer openMu.Unlock()
	lib, ok := opened[path]
	if !ok {
		h, err := purego.Dlopen(path, purego.RTLD_NOW|purego.RTLD_GLOBAL)
		if err != nil {
			return nil, fmt.Errorf("torch: open %s: %w", path, err)
		}
		lib = &Library{path: path}
		purego.RegisterLibFunc(&lib.version, h, "vog_version")
		purego.RegisterLibFunc(&lib.setThreads, h, "vog_set_threads")
		purego.RegisterLibFunc(&lib.cudaCount, h, "vog_cuda_device_count")
		purego.RegisterLibFunc(&lib.load, h, "vog_load")
		purego.RegisterLibFunc(&lib.free, h, "vog_free")
		purego.RegisterLibFunc(&lib.forward, h, "vog_forward")
		purego.RegisterLibFunc(&lib.grad, h, "vog_grad")
		// An old library lacks the newer symbols: check the version first.
		if v := lib.version(); v != interfaceVersion {
			return nil, fmt.Errorf("torch: %s has interface version %d, this vog needs %d: rebuild it with engine/torchlib/build.sh", path, v, interfaceVersion)
		}
		purego.RegisterLibFunc(&lib.torchVersion, h, "vog_torch_version")
		purego.RegisterLibFunc(&lib.loadWeights, h, "vog_load_weights")
		purego.RegisterLibFunc(&lib.stage, h, "vog_stage")
		purego.RegisterLibFunc(&lib.unstage, h, "vog_unstage")
		purego.RegisterLibFunc(&lib.forwardStaged, h, "vog_forward_staged")
		purego.RegisterLibFunc(&lib.gradStaged, h, "vog_grad_staged")
		opened[path] = lib
	}
	if threads > 0 {
		buf := make([]byte, errLen)
		if lib.setThreads(int32(threads), &buf[0], errLen) != 0 {
			return nil, fmt.Errorf("torch: set threads: %s", cString(buf))
		}
	}
	return lib, nil
}

// TorchVersion returns the version of the libtorch the library was built
// against.
func (l *Library) TorchVersion() string { return l.torchVersion() }

// CUDADevices returns the number of CUDA devices libtorch sees.
func (l *Library) CUDADevices() int { return int(l.cudaCount()) }

// Auto is the device that stands for the first CUDA device where libtorch
// sees one, else the CPU (ResolveDevice).
const Auto = "auto"

// ResolveDevice returns the device Auto stands for with this library:
// cuda:0 where libtorch sees a CUDA device (the library was built against
// a CUDA torch, and a device is visible), else cpu. Other devices are
// returned as they are.
func (l *Library) ResolveDevice(device string) string {
	return resolveDevice(device, l.CUDADevices)
}

// resolveDevice is ResolveDevice with cudaDevices counting the CUDA
// devices.
func resolveDevice(device string, cudaDevices func() int) string {
	if device != Auto {
		return device
	}
	if cudaDevices() > 0 {
		return "cuda:0"
	}
	return "cpu"
}

// CheckDevice returns an error naming --device unless device is "auto",
// "cpu", or "cuda" or "cuda:N" for a CUDA device that this library sees.
func (l *Library) CheckDevice(device string) error {
	if device == "cpu" || device == Auto {
		return nil
	}
	index := 0
	if rest, ok := strings.CutPrefix(device, "cuda:"); ok {
		n, err := strconv.Atoi(rest)
		if err != nil || n < 0 {
			return fmt.Errorf("--device %q: want auto, cpu, cuda or cuda:N", device)
		}
		index = n
	} else if device != "cuda" {
		return fmt.Errorf("--device %q: want auto, cpu, cuda or cuda:N", device)
	}
	switch count := l.CUDADevices(); {
	case count == 0:
		return fmt.Errorf("--device %s: libtorch sees no CUDA device (is %s built against a CUDA torch?)", device, l.path)
	case index >= count:
		return fmt.Errorf("--device %s: libtorch sees %d CUDA device(s), cuda:0 to cuda:%d", device, count, count-1)
	}
	return nil
}

// Options say where and how models compute.
type Options struct {
	// Device is "cpu" (default), "cuda" or "cuda:N".
	Device string
	// Precision is one of engine.Precisions; "" is the first, fp32.
	Precision string
	// ChannelsLast stores 4-d weights and inputs NHWC.
	ChannelsLast bool
}

// Loader returns an engine.Loader that loads models as o says.
func (l *Library) Loader(o Options) (engine.Loader, error) {
	if o.Device == "" {
		o.Device = "cpu"
	}
	ld := loader{lib: l, opts: o, stage: o.Device != "cpu"}
	if o.Precision == "" {
		return ld, nil
	}
	return ld.WithPrecision(o.Precision)
}

// Device returns the device the loader's models compute on.
func (ld loader) Device() string { return ld.opts.Device }

// WithPrecision returns the loader in another of engine.Precisions.
func (ld loader) WithPrecision(precision string) (engine.Loader, error) {
	p := slices.Index(engine.Precisions, precision)
	if p < 0 {
		return nil, fmt.Errorf("--precision %q: want one of %s", precision, strings.Join(engine.Precisions, ", "))
	}
	if precision == "tf32" && ld.opts.Device == "cpu" {
		// On a CPU tf32 is fp32: a job must not get both under one name.
		return nil, fmt.Errorf("--precision tf32 needs a CUDA device; this worker computes on the cpu")
	}
	ld.opts.Precision, ld.precision = precision, int32(p)
	return ld, nil
}

type loader struct {
	lib       *Library
	opts      Options
	precision int32
	// stage copies batches through vog_stage; on the CPU, computing on the
	// caller's memory directly saves a copy.
	stage bool
}

// TF32 is a process-wide switch that CUDA reads at every launch, so CUDA
// float32 models of the two kinds (two jobs on two devices of one process)
// must not be alive at once. tf32Users counts the live ones: [0] fp32,
// [1] tf32.
var (
	tf32Mu    sync.Mutex
	tf32Users [2]int
)

// tf32Mode is the TF32 kind of the loader's models, or -1 where TF32 does
// not apply (the CPU, bf16).
func (ld loader) tf32Mode() int {
	if ld.opts.Device == "cpu" || (ld.precision != 0 && ld.precision != 1) {
		return -1
	}
	return int(ld.precision)
}

func releaseTF32(mode int) {
	if mode >= 0 {
		tf32Mu.Lock()
		tf32Users[mode]--
		tf32Mu.Unlock()
	}
}

func (ld loader) Load(data []byte, name string) (engine.Driver, error) {
	if len(data) == 0 {
		return nil, errors.New("empty checkpoint")
	}
	return ld.load("as a TorchScript module", func(device string, precision, channelsLast int32, err *byte) uintptr {
		h := ld.lib.load(&data[0], int64(len(data)), device, precision, channelsLast, err, errLen)
		runtime.KeepAlive(data)
		return h
	})
}

// dtypeCodes maps checkpoint element types to vogtorch.h's VOG_DT_*.
var dtypeCodes = map[checkpoint.DType]int32{
	checkpoint.F32: 0, checkpoint.F16: 1, checkpoint.BF16: 2, checkpoint.F64: 3, checkpoint.I64: 4,
	checkpoint.I32: 5, checkpoint.I16: 6, checkpoint.I8: 7, checkpoint.U8: 8, checkpoint.Bool: 9,
}

// LoadWeights implements engine.WeightsLoader: the TorchScript module
// gives the architecture, and the weights replace its parameters and
// buffers, checked as load_state_dict(strict=True) checks them.
func (ld loader) LoadWeights(module []byte, weights []checkpoint.Tensor, name string) (engine.Driver, error) {
	if len(module) == 0 {
		return nil, errors.New("empty --model")
	}
	var names, data []byte
	dtypes := make([]int32, len(weights))
	ndims, offsets := make([]int64, len(weights)), make([]int64, len(weights))
	var shapes []int64
	for i, t := range weights {
		code, ok := dtypeCodes[t.DType]
		if !ok {
			return nil, fmt.Errorf("%s: tensors of type %v are not supported", t.Name, t.DType)
		}
		names = append(append(names, t.Name...), 0)
		dtypes[i], ndims[i], offsets[i] = code, int64(len(t.Shape)), int64(len(data))
		shapes = append(shapes, t.Shape...)
		data = append(data, t.Data...)
	}
	// Empty lists still pass a valid pointer.
	names, data, shapes = append(names, 0), append(data, 0), append(shapes, 0)
	dtypes, ndims, offsets = append(dtypes, 0), append(ndims, 0), append(offsets, 0)
	return ld.load("its weights into the --model module", func(device string, precision, channelsLast int32, err *byte) uintptr {
		h := ld.lib.loadWeights(&module[0], int64(len(module)), int32(len(weights)), &names[0], &dtypes[0], &ndims[0], &shapes[0], &offsets[0], &data[0],
			device, precision, channelsLast, err, errLen)
		runtime.KeepAlive(module)
		runtime.KeepAlive(names)
		runtime.KeepAlive(data)
		runtime.KeepAlive(shapes)
		runtime.KeepAlive(dtypes)
		runtime.KeepAlive(ndims)
		runtime.KeepAlive(offsets)
		return h
	})
}

// load loads a model through call, minding the process-wide TF32 switch;
// how says how, for errors.
func (ld loader) load(how string, call func(device string, precision, channelsLast int32, err *byte) uintptr) (engine.Driver, error) {
	mode := ld.tf32Mode()
	if mode >= 0 {
		tf32Mu.Lock()
		busy := tf32Users[1-mode] > 0
		if !busy {
			tf32Users[mode]++
		}
		tf32Mu.Unlock()
		if busy {
			return nil, fmt.Errorf("%w: this process holds CUDA models of another job in %s, and TF32 is a process-wide setting: "+
				"score fp32 and tf32 jobs at once on separate worker processes (one per GPU)", engine.ErrBusy, []string{"tf32", "fp32"}[mode])
		}
	}
	var channelsLast int32
	if ld.opts.ChannelsLast {
		channelsLast = 1
	}
	buf := make([]byte, errLen)
	h := call(ld.opts.Device, ld.precision, channelsLast, &buf[0])
	if h == 0 {
		releaseTF32(mode)
		msg := firstLine(cString(buf))
		return nil, fmt.Errorf("cannot load %s on %s: %s%s", how, ld.opts.Device, msg, tooNew(msg, ld.lib.TorchVersion()))
	}
	return &model{lib: ld.lib, h: h, stage: ld.stage, tf32Mode: mode}, nil
}

// tooNewSigns are what libtorch says of a TorchScript file that a newer
// PyTorch saved: a newer file format, or operators and types it lacks.
var tooNewSigns = []string{"maximum supported version", "Unknown builtin op", "Unknown type name", "Unknown opcode", "Unknown attribute", "too old"}

// tooNew explains a load error that a file from a newer PyTorch causes.
func tooNew(msg, version string) string {
	for _, s := range tooNewSigns {
		if strings.Contains(msg, s) {
			return fmt.Sprintf(" (this engine's libtorch is %s, and the file may come from a newer PyTorch: TorchScript loads in the version that saved it and later ones. "+
				"Save it again with PyTorch %s, e.g. Debian's python3-torch, or give --model torchvision:NAME for a torchvision architecture)", version, version)
		}
	}
	return ""
}

// model is one loaded TorchScript module. Calls may run concurrently:
// libtorch's inference and autograd are thread-safe, and each call has its
// own error buffer.
type model struct {
	lib      *Library
	h        uintptr
	stage    bool
	tf32Mode int
}

// staged is a batch on the model's device.
type staged struct {
	lib *Library
	h   uintptr
}

func (s *staged) Close() error {
	if s.h != 0 {
		s.lib.unstage(s.h)
		s.h = 0
	}
	return nil
}

// errClosed is returned by a model's calls after Close.
var errClosed = errors.New("model is closed")

func (m *model) Stage(x []float32, n int, s engine.Shape) (engine.Staged, error) {
	if !m.stage {
		return nil, nil
	}
	if m.h == 0 {
		return nil, errClosed
	}
	errBuf := make([]byte, errLen)
	h := m.lib.stage(m.h, &x[0], int64(n), int64(s.C), int64(s.H), int64(s.W), &errBuf[0], errLen)
	runtime.KeepAlive(x)
	if h == 0 {
		return nil, errors.New(firstLine(cString(errBuf)))
	}
	return &staged{lib: m.lib, h: h}, nil
}

// call runs one engine call on b: onDevice with its handle where b was
// staged by this library, else onHost, which reads b's memory. Both write the class count and
// an error message.
func (m *model) call(b *engine.Batch, onDevice func(h uintptr, classes *int64, err *byte) int32, onHost func(classes *int64, err *byte) int32) (int, error) {
	if m.h == 0 {
		return 0, errClosed
	}
	var classes int64
	errBuf := make([]byte, errLen)
	var rc int32
	if b.Staged == nil {
		rc = onHost(&classes, &errBuf[0])
	} else {
		st, ok := b.Staged.(*staged)
		if !ok || st.lib != m.lib || st.h == 0 {
			return 0, errors.New("batch was staged by another engine, or closed")
		}
		rc = onDevice(st.h, &classes, &errBuf[0])
	}
	runtime.KeepAlive(b)
	if rc != 0 {
		return 0, errors.New(firstLine(cString(errBuf)))
	}
	return int(classes), nil
}

func (m *model) Forward(b *engine.Batch, s engine.Shape, logits []float32) (int, error) {
	return m.call(b, func(h uintptr, classes *int64, err *byte) int32 {
		return m.lib.forwardStaged(m.h, h, &logits[0], int64(len(logits)), classes, err, errLen)
	}, func(classes *int64, err *byte) int32 {
		return m.lib.forward(m.h, &b.X[0], int64(b.N), int64(s.C), int64(s.H), int64(s.W), &logits[0], int64(len(logits)), classes, err, errLen)
	})
}

func (m *model) Grad(b *engine.Batch, s engine.Shape, t engine.Target, targets []int64, logits, grads []float32) (int, error) {
	return m.call(b, func(h uintptr, classes *int64, err *byte) int32 {
		return m.lib.gradStaged(m.h, h, int32(t), &targets[0], &logits[0], int64(len(logits)), classes, &grads[0], err, errLen)
	}, func(classes *int64, err *byte) int32 {
		return m.lib.grad(m.h, &b.X[0], int64(b.N), int64(s.C), int64(s.H), int64(s.W), int32(t), &targets[0], &logits[0], int64(len(logits)), classes, &grads[0], err, errLen)
	})
}

func (m *model) Close() error {
	if m.h != 0 {
		m.lib.free(m.h)
		m.h = 0
		releaseTF32(m.tf32Mode)
	}
	return nil
}

func cString(b []byte) string {
	for i, c := range b {
		if c == 0 {
			return string(b[:i])
		}
	}
	return string(b)
}

// firstLine trims libtorch's multi-line messages to the line that says what
// went wrong: the last "...Error: " line of a TorchScript traceback, else
// the first line (C++ backtraces follow it).
func firstLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		if strings.Contains(lines[i], "Error: ") {
			return strings.TrimSpace(lines[i])
		}
	}
	return lines[0]
}
