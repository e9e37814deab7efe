package activities

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"gocloud.dev/blob"

	"github.com/vogscore/vog/job"
	"github.com/vogscore/vog/score"
	"github.com/vogscore/vog/storage"
)

// ReduceShard merges a shard's partial moments over every checkpoint group
// with the parallel variance formula, and writes the shard's rows and class
// moments as ScoreShard does. A corrupt partial moments file is removed and
// fails the shard: running the job again recomputes that group.
func (a *Activities) ReduceShard(ctx context.Context, in job.ShardInput) (job.ShardResult, error) {
	defer heartbeatWhile(ctx)()
	start := time.Now()
	j, out, r, err := a.openShard(ctx, in.Ref, in.Shard)
	if err != nil {
		return job.ShardResult{}, err
	}
	defer out.Close()
	if done, failures, err := shardDone(ctx, out, j, in.Shard); err != nil || done {
		res := shardResult(in.Shard, r, failures)
		res.Reused = done
		return res, err
	}
	var res job.ShardResult
	rows, err := storage.ReadParquet[job.IndexRow](ctx, out, storage.IndexKey, r.Start, r.Len())
	if err != nil {
		return res, err
	}
	groups := j.Groups()
	readers := make([]*storage.MomentsReader, len(groups))
	keys := make([]string, len(groups))
	for g, rg := range groups {
		gfp := j.GroupFingerprint(rg[0], rg[1])
		key := storage.ShardGroupKey(in.Shard, gfp)
		keys[g] = key
		br, err := out.NewReader(ctx, key, nil)
		if err != nil {
			return res, fmt.Errorf("%s: %w", key, err)
		}
		defer br.Close()
		mr, err := storage.NewMomentsReader(br)
		if err == nil && (mr.Header.Examples != len(rows) || mr.Header.Pixels != j.Shape.Pixels() || mr.Header.Checkpoints != rg[1]-rg[0] ||
			mr.Header.Fingerprint != gfp) {
			err = fmt.Errorf("%w: header %+v does not fit the shard", storage.ErrCorruptMoments, mr.Header)
		}
		if err != nil {
			return res, a.dropCorrupt(ctx, out, key, err)
		}
		readers[g] = mr
	}
	scores := shardScores{shard: in.Shard}
	merged := score.NewPixelMoments(j.Shape.Pixels())
	var rec storage.MomentsRecord
	var logits []score.Logits
	var gradNorms []float64
	for _, row := range rows {
		merged.Reset()
		logits, gradNorms = logits[:0], gradNorms[:0]
		target, pred := int32(-1), int32(-1)
		failure := ""
		for g, mr := range readers {
			key := keys[g]
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
			if failure == "" {
				failure = rec.Failure // the first group's reason
			}
			if failure != "" {
				continue
			}
			if err := merged.Merge(rec.Moments()); err != nil {
				return res, err
			}
			logits = append(logits, rec.Logits...)
			gradNorms = append(gradNorms, rec.GradNorms...)
		}
		if failure != "" {
			scores.fail(row, decodeFailure(failure))
			continue
		}
		win := j.Windows[0]
		scores.add(row, win.Name, target, pred, merged.VoG(), score.WindowScores(logits, gradNorms))
	}
	for g, mr := range readers {
		if err := mr.Next(&rec); err != io.EOF {
			if err == nil {
				err = fmt.Errorf("%w: more records than examples", storage.ErrCorruptMoments)
			}
			return res, a.dropCorrupt(ctx, out, keys[g], err)
		}
	}
	if err := writeShard(ctx, out, j, in.Shard, scores); err != nil {
		return res, err
	}
	res = shardResult(in.Shard, r, scores.failures)
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
	return job.BadData("%s: %v: removed; run the job again to recompute it", key, err)
}
