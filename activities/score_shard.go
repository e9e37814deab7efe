package activities

import (
	"context"
	"fmt"
	"runtime"
	"slices"
	"sort"
	"sync"
	"time"

	"go.temporal.io/sdk/activity"
	"gocloud.dev/blob"

	"github.com/vogscore/vog/dataset"
	"github.com/vogscore/vog/engine"
	"github.com/vogscore/vog/internal/fault"
	"github.com/vogscore/vog/score"
	"github.com/vogscore/vog/shard"
	"github.com/vogscore/vog/storage"
	"github.com/vogscore/vog/window"
)

// ScoreShard computes VoG for every example of one shard: it streams the
// shard's examples in batches, takes the input gradient of each checkpoint,
// folds them into per-pixel moments, and writes the shard's rows and class
// moments. Only scalars leave the worker. A shard whose outputs exist is not
// computed again.
func (a *Activities) ScoreShard(ctx context.Context, in ShardInput) (ShardResult, error) {
	res, err := a.scoreShard(ctx, in)
	return res, classify(err)
}

func (a *Activities) scoreShard(ctx context.Context, in ShardInput) (ShardResult, error) {
	start := time.Now()
	job, out, r, err := a.openShard(ctx, in.Ref, in.Shard)
	if err != nil {
		return ShardResult{}, err
	}
	defer out.Close()
	res := ShardResult{Shard: in.Shard, Examples: r.Len()}
	if done, err := shardDone(ctx, out, in.Shard, r); err != nil || done {
		res.Reused = done
		return res, err
	}
	k := len(job.Checkpoints)
	rows, models, reader, err := a.shardInputs(ctx, job, out, r, append(span(0, k), windowLasts(job)...)...)
	if err != nil {
		return res, err
	}
	s := newScorer(job, models[:k], 0, models[k:])
	var scores shardScores
	err = foldBatches(ctx, job, reader, rows, s, func(batch []storage.IndexRow) error {
		scores.addBatch(s, batch)
		return nil
	})
	if err != nil {
		return res, err
	}
	if err := writeShard(ctx, out, in.Shard, scores); err != nil {
		return res, err
	}
	res.Seconds = time.Since(start).Seconds()
	return res, nil
}

// shardInputs reads a shard's slice of the index, the job's checkpoints of
// the given indices and its dataset reader (both cached by the worker).
func (a *Activities) shardInputs(ctx context.Context, job *Job, out *blob.Bucket, r shard.Range, checkpoints ...int) ([]storage.IndexRow, []*engine.Model, dataset.Reader, error) {
	rows, err := storage.ReadParquet[storage.IndexRow](ctx, out, storage.IndexKey, r.Start, r.Len())
	if err != nil {
		return nil, nil, nil, err
	}
	models, err := a.loadModels(ctx, job, checkpoints...)
	if err != nil {
		return nil, nil, nil, err
	}
	reader, err := a.openReader(ctx, job)
	if err != nil {
		return nil, nil, nil, err
	}
	return rows, models, reader, nil
}

// shardDone reports whether shard i's outputs are present and verified: the
// class file, written last, exists, and the rows file holds the shard's
// rows. Outputs that fail the check are removed, to be computed again.
func shardDone(ctx context.Context, out *blob.Bucket, i int, r shard.Range) (bool, error) {
	done, err := storage.Exists(ctx, out, storage.ShardClassesKey(i))
	if err != nil || !done {
		return false, err
	}
	n, err := storage.ParquetRows(ctx, out, storage.ShardRowsKey(i))
	if err == nil && n == r.Len() {
		return true, nil
	}
	activity.GetLogger(ctx).Warn("recomputing a shard whose output does not verify", "shard", i, "rows", n, "want", r.Len(), "error", err)
	if err := out.Delete(ctx, storage.ShardClassesKey(i)); err != nil {
		return false, fmt.Errorf("remove %s: %w", storage.ShardClassesKey(i), err)
	}
	return false, nil
}

// scorer folds the input gradients of a set of checkpoints (all of the
// job's, or one group) into per-example pixel moments for every window, and
// keeps what each checkpoint's logits say of each example.
type scorer struct {
	job     *Job
	windows []window.Window
	// models[j] is checkpoint first+j of the job.
	models []*engine.Model
	first  int
	// lasts[w] is window w's last checkpoint: it predicts pred, and the
	// target under --label predicted.
	lasts    []*engine.Model
	nclasses int

	// Per window w: targets[w][i], preds[w][i] (-1 where the window's last
	// checkpoint is not among models), moments[w][i], gradNorms[w][i][j].
	targets   [][]int64
	preds     [][]int32
	moments   [][]*score.PixelMoments
	gradNorms [][][]float64
	// perCkpt[i][j] is what checkpoint first+j's logits say of example i.
	perCkpt [][]score.Logits
	logits  []float32
	// passes are the buffers one checkpoint's engine passes write: two, so
	// that on a GPU the next checkpoint computes while this one is folded.
	passes [2]passOut
	done   int64
}

// passOut is what one checkpoint's engine passes give for a batch: its
// logits, and per window w its gradients, or those of window shared[w]
// when the targets are the same (-1: the checkpoint is outside w).
type passOut struct {
	logits []float32
	grads  [][]float32
	shared []int
}

func newScorer(job *Job, models []*engine.Model, first int, lasts []*engine.Model) *scorer {
	return &scorer{job: job, windows: job.Windows, models: models, first: first, lasts: lasts, nclasses: lasts[0].Classes()}
}

// windowLasts returns the checkpoint index of each window's last checkpoint.
func windowLasts(job *Job) []int {
	idx := make([]int, len(job.Windows))
	for w, win := range job.Windows {
		idx[w] = win.Last()
	}
	return idx
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
}

// fold computes the batch's targets per window, its moments over s.models,
// the logits statistics of every checkpoint, and the predictions of each
// window's last checkpoint where it is among s.models.
func (s *scorer) fold(ctx context.Context, rows []storage.IndexRow, x *engine.Batch) error {
	n, k := len(rows), s.nclasses
	// A staged batch is on a device: its passes overlap the CPU's folds.
	onDevice := x.Staged != nil
	buffers := 1
	if onDevice {
		buffers = 2 // see overlap
	}
	s.reset(n, buffers)
	for _, row := range rows {
		if s.job.Spec.Label == LabelTrue && (row.Label < 0 || int(row.Label) >= k) {
			return fault.Mark(dataset.ErrBadData, "example %d (%s): label %d outside the %d outputs of checkpoint %s",
				row.Index, row.ExampleID, row.Label, k, s.lasts[0].Name())
		}
	}
	for w := range s.windows {
		if s.job.Spec.Label == LabelTrue {
			for i, row := range rows {
				s.targets[w][i] = int64(row.Label)
			}
			continue
		}
		// --label predicted: the class the window's last checkpoint predicts.
		if err := s.lasts[w].Logits(x, s.logits); err != nil {
			return err
		}
		for i := range n {
			s.targets[w][i] = int64(argmax(s.logits[i*k : (i+1)*k]))
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
// while checkpoint j's gradients are folded, in order, so the GPU does not
// wait for the moments; their sums are those of the serial loop.
func (s *scorer) overlap(ctx context.Context, rows []storage.IndexRow, pass func(int, *passOut) error) error {
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

// pass runs checkpoint j's engine passes over x into out: one gradient
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
			if err := m.Gradients(x, s.targets[w], out.logits, out.grads[w]); err != nil {
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

// absorb folds checkpoint j's passes into the batch's moments, gradient
// norms, predictions and logits statistics. With parallel set it splits the
// examples over the CPUs (each example's sums stay in order).
func (s *scorer) absorb(ctx context.Context, j int, rows []storage.IndexRow, out *passOut, parallel bool) {
	n, pixels, k, ck := len(rows), s.job.Shape.Pixels(), s.nclasses, s.first+j
	for w, win := range s.windows {
		if out.shared[w] < 0 {
			continue
		}
		grads := out.grads[out.shared[w]]
		fold := func(lo, hi int) {
			for i := lo; i < hi; i++ {
				g := grads[i*pixels : (i+1)*pixels]
				s.moments[w][i].Add(g)
				s.gradNorms[w][i] = append(s.gradNorms[w][i], score.L2(g))
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
	activity.RecordHeartbeat(ctx, ShardProgress{Done: s.done})
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

// shardScores collects a shard's rows and its exact class moments.
type shardScores struct {
	rows    []storage.ScoreRow
	classes map[classKey]*score.ClassMoments
}

func (o *shardScores) add(row storage.IndexRow, win string, target, pred int32, vog float64, x score.Scores) {
	o.rows = append(o.rows, storage.ScoreRow{
		Index:       row.Index,
		ExampleID:   row.ExampleID,
		Label:       row.Label,
		Pred:        pred,
		Class:       target,
		Window:      win,
		VoG:         vog,
		Loss:        x.Loss,
		ConfMean:    x.ConfMean,
		ConfStd:     x.ConfStd,
		MarginMean:  x.MarginMean,
		EL2N:        x.EL2N,
		Forgetting:  x.Forgetting,
		GradNorm:    x.GradNorm,
		CorrectLast: x.CorrectLast,
	})
	if o.classes == nil {
		o.classes = map[classKey]*score.ClassMoments{}
	}
	key := classKey{win, target}
	cm := o.classes[key]
	if cm == nil {
		cm = &score.ClassMoments{}
		o.classes[key] = cm
	}
	cm.Add(vog)
}

// addBatch adds the rows of a folded batch, one per example and window.
func (o *shardScores) addBatch(s *scorer, batch []storage.IndexRow) {
	for i, row := range batch {
		for w, win := range s.windows {
			x := score.WindowScores(s.perCkpt[i][win.Lo:win.Hi], s.gradNorms[w][i])
			o.add(row, win.Name, int32(s.targets[w][i]), s.preds[w][i], s.moments[w][i].VoG(), x)
		}
	}
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

type batch struct {
	rows []storage.IndexRow
	in   *engine.Batch
	err  error
}

func (b batch) close() {
	if b.in != nil {
		b.in.Close()
	}
}

// prefetch decodes and stages batches on another goroutine, so that
// decoding the next batch, and copying it to the GPU, overlap computing the
// current one. The receiver closes each batch.
func prefetch(ctx context.Context, job *Job, r dataset.Reader, rows []storage.IndexRow, stage func([]float32, int) (*engine.Batch, error)) <-chan batch {
	ch := make(chan batch, 1)
	size := job.Spec.BatchSize
	go func() {
		defer close(ch)
		for start := 0; start < len(rows) && ctx.Err() == nil; start += size {
			b := batch{rows: rows[start:min(start+size, len(rows))]}
			x := make([]float32, len(b.rows)*job.Shape.Len())
			if b.err = r.Read(ctx, b.rows, x); b.err != nil {
				b.err = fmt.Errorf("--dataset %s: %w", job.Spec.Dataset.URL, b.err)
			} else {
				b.in, b.err = stage(x, len(b.rows))
			}
			select {
			case ch <- b:
			case <-ctx.Done():
				b.close()
				return
			}
			if b.err != nil {
				return
			}
		}
	}()
	return ch
}

// foldBatches streams rows through s in batches, decoding the next batch
// while the current one computes, and calls done after each batch.
func foldBatches(ctx context.Context, job *Job, reader dataset.Reader, rows []storage.IndexRow, s *scorer, done func([]storage.IndexRow) error) error {
	// libtorch keeps its OpenMP pool and caches per calling thread; letting
	// Go move this goroutine between threads cost 10-20% (docs/benchmarks.md).
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	ctx, cancel := context.WithCancel(ctx)
	batches := prefetch(ctx, job, reader, rows, s.lasts[0].Stage)
	defer func() {
		cancel() // stops the decoder if scoring fails
		for b := range batches {
			b.close() // frees device copies of batches never folded
		}
	}()
	for b := range batches {
		if b.err != nil {
			return b.err
		}
		err := s.fold(ctx, b.rows, b.in)
		b.close()
		if err != nil {
			return err
		}
		if err := done(b.rows); err != nil {
			return err
		}
		activity.RecordHeartbeat(ctx, ShardProgress{Done: s.done, Total: int64(len(rows))})
	}
	return ctx.Err()
}

// writeShard writes the shard's rows, then its class moments: the class
// file marks the shard complete.
func writeShard(ctx context.Context, out *blob.Bucket, i int, scores shardScores) error {
	if err := storage.WriteParquet(ctx, out, storage.ShardRowsKey(i), scores.rows); err != nil {
		return err
	}
	crow := make([]storage.ShardClassRow, 0, len(scores.classes))
	for c, m := range scores.classes {
		text, _ := m.MarshalText()
		crow = append(crow, storage.ShardClassRow{Window: c.window, Class: c.class, Moments: string(text)})
	}
	sort.Slice(crow, func(a, b int) bool {
		if crow[a].Window != crow[b].Window {
			return crow[a].Window < crow[b].Window
		}
		return crow[a].Class < crow[b].Class
	})
	return storage.WriteParquet(ctx, out, storage.ShardClassesKey(i), crow)
}
