package linear_test

import (
	"testing"

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
