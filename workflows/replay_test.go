package workflows_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/vogscore/vog/workflows"
)

// readHistory reads a history saved as JSON under testdata.
func readHistory(t *testing.T, path string) *historypb.History {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	hist, err := client.HistoryFromJSON(f, client.HistoryJSONOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return hist
}

// replay replays a history against the current workflow code, under its
// original workflow id (child ids derive from the parent's).
func replay(hist *historypb.History) error {
	r := worker.NewWorkflowReplayer()
	r.RegisterWorkflow(workflows.ScoreJob)
	r.RegisterWorkflow(workflows.ScoreShards)
	r.RegisterWorkflow(workflows.WatchRun)
	r.RegisterWorkflow(workflows.ScanRuns)
	id := hist.Events[0].GetWorkflowExecutionStartedEventAttributes().GetWorkflowId()
	opts := worker.ReplayWorkflowHistoryOptions{OriginalExecution: workflow.Execution{ID: id}}
	return r.ReplayWorkflowHistoryWithOptions(nil, hist, opts)
}

// TestReplay replays every history under testdata, recorded on a real
// server, against the current code: a change that would break a running
// job, watch or scan fails here (docs/design.md, "Upgrading workers while
// jobs run"). NAME.history.json is what the current code records:
// temporalserver's TestJobOnEmbeddedServer and TestRecordHistories
// rewrite them with VOG_UPDATE_HISTORY=1. NAME-before-CHANGE.history.json
// was recorded before the workflow.GetVersion change CHANGE and is kept,
// never rewritten, while executions that predate it may run.
func TestReplay(t *testing.T) {
	paths, err := filepath.Glob("testdata/*.history.json")
	if err != nil {
		t.Fatal(err)
	}
	// One at least of each workflow.
	seen := map[string]bool{}
	for _, path := range paths {
		name := strings.TrimSuffix(filepath.Base(path), ".history.json")
		t.Run(name, func(t *testing.T) {
			hist := readHistory(t, path)
			seen[hist.Events[0].GetWorkflowExecutionStartedEventAttributes().GetWorkflowType().GetName()] = true
			if err := replay(hist); err != nil {
				t.Fatal(err)
			}
		})
	}
	for _, w := range []string{"ScoreJob", "ScoreShards", "WatchRun", "ScanRuns"} {
		if !seen[w] {
			t.Errorf("no recorded history of %s under testdata", w)
		}
	}
}
