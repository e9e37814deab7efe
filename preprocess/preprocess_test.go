package preprocess

import (
	"bytes"
	"image"
	"image/color"
	"image/png"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

func fixture(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata/fixtures", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func haveTurbo(t testing.TB) {
	t.Helper()
	if _, err := LoadTurboJPEG(""); err != nil {
		t.Skipf("libturbojpeg: %v", err)
	}
}

// preprocess runs p on data with a destination of the right size.
func preprocess(p *Preprocessor, data []byte) ([]float32, Result, error) {
	w, h, err := p.Config(data)
	if err != nil {
		return nil, Result{}, err
	}
	x := make([]float32, p.Len(w, h))
	res, err := p.Preprocess(data, x)
	return x, res, err
}

func TestFallbackToGo(t *testing.T) {
	data := fixture(t, "rgb420_333x251.jpg")
	for _, lib := range []string{"/nonexistent/libturbojpeg.so.0", "libc.so.6", "none"} {
		t.Run(filepath.Base(lib), func(t *testing.T) {
			p, err := New(Options{Resize: 64, Crop: 56, TurboJPEG: lib})
			if err != nil {
				t.Fatal(err)
			}
			name, why := p.JPEGDecoder()
			if name != DecoderGoJPEG || why == nil {
				t.Fatalf("JPEGDecoder() = %q, %v; want %q and why", name, why, DecoderGoJPEG)
			}
			t.Logf("why: %v", why)
			if p.TurboJPEGPath() != "" {
				t.Errorf("TurboJPEGPath() = %q", p.TurboJPEGPath())
			}
			x, res, err := preprocess(p, data)
			if err != nil {
				t.Fatal(err)
			}
			if res.Decoder != DecoderGoJPEG || res.Width != 333 || res.Height != 251 || len(x) != 3*56*56 {
				t.Errorf("result %+v, %d values", res, len(x))
			}
		})
	}
	t.Run("env", func(t *testing.T) {
		t.Setenv(TurboJPEGEnv, "none")
		p, err := New(Options{})
		if err != nil {
			t.Fatal(err)
		}
		if name, _ := p.JPEGDecoder(); name != DecoderGoJPEG {
			t.Errorf("%s=none: JPEGDecoder() = %q", TurboJPEGEnv, name)
		}
	})
}

func TestTurboJPEGLoaded(t *testing.T) {
	haveTurbo(t)
	p, err := New(Options{})
	if err != nil {
		t.Fatal(err)
	}
	if name, why := p.JPEGDecoder(); name != DecoderTurboJPEG || why != nil {
		t.Fatalf("JPEGDecoder() = %q, %v", name, why)
	}
	t.Logf("loaded %s", p.TurboJPEGPath())
	if p.TurboJPEGPath() == "" {
		t.Error("no library path")
	}
	if len(p.tj.scales) == 0 {
		t.Error("no DCT scaling factors")
	}
	for i := 1; i < len(p.tj.scales); i++ {
		a, b := p.tj.scales[i-1], p.tj.scales[i]
		if a.num*b.denom <= b.num*a.denom {
			t.Errorf("scaling factors out of order: %v", p.tj.scales)
		}
	}
}

// TestTruncated checks that JPEGs and PNGs cut short are errors, as PIL
// raises "image file is truncated", while a cut closed by an EOI marker
// (corrupt data libjpeg recovers from) and trailing garbage are accepted
// with libjpeg-turbo, as PIL accepts them.
func TestTruncated(t *testing.T) {
	jpg := fixture(t, "rgb420_333x251.jpg")
	prog := fixture(t, "progressive_256x192.jpg")
	pngb := fixture(t, "rgba_96x64.png")
	bad := map[string][]byte{
		"jpeg without EOI":        jpg[:len(jpg)-2],
		"jpeg cut mid-scan":       jpg[:len(jpg)/2],
		"jpeg header only":        jpg[:600],
		"jpeg SOI only":           jpg[:3],
		"progressive without EOI": prog[:len(prog)-2],
		"progressive cut":         prog[:len(prog)/3],
		"png cut":                 pngb[:len(pngb)/2],
		"png without IEND":        pngb[:len(pngb)-12],
		"png signature only":      pngb[:8],
	}
	i := bytes.Index(jpg, []byte{0xff, 0xdb})
	good := map[string][]byte{
		"jpeg extraneous bytes": append(append(append([]byte(nil), jpg[:i]...), "xx"...), jpg[i:]...),
		"jpeg cut and closed":   append(append([]byte(nil), jpg[:len(jpg)/2]...), 0xff, 0xd9),
		"jpeg trailing bytes":   append(append([]byte(nil), jpg...), "garbage"...),
		"progressive complete":  prog,
	}
	for _, lib := range []string{"", "none"} {
		p, err := New(Options{Resize: 64, Crop: 56, TurboJPEG: lib})
		if err != nil {
			t.Fatal(err)
		}
		dec, _ := p.JPEGDecoder()
		for name, data := range bad {
			x := make([]float32, 3*56*56)
			if _, err := p.Preprocess(data, x); err == nil {
				t.Errorf("%s: %s: no error", dec, name)
			}
		}
		for name, data := range good {
			_, _, err := preprocess(p, data)
			if dec == DecoderGoJPEG && err != nil && (name == "jpeg cut and closed" || name == "jpeg extraneous bytes") {
				continue // Go's decoder rejects what libjpeg (and PIL) recover from
			}
			if err != nil {
				t.Errorf("%s: %s: %v", dec, name, err)
			}
		}
	}
}

func TestErrors(t *testing.T) {
	jpg := fixture(t, "tiny_40x30.jpg")
	for _, lib := range []string{"", "none"} {
		p, err := New(Options{Resize: 32, Crop: 28, TurboJPEG: lib, MaxPixels: 1000})
		if err != nil {
			t.Fatal(err)
		}
		x := make([]float32, 3*28*28)
		for name, data := range map[string][]byte{
			"empty":      nil,
			"gif":        []byte("GIF89a\x01\x00\x01\x00\x00\x00\x00;"),
			"text":       []byte("not an image"),
			"jpeg magic": {0xff, 0xd8, 0xff},
			"png magic":  []byte("\x89PNG\r\n\x1a\n"),
		} {
			if _, err := p.Preprocess(data, x); err == nil {
				t.Errorf("%s: no error", name)
			}
			if _, _, err := p.Config(data); err == nil {
				t.Errorf("%s: Config: no error", name)
			}
		}
		// 40x30 = 1200 pixels > MaxPixels
		if _, err := p.Preprocess(jpg, x); err == nil || !strings.Contains(err.Error(), "exceeds") {
			t.Errorf("MaxPixels: %v", err)
		}
		p, _ = New(Options{Resize: 32, Crop: 28, TurboJPEG: lib})
		if _, err := p.Preprocess(jpg, x[:10]); err == nil {
			t.Error("short destination: no error")
		}
		if _, err := p.Preprocess(jpg, x); err != nil {
			t.Error(err)
		}
	}
	for _, o := range []Options{
		{Channels: 2},
		{Channels: 3, Mean: []float32{1, 2}},
		{Channels: 1, Std: []float32{1, 1, 1}},
		{Std: []float32{1, 0, 1}},
		{Resize: -1},
		{Crop: -2},
		{DCTScale: -1},
		{DCTScale: math.NaN()},
	} {
		if _, err := New(o); err == nil {
			t.Errorf("New(%+v): no error", o)
		}
	}
}

func TestOutputSize(t *testing.T) {
	p, _ := New(Options{Resize: 256})
	for _, c := range []struct{ w, h, ow, oh int }{
		{500, 375, 341, 256}, // int(256*500/375) = int(341.33)
		{375, 500, 256, 341},
		{256, 256, 256, 256},
		{100, 100, 256, 256},
		{257, 1000, 256, 996}, // int(996.11)
		{3, 1000, 256, 85333},
		{768, 1024, 256, 341},
		{640, 427, 383, 256}, // int(383.7)
	} {
		if ow, oh := p.OutputSize(c.w, c.h); ow != c.ow || oh != c.oh {
			t.Errorf("%dx%d: %dx%d, want %dx%d", c.w, c.h, ow, oh, c.ow, c.oh)
		}
	}
	for _, c := range []struct{ n, out, off int }{
		{341, 224, 58}, // round(58.5) = 58: half to even
		{343, 224, 60}, // round(59.5) = 60
		{256, 224, 16},
		{224, 224, 0},
		{200, 224, -12}, // padded 12 before, 12 after
		{201, 224, -11}, // padded 11 before, 12 after
	} {
		if off := cropOffset(c.n, c.out); off != c.off {
			t.Errorf("cropOffset(%d, %d) = %d, want %d", c.n, c.out, off, c.off)
		}
	}
}

// TestGreyAndPaletteRoutes checks the conversions of Go-decoded PNGs
// against their definitions: grey replicated to RGB, PIL's luma, 16-bit
// grey clipped as PIL's mode "I", palette and alpha ignored.
func TestGreyAndPaletteRoutes(t *testing.T) {
	enc := func(m image.Image) []byte {
		var b bytes.Buffer
		if err := png.Encode(&b, m); err != nil {
			t.Fatal(err)
		}
		return b.Bytes()
	}
	g := image.NewGray(image.Rect(0, 0, 3, 2))
	g16 := image.NewGray16(image.Rect(0, 0, 3, 2))
	rgba := image.NewNRGBA(image.Rect(0, 0, 3, 2))
	pal := image.NewPaletted(image.Rect(0, 0, 3, 2), color.Palette{color.NRGBA{10, 200, 30, 0}, color.NRGBA{255, 0, 128, 255}})
	for i := range 6 {
		g.Pix[i] = uint8(40 * i)
		g16.SetGray16(i%3, i/3, color.Gray16{uint16(i * 100)})
		rgba.Pix[4*i], rgba.Pix[4*i+1], rgba.Pix[4*i+2], rgba.Pix[4*i+3] = uint8(i*40), uint8(255-i*40), 77, uint8(i*50)
		pal.Pix[i] = uint8(i % 2)
	}
	luma := func(r, g, b int) int { return (r*19595 + g*38470 + b*7471 + 0x8000) >> 16 }
	for _, c := range []struct {
		name     string
		data     []byte
		channels int
		want     func(i, ch int) int
	}{
		{"grey to RGB", enc(g), 3, func(i, _ int) int { return 40 * i }},
		{"grey", enc(g), 1, func(i, _ int) int { return 40 * i }},
		{"grey16 clipped", enc(g16), 1, func(i, _ int) int { return min(255, i*100) }},
		{"grey16 to RGB", enc(g16), 3, func(i, _ int) int { return min(255, i*100) }},
		{"RGBA drops alpha", enc(rgba), 3, func(i, ch int) int { return []int{i * 40, 255 - i*40, 77}[ch] }},
		{"RGBA to L", enc(rgba), 1, func(i, _ int) int { return luma(i*40, 255-i*40, 77) }},
		{"palette", enc(pal), 3, func(i, ch int) int { return [][]int{{10, 200, 30}, {255, 0, 128}}[i%2][ch] }},
		{"palette to L", enc(pal), 1, func(i, _ int) int { return []int{luma(10, 200, 30), luma(255, 0, 128)}[i%2] }},
	} {
		p, err := New(Options{Channels: c.channels})
		if err != nil {
			t.Fatal(err)
		}
		x, _, err := preprocess(p, c.data)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		for ch := range c.channels {
			for i := range 6 {
				if got, want := x[ch*6+i], float32(c.want(i, ch))/255; got != want {
					t.Errorf("%s: channel %d pixel %d: %v, want %v", c.name, ch, i, got*255, want*255)
				}
			}
		}
	}
}

// TestConcurrent runs one Preprocessor on many goroutines and checks the
// results against sequential ones.
func TestConcurrent(t *testing.T) {
	ents, err := os.ReadDir("testdata/fixtures")
	if err != nil {
		t.Fatal(err)
	}
	var datas [][]byte
	for _, e := range ents {
		datas = append(datas, fixture(t, e.Name()))
	}
	p, err := New(Options{Resize: 48, Crop: 40, Mean: []float32{0.5}, Std: []float32{0.2}})
	if err != nil {
		t.Fatal(err)
	}
	want := make([][]float32, len(datas))
	for i, d := range datas {
		if want[i], _, err = preprocess(p, d); err != nil {
			t.Fatal(err)
		}
	}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for r := range 20 {
				i := (g + r) % len(datas)
				got, _, err := preprocess(p, datas[i])
				if err != nil {
					t.Error(err)
					return
				}
				if d := compare(got, want[i], 3, nil); d.max != 0 {
					t.Errorf("fixture %d differs on goroutine %d: %s", i, g, d)
					return
				}
			}
		}()
	}
	wg.Wait()
}

// TestCorruptNoPanic flips bytes of every fixture: any result is fine
// except a panic, or non-finite values in a tensor returned without error.
func TestCorruptNoPanic(t *testing.T) {
	ents, err := os.ReadDir("testdata/fixtures")
	if err != nil {
		t.Fatal(err)
	}
	n := 60
	if testing.Short() {
		n = 10
	}
	r := rand.New(rand.NewPCG(1, 2))
	for _, lib := range []string{"", "none"} {
		p, err := New(Options{Resize: 40, Crop: 32, TurboJPEG: lib, MaxPixels: 1 << 20})
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range ents {
			orig := fixture(t, e.Name())
			for range n {
				data := append([]byte(nil), orig...)
				for range 1 + r.IntN(8) {
					data[r.IntN(len(data))] = byte(r.Uint32())
				}
				if r.IntN(4) == 0 {
					data = data[:r.IntN(len(data))]
				}
				checkNoPanic(t, p, data)
			}
		}
	}
}

func checkNoPanic(t testing.TB, p *Preprocessor, data []byte) {
	if _, _, err := p.Config(data); err != nil {
		if _, err2 := p.Preprocess(data, make([]float32, 3*32*32)); err2 == nil {
			t.Errorf("Config failed (%v) but Preprocess did not", err)
		}
		return
	}
	if w, h, _ := p.Config(data); p.Len(w, h) > 1<<22 {
		return // a sliver resized: valid, and too large to bother
	}
	x, _, err := preprocess(p, data)
	if err != nil {
		return
	}
	for _, v := range x {
		if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
			t.Fatalf("non-finite value %v", v)
		}
	}
}

// FuzzDecode feeds arbitrary bytes to both decoders (seed corpus:
// testdata/fuzz/FuzzDecode and the small fixtures). Each input runs six
// preprocessors, so minimising a new input takes a while: run it as
//
//	go test ./preprocess -run XXX -fuzz FuzzDecode -fuzzminimizetime 5s
func FuzzDecode(f *testing.F) {
	ents, err := os.ReadDir("testdata/fixtures")
	if err != nil {
		f.Fatal(err)
	}
	for _, e := range ents {
		// Small ones only: the fuzzer minimises each new input, slowly
		// for large ones.
		if b := fixture(f, e.Name()); len(b) < 8000 {
			f.Add(b)
		}
	}
	var ps []*Preprocessor
	for _, lib := range []string{"", "none"} {
		for _, o := range []Options{
			{Resize: 40, Crop: 32, TurboJPEG: lib, MaxPixels: 1 << 18},
			{Channels: 1, Resize: 16, TurboJPEG: lib, MaxPixels: 1 << 18, DCTScale: 1},
			{Crop: 32, TurboJPEG: lib, MaxPixels: 1 << 18},
		} {
			p, err := New(o)
			if err != nil {
				f.Fatal(err)
			}
			ps = append(ps, p)
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, p := range ps {
			checkNoPanic(t, p, data)
		}
	})
}

// TestGoodAfterBad checks that a failed decode leaves nothing behind: a
// TurboJPEG handle that failed reads the next header as 0x0, so it is
// dropped.
func TestGoodAfterBad(t *testing.T) {
	jpg := fixture(t, "rgb420_333x251.jpg")
	i := bytes.Index(jpg, []byte{0xff, 0xdb})
	p, err := New(Options{Resize: 64, Crop: 56})
	if err != nil {
		t.Fatal(err)
	}
	want, _, err := preprocess(p, jpg)
	if err != nil {
		t.Fatal(err)
	}
	x := make([]float32, len(want))
	for _, bad := range [][]byte{
		jpg[:3], jpg[:600], jpg[:len(jpg)/2], {0xff, 0xd8, 0xff, 0xd9},
		append(append(append([]byte(nil), jpg[:i]...), "xx"...), jpg[i:]...), // accepted with a warning
	} {
		for range 3 {
			p.Preprocess(bad, x)
			got, _, err := preprocess(p, jpg)
			if err != nil {
				t.Fatalf("after a %d-byte image: %v", len(bad), err)
			}
			if d := compare(got, want, 3, nil); d.max != 0 {
				t.Fatalf("after a %d-byte image: %s", len(bad), d)
			}
		}
	}
}
