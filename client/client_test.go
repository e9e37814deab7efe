package client_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	sdkclient "go.temporal.io/sdk/client"
	tlog "go.temporal.io/sdk/log"

	_ "gocloud.dev/blob/fileblob"

	"github.com/vogscore/vog/client"
	"github.com/vogscore/vog/engine"
	"github.com/vogscore/vog/engine/linear"
	"github.com/vogscore/vog/internal/short"
	"github.com/vogscore/vog/internal/testjob"
	"github.com/vogscore/vog/job"
	"github.com/vogscore/vog/temporalserver"
	"github.com/vogscore/vog/worker"
)

// gate is the linear engine with a gate in front of its gradient passes:
// scoring waits until the test opens it, so the test can look at a job in
// flight without depending on how fast it runs.
type gate struct {
	linear.Loader
	entered chan struct{} // receives once a gradient pass waits
	open    chan struct{} // closed to let every pass through
	once    *sync.Once
}

func newGate() gate {
	return gate{entered: make(chan struct{}), open: make(chan struct{}), once: new(sync.Once)}
}

func (g gate) Load(data []byte, name string) (engine.Driver, error) {
	d, err := g.Loader.Load(data, name)
	return gatedDriver{d, g}, err
}

type gatedDriver struct {
	engine.Driver
	g gate
}

func (d gatedDriver) Grad(b *engine.Batch, s engine.Shape, t engine.Target, targets []int64, logits, grads []float32) (int, error) {
	d.g.once.Do(func() { close(d.g.entered) })
	<-d.g.open
	return d.Driver.Grad(b, s, t, targets, logits, grads)
}

// cluster is an embedded server with one worker of both queues.
func cluster(t *testing.T, loader engine.Loader) sdkclient.Client {
	t.Helper()
	short.Skip(t, "a Temporal server")
	// The test's temporary directories go in a cleanup registered by the
	// first t.TempDir; taking one first removes them after the worker and
	// server below have stopped, not under a job still writing there.
	t.TempDir()
	srv, err := temporalserver.Start(temporalserver.Options{})
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
	w, err := worker.Start(c, worker.Config{Loader: loader})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Stop)
	return c
}

// toySpec is a job of 50 examples in 2 shards over 4 linear checkpoints.
func toySpec(t *testing.T) job.Spec {
	dir := t.TempDir()
	images, labels := testjob.Dataset(50, 4, 4, 3)
	prefix, err := testjob.WriteIDX(dir, "toy", 4, 4, images, labels)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := testjob.WriteCheckpoints(filepath.Join(dir, "ckpt"), testjob.Linear(4, 3, 4, 4)); err != nil {
		t.Fatal(err)
	}
	return job.Spec{
		Dataset:     job.Dataset{Format: "idx", URL: prefix},
		Checkpoints: []string{filepath.Join(dir, "ckpt")},
		ShardSize:   25,
		BatchSize:   8,
		Out:         filepath.Join(dir, "out"),
	}
}

// TestSubmitStatusFollow submits a job whose gradient work is held at a
// gate, checks what Status reports while a checkpoint-group activity runs
// (it counts as a started shard activity, not as queued), then lets it
// finish and follows it to its result; submitting again reuses every shard.
func TestSubmitStatusFollow(t *testing.T) {
	g := newGate()
	c := cluster(t, g)
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	spec := toySpec(t)
	spec.CheckpointGroup = 2
	id, err := client.Submit(ctx, c, job.Request{Spec: spec, MaxInFlight: 1})
	if err != nil {
		t.Fatal(err)
	}
	if want, _ := client.WorkflowID(spec); id != want {
		t.Fatalf("id %s, want %s", id, want)
	}
	<-g.entered
	var st client.JobStatus
	for st.Started == 0 {
		if st, err = client.Status(ctx, c, id); err != nil && ctx.Err() != nil {
			t.Fatalf("no started activity in the status: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if st.Stage != job.StageScoring || st.Shards != 2 || st.Started != 1 || st.ShardsRunning < 1 {
		t.Fatalf("status while a group runs: %+v", st)
	}
	desc, err := client.Describe(ctx, c, id)
	if err != nil || !strings.Contains(desc, "running") || !strings.Contains(desc, "1 running") {
		t.Fatalf("describe while running: %v\n%s", err, desc)
	}

	var lines bytes.Buffer
	done := make(chan struct{})
	var res job.Result
	go func() {
		defer close(done)
		res, err = client.Follow(ctx, c, id, &lines, 10*time.Millisecond)
	}()
	time.Sleep(100 * time.Millisecond) // a few progress lines while held
	close(g.open)
	<-done
	if err != nil {
		t.Fatal(err)
	}
	if res.Rows != 50 || res.Shards != 2 || len(res.Failed) != 0 || res.Reused != 0 {
		t.Fatalf("result %+v", res)
	}
	if !strings.Contains(lines.String(), "scoring [") {
		t.Fatalf("no progress bar in:\n%s", lines.String())
	}
	if desc, err := client.Describe(ctx, c, id); err != nil || !strings.Contains(desc, "completed") || !strings.Contains(desc, "50 rows") {
		t.Fatalf("describe when done: %v\n%s", err, desc)
	}
	in, err := client.Input(ctx, c, id)
	if err != nil || in.Spec.Out != spec.Out || in.Spec.CheckpointGroup != 2 {
		t.Fatalf("input %+v, %v", in, err)
	}

	// The same job again: a new run of the same id, every shard reused.
	again, err := client.Submit(ctx, c, in)
	if err != nil || again != id {
		t.Fatalf("resubmitted as %s (%v), want %s", again, err, id)
	}
	res, err = client.Follow(ctx, c, id, &lines, time.Second)
	if err != nil || res.Reused != 2 || res.Rows != 50 {
		t.Fatalf("second run: %+v, %v", res, err)
	}
}

// TestFollowCanceled: Follow returns as soon as its context ends, while
// the job goes on to finish; run with -race, it also shows that nothing
// it returns is still being written.
func TestFollowCanceled(t *testing.T) {
	g := newGate()
	c := cluster(t, g)
	id, err := client.Submit(t.Context(), c, job.Request{Spec: toySpec(t)})
	if err != nil {
		t.Fatal(err)
	}
	<-g.entered
	ctx, cancel := context.WithCancel(t.Context())
	time.AfterFunc(50*time.Millisecond, cancel)
	res, err := client.Follow(ctx, c, id, &bytes.Buffer{}, 10*time.Millisecond)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v, want context.Canceled", err)
	}
	if res.Rows != 0 || res.Ref.Out != "" {
		t.Fatalf("a canceled Follow returned %+v", res)
	}
	// The job did not stop with its follower: it finishes once let go.
	// Following it to the end also keeps its writes out of the cleanup.
	close(g.open)
	if res, err = client.Follow(t.Context(), c, id, &bytes.Buffer{}, 10*time.Millisecond); err != nil || res.Rows != 50 {
		t.Fatalf("the job after its follower left: %+v, %v", res, err)
	}
}

func TestExplainNamesTheCulprit(t *testing.T) {
	c := cluster(t, linear.Loader{})
	spec := toySpec(t)
	spec.Checkpoints = []string{filepath.Join(t.TempDir(), "missing.pt")}
	id, err := client.Submit(t.Context(), c, job.Request{Spec: spec})
	if err != nil {
		t.Fatal(err)
	}
	_, err = client.Follow(t.Context(), c, id, &bytes.Buffer{}, time.Second)
	if err == nil || !strings.Contains(err.Error(), "missing.pt: no such file") || strings.Contains(err.Error(), "workflow execution error") {
		t.Fatalf("got %v, want the activity's own message", err)
	}
}
