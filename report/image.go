package report

import (
	"image"
	"image/color"

	"github.com/vogscore/vog/job"
)

// ToImage turns a preprocessed example of shape s (the float32 tensor the
// model saw, channels first) back into a picture for a grid: it undoes
// the per-channel normalisation of p and clamps to [0, 1]. One channel
// gives a gray image, three an RGB one.
func ToImage(x []float32, s job.Shape, p job.Preprocess) image.Image {
	c, h, w := s.C, s.H, s.W
	px := func(ch, i int) uint8 {
		v := x[ch*h*w+i]
		if len(p.Mean) > ch {
			v = v*p.Std[ch] + p.Mean[ch]
		}
		return uint8(max(0, min(1, v))*255 + 0.5)
	}
	if c == 1 {
		g := image.NewGray(image.Rect(0, 0, w, h))
		for i := range h * w {
			g.Pix[i] = px(0, i)
		}
		return g
	}
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for i := range h * w {
		img.Set(i%w, i/w, color.RGBA{px(0, i), px(1, i), px(2, i), 255})
	}
	return img
}
