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

	"github.com/vogscore/vog/checkpoint"
	"github.com/vogscore/vog/internal/fault"
	"github.com/vogscore/vog/job"
)

// Shape is job.Shape, the shape of one input example: the job contract
// names it, and the engine computes with it.
type Shape = job.Shape

// Batch is N examples of a model's input shape in X, row-major NCHW
// float32. A batch from Model.Stage may also hold the driver's own copy
// (on a GPU, say), which every checkpoint of the same Loader reads; a
// literal Batch{X: x, N: n} works with any model.
type Batch struct {
	X []float32
	N int
	// Staged is the driver's copy of X, or nil where drivers read X.
	Staged Staged
}

// Close releases the batch's staged copy.
func (b *Batch) Close() error {
	if b.Staged == nil {
		return nil
	}
	err := b.Staged.Close()
	b.Staged = nil
	return err
}

// Staged is a driver's copy of a batch.
type Staged interface{ Close() error }

// Target is job.Target, the scalar whose input gradient is taken; its
// values are also its codes in the engine library's C interface.
type Target = job.Target

// The targets.
const (
	TargetLogit = job.TargetLogit
	TargetProb  = job.TargetProb
	TargetLoss  = job.TargetLoss
)

// Targets names the targets, by value.
var Targets = job.Targets

// ParseTarget returns the target of a name in Targets; "" is the logit.
func ParseTarget(name string) (Target, error) { return job.ParseTarget(name) }

// Driver is implemented by engine backends. Model calls it; users do not.
//
// b holds b.N > 0 examples of shape s. Drivers may assume that logits has
// room for b.N*classes values once classes is known, and that grads has
// room for b.N*s.Pixels().
type Driver interface {
	// Forward writes the logits of b into logits and returns the number of
	// classes. It must return an error, not panic, when the model rejects
	// the shape or logits is too small.
	Forward(b *Batch, s Shape, logits []float32) (classes int, err error)
	// Grad writes the logits of b, and for each example i the gradient of
	// the scalar t of class targets[i] with respect to its input, averaged
	// over channels, into grads ([N][H*W]). Parameters must not require
	// gradients.
	Grad(b *Batch, s Shape, t Target, targets []int64, logits, grads []float32) (classes int, err error)
	// Close releases the model. Forward and Grad must return an error,
	// not crash, when called after Close; closing twice must be harmless.
	Close() error
}

// Stager is implemented by drivers that compute away from the host: a
// batch staged once is copied to the device once for all checkpoints, and
// staging the next batch overlaps the computation of the current one.
// Stage may return a nil Staged where reading x directly is best.
type Stager interface {
	Stage(x []float32, n int, s Shape) (Staged, error)
}

// ErrBadInput marks errors caused by the model's input or its checkpoint
// rather than by the machine: retrying will not help.
var ErrBadInput = errors.New("bad input")

// ErrBusy marks load errors that come from what else the process is doing
// (another job's models holding a process-wide setting), not from the
// checkpoint: another attempt, or another worker, may succeed.
var ErrBusy = errors.New("engine busy")

// Model is a loaded checkpoint.
type Model struct {
	name    string
	driver  Driver // nil once closed
	shape   Shape
	classes int
}

// ErrClosed is returned by a Model's methods after Close.
var ErrClosed = errors.New("engine: model is closed")

// NewModel wraps d for inputs of the given shape. It runs one forward pass
// to check that the model accepts the shape and to learn its class count.
func NewModel(name string, d Driver, s Shape) (*Model, error) {
	if s.C <= 0 || s.H <= 0 || s.W <= 0 {
		return nil, fmt.Errorf("engine: %s: invalid input shape %v", name, s)
	}
	m := &Model{name: name, driver: d, shape: s}
	logits := make([]float32, 1<<16)
	classes, err := d.Forward(&Batch{X: make([]float32, s.Len()), N: 1}, s, logits)
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

// Stage prepares n examples in x for every checkpoint of m's Loader: where
// the driver computes on a device, it copies them there once. x must not
// change until the batch is closed.
func (m *Model) Stage(x []float32, n int) (*Batch, error) {
	b := &Batch{X: x, N: n}
	if err := m.checkBatch(b); err != nil {
		return nil, err
	}
	if st, ok := m.driver.(Stager); ok {
		staged, err := st.Stage(x, n, m.shape)
		if err != nil {
			return nil, fmt.Errorf("engine: %s: stage a batch of %d: %w", m.name, n, err)
		}
		b.Staged = staged
	}
	return b, nil
}

func (m *Model) checkBatch(b *Batch) error {
	if m.driver == nil {
		return fmt.Errorf("%w: %s", ErrClosed, m.name)
	}
	if b.N <= 0 || len(b.X) != b.N*m.shape.Len() {
		return fmt.Errorf("engine: %s: batch of %d values is not %d examples of %v", m.name, len(b.X), b.N, m.shape)
	}
	return nil
}

func (m *Model) check(b *Batch, logits []float32) error {
	if err := m.checkBatch(b); err != nil {
		return err
	}
	if len(logits) < b.N*m.classes {
		return fmt.Errorf("engine: %s: logits buffer holds %d values, need %d", m.name, len(logits), b.N*m.classes)
	}
	return nil
}

// Logits writes the logits of the examples of b into logits ([N][Classes()]).
func (m *Model) Logits(b *Batch, logits []float32) error {
	if err := m.check(b, logits); err != nil {
		return err
	}
	if _, err := m.driver.Forward(b, m.shape, logits); err != nil {
		return fmt.Errorf("engine: %s: forward: %w", m.name, err)
	}
	return nil
}

// Gradients writes the logits of the examples of b into logits, and the
// channel-averaged input gradient of the scalar t of class targets[i] into
// grads[i*H*W:]. A class outside [0, Classes()) is an error wrapping
// ErrBadInput.
func (m *Model) Gradients(b *Batch, t Target, targets []int64, logits, grads []float32) error {
	if err := m.check(b, logits); err != nil {
		return err
	}
	if len(targets) != b.N || len(grads) < b.N*m.shape.Pixels() {
		return fmt.Errorf("engine: %s: %d targets and %d gradient values for %d examples", m.name, len(targets), len(grads), b.N)
	}
	for i, p := range targets {
		if p < 0 || int(p) >= m.classes {
			return fault.Mark(ErrBadInput, "engine: %s: example %d of the batch: class %d outside the model's %d outputs", m.name, i, p, m.classes)
		}
	}
	if t < 0 || int(t) >= len(Targets) {
		return fmt.Errorf("engine: %s: %v", m.name, t)
	}
	if _, err := m.driver.Grad(b, m.shape, t, targets, logits, grads); err != nil {
		return fmt.Errorf("engine: %s: gradients: %w", m.name, err)
	}
	return nil
}

// Close releases the model. Later calls of its methods return ErrClosed;
// closing again does nothing.
func (m *Model) Close() error {
	if m.driver == nil {
		return nil
	}
	d := m.driver
	m.driver = nil
	return d.Close()
}

// Loader turns checkpoint bytes into a driver. Implementations must be safe
// for concurrent use.
type Loader interface {
	Load(data []byte, name string) (Driver, error)
}

// Precisions are job.Precisions: a Loader loads float32 models unless it
// is a PrecisionLoader. Each one's index is its code in the engine
// library's C interface.
var Precisions = job.Precisions

// PrecisionLoader is a Loader that can load models in the other Precisions.
type PrecisionLoader interface {
	Loader
	WithPrecision(precision string) (Loader, error)
}

// WeightsLoader is a Loader that can also load a model from its
// architecture, a TorchScript module, and its weights, the named tensors
// of a state dict (package checkpoint), which replace the module's as
// load_state_dict(strict=True) does.
type WeightsLoader interface {
	Loader
	LoadWeights(module []byte, weights []checkpoint.Tensor, name string) (Driver, error)
}

// LoadWeights loads the weights of checkpoint name into module through l,
// for inputs of shape s. Keys or shapes that do not fit are ErrBadInput.
func LoadWeights(l Loader, module []byte, weights []checkpoint.Tensor, name string, s Shape) (*Model, error) {
	wl, ok := l.(WeightsLoader)
	if !ok {
		return nil, fault.Mark(ErrBadInput, "engine: %s: this engine loads TorchScript checkpoints only", name)
	}
	d, err := wl.LoadWeights(module, weights, name)
	return newLoaded(d, err, name, s)
}

// Load loads a checkpoint through l for inputs of shape s.
func Load(l Loader, data []byte, name string, s Shape) (*Model, error) {
	d, err := l.Load(data, name)
	return newLoaded(d, err, name, s)
}

// newLoaded wraps a driver just loaded, or classifies its error.
func newLoaded(d Driver, err error, name string, s Shape) (*Model, error) {
	if errors.Is(err, ErrBusy) {
		return nil, fmt.Errorf("engine: load checkpoint %s: %w", name, err)
	}
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
