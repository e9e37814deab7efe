package activities

import (
	"context"
	"fmt"
	"runtime"
	"sort"
	"time"

	"go.temporal.io/sdk/activity"
	"gocloud.dev/blob"

	"github.com/vogscore/vog/dataset"
	"github.com/vogscore/vog/engine"
	"github.com/vogscore/vog/internal/fault"
	"github.com/vogscore/vog/score"
	"github.com/vogscore/vog/shard"
	"github.com/vogscore/vog/storage"
)

// WindowAll names the window of every checkpoint.
const WindowAll = "all"

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
	rows, models, reader, err := a.shardInputs(ctx, job, out, r, span(0, len(job.Checkpoints))...)
	if err != nil {
		return res, err
	}
	s := newScorer(job, models, models[len(models)-1])
	var scores shardScores
	err = foldBatches(ctx, job, reader, rows, s, func(batch []storage.IndexRow) error {
		for i, row := range batch {
			scores.add(row, int32(s.targets[i]), s.preds[i], s.moments[i].VoG())
		}
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
// job's, or one group) into per-example pixel moments, batch by batch.
type scorer struct {
	job    *Job
	models []*engine.Model
	// last is the job's last checkpoint: it predicts pred, and the target
	// under --label predicted.
	last     *engine.Model
	nclasses int

	targets []int64
	preds   []int32 // -1 where last is not among models (true labels)
	logits  []float32
	grads   []float32
	moments []*score.PixelMoments
	done    int64
}

func newScorer(job *Job, models []*engine.Model, last *engine.Model) *scorer {
	return &scorer{job: job, models: models, last: last, nclasses: last.Classes()}
}

// fold computes the batch's targets, its moments over s.models, and, where
// it can, the last checkpoint's predictions.
func (s *scorer) fold(ctx context.Context, rows []storage.IndexRow, x []float32) error {
	n, pixels, k := len(rows), s.job.Shape.Pixels(), s.nclasses
	s.targets = resize(s.targets, n)
	s.preds = resize(s.preds, n)
	s.logits = resize(s.logits, n*k)
	s.grads = resize(s.grads, n*pixels)
	for len(s.moments) < n {
		s.moments = append(s.moments, score.NewPixelMoments(pixels))
	}
	for i := range n {
		s.preds[i] = -1
		s.moments[i].Reset()
	}
	if s.job.Spec.Label == LabelPredicted {
		if err := s.last.Logits(x, n, s.logits); err != nil {
			return err
		}
		for i := range n {
			s.targets[i] = int64(argmax(s.logits[i*k : (i+1)*k]))
			s.preds[i] = int32(s.targets[i])
		}
	} else {
		for i, row := range rows {
			if row.Label < 0 || int(row.Label) >= k {
				return fault.Mark(dataset.ErrBadData, "example %d (%s): label %d outside the %d outputs of checkpoint %s",
					row.Index, row.ExampleID, row.Label, k, s.last.Name())
			}
			s.targets[i] = int64(row.Label)
		}
	}
	for _, m := range s.models {
		if err := m.Gradients(x, n, s.targets, s.logits, s.grads); err != nil {
			return fmt.Errorf("batch from example %d (%s): %w", rows[0].Index, rows[0].ExampleID, err)
		}
		for i := range n {
			s.moments[i].Add(s.grads[i*pixels : (i+1)*pixels])
		}
		if m == s.last {
			for i := range n {
				s.preds[i] = int32(argmax(s.logits[i*k : (i+1)*k]))
			}
		}
		activity.RecordHeartbeat(ctx, ShardProgress{Done: s.done})
	}
	s.done += int64(n)
	return nil
}

// shardScores collects a shard's rows and its exact class moments.
type shardScores struct {
	rows    []storage.ScoreRow
	classes map[int32]*score.ClassMoments
}

func (o *shardScores) add(row storage.IndexRow, target, pred int32, vog float64) {
	o.rows = append(o.rows, storage.ScoreRow{
		Index:     row.Index,
		ExampleID: row.ExampleID,
		Label:     row.Label,
		Pred:      pred,
		Class:     target,
		Window:    WindowAll,
		VoG:       vog,
	})
	if o.classes == nil {
		o.classes = map[int32]*score.ClassMoments{}
	}
	cm := o.classes[target]
	if cm == nil {
		cm = &score.ClassMoments{}
		o.classes[target] = cm
	}
	cm.Add(vog)
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
	x    []float32
	err  error
}

// prefetch decodes batches on another goroutine, so that decoding the next
// batch overlaps computing the current one.
func prefetch(ctx context.Context, r dataset.Reader, rows []storage.IndexRow, size int, shape engine.Shape) <-chan batch {
	ch := make(chan batch, 1)
	go func() {
		defer close(ch)
		for start := 0; start < len(rows); start += size {
			b := batch{rows: rows[start:min(start+size, len(rows))]}
			b.x = make([]float32, len(b.rows)*shape.Len())
			b.err = r.Read(ctx, b.rows, b.x)
			select {
			case ch <- b:
			case <-ctx.Done():
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
	defer cancel() // stops the decoder if scoring fails
	for b := range prefetch(ctx, reader, rows, job.Spec.BatchSize, job.Shape) {
		if b.err != nil {
			return fmt.Errorf("--dataset %s: %w", job.Spec.Dataset.URL, b.err)
		}
		if err := s.fold(ctx, b.rows, b.x); err != nil {
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
		crow = append(crow, storage.ShardClassRow{Window: WindowAll, Class: c, Moments: string(text)})
	}
	sort.Slice(crow, func(a, b int) bool { return crow[a].Class < crow[b].Class })
	return storage.WriteParquet(ctx, out, storage.ShardClassesKey(i), crow)
}
