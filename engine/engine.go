// Package engine computes what VoG needs from a checkpoint: logits, and the
// gradient of a chosen logit with respect to the input, averaged over colour
// channels.
//
// A Model wraps a Driver, the small interface that a backend implements (the
// libtorch library in engine/torch, the closed-form linear model in
// engine/linear). Model validates shapes and buffers, and names the
// checkpoint in every error, so drivers stay small.
package engine

import (
	"errors"
	"fmt"

	"github.com/vogscore/vog/internal/fault"
)

// Shape is the shape of one input example: channels, height, width.
type Shape struct{ C, H, W int }

// Len returns the number of values in one example.
func (s Shape) Len() int { return s.C * s.H * s.W }

// Pixels returns the number of values in one channel-averaged gradient map.
func (s Shape) Pixels() int { return s.H * s.W }

func (s Shape) String() string { return fmt.Sprintf("%dx%dx%d", s.C, s.H, s.W) }

// Driver is implemented by engine backends. Model calls it; users do not.
//
// x holds n examples of shape s, row-major NCHW float32. Drivers may assume
// that n > 0, that len(x) == n*s.Len(), that logits has room for n*classes
// values once classes is known, and that grads has room for n*s.Pixels().
type Driver interface {
	// Forward writes the logits of x into logits and returns the number of
	// classes. It must return an error, not panic, when the model rejects
	// the shape or logits is too small.
	Forward(x []float32, n int, s Shape, logits []float32) (classes int, err error)
	// Grad writes the logits of x, and for each example i the gradient of
	// logit targets[i] with respect to its input averaged over channels,
	// into grads ([n][H*W]). Parameters must not require gradients.
	Grad(x []float32, n int, s Shape, targets []int64, logits, grads []float32) (classes int, err error)
	// Close releases the model.
	Close() error
}

// ErrBadInput marks errors caused by the model's input or its checkpoint
// rather than by the machine: retrying will not help.
var ErrBadInput = errors.New("bad input")

// Model is a loaded checkpoint.
type Model struct {
	name    string
	driver  Driver
	shape   Shape
	classes int
}

// NewModel wraps d for inputs of the given shape. It runs one forward pass
// to check that the model accepts the shape and to learn its class count.
func NewModel(name string, d Driver, s Shape) (*Model, error) {
	if s.C <= 0 || s.H <= 0 || s.W <= 0 {
		return nil, fmt.Errorf("engine: %s: invalid input shape %v", name, s)
	}
	m := &Model{name: name, driver: d, shape: s}
	logits := make([]float32, 1<<16)
	classes, err := d.Forward(make([]float32, s.Len()), 1, s, logits)
	if err != nil {
		return nil, fault.Mark(ErrBadInput, "engine: checkpoint %s does not accept inputs of shape %v: %v", name, s, err)
	}
	if classes < 1 {
		return nil, fault.Mark(ErrBadInput, "engine: checkpoint %s: %d outputs", name, classes)
	}
	m.classes = classes
	return m, nil
}

// Name returns the checkpoint's name.
func (m *Model) Name() string { return m.name }

// Classes returns the number of logits the model outputs per example.
func (m *Model) Classes() int { return m.classes }

// Shape returns the input shape the model was loaded for.
func (m *Model) Shape() Shape { return m.shape }

func (m *Model) check(x []float32, n int, logits []float32) error {
	if n <= 0 || len(x) != n*m.shape.Len() {
		return fmt.Errorf("engine: %s: batch of %d values is not %d examples of %v", m.name, len(x), n, m.shape)
	}
	if len(logits) < n*m.classes {
		return fmt.Errorf("engine: %s: logits buffer holds %d values, need %d", m.name, len(logits), n*m.classes)
	}
	return nil
}

// Logits writes the logits of n examples in x into logits ([n][Classes()]).
func (m *Model) Logits(x []float32, n int, logits []float32) error {
	if err := m.check(x, n, logits); err != nil {
		return err
	}
	if _, err := m.driver.Forward(x, n, m.shape, logits); err != nil {
		return fmt.Errorf("engine: %s: forward: %w", m.name, err)
	}
	return nil
}

// Gradients writes the logits of n examples in x into logits, and the
// channel-averaged input gradient of logit targets[i] into grads[i*H*W:].
// A target outside [0, Classes()) is an error wrapping ErrBadInput.
func (m *Model) Gradients(x []float32, n int, targets []int64, logits, grads []float32) error {
	if err := m.check(x, n, logits); err != nil {
		return err
	}
	if len(targets) != n || len(grads) < n*m.shape.Pixels() {
		return fmt.Errorf("engine: %s: %d targets and %d gradient values for %d examples", m.name, len(targets), len(grads), n)
	}
	for i, t := range targets {
		if t < 0 || int(t) >= m.classes {
			return fault.Mark(ErrBadInput, "engine: %s: example %d of the batch: class %d outside the model's %d outputs", m.name, i, t, m.classes)
		}
	}
	if _, err := m.driver.Grad(x, n, m.shape, targets, logits, grads); err != nil {
		return fmt.Errorf("engine: %s: gradients: %w", m.name, err)
	}
	return nil
}

// Close releases the model.
func (m *Model) Close() error { return m.driver.Close() }

// Loader turns checkpoint bytes into a driver. Implementations must be safe
// for concurrent use.
type Loader interface {
	Load(data []byte, name string) (Driver, error)
}

// Load loads a checkpoint through l for inputs of shape s.
func Load(l Loader, data []byte, name string, s Shape) (*Model, error) {
	d, err := l.Load(data, name)
	if err != nil {
		return nil, fault.Mark(ErrBadInput, "engine: load checkpoint %s: %v", name, err)
	}
	m, err := NewModel(name, d, s)
	if err != nil {
		d.Close()
		return nil, err
	}
	return m, nil
}
