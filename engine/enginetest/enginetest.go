// Package enginetest is a conformance suite for engine drivers: every
// driver (engine/linear, engine/torch) runs it from a short harness, so
// that they all keep the contract that engine.Driver's comments state.
package enginetest

import (
	"errors"
	"math"
	"math/rand/v2"
	"sync"
	"testing"

	"github.com/vogscore/vog/engine"
)

// Harness gives the suite one driver's loader and a checkpoint for it.
type Harness struct {
	Loader engine.Loader
	// Checkpoint is a loadable checkpoint taking inputs of Shape.
	Checkpoint []byte
	Shape      engine.Shape
	// Tolerance is the relative error allowed where the same gradient is
	// computed twice in different batches (0 for exact drivers), and in
	// the finite-difference check of the gradient, which needs a model
	// that is smooth enough at the check's points.
	Tolerance, FiniteDifference float64
}

// RunConformanceTests runs the suite on h.
func RunConformanceTests(t *testing.T, h Harness) {
	t.Run("BadCheckpoint", func(t *testing.T) { testBadCheckpoint(t, h) })
	t.Run("LogitsAgree", func(t *testing.T) { testLogitsAgree(t, h) })
	t.Run("BatchIndependent", func(t *testing.T) { testBatchIndependent(t, h) })
	t.Run("FiniteDifference", func(t *testing.T) { testFiniteDifference(t, h) })
	t.Run("Staged", func(t *testing.T) { testStaged(t, h) })
	t.Run("BadTarget", func(t *testing.T) { testBadTarget(t, h) })
	t.Run("Concurrent", func(t *testing.T) { testConcurrent(t, h) })
	t.Run("UseAfterClose", func(t *testing.T) { testUseAfterClose(t, h) })
}

func load(t *testing.T, h Harness) *engine.Model {
	t.Helper()
	m, err := engine.Load(h.Loader, h.Checkpoint, "checkpoint", h.Shape)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

// inputs returns n examples of h's shape with values in [0, 1).
func inputs(h Harness, n int, seed uint64) []float32 {
	r := rand.New(rand.NewPCG(seed, 7))
	x := make([]float32, n*h.Shape.Len())
	for i := range x {
		x[i] = r.Float32()
	}
	return x
}

func grads(t *testing.T, m *engine.Model, kind engine.Target, x []float32, targets []int64) (logits, g []float32) {
	t.Helper()
	n := len(targets)
	logits, g = make([]float32, n*m.Classes()), make([]float32, n*m.Shape().Pixels())
	if err := m.Gradients(&engine.Batch{X: x, N: n}, kind, targets, logits, g); err != nil {
		t.Fatal(err)
	}
	return logits, g
}

func targetsFor(m *engine.Model, n int) []int64 {
	t := make([]int64, n)
	for i := range t {
		t[i] = int64(i % m.Classes())
	}
	return t
}

func testBadCheckpoint(t *testing.T, h Harness) {
	for _, data := range [][]byte{nil, []byte("not a checkpoint"), h.Checkpoint[:len(h.Checkpoint)/2]} {
		if _, err := engine.Load(h.Loader, data, "bad.pt", h.Shape); !errors.Is(err, engine.ErrBadInput) {
			t.Errorf("a checkpoint of %d bytes: got %v, want ErrBadInput", len(data), err)
		}
	}
	wrong := engine.Shape{C: h.Shape.C + 1, H: h.Shape.H, W: h.Shape.W}
	if _, err := engine.Load(h.Loader, h.Checkpoint, "checkpoint", wrong); !errors.Is(err, engine.ErrBadInput) {
		t.Errorf("shape %v: got %v, want ErrBadInput", wrong, err)
	}
}

// testLogitsAgree: a forward pass gives the logits that a gradient pass
// reports, and the model's class count.
func testLogitsAgree(t *testing.T, h Harness) {
	m := load(t, h)
	if m.Classes() < 2 {
		t.Fatalf("%d classes", m.Classes())
	}
	const n = 5
	x := inputs(h, n, 1)
	gl, _ := grads(t, m, engine.TargetLogit, x, targetsFor(m, n))
	fl := make([]float32, n*m.Classes())
	if err := m.Logits(&engine.Batch{X: x, N: n}, fl); err != nil {
		t.Fatal(err)
	}
	compare(t, "forward logits vs gradient pass logits", fl, gl, h.Tolerance)
}

// testBatchIndependent: an example's gradient does not depend on the other
// examples of its batch, nor on its place in it, for every target.
func testBatchIndependent(t *testing.T, h Harness) {
	m := load(t, h)
	const n = 6
	x := inputs(h, n, 2)
	targets := targetsFor(m, n)
	for kind := range engine.Target(len(engine.Targets)) {
		_, all := grads(t, m, kind, x, targets)
		d, p := h.Shape.Len(), h.Shape.Pixels()
		for _, i := range []int{0, n - 1} {
			_, one := grads(t, m, kind, x[i*d:(i+1)*d], targets[i:i+1])
			compare(t, kind.String()+": example alone vs in a batch", one, all[i*p:(i+1)*p], h.Tolerance)
		}
	}
}

// testFiniteDifference checks the channel-averaged gradient of every
// target against a central difference of that scalar along a direction
// that is the same in every channel:
// sum_c,px g[c,px] u[px] = C * sum_px mean_c(g)[px] u[px].
func testFiniteDifference(t *testing.T, h Harness) {
	m := load(t, h)
	x := inputs(h, 1, 3)
	target := []int64{1}
	u := inputs(Harness{Shape: engine.Shape{C: 1, H: h.Shape.H, W: h.Shape.W}}, 1, 4)
	scalar := func(kind engine.Target, sign float64, eps float64) float64 {
		y := append([]float32(nil), x...)
		for c := range h.Shape.C {
			for px, v := range u {
				y[c*h.Shape.Pixels()+px] += float32(sign * eps * float64(v-0.5))
			}
		}
		l := make([]float32, m.Classes())
		if err := m.Logits(&engine.Batch{X: y, N: 1}, l); err != nil {
			t.Fatal(err)
		}
		top := math.Inf(-1)
		for _, v := range l {
			top = math.Max(top, float64(v))
		}
		var z float64
		for _, v := range l {
			z += math.Exp(float64(v) - top)
		}
		logp := float64(l[target[0]]) - top - math.Log(z)
		switch kind {
		case engine.TargetProb:
			return math.Exp(logp)
		case engine.TargetLoss:
			return -logp
		}
		return float64(l[target[0]])
	}
	for kind := range engine.Target(len(engine.Targets)) {
		_, g := grads(t, m, kind, x, target)
		var want float64
		for px, v := range u {
			want += float64(h.Shape.C) * float64(g[px]) * float64(v-0.5)
		}
		const eps = 1e-2
		got := (scalar(kind, 1, eps) - scalar(kind, -1, eps)) / (2 * eps)
		if math.Abs(got-want) > h.FiniteDifference*math.Max(math.Abs(want), 1e-3) {
			t.Errorf("%s: directional derivative: finite difference %g, gradient %g", kind, got, want)
		}
	}
}

// testStaged: a batch staged once gives what the host batch gives, for
// every checkpoint of the loader.
func testStaged(t *testing.T, h Harness) {
	m := load(t, h)
	m2 := load(t, h)
	const n = 4
	x := inputs(h, n, 5)
	targets := targetsFor(m, n)
	b, err := m.Stage(append([]float32(nil), x...), n)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	for kind := range engine.Target(len(engine.Targets)) {
		wantL, wantG := grads(t, m, kind, x, targets)
		for _, mm := range []*engine.Model{m, m2} {
			l, g := make([]float32, len(wantL)), make([]float32, len(wantG))
			if err := mm.Gradients(b, kind, targets, l, g); err != nil {
				t.Fatal(err)
			}
			compare(t, kind.String()+": staged gradients", g, wantG, h.Tolerance)
			compare(t, kind.String()+": staged logits", l, wantL, h.Tolerance)
		}
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if err := b.Close(); err != nil {
		t.Errorf("closing a staged batch twice: %v", err)
	}
}

func testBadTarget(t *testing.T, h Harness) {
	m := load(t, h)
	x := inputs(h, 2, 6)
	l, g := make([]float32, 2*m.Classes()), make([]float32, 2*h.Shape.Pixels())
	for _, bad := range []int64{-1, int64(m.Classes())} {
		if err := m.Gradients(&engine.Batch{X: x, N: 2}, engine.TargetLogit, []int64{0, bad}, l, g); !errors.Is(err, engine.ErrBadInput) {
			t.Errorf("target %d of %d classes: got %v, want ErrBadInput", bad, m.Classes(), err)
		}
	}
}

// testConcurrent: models of one loader compute at once, as workers of
// several devices in one process do, and give what they give alone.
func testConcurrent(t *testing.T, h Harness) {
	ms := []*engine.Model{load(t, h), load(t, h)}
	const n = 3
	x := inputs(h, n, 8)
	targets := targetsFor(ms[0], n)
	_, want := grads(t, ms[0], engine.TargetProb, x, targets)
	var wg sync.WaitGroup
	got := make([][]float32, len(ms))
	errs := make([]error, len(ms))
	for i, m := range ms {
		wg.Go(func() {
			l, g := make([]float32, n*m.Classes()), make([]float32, n*h.Shape.Pixels())
			for range 3 {
				errs[i] = m.Gradients(&engine.Batch{X: x, N: n}, engine.TargetProb, targets, l, g)
			}
			got[i] = g
		})
	}
	wg.Wait()
	for i := range ms {
		if errs[i] != nil {
			t.Fatal(errs[i])
		}
		compare(t, "concurrent gradients", got[i], want, h.Tolerance)
	}
}

// testUseAfterClose: after Close, every call returns an error instead of
// touching freed memory, through Model and through the driver itself.
func testUseAfterClose(t *testing.T, h Harness) {
	m := load(t, h)
	x := inputs(h, 1, 9)
	l, g := make([]float32, m.Classes()), make([]float32, h.Shape.Pixels())
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	if err := m.Close(); err != nil {
		t.Errorf("closing twice: %v", err)
	}
	if err := m.Logits(&engine.Batch{X: x, N: 1}, l); !errors.Is(err, engine.ErrClosed) {
		t.Errorf("Logits after Close: got %v, want ErrClosed", err)
	}
	if err := m.Gradients(&engine.Batch{X: x, N: 1}, engine.TargetLogit, []int64{0}, l, g); !errors.Is(err, engine.ErrClosed) {
		t.Errorf("Gradients after Close: got %v, want ErrClosed", err)
	}
	if _, err := m.Stage(x, 1); !errors.Is(err, engine.ErrClosed) {
		t.Errorf("Stage after Close: got %v, want ErrClosed", err)
	}
	d, err := h.Loader.Load(h.Checkpoint, "checkpoint")
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	if err := d.Close(); err != nil {
		t.Errorf("driver closed twice: %v", err)
	}
	if _, err := d.Forward(&engine.Batch{X: x, N: 1}, h.Shape, l); err == nil {
		t.Error("driver Forward after Close: no error")
	}
	if _, err := d.Grad(&engine.Batch{X: x, N: 1}, h.Shape, engine.TargetLogit, []int64{0}, l, g); err == nil {
		t.Error("driver Grad after Close: no error")
	}
	if st, ok := d.(engine.Stager); ok {
		if s, err := st.Stage(x, 1, h.Shape); err == nil && s != nil {
			s.Close()
			t.Error("driver Stage after Close: no error")
		}
	}
}

func compare(t *testing.T, what string, got, want []float32, tol float64) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d values, want %d", what, len(got), len(want))
	}
	var scale float64
	for _, v := range want {
		scale = math.Max(scale, math.Abs(float64(v)))
	}
	for i := range got {
		if d := math.Abs(float64(got[i] - want[i])); d > tol*math.Max(scale, 1e-12) || math.IsNaN(float64(got[i])) {
			t.Fatalf("%s: value %d is %g, want %g (tolerance %g relative to %g)", what, i, got[i], want[i], tol, scale)
		}
	}
}
