package evaluate

import (
	"container/heap"
	"math"
	"math/bits"
	"math/rand/v2"
	"slices"

	"github.com/vogscore/vog/score"
)

// Streamed forms of AUROC, average precision and Welch's t-test, for more
// scores than memory holds: two passes over the scores, in memory that
// grows with the logarithm of their number at most.
//
//  1. A Sampler sees every score and picks values to split the scores at: a
//     uniform sample (SampleSize values), and, near either end, values at
//     ranks about geometrically spaced (EndSize per doubling of the rank).
//  2. Its Bins split the real line at the distinct picked values: each picked
//     value is a bin by itself, and so is each open interval between two
//     consecutive ones (2m+1 bins for m values, at least 2^16+1 for more
//     than 2^15 scores). A Hist counts positives and negatives per bin.
//
// The bins are quantiles of the data, so heavy tails and values that differ
// in their last bits only are resolved like any other (there is no min..max
// range to stretch), and a value that occurs often (a point mass, an integer
// score) is picked and has a bin of its own: its ties are exact. Only the
// scores inside one open interval (about n/2^15 of them in the bulk, fewer
// near the ends) are not told apart. AUROC counts such a bin as a tie, which
// is right on average over the orders within it: its error is at most half
// the fraction of (positive, negative) pairs that share an interval, of
// order 2^-15 in a contrived case where every interval holds its positives
// above its negatives. Average precision, which weighs the first ranks
// most, takes the positives of an interval as spread at random over it, and
// the ends, where a rank matters most, have the finest bins.
// TestHistAgainstExact measures the difference from AUROC and
// AveragePrecision on 200,000 scores (heavy tails, ties, point masses, 0.1%
// positives): about 1e-6 at most. With no more scores than SampleSize,
// every score has its own bin and the results are exact.
//
// WelchMoments gives Welch's t-test from running moments (score.Moments).

// SampleSize is the default number of values a Sampler keeps uniformly:
// 2^15.
const SampleSize = 1 << 15

// EndSize is the number of values a Sampler keeps at either end of each of
// its levels.
const EndSize = 1 << 10

// levels bounds the Sampler's levels: 2^levels * EndSize values are more
// than any stream holds.
const levels = 32

// Sampler picks the values that split a score into bins (Bins): a uniform
// random sample of k of them (reservoir sampling, Algorithm R) for the bulk,
// and, for the ends, where average precision weighs each example most, the
// EndSize highest and lowest values of the values added, of a random half of
// them, of a random quarter and so on: near either end the bins hold a
// number of values about proportional to their rank from that end, about
// one EndSize-th of it. Its generator has a fixed seed: the same stream gives
// the same bins. For n values it keeps about k + 2*EndSize*(log2(n/EndSize)+2).
type Sampler struct {
	k    int
	n    int64
	vals []float64
	ends [levels][2]endHeap // per level, the highest and lowest values
	rng  *rand.Rand
}

// NewSampler returns a Sampler of k uniformly sampled values (SampleSize
// where k <= 0).
func NewSampler(k int) *Sampler {
	if k <= 0 {
		k = SampleSize
	}
	s := &Sampler{k: k, rng: rand.New(rand.NewPCG(0x766f67, uint64(k)))}
	for l := range s.ends {
		s.ends[l][0].sign, s.ends[l][1].sign = 1, -1
	}
	return s
}

// Add offers x to the sample. NaN values are left out.
func (s *Sampler) Add(x float64) {
	if math.IsNaN(x) {
		return
	}
	s.n++
	if len(s.vals) < s.k {
		s.vals = append(s.vals, x)
	} else if j := s.rng.Int64N(s.n); j < int64(s.k) {
		s.vals[j] = x
	}
	// x belongs to level l with probability 2^-l, and to the levels below.
	top := min(bits.TrailingZeros64(s.rng.Uint64()), levels-1)
	for l := 0; l <= top; l++ {
		s.ends[l][0].offer(x)
		s.ends[l][1].offer(x)
	}
}

// Bins returns the bins split at the sampled values.
func (s *Sampler) Bins() *Bins {
	edges := slices.Clone(s.vals)
	for l := range s.ends {
		edges = append(edges, s.ends[l][0].vals...)
		edges = append(edges, s.ends[l][1].vals...)
	}
	slices.Sort(edges)
	return newBins(slices.Compact(edges))
}

// endHeap keeps the EndSize values of highest sign*x: a min-heap of
// sign*x (container/heap).
type endHeap struct {
	sign float64
	vals []float64
}

func (h *endHeap) offer(x float64) {
	if len(h.vals) < EndSize {
		heap.Push(h, x)
		return
	}
	if h.sign*x <= h.sign*h.vals[0] {
		return
	}
	h.vals[0] = x
	heap.Fix(h, 0)
}

func (h *endHeap) Len() int           { return len(h.vals) }
func (h *endHeap) Less(i, j int) bool { return h.sign*h.vals[i] < h.sign*h.vals[j] }
func (h *endHeap) Swap(i, j int)      { h.vals[i], h.vals[j] = h.vals[j], h.vals[i] }
func (h *endHeap) Push(x any)         { h.vals = append(h.vals, x.(float64)) }
func (h *endHeap) Pop() any {
	x := h.vals[len(h.vals)-1]
	h.vals = h.vals[:len(h.vals)-1]
	return x
}

// Bins are the bins of a Hist: for distinct values e_0 < ... < e_{m-1},
// bin 2i is the open interval between e_{i-1} and e_i (bin 0: below e_0,
// bin 2m: above e_{m-1}) and bin 2i+1 is e_i itself. Bins are in ascending
// order of value.
type Bins struct {
	edges []float64
	// fences holds every fenceStep-th edge: a search looks there first,
	// in a few KiB that stay in cache, then among fenceStep edges.
	fences []float64
}

const fenceStep = 64

func newBins(edges []float64) *Bins {
	b := &Bins{edges: edges}
	for i := 0; i < len(edges); i += fenceStep {
		b.fences = append(b.fences, edges[i])
	}
	return b
}

// Len returns the number of bins.
func (b *Bins) Len() int { return 2*len(b.edges) + 1 }

// Of returns the bin of x, which is not NaN.
func (b *Bins) Of(x float64) int {
	// j fences are below x: edges[(j-1)*fenceStep] < x <=
	// edges[j*fenceStep], so the edges below x end in that step.
	j := below(b.fences, x)
	lo := max(0, (j-1)*fenceStep)
	i := lo + below(b.edges[lo:min(len(b.edges), lo+fenceStep)], x) // the edges below x
	if i < len(b.edges) && b.edges[i] == x {
		return 2*i + 1
	}
	return 2 * i
}

// below returns the number of values of the sorted a that are below x
// (Khuong and Morin's lower bound: a loop of fixed length).
func below(a []float64, x float64) int {
	if len(a) == 0 {
		return 0
	}
	base, n := 0, len(a)
	for n > 1 {
		half := n / 2
		if a[base+half] < x {
			base += half
		}
		n -= half
	}
	if a[base] < x {
		base++
	}
	return base
}

// Hist counts the positives and negatives of a score per bin, up to
// MaxCount scores in all (4 bytes a count: 512 KiB for 2^16 bins).
type Hist struct {
	bins *Bins
	n    int64
	// counts holds bin i's negatives at 2i and positives at 2i+1, in one
	// cache line.
	counts []uint32
}

// MaxCount is the most scores a Hist counts.
const MaxCount = math.MaxUint32

// NewHist returns an empty Hist over b.
func NewHist(b *Bins) *Hist {
	return &Hist{bins: b, counts: make([]uint32, 2*b.Len())}
}

// Add counts score x of a positive (pos) or negative example. NaN scores
// are left out. It panics past MaxCount scores.
func (h *Hist) Add(x float64, pos bool) {
	if math.IsNaN(x) {
		return
	}
	if h.n++; h.n > MaxCount {
		panic("evaluate: more than MaxCount scores in one Hist")
	}
	i := 2 * h.bins.Of(x)
	if pos {
		i++
	}
	h.counts[i]++
}

// bin returns the positives and negatives of bin i.
func (h *Hist) bin(i int) (pos, neg uint32) { return h.counts[2*i+1], h.counts[2*i] }

// AUROC is AUROC of the counted scores, a bin counting as one tie.
func (h *Hist) AUROC() float64 {
	var np, nn, lower, sum float64 // lower: negatives in the bins below
	for i := range h.bins.Len() {
		pi, ni := h.bin(i)
		p, n := float64(pi), float64(ni)
		sum += p * (lower + n/2)
		lower += n
		np += p
		nn += n
	}
	if np == 0 || nn == 0 {
		return math.NaN()
	}
	return sum / (np * nn)
}

// AveragePrecision is AveragePrecision of the counted scores. A bin of
// one value is one threshold, as there; in a bin between two sampled values
// the positives are taken as spread at random among its values, each at its
// expected rank.
func (h *Hist) AveragePrecision() float64 { return h.ranked(true, false) }

// AveragePrecisionNeg is the average precision of the negatives ranked by
// ascending score: AveragePrecision(-score, !pos).
func (h *Hist) AveragePrecisionNeg() float64 { return h.ranked(false, true) }

// AveragePrecisionLow is the average precision of the positives ranked by
// ascending score: AveragePrecision(-score, pos).
func (h *Hist) AveragePrecisionLow() float64 { return h.ranked(false, false) }

// AveragePrecisionNegHigh is the average precision of the negatives ranked
// by descending score: AveragePrecision(score, !pos).
func (h *Hist) AveragePrecisionNegHigh() float64 { return h.ranked(true, true) }

// ranked is the average precision of the positives, or with neg of the
// negatives, ranked from the highest score (high) or from the lowest.
func (h *Hist) ranked(high, neg bool) float64 {
	m := h.bins.Len()
	return averagePrecision(m, func(k int) (uint32, uint32, bool) {
		i := k
		if high {
			i = m - 1 - k
		}
		p, n := h.bin(i)
		if neg {
			p, n = n, p
		}
		return p, n, i%2 == 1
	})
}

// averagePrecision walks n bins from the highest rank: bin(i) gives its
// positives, its negatives, and whether it holds one value.
func averagePrecision(n int, bin func(int) (pos, neg uint32, tie bool)) float64 {
	total := 0.0
	for i := range n {
		p, _, _ := bin(i)
		total += float64(p)
	}
	if total == 0 {
		return math.NaN()
	}
	var tp, seen, ap float64
	for i := range n {
		p, q, tie := bin(i)
		if p == 0 && q == 0 {
			continue
		}
		fp, size := float64(p), float64(p)+float64(q)
		if tie || p == 0 {
			ap += fp / total * ((tp + fp) / (seen + size))
		} else {
			// The j-th of p positives placed at random among size values
			// has expected rank j (size+1)/(p+1) in the bin.
			step := (size + 1) / (fp + 1)
			for j := 1.0; j <= fp; j++ {
				ap += (tp + j) / (seen + j*step) / total
			}
		}
		tp += fp
		seen += size
	}
	return ap
}

// PosRateByQuantile returns, for q groups of equal size by ascending score
// (group d holds ranks [d*n/q, (d+1)*n/q) of the n counted scores), the
// fraction of positives in each; 0 for an empty group. A bin that straddles
// two groups is split between them in proportion, as if its positives were
// spread evenly over it: exact where every value has a bin of its own, and
// otherwise off by at most one bin's share at each boundary.
func (h *Hist) PosRateByQuantile(q int) []float64 {
	n := h.n
	out := make([]float64, q)
	d := 0
	var start int64 // rank of the bin's first value
	for i := range h.bins.Len() {
		p, ng := h.bin(i)
		size := int64(p) + int64(ng)
		for size > 0 && d < q {
			lo, hi := int64(d)*n/int64(q), int64(d+1)*n/int64(q)
			overlap := min(hi, start+size) - max(lo, start)
			if overlap > 0 {
				out[d] += float64(p) * float64(overlap) / float64(size)
			}
			if start+size < hi {
				break // the bin ends inside group d
			}
			d++
		}
		start += size
	}
	for d := range q {
		lo, hi := int64(d)*n/int64(q), int64(d+1)*n/int64(q)
		if hi > lo {
			out[d] /= float64(hi - lo)
		}
	}
	return out
}

// WelchMoments is WelchT of two samples given by their moments
// (score.Moments of their finite values: WelchT leaves NaN and infinite
// values out).
func WelchMoments(a, b score.Moments) Welch {
	return welch(mean(a), a.SampleVar(), float64(a.N), mean(b), b.SampleVar(), float64(b.N))
}

// mean is m's mean, NaN for no values (as stat.Mean of nothing).
func mean(m score.Moments) float64 {
	if m.N == 0 {
		return math.NaN()
	}
	return m.Mean
}
