package activities

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"

	"go.temporal.io/sdk/activity"
	"gocloud.dev/blob"

	"github.com/vogscore/vog/score"
	"github.com/vogscore/vog/storage"
)

type classKey struct {
	window string
	class  int32
}

// MergeClasses merges the class moments of every shard and writes
// classes.parquet: per window and class, n, mean and std of VoG.
func (a *Activities) MergeClasses(ctx context.Context, in MergeInput) (MergeResult, error) {
	res, err := a.mergeClasses(ctx, in)
	return res, classify(err)
}

func (a *Activities) mergeClasses(ctx context.Context, in MergeInput) (MergeResult, error) {
	job, err := a.job(ctx, in.Ref)
	if err != nil {
		return MergeResult{}, err
	}
	out, err := openOut(ctx, in.Ref.Out)
	if err != nil {
		return MergeResult{}, err
	}
	defer out.Close()
	merged := map[classKey]*score.ClassMoments{}
	for i := range job.Shards {
		if i%100 == 0 {
			activity.RecordHeartbeat(ctx, i)
		}
		rows, err := storage.ReadParquet[storage.ShardClassRow](ctx, out, storage.ShardClassesKey(i), 0, -1)
		if err != nil {
			return MergeResult{}, fmt.Errorf("shard %d: %w", i, err)
		}
		for _, r := range rows {
			var m score.ClassMoments
			if err := m.UnmarshalText([]byte(r.Moments)); err != nil {
				return MergeResult{}, fmt.Errorf("%s: %w", storage.ShardClassesKey(i), err)
			}
			k := classKey{r.Window, r.Class}
			if merged[k] == nil {
				merged[k] = &score.ClassMoments{}
			}
			merged[k].Merge(&m)
		}
	}
	rows := make([]storage.ClassRow, 0, len(merged))
	for k, m := range merged {
		mo := m.Moments()
		rows = append(rows, storage.ClassRow{Window: k.window, Class: k.class, N: mo.N, Mean: mo.Mean, Std: mo.Std()})
	}
	sort.Slice(rows, func(i, j int) bool {
		if rows[i].Window != rows[j].Window {
			return rows[i].Window < rows[j].Window
		}
		return rows[i].Class < rows[j].Class
	})
	if err := storage.WriteParquet(ctx, out, storage.ClassesKey, rows); err != nil {
		return MergeResult{}, err
	}
	return MergeResult{Classes: len(rows)}, nil
}

// WriteScores normalises the rows of shards [First, Last) by their class
// statistics and writes them as result parts.
func (a *Activities) WriteScores(ctx context.Context, in WriteInput) (WriteResult, error) {
	res, err := a.writeScores(ctx, in)
	return res, classify(err)
}

func (a *Activities) writeScores(ctx context.Context, in WriteInput) (WriteResult, error) {
	if _, err := a.job(ctx, in.Ref); err != nil {
		return WriteResult{}, err
	}
	out, err := openOut(ctx, in.Ref.Out)
	if err != nil {
		return WriteResult{}, err
	}
	defer out.Close()
	classes, err := readClasses(ctx, out)
	if err != nil {
		return WriteResult{}, err
	}
	var res WriteResult
	for i := in.First; i < in.Last; i++ {
		activity.RecordHeartbeat(ctx, i)
		rows, err := storage.ReadParquet[storage.ScoreRow](ctx, out, storage.ShardRowsKey(i), 0, -1)
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
		res.Hardest = Hardest(append(res.Hardest, Hardest(rows, HardestCount)...), HardestCount)
	}
	return res, nil
}

func readClasses(ctx context.Context, out *blob.Bucket) (map[classKey]storage.ClassRow, error) {
	rows, err := storage.ReadParquet[storage.ClassRow](ctx, out, storage.ClassesKey, 0, -1)
	if err != nil {
		return nil, err
	}
	m := make(map[classKey]storage.ClassRow, len(rows))
	for _, r := range rows {
		m[classKey{r.Window, r.Class}] = r
	}
	return m, nil
}

// Hardest returns the n rows of highest vog_norm, most first; ties go to the
// lower index, so the answer does not depend on the order of rows.
func Hardest(rows []storage.ScoreRow, n int) []storage.ScoreRow {
	top := append([]storage.ScoreRow(nil), rows...)
	sort.Slice(top, func(i, j int) bool {
		if top[i].VoGNorm != top[j].VoGNorm {
			return top[i].VoGNorm > top[j].VoGNorm
		}
		if top[i].Index != top[j].Index {
			return top[i].Index < top[j].Index
		}
		return top[i].Window < top[j].Window
	})
	return top[:min(n, len(top))]
}

// Finish writes _SUCCESS, listing the result parts and their sizes. It is
// written last: its presence means the job's result is complete.
func (a *Activities) Finish(ctx context.Context, in FinishInput) (FinishResult, error) {
	res, err := a.finish(ctx, in)
	return res, classify(err)
}

func (a *Activities) finish(ctx context.Context, in FinishInput) (FinishResult, error) {
	job, err := a.job(ctx, in.Ref)
	if err != nil {
		return FinishResult{}, err
	}
	out, err := openOut(ctx, in.Ref.Out)
	if err != nil {
		return FinishResult{}, err
	}
	defer out.Close()
	var res FinishResult
	for i := range job.Shards {
		attrs, err := out.Attributes(ctx, storage.PartKey(i))
		if err != nil {
			return res, fmt.Errorf("part %d: %w", i, err)
		}
		res.Parts = append(res.Parts, Part{Key: storage.PartKey(i), Size: attrs.Size})
	}
	success := struct {
		Fingerprint string `json:"fingerprint"`
		Rows        int64  `json:"rows"`
		Parts       []Part `json:"parts"`
	}{job.Fingerprint, in.Rows, res.Parts}
	data, _ := json.MarshalIndent(success, "", "  ")
	if err := out.WriteAll(ctx, storage.SuccessKey, append(data, '\n'), nil); err != nil {
		return res, fmt.Errorf("write %s: %w", storage.SuccessKey, err)
	}
	return res, nil
}
