package activities

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"

	"go.temporal.io/sdk/activity"
	"gocloud.dev/blob"

	"github.com/vogscore/vog/job"
	"github.com/vogscore/vog/score"
	"github.com/vogscore/vog/storage"
)

// MergeClasses merges the class moments of every shard and writes
// classes.parquet: per window and class, n, mean and std of VoG.
func (a *Activities) MergeClasses(ctx context.Context, in job.MergeInput) (job.MergeResult, error) {
	j, err := a.loadJob(ctx, in.Ref)
	if err != nil {
		return job.MergeResult{}, err
	}
	out, err := openOut(ctx, in.Ref.Out)
	if err != nil {
		return job.MergeResult{}, err
	}
	defer out.Close()
	merged := map[classKey]*score.ClassMoments{}
	for i := range j.Shards {
		if i%100 == 0 {
			activity.RecordHeartbeat(ctx, i)
		}
		rows, err := storage.ReadParquet[job.ShardClassRow](ctx, out, storage.ShardClassesKey(i), 0, -1)
		if err != nil {
			return job.MergeResult{}, fmt.Errorf("shard %d: %w", i, err)
		}
		for _, r := range rows {
			var m score.ClassMoments
			if err := m.UnmarshalText([]byte(r.Moments)); err != nil {
				return job.MergeResult{}, fmt.Errorf("%s: %w", storage.ShardClassesKey(i), err)
			}
			k := classKey{r.Window, r.Class}
			if merged[k] == nil {
				merged[k] = &score.ClassMoments{}
			}
			merged[k].Merge(&m)
		}
	}
	rows := make([]job.ClassRow, 0, len(merged))
	for k, m := range merged {
		mo := m.Moments()
		rows = append(rows, job.ClassRow{Window: k.window, Class: k.class, N: mo.N, Mean: mo.Mean, Std: mo.Std()})
	}
	sort.Slice(rows, func(i, j int) bool {
		if rows[i].Window != rows[j].Window {
			return rows[i].Window < rows[j].Window
		}
		return rows[i].Class < rows[j].Class
	})
	if err := storage.WriteParquet(ctx, out, storage.ClassesKey, rows); err != nil {
		return job.MergeResult{}, err
	}
	return job.MergeResult{Classes: len(rows)}, nil
}

// WriteScores normalises the rows of shards [First, Last) by their class
// statistics and writes them as result parts.
func (a *Activities) WriteScores(ctx context.Context, in job.WriteInput) (job.WriteResult, error) {
	if _, err := a.loadJob(ctx, in.Ref); err != nil {
		return job.WriteResult{}, err
	}
	out, err := openOut(ctx, in.Ref.Out)
	if err != nil {
		return job.WriteResult{}, err
	}
	defer out.Close()
	classes, err := readClasses(ctx, out)
	if err != nil {
		return job.WriteResult{}, err
	}
	var res job.WriteResult
	for i := in.First; i < in.Last; i++ {
		activity.RecordHeartbeat(ctx, i)
		rows, err := storage.ReadParquet[job.ScoreRow](ctx, out, storage.ShardRowsKey(i), 0, -1)
		if err != nil {
			return res, fmt.Errorf("shard %d: %w", i, err)
		}
		for j := range rows {
			r := &rows[j]
			c, ok := classes[classKey{r.Window, r.Class}]
			if !ok {
				return res, fmt.Errorf("%s has no statistics for window %s class %d", storage.ClassesKey, r.Window, r.Class)
			}
			r.VoGNorm = score.ZScore(r.VoG, c.Mean, c.Std)
		}
		if err := storage.WriteParquet(ctx, out, storage.PartKey(i), rows); err != nil {
			return res, err
		}
		res.Rows += int64(len(rows))
		res.Hardest = job.Hardest(append(res.Hardest, job.Hardest(rows, job.HardestCount)...), job.HardestCount)
	}
	return res, nil
}

func readClasses(ctx context.Context, out *blob.Bucket) (map[classKey]job.ClassRow, error) {
	rows, err := storage.ReadParquet[job.ClassRow](ctx, out, storage.ClassesKey, 0, -1)
	if err != nil {
		return nil, err
	}
	m := make(map[classKey]job.ClassRow, len(rows))
	for _, r := range rows {
		m[classKey{r.Window, r.Class}] = r
	}
	return m, nil
}

// Finish writes _SUCCESS, listing the result parts and their sizes. It is
// written last: its presence means the job's result is complete.
func (a *Activities) Finish(ctx context.Context, in job.FinishInput) (job.FinishResult, error) {
	j, err := a.loadJob(ctx, in.Ref)
	if err != nil {
		return job.FinishResult{}, err
	}
	out, err := openOut(ctx, in.Ref.Out)
	if err != nil {
		return job.FinishResult{}, err
	}
	defer out.Close()
	var res job.FinishResult
	for i := range j.Shards {
		attrs, err := out.Attributes(ctx, storage.PartKey(i))
		if err != nil {
			return res, fmt.Errorf("part %d: %w", i, err)
		}
		res.Parts = append(res.Parts, job.Part{Key: storage.PartKey(i), Size: attrs.Size})
	}
	success := job.Success{Fingerprint: j.Fingerprint, Rows: in.Rows, Parts: res.Parts}
	data, _ := json.MarshalIndent(success, "", "  ")
	if err := out.WriteAll(ctx, storage.SuccessKey, append(data, '\n'), nil); err != nil {
		return res, fmt.Errorf("write %s: %w", storage.SuccessKey, err)
	}
	return res, nil
}
