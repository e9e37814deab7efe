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
	// One heartbeat for the whole attempt: opening, reading the inputs and
	// writing report no progress of their own (on a slow link to storage
	// they must not pass for a dead worker), the batches set theirs.
	hb := heartbeats(ctx)
	defer hb.stop()
	st, r, err := a.openShard(ctx, in.Ref, in.Shard)
	if err != nil {
		return job.ShardResult{}, err
	}
	defer st.Close()
	if done, failures, err := shardDone(ctx, st, in.Shard); err != nil || done {
		res := shardResult(in.Shard, r, failures)
		res.Reused = done
		return res, err
	}
	j := st.Job()
	k := len(j.Checkpoints)
	rows, models, reader, err := a.shardInputs(ctx, st, r, append(span(0, k), windowLasts(j)...)...)
	if err != nil {
		return job.ShardResult{}, err
	}
	s := newScorer(j, models[:k], 0, models[k:])
	s.beats = hb
	scores := shardScores{shard: in.Shard}
	err = foldBatches(ctx, j, reader, r, rows, s, func(batch []job.IndexRow) error {
		scores.addBatch(s, batch)
		return nil
	})
	if err != nil {
		return job.ShardResult{}, err
	}
	if err := scores.write(ctx, st); err != nil {
		return job.ShardResult{}, err
	}
	res := shardResult(in.Shard, r, scores.failures)
	res.Seconds = time.Since(start).Seconds()
	return res, nil
}
