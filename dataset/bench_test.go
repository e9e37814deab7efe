package dataset_test

import (
	"bytes"
	"image"
	"image/color"
	"image/jpeg"
	"math/rand/v2"
	"path/filepath"
	"testing"
	"time"

	"github.com/vogscore/vog/dataset"
	"github.com/vogscore/vog/job"
)

// BenchmarkJPEGPreprocess decodes ImageNet-sized JPEGs (500x375, quality 90)
// and preprocesses them as for a ResNet (resize the shorter side to 256,
// centre crop 224, scale, normalise) on one goroutine: the rate one CPU core
// feeds the engine. Each decoded image serves every checkpoint, so a job of
// K checkpoints needs (engine gradients/s / K) / this rate cores to keep the
// engine busy.
func BenchmarkJPEGPreprocess(b *testing.B) {
	const files = 32
	root := b.TempDir()
	r := rand.New(rand.NewPCG(3, 3))
	for i := range files {
		img := image.NewRGBA(image.Rect(0, 0, 500, 375))
		for y := range 375 {
			for x := range 500 {
				n := uint8(r.IntN(40))
				img.Set(x, y, color.RGBA{uint8(x/2) + n, uint8(y/2) + n, uint8((x+y+i*10)/4) + n, 255})
			}
		}
		var buf bytes.Buffer
		jpeg.Encode(&buf, img, &jpeg.Options{Quality: 90})
		writeFile(b, filepath.Join(root, "c"+string(rune('a'+i%4)), string(rune('a'+i))+".jpg"), buf.Bytes())
	}
	ctx := b.Context()
	spec := job.Dataset{Format: "imagefolder", URL: root, Preprocess: job.Preprocess{
		Resize: 256, Crop: 224, Mean: []float32{0.485, 0.456, 0.406}, Std: []float32{0.229, 0.224, 0.225}}}
	l, err := dataset.List(ctx, spec)
	if err != nil {
		b.Fatal(err)
	}
	rd, err := dataset.NewReader(ctx, spec, l.Shape, "")
	if err != nil {
		b.Fatal(err)
	}
	x := make([]float32, l.Shape.Len()*len(l.Rows))
	bad := make([]error, len(l.Rows))
	b.ResetTimer()
	t0 := time.Now()
	images := 0
	for range b.N {
		// One row per call decodes on one core.
		for i := range l.Rows {
			if err := rd.Read(ctx, l.Rows[i:i+1], x[:l.Shape.Len()], bad[:1]); err != nil {
				b.Fatal(err)
			}
			images++
		}
	}
	b.ReportMetric(float64(images)/time.Since(t0).Seconds(), "img/s/core")
	// A batch decodes on every CPU.
	t0 = time.Now()
	for range b.N {
		if err := rd.Read(ctx, l.Rows, x, bad); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*len(l.Rows))/time.Since(t0).Seconds(), "img/s/batch")
}
