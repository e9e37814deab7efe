package activities

import (
	"context"
	"fmt"
	"math"
	"sort"

	"github.com/vogscore/vog/job"
	"github.com/vogscore/vog/jobstore"
	"github.com/vogscore/vog/score"
)

// MergeClasses merges the class moments of every shard and writes
// classes.parquet (per window and class: n, mean and std of VoG), and
// gathers the shards' failed examples into failures.parquet. Every shard
// file must be this job's (jobstore.Store.ShardClasses).
func (a *Activities) MergeClasses(ctx context.Context, in job.MergeInput) (job.MergeResult, error) {
	defer heartbeatWhile(ctx)()
	st, err := a.openJob(ctx, in.Ref)
	if err != nil {
		return job.MergeResult{}, err
	}
	defer st.Close()
	merged := map[classKey]*score.ClassMoments{}
	var failures []job.FailureRow
	for i := range st.Job().Shards {
		rows, err := st.ShardClasses(ctx, i)
		if err != nil {
			return job.MergeResult{}, err
		}
		for _, r := range rows {
			var m score.ClassMoments
			if err := m.UnmarshalText([]byte(r.Moments)); err != nil {
				return job.MergeResult{}, fmt.Errorf("%s: %w", jobstore.ShardClassesKey(i), err)
			}
			k := classKey{r.Window, r.Class}
			if merged[k] == nil {
				merged[k] = &score.ClassMoments{}
			}
			merged[k].Merge(&m)
		}
		f, err := st.ShardFailures(ctx, i)
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
	if err := st.WriteClasses(ctx, rows, failures); err != nil {
		return job.MergeResult{}, err
	}
	return job.MergeResult{Classes: len(rows), Failures: int64(len(failures))}, nil
}

// WriteScores normalises the rows of shards [First, Last) by their class
// statistics and writes them as result parts.
func (a *Activities) WriteScores(ctx context.Context, in job.WriteInput) (job.WriteResult, error) {
	defer heartbeatWhile(ctx)()
	st, err := a.openJob(ctx, in.Ref)
	if err != nil {
		return job.WriteResult{}, err
	}
	defer st.Close()
	classes, err := st.Classes(ctx)
	if err != nil {
		return job.WriteResult{}, err
	}
	stats := make(map[classKey]job.ClassRow, len(classes))
	for _, r := range classes {
		stats[classKey{r.Window, r.Class}] = r
	}
	var res job.WriteResult
	for i := in.First; i < in.Last; i++ {
		rows, err := st.ShardRows(ctx, i)
		if err != nil {
			return res, fmt.Errorf("shard %d: %w", i, err)
		}
		for j := range rows {
			r := &rows[j]
			c, ok := stats[classKey{r.Window, r.Class}]
			if !ok {
				return res, fmt.Errorf("%s has no statistics for window %s class %d", jobstore.ClassesKey, r.Window, r.Class)
			}
			r.VoGNorm = score.ZScore(r.VoG, c.Mean, c.Std)
			r.AbsVoGNorm = math.Abs(r.VoGNorm)
		}
		if err := st.WritePart(ctx, i, rows); err != nil {
			return res, err
		}
		res.Rows += int64(len(rows))
		res.Hardest = job.Hardest(append(res.Hardest, job.Hardest(rows, job.HardestCount)...), job.HardestCount)
	}
	return res, nil
}

// Finish writes _SUCCESS, listing the result parts and their sizes, after
// removing result parts that are not this job's (left by another job that
// held --out before): jobstore.Store.Finish. It is written last: its
// presence means the job's result is complete.
func (a *Activities) Finish(ctx context.Context, in job.FinishInput) (job.FinishResult, error) {
	defer heartbeatWhile(ctx)()
	st, err := a.openJob(ctx, in.Ref)
	if err != nil {
		return job.FinishResult{}, err
	}
	defer st.Close()
	parts, err := st.Finish(ctx, in.Rows, in.Failures)
	return job.FinishResult{Parts: parts}, err
}
