// Package linear is an engine driver for linear classifiers, logits = W x + b,
// whose input gradients are known in closed form: the gradient of logit p is
// row p of W. It lets workflow and pipeline tests check VoG exactly without
// libtorch.
//
// A checkpoint is JSON: {"shape": [C, H, W], "weight": [classes*C*H*W],
// "bias": [classes]}.
package linear

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/vogscore/vog/engine"
)

// Checkpoint is the JSON form of a linear model.
type Checkpoint struct {
	Shape  [3]int    `json:"shape"`
	Weight []float32 `json:"weight"`
	Bias   []float32 `json:"bias"`
}

// Marshal returns the checkpoint's bytes.
func (c Checkpoint) Marshal() []byte {
	b, _ := json.Marshal(c) // cannot fail: plain numbers and slices
	return b
}

// Loader loads linear checkpoints.
type Loader struct{}

// Load implements engine.Loader.
func (Loader) Load(data []byte, name string) (engine.Driver, error) {
	var c Checkpoint
	if err := json.Unmarshal(data, &c); err != nil {
		return nil, fmt.Errorf("linear checkpoint: %w", err)
	}
	s := engine.Shape{C: c.Shape[0], H: c.Shape[1], W: c.Shape[2]}
	if len(c.Bias) == 0 || s.Len() == 0 || len(c.Weight) != len(c.Bias)*s.Len() {
		return nil, fmt.Errorf("linear checkpoint: weight of %d values does not fit %d classes of shape %v", len(c.Weight), len(c.Bias), s)
	}
	return &model{c: c, shape: s}, nil
}

type model struct {
	c      Checkpoint
	shape  engine.Shape
	closed bool
}

func (m *model) Forward(b *engine.Batch, s engine.Shape, logits []float32) (int, error) {
	x, n := b.X, b.N
	if m.closed {
		return 0, errors.New("model is closed")
	}
	if s != m.shape {
		return 0, fmt.Errorf("input shape %v, model takes %v", s, m.shape)
	}
	k, d := len(m.c.Bias), s.Len()
	if len(logits) < n*k {
		return 0, errors.New("logits buffer too small")
	}
	for i := range n {
		xi := x[i*d : (i+1)*d]
		for p := range k {
			w := m.c.Weight[p*d : (p+1)*d]
			sum := float64(m.c.Bias[p])
			for j, v := range xi {
				sum += float64(w[j]) * float64(v)
			}
			logits[i*k+p] = float32(sum)
		}
	}
	return k, nil
}

func (m *model) Grad(b *engine.Batch, s engine.Shape, targets []int64, logits, grads []float32) (int, error) {
	k, err := m.Forward(b, s, logits)
	if err != nil {
		return 0, err
	}
	d, hw := s.Len(), s.Pixels()
	for i, t := range targets {
		w := m.c.Weight[int(t)*d : int(t+1)*d]
		g := grads[i*hw : (i+1)*hw]
		for px := range g {
			var sum float32
			for c := range s.C {
				sum += w[c*hw+px]
			}
			g[px] = sum / float32(s.C)
		}
	}
	return k, nil
}

func (m *model) Close() error {
	m.closed = true
	return nil
}
