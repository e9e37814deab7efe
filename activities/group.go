package activities

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"gocloud.dev/blob"

	"github.com/vogscore/vog/job"
	"github.com/vogscore/vog/storage"
)

// ScoreGroup folds one checkpoint group's input gradients for every example
// of a shard into per-pixel moments, and writes them as a partial moments
// file (storage.MomentsWriter). A group whose file exists, or whose shard is
// reduced, is not computed again.
func (a *Activities) ScoreGroup(ctx context.Context, in job.GroupInput) (job.ShardResult, error) {
	start := time.Now()
	j, out, r, err := a.openShard(ctx, in.Ref, in.Shard)
	if err != nil {
		return job.ShardResult{}, err
	}
	defer out.Close()
	groups := j.Groups()
	if in.Group < 0 || in.Group >= len(groups) {
		return job.ShardResult{}, job.BadJob("group %d of a job of %d checkpoint groups", in.Group, len(groups))
	}
	res := job.ShardResult{Shard: in.Shard, Examples: r.Len()}
	g := groups[in.Group]
	gfp := j.GroupFingerprint(g[0], g[1])
	key := storage.ShardGroupKey(in.Shard, gfp)
	if done, _, err := shardDone(ctx, out, j, in.Shard); err != nil || done {
		res.Reused = done
		return res, err
	}
	if done, err := groupDone(ctx, out, gfp, key); err != nil || done {
		res.Reused = done
		return res, err
	}
	// The group's checkpoints, and the window's last (one window: groups
	// take no --windows) for predictions.
	rows, models, reader, err := a.shardInputs(ctx, j, out, r, append(span(g[0], g[1]), windowLasts(j)...)...)
	if err != nil {
		return res, err
	}
	s := newScorer(j, models[:g[1]-g[0]], g[0], models[g[1]-g[0]:])

	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	w, err := out.NewWriter(wctx, key, &blob.WriterOptions{ContentType: "application/octet-stream"})
	if err != nil {
		return res, fmt.Errorf("write %s: %w", key, err)
	}
	k := g[1] - g[0]
	mw, err := storage.NewMomentsWriter(w, storage.MomentsHeader{
		Pixels: j.Shape.Pixels(), Examples: len(rows), Group: in.Group, Checkpoints: k, Fingerprint: gfp,
	})
	zeros := make([]float64, max(j.Shape.Pixels(), k))
	if err == nil {
		err = foldBatches(ctx, j, reader, r, rows, s, func(batch []job.IndexRow) error {
			for i, row := range batch {
				m := s.moments[0][i]
				rec := storage.MomentsRecord{Index: row.Index, Target: int32(s.targets[0][i]), Pred: s.preds[0][i],
					N: m.N, Mean: m.Mean, M2: m.M2, Logits: s.perCkpt[i], GradNorms: s.gradNorms[0][i]}
				if s.fails[i] != nil { // the reduce leaves it out
					pixels := zeros[:j.Shape.Pixels()]
					rec.Failure, rec.N, rec.Mean, rec.M2, rec.GradNorms = encodeFailure(s.fails[i]), int64(k), pixels, pixels, zeros[:k]
				}
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

// groupDone reports whether the partial moments file key is there and of
// the group gfp, reading its header only.
func groupDone(ctx context.Context, out *blob.Bucket, gfp, key string) (bool, error) {
	rd, err := out.NewReader(ctx, key, nil)
	if storage.IsNotFound(err) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("%s: %w", key, err)
	}
	defer rd.Close()
	mr, err := storage.NewMomentsReader(rd)
	if errors.Is(err, storage.ErrCorruptMoments) {
		return false, nil // written again
	}
	if err != nil {
		return false, fmt.Errorf("%s: %w", key, err)
	}
	return mr.Header.Fingerprint == gfp, nil
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
