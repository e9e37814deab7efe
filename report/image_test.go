package report

import (
	"image"
	"image/color"
	"testing"

	"github.com/vogscore/vog/job"
)

// TestToImage: the normalisation undone, values clamped, gray for one
// channel and RGB for three, pixels in row order.
func TestToImage(t *testing.T) {
	gray := ToImage([]float32{0, 0.5, 1, 2, -1, 0.2}, job.Shape{C: 1, H: 2, W: 3}, job.Preprocess{})
	g, ok := gray.(*image.Gray)
	if !ok || g.Bounds() != image.Rect(0, 0, 3, 2) {
		t.Fatalf("one channel: %T %v", gray, gray.Bounds())
	}
	if want := []uint8{0, 128, 255, 255, 0, 51}; string(g.Pix) != string(want) {
		t.Fatalf("gray pixels %v, want %v", g.Pix, want)
	}
	// Three channels of two pixels, normalised by mean and std per channel.
	p := job.Preprocess{Mean: []float32{0.5, 0.25, 0}, Std: []float32{0.5, 0.25, 2}}
	x := []float32{
		-1, 1, // red: 0, 1
		1, 5, // green: 0.5, 1 (clamped from 1.5)
		0.25, -0.5, // blue: 0.5, 0 (clamped from -1)
	}
	rgb := ToImage(x, job.Shape{C: 3, H: 1, W: 2}, p)
	if rgb.Bounds() != image.Rect(0, 0, 2, 1) {
		t.Fatalf("three channels: %v", rgb.Bounds())
	}
	for i, want := range []color.RGBA{{0, 128, 128, 255}, {255, 255, 0, 255}} {
		if got := color.RGBAModel.Convert(rgb.At(i, 0)); got != want {
			t.Errorf("pixel %d: %v, want %v", i, got, want)
		}
	}
}
