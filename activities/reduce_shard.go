package activities

import (
	"context"
	"fmt"
	"time"

	"github.com/vogscore/vog/job"
	"github.com/vogscore/vog/jobstore"
	"github.com/vogscore/vog/score"
	"github.com/vogscore/vog/storage"
)

// ReduceShard merges a shard's partial moments over every checkpoint group
// with the parallel variance formula, and writes the shard's rows and class
// moments as ScoreShard does. A corrupt partial moments file is removed and
// fails the shard (jobstore.GroupReader): running the job again recomputes
// that group.
func (a *Activities) ReduceShard(ctx context.Context, in job.ShardInput) (job.ShardResult, error) {
	defer heartbeatWhile(ctx)()
	start := time.Now()
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
	var res job.ShardResult
	rows, err := st.Index(ctx, r)
	if err != nil {
		return res, err
	}
	readers := make([]*jobstore.GroupReader, len(j.Groups()))
	for g := range readers {
		gr, err := st.OpenGroup(ctx, in.Shard, g, len(rows))
		if err != nil {
			return res, err
		}
		defer gr.Close()
		readers[g] = gr
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
		for g, gr := range readers {
			if err := gr.Next(&rec); err != nil {
				return res, err
			}
			if rec.Index != row.Index || (g > 0 && rec.Target != target) {
				return res, gr.Corrupt(fmt.Errorf("%w: record of example %d (target %d) where example %d (target %d) belongs",
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
	for _, gr := range readers {
		if err := gr.End(); err != nil {
			return res, err
		}
	}
	if err := scores.write(ctx, st); err != nil {
		return res, err
	}
	res = shardResult(in.Shard, r, scores.failures)
	res.Seconds = time.Since(start).Seconds()
	return res, nil
}
