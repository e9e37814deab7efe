// Package linear is an engine driver for linear classifiers, logits = W x + b,
// whose input gradients are known in closed form: the gradient of logit p is
// row p of W; of the softmax probability q_p, q_p (W_p - sum_c q_c W_c); of
// the loss -log q_p, sum_c q_c W_c - W_p. It lets workflow and pipeline
// tests check VoG exactly without libtorch.
//
// A checkpoint is JSON: {"shape": [C, H, W], "weight": [classes*C*H*W],
// "bias": [classes]}.
package linear

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"

	"github.com/vogscore/vog/checkpoint"
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

func (m *model) Grad(b *engine.Batch, s engine.Shape, t engine.Target, targets []int64, logits, grads []float32) (int, error) {
	k, err := m.Forward(b, s, logits)
	if err != nil {
		return 0, err
	}
	d, hw := s.Len(), s.Pixels()
	q := make([]float64, k)
	row := make([]float64, d)
	for i, p := range targets {
		// The gradient over the input, as a mix of W's rows: coef[c] W_c.
		coef := make([]float64, k)
		switch t {
		case engine.TargetLogit:
			coef[p] = 1
		case engine.TargetProb, engine.TargetLoss:
			softmax(logits[i*k:(i+1)*k], q)
			sign := q[p] // d q_p = q_p (W_p - sum q_c W_c)
			if t == engine.TargetLoss {
				sign = -1 // d(-log q_p) = -(W_p - sum q_c W_c)
			}
			for c := range k {
				coef[c] = -sign * q[c]
			}
			coef[p] += sign
		default:
			return 0, fmt.Errorf("target %v", t)
		}
		clear(row)
		for c := range k {
			w := m.c.Weight[c*d : (c+1)*d]
			for j := range row {
				row[j] += coef[c] * float64(w[j])
			}
		}
		g := grads[i*hw : (i+1)*hw]
		for px := range g {
			var sum float64
			for c := range s.C {
				sum += row[c*hw+px]
			}
			g[px] = float32(sum / float64(s.C))
		}
	}
	return k, nil
}

// softmax writes the softmax of logits into q.
func softmax(logits []float32, q []float64) {
	top := math.Inf(-1)
	for _, v := range logits {
		top = max(top, float64(v))
	}
	var z float64
	for c, v := range logits {
		q[c] = math.Exp(float64(v) - top)
		z += q[c]
	}
	for c := range q {
		q[c] /= z
	}
}

func (m *model) Close() error {
	m.closed = true
	return nil
}

// LoadWeights implements engine.WeightsLoader for linear models: module is
// a checkpoint giving the shape (its weights are replaced), weights holds
// "weight" ([classes, C*H*W] or [classes, C, H, W]) and "bias"
// ([classes]), float32, and nothing else.
func (Loader) LoadWeights(module []byte, weights []checkpoint.Tensor, name string) (engine.Driver, error) {
	var arch Checkpoint
	if err := json.Unmarshal(module, &arch); err != nil {
		return nil, fmt.Errorf("linear module: %w", err)
	}
	byName := map[string]checkpoint.Tensor{}
	for _, t := range weights {
		byName[t.Name] = t
	}
	for name := range byName {
		if name != "weight" && name != "bias" {
			return nil, fmt.Errorf("unexpected key %s", name)
		}
	}
	c := Checkpoint{Shape: arch.Shape}
	for _, key := range []string{"weight", "bias"} {
		t, ok := byName[key]
		if !ok {
			return nil, fmt.Errorf("missing key %s", key)
		}
		if t.DType != checkpoint.F32 {
			return nil, fmt.Errorf("%s: %v, want float32", key, t.DType)
		}
		v := make([]float32, len(t.Data)/4)
		for i := range v {
			v[i] = math.Float32frombits(binary.LittleEndian.Uint32(t.Data[4*i:]))
		}
		if key == "weight" {
			c.Weight = v
		} else {
			c.Bias = v
		}
	}
	return Loader{}.Load(c.Marshal(), name)
}
