package linear_test

import (
	"encoding/binary"
	"errors"
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/vogscore/vog/checkpoint"
	"github.com/vogscore/vog/engine"
	"github.com/vogscore/vog/engine/enginetest"
	"github.com/vogscore/vog/engine/linear"
	"github.com/vogscore/vog/internal/testjob"
)

func TestConformance(t *testing.T) {
	s := engine.Shape{C: 3, H: 4, W: 5}
	c := testjob.Linear(1, 4, s.H, s.W)[0]
	c.Shape = [3]int{s.C, s.H, s.W}
	c.Weight = append(append(c.Weight, c.Weight...), c.Weight...) // three channels
	enginetest.RunConformanceTests(t, enginetest.Harness{
		Loader: linear.Loader{}, Checkpoint: c.Marshal(), Shape: s,
		Tolerance: 0, FiniteDifference: 1e-3,
	})
}

// TestLoadWeights: a linear state dict fills a module, as load_state_dict
// does, and keys that do not fit are named.
func TestLoadWeights(t *testing.T) {
	s := engine.Shape{C: 1, H: 2, W: 3}
	c := testjob.Linear(1, 4, s.H, s.W)[0]
	f32 := func(name string, v []float32, shape ...int64) checkpoint.Tensor {
		data := make([]byte, 4*len(v))
		for i, x := range v {
			binary.LittleEndian.PutUint32(data[4*i:], math.Float32bits(x))
		}
		return checkpoint.Tensor{Name: name, DType: checkpoint.F32, Shape: shape, Data: data}
	}
	weights := []checkpoint.Tensor{f32("weight", c.Weight, 4, 6), f32("bias", c.Bias, 4)}
	module := testjob.Linear(1, 4, s.H, s.W)[0]
	module.Weight[0]++ // replaced by the state dict's
	m, err := engine.LoadWeights(linear.Loader{}, module.Marshal(), weights, "sd", s)
	if err != nil {
		t.Fatal(err)
	}
	direct, err := engine.Load(linear.Loader{}, c.Marshal(), "ts", s)
	if err != nil {
		t.Fatal(err)
	}
	x := []float32{0.1, 0.2, 0.3, 0.4, 0.5, 0.6}
	a, b := make([]float32, 4), make([]float32, 4)
	m.Logits(&engine.Batch{X: x, N: 1}, a)
	direct.Logits(&engine.Batch{X: x, N: 1}, b)
	if !slices.Equal(a, b) {
		t.Fatalf("logits %v, want %v", a, b)
	}
	if _, err := engine.LoadWeights(linear.Loader{}, module.Marshal(), weights[:1], "sd", s); !errors.Is(err, engine.ErrBadInput) || !strings.Contains(err.Error(), "missing key bias") {
		t.Fatalf("missing key: %v", err)
	}
}
