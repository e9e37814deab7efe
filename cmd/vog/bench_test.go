package main_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/vogscore/vog/dataset"
	"github.com/vogscore/vog/engine"
	"github.com/vogscore/vog/engine/torch"
)

// BenchmarkJobVsEngine compares the examples/s of a whole vog run (embedded
// Temporal server, planning, decoding, moments, Parquet) with the bare
// engine's on the same checkpoints, data, batch and threads, in interleaved
// rounds. Target: at least 0.9 (DESIGN section 8). The job's fixed costs
// (process and server start, planning: about a second) weigh on small data:
// VOG_BENCH_SPLIT=train scores the 60,000 training images instead of the
// 10,000 test images; VOG_BENCH_ROUNDS sets the rounds (default 3).
func BenchmarkJobVsEngine(b *testing.B) {
	const (
		batch   = 128
		threads = "2"
	)
	data := "/usr/share/datasets/fashion-mnist/" + envOr("VOG_BENCH_SPLIT", "t10k")
	rounds, err := strconv.Atoi(envOr("VOG_BENCH_ROUNDS", "3"))
	if err != nil {
		b.Fatal(err)
	}
	if _, err := os.Stat(data + "-images-idx3-ubyte.gz"); err != nil {
		b.Skip(err)
	}
	bin := vog(&testing.T{})
	ctx := b.Context()

	// The bare engine: every checkpoint over every example, nothing else.
	lib, err := torch.Find()
	if err != nil {
		b.Skip(err)
	}
	l, err := torch.Open(lib, 2)
	if err != nil {
		b.Fatal(err)
	}
	ckpts, _ := filepath.Glob(filepath.Join(fixtures, "ckpt", "*.pt"))
	shape := engine.Shape{C: 1, H: 28, W: 28}
	var models []*engine.Model
	for _, c := range ckpts {
		bytes, err := os.ReadFile(c)
		if err != nil {
			b.Fatal(err)
		}
		m, err := engine.Load(l.Loader("cpu"), bytes, c, shape)
		if err != nil {
			b.Fatal(err)
		}
		models = append(models, m)
	}
	spec := dataset.Spec{Format: "idx", URL: data}
	listing, err := dataset.List(ctx, spec)
	if err != nil {
		b.Fatal(err)
	}
	r, err := dataset.NewReader(ctx, spec, shape)
	if err != nil {
		b.Fatal(err)
	}
	n := len(listing.Rows)
	x := make([]float32, n*shape.Len())
	if err := r.Read(ctx, listing.Rows, x); err != nil {
		b.Fatal(err)
	}
	targets := make([]int64, n)
	for i, row := range listing.Rows {
		targets[i] = int64(row.Label)
	}
	logits, grads := make([]float32, batch*10), make([]float32, batch*shape.Pixels())
	bare := func() float64 {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		t0 := time.Now()
		for start := 0; start < n; start += batch {
			end := min(start+batch, n)
			for _, m := range models {
				if err := m.Gradients(x[start*shape.Len():end*shape.Len()], end-start, targets[start:end], logits, grads); err != nil {
					b.Fatal(err)
				}
			}
		}
		return float64(n) / time.Since(t0).Seconds()
	}
	job := func() float64 {
		out := b.TempDir()
		t0 := time.Now()
		cmd := exec.Command(bin, "run", "--format", "idx", "--dataset", data, "--checkpoints", filepath.Join(fixtures, "ckpt"),
			"--out", out, "--state-dir", b.TempDir(), "--shard-size", "2500", "--threads", threads, "--progress", "1h")
		cmd.Env = append(os.Environ(), "TEMPORAL_ADDRESS=")
		if o, err := cmd.CombinedOutput(); err != nil {
			b.Fatalf("vog run: %v\n%s", err, o)
		}
		return float64(n) / time.Since(t0).Seconds()
	}

	b.ResetTimer()
	var engineRates, jobRates []float64
	for range b.N {
		for range rounds {
			engineRates = append(engineRates, bare())
			jobRates = append(jobRates, job())
		}
	}
	b.ReportMetric(median(engineRates), "engine-ex/s")
	b.ReportMetric(median(jobRates), "job-ex/s")
	b.ReportMetric(median(jobRates)/median(engineRates), "job/engine")
}

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[len(s)/2]
}
