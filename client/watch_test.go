package client_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	enums "go.temporal.io/api/enums/v1"
	sdkclient "go.temporal.io/sdk/client"

	"github.com/vogscore/vog/client"
	"github.com/vogscore/vog/engine"
	"github.com/vogscore/vog/engine/linear"
	"github.com/vogscore/vog/internal/testjob"
	"github.com/vogscore/vog/job"
	"github.com/vogscore/vog/jobstore"
)

// waitFor polls cond until it holds, failing the test after a minute.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for end := time.Now().Add(time.Minute); !cond(); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(end) {
			t.Fatalf("waited a minute for %s", what)
		}
	}
}

func writeCheckpoint(t *testing.T, path string, c linear.Checkpoint) {
	t.Helper()
	os.MkdirAll(filepath.Dir(path), 0o755)
	if err := os.WriteFile(path, c.Marshal(), 0o644); err != nil {
		t.Fatal(err)
	}
}

func rowsOf(t *testing.T, out string) []job.ScoreRow {
	t.Helper()
	var rows []job.ScoreRow
	err := jobstore.ScanScores(t.Context(), out, func(part []job.ScoreRow) error {
		rows = append(rows, part...)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.SortFunc(rows, func(a, b job.ScoreRow) int { return int(a.Index - b.Index) })
	return rows
}

// TestWatch feeds a watch checkpoints one by one, as a training run writes
// them and as a training script announces them; a checkpoint of another
// model is refused with the reason and the watch goes on; the run's marker
// ends it with the rows of a --checkpoint-group 1 job on the same
// checkpoints. Two checkpoints per workflow run make it continue as new.
func TestWatch(t *testing.T) {
	c := cluster(t, linear.Loader{})
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	spec := toySpec(t)
	run, elsewhere := t.TempDir(), t.TempDir()
	ckpts := testjob.Linear(4, 3, 4, 4)
	id, err := client.StartWatch(ctx, c, job.WatchRequest{Job: job.Request{Spec: spec}, Run: run, Marker: "DONE", Poll: 50 * time.Millisecond, PerRun: 2})
	if err != nil {
		t.Fatal(err)
	}
	folded := func(n int) func() bool {
		return func() bool {
			p, err := client.WatchStatus(ctx, c, id)
			return err == nil && len(p.Folded) == n
		}
	}
	firstRun := c.GetWorkflow(ctx, id, "").GetRunID()
	var order []string
	for k := range 3 {
		path := filepath.Join(run, "epoch_"+string(rune('1'+k))+".pt")
		writeCheckpoint(t, path, ckpts[k])
		order = append(order, path)
		waitFor(t, "checkpoint "+path+" to be folded", folded(k+1))
	}
	bad := filepath.Join(elsewhere, "other-model.pt")
	writeCheckpoint(t, bad, testjob.Linear(1, 5, 4, 4)[0])
	if err := client.AddCheckpoint(ctx, c, id, bad); err == nil || !strings.Contains(err.Error(), "5 outputs, the run's checkpoints 3") {
		t.Fatalf("a checkpoint of another model: %v", err)
	}
	announced := filepath.Join(elsewhere, "epoch_4.pt")
	writeCheckpoint(t, announced, ckpts[3])
	if err := client.AddCheckpoint(ctx, c, id, announced); err != nil {
		t.Fatal(err)
	}
	if err := client.AddCheckpoint(ctx, c, id, announced); err == nil || !strings.Contains(err.Error(), "already") {
		t.Fatalf("the same checkpoint twice: %v", err)
	}
	order = append(order, announced)
	waitFor(t, "the announced checkpoint to be folded", folded(4))
	p, err := client.WatchStatus(ctx, c, id)
	// Announced checkpoints are named by URL, as the run's listing names them.
	if err != nil || len(p.Refused) != 1 || p.Refused[0].Checkpoint != "file://"+bad {
		t.Fatalf("refusals %+v, %v", p.Refused, err)
	}
	if c.GetWorkflow(ctx, id, "").GetRunID() == firstRun {
		t.Fatal("the watch did not continue as new after two checkpoints")
	}

	os.WriteFile(filepath.Join(run, "DONE"), nil, 0o644)
	var lines bytes.Buffer
	res, err := client.FollowWatch(ctx, c, id, &lines, 20*time.Millisecond)
	if err != nil {
		t.Fatalf("%v\n%s", err, lines.String())
	}
	if res.Rows != 50 || len(res.Failed) != 0 {
		t.Fatalf("result %+v", res)
	}

	// A job of the same checkpoints with --checkpoint-group 1.
	want := spec
	want.Out, want.CheckpointGroup, want.Checkpoints = t.TempDir(), 1, order
	wid, err := client.Submit(ctx, c, job.Request{Spec: want})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := client.Follow(ctx, c, wid, &lines, time.Hour); err != nil {
		t.Fatal(err)
	}
	got, exp := rowsOf(t, spec.Out), rowsOf(t, want.Out)
	if len(got) != len(exp) {
		t.Fatalf("%d rows, want %d", len(got), len(exp))
	}
	for i := range got {
		if d := got[i].VoG - exp[i].VoG; d > 1e-5*exp[i].VoG || d < -1e-5*exp[i].VoG || got[i].Index != exp[i].Index {
			t.Fatalf("row %d: %+v, want %+v", i, got[i], exp[i])
		}
	}
}

// loadGate holds every checkpoint load until opened, and tells each one
// that begins on began.
type loadGate struct {
	engine.Loader
	began, open chan struct{}
}

func (g loadGate) Load(data []byte, name string) (engine.Driver, error) {
	select {
	case g.began <- struct{}{}:
	default: // no one listens any more
	}
	<-g.open
	return g.Loader.Load(data, name)
}

// TestWatchPollAndAnnounce: a checkpoint announced while the watch's poll
// of the run folder is still checking it is refused as known, and folded
// once, not twice.
func TestWatchPollAndAnnounce(t *testing.T) {
	g := loadGate{Loader: linear.Loader{}, began: make(chan struct{}, 1), open: make(chan struct{})}
	c := cluster(t, g)
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	spec, run := toySpec(t), t.TempDir()
	id, err := client.StartWatch(ctx, c, job.WatchRequest{Job: job.Request{Spec: spec}, Run: run, Marker: "DONE", Poll: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ckpts := testjob.Linear(2, 3, 4, 4)
	first := filepath.Join(run, "epoch_1.pt")
	writeCheckpoint(t, first, ckpts[0])
	<-g.began // the poll found it and checks it
	// Announced as vog watch --add does, waiting only for the verdict: a
	// second check would wait for the gradient worker's one slot.
	h, err := c.UpdateWorkflow(ctx, sdkclient.UpdateWorkflowOptions{
		WorkflowID: id, UpdateName: job.AddCheckpointUpdate, Args: []any{"file://" + first}, WaitForStage: sdkclient.WorkflowUpdateStageAccepted,
	})
	if err == nil {
		it := c.GetWorkflowHistory(ctx, id, "", false, 0)
		for it.HasNext() {
			if e, err := it.Next(); err == nil && e.GetEventType() == enums.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED {
				close(g.open)
				t.Fatal("a checkpoint announced while the poll checks it was accepted again")
			}
		}
		err = h.Get(ctx, nil)
	}
	if err == nil || !strings.Contains(err.Error(), "already being checked") {
		t.Fatalf("announced while the poll checks it: %v", err)
	}
	close(g.open)
	writeCheckpoint(t, filepath.Join(run, "epoch_2.pt"), ckpts[1])
	waitFor(t, "two checkpoints to be folded", func() bool {
		p, err := client.WatchStatus(ctx, c, id)
		return err == nil && len(p.Folded) == 2
	})
	os.WriteFile(filepath.Join(run, "DONE"), nil, 0o644)
	res, err := client.FollowWatch(ctx, c, id, &bytes.Buffer{}, 20*time.Millisecond)
	if err != nil || res.Rows != 50 {
		t.Fatalf("result %+v, %v", res, err)
	}
	p, err := client.WatchStatus(ctx, c, id)
	if err != nil || len(p.Folded) != 2 || p.Folded[0] == p.Folded[1] {
		t.Fatalf("folded %v, %v", p.Folded, err)
	}
}

// TestSchedule: a schedule over a folder of two runs, one finished (its
// marker is there) and one still training, starts exactly one job, for
// the finished run; a second trigger at the same moment starts none, and a
// trigger once it is scored neither.
func TestSchedule(t *testing.T) {
	c := cluster(t, linear.Loader{})
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	base := toySpec(t)
	runs, outs := t.TempDir(), t.TempDir()
	for _, name := range []string{"run-a", "run-b"} {
		if _, err := testjob.WriteCheckpoints(filepath.Join(runs, name), testjob.Linear(3, 3, 4, 4)); err != nil {
			t.Fatal(err)
		}
	}
	os.WriteFile(filepath.Join(runs, "run-a", "DONE"), nil, 0o644)
	req := job.ScanRequest{Job: job.Request{Spec: base}, Runs: runs, Marker: "DONE", OutPrefix: outs}
	if err := client.CreateSchedule(ctx, c, "nightly", time.Hour, req); err != nil {
		t.Fatal(err)
	}
	defer client.DeleteSchedule(context.Background(), c, "nightly")
	// Paused, it acts only when triggered, not also on the hour.
	if err := client.PauseSchedule(ctx, c, "nightly", true); err != nil {
		t.Fatal(err)
	}
	// Two triggers at once: the schedule takes one action (its scans are
	// named by the second), which starts one job.
	var wg sync.WaitGroup
	for range 2 {
		wg.Go(func() {
			if err := client.TriggerSchedule(ctx, c, "nightly"); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	var scans []job.ScanResult
	waitFor(t, "a scan", func() bool {
		var err error
		scans, err = client.ScheduleScans(ctx, c, "nightly")
		return err == nil && len(scans) > 0
	})
	// Two scans at once, as two schedules over the same runs would run:
	// the job's workflow id keeps the run from being scored twice.
	var twin [2]job.ScanResult
	for i := range twin {
		wg.Go(func() {
			run, err := c.ExecuteWorkflow(ctx, sdkclient.StartWorkflowOptions{ID: "scan-twin-" + string(rune('a'+i)), TaskQueue: job.ReduceQueue}, job.ScanWorkflow, req)
			if err == nil {
				err = run.Get(ctx, &twin[i])
			}
			if err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	var started []string
	for _, s := range append(scans, twin[:]...) {
		started = append(started, s.Started...)
		if len(s.Waiting) != 1 || s.Waiting[0] != "run-b" {
			t.Fatalf("scan %+v: run-b has no marker", s)
		}
	}
	if len(started) != 1 {
		t.Fatalf("scans at once started %v, want one job", started)
	}
	if _, err := client.Follow(ctx, c, started[0], &bytes.Buffer{}, time.Hour); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(outs, "run-a", jobstore.SuccessKey)); err != nil {
		t.Fatalf("run-a was not scored: %v", err)
	}
	if _, err := os.Stat(filepath.Join(outs, "run-b")); !os.IsNotExist(err) {
		t.Fatalf("run-b, without its marker, was scored: %v", err)
	}
	if err := client.TriggerSchedule(ctx, c, "nightly"); err != nil {
		t.Fatal(err)
	}
	// Its scan finds run-a done and starts nothing. The two triggers at
	// once may have made two scans if they fell in two seconds, the second
	// listed late; it would be done too, by now.
	waitFor(t, "a scan that finds run-a scored", func() bool {
		again, err := client.ScheduleScans(ctx, c, "nightly")
		if err != nil {
			return false
		}
		for _, s := range again[min(len(scans), len(again)):] {
			if len(s.Started) != 0 || len(s.Waiting) != 1 {
				t.Fatalf("a scan after run-a was scored: %+v", s)
			}
			if len(s.Done) == 1 && s.Done[0] == "run-a" {
				return true
			}
		}
		return false
	})
	var list, desc bytes.Buffer
	if err := client.ListSchedules(ctx, c, &list); err != nil || !strings.Contains(list.String(), "nightly\t") {
		t.Fatalf("list: %v\n%s", err, list.String())
	}
	// The server's description can lag the pause by a moment (once seen
	// here: "active" seconds after Pause returned), so wait for it.
	waitFor(t, "describe to show the pause and the jobs started", func() bool {
		desc.Reset()
		err := client.DescribeSchedule(ctx, c, "nightly", &desc)
		return err == nil && strings.Contains(desc.String(), "started vog-") && strings.Contains(desc.String(), ": paused;")
	})
}

// TestWatchMaxState: a watch whose one checkpoint's state is over its
// MaxState fails when planned, naming --max-state, with nothing written;
// one whose bound holds two checkpoints folds two, refuses the third with
// the reason and goes on, and reports the state's size.
func TestWatchMaxState(t *testing.T) {
	c := cluster(t, linear.Loader{})
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	// 50 examples of 4x4 in 2 shards: 2 x 52 + 50 x (8 x 16 + 42) bytes.
	const perCheckpoint = 8604
	spec := toySpec(t)
	run := t.TempDir()
	ckpts := testjob.Linear(3, 3, 4, 4)
	for k := range 3 {
		writeCheckpoint(t, filepath.Join(run, "epoch_"+string(rune('1'+k))+".pt"), ckpts[k])
	}

	small := spec
	small.Out = t.TempDir()
	id, err := client.StartWatch(ctx, c, job.WatchRequest{Job: job.Request{Spec: small}, Run: run, Marker: "DONE", Poll: 50 * time.Millisecond, MaxState: perCheckpoint - 1})
	if err != nil {
		t.Fatal(err)
	}
	var lines bytes.Buffer
	_, err = client.FollowWatch(ctx, c, id, &lines, 20*time.Millisecond)
	if err == nil || !strings.Contains(err.Error(), "over --max-state 8.603 kB") || !strings.Contains(err.Error(), "8.604 kB per checkpoint (50 examples x 16 pixels x 8 bytes") {
		t.Fatalf("a watch over its --max-state: %v\n%s", err, lines.String())
	}
	if entries, _ := os.ReadDir(small.Out); len(entries) != 0 {
		t.Fatalf("the refused watch wrote %d entries into --out", len(entries))
	}

	id, err = client.StartWatch(ctx, c, job.WatchRequest{Job: job.Request{Spec: spec}, Run: run, Marker: "DONE", Poll: 50 * time.Millisecond, MaxState: 2*perCheckpoint + 100})
	if err != nil {
		t.Fatal(err)
	}
	var p job.WatchProgress
	waitFor(t, "two checkpoints folded and one refused", func() bool {
		p, err = client.WatchStatus(ctx, c, id)
		return err == nil && len(p.Folded) == 2 && len(p.Refused) == 1
	})
	if p.State.PerCheckpoint != perCheckpoint || p.MaxState != 2*perCheckpoint+100 || !strings.HasSuffix(p.Refused[0].Checkpoint, "epoch_3.pt") ||
		!strings.Contains(p.Refused[0].Reason, "would take 25.81 kB with it, over --max-state 17.31 kB") {
		t.Fatalf("progress %+v", p)
	}
	os.WriteFile(filepath.Join(run, "DONE"), nil, 0o644)
	lines.Reset()
	res, err := client.FollowWatch(ctx, c, id, &lines, 20*time.Millisecond)
	if err != nil || res.Rows != 50 {
		t.Fatalf("%+v %v\n%s", res, err, lines.String())
	}
	if !strings.Contains(lines.String(), "watch state: 8.604 kB per checkpoint") || !strings.Contains(lines.String(), "--max-state 17.31 kB holds 2 checkpoint(s)") {
		t.Errorf("FollowWatch did not say the state's size:\n%s", lines.String())
	}
}
