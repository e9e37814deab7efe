package torch_test

import (
	"encoding/binary"
	"errors"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	_ "gocloud.dev/blob/fileblob"

	"github.com/vogscore/vog/dataset"
	"github.com/vogscore/vog/engine"
	"github.com/vogscore/vog/engine/torch"
)

const fixtures = "../../testdata/fmnist"

// openLibrary opens libvogtorch.so, skipping the test where it has not been
// built unless VOG_REQUIRE_TORCH is set (as CI does).
func openLibrary(t testing.TB) *torch.Library {
	t.Helper()
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

func readF32(t *testing.T, name string) []float32 {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(fixtures, name))
	if err != nil {
		t.Fatal(err)
	}
	out := make([]float32, len(b)/4)
	for i := range out {
		out[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
	}
	return out
}

func loadCheckpoint(t testing.TB, lib *torch.Library, k int) *engine.Model {
	t.Helper()
	name := filepath.Join(fixtures, "ckpt", "ckpt_"+strconv.Itoa(k)+".pt")
	data, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	m, err := engine.Load(loaderFor(t, lib, testDevice(), os.Getenv("VOG_TEST_PRECISION")), data, name, engine.Shape{C: 1, H: 28, W: 28})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

// TestGradientsMatchPyTorch compares the engine with input gradients and
// logits that PyTorch autograd computed for the same checkpoints and images
// (testdata/fmnist/make_fixtures.py).
func TestGradientsMatchPyTorch(t *testing.T) {
	lib := openLibrary(t)
	const n, k, hw, classes = 8, 12, 28 * 28, 10
	ctx := t.Context()
	spec := dataset.Spec{Format: "idx", URL: fixtures + "/small"}
	l, err := dataset.List(ctx, spec)
	if err != nil {
		t.Fatal(err)
	}
	r, err := dataset.NewReader(ctx, spec, l.Shape)
	if err != nil {
		t.Fatal(err)
	}
	x := make([]float32, n*hw)
	if err := r.Read(ctx, l.Rows[:n], x); err != nil {
		t.Fatal(err)
	}
	targets := make([]int64, n)
	for i, row := range l.Rows[:n] {
		targets[i] = int64(row.Label)
	}
	wantGrads, wantLogits := readF32(t, "grads.f32"), readF32(t, "logits.f32")
	for c := 1; c <= k; c++ {
		m := loadCheckpoint(t, lib, c)
		logits, grads := make([]float32, n*classes), make([]float32, n*hw)
		if err := m.Gradients(x, n, targets, logits, grads); err != nil {
			t.Fatal(err)
		}
		t.Logf("checkpoint %d on %s: relative error of gradients %.2g, logits %.2g", c, testDevice(),
			relErr(grads, wantGrads[(c-1)*n*hw:c*n*hw]), relErr(logits, wantLogits[(c-1)*n*classes:c*n*classes]))
		if e := relErr(grads, wantGrads[(c-1)*n*hw:c*n*hw]); e > 1e-5 {
			t.Errorf("checkpoint %d: gradients differ from PyTorch's: relative error %g", c, e)
		}
		if e := relErr(logits, wantLogits[(c-1)*n*classes:c*n*classes]); e > 1e-5 {
			t.Errorf("checkpoint %d: logits differ from PyTorch's: relative error %g", c, e)
		}
	}
}

func loaderFor(t testing.TB, lib *torch.Library, device, precision string) engine.Loader {
	t.Helper()
	l, err := lib.Loader(device, precision)
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
	if _, err := engine.Load(loaderFor(t, lib, "cpu", ""), []byte("not a model"), "junk.pt", engine.Shape{C: 1, H: 28, W: 28}); !errors.Is(err, engine.ErrBadInput) {
		t.Errorf("loading junk: got %v, want ErrBadInput", err)
	}
	data, err := os.ReadFile(filepath.Join(fixtures, "ckpt", "ckpt_1.pt"))
	if err != nil {
		t.Fatal(err)
	}
	_, err = engine.Load(loaderFor(t, lib, "cpu", ""), data, "ckpt_1.pt", engine.Shape{C: 3, H: 32, W: 32})
	if !errors.Is(err, engine.ErrBadInput) {
		t.Errorf("wrong input shape: got %v, want ErrBadInput", err)
	}
	t.Logf("wrong shape reads: %v", err)
	m := loadCheckpoint(t, lib, 1)
	x := make([]float32, 28*28)
	err = m.Gradients(x, 1, []int64{10}, make([]float32, 10), make([]float32, 28*28))
	if !errors.Is(err, engine.ErrBadInput) {
		t.Errorf("label 10 of 10 classes: got %v, want ErrBadInput", err)
	}
}
