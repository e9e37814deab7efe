// Package enginebench holds what vog's benchmarks share: the bare engine
// baseline that whole pipelines are compared with, and medians of rounds.
package enginebench

import (
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/vogscore/vog/dataset"
	"github.com/vogscore/vog/engine"
	"github.com/vogscore/vog/job"
)

// Bare loads every checkpoint in ckptDir and decodes every example of an IDX
// data set, then returns a function that runs the engine alone (every
// checkpoint over every example, in batches staged once for all
// checkpoints, true-label targets) and returns examples per second.
func Bare(tb testing.TB, loader engine.Loader, ckptDir, data string, shape engine.Shape, batch int) func() float64 {
	tb.Helper()
	ctx := tb.Context()
	ckpts, _ := filepath.Glob(filepath.Join(ckptDir, "*.pt"))
	var models []*engine.Model
	for _, c := range ckpts {
		bytes, err := os.ReadFile(c)
		if err != nil {
			tb.Fatal(err)
		}
		m, err := engine.Load(loader, bytes, c, shape)
		if err != nil {
			tb.Fatal(err)
		}
		models = append(models, m)
	}
	spec := job.Dataset{Format: "idx", URL: data}
	listing, err := dataset.List(ctx, spec)
	if err != nil {
		tb.Fatal(err)
	}
	r, err := dataset.NewReader(ctx, spec, shape, "")
	if err != nil {
		tb.Fatal(err)
	}
	n := len(listing.Rows)
	x := make([]float32, n*shape.Len())
	if err := r.Read(ctx, listing.Rows, x, make([]error, n)); err != nil {
		tb.Fatal(err)
	}
	targets := make([]int64, n)
	for i, row := range listing.Rows {
		targets[i] = int64(row.Label)
	}
	return Engine(tb, models, x, targets, shape, batch)
}

// Engine returns a function that runs models alone over the examples in x
// (every model over every example, in batches staged once for all models)
// and returns examples per second: the baseline a pipeline is compared with.
func Engine(tb testing.TB, models []*engine.Model, x []float32, targets []int64, shape engine.Shape, batch int) func() float64 {
	n := len(targets)
	logits, grads := make([]float32, batch*models[0].Classes()), make([]float32, batch*shape.Pixels())
	return func() float64 {
		// As the shard activity does: libtorch keeps its OpenMP pool per
		// calling thread.
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		t0 := time.Now()
		for s := 0; s < n; s += batch {
			e := min(s+batch, n)
			b, err := models[0].Stage(x[s*shape.Len():e*shape.Len()], e-s)
			if err != nil {
				tb.Fatal(err)
			}
			for _, m := range models {
				if err := m.Gradients(b, engine.TargetLogit, targets[s:e], logits, grads); err != nil {
					tb.Fatal(err)
				}
			}
			b.Close()
		}
		return float64(n) / time.Since(t0).Seconds()
	}
}

// Median returns the median of xs (the upper one of an even count).
func Median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[len(s)/2]
}

// Rounds returns VOG_BENCH_ROUNDS, or def where it is unset.
func Rounds(def int) int {
	if v, err := strconv.Atoi(os.Getenv("VOG_BENCH_ROUNDS")); err == nil && v > 0 {
		return v
	}
	return def
}

// Compare alternates rounds of a baseline and a subject (each returning a
// rate), rounds per benchmark iteration, and reports both medians, named
// by unit, and the subject's median over the baseline's as ratio.
func Compare(b *testing.B, rounds int, baseUnit string, base func() float64, unit string, subject func() float64, ratio string) {
	b.Helper()
	var bs, ss []float64
	for range b.N {
		for range rounds {
			bs = append(bs, base())
			ss = append(ss, subject())
		}
	}
	b.ReportMetric(Median(bs), baseUnit)
	b.ReportMetric(Median(ss), unit)
	b.ReportMetric(Median(ss)/Median(bs), ratio)
}
