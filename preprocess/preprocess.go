// Package preprocess turns encoded images (JPEG, PNG) into the float32 CHW
// tensor a model takes, reproducing torchvision 0.14 on PIL 9.4:
//
//	img = Image.open(f).convert("RGB")        # or .convert("L") for one channel
//	Resize(resize)                            # PIL Image.resize, BILINEAR (antialiased)
//	CenterCrop(crop)
//	ToTensor()
//	Normalize(mean, std)
//
// JPEGs are decoded by libjpeg-turbo (libturbojpeg, loaded at run time with
// purego, so the package builds with CGO_ENABLED=0) with the settings PIL's
// decoder uses, which makes the output bit-identical to torchvision's.
// Without the library, Go's image/jpeg decodes them (its IDCT and chroma
// upsampling differ from libjpeg's: pixels differ by a few levels; see
// README.md). PNGs are decoded by Go's image/png (lossless, so identical).
//
// Resize, crop, scaling to [0, 1] and normalisation run as one pass that
// computes only the pixels the crop keeps and writes the CHW tensor
// directly, with PIL's fixed-point arithmetic (ImagingResample: support
// scaled by the downscale factor, 22-bit coefficients, a horizontal then a
// vertical pass rounded and clipped to uint8 in between).
package preprocess

import (
	"bytes"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"io"
	"math"
	"sync"
)

// Options says how to preprocess an image.
type Options struct {
	// Channels is 3 (RGB, PIL convert("RGB")) or 1 (PIL convert("L"),
	// luma L = (19595 R + 38470 G + 7471 B + 0x8000) >> 16). 0 means 3.
	Channels int
	// Resize is torchvision's Resize(int): the shorter side becomes Resize,
	// the longer int(Resize*long/short); 0 keeps the size.
	Resize int
	// Crop is torchvision's CenterCrop(int): the central Crop x Crop square,
	// padded with zeros (before normalisation) where the image is smaller;
	// 0 keeps the whole image.
	Crop int
	// Mean and Std normalise each channel: (x - mean) / std, in float32.
	// Each holds Channels values, or one for all; empty means 0 and 1.
	Mean, Std []float32
	// DCTScale, when > 0 and Resize > 0, lets libjpeg-turbo decode a JPEG
	// scaled down in the DCT domain (by 1/2, 1/4 or 1/8) to the smallest
	// size whose shorter side is still at least DCTScale*Resize, before the
	// resize (what PIL's draft does, but torchvision does not).
	// Faster on large images, but not what torchvision computes (it decodes
	// at full size): the difference is measured in README.md. 0 (the
	// default) decodes at full size.
	DCTScale float64
	// TurboJPEG is the libturbojpeg to load: "" means $VOG_TURBOJPEG, else
	// DefaultTurboJPEG; "none" means Go's decoder. A library that does not
	// load leaves Go's decoder in use (JPEGDecoder says which, and why).
	TurboJPEG string
	// MaxPixels is the largest image (width*height) accepted, before and
	// after the resize; 0 means PIL's limit, 2*89478485.
	MaxPixels int
}

// Decoder names, as Result.Decoder and JPEGDecoder report them.
const (
	DecoderTurboJPEG = "libjpeg-turbo"
	DecoderGoJPEG    = "image/jpeg"
	DecoderGoPNG     = "image/png"
)

const defaultMaxPixels = 2 * 89478485

// Result describes one preprocessed image.
type Result struct {
	Decoder       string // DecoderTurboJPEG, DecoderGoJPEG or DecoderGoPNG
	Width, Height int    // the source image's size
	// DecodedWidth and DecodedHeight are the size it was decoded at:
	// smaller than Width and Height where DCTScale let libjpeg-turbo scale.
	DecodedWidth, DecodedHeight int
	OutWidth, OutHeight         int // the tensor's spatial size
}

// Preprocessor preprocesses images with fixed Options. It is safe for
// concurrent use.
type Preprocessor struct {
	opt    Options
	lut    [][256]float32 // per output channel: the normalised value of each byte
	tj     *TurboJPEG
	tjErr  error
	bufs   sync.Pool // *scratch
	maxPix int
}

// New checks opt and loads the JPEG decoder.
func New(opt Options) (*Preprocessor, error) {
	if opt.Channels == 0 {
		opt.Channels = 3
	}
	if opt.Channels != 1 && opt.Channels != 3 {
		return nil, fmt.Errorf("preprocess: channels %d: want 1 or 3", opt.Channels)
	}
	if opt.Resize < 0 || opt.Crop < 0 || opt.MaxPixels < 0 || opt.DCTScale < 0 || math.IsNaN(opt.DCTScale) {
		return nil, fmt.Errorf("preprocess: negative resize, crop, max pixels or DCT scale")
	}
	mean, err := perChannel("mean", opt.Mean, opt.Channels, 0)
	if err != nil {
		return nil, err
	}
	std, err := perChannel("std", opt.Std, opt.Channels, 1)
	if err != nil {
		return nil, err
	}
	p := &Preprocessor{opt: opt, lut: make([][256]float32, opt.Channels), maxPix: opt.MaxPixels}
	if p.maxPix == 0 {
		p.maxPix = defaultMaxPixels
	}
	for c := range opt.Channels {
		if std[c] == 0 {
			return nil, fmt.Errorf("preprocess: std of channel %d is 0", c)
		}
		m, s := mean[c], std[c]
		for v := range 256 {
			// ToTensor: img.to(float32).div(255); Normalize: sub_(mean).div_(std).
			x := float32(v) / float32(255)
			x = x - m
			p.lut[c][v] = x / s
		}
	}
	p.tj, p.tjErr = LoadTurboJPEG(opt.TurboJPEG)
	return p, nil
}

func perChannel(name string, v []float32, c int, def float32) ([]float32, error) {
	switch len(v) {
	case 0:
		v = []float32{def}
		fallthrough
	case 1:
		out := make([]float32, c)
		for i := range out {
			out[i] = v[0]
		}
		return out, nil
	case c:
		return v, nil
	}
	return nil, fmt.Errorf("preprocess: %d %s values for %d channels", len(v), name, c)
}

// Options returns the options p was made with (Channels filled in).
func (p *Preprocessor) Options() Options { return p.opt }

// JPEGDecoder names the decoder JPEGs get, DecoderTurboJPEG or
// DecoderGoJPEG, and why libjpeg-turbo is not used where it is not. The two
// give different pixels: a job should record which one computed it.
func (p *Preprocessor) JPEGDecoder() (name string, why error) {
	if p.tj != nil {
		return DecoderTurboJPEG, nil
	}
	return DecoderGoJPEG, p.tjErr
}

// TurboJPEGPath is the file libturbojpeg was loaded from, or "".
func (p *Preprocessor) TurboJPEGPath() string {
	if p.tj == nil {
		return ""
	}
	return p.tj.File()
}

// OutputSize is the tensor's spatial size for a w x h source image.
func (p *Preprocessor) OutputSize(w, h int) (ow, oh int) {
	ow, oh = resizedSize(w, h, p.opt.Resize)
	if p.opt.Crop > 0 {
		ow, oh = p.opt.Crop, p.opt.Crop
	}
	return ow, oh
}

// Len is the number of float32s the tensor of a w x h image holds.
func (p *Preprocessor) Len(w, h int) int {
	ow, oh := p.OutputSize(w, h)
	return p.opt.Channels * ow * oh
}

// resizedSize is torchvision's Resize(int) output size (w, h):
// new_short = size, new_long = int(size * long / short).
func resizedSize(w, h, size int) (int, int) {
	if size == 0 || w <= 0 || h <= 0 {
		return w, h
	}
	if w <= h {
		return size, int(float64(size*h) / float64(w))
	}
	return int(float64(size*w) / float64(h)), size
}

// ErrTooLarge is returned, before anything is decoded, for an image of more
// pixels than Options.MaxPixels.
var ErrTooLarge = errors.New("preprocess: image too large")

var (
	errUnknownFormat = errors.New("preprocess: not a JPEG or PNG image")
	errEmpty         = errors.New("preprocess: empty image data")
)

func isJPEG(b []byte) bool { return len(b) >= 3 && b[0] == 0xff && b[1] == 0xd8 && b[2] == 0xff }
func isPNG(b []byte) bool  { return len(b) >= 8 && string(b[:8]) == "\x89PNG\r\n\x1a\n" }

// Config returns an image's size from its header.
func (p *Preprocessor) Config(data []byte) (w, h int, err error) {
	switch {
	case len(data) == 0:
		return 0, 0, errEmpty
	case isJPEG(data) && p.tj != nil:
		hd, err := p.tj.headerOf(data)
		return hd.w, hd.h, err
	case isJPEG(data) || isPNG(data):
		c, _, err := image.DecodeConfig(bytes.NewReader(data))
		if err != nil {
			return 0, 0, fmt.Errorf("preprocess: %w", err)
		}
		return c.Width, c.Height, nil
	}
	return 0, 0, errUnknownFormat
}

// Preprocess decodes data and writes its tensor, [Channels][OutHeight]
// [OutWidth], into dst, which must hold exactly Len(w, h) float32s. A
// corrupt, truncated or oversized image is an error.
func (p *Preprocessor) Preprocess(data []byte, dst []float32) (Result, error) {
	s := p.scratch()
	defer p.bufs.Put(s)
	var (
		img pixels
		res Result
		err error
	)
	switch {
	case len(data) == 0:
		return res, errEmpty
	case isJPEG(data) && p.tj != nil:
		img, res, err = p.decodeTurbo(data, s)
	case isJPEG(data):
		img, res, err = p.decodeGo(data, s, DecoderGoJPEG, jpeg.Decode)
	case isPNG(data):
		img, res, err = p.decodeGo(data, s, DecoderGoPNG, png.Decode)
	default:
		return res, errUnknownFormat
	}
	if err != nil {
		return res, err
	}
	rw, rh := resizedSize(res.Width, res.Height, p.opt.Resize)
	if int64(rw)*int64(rh) > int64(p.maxPix) {
		return res, fmt.Errorf("%w: %dx%d image resized to %dx%d exceeds %d pixels", ErrTooLarge, res.Width, res.Height, rw, rh, p.maxPix)
	}
	res.OutWidth, res.OutHeight = p.OutputSize(res.Width, res.Height)
	if n := p.opt.Channels * res.OutWidth * res.OutHeight; len(dst) != n {
		return res, fmt.Errorf("preprocess: %dx%d image makes %d values, the destination holds %d", res.Width, res.Height, n, len(dst))
	}
	p.transform(img, rw, rh, res.OutWidth, res.OutHeight, dst, s)
	return res, nil
}

// pixels is a decoded 8-bit image: bpp 1 (grey) or 3 (RGB), rows of stride
// bytes.
type pixels struct {
	w, h, bpp, stride int
	pix               []byte
}

// scratch holds one call's buffers, reused across calls.
type scratch struct {
	src, conv, tmp, tmp8 []byte
	acc                  []int32
	ht, vt               taps // the horizontal and vertical resampling
}

func (p *Preprocessor) scratch() *scratch {
	if s, ok := p.bufs.Get().(*scratch); ok {
		return s
	}
	return new(scratch)
}

func grow[T any](b []T, n int) []T {
	if cap(b) < n {
		return make([]T, n)
	}
	return b[:n]
}

func (t *TurboJPEG) headerOf(data []byte) (hd jpegHeader, err error) {
	h, err := t.get()
	if err != nil {
		return jpegHeader{}, err
	}
	defer func() { t.release(h, err) }()
	return t.header(h, data)
}

func (p *Preprocessor) decodeTurbo(data []byte, s *scratch) (_ pixels, res Result, err error) {
	res = Result{Decoder: DecoderTurboJPEG}
	h, err := p.tj.get()
	if err != nil {
		return pixels{}, res, err
	}
	defer func() { p.tj.release(h, err) }()
	hd, err := p.tj.header(h, data)
	if err != nil {
		return pixels{}, res, err
	}
	res.Width, res.Height = hd.w, hd.h
	if hd.w*hd.h > p.maxPix {
		return pixels{}, res, fmt.Errorf("%w: %dx%d image exceeds %d pixels", ErrTooLarge, hd.w, hd.h, p.maxPix)
	}
	w, ht := p.dctSize(hd.w, hd.h)
	res.DecodedWidth, res.DecodedHeight = w, ht
	pf, bpp := tjpfRGB, 3
	switch hd.colorspace {
	case tjcsGray:
		pf, bpp = tjpfGray, 1
	case tjcsCMYK, tjcsYCCK:
		pf, bpp = tjpfCMYK, 4
	}
	s.src = grow(s.src, w*ht*bpp)
	if err := p.tj.decode(h, data, s.src, w, ht, bpp, pf); err != nil {
		return pixels{}, res, err
	}
	img := pixels{w: w, h: ht, bpp: bpp, stride: w * bpp, pix: s.src}
	if bpp == 4 {
		// PIL reads CMYK JPEGs as Adobe's inverted CMYK ("CMYK;I"):
		// libjpeg's k is PIL's 255-K.
		s.conv = grow(s.conv, w*ht*3)
		cmykToRGB(s.conv, s.src, true)
		img = pixels{w: w, h: ht, bpp: 3, stride: w * 3, pix: s.conv}
	}
	return img, res, nil
}

// dctSize is the size to decode a w x h JPEG at: scaled by the smallest
// of libjpeg-turbo's factors 1/2, 1/4 and 1/8 that keeps the shorter side
// >= DCTScale*Resize and both sides >= the resized size. (The other
// factors, 3/8 to 7/8, have no SIMD IDCT: they decode no faster than the
// full size.)
func (p *Preprocessor) dctSize(w, h int) (int, int) {
	if p.opt.DCTScale <= 0 || p.opt.Resize == 0 {
		return w, h
	}
	rw, rh := resizedSize(w, h, p.opt.Resize)
	least := p.opt.DCTScale * float64(p.opt.Resize)
	bw, bh := w, h
	for _, f := range p.tj.scales { // largest first
		if f.num != 1 || f.denom&(f.denom-1) != 0 {
			continue
		}
		sw := (w*f.num + f.denom - 1) / f.denom
		sh := (h*f.num + f.denom - 1) / f.denom
		if float64(min(sw, sh)) < least || sw < rw || sh < rh {
			break
		}
		bw, bh = sw, sh
	}
	return bw, bh
}

// cmykToRGB is PIL's cmyk2rgb; inverted says the bytes are libjpeg's
// (Adobe) inverted CMYK, as PIL's "CMYK;I" raw mode reads them.
func cmykToRGB(dst, src []byte, inverted bool) {
	n := len(src) / 4
	dst = dst[:3*n]
	for i := range n {
		c, m, y, k := int(src[4*i]), int(src[4*i+1]), int(src[4*i+2]), int(src[4*i+3])
		if inverted {
			c, m, y, k = 255-c, 255-m, 255-y, 255-k
		}
		nk := 255 - k
		dst[3*i] = clip255(nk - mulDiv255(c, nk))
		dst[3*i+1] = clip255(nk - mulDiv255(m, nk))
		dst[3*i+2] = clip255(nk - mulDiv255(y, nk))
	}
}

func mulDiv255(a, b int) int {
	t := a*b + 128
	return ((t >> 8) + t) >> 8
}

func clip255(v int) byte {
	if v <= 0 {
		return 0
	}
	if v >= 255 {
		return 255
	}
	return byte(v)
}

// decodeGo decodes with Go's image packages and converts the result to
// PIL's "RGB" or "L" bytes.
func (p *Preprocessor) decodeGo(data []byte, s *scratch, name string, decode func(r io.Reader) (image.Image, error)) (pixels, Result, error) {
	res := Result{Decoder: name}
	c, _, err := image.DecodeConfig(bytes.NewReader(data))
	if err != nil {
		return pixels{}, res, fmt.Errorf("preprocess: %w", err)
	}
	res.Width, res.Height = c.Width, c.Height
	if c.Width <= 0 || c.Height <= 0 {
		return pixels{}, res, fmt.Errorf("preprocess: bad size %dx%d", c.Width, c.Height)
	}
	if c.Width*c.Height > p.maxPix {
		return pixels{}, res, fmt.Errorf("%w: %dx%d image exceeds %d pixels", ErrTooLarge, c.Width, c.Height, p.maxPix)
	}
	m, err := decode(bytes.NewReader(data))
	if err != nil {
		return pixels{}, res, fmt.Errorf("preprocess: %w", err)
	}
	b := m.Bounds()
	w, h := b.Dx(), b.Dy()
	res.Width, res.Height = w, h
	res.DecodedWidth, res.DecodedHeight = w, h
	if w <= 0 || h <= 0 {
		return pixels{}, res, fmt.Errorf("preprocess: bad size %dx%d", w, h)
	}
	grey := pixels{w: w, h: h, bpp: 1, stride: w}
	rgb := pixels{w: w, h: h, bpp: 3, stride: 3 * w}
	switch m := m.(type) {
	case *image.Gray:
		s.src = grow(s.src, w*h)
		for y := range h {
			copy(s.src[y*w:(y+1)*w], m.Pix[y*m.Stride:])
		}
		grey.pix = s.src
		return grey, res, nil
	case *image.Gray16:
		// PIL opens 16-bit grey PNGs as mode "I"; convert("RGB") and
		// convert("L") clip the values to 0..255.
		s.src = grow(s.src, w*h)
		for y := range h {
			row := m.Pix[y*m.Stride:]
			for x := range w {
				v := int(row[2*x])<<8 | int(row[2*x+1])
				s.src[y*w+x] = clip255(v)
			}
		}
		grey.pix = s.src
		return grey, res, nil
	case *image.CMYK:
		s.src = grow(s.src, w*h*4)
		for y := range h {
			copy(s.src[y*w*4:(y+1)*w*4], m.Pix[y*m.Stride:])
		}
		s.conv = grow(s.conv, w*h*3)
		cmykToRGB(s.conv, s.src, false)
		rgb.pix = s.conv
		return rgb, res, nil
	}
	s.src = grow(s.src, w*h*3)
	d := s.src
	switch m := m.(type) {
	case *image.YCbCr:
		ycbcrToRGB(d, m)
	case *image.RGBA: // opaque 8-bit PNGs: alpha is 255, so premultiplied = straight
		copyRGB(d, m.Pix, m.Stride, w, h, 4, 1)
	case *image.NRGBA: // PIL's convert("RGB") drops alpha without compositing
		copyRGB(d, m.Pix, m.Stride, w, h, 4, 1)
	case *image.RGBA64: // 16-bit: PIL keeps the high byte
		copyRGB(d, m.Pix, m.Stride, w, h, 8, 2)
	case *image.NRGBA64:
		copyRGB(d, m.Pix, m.Stride, w, h, 8, 2)
	case *image.Paletted:
		var pal [256][3]byte
		for i, c := range m.Palette {
			if i == 256 {
				break
			}
			n := color.NRGBAModel.Convert(c).(color.NRGBA)
			if nc, ok := c.(color.NRGBA); ok {
				n = nc
			}
			pal[i] = [3]byte{n.R, n.G, n.B}
		}
		for y := range h {
			row := m.Pix[y*m.Stride:]
			for x := range w {
				c := pal[row[x]]
				i := 3 * (y*w + x)
				d[i], d[i+1], d[i+2] = c[0], c[1], c[2]
			}
		}
	default:
		for y := range h {
			for x := range w {
				n := color.NRGBAModel.Convert(m.At(x+b.Min.X, y+b.Min.Y)).(color.NRGBA)
				i := 3 * (y*w + x)
				d[i], d[i+1], d[i+2] = n.R, n.G, n.B
			}
		}
	}
	rgb.pix = d
	return rgb, res, nil
}

// copyRGB copies the first three channels of each pixel of bpp bytes,
// taking the first byte of each channel of size cs.
func copyRGB(d, pix []byte, stride, w, h, bpp, cs int) {
	for y := range h {
		row := pix[y*stride : y*stride+w*bpp]
		out := d[3*y*w : 3*(y+1)*w]
		for x := range w {
			out[3*x] = row[bpp*x]
			out[3*x+1] = row[bpp*x+cs]
			out[3*x+2] = row[bpp*x+2*cs]
		}
	}
}
