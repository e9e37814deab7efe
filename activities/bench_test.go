package activities_test

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/vogscore/vog/engine"
	"github.com/vogscore/vog/engine/torch"
	"github.com/vogscore/vog/internal/enginebench"
	"github.com/vogscore/vog/job"
)

// BenchmarkShardVsEngine compares one ScoreShard activity (decoding,
// moments, heartbeats, Parquet; no Temporal server) with the bare engine on
// the same checkpoints and examples, in interleaved rounds.
func BenchmarkShardVsEngine(b *testing.B) {
	const data = "/usr/share/datasets/fashion-mnist/t10k"
	path, err := torch.Find()
	if errors.Is(err, torch.ErrNotFound) || func() bool { _, e := os.Stat(data + "-images-idx3-ubyte.gz"); return e != nil }() {
		b.Skip("needs libvogtorch.so and dataset-fashion-mnist")
	}
	lib, err := torch.Open(path, 2)
	if err != nil {
		b.Fatal(err)
	}
	loader, err := lib.Loader(torch.Options{})
	if err != nil {
		b.Fatal(err)
	}
	ckptDir, _ := filepath.Abs("../testdata/fmnist/ckpt")
	spec := job.Dataset{Format: "idx", URL: data}
	const batch = 128
	bare := enginebench.Bare(b, loader, ckptDir, data, engine.Shape{C: 1, H: 28, W: 28}, batch)
	n := 10000
	shard := shardRate(b, loader, job.Spec{Dataset: spec, Checkpoints: []string{ckptDir}, ShardSize: n, BatchSize: batch})
	b.ResetTimer()
	enginebench.Compare(b, enginebench.Rounds(3), "engine-ex/s", bare, "shard-ex/s", shard, "shard/engine")
}

// shardRate returns a function that plans spec as a new job (its shard size
// holding every example) and runs its one ScoreShard activity in-process
// through loader, returning examples per second. It runs once before
// returning, to load the models as a worker does once.
func shardRate(b *testing.B, loader engine.Loader, spec job.Spec) func() float64 {
	env := newEnv(b)
	env.acts.Loader = loader
	rate := func() float64 {
		env.spec = spec
		env.spec.Out = b.TempDir()
		ref := env.plan(b).Ref
		t0 := time.Now()
		if _, err := env.score(ref, 0); err != nil {
			b.Fatal(err)
		}
		return float64(spec.ShardSize) / time.Since(t0).Seconds()
	}
	rate()
	return rate
}
