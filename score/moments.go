package score

import (
	"fmt"
	"math"
)

// Moments holds the count, mean and sum of squared deviations (M2) of a
// scalar, the state of Welford's algorithm. The zero value is empty.
type Moments struct {
	N    int64
	Mean float64
	M2   float64
}

// Add folds one observation into m (Welford's update).
func (m *Moments) Add(x float64) {
	m.N++
	d := x - m.Mean
	m.Mean += d / float64(m.N)
	m.M2 += d * (x - m.Mean)
}

// Merge folds the moments of a disjoint set of observations into m (Chan et
// al.'s parallel formula).
func (m *Moments) Merge(o Moments) {
	if o.N == 0 {
		return
	}
	if m.N == 0 {
		*m = o
		return
	}
	n := m.N + o.N
	d := o.Mean - m.Mean
	m.M2 += o.M2 + d*d*float64(m.N)*float64(o.N)/float64(n)
	m.Mean += d * float64(o.N) / float64(n)
	m.N = n
}

// Var returns the population variance, 0 for fewer than one observation.
func (m Moments) Var() float64 {
	if m.N == 0 {
		return 0
	}
	return math.Max(m.M2/float64(m.N), 0)
}

// Std returns the population standard deviation.
func (m Moments) Std() float64 { return math.Sqrt(m.Var()) }

// SampleVar returns the unbiased (n-1) variance, M2/(N-1), as Welch's
// t-test takes it; NaN for fewer than two observations.
func (m Moments) SampleVar() float64 {
	if m.N < 2 {
		return math.NaN()
	}
	return m.M2 / float64(m.N-1)
}

// Normalize returns the z-score of x within m: (x - mean) / std, or 0 when
// std is 0 (a class of one example, or of identical scores).
func (m Moments) Normalize(x float64) float64 { return ZScore(x, m.Mean, m.Std()) }

// ZScore returns (x - mean) / std, or 0 when std is 0.
func ZScore(x, mean, std float64) float64 {
	if std == 0 {
		return 0
	}
	return (x - mean) / std
}

// PixelMoments holds per-pixel moments of gradient maps over checkpoints.
// Every pixel has seen the same checkpoints, so the count is shared.
type PixelMoments struct {
	N    int64
	Mean []float64
	M2   []float64
}

// NewPixelMoments returns empty moments for maps of the given pixel count.
func NewPixelMoments(pixels int) *PixelMoments {
	return &PixelMoments{Mean: make([]float64, pixels), M2: make([]float64, pixels)}
}

// Reset empties p for reuse, keeping its buffers.
func (p *PixelMoments) Reset() {
	p.N = 0
	clear(p.Mean)
	clear(p.M2)
}

// Add folds one checkpoint's gradient map into p. The map must have one value
// per pixel.
func (p *PixelMoments) Add(s []float32) {
	p.N++
	inv := 1 / float64(p.N)
	mean := p.Mean
	m2 := p.M2[:len(mean)] // one bounds check for the loop
	s = s[:len(mean)]
	for i, v := range s {
		x := float64(v)
		d := x - mean[i]
		mean[i] += d * inv
		m2[i] += d * (x - mean[i])
	}
}

// Merge folds the moments of a disjoint set of checkpoints into p.
func (p *PixelMoments) Merge(o *PixelMoments) error {
	if len(o.Mean) != len(p.Mean) {
		return fmt.Errorf("score: merging moments of %d pixels into %d", len(o.Mean), len(p.Mean))
	}
	if o.N == 0 {
		return nil
	}
	if p.N == 0 {
		p.N = o.N
		copy(p.Mean, o.Mean)
		copy(p.M2, o.M2)
		return nil
	}
	n := p.N + o.N
	fa, fb := float64(p.N), float64(o.N)
	w := fb / float64(n)
	c := fa * fb / float64(n)
	for i := range p.Mean {
		d := o.Mean[i] - p.Mean[i]
		p.M2[i] += o.M2[i] + d*d*c
		p.Mean[i] += d * w
	}
	p.N = n
	return nil
}

// VoG returns the mean over pixels of the per-pixel population standard
// deviation: the Variance of Gradients score. It is 0 before any checkpoint.
func (p *PixelMoments) VoG() float64 {
	if p.N == 0 || len(p.M2) == 0 {
		return 0
	}
	inv := 1 / float64(p.N)
	var sum float64
	for _, m2 := range p.M2 {
		if m2 > 0 {
			sum += math.Sqrt(m2 * inv)
		}
	}
	return sum / float64(len(p.M2))
}
