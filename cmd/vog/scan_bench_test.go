package main

import (
	"bytes"
	"context"
	"fmt"
	"image"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"runtime/metrics"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vogscore/vog/evaluate"
	"github.com/vogscore/vog/job"
	"github.com/vogscore/vog/jobstore"
	"github.com/vogscore/vog/report"
)

// BenchmarkReportEvalMemory writes a synthetic finished result (one
// window, parts of 10,000 rows, 1000 classes, ImageNet-like example ids, a
// truth file flagging a fifth) and runs vog report's and vog eval's streamed
// code paths on it in-process, beside the all-in-memory paths they replaced
// (every row read with jobstore.ReadScores; the report then rendered from the
// slice, without the three sorted copies the old one made; eval's exact
// measures over slices). It reports rows/s and the peak heap above the heap
// before the run (measureScan). The streamed peaks should stay about flat
// from 128,000 to 1,280,000 rows, apart from eval's truth set (9 bytes per
// id); the in-memory ones grow with the rows.
//
// VOG_BENCH_SCAN_ROWS sets the sizes, comma-separated (default
// 128000,1280000: about a minute on 2 cores); VOG_BENCH_SCAN_INMEMORY=0
// skips the in-memory paths.
func BenchmarkReportEvalMemory(b *testing.B) {
	inMemory := os.Getenv("VOG_BENCH_SCAN_INMEMORY") != "0"
	// A first page loads what stays (the plots' fonts): not the rows' memory.
	if err := report.Write(io.Discard, []job.ScoreRow{{Window: "all", VoG: 1}, {Index: 1, Window: "all", VoG: 2}}, report.Options{}); err != nil {
		b.Fatal(err)
	}
	for _, n := range scanBenchSizes(b) {
		b.Run(fmt.Sprintf("rows=%d", n), func(b *testing.B) {
			dir := syntheticResult(b, n)
			scan := func(ctx context.Context) report.Scan {
				return func(fn func([]job.ScoreRow) error) error { return jobstore.ScanScores(ctx, dir, fn) }
			}
			opts := report.Options{Title: "bench", Image: func(int64) (image.Image, error) {
				return image.NewGray(image.Rect(0, 0, 28, 28)), nil
			}}
			b.Run("report/streamed", func(b *testing.B) {
				measureScan(b, n, func(ctx context.Context) error {
					var html bytes.Buffer
					return report.WriteScan(&html, scan(ctx), opts)
				})
			})
			if inMemory {
				b.Run("report/in-memory", func(b *testing.B) {
					measureScan(b, n, func(ctx context.Context) error {
						rows, err := jobstore.ReadScores(ctx, dir)
						if err != nil {
							return err
						}
						var html bytes.Buffer
						return report.Write(&html, rows, opts)
					})
				})
			}
			truth := filepath.Join(dir, "truth.csv")
			b.Run("eval/streamed", func(b *testing.B) {
				measureScan(b, n, func(ctx context.Context) error {
					t, done, err := readTruth(ctx, truth, "")
					if err != nil {
						return err
					}
					defer done()
					w, err := evaluate.Measure(t, scan(ctx))
					if err == nil && (len(w) != 1 || w[0].Examples != int64(n) || math.IsNaN(w[0].Hists[0].AUROC())) {
						err = fmt.Errorf("windows %v", w)
					}
					return err
				})
			})
			if inMemory {
				b.Run("eval/in-memory", func(b *testing.B) {
					measureScan(b, n, func(ctx context.Context) error { return evalInMemory(ctx, dir, truth) })
				})
			}
		})
	}
}

func scanBenchSizes(b *testing.B) []int {
	var sizes []int
	for f := range strings.SplitSeq(envOr("VOG_BENCH_SCAN_ROWS", "128000,1280000"), ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n <= 0 {
			b.Fatalf("VOG_BENCH_SCAN_ROWS: %q", f)
		}
		sizes = append(sizes, n)
	}
	return sizes
}

// syntheticResult writes a finished result of n rows (window "all") and a
// truth file flagging a fifth of the examples, with a valid _SUCCESS.
func syntheticResult(b *testing.B, n int) string {
	b.Helper()
	ctx := b.Context()
	dir := filepath.Join(b.TempDir(), "out")
	st, err := jobstore.Create(ctx, dir)
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	r := rand.New(rand.NewPCG(uint64(n), 1))
	var truth bytes.Buffer
	truth.WriteString("example_id,noisy\n")
	const part = 10_000
	st.Bind(&job.Job{Fingerprint: "bench", Shards: (n + part - 1) / part})
	rows := make([]job.ScoreRow, 0, part)
	for p := 0; p*part < n; p++ {
		rows = rows[:0]
		for i := p * part; i < min(n, (p+1)*part); i++ {
			class := int32(r.IntN(1000))
			noisy := r.IntN(5) == 0
			vog := math.Exp(r.NormFloat64())
			if noisy {
				vog *= 1.3
			}
			id := fmt.Sprintf("train/n%08d/n%08d_%d.JPEG", class, class, i)
			norm := r.NormFloat64()
			rows = append(rows, job.ScoreRow{Index: int64(i), ExampleID: id, Label: class, Pred: class ^ int32(r.IntN(2)), Class: class,
				Window: "all", VoG: vog, VoGNorm: norm, AbsVoGNorm: math.Abs(norm), Loss: r.ExpFloat64(), ConfMean: r.Float64(), ConfStd: r.Float64() / 4,
				MarginMean: r.NormFloat64(), EL2N: r.Float64(), Forgetting: int32(r.IntN(3)), GradNorm: r.ExpFloat64(), CorrectLast: r.IntN(4) > 0})
			fmt.Fprintf(&truth, "%s,%d\n", id, map[bool]int{false: 0, true: 1}[noisy])
		}
		if err := st.WritePart(ctx, p, rows); err != nil {
			b.Fatal(err)
		}
	}
	if _, err := st.Finish(ctx, int64(n), 0); err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "truth.csv"), truth.Bytes(), 0o644); err != nil {
		b.Fatal(err)
	}
	return dir
}

// measureScan runs f b.N times and reports rows/s and two peaks above the
// heap before, sampled every millisecond (runtime/metrics): peak-heap-MB,
// of the heap's objects live or not yet collected (HeapAlloc, about twice
// the live heap with GOGC=100), and peak-live-MB, of the heap the last
// collection marked live (with what was allocated while it ran). Both vary
// by a few MB from run to run with the collector's timing.
func measureScan(b *testing.B, rows int, f func(context.Context) error) {
	runtime.GC()
	base := readHeap()
	var (
		peak = base
		mu   sync.Mutex
		stop = make(chan struct{})
		done = make(chan struct{})
	)
	sample := func() {
		h := readHeap()
		mu.Lock()
		peak.objects, peak.live = max(peak.objects, h.objects), max(peak.live, h.live)
		mu.Unlock()
	}
	go func() {
		defer close(done)
		t := time.NewTicker(time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				sample()
			}
		}
	}()
	b.ResetTimer()
	t0 := time.Now()
	for range b.N {
		if err := f(b.Context()); err != nil {
			b.Fatal(err)
		}
	}
	elapsed := time.Since(t0)
	b.StopTimer()
	close(stop)
	<-done
	sample()
	b.ReportMetric(float64(peak.objects-base.objects)/1e6, "peak-heap-MB")
	b.ReportMetric(float64(peak.live-base.live)/1e6, "peak-live-MB")
	b.ReportMetric(float64(rows)*float64(b.N)/elapsed.Seconds(), "rows/s")
}

type heapSample struct{ objects, live uint64 }

func readHeap() heapSample {
	s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}, {Name: "/gc/heap/live:bytes"}}
	metrics.Read(s)
	return heapSample{objects: s[0].Value.Uint64(), live: s[1].Value.Uint64()}
}

// evalInMemory is vog eval as it was before it streamed: every row in
// memory, a map of the truth file's ids, then exact measures over slices.
func evalInMemory(ctx context.Context, dir, truthURL string) error {
	truth := map[string]bool{}
	f, err := os.Open(truthURL)
	if err != nil {
		return err
	}
	defer f.Close()
	if _, err := evaluate.ReadTruth(f, "", func(id string, flag bool) bool {
		truth[id] = flag
		return true
	}); err != nil {
		return err
	}
	rows, err := jobstore.ReadScores(ctx, dir)
	if err != nil {
		return err
	}
	byWindow := map[string][]job.ScoreRow{}
	for _, r := range rows {
		if _, ok := truth[r.ExampleID]; ok {
			byWindow[r.Window] = append(byWindow[r.Window], r)
		}
	}
	for _, wr := range byWindow {
		pos := make([]bool, len(wr))
		for i, r := range wr {
			pos[i] = truth[r.ExampleID]
		}
		for _, c := range evaluate.Columns {
			s := make([]float64, len(wr))
			neg, notPos := make([]float64, len(wr)), make([]bool, len(wr))
			for i := range wr {
				s[i] = c.Get(&wr[i])
				neg[i], notPos[i] = -s[i], !pos[i]
			}
			_, _, _ = evaluate.AUROC(s, pos), evaluate.AveragePrecision(s, pos), evaluate.AveragePrecision(neg, notPos)
		}
		var a, bb []float64
		for i, r := range wr {
			if pos[i] {
				a = append(a, r.VoG)
			} else {
				bb = append(bb, r.VoG)
			}
		}
		evaluate.WelchT(a, bb)
	}
	return nil
}
