package activities

import (
	"context"
	"time"

	"github.com/vogscore/vog/job"
)

// ScoreShard computes VoG for every example of one shard: it streams the
// shard's examples in batches, takes the input gradient of each checkpoint,
// folds them into per-pixel moments, and writes the shard's rows and class
// moments. Only scalars leave the worker. A shard whose outputs exist is not
// computed again.
func (a *Activities) ScoreShard(ctx context.Context, in job.ShardInput) (job.ShardResult, error) {
	start := time.Now()
	j, out, r, err := a.openShard(ctx, in.Ref, in.Shard)
	if err != nil {
		return job.ShardResult{}, err
	}
	defer out.Close()
	res := job.ShardResult{Shard: in.Shard, Examples: r.Len()}
	if done, err := shardDone(ctx, out, in.Shard, r); err != nil || done {
		res.Reused = done
		return res, err
	}
	k := len(j.Checkpoints)
	rows, models, reader, err := a.shardInputs(ctx, j, out, r, append(span(0, k), windowLasts(j)...)...)
	if err != nil {
		return res, err
	}
	s := newScorer(j, models[:k], 0, models[k:])
	var scores shardScores
	err = foldBatches(ctx, j, reader, r, rows, s, func(batch []job.IndexRow) error {
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
