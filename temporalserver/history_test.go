package temporalserver_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	sdkclient "go.temporal.io/sdk/client"
	tlog "go.temporal.io/sdk/log"
	sdkworker "go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/vogscore/vog/client"
	"github.com/vogscore/vog/engine"
	"github.com/vogscore/vog/engine/linear"
	"github.com/vogscore/vog/internal/short"
	"github.com/vogscore/vog/internal/testjob"
	"github.com/vogscore/vog/job"
	"github.com/vogscore/vog/temporalserver"
	"github.com/vogscore/vog/worker"
	"github.com/vogscore/vog/workflows"
)

// fetchHistory returns the history of one run of workflow id ("" the
// latest) from the server.
func fetchHistory(t *testing.T, c sdkclient.Client, id, runID string) *historypb.History {
	t.Helper()
	hist := &historypb.History{}
	it := c.GetWorkflowHistory(t.Context(), id, runID, false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	for it.HasNext() {
		e, err := it.Next()
		if err != nil {
			t.Fatal(err)
		}
		hist.Events = append(hist.Events, e)
	}
	return hist
}

// keepHistory replays a finished run's history against the current
// workflow code and, with VOG_UPDATE_HISTORY=1, saves it as
// workflows/testdata/NAME.history.json, which the workflows package's
// TestReplay replays (without a server) from then on.
func keepHistory(t *testing.T, hist *historypb.History, name string) {
	t.Helper()
	started := hist.Events[0].GetWorkflowExecutionStartedEventAttributes()
	replayer := sdkworker.NewWorkflowReplayer()
	replayer.RegisterWorkflow(workflows.ScoreJob)
	replayer.RegisterWorkflow(workflows.ScoreShards)
	replayer.RegisterWorkflow(workflows.WatchRun)
	replayer.RegisterWorkflow(workflows.ScanRuns)
	// Child ids derive from the parent's: replay under the original id.
	opts := sdkworker.ReplayWorkflowHistoryOptions{OriginalExecution: workflow.Execution{ID: started.GetWorkflowId()}}
	if err := replayer.ReplayWorkflowHistoryWithOptions(nil, hist, opts); err != nil {
		t.Fatalf("replay %s: %v", name, err)
	}
	if os.Getenv("VOG_UPDATE_HISTORY") == "" {
		return
	}
	var events []json.RawMessage
	for _, e := range hist.Events {
		b, err := protojson.Marshal(e)
		if err != nil {
			t.Fatal(err)
		}
		events = append(events, b)
	}
	b, _ := json.MarshalIndent(map[string]any{"events": events}, "", " ")
	if err := os.WriteFile(filepath.Join("..", "workflows", "testdata", name+".history.json"), b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// hasMarker reports whether a history records change id's version marker.
func hasMarker(h *historypb.History, id string) bool {
	for _, e := range h.Events {
		m := e.GetMarkerRecordedEventAttributes()
		if m == nil || m.GetMarkerName() != "Version" {
			continue
		}
		for _, p := range m.GetDetails()["change-id"].GetPayloads() {
			if string(p.GetData()) == strconv.Quote(id) {
				return true
			}
		}
	}
	return false
}

// lastEvent returns a history's closing event.
func lastEvent(h *historypb.History) *historypb.HistoryEvent { return h.Events[len(h.Events)-1] }

// heldLoader holds every checkpoint load until hold is closed.
type heldLoader struct {
	engine.Loader
	hold chan struct{}
}

func (l heldLoader) Load(data []byte, name string) (engine.Driver, error) {
	<-l.hold
	return l.Loader.Load(data, name)
}

// TestRecordHistories runs vog watch's and schedules' workflows on the
// embedded server and replays each history against the current code:
// ScanRuns starting a run's job, and again while that job runs; a
// WatchRun that folds checkpoints found in its run and announced (one
// refused), continues as new and ends with its run's job; a fold child and
// that job's checkpoint-group child (ScoreShards). The server suggests
// continuing as new after 40 events, as it does after 4096 to a watch that
// has waited a day, and the watch does so (workflows.SuggestedContinueAsNew)
// long before its PerRun checkpoints. VOG_UPDATE_HISTORY=1 saves the
// histories for the workflows package's TestReplay (docs/design.md,
// "Upgrading workers while jobs run").
func TestRecordHistories(t *testing.T) {
	short.Skip(t, "a Temporal server")
	t.TempDir() // removed after the server and worker below stop
	srv, err := temporalserver.Start(temporalserver.Options{SuggestContinueAsNew: 40})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Stop() })
	quiet := tlog.NewStructuredLogger(slog.New(slog.NewTextHandler(io.Discard, nil)))
	c, err := sdkclient.Dial(sdkclient.Options{HostPort: srv.HostPort(), Namespace: temporalserver.Namespace, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	hold := make(chan struct{})
	w, err := worker.Start(c, worker.Config{Loader: heldLoader{linear.Loader{}, hold}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Stop)
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()

	dir := t.TempDir()
	images, labels := testjob.Dataset(50, 4, 4, 3)
	prefix, err := testjob.WriteIDX(dir, "toy", 4, 4, images, labels)
	if err != nil {
		t.Fatal(err)
	}
	spec := job.Spec{Dataset: job.Dataset{Format: "idx", URL: prefix}, ShardSize: 25, BatchSize: 8}

	// A schedule's scan: run-a has its marker, run-b not. The job it
	// starts is held at its first checkpoint load, so that a second scan
	// finds it running.
	runs := filepath.Join(dir, "runs")
	for _, name := range []string{"run-a", "run-b"} {
		if _, err := testjob.WriteCheckpoints(filepath.Join(runs, name), testjob.Linear(2, 3, 4, 4)); err != nil {
			t.Fatal(err)
		}
	}
	os.WriteFile(filepath.Join(runs, "run-a", "DONE"), nil, 0o644)
	scan := job.ScanRequest{Job: job.Request{Spec: spec}, Runs: runs, Marker: "DONE", OutPrefix: filepath.Join(dir, "scored")}
	var scans [2]job.ScanResult
	for i, id := range []string{"vog-scan-1", "vog-scan-2"} {
		run, err := c.ExecuteWorkflow(ctx, sdkclient.StartWorkflowOptions{ID: id, TaskQueue: job.ReduceQueue}, workflows.ScanRuns, scan)
		if err == nil {
			err = run.Get(ctx, &scans[i])
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if len(scans[0].Started) != 1 || len(scans[1].Running) != 1 || len(scans[1].Started) != 0 {
		t.Fatalf("scans %+v", scans)
	}
	keepHistory(t, fetchHistory(t, c, "vog-scan-1", ""), "scanruns")
	keepHistory(t, fetchHistory(t, c, "vog-scan-2", ""), "scanruns-running")
	close(hold)
	if err := c.GetWorkflow(ctx, scans[0].Started[0], "").Get(ctx, nil); err != nil {
		t.Fatal(err)
	}

	// A watch: two checkpoints written to its run, one of another model
	// announced and refused, one announced.
	run, elsewhere := filepath.Join(dir, "run"), filepath.Join(dir, "elsewhere")
	ckpts := testjob.Linear(3, 3, 4, 4)
	write := func(path string, ck linear.Checkpoint) {
		os.MkdirAll(filepath.Dir(path), 0o755)
		if err := os.WriteFile(path, ck.Marshal(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	watched := spec
	watched.Out = filepath.Join(dir, "watched")
	id, err := client.StartWatch(ctx, c, job.WatchRequest{Job: job.Request{Spec: watched}, Run: run, Marker: "DONE", Poll: 50 * time.Millisecond, PerRun: 100})
	if err != nil {
		t.Fatal(err)
	}
	firstRun := c.GetWorkflow(ctx, id, "").GetRunID()
	waitFolded := func(n int) {
		t.Helper()
		for end := time.Now().Add(time.Minute); ; time.Sleep(20 * time.Millisecond) {
			p, err := client.WatchStatus(ctx, c, id)
			if err == nil && len(p.Folded) == n {
				return
			}
			if time.Now().After(end) {
				t.Fatalf("waited a minute for %d checkpoints folded: %+v, %v", n, p, err)
			}
		}
	}
	write(filepath.Join(run, "epoch_1.pt"), ckpts[0])
	waitFolded(1)
	bad := filepath.Join(elsewhere, "other-model.pt")
	write(bad, testjob.Linear(1, 5, 4, 4)[0])
	if err := client.AddCheckpoint(ctx, c, id, bad); err == nil || !strings.Contains(err.Error(), "outputs") {
		t.Fatalf("a checkpoint of another model: %v", err)
	}
	announced := filepath.Join(elsewhere, "epoch_2.pt")
	write(announced, ckpts[1])
	if err := client.AddCheckpoint(ctx, c, id, announced); err != nil {
		t.Fatal(err)
	}
	waitFolded(2)
	write(filepath.Join(run, "epoch_3.pt"), ckpts[2])
	waitFolded(3)
	foldChild := fetchHistory(t, c, id+"/shards-00000", "")
	os.WriteFile(filepath.Join(run, "DONE"), nil, 0o644)
	var res job.Result
	if err := c.GetWorkflow(ctx, id, "").Get(ctx, &res); err != nil {
		t.Fatal(err)
	}
	if res.Rows != 50 {
		t.Fatalf("the watch's result %+v", res)
	}

	// The watch's runs, first to last.
	var chain []*historypb.History
	for runID := firstRun; runID != ""; {
		h := fetchHistory(t, c, id, runID)
		chain = append(chain, h)
		runID = lastEvent(h).GetWorkflowExecutionContinuedAsNewEventAttributes().GetNewExecutionRunId()
	}
	// 3 checkpoints, PerRun 100: the watch continued as new on the
	// server's suggestion, which each run after the first met.
	if len(chain) < 2 {
		t.Fatalf("the watch ran %d workflow runs, want it to continue as new when the server suggests it", len(chain))
	}
	for _, h := range chain[:len(chain)-1] {
		if !hasMarker(h, workflows.SuggestedContinueAsNew) {
			t.Fatalf("run %s continued as new without the %s marker", h.Events[0].GetWorkflowExecutionStartedEventAttributes().GetOriginalExecutionRunId(), workflows.SuggestedContinueAsNew)
		}
	}
	t.Logf("the watch ran %d workflow runs, of %d events", len(chain), func() (n []int) {
		for _, h := range chain {
			n = append(n, len(h.Events))
		}
		return n
	}())
	final := chain[len(chain)-1]
	var finalJob string
	for _, e := range final.Events {
		if a := e.GetStartChildWorkflowExecutionInitiatedEventAttributes(); a != nil {
			finalJob = a.GetWorkflowId()
		}
	}
	if finalJob == "" {
		t.Fatal("the watch's last run started no job")
	}
	keepHistory(t, chain[0], "watchrun")
	keepHistory(t, final, "watchrun-final")
	keepHistory(t, foldChild, "scoreshards-fold")
	keepHistory(t, fetchHistory(t, c, finalJob+"/shards-00000", ""), "scoreshards-groups")
}
