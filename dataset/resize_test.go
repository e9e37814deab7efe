package dataset

import (
	"bytes"
	"image"
	"image/color"
	"image/jpeg"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/vogscore/vog/engine"
)

// TestResizeCropEqualsResizeThenCrop: computing only the cropped pixels of
// the resize gives exactly the pixels of resizing everything and cropping,
// for decoded JPEGs (YCbCr) of either orientation and odd sizes.
func TestResizeCropEqualsResizeThenCrop(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 9))
	for _, tc := range []struct{ w, h, resize, crop int }{
		{500, 375, 256, 224}, {375, 500, 256, 224}, {300, 300, 256, 224},
		{257, 301, 128, 99}, {640, 480, 256, 256}, {100, 80, 256, 224}, {64, 48, 32, 40},
	} {
		src := image.NewRGBA(image.Rect(0, 0, tc.w, tc.h))
		for y := range tc.h {
			for x := range tc.w {
				src.Set(x, y, color.RGBA{uint8(x + r.IntN(30)), uint8(y + r.IntN(30)), uint8(r.IntN(256)), 255})
			}
		}
		var buf bytes.Buffer
		if err := jpeg.Encode(&buf, src, &jpeg.Options{Quality: 90}); err != nil {
			t.Fatal(err)
		}
		img, err := jpeg.Decode(&buf)
		if err != nil {
			t.Fatal(err)
		}
		want := centreCrop(resizeShorter(img, tc.resize), tc.crop)
		got := resizeCrop(img, tc.resize, tc.crop)
		if got.Bounds().Size() != want.Bounds().Size() {
			t.Fatalf("%+v: %v, want %v", tc, got.Bounds().Size(), want.Bounds().Size())
		}
		s := engine.Shape{C: 3, H: want.Bounds().Dy(), W: want.Bounds().Dx()}
		a, b := make([]float32, s.Len()), make([]float32, s.Len())
		toFloat(got, s, a)
		toFloat(want, s, b)
		if !slices.Equal(a, b) {
			t.Errorf("%+v: resizing only the crop gave other pixels", tc)
		}
	}
}
