package main_test

import (
	"encoding/binary"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"syscall"
	"testing"
	"time"
)

// BenchmarkSimulation runs a large synthetic job through the real workflow
// on the embedded server: VOG_SIM_EXAMPLES examples (default 1,280,000) of
// 8x8 pixels, a tiny TorchScript MLP at 4 checkpoints, shards of 1,280 (so
// 1,000 shards at the default size; VOG_SIM_SHARD_SIZE=128 makes 10,000).
// It reports the per-shard overhead
// (scoring time beyond the bare engine's, per shard), the reduce time and
// the vog process's peak memory. It takes minutes: it runs only when
// VOG_SIM_EXAMPLES is set (docs/benchmarks.md has the figures).
func BenchmarkSimulation(b *testing.B) {
	n, _ := strconv.Atoi(os.Getenv("VOG_SIM_EXAMPLES"))
	if n == 0 {
		b.Skip("set VOG_SIM_EXAMPLES (e.g. 1280000) to run the scale simulation")
	}
	const k = 4
	shardSize := 1280
	if v, err := strconv.Atoi(os.Getenv("VOG_SIM_SHARD_SIZE")); err == nil {
		shardSize = v
	}
	bin := vog(&testing.T{})
	dir := b.TempDir()
	if out, err := exec.Command("/usr/bin/python3", "../../bench/make_tiny.py", filepath.Join(dir, "ckpt"), strconv.Itoa(k)).CombinedOutput(); err != nil {
		b.Skipf("cannot make the tiny model: %v\n%s", err, out)
	}
	// n random 8x8 images, labels 0..9, as plain IDX files.
	r := rand.New(rand.NewPCG(7, 7))
	img := binary.BigEndian.AppendUint32(nil, 0x0803)
	img = binary.BigEndian.AppendUint32(img, uint32(n))
	img = binary.BigEndian.AppendUint32(img, 8)
	img = binary.BigEndian.AppendUint32(img, 8)
	lab := binary.BigEndian.AppendUint32(nil, 0x0801)
	lab = binary.BigEndian.AppendUint32(lab, uint32(n))
	for range n {
		for range 64 {
			img = append(img, byte(r.IntN(256)))
		}
		lab = append(lab, byte(r.IntN(10)))
	}
	prefix := filepath.Join(dir, "sim")
	os.WriteFile(prefix+"-images-idx3-ubyte", img, 0o644)
	os.WriteFile(prefix+"-labels-idx1-ubyte", lab, 0o644)

	b.ResetTimer()
	for range b.N {
		out := b.TempDir()
		t0 := time.Now()
		cmd := exec.Command(bin, "run", "--format", "idx", "--dataset", prefix, "--checkpoints", filepath.Join(dir, "ckpt"),
			"--out", out, "--state-dir", b.TempDir(), "--shard-size", strconv.Itoa(shardSize), "--threads", "2", "--progress", "30s")
		cmd.Env = append(os.Environ(), "TEMPORAL_ADDRESS=")
		o, err := cmd.CombinedOutput()
		if err != nil {
			b.Fatalf("vog run: %v\n%s", err, o)
		}
		wall := time.Since(t0).Seconds()
		m := regexp.MustCompile(`time: plan ([0-9.]+)s, score ([0-9.]+)s, reduce ([0-9.]+)s`).FindSubmatch(o)
		if m == nil {
			b.Fatalf("no timing in:\n%s", o)
		}
		plan, _ := strconv.ParseFloat(string(m[1]), 64)
		score, _ := strconv.ParseFloat(string(m[2]), 64)
		reduce, _ := strconv.ParseFloat(string(m[3]), 64)
		shards := float64((n + shardSize - 1) / shardSize)
		b.ReportMetric(shards, "shards")
		b.ReportMetric(wall, "wall-s")
		b.ReportMetric(plan, "plan-s")
		b.ReportMetric(score/shards*1000, "ms/shard")
		b.ReportMetric(reduce, "reduce-s")
		b.ReportMetric(float64(n)/score, "ex/s")
		b.ReportMetric(float64(cmd.ProcessState.SysUsage().(*syscall.Rusage).Maxrss)/1024, "peak-MiB")
		b.Logf("%s", o[max(0, len(o)-600):])
	}
}
