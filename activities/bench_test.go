package activities_test

import (
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/vogscore/vog/activities"
	"github.com/vogscore/vog/dataset"
	"github.com/vogscore/vog/engine"
	"github.com/vogscore/vog/engine/torch"
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
	loader := lib.Loader("cpu")
	ckptDir, _ := filepath.Abs("../testdata/fmnist/ckpt")
	ctx := b.Context()
	shape := engine.Shape{C: 1, H: 28, W: 28}
	spec := dataset.Spec{Format: "idx", URL: data}
	listing, err := dataset.List(ctx, spec)
	if err != nil {
		b.Fatal(err)
	}
	n := len(listing.Rows)
	r, _ := dataset.NewReader(ctx, spec, shape)
	x := make([]float32, n*shape.Len())
	if err := r.Read(ctx, listing.Rows, x); err != nil {
		b.Fatal(err)
	}
	ckpts, _ := filepath.Glob(filepath.Join(ckptDir, "*.pt"))
	var models []*engine.Model
	for _, c := range ckpts {
		d, _ := os.ReadFile(c)
		m, err := engine.Load(loader, d, c, shape)
		if err != nil {
			b.Fatal(err)
		}
		models = append(models, m)
	}
	targets := make([]int64, n)
	for i, row := range listing.Rows {
		targets[i] = int64(row.Label)
	}
	const batch = 128
	logits, grads := make([]float32, batch*10), make([]float32, batch*shape.Pixels())
	bare := func() float64 {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		t0 := time.Now()
		for s := 0; s < n; s += batch {
			e := min(s+batch, n)
			for _, m := range models {
				if err := m.Gradients(x[s*shape.Len():e*shape.Len()], e-s, targets[s:e], logits, grads); err != nil {
					b.Fatal(err)
				}
			}
		}
		return float64(n) / time.Since(t0).Seconds()
	}
	env := newEnv(b, nil...)
	env.acts.Loader = loader
	shard := func() float64 {
		env.spec = activities.JobSpec{Dataset: spec, Checkpoints: []string{ckptDir}, ShardSize: n, BatchSize: batch, Out: b.TempDir()}
		ref := env.plan(b).Ref
		t0 := time.Now()
		if _, err := env.score(ref, 0); err != nil {
			b.Fatal(err)
		}
		return float64(n) / time.Since(t0).Seconds()
	}
	shard() // loads the models once, as a worker does
	b.ResetTimer()
	var eng, sh []float64
	rounds := 3
	if v, err := strconv.Atoi(os.Getenv("VOG_BENCH_ROUNDS")); err == nil {
		rounds = v
	}
	for range b.N {
		for range rounds {
			eng = append(eng, bare())
			sh = append(sh, shard())
		}
	}
	b.ReportMetric(median(eng), "engine-ex/s")
	b.ReportMetric(median(sh), "shard-ex/s")
	b.ReportMetric(median(sh)/median(eng), "shard/engine")
}

func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[len(s)/2]
}
