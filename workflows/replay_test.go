package workflows_test

import (
	"testing"

	"go.temporal.io/sdk/worker"

	"github.com/vogscore/vog/workflows"
)

// TestReplay replays a history recorded on a real server (see
// temporalserver.TestJobOnEmbeddedServer; VOG_UPDATE_HISTORY=1 rewrites it)
// against the current code: a change that would break running jobs fails.
func TestReplay(t *testing.T) {
	r := worker.NewWorkflowReplayer()
	r.RegisterWorkflow(workflows.ScoreJob)
	if err := r.ReplayWorkflowHistoryFromJSONFile(nil, "testdata/scorejob.history.json"); err != nil {
		t.Fatal(err)
	}
}
