// Package torchvision runs PIL + torchvision's ImageNet evaluation
// preprocessing (Resize(256), CenterCrop(224), ToTensor(), Normalize) in a
// Python process: the baseline that vog's preprocessing benchmarks compare
// with in interleaved rounds (BenchmarkPreprocessVsTorchvision in package
// preprocess, on bytes in memory, and in package dataset, on an ImageFolder
// read through storage). It also makes the benchmarks' JPEGs.
package torchvision

import (
	"bufio"
	"bytes"
	_ "embed"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

//go:embed bench_torchvision.py
var script []byte

// Modes of the Python process: how it reads the images.
const (
	// Memory reads the files into memory once and decodes each image from
	// its bytes.
	Memory = "memory"
	// ImageFolder reads each image from its file through
	// torchvision.datasets.ImageFolder (PIL's default loader).
	ImageFolder = "imagefolder"
)

// BatchSize is the DataLoader's batch in the all-cores measurement.
const BatchSize = 32

// BenchJPEGs returns n ImageNet-sized JPEGs: 500x375, quality 90, Go's
// encoder (4:2:0), colour gradients plus noise, the same bytes every call.
func BenchJPEGs(n int) [][]byte {
	r := rand.New(rand.NewPCG(3, 3))
	out := make([][]byte, n)
	for i := range n {
		img := image.NewRGBA(image.Rect(0, 0, 500, 375))
		for y := range 375 {
			for x := range 500 {
				v := uint8(r.IntN(40))
				img.SetRGBA(x, y, color.RGBA{uint8(x/2) + v, uint8(y/2) + v, uint8((x+y+i*10)/4) + v, 255})
			}
		}
		var buf bytes.Buffer
		if err := jpeg.Encode(&buf, img, &jpeg.Options{Quality: 90}); err != nil {
			panic(err) // writing to memory does not fail
		}
		out[i] = buf.Bytes()
	}
	return out
}

// Python returns the Python that imports torch, torchvision and PIL:
// $VOG_PYTHON, else Debian's /usr/bin/python3, else python3; "" where none
// does.
func Python() string {
	cands := []string{"/usr/bin/python3", "python3"}
	if p := os.Getenv("VOG_PYTHON"); p != "" {
		cands = []string{p}
	}
	for _, c := range cands {
		if exec.Command(c, "-c", "import torch, torchvision, PIL").Run() == nil {
			return c
		}
	}
	return ""
}

// Need returns Python(), or skips tb where there is none (fails it with
// VOG_REQUIRE_TORCH=1).
func Need(tb testing.TB) string {
	tb.Helper()
	py := Python()
	if py == "" {
		if os.Getenv("VOG_REQUIRE_TORCH") == "1" {
			tb.Fatal("no python3 with torch, torchvision and PIL (VOG_REQUIRE_TORCH=1)")
		}
		tb.Skip("no python3 with torch, torchvision and PIL; set VOG_PYTHON, or VOG_REQUIRE_TORCH=1 to fail")
	}
	return py
}

// Rounds returns $VOG_BENCH_ROUNDS, or def where it is not set.
func Rounds(tb testing.TB, def int) int {
	tb.Helper()
	s := os.Getenv("VOG_BENCH_ROUNDS")
	if s == "" {
		return def
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 {
		tb.Fatalf("VOG_BENCH_ROUNDS=%q", s)
	}
	return n
}

// Proc is a running PIL + torchvision process.
type Proc struct {
	batchImages int
	in          *bufio.Writer
	out         *bufio.Scanner
}

// Start starts py on the images, read as mode says: paths are the JPEG
// files for Memory, the root folder for ImageFolder. Batch then
// preprocesses batchImages images on runtime.NumCPU() DataLoader workers.
// The process ends with tb.
func Start(tb testing.TB, py, mode string, batchImages int, paths ...string) *Proc {
	tb.Helper()
	f := filepath.Join(tb.TempDir(), "bench_torchvision.py")
	if err := os.WriteFile(f, script, 0o644); err != nil {
		tb.Fatal(err)
	}
	args := append([]string{f, mode, strconv.Itoa(batchImages), strconv.Itoa(runtime.NumCPU())}, paths...)
	cmd := exec.Command(py, args...)
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		tb.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		tb.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		stdin.Close()
		cmd.Wait()
	})
	p := &Proc{batchImages: batchImages, in: bufio.NewWriter(stdin), out: bufio.NewScanner(stdout)}
	if _, _, err := p.ask("ready"); err != nil {
		tb.Fatal(err)
	}
	return p
}

// Single preprocesses n images (the images in turn) on one core, and
// returns the wall-clock and CPU seconds they took.
func (p *Proc) Single(n int) (wall, cpu float64, err error) {
	return p.ask(fmt.Sprintf("single %d", n))
}

// Batch preprocesses the batch images on every core, and returns the
// wall-clock seconds they took and the CPU seconds of the main process.
func (p *Proc) Batch() (wall, cpu float64, err error) { return p.ask("batch") }

// ask sends one command and returns the wall-clock and CPU seconds it
// reports.
func (p *Proc) ask(cmd string) (wall, cpu float64, err error) {
	fmt.Fprintln(p.in, cmd)
	if err := p.in.Flush(); err != nil {
		return 0, 0, err
	}
	if !p.out.Scan() {
		return 0, 0, fmt.Errorf("bench_torchvision.py: no answer to %q: %v", cmd, p.out.Err())
	}
	line := p.out.Text()
	f := strings.Fields(line)
	if len(f) != 3 || f[0] != "ok" {
		return 0, 0, fmt.Errorf("bench_torchvision.py: %q answered %q", cmd, line)
	}
	if wall, err = strconv.ParseFloat(f[1], 64); err == nil {
		cpu, err = strconv.ParseFloat(f[2], 64)
	}
	return wall, cpu, err
}

// Compare measures vog against p on the same images in interleaved rounds,
// after one round of warming up (page cache, pools, DataLoader workers):
// in each, single images on one core each (vog: single(singleImages) with
// GOMAXPROCS 1; Python: pinned to one CPU), then a batch over every core
// each (vog: batch(), which preprocesses the batchImages p was started
// with; Python: its DataLoader). It logs every round and reports as b's
// metrics the medians of the rates, in images per second, and of
// vog/torchvision, the ratio of the rates (per core by wall clock and by
// CPU time, which stays fair when the machine is busy; for the batch by
// wall clock).
func Compare(b *testing.B, p *Proc, rounds, singleImages int, single func(n int) error, batch func() error) {
	b.Helper()
	vogSingle := func() (wall, cpu float64) {
		prev := runtime.GOMAXPROCS(1)
		defer runtime.GOMAXPROCS(prev)
		runtime.GC()
		t0, c0 := time.Now(), ProcessCPU()
		if err := single(singleImages); err != nil {
			b.Fatal(err)
		}
		return float64(singleImages) / time.Since(t0).Seconds(), float64(singleImages) / (ProcessCPU() - c0).Seconds()
	}
	vogBatch := func() float64 {
		runtime.GC()
		t0 := time.Now()
		if err := batch(); err != nil {
			b.Fatal(err)
		}
		return float64(p.batchImages) / time.Since(t0).Seconds()
	}
	pySingle := func() (wall, cpu float64) {
		w, c, err := p.Single(singleImages)
		if err != nil {
			b.Fatal(err)
		}
		return float64(singleImages) / w, float64(singleImages) / c
	}
	pyBatch := func() float64 {
		w, _, err := p.Batch()
		if err != nil {
			b.Fatal(err)
		}
		return float64(p.batchImages) / w
	}
	vogSingle()
	vogBatch()
	pySingle()
	pyBatch()
	ncpu := runtime.NumCPU()
	var vs, ts, vc, tc, vb, tbt, rs, rc, rb []float64
	b.ResetTimer()
	for r := range rounds {
		w, c := vogSingle()
		vs, vc = append(vs, w), append(vc, c)
		w, c = pySingle()
		ts, tc = append(ts, w), append(tc, c)
		vb, tbt = append(vb, vogBatch()), append(tbt, pyBatch())
		rs, rc, rb = append(rs, vs[r]/ts[r]), append(rc, vc[r]/tc[r]), append(rb, vb[r]/tbt[r])
		b.Logf("round %d: one core: vog %.0f img/s, torchvision %.0f img/s: %.2fx (CPU time: %.0f, %.0f img/s: %.2fx); %d cores: vog %.0f img/s, torchvision %.0f img/s: %.2fx",
			r+1, vs[r], ts[r], rs[r], vc[r], tc[r], rc[r], ncpu, vb[r], tbt[r], rb[r])
	}
	b.StopTimer()
	b.Logf("medians of %d rounds: one core vog/torchvision %.2f (wall), %.2f (CPU time); %d cores %.2f", rounds, Median(rs), Median(rc), ncpu, Median(rb))
	b.ReportMetric(Median(vs), "vog-img/s/core")
	b.ReportMetric(Median(ts), "torchvision-img/s/core")
	b.ReportMetric(Median(rs), "vog/torchvision/core")
	b.ReportMetric(Median(rc), "vog/torchvision/core-cpu")
	b.ReportMetric(Median(vb), "vog-img/s/batch")
	b.ReportMetric(Median(tbt), "torchvision-img/s/batch")
	b.ReportMetric(Median(rb), "vog/torchvision/batch")
}

// ProcessCPU is the CPU time this process has used.
func ProcessCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// Median is the median of v.
func Median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}
