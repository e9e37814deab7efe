package activities

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"gocloud.dev/blob"

	"github.com/vogscore/vog/dataset"
	"github.com/vogscore/vog/internal/fault"
	"github.com/vogscore/vog/score"
	"github.com/vogscore/vog/shard"
	"github.com/vogscore/vog/storage"
)

// ScoreGroup folds one checkpoint group's input gradients for every example
// of a shard into per-pixel moments, and writes them as a partial moments
// file (storage.MomentsWriter). A group whose file exists, or whose shard is
// reduced, is not computed again.
func (a *Activities) ScoreGroup(ctx context.Context, in GroupInput) (ShardResult, error) {
	res, err := a.scoreGroup(ctx, in)
	return res, classify(err)
}

func (a *Activities) scoreGroup(ctx context.Context, in GroupInput) (ShardResult, error) {
	start := time.Now()
	job, out, r, err := a.openShard(ctx, in.Ref, in.Shard)
	if err != nil {
		return ShardResult{}, err
	}
	defer out.Close()
	groups := job.Groups()
	if in.Group < 0 || in.Group >= len(groups) {
		return ShardResult{}, badJob("group %d of a job of %d checkpoint groups", in.Group, len(groups))
	}
	res := ShardResult{Shard: in.Shard, Examples: r.Len()}
	key := storage.ShardGroupKey(in.Shard, in.Group)
	for _, k := range []string{storage.ShardClassesKey(in.Shard), key} {
		if done, err := storage.Exists(ctx, out, k); err != nil || done {
			res.Reused = done
			return res, err
		}
	}
	// The group's checkpoints, and the window's last (one window: groups
	// take no --windows) for predictions.
	g := groups[in.Group]
	rows, models, reader, err := a.shardInputs(ctx, job, out, r, append(span(g[0], g[1]), windowLasts(job)...)...)
	if err != nil {
		return res, err
	}
	s := newScorer(job, models[:g[1]-g[0]], g[0], models[g[1]-g[0]:])

	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	w, err := out.NewWriter(wctx, key, &blob.WriterOptions{ContentType: "application/octet-stream"})
	if err != nil {
		return res, fmt.Errorf("write %s: %w", key, err)
	}
	mw, err := storage.NewMomentsWriter(w, storage.MomentsHeader{
		Pixels: job.Shape.Pixels(), Examples: len(rows), Group: in.Group, Checkpoints: g[1] - g[0],
	})
	if err == nil {
		err = foldBatches(ctx, job, reader, rows, s, func(batch []storage.IndexRow) error {
			for i, row := range batch {
				m := s.moments[0][i]
				rec := storage.MomentsRecord{Index: row.Index, Target: int32(s.targets[0][i]), Pred: s.preds[0][i],
					N: m.N, Mean: m.Mean, M2: m.M2, Logits: s.perCkpt[i], GradNorms: s.gradNorms[0][i]}
				if err := mw.Write(rec); err != nil {
					return err
				}
			}
			return nil
		})
	}
	if err == nil {
		err = mw.Close()
	}
	if err != nil {
		cancel() // abandons the object: nothing half-written is published
		w.Close()
		return res, err
	}
	if err := w.Close(); err != nil {
		return res, fmt.Errorf("write %s: %w", key, err)
	}
	res.Seconds = time.Since(start).Seconds()
	return res, nil
}

// ReduceShard merges a shard's partial moments over every checkpoint group
// with the parallel variance formula, and writes the shard's rows and class
// moments as ScoreShard does. A corrupt partial moments file is removed and
// fails the shard: running the job again recomputes that group.
func (a *Activities) ReduceShard(ctx context.Context, in ShardInput) (ShardResult, error) {
	res, err := a.reduceShard(ctx, in)
	return res, classify(err)
}

func (a *Activities) reduceShard(ctx context.Context, in ShardInput) (ShardResult, error) {
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
	rows, err := storage.ReadParquet[storage.IndexRow](ctx, out, storage.IndexKey, r.Start, r.Len())
	if err != nil {
		return res, err
	}
	groups := job.Groups()
	readers := make([]*storage.MomentsReader, len(groups))
	for g, rg := range groups {
		key := storage.ShardGroupKey(in.Shard, g)
		br, err := out.NewReader(ctx, key, nil)
		if err != nil {
			return res, fmt.Errorf("%s: %w", key, err)
		}
		defer br.Close()
		mr, err := storage.NewMomentsReader(br)
		if err == nil && (mr.Header.Examples != len(rows) || mr.Header.Pixels != job.Shape.Pixels() || mr.Header.Checkpoints != rg[1]-rg[0]) {
			err = fmt.Errorf("%w: header %+v does not fit the shard", storage.ErrCorruptMoments, mr.Header)
		}
		if err != nil {
			return res, a.dropCorrupt(ctx, out, key, err)
		}
		readers[g] = mr
	}
	var scores shardScores
	merged := score.NewPixelMoments(job.Shape.Pixels())
	var rec storage.MomentsRecord
	var logits []score.Logits
	var gradNorms []float64
	for _, row := range rows {
		merged.Reset()
		logits, gradNorms = logits[:0], gradNorms[:0]
		target, pred := int32(-1), int32(-1)
		for g, mr := range readers {
			key := storage.ShardGroupKey(in.Shard, g)
			if err := mr.Next(&rec); err != nil {
				return res, a.dropCorrupt(ctx, out, key, err)
			}
			if rec.Index != row.Index || (g > 0 && rec.Target != target) {
				return res, a.dropCorrupt(ctx, out, key, fmt.Errorf("%w: record of example %d (target %d) where example %d (target %d) belongs",
					storage.ErrCorruptMoments, rec.Index, rec.Target, row.Index, target))
			}
			target = rec.Target
			if rec.Pred >= 0 {
				pred = rec.Pred
			}
			if err := merged.Merge(rec.Moments()); err != nil {
				return res, err
			}
			logits = append(logits, rec.Logits...)
			gradNorms = append(gradNorms, rec.GradNorms...)
		}
		win := job.Windows[0]
		scores.add(row, win.Name, target, pred, merged.VoG(), score.WindowScores(logits, gradNorms))
	}
	for g, mr := range readers {
		if err := mr.Next(&rec); err != io.EOF {
			if err == nil {
				err = fmt.Errorf("%w: more records than examples", storage.ErrCorruptMoments)
			}
			return res, a.dropCorrupt(ctx, out, storage.ShardGroupKey(in.Shard, g), err)
		}
	}
	if err := writeShard(ctx, out, in.Shard, scores); err != nil {
		return res, err
	}
	res.Seconds = time.Since(start).Seconds()
	return res, nil
}

// dropCorrupt removes a corrupt partial moments file so that running the job
// again recomputes it, and returns an error that fails the shard.
func (a *Activities) dropCorrupt(ctx context.Context, out *blob.Bucket, key string, err error) error {
	if !errors.Is(err, storage.ErrCorruptMoments) {
		return fmt.Errorf("%s: %w", key, err)
	}
	if derr := out.Delete(ctx, key); derr != nil {
		return fmt.Errorf("%s: %v; removing it failed too: %w", key, err, derr)
	}
	return fault.Mark(dataset.ErrBadData, "%s: %v: removed; run the job again to recompute it", key, err)
}

// openShard reads the job, checks the shard index and opens the output.
func (a *Activities) openShard(ctx context.Context, ref JobRef, i int) (*Job, *blob.Bucket, shard.Range, error) {
	job, err := a.job(ctx, ref)
	if err != nil {
		return nil, nil, shard.Range{}, err
	}
	if i < 0 || i >= job.Shards {
		return nil, nil, shard.Range{}, badJob("shard %d of a job of %d shards", i, job.Shards)
	}
	out, err := openOut(ctx, ref.Out)
	if err != nil {
		return nil, nil, shard.Range{}, err
	}
	return job, out, shard.Nth(job.Examples, job.Spec.ShardSize, i), nil
}
