package activities

import (
	"github.com/vogscore/vog/job"
	"github.com/vogscore/vog/score"
)

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
