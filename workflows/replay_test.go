package workflows_test

import (
	"os"
	"testing"

	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/vogscore/vog/workflows"
)

// TestReplay replays a history recorded on a real server (see
// temporalserver.TestJobOnEmbeddedServer; VOG_UPDATE_HISTORY=1 rewrites it)
// against the current code: a change that would break running jobs fails.
func TestReplay(t *testing.T) {
	r := worker.NewWorkflowReplayer()
	r.RegisterWorkflow(workflows.ScoreJob)
	r.RegisterWorkflow(workflows.ScoreShards)
	f, err := os.Open("testdata/scorejob.history.json")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	hist, err := client.HistoryFromJSON(f, client.HistoryJSONOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// Child ids derive from the parent's: replay under the original id.
	opts := worker.ReplayWorkflowHistoryOptions{OriginalExecution: workflow.Execution{ID: "vog-test"}}
	if err := r.ReplayWorkflowHistoryWithOptions(nil, hist, opts); err != nil {
		t.Fatal(err)
	}
}
