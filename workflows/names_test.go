package workflows_test

import (
	"fmt"
	"testing"

	"go.temporal.io/sdk/testsuite"

	"github.com/vogscore/vog/activities"
	"github.com/vogscore/vog/job"
)

// TestActivityNames: the activity names clients read (job's, which links
// no activities) are the names the SDK gives the methods that workflows
// call through a nil *Activities, and the worker registers them so.
func TestActivityNames(t *testing.T) {
	var a *activities.Activities
	for name, fn := range map[string]any{
		job.ScoreShardActivity:  a.ScoreShard,
		job.ScoreGroupActivity:  a.ScoreGroup,
		job.ReduceShardActivity: a.ReduceShard,
	} {
		// The method alone: the SDK registers it under its own name only.
		var s testsuite.WorkflowTestSuite
		env := s.NewTestWorkflowEnvironment()
		env.RegisterActivity(fn)
		if err := registered(env, name); err != nil {
			t.Errorf("%s: not the SDK's name of its method: %v", name, err)
		}
		// All of them, as worker.Start registers them.
		env = s.NewTestWorkflowEnvironment()
		env.RegisterActivity(&activities.Activities{})
		if err := registered(env, name); err != nil {
			t.Errorf("%s: not registered by the worker: %v", name, err)
		}
	}
}

// registered reports whether env has an activity of that name: OnActivity
// by name panics where it has none.
func registered(env *testsuite.TestWorkflowEnvironment, name string) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%v", r)
		}
	}()
	env.OnActivity(name, nil, nil)
	return nil
}
