package preprocess

import "image"

// ycbcrToRGB converts Go's decoded YCbCr planes to RGB the way libjpeg-turbo
// does by default: "fancy" (triangle filter) chroma upsampling for 4:2:0,
// 4:2:2 and 4:4:0 (jdsample.c), box replication for the other ratios, and
// libjpeg's fixed-point colour conversion (jdcolor.c). Only the IDCT then
// differs from libjpeg's, by a level here and there, where Go's own
// conversion (nearest chroma, other rounding) differs by tens of levels at
// sharp colour edges.
func ycbcrToRGB(d []byte, m *image.YCbCr) {
	b := m.Rect
	w, h := b.Dx(), b.Dy()
	cw := (m.COffset(b.Max.X-1, b.Min.Y) - m.COffset(b.Min.X, b.Min.Y)) + 1
	ch := (m.COffset(b.Min.X, b.Max.Y-1)-m.COffset(b.Min.X, b.Min.Y))/m.CStride + 1
	// Horizontal and vertical subsampling factors.
	hs, vs := 1, 1
	switch m.SubsampleRatio {
	case image.YCbCrSubsampleRatio422:
		hs = 2
	case image.YCbCrSubsampleRatio420:
		hs, vs = 2, 2
	case image.YCbCrSubsampleRatio440:
		vs = 2
	case image.YCbCrSubsampleRatio411:
		hs = 4
	case image.YCbCrSubsampleRatio410:
		hs, vs = 4, 2
	}
	c0 := m.COffset(b.Min.X, b.Min.Y)
	cbRow := func(y int) []byte { return m.Cb[c0+y*m.CStride : c0+y*m.CStride+cw] }
	crRow := func(y int) []byte { return m.Cr[c0+y*m.CStride : c0+y*m.CStride+cw] }
	cb := make([]byte, w)
	cr := make([]byte, w)
	cbv := make([]byte, cw)
	crv := make([]byte, cw)
	full := make([]byte, 2*cw)
	fancyH := hs == 2 && cw > 2
	fancyV := vs == 2 && hs <= 2 && cw > 2
	for y := range h {
		iy := y / vs
		var rb, rr []byte
		if fancyV && hs == 1 {
			// h1v2: 3/4 nearer row + 1/4 further, bias 1 above, 2 below.
			other, bias := iy-1, 1
			if y%2 == 1 {
				other, bias = iy+1, 2
			}
			other = clampInt(other, 0, ch-1)
			verticalFancy(cbv, cbRow(iy), cbRow(other), bias)
			verticalFancy(crv, crRow(iy), crRow(other), bias)
			rb, rr = cbv, crv
		} else if fancyV {
			// h2v2: column sums 3*nearer + further, then h2v2's rounding.
			other := iy - 1
			if y%2 == 1 {
				other = iy + 1
			}
			other = clampInt(other, 0, ch-1)
			h2v2Fancy(cb, cbRow(iy), cbRow(other), full)
			h2v2Fancy(cr, crRow(iy), crRow(other), full)
			yccRow(d[3*y*w:3*(y+1)*w], m.Y[m.YOffset(b.Min.X, b.Min.Y+y):], cb, cr)
			continue
		} else {
			rb, rr = cbRow(iy), crRow(iy)
		}
		switch {
		case fancyH:
			h2v1Fancy(cb, rb, full)
			h2v1Fancy(cr, rr, full)
		default:
			for x := range w {
				cb[x] = rb[x/hs]
				cr[x] = rr[x/hs]
			}
		}
		yccRow(d[3*y*w:3*(y+1)*w], m.Y[m.YOffset(b.Min.X, b.Min.Y+y):], cb, cr)
	}
}

func clampInt(v, lo, hi int) int {
	if v < lo {
		return lo
	}
	if v > hi {
		return hi
	}
	return v
}

func verticalFancy(out, near, far []byte, bias int) {
	for i := range out {
		out[i] = byte((int(near[i])*3 + int(far[i]) + bias) >> 2)
	}
}

// h2v1Fancy is libjpeg's h2v1_fancy_upsample of one row of n >= 3
// samples into out (len(out) <= 2n: the image's odd width cuts the last).
func h2v1Fancy(out, in, full []byte) {
	n := len(in)
	full = full[:2*n]
	v := int(in[0])
	full[0] = byte(v)
	full[1] = byte((v*3 + int(in[1]) + 2) >> 2)
	for i := 1; i < n-1; i++ {
		v := int(in[i]) * 3
		full[2*i] = byte((v + int(in[i-1]) + 1) >> 2)
		full[2*i+1] = byte((v + int(in[i+1]) + 2) >> 2)
	}
	v = int(in[n-1])
	full[2*n-2] = byte((v*3 + int(in[n-2]) + 1) >> 2)
	full[2*n-1] = byte(v)
	copy(out, full)
}

// h2v2Fancy is libjpeg's h2v2_fancy_upsample of one output row from the
// nearer and further input rows (n >= 3 samples each).
func h2v2Fancy(out, near, far, full []byte) {
	n := len(near)
	full = full[:2*n]
	col := func(i int) int { return int(near[i])*3 + int(far[i]) }
	this, next := col(0), col(1)
	full[0] = byte((this*4 + 8) >> 4)
	full[1] = byte((this*3 + next + 7) >> 4)
	last := this
	this = next
	for i := 1; i < n-1; i++ {
		next = col(i + 1)
		full[2*i] = byte((this*3 + last + 8) >> 4)
		full[2*i+1] = byte((this*3 + next + 7) >> 4)
		last, this = this, next
	}
	full[2*n-2] = byte((this*3 + last + 8) >> 4)
	full[2*n-1] = byte((this*4 + 7) >> 4)
	copy(out, full)
}

// libjpeg's YCbCr to RGB tables (jdcolor.c, SCALEBITS 16).
var crR, cbB, crG, cbG [256]int32

func init() {
	const scale = 16
	fix := func(x float64) int64 { return int64(x*(1<<scale) + 0.5) }
	for i := range 256 {
		x := int64(i - 128)
		crR[i] = int32((fix(1.40200)*x + 1<<(scale-1)) >> scale)
		cbB[i] = int32((fix(1.77200)*x + 1<<(scale-1)) >> scale)
		crG[i] = int32(-fix(0.71414) * x)
		cbG[i] = int32(-fix(0.34414)*x + 1<<(scale-1))
	}
}

func yccRow(out, ys, cb, cr []byte) {
	n := len(cb)
	out = out[:3*n]
	ys = ys[:n]
	for x := range n {
		y := int32(ys[x])
		b, r := cb[x], cr[x]
		out[3*x] = clamp8(y + crR[r])
		out[3*x+1] = clamp8(y + (cbG[b]+crG[r])>>16)
		out[3*x+2] = clamp8(y + cbB[b])
	}
}

func clamp8(v int32) byte {
	if v < 0 {
		return 0
	}
	if v > 255 {
		return 255
	}
	return byte(v)
}
