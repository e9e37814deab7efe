package preprocess

import (
	"bufio"
	"bytes"
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
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// benchJPEGs writes the JPEGs dataset/bench_test.go scores: 500x375
// (ImageNet-sized), quality 90, Go's encoder (4:2:0), gradients plus noise.
func benchJPEGs(tb testing.TB, dir string, n int) (files []string, data [][]byte) {
	tb.Helper()
	r := rand.New(rand.NewPCG(3, 3))
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
			tb.Fatal(err)
		}
		f := filepath.Join(dir, fmt.Sprintf("%02d.jpg", i))
		if err := os.WriteFile(f, buf.Bytes(), 0o644); err != nil {
			tb.Fatal(err)
		}
		files = append(files, f)
		data = append(data, buf.Bytes())
	}
	return files, data
}

var imagenet = Options{Resize: 256, Crop: 224, Mean: []float32{0.485, 0.456, 0.406}, Std: []float32{0.229, 0.224, 0.225}}

// BenchmarkPreprocess is vog's ImageNet preprocessing (resize 256, centre
// crop 224, normalise) of 500x375 JPEGs on one goroutine.
func BenchmarkPreprocess(b *testing.B) {
	for _, lib := range []string{"", "none"} {
		opt := imagenet
		opt.TurboJPEG = lib
		p, err := New(opt)
		if err != nil {
			b.Fatal(err)
		}
		name, _ := p.JPEGDecoder()
		b.Run(name, func(b *testing.B) {
			_, data := benchJPEGs(b, b.TempDir(), 16)
			x := make([]float32, 3*224*224)
			b.ResetTimer()
			for i := range b.N {
				if _, err := p.Preprocess(data[i%len(data)], x); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "img/s")
		})
	}
}

// Batch preprocesses data[i] into dst[i*n:(i+1)*n] (n = len(dst)/len(data))
// on workers goroutines.
func batch(p *Preprocessor, data [][]byte, dst []float32, workers int) error {
	n := len(dst) / len(data)
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make([]error, workers)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= len(data) {
					return
				}
				if _, err := p.Preprocess(data[i], dst[i*n:(i+1)*n]); err != nil {
					errs[w] = err
					return
				}
			}
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// torchPython is the Python with torchvision: $VOG_PYTHON, else Debian's
// /usr/bin/python3, else python3; "" where none imports torchvision.
func torchPython() string {
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

func needTorch(tb testing.TB) string {
	py := torchPython()
	if py == "" {
		if os.Getenv("VOG_REQUIRE_TORCH") == "1" {
			tb.Fatal("no python3 with torch, torchvision and PIL (VOG_REQUIRE_TORCH=1)")
		}
		tb.Skip("no python3 with torch, torchvision and PIL; set VOG_PYTHON, or VOG_REQUIRE_TORCH=1 to fail")
	}
	return py
}

// torchProc is a running bench_torchvision.py.
type torchProc struct {
	cmd *exec.Cmd
	in  *bufio.Writer
	out *bufio.Scanner
}

func startTorch(tb testing.TB, py string, batchImages int, files []string) *torchProc {
	tb.Helper()
	args := append([]string{"testdata/bench_torchvision.py", strconv.Itoa(batchImages), strconv.Itoa(runtime.NumCPU())}, files...)
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
	tp := &torchProc{cmd: cmd, in: bufio.NewWriter(stdin), out: bufio.NewScanner(stdout)}
	tb.Cleanup(func() {
		stdin.Close()
		cmd.Wait()
	})
	if _, _, err := tp.ask("ready"); err != nil {
		tb.Fatal(err)
	}
	return tp
}

// ask sends one command and returns the wall-clock and CPU seconds it
// reports.
func (tp *torchProc) ask(cmd string) (wall, cpu float64, err error) {
	fmt.Fprintln(tp.in, cmd)
	if err := tp.in.Flush(); err != nil {
		return 0, 0, err
	}
	if !tp.out.Scan() {
		return 0, 0, fmt.Errorf("bench_torchvision.py: no answer to %q: %v", cmd, tp.out.Err())
	}
	line := tp.out.Text()
	f := strings.Fields(line)
	if len(f) != 3 || f[0] != "ok" {
		return 0, 0, fmt.Errorf("bench_torchvision.py: %q answered %q", cmd, line)
	}
	if wall, err = strconv.ParseFloat(f[1], 64); err == nil {
		cpu, err = strconv.ParseFloat(f[2], 64)
	}
	return wall, cpu, err
}

// threadCPU is the CPU time the calling OS thread has used (lock it).
func threadCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(1 /* RUSAGE_THREAD */, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// processCPU is the CPU time this process has used.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func median(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// BenchmarkPreprocessVsTorchvision runs vog's preprocessing and PIL +
// torchvision's (Resize(256), CenterCrop(224), ToTensor(), Normalize) on
// the same 500x375 JPEGs, held in memory by both, in interleaved rounds
// ($VOG_BENCH_ROUNDS, default 5): on one core each (vog: GOMAXPROCS 1;
// Python: torch.set_num_threads(1), pinned to one CPU), then a batch over
// all cores each (vog: a goroutine per CPU; Python: a DataLoader with a
// worker per CPU, batches of 32). It reports the median images per second
// of each and vog/torchvision, the ratio of the two.
func BenchmarkPreprocessVsTorchvision(b *testing.B) {
	py := needTorch(b)
	rounds := 5
	if s := os.Getenv("VOG_BENCH_ROUNDS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			b.Fatalf("VOG_BENCH_ROUNDS=%q", s)
		}
		rounds = n
	}
	const (
		nfiles       = 32
		singleImages = 96  // per round, one core
		batchImages  = 256 // per round, all cores (8 batches of 32)
	)
	files, data := benchJPEGs(b, b.TempDir(), nfiles)
	opt := imagenet
	p, err := New(opt)
	if err != nil {
		b.Fatal(err)
	}
	dec, why := p.JPEGDecoder()
	if why != nil {
		b.Logf("vog decodes JPEGs with %s: %v", dec, why)
	}
	tp := startTorch(b, py, batchImages, files)
	ncpu := runtime.NumCPU()
	x := make([]float32, 3*224*224*32)
	single := func() (wall, cpu float64) {
		prev := runtime.GOMAXPROCS(1)
		defer runtime.GOMAXPROCS(prev)
		runtime.GC()
		t0, c0 := time.Now(), processCPU()
		for i := range singleImages {
			if _, err := p.Preprocess(data[i%nfiles], x[:3*224*224]); err != nil {
				b.Fatal(err)
			}
		}
		return float64(singleImages) / time.Since(t0).Seconds(), float64(singleImages) / (processCPU() - c0).Seconds()
	}
	all := func() float64 {
		runtime.GC()
		t0 := time.Now()
		batchData := make([][]byte, 32)
		for i := 0; i < batchImages; i += 32 {
			for j := range batchData {
				batchData[j] = data[(i+j)%nfiles]
			}
			if err := batch(p, batchData, x, ncpu); err != nil {
				b.Fatal(err)
			}
		}
		return float64(batchImages) / time.Since(t0).Seconds()
	}
	// Warm up both (page cache, pools, DataLoader workers).
	single()
	all()
	if _, _, err := tp.ask(fmt.Sprintf("single %d", singleImages)); err != nil {
		b.Fatal(err)
	}
	if _, _, err := tp.ask("batch"); err != nil {
		b.Fatal(err)
	}
	// Images per second: one core wall-clock and CPU time, all cores.
	var vs, ts, vc, tc, vb, tbt, rs, rc, rb []float64
	b.ResetTimer()
	for r := range rounds {
		w, c := single()
		vs, vc = append(vs, w), append(vc, c)
		wall, cpu, err := tp.ask(fmt.Sprintf("single %d", singleImages))
		if err != nil {
			b.Fatal(err)
		}
		ts, tc = append(ts, float64(singleImages)/wall), append(tc, float64(singleImages)/cpu)
		vb = append(vb, all())
		wall, _, err = tp.ask("batch")
		if err != nil {
			b.Fatal(err)
		}
		tbt = append(tbt, float64(batchImages)/wall)
		rs, rc, rb = append(rs, vs[r]/ts[r]), append(rc, vc[r]/tc[r]), append(rb, vb[r]/tbt[r])
		b.Logf("round %d: one core: vog %.0f img/s, torchvision %.0f img/s: %.2fx (CPU time: %.0f, %.0f img/s: %.2fx); %d cores: vog %.0f img/s, torchvision %.0f img/s: %.2fx",
			r+1, vs[r], ts[r], rs[r], vc[r], tc[r], rc[r], ncpu, vb[r], tbt[r], rb[r])
	}
	b.StopTimer()
	b.Logf("medians of %d rounds: one core vog/torchvision %.2f (wall), %.2f (CPU time); %d cores %.2f", rounds, median(rs), median(rc), ncpu, median(rb))
	b.ReportMetric(median(vs), "vog-img/s/core")
	b.ReportMetric(median(ts), "torchvision-img/s/core")
	b.ReportMetric(median(rs), "vog/torchvision/core")
	b.ReportMetric(median(rc), "vog/torchvision/core-cpu")
	b.ReportMetric(median(vb), "vog-img/s/batch")
	b.ReportMetric(median(tbt), "torchvision-img/s/batch")
	b.ReportMetric(median(rb), "vog/torchvision/batch")
}

// BenchmarkStages times the two stages of BenchmarkPreprocess apart:
// libjpeg-turbo's decoding and vog's resize, crop and normalisation.
func BenchmarkStages(b *testing.B) {
	p, err := New(imagenet)
	if err != nil {
		b.Fatal(err)
	}
	if p.tj == nil {
		b.Skip("no libturbojpeg")
	}
	_, data := benchJPEGs(b, b.TempDir(), 1)
	s := new(scratch)
	x := make([]float32, 3*224*224)
	b.Run("decode", func(b *testing.B) {
		for range b.N {
			if _, _, err := p.decodeTurbo(data[0], s); err != nil {
				b.Fatal(err)
			}
		}
	})
	img, _, err := p.decodeTurbo(data[0], s)
	if err != nil {
		b.Fatal(err)
	}
	img.pix = append([]byte(nil), img.pix...)
	b.Run("transform", func(b *testing.B) {
		for range b.N {
			p.transform(img, 341, 256, 224, 224, x, s)
		}
	})
}
