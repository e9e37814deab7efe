package score

import (
	"math"
	"testing"
)

// TestFromLogits checks each quantity against a direct computation.
func TestFromLogits(t *testing.T) {
	logits := []float32{1, 3, 0.5}
	e := []float64{math.Exp(1), math.Exp(3), math.Exp(0.5)}
	z := e[0] + e[1] + e[2]
	p := []float64{e[0] / z, e[1] / z, e[2] / z}
	got := FromLogits(logits, 0)
	el2n := math.Sqrt((p[0]-1)*(p[0]-1) + p[1]*p[1] + p[2]*p[2])
	if !close(got.PLabel, p[0], 1e-12) || !close(got.Loss, -math.Log(p[0]), 1e-12) || got.Margin != -2 ||
		!close(got.EL2N, el2n, 1e-12) || got.Correct {
		t.Fatalf("label 0: %+v; want p %g loss %g margin -2 el2n %g", got, p[0], -math.Log(p[0]), el2n)
	}
	if c := FromLogits(logits, 1); !c.Correct || c.Margin != 2 {
		t.Fatalf("label 1: %+v", c)
	}
	if tie := FromLogits([]float32{2, 2}, 0); tie.Correct {
		t.Fatal("a tie counted as correct")
	}
	if none := FromLogits(logits, -1); !math.IsNaN(none.PLabel) || none.Correct {
		t.Fatalf("no label: %+v", none)
	}
	// Large logits do not overflow.
	if big := FromLogits([]float32{1000, 0}, 0); !close(big.PLabel, 1, 1e-12) || big.Loss > 1e-12 {
		t.Fatalf("large logits: %+v", big)
	}
}

func TestWindowScores(t *testing.T) {
	ls := []Logits{
		{PLabel: 0.2, Margin: -1, Correct: false},
		{PLabel: 0.6, Margin: 1, Correct: true},
		{PLabel: 0.4, Margin: -0.5, Correct: false},
		{PLabel: 0.8, Margin: 2, Correct: true, Loss: 0.22, EL2N: 0.3},
	}
	s := WindowScores(ls, []float64{1, 2, 3, 6})
	mean := (0.2 + 0.6 + 0.4 + 0.8) / 4
	var v float64
	for _, l := range ls {
		v += (l.PLabel - mean) * (l.PLabel - mean)
	}
	if !close(s.ConfMean, mean, 1e-12) || !close(s.ConfStd, math.Sqrt(v/4), 1e-12) || !close(s.MarginMean, 0.375, 1e-12) ||
		s.Forgetting != 1 || s.GradNorm != 3 || !s.CorrectLast || s.Loss != 0.22 || s.EL2N != 0.3 {
		t.Fatalf("%+v", s)
	}
	if L2([]float32{3, 4}) != 5 {
		t.Fatal("L2")
	}
}
