package temporalserver_test

import (
	"path/filepath"
	"testing"

	"go.temporal.io/sdk/client"

	_ "gocloud.dev/blob/fileblob"

	"github.com/vogscore/vog/engine/linear"
	"github.com/vogscore/vog/internal/short"
	"github.com/vogscore/vog/internal/testjob"
	"github.com/vogscore/vog/job"
	"github.com/vogscore/vog/temporalserver"
	"github.com/vogscore/vog/worker"
	"github.com/vogscore/vog/workflows"
)

// TestJobOnEmbeddedServer runs a job through the embedded server with real
// workers (the closed-form linear engine), restarts the server on its SQLite
// file, finds the finished workflow there, and replays its history against
// the current workflow code, and its child's. VOG_UPDATE_HISTORY=1 saves
// them for the workflows package's TestReplay.
func TestJobOnEmbeddedServer(t *testing.T) {
	short.Skip(t, "a Temporal server")
	dir := t.TempDir()
	db := filepath.Join(dir, "state", "temporal.sqlite")
	srv, err := temporalserver.Start(temporalserver.Options{DatabaseFile: db})
	if err != nil {
		t.Fatal(err)
	}
	c, err := client.Dial(client.Options{HostPort: srv.HostPort(), Namespace: temporalserver.Namespace})
	if err != nil {
		t.Fatal(err)
	}
	w, err := worker.Start(c, worker.Config{Loader: linear.Loader{}})
	if err != nil {
		t.Fatal(err)
	}

	images, labels := testjob.Dataset(40, 3, 3, 2)
	prefix, err := testjob.WriteIDX(dir, "toy", 3, 3, images, labels)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := testjob.WriteCheckpoints(filepath.Join(dir, "ckpt"), testjob.Linear(3, 2, 3, 3)); err != nil {
		t.Fatal(err)
	}
	spec := job.Spec{
		Dataset:     job.Dataset{Format: "idx", URL: prefix},
		Checkpoints: []string{filepath.Join(dir, "ckpt")},
		ShardSize:   10,
		BatchSize:   10,
		Out:         filepath.Join(dir, "out"),
	}
	run, err := c.ExecuteWorkflow(t.Context(), client.StartWorkflowOptions{ID: "vog-test", TaskQueue: job.ReduceQueue},
		workflows.ScoreJob, job.Request{Spec: spec, MaxInFlight: 2, ShardsPerWrite: 2})
	if err != nil {
		t.Fatal(err)
	}
	var res job.Result
	if err := run.Get(t.Context(), &res); err != nil {
		t.Fatal(err)
	}
	if res.Rows != 40 || res.Shards != 4 || res.Parts != 4 {
		t.Fatalf("result %+v", res)
	}
	w.Stop()
	c.Close()
	if err := srv.Stop(); err != nil {
		t.Fatal(err)
	}

	// The state survives a restart.
	srv, err = temporalserver.Start(temporalserver.Options{DatabaseFile: db})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Stop()
	c, err = client.Dial(client.Options{HostPort: srv.HostPort(), Namespace: temporalserver.Namespace})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var again job.Result
	if err := c.GetWorkflow(t.Context(), "vog-test", "").Get(t.Context(), &again); err != nil {
		t.Fatal(err)
	}
	if again.Rows != res.Rows {
		t.Fatalf("after a restart: %+v", again)
	}

	keepHistory(t, fetchHistory(t, c, "vog-test", ""), "scorejob")
	keepHistory(t, fetchHistory(t, c, "vog-test/shards-00000", ""), "scoreshards")
}
