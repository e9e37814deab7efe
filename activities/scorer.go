package activities

import (
	"context"
	"fmt"
	"math"
	"runtime"
	"slices"
	"sync"

	"github.com/vogscore/vog/engine"
	"github.com/vogscore/vog/job"
	"github.com/vogscore/vog/score"
	"github.com/vogscore/vog/window"
)

// scorer folds the input gradients of a set of checkpoints (all of the
// job's, or one group) into per-example pixel moments for every window, and
// keeps what each checkpoint's logits say of each example.
type scorer struct {
	job     *job.Job
	windows []window.Window
	// models[j] is checkpoint first+j of the job.
	models []*engine.Model
	first  int
	// lasts[w] is window w's last checkpoint: it predicts pred, and the
	// target under --label predicted.
	lasts    []*engine.Model
	nclasses int
	// target is the scalar whose gradients are taken (--target).
	target engine.Target

	// Per window w: targets[w][i], preds[w][i] (-1 where the window's last
	// checkpoint is not among models), moments[w][i], gradNorms[w][i][j].
	targets   [][]int64
	preds     [][]int32
	moments   [][]*score.PixelMoments
	gradNorms [][][]float64
	// perCkpt[i][j] is what checkpoint first+j's logits say of example i.
	perCkpt [][]score.Logits
	// fails[i] is why example i of the batch cannot be scored (a
	// *job.ExampleError), or nil: it is left out of the rows.
	fails  []error
	logits []float32
	// passes are the buffers one checkpoint's engine passes write: two, so
	// that on a GPU the next checkpoint computes while this one is folded.
	passes [2]passOut
	// done counts the examples folded so far, of total in the shard (set
	// by foldBatches, so that every heartbeat carries it).
	done, total int64
	// beats, where set, carries the progress to the activity's
	// heartbeats.
	beats *beats
}

// passOut is what one checkpoint's engine passes give for a batch: its
// logits, and per window w its gradients, or those of window shared[w]
// when the targets are the same (-1: the checkpoint is outside w).
type passOut struct {
	logits []float32
	grads  [][]float32
	shared []int
}

func newScorer(j *job.Job, models []*engine.Model, first int, lasts []*engine.Model) *scorer {
	return &scorer{job: j, windows: j.Windows, models: models, first: first, lasts: lasts, nclasses: lasts[0].Classes(),
		target: j.Spec.EngineTarget()}
}

// reset sizes and empties the per-batch buffers for n examples, with the
// given number of pass buffers (two where passes and folds overlap).
func (s *scorer) reset(n, buffers int) {
	pixels, k, nw := s.job.Shape.Pixels(), s.nclasses, len(s.windows)
	s.targets = resize(s.targets, nw)
	s.preds = resize(s.preds, nw)
	s.moments = resize(s.moments, nw)
	s.gradNorms = resize(s.gradNorms, nw)
	s.logits = resize(s.logits, n*k)
	for p := range buffers {
		out := &s.passes[p]
		out.logits = resize(out.logits, n*k)
		out.grads = resize(out.grads, nw)
		out.shared = resize(out.shared, nw)
		for w := range nw {
			out.grads[w] = resize(out.grads[w], n*pixels)
		}
	}
	for w := range nw {
		s.targets[w] = resize(s.targets[w], n)
		s.preds[w] = resize(s.preds[w], n)
		s.gradNorms[w] = resize(s.gradNorms[w], n)
		for len(s.moments[w]) < n {
			s.moments[w] = append(s.moments[w], score.NewPixelMoments(pixels))
		}
		for i := range n {
			s.preds[w][i] = -1
			s.moments[w][i].Reset()
			s.gradNorms[w][i] = s.gradNorms[w][i][:0]
		}
	}
	s.perCkpt = resize(s.perCkpt, n)
	for i := range n {
		s.perCkpt[i] = s.perCkpt[i][:0]
	}
	s.fails = resize(s.fails, n)
}

// fold computes the batch's targets per window, its moments over s.models,
// the logits statistics of every checkpoint, and the predictions of each
// window's last checkpoint where it is among s.models. bad holds the
// examples the reader could not decode; fold adds those whose label the
// model lacks, and those whose logits or gradients are not finite at some
// checkpoint. Their moments are not computed, and other examples' are
// unaffected: in eval mode the engine computes each example alone.
func (s *scorer) fold(ctx context.Context, rows []job.IndexRow, x *engine.Batch, bad []error) error {
	n, k := len(rows), s.nclasses
	// A staged batch is on a device: its passes overlap the CPU's folds.
	onDevice := x.Staged != nil
	buffers := 1
	if onDevice {
		buffers = 2 // see overlap
	}
	s.reset(n, buffers)
	copy(s.fails, bad)
	for i, row := range rows {
		if s.fails[i] == nil && s.job.Spec.Label == job.LabelTrue && (row.Label < 0 || int(row.Label) >= k) {
			s.fails[i] = job.ExampleFailure(job.FailLabel, "example %d (%s): label %d outside the %d outputs of checkpoint %s",
				row.Index, row.ExampleID, row.Label, k, s.lasts[0].Name())
		}
	}
	for w := range s.windows {
		if s.job.Spec.Label == job.LabelTrue {
			for i, row := range rows {
				s.targets[w][i] = int64(row.Label)
				if s.fails[i] != nil {
					s.targets[w][i] = 0 // any class: the example is left out
				}
			}
			continue
		}
		// --label predicted: the class the window's last checkpoint predicts.
		if err := s.lasts[w].Logits(x, s.logits); err != nil {
			return err
		}
		for i, row := range rows {
			logits := s.logits[i*k : (i+1)*k]
			s.targets[w][i] = int64(argmax(logits))
			s.checkFinite(i, row, s.lasts[w], logits, 0)
		}
	}
	pass := func(j int, out *passOut) error {
		if err := s.pass(j, x, out); err != nil {
			return fmt.Errorf("batch from example %d (%s): %w", rows[0].Index, rows[0].ExampleID, err)
		}
		return nil
	}
	if !onDevice {
		// The engine computes on this machine's cores: one thing at a time.
		for j := range s.models {
			if err := pass(j, &s.passes[0]); err != nil {
				return err
			}
			s.absorb(ctx, j, rows, &s.passes[0], false)
		}
	} else if err := s.overlap(ctx, rows, pass); err != nil {
		return err
	}
	s.done += int64(n)
	return nil
}

// overlap runs the engine passes of checkpoint j+1 on another goroutine
// while checkpoint job's gradients are folded, in order, so the GPU does not
// wait for the moments; their sums are those of the serial loop.
func (s *scorer) overlap(ctx context.Context, rows []job.IndexRow, pass func(int, *passOut) error) error {
	type result struct {
		out *passOut
		err error
	}
	results := make(chan result, 1)
	free := make(chan *passOut, 2)
	free <- &s.passes[0]
	free <- &s.passes[1]
	go func() {
		defer close(results)
		for j := range s.models {
			out := <-free
			err := pass(j, out)
			results <- result{out, err}
			if err != nil {
				return
			}
		}
	}()
	j := 0
	for r := range results {
		if r.err != nil {
			return r.err
		}
		s.absorb(ctx, j, rows, r.out, true)
		free <- r.out
		j++
	}
	return nil
}

// pass runs checkpoint job's engine passes over x into out: one gradient
// pass per window that holds it (windows with the same targets share one),
// else a forward pass for its logits.
func (s *scorer) pass(j int, x *engine.Batch, out *passOut) error {
	m, ck := s.models[j], s.first+j
	inAny := false
	for w, win := range s.windows {
		out.shared[w] = -1
		if !win.Contains(ck) {
			continue
		}
		inAny = true
		out.shared[w] = w
		for v := range w {
			if s.windows[v].Contains(ck) && slices.Equal(s.targets[v], s.targets[w]) {
				out.shared[w] = v // the first such window computed its own
				break
			}
		}
		if out.shared[w] == w {
			if err := m.Gradients(x, s.target, s.targets[w], out.logits, out.grads[w]); err != nil {
				return err
			}
		}
	}
	// Logits do not depend on the target: any pass gives them, and a
	// checkpoint outside every window still needs one forward.
	if !inAny {
		return m.Logits(x, out.logits)
	}
	return nil
}

// absorb folds checkpoint job's passes into the batch's moments, gradient
// norms, predictions and logits statistics. With parallel set it splits the
// examples over the CPUs (each example's sums stay in order).
func (s *scorer) absorb(ctx context.Context, j int, rows []job.IndexRow, out *passOut, parallel bool) {
	n, pixels, k, ck := len(rows), s.job.Shape.Pixels(), s.nclasses, s.first+j
	for i, row := range rows {
		s.checkFinite(i, row, s.models[j], out.logits[i*k:(i+1)*k], 0)
	}
	for w, win := range s.windows {
		if out.shared[w] < 0 {
			continue
		}
		grads := out.grads[out.shared[w]]
		fold := func(lo, hi int) {
			for i := lo; i < hi; i++ {
				if s.fails[i] != nil {
					continue
				}
				g := grads[i*pixels : (i+1)*pixels]
				norm := score.L2(g) // not finite if any value is not
				if s.checkFinite(i, rows[i], s.models[j], nil, norm) {
					s.moments[w][i].Add(g)
					s.gradNorms[w][i] = append(s.gradNorms[w][i], norm)
				}
			}
		}
		if parallel {
			parallelRange(n, fold)
		} else {
			fold(0, n)
		}
		if ck == win.Last() {
			for i := range n {
				s.preds[w][i] = int32(argmax(out.logits[i*k : (i+1)*k]))
			}
		}
	}
	for i, row := range rows {
		s.perCkpt[i] = append(s.perCkpt[i], score.FromLogits(out.logits[i*k:(i+1)*k], int(row.Label)))
	}
	s.beats.set(s.progress())
}

// parallelRange calls f on GOMAXPROCS disjoint parts of [0, n) at once.
func parallelRange(n int, f func(lo, hi int)) {
	parts := min(runtime.GOMAXPROCS(0), n)
	var wg sync.WaitGroup
	for p := range parts {
		wg.Go(func() { f(p*n/parts, (p+1)*n/parts) })
	}
	wg.Wait()
}

func resize[T any](s []T, n int) []T {
	if cap(s) < n {
		return make([]T, n)
	}
	return s[:n]
}

func argmax(v []float32) int {
	best := 0
	for i, x := range v {
		if x > v[best] {
			best = i
		}
	}
	return best
}

// progress is the scorer's heartbeat.
func (s *scorer) progress() job.ShardProgress {
	p := job.ShardProgress{Done: s.done, Total: s.total}
	if len(s.models) < len(s.job.Checkpoints) {
		p.Groups = len(s.job.Groups())
	}
	return p
}

// checkFinite fails example i, unless it has failed already, where its
// logits, or the norm of its gradient, are not finite at checkpoint m. It
// reports whether the example is still good.
func (s *scorer) checkFinite(i int, row job.IndexRow, m *engine.Model, logits []float32, norm float64) bool {
	if s.fails[i] != nil {
		return false
	}
	what := ""
	if math.IsNaN(norm) || math.IsInf(norm, 0) {
		what = "input gradient"
	}
	for _, v := range logits {
		if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
			what = "logits"
			break
		}
	}
	if what == "" {
		return true
	}
	s.fails[i] = job.ExampleFailure(job.FailNonFinite, "example %d (%s): non-finite %s at checkpoint %s", row.Index, row.ExampleID, what, m.Name())
	return false
}
