package score

import (
	"math"
	"math/rand/v2"
	"testing"

	"gonum.org/v1/gonum/stat"
)

func TestMoments(t *testing.T) {
	tests := []struct {
		name       string
		xs         []float64
		mean, vari float64
	}{
		{"empty", nil, 0, 0},
		{"one", []float64{3}, 3, 0},
		{"two", []float64{1, 3}, 2, 1},
		{"constant", []float64{5, 5, 5, 5}, 5, 0},
		{"textbook", []float64{2, 4, 4, 4, 5, 5, 7, 9}, 5, 4},
		{"large offset", []float64{1e9 + 4, 1e9 + 7, 1e9 + 13, 1e9 + 16}, 1e9 + 10, 22.5},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var m Moments
			for _, x := range tt.xs {
				m.Add(x)
			}
			if m.N != int64(len(tt.xs)) || !close(m.Mean, tt.mean, 1e-12) || !close(m.Var(), tt.vari, 1e-9) {
				t.Fatalf("got n=%d mean=%g var=%g, want mean=%g var=%g", m.N, m.Mean, m.Var(), tt.mean, tt.vari)
			}
			if n := float64(m.N); n < 2 {
				if !math.IsNaN(m.SampleVar()) {
					t.Fatalf("n=%d: sample variance %g, want NaN", m.N, m.SampleVar())
				}
			} else if !close(m.SampleVar(), tt.vari*n/(n-1), 1e-9) {
				t.Fatalf("sample variance %g, want %g", m.SampleVar(), tt.vari*n/(n-1))
			}
		})
	}
}

func TestZScore(t *testing.T) {
	if got := ZScore(3, 1, 2); got != 1 {
		t.Errorf("ZScore(3, 1, 2) = %g, want 1", got)
	}
	if got := ZScore(3, 3, 0); got != 0 {
		t.Errorf("std 0: got %g, want 0", got)
	}
}

// TestMergeDoesNotDependOnSplit checks Chan's merge against one pass and
// against gonum, for every way of cutting the data in two and for many
// random partitions.
func TestMergeDoesNotDependOnSplit(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	xs := make([]float64, 40)
	for i := range xs {
		xs[i] = r.NormFloat64()*3 + 10
	}
	var whole Moments
	for _, x := range xs {
		whole.Add(x)
	}
	mean, vari := stat.PopMeanVariance(xs, nil)
	if !close(whole.Mean, mean, 1e-12) || !close(whole.Var(), vari, 1e-12) {
		t.Fatalf("one pass: mean %g var %g, gonum: %g %g", whole.Mean, whole.Var(), mean, vari)
	}
	for trial := range 200 {
		parts := make([]Moments, 1+trial%7)
		for _, x := range xs {
			parts[r.IntN(len(parts))].Add(x)
		}
		var merged Moments
		for _, p := range parts {
			merged.Merge(p)
		}
		if merged.N != whole.N || !close(merged.Mean, whole.Mean, 1e-12) || !close(merged.M2, whole.M2, 1e-10) {
			t.Fatalf("trial %d: merged %+v, one pass %+v", trial, merged, whole)
		}
	}
}

// vogReference is docs/design.md, "The score", written out directly, two-pass.
func vogReference(maps [][]float32) float64 {
	k, pixels := float64(len(maps)), len(maps[0])
	var sum float64
	for p := range pixels {
		var mu float64
		for _, m := range maps {
			mu += float64(m[p])
		}
		mu /= k
		var ss float64
		for _, m := range maps {
			d := float64(m[p]) - mu
			ss += d * d
		}
		sum += math.Sqrt(ss / k)
	}
	return sum / float64(pixels)
}

func TestPixelMomentsVoG(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	const k, pixels = 7, 50
	maps := make([][]float32, k)
	for i := range maps {
		maps[i] = make([]float32, pixels)
		for p := range maps[i] {
			maps[i][p] = float32(r.NormFloat64() * float64(p+1) / 10)
		}
	}
	want := vogReference(maps)

	one := NewPixelMoments(pixels)
	for _, m := range maps {
		one.Add(m)
	}
	if !close(one.VoG(), want, 1e-12) {
		t.Fatalf("VoG %g, reference %g", one.VoG(), want)
	}
	// Every split of the checkpoints into groups merges to the same VoG.
	for cut := 0; cut <= k; cut++ {
		a, b := NewPixelMoments(pixels), NewPixelMoments(pixels)
		for _, m := range maps[:cut] {
			a.Add(m)
		}
		for _, m := range maps[cut:] {
			b.Add(m)
		}
		if err := a.Merge(b); err != nil {
			t.Fatal(err)
		}
		if !close(a.VoG(), want, 1e-12) {
			t.Fatalf("cut %d: VoG %g, reference %g", cut, a.VoG(), want)
		}
	}
	if err := one.Merge(NewPixelMoments(pixels + 1)); err == nil {
		t.Fatal("merging moments of different sizes: no error")
	}
}

func TestVoGEdgeCases(t *testing.T) {
	p := NewPixelMoments(4)
	if p.VoG() != 0 {
		t.Fatalf("no checkpoints: VoG %g, want 0", p.VoG())
	}
	p.Add([]float32{1, 2, 3, 4})
	if p.VoG() != 0 {
		t.Fatalf("one checkpoint: VoG %g, want 0", p.VoG())
	}
	p.Add([]float32{1, 2, 3, 4})
	if p.VoG() != 0 {
		t.Fatalf("identical checkpoints: VoG %g, want 0", p.VoG())
	}
	// Two checkpoints differing by 2 at every pixel: std 1 everywhere.
	p.Reset()
	p.Add([]float32{0, 0, 0, 0})
	p.Add([]float32{2, -2, 2, -2})
	if p.VoG() != 1 {
		t.Fatalf("VoG %g, want 1", p.VoG())
	}
}

// TestClassMomentsExact checks that class statistics are bit-identical
// however the scores are grouped and ordered, and agree with gonum.
func TestClassMomentsExact(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	xs := make([]float64, 1000)
	for i := range xs {
		xs[i] = math.Exp(r.NormFloat64()) * 1e-3
	}
	var whole ClassMoments
	for _, x := range xs {
		whole.Add(x)
	}
	want := whole.Moments()
	mean, vari := stat.PopMeanVariance(xs, nil)
	if !close(want.Mean, mean, 1e-14) || !close(want.Var(), vari, 1e-12) {
		t.Fatalf("exact: mean %g var %g, gonum %g %g", want.Mean, want.Var(), mean, vari)
	}
	for trial := range 50 {
		parts := make([]ClassMoments, 1+trial%9)
		for _, i := range r.Perm(len(xs)) {
			parts[r.IntN(len(parts))].Add(xs[i])
		}
		var merged ClassMoments
		for _, i := range r.Perm(len(parts)) {
			// Round-trip through text, as between activities.
			text, err := parts[i].MarshalText()
			if err != nil {
				t.Fatal(err)
			}
			var back ClassMoments
			if err := back.UnmarshalText(text); err != nil {
				t.Fatal(err)
			}
			merged.Merge(&back)
		}
		if got := merged.Moments(); got != want {
			t.Fatalf("trial %d: %+v, want bit-identical %+v", trial, got, want)
		}
	}
	var empty ClassMoments
	if (empty.Moments() != Moments{}) {
		t.Fatal("empty class has moments")
	}
}

func FuzzClassMomentsText(f *testing.F) {
	f.Add(int64(3), 0.5, 1.25)
	f.Add(int64(0), 0.0, 0.0)
	f.Fuzz(func(t *testing.T, n int64, a, b float64) {
		if math.IsNaN(a) || math.IsInf(a, 0) || math.IsNaN(b) || math.IsInf(b, 0) || n < 0 || n > 100 {
			t.Skip()
		}
		var c ClassMoments
		for i := range n {
			c.Add(a + float64(i)*b)
		}
		text, _ := c.MarshalText()
		var back ClassMoments
		if err := back.UnmarshalText(text); err != nil {
			t.Fatalf("%q: %v", text, err)
		}
		if back.Moments() != c.Moments() || back.N() != c.N() {
			t.Fatalf("%q: round trip %+v != %+v", text, back.Moments(), c.Moments())
		}
	})
}

func close(a, b, rel float64) bool {
	return math.Abs(a-b) <= rel*math.Max(1, math.Max(math.Abs(a), math.Abs(b)))
}

// BenchmarkFoldBatch224 folds one checkpoint's gradient maps for a batch of
// 128 ImageNet-sized examples (224x224) into their pixel moments, as the
// shard activity does after every engine pass: the CPU work that a GPU
// worker overlaps with the next pass.
func BenchmarkFoldBatch224(b *testing.B) {
	const n, pixels = 128, 224 * 224
	moments := make([]*PixelMoments, n)
	for i := range moments {
		moments[i] = NewPixelMoments(pixels)
	}
	g := make([]float32, n*pixels)
	for i := range g {
		g[i] = float32(i%97) * 0.01
	}
	for b.Loop() {
		for i, m := range moments {
			m.Add(g[i*pixels : (i+1)*pixels])
			L2(g[i*pixels : (i+1)*pixels])
		}
	}
	b.ReportMetric(float64(b.Elapsed())/1e6/float64(b.N), "ms/batch")
}
