package torch_test

import (
	"archive/zip"
	"bytes"
	"errors"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	_ "gocloud.dev/blob/fileblob"

	"github.com/vogscore/vog/dataset"
	"github.com/vogscore/vog/engine"
	"github.com/vogscore/vog/engine/enginetest"
	"github.com/vogscore/vog/engine/torch"
	"github.com/vogscore/vog/internal/short"
	"github.com/vogscore/vog/internal/testref"
	"github.com/vogscore/vog/job"
)

const fixtures = "../../testdata/fmnist"

// openLibrary opens libvogtorch.so, skipping the test where it has not been
// built unless VOG_REQUIRE_TORCH is set (as CI does).
func openLibrary(t testing.TB) *torch.Library {
	t.Helper()
	short.Skip(t, "libtorch")
	path, err := torch.Find()
	if errors.Is(err, torch.ErrNotFound) && os.Getenv("VOG_REQUIRE_TORCH") == "" {
		t.Skip(err)
	}
	if err != nil {
		t.Fatal(err)
	}
	lib, err := torch.Open(path, 2)
	if err != nil {
		t.Fatal(err)
	}
	return lib
}

func loadCheckpoint(t testing.TB, l engine.Loader, k int) *engine.Model {
	t.Helper()
	name := filepath.Join(fixtures, "ckpt", "ckpt_"+strconv.Itoa(k)+".pt")
	data, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	m, err := engine.Load(l, data, name, engine.Shape{C: 1, H: 28, W: 28})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

// TestGradientsMatchPyTorch compares the engine with input gradients and
// logits that PyTorch autograd computed for the same checkpoints and images
// (testdata/fmnist/make_fixtures.py): on the caller's memory, on one batch
// staged for all checkpoints as on a GPU, and channels-last.
func TestGradientsMatchPyTorch(t *testing.T) {
	lib := openLibrary(t)
	const n, k, hw, classes = 8, 12, 28 * 28, 10
	x, targets := fixtureBatch(t, n)
	// PyTorch's gradients of each --target, and its logits.
	wantGrads := map[engine.Target][]float32{
		engine.TargetLogit: testref.F32(t, "grads.f32"),
		engine.TargetProb:  testref.F32(t, "grads_prob.f32"),
		engine.TargetLoss:  testref.F32(t, "grads_loss.f32"),
	}
	wantLogits := testref.F32(t, "logits.f32")
	device, precision := testDevice(), os.Getenv("VOG_TEST_PRECISION")
	for _, tc := range []struct {
		name  string
		opts  torch.Options
		stage bool
	}{
		{"host", torch.Options{Device: device, Precision: precision}, false},
		{"staged", torch.Options{Device: device, Precision: precision}, true},
		{"channels-last", torch.Options{Device: device, Precision: precision, ChannelsLast: true}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := loaderFor(t, lib, tc.opts)
			if tc.stage {
				l = torch.ForceStage(l)
			}
			models := make([]*engine.Model, k)
			for c := range models {
				models[c] = loadCheckpoint(t, l, c+1)
			}
			b := &engine.Batch{X: x, N: n}
			if tc.stage {
				var err error
				if b, err = models[0].Stage(x, n); err != nil {
					t.Fatal(err)
				}
				defer b.Close()
				if b.Staged == nil {
					t.Fatal("ForceStage did not stage the batch")
				}
			}
			for c, m := range models {
				logits, grads := make([]float32, n*classes), make([]float32, n*hw)
				for kind, want := range wantGrads {
					if err := m.Gradients(b, kind, targets, logits, grads); err != nil {
						t.Fatal(err)
					}
					eg := relErr(grads, want[c*n*hw:(c+1)*n*hw])
					t.Logf("checkpoint %d on %s, --target %s: relative error of gradients %.2g", c+1, device, kind, eg)
					if eg > 1e-5 {
						t.Errorf("checkpoint %d, --target %s: gradients differ from PyTorch's: relative error %g", c+1, kind, eg)
					}
				}
				el := relErr(logits, wantLogits[c*n*classes:(c+1)*n*classes])
				t.Logf("checkpoint %d on %s: relative error of logits %.2g", c+1, device, el)
				if el > 1e-5 {
					t.Errorf("checkpoint %d: logits differ from PyTorch's: relative error %g", c+1, el)
				}
				only := make([]float32, n*classes)
				if err := m.Logits(b, only); err != nil {
					t.Fatal(err)
				}
				if e := relErr(only, logits); e > 1e-6 {
					t.Errorf("checkpoint %d: forward logits differ from the gradient pass's: relative error %g", c+1, e)
				}
			}
		})
	}
}

// fixtureBatch reads the first n fixture images and their labels.
func fixtureBatch(t *testing.T, n int) ([]float32, []int64) {
	t.Helper()
	ctx := t.Context()
	spec := job.Dataset{Format: "idx", URL: fixtures + "/small"}
	l, err := dataset.List(ctx, spec)
	if err != nil {
		t.Fatal(err)
	}
	r, err := dataset.NewReader(ctx, spec, l.Shape, "")
	if err != nil {
		t.Fatal(err)
	}
	x := make([]float32, n*l.Shape.Len())
	if err := r.Read(ctx, l.Rows[:n], x, make([]error, n)); err != nil {
		t.Fatal(err)
	}
	targets := make([]int64, n)
	for i, row := range l.Rows[:n] {
		targets[i] = int64(row.Label)
	}
	return x, targets
}

func loaderFor(t testing.TB, lib *torch.Library, o torch.Options) engine.Loader {
	t.Helper()
	l, err := lib.Loader(o)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// testDevice is where TestGradientsMatchPyTorch runs: $VOG_TEST_DEVICE (the
// GPU check sets cuda), else the CPU.
func testDevice() string {
	if d := os.Getenv("VOG_TEST_DEVICE"); d != "" {
		return d
	}
	return "cpu"
}

// relErr returns ||a-b|| / ||b||.
func relErr(a, b []float32) float64 {
	var num, den float64
	for i := range b {
		d := float64(a[i]) - float64(b[i])
		num += d * d
		den += float64(b[i]) * float64(b[i])
	}
	return math.Sqrt(num / den)
}

func TestBadInput(t *testing.T) {
	lib := openLibrary(t)
	cpu := loaderFor(t, lib, torch.Options{})
	if _, err := engine.Load(cpu, []byte("not a model"), "junk.pt", engine.Shape{C: 1, H: 28, W: 28}); !errors.Is(err, engine.ErrBadInput) {
		t.Errorf("loading junk: got %v, want ErrBadInput", err)
	}
	data, err := os.ReadFile(filepath.Join(fixtures, "ckpt", "ckpt_1.pt"))
	if err != nil {
		t.Fatal(err)
	}
	_, err = engine.Load(cpu, data, "ckpt_1.pt", engine.Shape{C: 3, H: 32, W: 32})
	if !errors.Is(err, engine.ErrBadInput) {
		t.Errorf("wrong input shape: got %v, want ErrBadInput", err)
	}
	t.Logf("wrong shape reads: %v", err)
	m := loadCheckpoint(t, cpu, 1)
	x := make([]float32, 28*28)
	err = m.Gradients(&engine.Batch{X: x, N: 1}, engine.TargetLogit, []int64{10}, make([]float32, 10), make([]float32, 28*28))
	if !errors.Is(err, engine.ErrBadInput) {
		t.Errorf("label 10 of 10 classes: got %v, want ErrBadInput", err)
	}

	// A batch staged for channels-last models is refused by the others,
	// rather than read in the wrong layout.
	nhwc := loadCheckpoint(t, torch.ForceStage(loaderFor(t, lib, torch.Options{ChannelsLast: true})), 1)
	b, err := nhwc.Stage(x, 1)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	nchw := loadCheckpoint(t, torch.ForceStage(cpu), 1)
	if err := nchw.Gradients(b, engine.TargetLogit, []int64{0}, make([]float32, 10), make([]float32, 28*28)); err == nil || !strings.Contains(err.Error(), "memory format") {
		t.Errorf("batch staged channels-last, used by an NCHW model: got %v", err)
	}
}

// TestChannelsLastAgrees checks that a ResNet-18 (three colour channels,
// batch norm, residual adds) gives the same gradients channels-last as NCHW,
// staged once for two passes.
func TestChannelsLastAgrees(t *testing.T) {
	lib := openLibrary(t)
	model := filepath.Join(t.TempDir(), "resnet18.pt")
	if out, err := exec.Command("/usr/bin/python3", "../../bench/make_resnet18.py", model).CombinedOutput(); err != nil {
		if os.Getenv("VOG_REQUIRE_TORCH") != "" {
			t.Fatalf("make a ResNet-18 with torchvision: %v\n%s", err, out)
		}
		t.Skipf("no torchvision: %v", err)
	}
	data, err := os.ReadFile(model)
	if err != nil {
		t.Fatal(err)
	}
	const n = 4
	s := engine.Shape{C: 3, H: 32, W: 32}
	r := rand.New(rand.NewPCG(2, 2))
	x := make([]float32, n*s.Len())
	for i := range x {
		x[i] = r.Float32()
	}
	targets := []int64{0, 3, 7, 9}
	run := func(o torch.Options) ([]float32, []float32) {
		m, err := engine.Load(torch.ForceStage(loaderFor(t, lib, o)), data, model, s)
		if err != nil {
			t.Fatal(err)
		}
		defer m.Close()
		b, err := m.Stage(x, n)
		if err != nil {
			t.Fatal(err)
		}
		defer b.Close()
		logits, grads := make([]float32, n*m.Classes()), make([]float32, n*s.Pixels())
		for range 2 {
			if err := m.Gradients(b, engine.TargetLogit, targets, logits, grads); err != nil {
				t.Fatal(err)
			}
		}
		return logits, grads
	}
	wantLogits, wantGrads := run(torch.Options{})
	logits, grads := run(torch.Options{ChannelsLast: true})
	eg, el := relErr(grads, wantGrads), relErr(logits, wantLogits)
	t.Logf("channels-last against NCHW: relative error of gradients %.2g, logits %.2g", eg, el)
	if eg > 1e-4 || el > 1e-4 {
		t.Errorf("channels-last differs from NCHW: relative error of gradients %g, logits %g", eg, el)
	}
}

func TestCheckDevice(t *testing.T) {
	lib := openLibrary(t)
	if err := lib.CheckDevice("cpu"); err != nil {
		t.Errorf("cpu: %v", err)
	}
	for _, d := range []string{"gpu", "cuda:x", "cuda:-1", "CUDA"} {
		if err := lib.CheckDevice(d); err == nil || !strings.Contains(err.Error(), "want auto, cpu, cuda or cuda:N") {
			t.Errorf("%s: got %v", d, err)
		}
	}
	n := lib.CUDADevices()
	err := lib.CheckDevice("cuda:" + strconv.Itoa(n))
	if err == nil || !strings.Contains(err.Error(), "--device cuda:"+strconv.Itoa(n)) {
		t.Errorf("cuda:%d with %d devices: got %v", n, n, err)
	}
	if err := lib.CheckDevice("cuda"); (err == nil) != (n > 0) {
		t.Errorf("cuda with %d devices: got %v", n, err)
	}
	if err := lib.CheckDevice("auto"); err != nil {
		t.Errorf("auto: %v", err)
	}
}

// TestResolveDevice: auto is the first CUDA device where libtorch sees
// one, else the cpu; other devices stay as they are.
func TestResolveDevice(t *testing.T) {
	for _, tt := range []struct {
		device string
		cuda   int
		want   string
	}{
		{"auto", 0, "cpu"},
		{"auto", 1, "cuda:0"},
		{"auto", 4, "cuda:0"},
		{"cpu", 4, "cpu"},
		{"cuda:1", 0, "cuda:1"},
	} {
		if got := torch.ResolveDeviceWith(tt.device, tt.cuda); got != tt.want {
			t.Errorf("%s with %d CUDA devices: %s, want %s", tt.device, tt.cuda, got, tt.want)
		}
	}
	lib := openLibrary(t)
	want := "cpu"
	if lib.CUDADevices() > 0 {
		want = "cuda:0"
	}
	if got := lib.ResolveDevice("auto"); got != want {
		t.Errorf("auto with %d CUDA devices: %s, want %s", lib.CUDADevices(), got, want)
	}
}

// TestTF32IsOneJobAtATime: TF32 is a process-wide switch, so a CUDA fp32
// model and a tf32 one cannot be alive together (two jobs on two devices of
// one process); loading the second fails with a message that says what to
// do, and succeeds once the first is freed (on a GPU: the GPU check runs
// it). Without CUDA, loads fail, and a failed load must not hold its kind.
func TestTF32IsOneJobAtATime(t *testing.T) {
	lib := openLibrary(t)
	fp32 := loaderFor(t, lib, torch.Options{Device: "cuda"})
	tf32, err := fp32.(engine.PrecisionLoader).WithPrecision("tf32")
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join(fixtures, "ckpt", "ckpt_1.pt"))
	if err != nil {
		t.Fatal(err)
	}
	s := engine.Shape{C: 1, H: 28, W: 28}
	if lib.CUDADevices() == 0 {
		for _, l := range []engine.Loader{fp32, tf32, fp32} {
			if _, err := engine.Load(l, data, "a.pt", s); err == nil || errors.Is(err, engine.ErrBusy) {
				t.Errorf("load on cuda without CUDA: got %v, want libtorch's error", err)
			}
		}
		return
	}
	a, err := engine.Load(fp32, data, "a.pt", s)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := engine.Load(tf32, data, "b.pt", s); err == nil || !strings.Contains(err.Error(), "separate worker processes") || errors.Is(err, engine.ErrBadInput) {
		t.Errorf("tf32 beside fp32: got %v", err)
	}
	a.Close()
	b, err := engine.Load(tf32, data, "b.pt", s)
	if err != nil {
		t.Fatalf("tf32 once fp32 is freed: %v", err)
	}
	b.Close()
}

// TestConformance runs the driver conformance suite on a real checkpoint
// (the quickstart's small CNN, with ReLUs: the finite difference is taken
// where no unit switches, within the tolerance below).
func TestConformance(t *testing.T) {
	lib := openLibrary(t)
	l, err := lib.Loader(torch.Options{})
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join(fixtures, "ckpt", "ckpt_12.pt"))
	if err != nil {
		t.Fatal(err)
	}
	enginetest.RunConformanceTests(t, enginetest.Harness{
		Loader: l, Checkpoint: data, Shape: engine.Shape{C: 1, H: 28, W: 28},
		Tolerance: 1e-5, FiniteDifference: 0.05,
	})
}

// TestTupleOutput: a module that returns a tuple, as Hugging Face models
// traced with torchscript=True do, gives the gradients of its first
// element, the logits.
func TestTupleOutput(t *testing.T) {
	lib := openLibrary(t)
	l := loaderFor(t, lib, torch.Options{})
	src := filepath.Join(fixtures, "ckpt", "ckpt_12.pt")
	wrapped := filepath.Join(t.TempDir(), "tuple.pt")
	testref.Python(t, "tuple_model.py", src, wrapped)
	data, err := os.ReadFile(wrapped)
	if err != nil {
		t.Fatal(err)
	}
	shape := engine.Shape{C: 1, H: 28, W: 28}
	m, err := engine.Load(l, data, wrapped, shape)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	base := loadCheckpoint(t, l, 12)
	x, targets := fixtureBatch(t, 4)
	for _, mm := range []*engine.Model{m, base} {
		if mm.Classes() != 10 {
			t.Fatalf("%d classes", mm.Classes())
		}
	}
	g1, g2 := make([]float32, 4*784), make([]float32, 4*784)
	l1, l2 := make([]float32, 40), make([]float32, 40)
	if err := m.Gradients(&engine.Batch{X: x, N: 4}, engine.TargetProb, targets, l1, g1); err != nil {
		t.Fatal(err)
	}
	if err := base.Gradients(&engine.Batch{X: x, N: 4}, engine.TargetProb, targets, l2, g2); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(g1, g2) || !slices.Equal(l1, l2) {
		t.Fatal("the tuple's first element gives other gradients than the module it wraps")
	}
}

// TestTooNewTorchScript: a TorchScript file that needs a newer libtorch
// (a newer file format, an operator it lacks) is refused with the engine's
// version and what to do, not only libtorch's words.
func TestTooNewTorchScript(t *testing.T) {
	lib := openLibrary(t)
	cpu := loaderFor(t, lib, torch.Options{})
	data, err := os.ReadFile(filepath.Join(fixtures, "ckpt", "ckpt_1.pt"))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name, record, old, new string
	}{
		{"a newer file format", "ckpt_1/version", "3\n", "99\n"},
		{"an operator it lacks", "ckpt_1/code/__torch__/torch/nn/modules/linear.py", "torch.linear(", "torch.linear_v9("},
	} {
		forged := rewriteRecord(t, data, c.record, c.old, c.new)
		_, err := engine.Load(cpu, forged, "new.pt", engine.Shape{C: 1, H: 28, W: 28})
		if err == nil || !strings.Contains(err.Error(), "this engine's libtorch is "+lib.TorchVersion()) || !strings.Contains(err.Error(), "torchvision:NAME") {
			t.Errorf("%s: %v", c.name, err)
		}
	}
}

// rewriteRecord returns the zip data with one record's text replaced.
func rewriteRecord(t *testing.T, data []byte, name, old, new string) []byte {
	t.Helper()
	zr, err := zip.NewReader(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	zw := zip.NewWriter(&out)
	for _, f := range zr.File {
		r, err := f.Open()
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(r)
		if err != nil {
			t.Fatal(err)
		}
		if f.Name == name {
			if !bytes.Contains(b, []byte(old)) {
				t.Fatalf("%s has no %q", name, old)
			}
			b = bytes.ReplaceAll(b, []byte(old), []byte(new))
		}
		w, err := zw.CreateHeader(&zip.FileHeader{Name: f.Name, Method: zip.Store})
		if err != nil {
			t.Fatal(err)
		}
		w.Write(b)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}
