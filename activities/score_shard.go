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
	job, err := a.job(ctx, in.Ref)
	if err != nil {
		return ShardResult{}, err
	}
	if in.Shard < 0 || in.Shard >= job.Shards {
		return ShardResult{}, badJob("shard %d of a job of %d shards", in.Shard, job.Shards)
	}
	r := shard.Nth(job.Examples, job.Spec.ShardSize, in.Shard)
	res := ShardResult{Shard: in.Shard, Examples: r.Len()}
	out, err := openOut(ctx, in.Ref.Out)
	if err != nil {
		return res, err
	}
	defer out.Close()
	if done, err := shardDone(ctx, out, in.Shard); err != nil || done {
		res.Reused = done
		return res, err
	}

	rows, err := storage.ReadParquet[storage.IndexRow](ctx, out, storage.IndexKey, r.Start, r.Len())
	if err != nil {
		return res, err
	}
	models, err := a.loadModels(ctx, job)
	if err != nil {
		return res, err
	}
	reader, err := a.openReader(ctx, job)
	if err != nil {
		return res, err
	}
	// libtorch keeps its OpenMP pool and caches per calling thread; letting
	// Go move this goroutine between threads cost 10-20% (docs/benchmarks.md).
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	s := newScorer(job, models)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel() // stops the decoder if scoring fails
	batches := prefetch(ctx, reader, rows, job.Spec.BatchSize, job.Shape)
	for b := range batches {
		if b.err != nil {
			return res, fmt.Errorf("--dataset %s: %w", job.Spec.Dataset.URL, b.err)
		}
		if err := s.score(ctx, b.rows, b.x); err != nil {
			return res, err
		}
		activity.RecordHeartbeat(ctx, ShardProgress{Done: int64(len(s.out)), Total: r.Len()})
	}
	if err := ctx.Err(); err != nil {
		return res, err
	}
	if err := writeShard(ctx, out, in.Shard, s.out, s.classes); err != nil {
		return res, err
	}
	res.Seconds = time.Since(start).Seconds()
	return res, nil
}

// shardDone reports whether shard i's outputs are all present. The class
// file is written last, so its presence means the rows are complete.
func shardDone(ctx context.Context, out *blob.Bucket, i int) (bool, error) {
	return storage.Exists(ctx, out, storage.ShardClassesKey(i))
}

// scorer turns batches into rows with the job's models.
type scorer struct {
	job      *Job
	models   []*engine.Model
	nclasses int

	targets []int64
	logits  []float32
	grads   []float32
	moments []*score.PixelMoments

	out     []storage.ScoreRow
	classes map[int32]*score.ClassMoments
}

func newScorer(job *Job, models []*engine.Model) *scorer {
	return &scorer{job: job, models: models, nclasses: models[0].Classes(), classes: map[int32]*score.ClassMoments{}}
}

func (s *scorer) score(ctx context.Context, rows []storage.IndexRow, x []float32) error {
	n, pixels, k := len(rows), s.job.Shape.Pixels(), s.nclasses
	s.targets = resize(s.targets, n)
	s.logits = resize(s.logits, n*k)
	s.grads = resize(s.grads, n*pixels)
	for len(s.moments) < n {
		s.moments = append(s.moments, score.NewPixelMoments(pixels))
	}
	last := s.models[len(s.models)-1]
	if s.job.Spec.Label == LabelPredicted {
		if err := last.Logits(x, n, s.logits); err != nil {
			return err
		}
		for i := range n {
			s.targets[i] = int64(argmax(s.logits[i*k : (i+1)*k]))
		}
	} else {
		for i, row := range rows {
			if row.Label < 0 || int(row.Label) >= k {
				return fault.Mark(dataset.ErrBadData, "example %d (%s): label %d outside the %d outputs of checkpoint %s",
					row.Index, row.ExampleID, row.Label, k, last.Name())
			}
			s.targets[i] = int64(row.Label)
		}
	}
	for i := range n {
		s.moments[i].Reset()
	}
	for _, m := range s.models {
		if err := m.Gradients(x, n, s.targets, s.logits, s.grads); err != nil {
			return fmt.Errorf("batch from example %d (%s): %w", rows[0].Index, rows[0].ExampleID, err)
		}
		for i := range n {
			s.moments[i].Add(s.grads[i*pixels : (i+1)*pixels])
		}
		activity.RecordHeartbeat(ctx, ShardProgress{Done: int64(len(s.out))})
	}
	// s.logits now holds the last checkpoint's logits.
	for i, row := range rows {
		v := s.moments[i].VoG()
		class := int32(s.targets[i])
		s.out = append(s.out, storage.ScoreRow{
			Index:     row.Index,
			ExampleID: row.ExampleID,
			Label:     row.Label,
			Pred:      int32(argmax(s.logits[i*k : (i+1)*k])),
			Class:     class,
			Window:    WindowAll,
			VoG:       v,
		})
		cm := s.classes[class]
		if cm == nil {
			cm = &score.ClassMoments{}
			s.classes[class] = cm
		}
		cm.Add(v)
	}
	return nil
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

// writeShard writes the shard's rows, then its class moments: the class
// file marks the shard complete.
func writeShard(ctx context.Context, out *blob.Bucket, i int, rows []storage.ScoreRow, classes map[int32]*score.ClassMoments) error {
	if err := storage.WriteParquet(ctx, out, storage.ShardRowsKey(i), rows); err != nil {
		return err
	}
	crow := make([]storage.ShardClassRow, 0, len(classes))
	for c, m := range classes {
		text, _ := m.MarshalText()
		crow = append(crow, storage.ShardClassRow{Window: WindowAll, Class: c, Moments: string(text)})
	}
	sort.Slice(crow, func(a, b int) bool { return crow[a].Class < crow[b].Class })
	return storage.WriteParquet(ctx, out, storage.ShardClassesKey(i), crow)
}
