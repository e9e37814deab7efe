package activities

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"sort"
	"strings"

	"gocloud.dev/blob"

	"github.com/vogscore/vog/job"
	"github.com/vogscore/vog/score"
	"github.com/vogscore/vog/storage"
)

// MergeClasses merges the class moments of every shard and writes
// classes.parquet (per window and class: n, mean and std of VoG), and
// gathers the shards' failed examples into failures.parquet.
func (a *Activities) MergeClasses(ctx context.Context, in job.MergeInput) (job.MergeResult, error) {
	defer heartbeatWhile(ctx)()
	j, out, err := a.openJob(ctx, in.Ref)
	if err != nil {
		return job.MergeResult{}, err
	}
	defer out.Close()
	merged := map[classKey]*score.ClassMoments{}
	var failures []job.FailureRow
	for i := range j.Shards {
		rows, err := readShardFile[job.ShardClassRow](ctx, out, j, storage.ShardClassesKey(i))
		if err != nil {
			return job.MergeResult{}, err
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
		f, err := readShardFile[job.FailureRow](ctx, out, j, storage.ShardFailuresKey(i))
		if err != nil {
			return job.MergeResult{}, err
		}
		failures = append(failures, f...)
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
	meta := storage.Meta{storage.FingerprintMeta: j.Fingerprint}
	if err := storage.WriteParquet(ctx, out, storage.FailuresKey, failures, meta); err != nil {
		return job.MergeResult{}, err
	}
	if err := storage.WriteParquet(ctx, out, storage.ClassesKey, rows, meta); err != nil {
		return job.MergeResult{}, err
	}
	return job.MergeResult{Classes: len(rows), Failures: int64(len(failures))}, nil
}

// readShardFile reads a shard's Parquet file, checking that job j wrote it.
func readShardFile[T any](ctx context.Context, out *blob.Bucket, j *job.Job, key string) ([]T, error) {
	data, err := out.ReadAll(ctx, key)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", key, err)
	}
	if meta, err := storage.ParquetMeta(data); err != nil || meta[storage.FingerprintMeta] != j.Fingerprint {
		// A shard reported done whose file was since replaced: only a
		// run of the whole job again can tell which shards to redo.
		return nil, job.BadData("%s is not this job's (%v): run the job again to recompute its shard", key, err)
	}
	return storage.ReadParquetBytes[T](data, key)
}

// WriteScores normalises the rows of shards [First, Last) by their class
// statistics and writes them as result parts.
func (a *Activities) WriteScores(ctx context.Context, in job.WriteInput) (job.WriteResult, error) {
	defer heartbeatWhile(ctx)()
	j, out, err := a.openJob(ctx, in.Ref)
	if err != nil {
		return job.WriteResult{}, err
	}
	defer out.Close()
	classes, err := readClasses(ctx, out, j)
	if err != nil {
		return job.WriteResult{}, err
	}
	meta := storage.Meta{storage.FingerprintMeta: j.Fingerprint}
	var res job.WriteResult
	for i := in.First; i < in.Last; i++ {
		rows, err := readShardFile[job.ScoreRow](ctx, out, j, storage.ShardRowsKey(i))
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
			r.AbsVoGNorm = math.Abs(r.VoGNorm)
		}
		if err := storage.WriteParquet(ctx, out, storage.PartKey(i), rows, meta); err != nil {
			return res, err
		}
		res.Rows += int64(len(rows))
		res.Hardest = job.Hardest(append(res.Hardest, job.Hardest(rows, job.HardestCount)...), job.HardestCount)
	}
	return res, nil
}

func readClasses(ctx context.Context, out *blob.Bucket, j *job.Job) (map[classKey]job.ClassRow, error) {
	rows, err := readShardFile[job.ClassRow](ctx, out, j, storage.ClassesKey)
	if err != nil {
		return nil, err
	}
	m := make(map[classKey]job.ClassRow, len(rows))
	for _, r := range rows {
		m[classKey{r.Window, r.Class}] = r
	}
	return m, nil
}

// Finish writes _SUCCESS, listing the result parts and their sizes, after
// removing result parts that are not this job's (left by another job that
// held --out before). It is written last: its presence means the job's
// result is complete.
func (a *Activities) Finish(ctx context.Context, in job.FinishInput) (job.FinishResult, error) {
	defer heartbeatWhile(ctx)()
	j, out, err := a.openJob(ctx, in.Ref)
	if err != nil {
		return job.FinishResult{}, err
	}
	defer out.Close()
	var res job.FinishResult
	parts := map[string]bool{}
	for i := range j.Shards {
		attrs, err := out.Attributes(ctx, storage.PartKey(i))
		if err != nil {
			return res, fmt.Errorf("part %d: %w", i, err)
		}
		res.Parts = append(res.Parts, job.Part{Key: storage.PartKey(i), Size: attrs.Size})
		parts[storage.PartKey(i)] = true
	}
	it := out.List(&blob.ListOptions{Prefix: "scores/"})
	for {
		obj, err := it.Next(ctx)
		if err == io.EOF {
			break
		}
		if err != nil {
			return res, fmt.Errorf("list scores/: %w", err)
		}
		if !parts[obj.Key] && strings.HasSuffix(obj.Key, ".parquet") {
			if err := out.Delete(ctx, obj.Key); err != nil && !storage.IsNotFound(err) {
				return res, fmt.Errorf("remove %s, another job's: %w", obj.Key, err)
			}
		}
	}
	success := job.Success{Fingerprint: j.Fingerprint, Rows: in.Rows, Failures: in.Failures, Parts: res.Parts}
	data, _ := json.MarshalIndent(success, "", "  ")
	if err := out.WriteAll(ctx, storage.SuccessKey, append(data, '\n'), nil); err != nil {
		return res, fmt.Errorf("write %s: %w", storage.SuccessKey, err)
	}
	return res, nil
}
