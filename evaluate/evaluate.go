// Package evaluate measures how well a score separates two groups of
// examples (noisy label or not, out-of-distribution or not): AUROC, average
// precision for either group, and Welch's t-test, exact over slices and
// streamed (stream.go). vog eval's whole measure is here: a truth file's
// flags (TruthSet), the two passes over a result's rows (Measure) and the
// table it prints (WriteTable). No I/O but through the readers it is
// given.
package evaluate

import (
	"math"
	"sort"

	"gonum.org/v1/gonum/stat"
	"gonum.org/v1/gonum/stat/distuv"
)

// AUROC returns the area under the ROC curve of score predicting pos: the
// probability that a positive scores above a negative, ties counting half
// (the Mann-Whitney statistic). It is NaN without both groups. NaN scores
// are left out.
func AUROC(score []float64, pos []bool) float64 {
	type pt struct {
		s   float64
		pos bool
	}
	var pts []pt
	for i, s := range score {
		if !math.IsNaN(s) {
			pts = append(pts, pt{s, pos[i]})
		}
	}
	sort.Slice(pts, func(i, j int) bool { return pts[i].s < pts[j].s })
	var np, nn, rankSum float64
	for i := 0; i < len(pts); {
		j := i
		for j < len(pts) && pts[j].s == pts[i].s {
			j++
		}
		rank := float64(i+j+1) / 2 // mean of ranks i+1..j
		for k := i; k < j; k++ {
			if pts[k].pos {
				np++
				rankSum += rank
			} else {
				nn++
			}
		}
		i = j
	}
	if np == 0 || nn == 0 {
		return math.NaN()
	}
	return (rankSum - np*(np+1)/2) / (np * nn)
}

// AveragePrecision returns the area under the precision-recall curve of
// score predicting pos, as average precision: the mean over positives of
// the precision at their score (tied scores form one threshold). NaN without
// positives; NaN scores are left out.
func AveragePrecision(score []float64, pos []bool) float64 {
	type pt struct {
		s   float64
		pos bool
	}
	var pts []pt
	total := 0.0
	for i, s := range score {
		if !math.IsNaN(s) {
			pts = append(pts, pt{s, pos[i]})
			if pos[i] {
				total++
			}
		}
	}
	if total == 0 {
		return math.NaN()
	}
	sort.Slice(pts, func(i, j int) bool { return pts[i].s > pts[j].s })
	var tp, seen, ap float64
	for i := 0; i < len(pts); {
		j := i
		var groupTP float64
		for j < len(pts) && pts[j].s == pts[i].s {
			if pts[j].pos {
				groupTP++
			}
			j++
		}
		tp += groupTP
		seen += float64(j - i)
		ap += groupTP / total * (tp / seen)
		i = j
	}
	return ap
}

// Welch is the result of Welch's t-test of the means of two samples.
type Welch struct {
	MeanA, MeanB float64
	T, DF, P     float64
}

// WelchT tests whether samples a and b have equal means without assuming
// equal variances; P is two-sided. NaN values are left out.
func WelchT(a, b []float64) Welch {
	a, b = finite(a), finite(b)
	ma, va := stat.MeanVariance(a, nil)
	mb, vb := stat.MeanVariance(b, nil)
	return welch(ma, va, float64(len(a)), mb, vb, float64(len(b)))
}

// welch is Welch's t-test from the means, unbiased variances and sizes of
// two samples.
func welch(ma, va, na, mb, vb, nb float64) Welch {
	sa, sb := va/na, vb/nb
	w := Welch{MeanA: ma, MeanB: mb, T: (ma - mb) / math.Sqrt(sa+sb)}
	w.DF = (sa + sb) * (sa + sb) / (sa*sa/(na-1) + sb*sb/(nb-1))
	w.P = 2 * distuv.StudentsT{Mu: 0, Sigma: 1, Nu: w.DF}.Survival(math.Abs(w.T))
	return w
}

func finite(xs []float64) []float64 {
	out := make([]float64, 0, len(xs))
	for _, x := range xs {
		if !math.IsNaN(x) && !math.IsInf(x, 0) {
			out = append(out, x)
		}
	}
	return out
}

// Ranks returns the ranks of xs, 1 for the lowest, ties sharing their mean
// rank.
func Ranks(xs []float64) []float64 {
	idx := make([]int, len(xs))
	for i := range idx {
		idx[i] = i
	}
	sort.SliceStable(idx, func(a, b int) bool { return xs[idx[a]] < xs[idx[b]] })
	r := make([]float64, len(xs))
	for i := 0; i < len(idx); {
		j := i
		for j < len(idx) && xs[idx[j]] == xs[idx[i]] {
			j++
		}
		for k := i; k < j; k++ {
			r[idx[k]] = float64(i+j+1) / 2
		}
		i = j
	}
	return r
}

// Spearman is Spearman's rank correlation of a and b: the Pearson
// correlation of their ranks.
func Spearman(a, b []float64) float64 { return stat.Correlation(Ranks(a), Ranks(b), nil) }
