package evaluate

import (
	"cmp"
	"math"
	"math/rand/v2"
	"slices"
	"sort"
	"testing"

	"github.com/vogscore/vog/score"
)

// streamed runs the two passes over score.
func streamed(score []float64, pos []bool, k int) *Hist {
	s := NewSampler(k)
	for _, x := range score {
		s.Add(x)
	}
	h := NewHist(s.Bins())
	for i, x := range score {
		h.Add(x, pos[i])
	}
	return h
}

func negate(score []float64, pos []bool) ([]float64, []bool) {
	neg, notPos := make([]float64, len(score)), make([]bool, len(pos))
	for i := range score {
		neg[i], notPos[i] = -score[i], !pos[i]
	}
	return neg, notPos
}

// testScores are scores of n examples, a third of them positive, shaped to
// be hard for a histogram: heavy tails, ties, point masses, values that
// differ in their last bits, NaN and infinities.
func testScores(n int, seed uint64) map[string]func() ([]float64, []bool) {
	gen := func(f func(r *rand.Rand, pos bool) float64, rate float64) func() ([]float64, []bool) {
		return func() ([]float64, []bool) {
			r := rand.New(rand.NewPCG(seed, 7))
			score, pos := make([]float64, n), make([]bool, n)
			for i := range score {
				pos[i] = r.Float64() < rate
				score[i] = f(r, pos[i])
			}
			return score, pos
		}
	}
	shift := func(pos bool, d float64) float64 {
		if pos {
			return d
		}
		return 0
	}
	return map[string]func() ([]float64, []bool){
		"normal": gen(func(r *rand.Rand, pos bool) float64 { return r.NormFloat64() + shift(pos, 0.5) }, 0.3),
		"cauchy": gen(func(r *rand.Rand, pos bool) float64 {
			return math.Tan(math.Pi*(r.Float64()-0.5)) + shift(pos, 1)
		}, 0.3),
		"lognormal sigma 6": gen(func(r *rand.Rand, pos bool) float64 {
			return math.Exp(6*r.NormFloat64() + shift(pos, 2))
		}, 0.3),
		"integers (ties)": gen(func(r *rand.Rand, pos bool) float64 {
			return float64(min(r.IntN(4), r.IntN(6)) + int(shift(pos, 1)))
		}, 0.3),
		"point mass and tail": gen(func(r *rand.Rand, pos bool) float64 {
			if r.Float64() < 0.4 {
				return 0
			}
			return r.ExpFloat64() * (1 + shift(pos, 1))
		}, 0.3),
		"last bits": gen(func(r *rand.Rand, pos bool) float64 {
			return 1 + 1e-13*(r.NormFloat64()+shift(pos, 0.7))
		}, 0.3),
		"rare positives":      gen(func(r *rand.Rand, pos bool) float64 { return r.NormFloat64() + shift(pos, 1.5) }, 0.01),
		"very rare positives": gen(func(r *rand.Rand, pos bool) float64 { return r.NormFloat64() + shift(pos, 3) }, 0.001),
		"NaN and infinities": gen(func(r *rand.Rand, pos bool) float64 {
			switch u := r.Float64(); {
			case u < 0.05:
				return math.NaN()
			case u < 0.07:
				return math.Inf(1)
			case u < 0.08:
				return math.Inf(-1)
			}
			return r.NormFloat64() + shift(pos, 0.3)
		}, 0.3),
	}
}

// TestHistExactWhenSmall: with no more values than the sample, every value
// has its own bin and the results are those of the exact functions.
func TestHistExactWhenSmall(t *testing.T) {
	for name, gen := range testScores(3000, 1) {
		score, pos := gen()
		h := streamed(score, pos, 4096)
		neg, notPos := negate(score, pos)
		for _, c := range []struct {
			what       string
			got, exact float64
		}{
			{"AUROC", h.AUROC(), AUROC(score, pos)},
			{"AP", h.AveragePrecision(), AveragePrecision(score, pos)},
			{"AP-neg", h.AveragePrecisionNeg(), AveragePrecision(neg, notPos)},
		} {
			if math.Abs(c.got-c.exact) > 1e-12 {
				t.Errorf("%s: %s %.15g, exact %.15g", name, c.what, c.got, c.exact)
			}
		}
	}
}

// TestHistAgainstExact compares the binned results with the exact ones on
// 200,000 values, six times the sample: they must agree to 1e-5 (observed:
// about 1e-6).
func TestHistAgainstExact(t *testing.T) {
	n := 200_000
	if testing.Short() {
		n = 100_000
	}
	worst := 0.0
	for name, gen := range testScores(n, 2) {
		score, pos := gen()
		h := streamed(score, pos, 0)
		neg, notPos := negate(score, pos)
		for _, c := range []struct {
			what       string
			got, exact float64
		}{
			{"AUROC", h.AUROC(), AUROC(score, pos)},
			{"AP", h.AveragePrecision(), AveragePrecision(score, pos)},
			{"AP-neg", h.AveragePrecisionNeg(), AveragePrecision(neg, notPos)},
		} {
			d := math.Abs(c.got - c.exact)
			worst = max(worst, d)
			if d > 1e-5 {
				t.Errorf("%s: %s %.6f, exact %.6f (off by %.2g)", name, c.what, c.got, c.exact, d)
			}
		}
	}
	t.Logf("%d values, largest difference from the exact results: %.2g", n, worst)
}

// exactRateByQuantile sorts (stably) and counts, as the report used to.
func exactRateByQuantile(score []float64, pos []bool, q int) []float64 {
	idx := make([]int, 0, len(score))
	for i, x := range score {
		if !math.IsNaN(x) {
			idx = append(idx, i)
		}
	}
	sort.SliceStable(idx, func(a, b int) bool { return score[idx[a]] < score[idx[b]] })
	out := make([]float64, q)
	for d := range q {
		lo, hi := d*len(idx)/q, (d+1)*len(idx)/q
		k := 0
		for _, i := range idx[lo:hi] {
			if pos[i] {
				k++
			}
		}
		if hi > lo {
			out[d] = float64(k) / float64(hi-lo)
		}
	}
	return out
}

func TestPosRateByQuantile(t *testing.T) {
	// Exact without ties when every value is sampled, even for fewer values
	// than groups.
	for _, n := range []int{0, 3, 10, 20, 997, 5000} {
		r := rand.New(rand.NewPCG(uint64(n), 3))
		score, pos := make([]float64, n), make([]bool, n)
		for i := range score {
			score[i] = r.NormFloat64()
			pos[i] = r.Float64() < 0.2+0.5*math.Max(0, score[i])
		}
		got, want := streamed(score, pos, 8192).PosRateByQuantile(10), exactRateByQuantile(score, pos, 10)
		for d := range got {
			if math.Abs(got[d]-want[d]) > 1e-12 {
				t.Fatalf("n %d: %v, exact %v", n, got, want)
			}
		}
	}
	// Binned: off by a bin's share at the boundaries at most.
	for name, gen := range testScores(200_000, 3) {
		score, pos := gen()
		if name == "integers (ties)" || name == "point mass and tail" {
			continue // a tie across a boundary is split in proportion, not by order
		}
		got, want := streamed(score, pos, 0).PosRateByQuantile(10), exactRateByQuantile(score, pos, 10)
		for d := range got {
			if math.Abs(got[d]-want[d]) > 1e-3 {
				t.Errorf("%s: decile %d: %.5f, exact %.5f", name, d+1, got[d], want[d])
			}
		}
	}
}

func TestSamplerDeterministic(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 5))
	xs := make([]float64, 100_000)
	for i := range xs {
		xs[i] = r.Float64()
	}
	a, b := NewSampler(1000), NewSampler(1000)
	for _, x := range xs {
		a.Add(x)
		b.Add(x)
	}
	ea, eb := a.Bins().edges, b.Bins().edges
	if !slices.Equal(ea, eb) || !slices.IsSorted(ea) || len(ea) <= 1000 {
		t.Fatalf("two samples of one stream differ, or are not sorted (%d values)", len(ea))
	}
	// The ends are finer: the lowest values picked are the lowest of all.
	sorted := slices.Sorted(slices.Values(xs))
	if !slices.Equal(ea[:EndSize], sorted[:EndSize]) || !slices.Equal(ea[len(ea)-EndSize:], sorted[len(sorted)-EndSize:]) {
		t.Fatal("the lowest and highest values are not all picked")
	}
	// Uniform: about a tenth of the sample below 0.1.
	below := 0
	for _, x := range a.vals {
		if x < 0.1 {
			below++
		}
	}
	if below < 60 || below > 140 {
		t.Fatalf("%d of 1000 sampled values below 0.1", below)
	}
}

func TestWelchMoments(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 9))
	var a, b []float64
	var ma, mb score.Moments
	for range 10_000 {
		x, y := 10+r.NormFloat64(), 10.03+2*r.NormFloat64()
		if r.IntN(50) == 0 {
			x = math.NaN()
		} else {
			ma.Add(x) // the finite values, as WelchT takes them
		}
		a, b = append(a, x), append(b, y)
		mb.Add(y)
	}
	got, want := WelchMoments(ma, mb), WelchT(a, b)
	for _, c := range [][2]float64{{got.MeanA, want.MeanA}, {got.MeanB, want.MeanB}, {got.T, want.T}, {got.DF, want.DF}, {got.P, want.P}} {
		if math.Abs(c[0]-c[1]) > 1e-8*math.Max(1, math.Abs(c[1])) {
			t.Fatalf("streamed %+v, slices %+v", got, want)
		}
	}
	var none score.Moments
	if w := WelchMoments(none, mb); !math.IsNaN(w.MeanA) || !math.IsNaN(w.T) {
		t.Fatalf("empty group: %+v", w)
	}
}

func TestBinsOf(t *testing.T) {
	r := rand.New(rand.NewPCG(2, 2))
	for _, m := range []int{0, 1, 2, 63, 64, 65, 200, 4097} {
		edges := make([]float64, 0, m)
		for len(edges) < m {
			edges = append(edges, math.Round(r.NormFloat64()*1e4))
			slices.Sort(edges)
			edges = slices.Compact(edges)
		}
		b := newBins(edges)
		probe := []float64{math.Inf(-1), math.Inf(1), -1e9, 1e9}
		for _, e := range edges {
			probe = append(probe, e, math.Nextafter(e, math.Inf(1)), math.Nextafter(e, math.Inf(-1)), e+0.5)
		}
		for _, x := range probe {
			i := sort.SearchFloat64s(edges, x)
			want := 2 * i
			if i < m && edges[i] == x {
				want++
			}
			if got := b.Of(x); got != want {
				t.Fatalf("%d edges: bin of %g is %d, want %d", m, x, got, want)
			}
		}
	}
}

func BenchmarkHistAdd(b *testing.B) {
	r := rand.New(rand.NewPCG(1, 2))
	xs := make([]float64, 1<<20)
	s := NewSampler(0)
	for i := range xs {
		xs[i] = r.NormFloat64()
		s.Add(xs[i])
	}
	h := NewHist(s.Bins())
	b.ResetTimer()
	for i := range b.N {
		h.Add(xs[i&(len(xs)-1)], i&1 == 0)
	}
}

func BenchmarkSamplerAdd(b *testing.B) {
	r := rand.New(rand.NewPCG(1, 2))
	xs := make([]float64, 1<<20)
	for i := range xs {
		xs[i] = r.NormFloat64()
	}
	s := NewSampler(0)
	b.ResetTimer()
	for i := range b.N {
		s.Add(xs[i&(len(xs)-1)])
	}
}

// TestEndHeap: either end keeps the EndSize highest (sign 1) or lowest
// (sign -1) of the values offered, ties included.
func TestEndHeap(t *testing.T) {
	r := rand.New(rand.NewPCG(4, 4))
	for _, n := range []int{0, 1, EndSize - 1, EndSize, 5 * EndSize} {
		xs := make([]float64, n)
		for i := range xs {
			xs[i] = float64(r.IntN(n/2 + 1)) // ties
		}
		for _, sign := range []float64{1, -1} {
			h := endHeap{sign: sign}
			for _, x := range xs {
				h.offer(x)
			}
			want := slices.Clone(xs)
			slices.SortFunc(want, func(a, b float64) int { return cmp.Compare(sign*b, sign*a) })
			want = want[:min(n, EndSize)]
			got := slices.Clone(h.vals)
			slices.SortFunc(got, func(a, b float64) int { return cmp.Compare(sign*b, sign*a) })
			if !slices.Equal(got, want) {
				t.Fatalf("n %d, sign %v: kept %d values, want %d (first %v, want %v)", n, sign, len(got), len(want), got[:min(3, len(got))], want[:min(3, len(want))])
			}
		}
	}
}
