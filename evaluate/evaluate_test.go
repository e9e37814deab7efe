package evaluate

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"gonum.org/v1/gonum/integrate"
	"gonum.org/v1/gonum/stat"
)

func TestAUROC(t *testing.T) {
	tests := []struct {
		name  string
		score []float64
		pos   []bool
		want  float64
	}{
		{"perfect", []float64{1, 2, 3, 4}, []bool{false, false, true, true}, 1},
		{"inverted", []float64{1, 2, 3, 4}, []bool{true, true, false, false}, 0},
		{"all tied", []float64{5, 5, 5, 5}, []bool{true, false, true, false}, 0.5},
		{"one of four pairs wrong", []float64{1, 2, 3, 4}, []bool{false, true, false, true}, 0.75},
		{"NaN left out", []float64{1, math.NaN(), 3}, []bool{false, false, true}, 1},
		{"one group", []float64{1, 2}, []bool{true, true}, math.NaN()},
	}
	for _, tt := range tests {
		got := AUROC(tt.score, tt.pos)
		if got != tt.want && !(math.IsNaN(got) && math.IsNaN(tt.want)) {
			t.Errorf("%s: AUROC %g, want %g", tt.name, got, tt.want)
		}
	}
}

// TestAUROCAgainstGonum compares with the trapezoid area under gonum's ROC
// curve on random scores without ties.
func TestAUROCAgainstGonum(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 1))
	n := 500
	score, classes := make([]float64, n), make([]bool, n)
	for i := range score {
		classes[i] = r.IntN(3) == 0
		score[i] = r.NormFloat64()
		if classes[i] {
			score[i] += 0.8
		}
	}
	y := append([]float64(nil), score...)
	c := append([]bool(nil), classes...)
	stat.SortWeightedLabeled(y, c, nil)
	tpr, fpr, _ := stat.ROC(nil, y, c, nil)
	want := integrate.Trapezoidal(fpr, tpr)
	if got := AUROC(score, classes); math.Abs(got-want) > 1e-12 {
		t.Fatalf("AUROC %g, gonum %g", got, want)
	}
}

func TestAveragePrecision(t *testing.T) {
	// Ranked: pos, neg, pos, neg -> (1/1 + 2/3) / 2.
	got := AveragePrecision([]float64{4, 3, 2, 1}, []bool{true, false, true, false})
	if math.Abs(got-(1+2.0/3)/2) > 1e-12 {
		t.Fatalf("AP %g", got)
	}
	if AveragePrecision([]float64{1, 2}, []bool{true, true}) != 1 {
		t.Fatal("all positive")
	}
	if !math.IsNaN(AveragePrecision([]float64{1}, []bool{false})) {
		t.Fatal("no positives")
	}
}

func TestWelchT(t *testing.T) {
	// A textbook pair: the statistic and degrees of freedom by hand.
	a := []float64{27.5, 21.0, 19.0, 23.6, 17.0, 17.9, 16.9, 20.1, 21.9, 22.6, 23.1, 19.6, 19.0, 21.7, 21.4}
	b := []float64{27.1, 22.0, 20.8, 23.4, 23.4, 23.5, 25.8, 22.0, 24.8, 20.2, 21.9, 22.1, 22.9, 20.5, 24.4}
	ma, va := stat.MeanVariance(a, nil)
	mb, vb := stat.MeanVariance(b, nil)
	se2 := va/15 + vb/15
	tt := (ma - mb) / math.Sqrt(se2)
	df := se2 * se2 / ((va/15)*(va/15)/14 + (vb/15)*(vb/15)/14)
	w := WelchT(a, b)
	if math.Abs(w.T-tt) > 1e-12 || math.Abs(w.DF-df) > 1e-9 || math.Abs(w.T-(-2.46)) > 0.01 || math.Abs(w.DF-24.99) > 0.01 || math.Abs(w.P-0.021) > 0.001 {
		t.Fatalf("%+v; want t %g (about -2.46), df %g (about 24.99), p about 0.021", w, tt, df)
	}
}

func TestRanksAndSpearman(t *testing.T) {
	if got, want := Ranks([]float64{3, 1, 2, 2, 5}), []float64{4, 1, 2.5, 2.5, 5}; !slices.Equal(got, want) {
		t.Fatalf("Ranks %v, want %v", got, want)
	}
	a := []float64{0.1, 0.5, 0.2, 0.9, 0.3}
	b := make([]float64, len(a))
	for i, x := range a {
		b[i] = math.Exp(10 * x) // monotone: the same ranks
	}
	if r := Spearman(a, b); math.Abs(r-1) > 1e-12 {
		t.Fatalf("Spearman of a monotone transform %v, want 1", r)
	}
	for i := range b {
		b[i] = -b[i]
	}
	if r := Spearman(a, b); math.Abs(r+1) > 1e-12 {
		t.Fatalf("Spearman of a decreasing transform %v, want -1", r)
	}
}
