package preprocess

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/vogscore/vog/internal/torchvision"
)

// benchJPEGs writes the benchmarks' JPEGs (torchvision.BenchJPEGs, the ones
// dataset/bench_test.go scores too): 500x375, quality 90, Go's encoder.
func benchJPEGs(tb testing.TB, dir string, n int) (files []string, data [][]byte) {
	tb.Helper()
	data = torchvision.BenchJPEGs(n)
	for i, d := range data {
		f := filepath.Join(dir, fmt.Sprintf("%02d.jpg", i))
		if err := os.WriteFile(f, d, 0o644); err != nil {
			tb.Fatal(err)
		}
		files = append(files, f)
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

func needTorch(tb testing.TB) string { return torchvision.Need(tb) }

// threadCPU is the CPU time the calling OS thread has used (lock it).
func threadCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(1 /* RUSAGE_THREAD */, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkPreprocessVsTorchvision runs the package alone and PIL +
// torchvision (Resize(256), CenterCrop(224), ToTensor(), Normalize) on the
// same 500x375 JPEGs, held in memory by both, in interleaved rounds
// ($VOG_BENCH_ROUNDS, default 5; torchvision.Compare): on one core each,
// then a batch over all cores each (vog: a goroutine per CPU; Python: a
// DataLoader with a worker per CPU, batches of 32). The same benchmark in
// package dataset measures what a worker does: files read through storage
// from an ImageFolder, against torchvision's ImageFolder.
func BenchmarkPreprocessVsTorchvision(b *testing.B) {
	py := needTorch(b)
	rounds := torchvision.Rounds(b, 5)
	const (
		nfiles       = 32
		singleImages = 96  // per round, one core
		batchImages  = 256 // per round, all cores (8 batches of 32)
	)
	files, data := benchJPEGs(b, b.TempDir(), nfiles)
	p, err := New(imagenet)
	if err != nil {
		b.Fatal(err)
	}
	if dec, why := p.JPEGDecoder(); why != nil {
		b.Logf("vog decodes JPEGs with %s: %v", dec, why)
	}
	tp := torchvision.Start(b, py, torchvision.Memory, batchImages, files...)
	n := 3 * 224 * 224
	x := make([]float32, n*torchvision.BatchSize)
	single := func(images int) error {
		for i := range images {
			if _, err := p.Preprocess(data[i%nfiles], x[:n]); err != nil {
				return err
			}
		}
		return nil
	}
	batchData := make([][]byte, torchvision.BatchSize)
	all := func() error {
		for i := 0; i < batchImages; i += len(batchData) {
			for j := range batchData {
				batchData[j] = data[(i+j)%nfiles]
			}
			if err := batch(p, batchData, x, runtime.NumCPU()); err != nil {
				return err
			}
		}
		return nil
	}
	torchvision.Compare(b, tp, rounds, singleImages, single, all)
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
