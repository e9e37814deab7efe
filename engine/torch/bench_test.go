package torch_test

import (
	"bufio"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vogscore/vog/engine"
	"github.com/vogscore/vog/engine/torch"
	"github.com/vogscore/vog/internal/enginebench"
)

// pytorch is a PyTorch eager process timing rounds of the same gradient
// computation (bench/pytorch_grad.py).
type pytorch struct {
	cmd *exec.Cmd
	in  io.WriteCloser
	out *bufio.Scanner
}

// tunedMalloc gives PyTorch the allocator settings the engine gives itself
// (mallopt in vogtorch.cpp): without them glibc returns and re-faults the
// pages of every large tensor, which made untuned PyTorch 3-5x slower on
// some VMs for no reason of its own.
var tunedMalloc = []string{"MALLOC_MMAP_THRESHOLD_=268435456", "MALLOC_TRIM_THRESHOLD_=1073741824"}

// startPyTorch starts the PyTorch baseline, with glibc's allocator as the
// engine tunes it (tuned) or as it comes.
func startPyTorch(b *testing.B, model string, batch int, s engine.Shape, threads int, device string, tuned bool) *pytorch {
	b.Helper()
	python := envOr("VOG_PYTHON", "/usr/bin/python3")
	format := "nchw"
	if benchOptions(device).ChannelsLast {
		format = "channels_last"
	}
	cmd := exec.Command(python, "../../bench/pytorch_grad.py", model,
		strconv.Itoa(batch), strconv.Itoa(s.C), strconv.Itoa(s.H), strconv.Itoa(s.W), strconv.Itoa(threads), device, envOr("VOG_BENCH_PRECISION", "fp32"), format)
	cmd.Stderr = os.Stderr
	if tuned {
		cmd.Env = append(os.Environ(), tunedMalloc...)
	}
	in, _ := cmd.StdinPipe()
	outPipe, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		b.Skipf("no PyTorch baseline: %v", err)
	}
	p := &pytorch{cmd: cmd, in: in, out: bufio.NewScanner(outPipe)}
	if !p.out.Scan() || !strings.HasPrefix(p.out.Text(), "READY") {
		b.Fatalf("PyTorch baseline did not start: %q", p.out.Text())
	}
	b.Cleanup(func() { in.Close(); cmd.Wait() })
	return p
}

func (p *pytorch) round(b *testing.B, iters int) float64 {
	fmt.Fprintf(p.in, "ROUND %d\n", iters)
	if !p.out.Scan() {
		b.Fatal("PyTorch baseline stopped")
	}
	v, err := strconv.ParseFloat(p.out.Text(), 64)
	if err != nil {
		b.Fatal(err)
	}
	return v
}

// benchmarkAgainstPyTorch measures the engine's input-gradient throughput
// and PyTorch eager's on the same TorchScript model, batch and threads, in
// interleaved rounds, and reports the medians and their ratios: against
// PyTorch with the engine's allocator settings (engine/pytorch: the
// competitor), and against PyTorch as it comes (engine/pytorch-untuned).
func benchmarkAgainstPyTorch(b *testing.B, model string, s engine.Shape, batch, itersPerRound, rounds int, device string) {
	const threads = 2
	// As the shard activity does: libtorch keeps its OpenMP pool per
	// calling thread.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	lib := openLibrary(b) // with 2 threads
	data, err := os.ReadFile(model)
	if err != nil {
		b.Fatal(err)
	}
	m, err := engine.Load(loaderFor(b, lib, benchOptions(device)), data, model, s)
	if err != nil {
		b.Fatal(err)
	}
	defer m.Close()
	r := rand.New(rand.NewPCG(1, 1))
	x := make([]float32, batch*s.Len())
	for i := range x {
		x[i] = r.Float32()
	}
	targets := make([]int64, batch)
	for i := range targets {
		targets[i] = int64(r.IntN(m.Classes()))
	}
	logits, grads := make([]float32, batch*m.Classes()), make([]float32, batch*s.Pixels())
	step := func() {
		// Like PyTorch's step, each pass copies the batch from host memory.
		if err := m.Gradients(&engine.Batch{X: x, N: batch}, engine.TargetLogit, targets, logits, grads); err != nil {
			b.Fatal(err)
		}
	}
	step() // warm up
	py := startPyTorch(b, model, batch, s, threads, device, true)
	untuned := startPyTorch(b, model, batch, s, threads, device, false)

	b.ResetTimer()
	var ours, theirs, theirsUntuned []float64
	for range b.N {
		for range rounds {
			t0 := time.Now()
			for range itersPerRound {
				step()
			}
			ours = append(ours, float64(itersPerRound*batch)/time.Since(t0).Seconds())
			theirs = append(theirs, py.round(b, itersPerRound))
			theirsUntuned = append(theirsUntuned, untuned.round(b, itersPerRound))
		}
	}
	b.ReportMetric(enginebench.Median(ours), "engine-ex/s")
	b.ReportMetric(enginebench.Median(theirs), "pytorch-ex/s")
	b.ReportMetric(enginebench.Median(ours)/enginebench.Median(theirs), "engine/pytorch")
	b.ReportMetric(enginebench.Median(ours)/enginebench.Median(theirsUntuned), "engine/pytorch-untuned")
}

// BenchmarkGradientsFashionCNN: the small CNN of the quickstart, batch 128.
func BenchmarkGradientsFashionCNN(b *testing.B) {
	benchmarkAgainstPyTorch(b, filepath.Join(fixtures, "ckpt", "ckpt_12.pt"), engine.Shape{C: 1, H: 28, W: 28}, 128, 20, 5, "cpu")
}

// BenchmarkGradientsResNet18: ResNet-18 at 32x32 (CIFAR), batch 128.
func BenchmarkGradientsResNet18(b *testing.B) {
	model := filepath.Join(b.TempDir(), "resnet18.pt")
	if out, err := exec.Command("/usr/bin/python3", "../../bench/make_resnet18.py", model).CombinedOutput(); err != nil {
		b.Skipf("cannot make a ResNet-18 with torchvision: %v\n%s", err, out)
	}
	benchmarkAgainstPyTorch(b, model, engine.Shape{C: 3, H: 32, W: 32}, 128, 2, 5, "cpu")
}

// BenchmarkGradientsModel benchmarks the model named by VOG_BENCH_MODEL
// (VOG_BENCH_SHAPE=C,H,W; VOG_BENCH_BATCH, VOG_BENCH_DEVICE, VOG_BENCH_ITERS,
// VOG_BENCH_PRECISION, VOG_BENCH_CHANNELS_LAST=1)
// against PyTorch eager: the GPU check (scripts/gpu-check.sh) runs it on a
// ResNet-50 on CUDA.
func BenchmarkGradientsModel(b *testing.B) {
	model := os.Getenv("VOG_BENCH_MODEL")
	if model == "" {
		b.Skip("set VOG_BENCH_MODEL")
	}
	var s engine.Shape
	if _, err := fmt.Sscanf(envOr("VOG_BENCH_SHAPE", "3,224,224"), "%d,%d,%d", &s.C, &s.H, &s.W); err != nil {
		b.Fatal(err)
	}
	batch, _ := strconv.Atoi(envOr("VOG_BENCH_BATCH", "64"))
	iters, _ := strconv.Atoi(envOr("VOG_BENCH_ITERS", "10"))
	benchmarkAgainstPyTorch(b, model, s, batch, iters, 5, envOr("VOG_BENCH_DEVICE", "cpu"))
}

// benchOptions are the engine options the benchmarks run with, from
// VOG_BENCH_PRECISION and VOG_BENCH_CHANNELS_LAST.
func benchOptions(device string) torch.Options {
	return torch.Options{Device: device, Precision: os.Getenv("VOG_BENCH_PRECISION"), ChannelsLast: os.Getenv("VOG_BENCH_CHANNELS_LAST") == "1"}
}

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}
