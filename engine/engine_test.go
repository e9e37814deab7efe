package engine_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/vogscore/vog/engine"
	"github.com/vogscore/vog/engine/linear"
	"github.com/vogscore/vog/internal/testjob"
)

// TestModelChecksBatches: Model names the checkpoint and the mismatch for
// batches, buffers and targets that do not fit, before any driver runs.
func TestModelChecksBatches(t *testing.T) {
	s := engine.Shape{C: 1, H: 2, W: 3}
	ckpt := testjob.Linear(1, 4, s.H, s.W)[0]
	m, err := engine.Load(linear.Loader{}, ckpt.Marshal(), "epoch_1.pt", s)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if m.Classes() != 4 {
		t.Fatalf("classes %d, want 4", m.Classes())
	}
	x := make([]float32, 2*s.Len())
	if _, err := m.Stage(x[:5], 2); err == nil || !strings.Contains(err.Error(), "epoch_1.pt") {
		t.Errorf("5 values staged as 2 examples: %v", err)
	}
	b, err := m.Stage(x, 2)
	if err != nil {
		t.Fatal(err)
	}
	logits, grads := make([]float32, 8), make([]float32, 2*s.Pixels())
	if err := m.Gradients(b, engine.TargetLogit, []int64{0, 3}, logits, grads); err != nil {
		t.Fatal(err)
	}
	if err := m.Logits(b, logits[:7]); err == nil || !strings.Contains(err.Error(), "logits buffer holds 7 values, need 8") {
		t.Errorf("short logits: %v", err)
	}
	if err := m.Gradients(b, engine.TargetLogit, []int64{0}, logits, grads); err == nil {
		t.Error("one target for two examples: no error")
	}
	if err := m.Gradients(b, engine.TargetLogit, []int64{0, 4}, logits, grads); !errors.Is(err, engine.ErrBadInput) {
		t.Errorf("class 4 of 4: got %v, want ErrBadInput", err)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if err := b.Close(); err != nil {
		t.Errorf("closing a batch twice: %v", err)
	}
	if _, err := engine.Load(linear.Loader{}, ckpt.Marshal(), "epoch_1.pt", engine.Shape{C: 3, H: 2, W: 3}); !errors.Is(err, engine.ErrBadInput) {
		t.Errorf("wrong shape: got %v, want ErrBadInput", err)
	}
}
