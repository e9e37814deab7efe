package activities

import (
	"context"
	"fmt"
	"sort"

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

// writeShard writes the shard's rows, then its class moments: the class
// file marks the shard complete.
func writeShard(ctx context.Context, out *blob.Bucket, i int, scores shardScores) error {
	if err := storage.WriteParquet(ctx, out, storage.ShardRowsKey(i), scores.rows); err != nil {
		return err
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
	return storage.WriteParquet(ctx, out, storage.ShardClassesKey(i), crow)
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
