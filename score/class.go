package score

import (
	"fmt"
	"math/big"
)

// exactPrec is enough bits to add any float64 values without rounding: their
// exponents span 2098 bits, and carries add log2(count) more.
const exactPrec = 2300

// ClassMoments accumulates the count, sum and sum of squares of the VoG
// scores of one class exactly, so that merging shards in any grouping or
// order gives bit-identical class statistics. (Chan's merge of float64
// moments is equal in exact arithmetic only; results would then change in
// their last bits with the shard size.) Each square is rounded to float64
// once, per example, which does not depend on the split either.
//
// The zero value is empty and ready to use.
type ClassMoments struct {
	n          int64
	sum, sumSq big.Float
}

func (c *ClassMoments) init() {
	if c.sum.Prec() == 0 {
		c.sum.SetPrec(exactPrec)
		c.sumSq.SetPrec(exactPrec)
	}
}

// Add adds one score.
func (c *ClassMoments) Add(x float64) {
	c.init()
	c.n++
	var v big.Float
	c.sum.Add(&c.sum, v.SetFloat64(x))
	c.sumSq.Add(&c.sumSq, v.SetFloat64(x*x))
}

// Merge adds the scores accumulated in o.
func (c *ClassMoments) Merge(o *ClassMoments) {
	c.init()
	c.n += o.n
	c.sum.Add(&c.sum, &o.sum)
	c.sumSq.Add(&c.sumSq, &o.sumSq)
}

// N returns the number of scores added.
func (c *ClassMoments) N() int64 { return c.n }

// Moments returns the class's count, mean and M2 (n times the population
// variance), each rounded once from the exact sums.
func (c *ClassMoments) Moments() Moments {
	if c.n == 0 {
		return Moments{}
	}
	n := new(big.Float).SetPrec(2 * exactPrec).SetInt64(c.n)
	mean := new(big.Float).SetPrec(2*exactPrec).Quo(&c.sum, n)
	// M2 = sumSq - sum^2 / n, computed at double precision of the sums.
	m2 := new(big.Float).SetPrec(2*exactPrec).Mul(&c.sum, &c.sum)
	m2.Quo(m2, n)
	m2.Sub(&c.sumSq, m2)
	mf, _ := mean.Float64()
	m2f, _ := m2.Float64()
	return Moments{N: c.n, Mean: mf, M2: max(m2f, 0)}
}

// MarshalText encodes c exactly, for storage between activities.
func (c *ClassMoments) MarshalText() ([]byte, error) {
	c.init()
	return fmt.Appendf(nil, "%d %s %s", c.n, c.sum.Text('p', 0), c.sumSq.Text('p', 0)), nil
}

// UnmarshalText decodes what MarshalText wrote.
func (c *ClassMoments) UnmarshalText(b []byte) error {
	var n int64
	var s, sq string
	if _, err := fmt.Sscanf(string(b), "%d %s %s", &n, &s, &sq); err != nil {
		return fmt.Errorf("score: class moments %q: %w", b, err)
	}
	*c = ClassMoments{n: n}
	c.init()
	if _, _, err := c.sum.Parse(s, 0); err != nil {
		return fmt.Errorf("score: class moments sum %q: %w", s, err)
	}
	if _, _, err := c.sumSq.Parse(sq, 0); err != nil {
		return fmt.Errorf("score: class moments sum of squares %q: %w", sq, err)
	}
	return nil
}
