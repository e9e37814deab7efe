package activities

import (
	"context"
	"fmt"
	"sort"
	"strconv"

	"go.temporal.io/sdk/activity"
	"gocloud.dev/blob"

	"github.com/vogscore/vog/dataset"
	"github.com/vogscore/vog/engine"
	"github.com/vogscore/vog/job"
	"github.com/vogscore/vog/shard"
	"github.com/vogscore/vog/storage"
)

// openShard reads the job, checks the shard index and opens the output.
func (a *Activities) openShard(ctx context.Context, ref job.Ref, i int) (*job.Job, *blob.Bucket, shard.Range, error) {
	j, err := a.loadJob(ctx, ref)
	if err != nil {
		return nil, nil, shard.Range{}, err
	}
	if i < 0 || i >= j.Shards {
		return nil, nil, shard.Range{}, job.BadJob("shard %d of a job of %d shards", i, j.Shards)
	}
	out, err := openOut(ctx, ref.Out)
	if err != nil {
		return nil, nil, shard.Range{}, err
	}
	return j, out, j.Layout().Nth(i), nil
}

// shardInputs reads a shard's slice of the index, the job's checkpoints of
// the given indices and its dataset reader (both cached by the worker).
func (a *Activities) shardInputs(ctx context.Context, j *job.Job, out *blob.Bucket, r shard.Range, checkpoints ...int) ([]job.IndexRow, []*engine.Model, dataset.Reader, error) {
	rows, err := storage.ReadParquet[job.IndexRow](ctx, out, storage.IndexKey, r.Start, r.Len())
	if err != nil {
		return nil, nil, nil, err
	}
	models, err := a.loadModels(ctx, j, checkpoints...)
	if err != nil {
		return nil, nil, nil, err
	}
	reader, err := a.openReader(ctx, j)
	if err != nil {
		return nil, nil, nil, err
	}
	return rows, models, reader, nil
}

// shardDone reports whether shard i of job j is done: its class file,
// written last, is this job's (by fingerprint) and the rows and failures
// files it describes are there. It returns the shard's failures. A shard
// that does not verify (another job's, or cut short) is computed again,
// and its files overwritten.
func shardDone(ctx context.Context, out *blob.Bucket, j *job.Job, i int) (bool, []job.FailureRow, error) {
	data, err := out.ReadAll(ctx, storage.ShardClassesKey(i))
	if storage.IsNotFound(err) {
		return false, nil, nil
	}
	if err != nil {
		return false, nil, fmt.Errorf("read %s: %w", storage.ShardClassesKey(i), err)
	}
	why := ""
	meta, err := storage.ParquetMeta(data)
	switch {
	case err != nil:
		why = err.Error()
	case meta[storage.FingerprintMeta] != j.Fingerprint:
		why = "written by job " + meta[storage.FingerprintMeta]
	}
	for _, f := range []struct{ key, meta string }{
		{storage.ShardRowsKey(i), storage.RowsBytesMeta}, {storage.ShardFailuresKey(i), storage.FailuresBytesMeta},
	} {
		if why != "" {
			break
		}
		attrs, err := out.Attributes(ctx, f.key)
		if storage.IsNotFound(err) {
			why = f.key + " is missing"
			break
		}
		if err != nil {
			return false, nil, fmt.Errorf("%s: %w", f.key, err)
		}
		if size := strconv.FormatInt(attrs.Size, 10); size != meta[f.meta] {
			why = fmt.Sprintf("%s has %s bytes, not %s", f.key, size, meta[f.meta])
		}
	}
	if why != "" {
		activity.GetLogger(ctx).Warn("recomputing a shard whose outputs do not verify", "shard", i, "why", why)
		return false, nil, nil
	}
	failures, err := storage.ReadParquet[job.FailureRow](ctx, out, storage.ShardFailuresKey(i), 0, -1)
	return err == nil, failures, err
}

// writeShard writes the shard's rows and failures, then its class moments:
// the class file marks the shard done, with the sizes of the other two.
func writeShard(ctx context.Context, out *blob.Bucket, j *job.Job, i int, scores shardScores) error {
	meta := storage.Meta{storage.FingerprintMeta: j.Fingerprint}
	if err := storage.WriteParquet(ctx, out, storage.ShardRowsKey(i), scores.rows, meta); err != nil {
		return err
	}
	if err := storage.WriteParquet(ctx, out, storage.ShardFailuresKey(i), scores.failures, meta); err != nil {
		return err
	}
	marker := storage.Meta{storage.FingerprintMeta: j.Fingerprint}
	for key, m := range map[string]string{storage.ShardRowsKey(i): storage.RowsBytesMeta, storage.ShardFailuresKey(i): storage.FailuresBytesMeta} {
		attrs, err := out.Attributes(ctx, key)
		if err != nil {
			return fmt.Errorf("%s: %w", key, err)
		}
		marker[m] = strconv.FormatInt(attrs.Size, 10)
	}
	crow := make([]job.ShardClassRow, 0, len(scores.classes))
	for c, m := range scores.classes {
		text, _ := m.MarshalText()
		crow = append(crow, job.ShardClassRow{Window: c.window, Class: c.class, Moments: string(text)})
	}
	sort.Slice(crow, func(a, b int) bool {
		if crow[a].Window != crow[b].Window {
			return crow[a].Window < crow[b].Window
		}
		return crow[a].Class < crow[b].Class
	})
	return storage.WriteParquet(ctx, out, storage.ShardClassesKey(i), crow, marker)
}

// shardResult reports shard i of range r with its failures.
func shardResult(i int, r shard.Range, failures []job.FailureRow) job.ShardResult {
	res := job.ShardResult{Shard: i, Examples: r.Len(), Failed: int64(len(failures))}
	for _, f := range failures {
		if res.FailedKinds == nil {
			res.FailedKinds = map[string]int64{}
		}
		res.FailedKinds[f.Kind]++
	}
	return res
}

// span returns the indices lo..hi-1.
func span(lo, hi int) []int {
	idx := make([]int, 0, hi-lo)
	for i := lo; i < hi; i++ {
		idx = append(idx, i)
	}
	return idx
}

// windowLasts returns the checkpoint index of each window's last checkpoint.
func windowLasts(j *job.Job) []int {
	idx := make([]int, len(j.Windows))
	for w, win := range j.Windows {
		idx[w] = win.Last()
	}
	return idx
}
