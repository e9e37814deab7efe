package activities_test

import (
	"bytes"
	"fmt"
	"image"
	"image/jpeg"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"testing"

	"github.com/vogscore/vog/dataset"
	"github.com/vogscore/vog/engine"
	"github.com/vogscore/vog/engine/torch"
	"github.com/vogscore/vog/internal/enginebench"
	"github.com/vogscore/vog/job"
)

// BenchmarkShardOnJPEGs runs one ScoreShard activity over synthetic
// ImageNet-sized JPEGs (decoded on every CPU, resized to 256, cropped to 224,
// normalised) with the TorchScript model VOG_BENCH_MODEL on VOG_BENCH_DEVICE,
// against the bare engine on the same preprocessed batches: the worker's
// rate as a fraction of the engine's (target 0.9). The GPU check
// (scripts/gpu-check.sh) runs it with a ResNet-50 on CUDA. VOG_BENCH_IMAGES
// (default 512) and VOG_BENCH_K (checkpoints, default 2) size it.
func BenchmarkShardOnJPEGs(b *testing.B) {
	model := os.Getenv("VOG_BENCH_MODEL")
	if model == "" {
		b.Skip("set VOG_BENCH_MODEL to a TorchScript model taking 3x224x224")
	}
	n, _ := strconv.Atoi(envOr("VOG_BENCH_IMAGES", "512"))
	k, _ := strconv.Atoi(envOr("VOG_BENCH_K", "2"))
	batch, _ := strconv.Atoi(envOr("VOG_BENCH_BATCH", "128"))
	path, err := torch.Find()
	if err != nil {
		b.Skip(err)
	}
	lib, err := torch.Open(path, runtime.NumCPU())
	if err != nil {
		b.Fatal(err)
	}
	loader, err := lib.Loader(torch.Options{Device: envOr("VOG_BENCH_DEVICE", "cpu"), Precision: os.Getenv("VOG_BENCH_PRECISION"),
		ChannelsLast: os.Getenv("VOG_BENCH_CHANNELS_LAST") == "1"})
	if err != nil {
		b.Fatal(err)
	}
	dir := b.TempDir()
	ckpts := filepath.Join(dir, "ckpt")
	os.MkdirAll(ckpts, 0o755)
	data, err := os.ReadFile(model)
	if err != nil {
		b.Fatal(err)
	}
	for i := range k {
		os.WriteFile(filepath.Join(ckpts, fmt.Sprintf("epoch_%d.pt", i+1)), data, 0o644)
	}
	root := filepath.Join(dir, "images")
	r := rand.New(rand.NewPCG(5, 5))
	for i := range n {
		img := image.NewRGBA(image.Rect(0, 0, 500, 375))
		for p := 0; p < len(img.Pix); p += 4 {
			img.Pix[p], img.Pix[p+1], img.Pix[p+2], img.Pix[p+3] = uint8(r.IntN(256)), uint8(p/2000), uint8(i), 255
		}
		var buf bytes.Buffer
		jpeg.Encode(&buf, img, &jpeg.Options{Quality: 90})
		d := filepath.Join(root, fmt.Sprintf("class%d", i%2))
		os.MkdirAll(d, 0o755)
		os.WriteFile(filepath.Join(d, fmt.Sprintf("%05d.jpg", i)), buf.Bytes(), 0o644)
	}
	spec := job.Dataset{Format: "imagefolder", URL: root, Preprocess: job.Preprocess{
		Resize: 256, Crop: 224, Mean: []float32{0.485, 0.456, 0.406}, Std: []float32{0.229, 0.224, 0.225}}}

	// The bare engine on the same preprocessed examples, decoded beforehand.
	shape := engine.Shape{C: 3, H: 224, W: 224}
	listing, err := dataset.List(b.Context(), spec)
	if err != nil {
		b.Fatal(err)
	}
	rd, _ := dataset.NewReader(b.Context(), spec, shape, "")
	x := make([]float32, n*shape.Len())
	if err := rd.Read(b.Context(), listing.Rows, x, make([]error, n)); err != nil {
		b.Fatal(err)
	}
	m, err := engine.Load(loader, data, model, shape)
	if err != nil {
		b.Fatal(err)
	}
	models := make([]*engine.Model, k) // the checkpoints are copies of one model
	for i := range models {
		models[i] = m
	}
	bare := enginebench.Engine(b, models, x, make([]int64, n), shape, batch)
	shard := shardRate(b, loader, job.Spec{Dataset: spec, Checkpoints: []string{ckpts}, ShardSize: n, BatchSize: batch})
	bare()
	b.ResetTimer()
	enginebench.Compare(b, enginebench.Rounds(3), "engine-img/s", bare, "worker-img/s", shard, "worker/engine")
}

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}
