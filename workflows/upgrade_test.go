package workflows_test

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/mock"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"

	"github.com/vogscore/vog/activities"
	"github.com/vogscore/vog/job"
	"github.com/vogscore/vog/workflows"
)

// markerVersion returns the version a history records for change id, or
// -2 where it records none (DefaultVersion is -1).
func markerVersion(t *testing.T, h *historypb.History, id string) workflow.Version {
	t.Helper()
	dc := converter.GetDefaultDataConverter()
	for _, e := range h.Events {
		m := e.GetMarkerRecordedEventAttributes()
		if m == nil || m.GetMarkerName() != "Version" {
			continue
		}
		var change string
		var v workflow.Version
		if err := dc.FromPayloads(m.GetDetails()["change-id"], &change); err != nil {
			t.Fatal(err)
		}
		if err := dc.FromPayloads(m.GetDetails()["version"], &v); err != nil {
			t.Fatal(err)
		}
		if change == id {
			return v
		}
	}
	return -2
}

// pollsAfterSuggestion reports whether a watch's history lists its run
// again after the server suggested that it continue as new.
func pollsAfterSuggestion(h *historypb.History) bool {
	suggested := false
	for _, e := range h.Events {
		if e.GetWorkflowTaskStartedEventAttributes().GetSuggestContinueAsNew() {
			suggested = true
		}
		if suggested && e.GetActivityTaskScheduledEventAttributes().GetActivityType().GetName() == "ListRun" {
			return true
		}
	}
	return false
}

// TestUpgradeMidWatch: a fleet upgraded while a watch runs, across
// workflows.SuggestedContinueAsNew (docs/design.md, "Upgrading workers
// while jobs run"). A watch run by the old code, which went on polling
// after the server suggested continuing as new, replays on the new code
// (its history has no marker: GetVersion gives DefaultVersion, the old
// path); the new code, on a new watch, records version 1 and continues as
// new at the suggestion, carrying what the watch has seen. Without the
// GetVersion guard the first replay fails (TestReplay's
// watchrun-before-suggested-continue-as-new), and the old code fails on
// the new history (TestReplay's watchrun): rolling back past the change
// breaks the watches started since.
func TestUpgradeMidWatch(t *testing.T) {
	old := readHistory(t, "testdata/watchrun-before-suggested-continue-as-new.history.json")
	if v := markerVersion(t, old, workflows.SuggestedContinueAsNew); v != -2 {
		t.Fatalf("the old history records version %d", v)
	}
	if !pollsAfterSuggestion(old) {
		t.Fatal("the old history does not reach the changed path: the watch never polled after the suggestion")
	}
	if err := replay(old); err != nil {
		t.Fatalf("a watch of the old code, taken over by the new: %v", err)
	}

	cur := readHistory(t, "testdata/watchrun.history.json")
	if v := markerVersion(t, cur, workflows.SuggestedContinueAsNew); v != 1 {
		t.Fatalf("a watch of the new code records version %d, want 1", v)
	}
	if cur.Events[len(cur.Events)-1].GetWorkflowExecutionContinuedAsNewEventAttributes() == nil {
		t.Fatal("a watch of the new code did not continue as new at the suggestion")
	}
	if err := replay(cur); err != nil {
		t.Fatal(err)
	}

	// Without a server: the SDK's test environment suggests continuing as
	// new from the start, and a new watch does so once planned, with
	// PerRun far off, carrying its state.
	var s testsuite.WorkflowTestSuite
	env := s.NewTestWorkflowEnvironment()
	var a *activities.Activities
	env.RegisterWorkflow(workflows.WatchRun)
	env.RegisterActivity(&activities.Activities{})
	env.OnActivity(a.PlanWatch, mock.Anything, mock.Anything).Return(job.WatchPlan{Shards: 2}, nil)
	env.SetContinueAsNewSuggested(true)
	in := job.WatchRequest{Job: job.Request{Spec: job.Spec{Out: "file:///out"}}, Run: "file:///run", PerRun: 100,
		State: job.WatchState{Folded: []string{"file:///run/epoch_1.pt"}}}
	env.ExecuteWorkflow(workflows.WatchRun, in)
	var can *workflow.ContinueAsNewError
	if err := env.GetWorkflowError(); !errors.As(err, &can) {
		t.Fatalf("a new watch, told to continue as new: %v", err)
	}
	var next job.WatchRequest
	if err := converter.GetDefaultDataConverter().FromPayloads(can.Input, &next); err != nil {
		t.Fatal(err)
	}
	if len(next.State.Folded) != 1 || next.State.Folded[0] != in.State.Folded[0] || next.PerRun != 100 {
		t.Fatalf("continued as new with %+v", next)
	}
	env.AssertExpectations(t)
}
