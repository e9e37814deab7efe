package activities

import (
	"context"
	"sort"

	"go.temporal.io/sdk/activity"

	"github.com/vogscore/vog/dataset"
	"github.com/vogscore/vog/engine"
	"github.com/vogscore/vog/job"
	"github.com/vogscore/vog/jobstore"
	"github.com/vogscore/vog/score"
	"github.com/vogscore/vog/shard"
)

// What the shard activities (ScoreShard, ScoreGroup, ReduceShard) share:
// opening a shard, its inputs, reuse, and the scores they collect.

// openShard opens job ref's output, with its job bound, and checks the
// shard index.
func (a *Activities) openShard(ctx context.Context, ref job.Ref, i int) (*jobstore.Store, shard.Range, error) {
	st, err := a.openJob(ctx, ref)
	if err != nil {
		return nil, shard.Range{}, err
	}
	j := st.Job()
	if i < 0 || i >= j.Shards {
		st.Close()
		return nil, shard.Range{}, job.BadJob("shard %d of a job of %d shards", i, j.Shards)
	}
	return st, j.Layout().Nth(i), nil
}

// shardDone reports whether shard i is done (jobstore.Store.ShardDone),
// with its failures, and warns where a shard that is there does not
// verify: it is computed again, its files overwritten.
func shardDone(ctx context.Context, st *jobstore.Store, i int) (bool, []job.FailureRow, error) {
	s, err := st.ShardDone(ctx, i)
	if s.Why != "" {
		activity.GetLogger(ctx).Warn("recomputing a shard whose outputs do not verify", "shard", i, "why", s.Why)
	}
	return s.Done, s.Failures, err
}

// shardInputs reads a shard's slice of the index, the job's checkpoints of
// the given indices and its dataset reader (both cached by the worker).
func (a *Activities) shardInputs(ctx context.Context, st *jobstore.Store, r shard.Range, checkpoints ...int) ([]job.IndexRow, []*engine.Model, dataset.Reader, error) {
	rows, err := st.Index(ctx, r)
	if err != nil {
		return nil, nil, nil, err
	}
	models, err := a.loadModels(ctx, st.Job(), checkpoints...)
	if err != nil {
		return nil, nil, nil, err
	}
	reader, err := a.openReader(ctx, st.Job())
	if err != nil {
		return nil, nil, nil, err
	}
	return rows, models, reader, nil
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

type classKey struct {
	window string
	class  int32
}

// shardScores collects a shard's rows, its exact class moments, and the
// examples that failed.
type shardScores struct {
	shard    int
	rows     []job.ScoreRow
	classes  map[classKey]*score.ClassMoments
	failures []job.FailureRow
}

func (o *shardScores) add(row job.IndexRow, win string, target, pred int32, vog float64, x score.Scores) {
	o.rows = append(o.rows, job.ScoreRow{
		Index:       row.Index,
		ExampleID:   row.ExampleID,
		Label:       row.Label,
		Pred:        pred,
		Class:       target,
		Window:      win,
		VoG:         vog,
		Loss:        x.Loss,
		ConfMean:    x.ConfMean,
		ConfStd:     x.ConfStd,
		MarginMean:  x.MarginMean,
		EL2N:        x.EL2N,
		Forgetting:  x.Forgetting,
		GradNorm:    x.GradNorm,
		CorrectLast: x.CorrectLast,
	})
	if o.classes == nil {
		o.classes = map[classKey]*score.ClassMoments{}
	}
	key := classKey{win, target}
	cm := o.classes[key]
	if cm == nil {
		cm = &score.ClassMoments{}
		o.classes[key] = cm
	}
	cm.Add(vog)
}

// fail records example row's failure.
func (o *shardScores) fail(row job.IndexRow, err error) {
	o.failures = append(o.failures, job.Failure(row, o.shard, err))
}

// addBatch adds the rows of a folded batch, one per example and window, and
// its failed examples.
func (o *shardScores) addBatch(s *scorer, batch []job.IndexRow) {
	for i, row := range batch {
		if s.fails[i] != nil {
			o.fail(row, s.fails[i])
			continue
		}
		for w, win := range s.windows {
			x := score.WindowScores(s.perCkpt[i][win.Lo:win.Hi], s.gradNorms[w][i])
			o.add(row, win.Name, int32(s.targets[w][i]), s.preds[w][i], s.moments[w][i].VoG(), x)
		}
	}
}

// write writes the shard's files (jobstore.Store.WriteShard), its class
// sums sorted by window and class.
func (o *shardScores) write(ctx context.Context, st *jobstore.Store) error {
	crow := make([]job.ShardClassRow, 0, len(o.classes))
	for c, m := range o.classes {
		text, _ := m.MarshalText()
		crow = append(crow, job.ShardClassRow{Window: c.window, Class: c.class, Moments: string(text)})
	}
	sort.Slice(crow, func(a, b int) bool {
		if crow[a].Window != crow[b].Window {
			return crow[a].Window < crow[b].Window
		}
		return crow[a].Class < crow[b].Class
	})
	return st.WriteShard(ctx, o.shard, o.rows, o.failures, crow)
}
