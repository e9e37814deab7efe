package activities

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/vogscore/vog/job"
	"github.com/vogscore/vog/storage"
)

// ScoreGroup folds one checkpoint group's input gradients for every example
// of a shard into per-pixel moments, and writes them as a partial moments
// file (jobstore.Store.NewGroupWriter). A group whose file exists, or whose
// shard is reduced, is not computed again.
func (a *Activities) ScoreGroup(ctx context.Context, in job.GroupInput) (job.ShardResult, error) {
	start := time.Now()
	// As ScoreShard: one heartbeat for the attempt, which the batches set.
	hb := heartbeats(ctx)
	defer hb.stop()
	st, r, err := a.openShard(ctx, in.Ref, in.Shard)
	if err != nil {
		return job.ShardResult{}, err
	}
	defer st.Close()
	j := st.Job()
	groups := j.Groups()
	if in.Group < 0 || in.Group >= len(groups) {
		return job.ShardResult{}, job.BadJob("group %d of a job of %d checkpoint groups", in.Group, len(groups))
	}
	res := job.ShardResult{Shard: in.Shard, Examples: r.Len()}
	g := groups[in.Group]
	if done, _, err := shardDone(ctx, st, in.Shard); err != nil || done {
		res.Reused = done
		return res, err
	}
	if done, err := st.GroupDone(ctx, in.Shard, in.Group); err != nil || done {
		res.Reused = done
		return res, err
	}
	// The group's checkpoints, and the window's last (one window: groups
	// take no --windows) for predictions.
	rows, models, reader, err := a.shardInputs(ctx, st, r, append(span(g[0], g[1]), windowLasts(j)...)...)
	if err != nil {
		return res, err
	}
	s := newScorer(j, models[:g[1]-g[0]], g[0], models[g[1]-g[0]:])
	s.beats = hb
	gw, err := st.NewGroupWriter(ctx, in.Shard, in.Group, len(rows))
	if err != nil {
		return res, err
	}
	defer gw.Abort() // unless Close published it
	k := g[1] - g[0]
	zeros := make([]float64, max(j.Shape.Pixels(), k))
	err = foldBatches(ctx, j, reader, r, rows, s, func(batch []job.IndexRow) error {
		for i, row := range batch {
			m := s.moments[0][i]
			rec := storage.MomentsRecord{Index: row.Index, Target: int32(s.targets[0][i]), Pred: s.preds[0][i],
				N: m.N, Mean: m.Mean, M2: m.M2, Logits: s.perCkpt[i], GradNorms: s.gradNorms[0][i]}
			if s.fails[i] != nil { // the reduce leaves it out
				pixels := zeros[:j.Shape.Pixels()]
				rec.Failure, rec.N, rec.Mean, rec.M2, rec.GradNorms = encodeFailure(s.fails[i]), int64(k), pixels, pixels, zeros[:k]
			}
			if err := gw.Write(rec); err != nil {
				return err
			}
		}
		return nil
	})
	if err == nil {
		err = gw.Close()
	}
	if err != nil {
		return res, err
	}
	res.Seconds = time.Since(start).Seconds()
	return res, nil
}

// encodeFailure writes an example's failure into a partial moments record,
// as "kind: message"; decodeFailure reads it back.
func encodeFailure(err error) string {
	kind := job.FailCorrupt
	var ex *job.ExampleError
	if errors.As(err, &ex) {
		kind = ex.Kind
	}
	return kind + ": " + err.Error()
}

func decodeFailure(s string) error {
	kind, msg, _ := strings.Cut(s, ": ")
	return &job.ExampleError{Kind: kind, Err: errors.New(msg)}
}
