package worker_test

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"go.temporal.io/sdk/client"

	_ "gocloud.dev/blob/fileblob"

	vogclient "github.com/vogscore/vog/client"
	"github.com/vogscore/vog/engine/linear"
	"github.com/vogscore/vog/engine/torch"
	"github.com/vogscore/vog/internal/short"
	"github.com/vogscore/vog/internal/testjob"
	"github.com/vogscore/vog/job"
	"github.com/vogscore/vog/temporalserver"
	"github.com/vogscore/vog/worker"
)

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		cfg  worker.Config
		flag string
	}{
		{worker.Config{Queues: []string{"gradients"}}, "--queue"},
		{worker.Config{Threads: -1}, "--threads"},
	}
	for _, tt := range tests {
		if err := tt.cfg.Validate(); err == nil || !strings.Contains(err.Error(), tt.flag) {
			t.Errorf("%+v: got %v, want an error naming %s", tt.cfg, err, tt.flag)
		}
	}
	if err := (worker.Config{Queues: []string{worker.QueueReduce, worker.QueueGradient}, Threads: 2}).Validate(); err != nil {
		t.Error(err)
	}
}

// TestCheckEnginesNamesTheLibrary: a gradient worker without its engine
// says which library it looked for, before it starts anything.
func TestCheckEnginesNamesTheLibrary(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "libvogtorch.so")
	err := worker.CheckEngines(worker.Config{EngineLib: missing}, "fp32")
	if err == nil || !strings.Contains(err.Error(), missing) {
		t.Fatalf("got %v, want an error naming %s", err, missing)
	}
	if _, err := worker.Start(nil, worker.Config{EngineLib: missing}); err == nil || !strings.Contains(err.Error(), missing) {
		t.Fatalf("Start: got %v, want an error naming %s", err, missing)
	}
	// The linear engine computes in float32 only: a bf16 job is refused
	// by flag name.
	if err := worker.CheckEngines(worker.Config{Loader: linear.Loader{}}, "bf16"); err == nil || !strings.Contains(err.Error(), "--precision bf16") {
		t.Fatalf("bf16 on the linear engine: %v", err)
	}
}

// TestQueuesOnSeparateWorkers runs a job with the reduce queue and the
// gradient queue served by two workers, as on a cluster: the reduce worker
// has no engine, so the job completes only if the gradient work went to the
// gradient worker, and the workflows and reduce work to the other.
func TestQueuesOnSeparateWorkers(t *testing.T) {
	short.Skip(t, "a Temporal server")
	srv, err := temporalserver.Start(temporalserver.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Stop()
	c, err := client.Dial(client.Options{HostPort: srv.HostPort(), Namespace: temporalserver.Namespace})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	reduce, err := worker.Start(c, worker.Config{Queues: []string{worker.QueueReduce}})
	if err != nil {
		t.Fatal(err)
	}
	defer reduce.Stop()
	gradient, err := worker.Start(c, worker.Config{Queues: []string{worker.QueueGradient}, Loader: linear.Loader{}})
	if err != nil {
		t.Fatal(err)
	}
	defer gradient.Stop()

	dir := t.TempDir()
	images, labels := testjob.Dataset(30, 3, 3, 2)
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
	id, err := vogclient.Submit(t.Context(), c, job.Request{Spec: spec})
	if err != nil {
		t.Fatal(err)
	}
	res, err := vogclient.Follow(t.Context(), c, id, &strings.Builder{}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if res.Rows != 30 || res.Shards != 3 {
		t.Fatalf("result %+v", res)
	}
}

// TestDevicesAuto: the default device, auto, is the first CUDA device
// where the engine sees one, else the cpu; a reduce worker has none.
func TestDevicesAuto(t *testing.T) {
	short.Skip(t, "libtorch")
	path, err := torch.Find()
	if errors.Is(err, torch.ErrNotFound) && os.Getenv("VOG_REQUIRE_TORCH") == "" {
		t.Skip(err)
	}
	if err != nil {
		t.Fatal(err)
	}
	lib, err := torch.Open(path, 0)
	if err != nil {
		t.Fatal(err)
	}
	auto := "cpu"
	if lib.CUDADevices() > 0 {
		auto = "cuda:0"
	}
	for _, tt := range []struct {
		cfg  worker.Config
		want []string
	}{
		{worker.Config{}, []string{auto}},
		{worker.Config{Device: "auto"}, []string{auto}},
		{worker.Config{Device: "cpu"}, []string{"cpu"}},
		{worker.Config{Devices: []string{"auto", "cpu"}}, []string{auto, "cpu"}},
		{worker.Config{Queues: []string{worker.QueueReduce}}, nil},
		{worker.Config{Loader: linear.Loader{}}, nil},
	} {
		got, err := worker.Devices(tt.cfg)
		if err != nil || !slices.Equal(got, tt.want) {
			t.Errorf("%+v: %q, %v; want %q", tt.cfg, got, err, tt.want)
		}
	}
	if _, err := worker.Devices(worker.Config{Device: "gpu"}); err == nil || !strings.Contains(err.Error(), "--device") {
		t.Errorf("gpu: %v, want an error naming --device", err)
	}
}
