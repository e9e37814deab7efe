package preprocess

import "math"

// precisionBits is PIL's PRECISION_BITS: coefficients are fixed point with
// 22 fractional bits (32 - 8 - 2).
const precisionBits = 32 - 8 - 2

// half is the rounding term PIL starts each sum with.
const half = 1 << (precisionBits - 1)

// cropOffset is where the crop's first pixel lies in an axis of size n
// cut to out: torchvision's CenterCrop, int(round((n - out) / 2.0)) with
// Python's round half to even, or minus the left padding where out > n.
func cropOffset(n, out int) int {
	if out > n {
		return -((out - n) / 2)
	}
	return int(math.RoundToEven(float64(n-out) / 2.0))
}

// coeffs computes PIL's bilinear (antialiased) resampling coefficients
// (precompute_coeffs and normalize_coeffs_8bpc in Resample.c) for the n
// output positions first..first+n-1 of an axis resized from in to out. It
// returns the kernel size, the bounds (first input index, count) of each
// position, and the 22-bit fixed-point coefficients, ksize per position.
func coeffs(in, out, first, n int, bounds, kk []int32, kd []float64) (int, []int32, []int32, []float64) {
	// filterscale = scale = (double)(in1 - in0) / outSize, box floats.
	scale := float64(float32(in)) / float64(out)
	filterscale := scale
	if filterscale < 1 {
		filterscale = 1
	}
	support := 1.0 * filterscale // bilinear support is 1
	ksize := int(math.Ceil(support))*2 + 1
	bounds = grow(bounds, 2*n)
	kk = grow(kk, n*ksize)
	kd = grow(kd, ksize)
	ss := 1.0 / filterscale
	for i := range n {
		xx := first + i
		// The explicit float64 conversions forbid fused multiply-adds, as
		// PIL's C (x86-64 baseline, no FMA) computes.
		center := float64(0) + float64((float64(xx)+0.5)*scale)
		ww := 0.0
		xmin := int(float64(center-support) + 0.5)
		if xmin < 0 {
			xmin = 0
		}
		xmax := int(float64(center+support) + 0.5)
		if xmax > in {
			xmax = in
		}
		xmax -= xmin
		if xmax > ksize {
			xmax = ksize // cannot happen; keeps the slices in range
		}
		k := kd[:ksize]
		for x := range xmax {
			w := bilinear(float64(float64(float64(x+xmin)-center)+0.5) * ss)
			k[x] = w
			ww += w
		}
		for x := range xmax {
			if ww != 0 {
				k[x] /= ww
			}
		}
		q := kk[i*ksize : (i+1)*ksize]
		for x := range ksize {
			v := 0.0
			if x < xmax {
				v = k[x]
			}
			if v < 0 {
				q[x] = int32(-0.5 + float64(v*(1<<precisionBits)))
			} else {
				q[x] = int32(0.5 + float64(v*(1<<precisionBits)))
			}
		}
		bounds[2*i] = int32(xmin)
		bounds[2*i+1] = int32(xmax)
	}
	return ksize, bounds, kk, kd
}

func bilinear(x float64) float64 {
	if x < 0 {
		x = -x
	}
	if x < 1 {
		return 1 - x
	}
	return 0
}

// taps is one axis's resampling in a dense form: output i reads inputs
// start[i] .. start[i]+n-1 with coefficients k[i*n : (i+1)*n]. It holds
// PIL's coefficients, zero-padded to the largest count n; where that would
// read past the input's end, start moves left and the zeros go first, which
// leaves every sum as PIL computes it.
type taps struct {
	n        int
	start    []int32
	k        []int32
	lo, hi   int // the inputs read: [lo, hi)
	pb, pk   []int32
	kd       []float64
	identity bool
}

// set computes the taps of outputs first .. first+count-1 of an axis
// resized from in to out.
func (t *taps) set(in, out, first, count int) {
	var ks int
	ks, t.pb, t.pk, t.kd = coeffs(in, out, first, count, t.pb, t.pk, t.kd)
	n := 1
	for i := range count {
		n = max(n, int(t.pb[2*i+1]))
	}
	t.n = n
	t.start = grow(t.start, count)
	t.k = grow(t.k, count*n)
	clear(t.k)
	t.lo, t.hi = in, 0
	for i := range count {
		st, cnt := int(t.pb[2*i]), int(t.pb[2*i+1])
		shift := 0
		if st+n > in {
			shift = st + n - in
		}
		t.start[i] = int32(st - shift)
		copy(t.k[i*n+shift:i*n+shift+cnt], t.pk[i*ks:i*ks+cnt])
		t.lo = min(t.lo, st-shift)
		t.hi = max(t.hi, st-shift+n)
	}
}

// transform resizes img to rw x rh (PIL's two-pass resample), cuts the
// ow x oh centre crop and writes its normalised CHW tensor to dst,
// computing only the pixels the crop keeps.
//
// Bilinear coefficients are never negative, so every sum lies in
// [2^21, 255.5*2^22) and PIL's clip8 is a plain shift here.
func (p *Preprocessor) transform(img pixels, rw, rh, ow, oh int, dst []float32, s *scratch) {
	C := p.opt.Channels
	offX, offY := 0, 0
	if p.opt.Crop > 0 {
		offX, offY = cropOffset(rw, ow), cropOffset(rh, oh)
	}
	// The output columns [ox0, ox1) and rows [oy0, oy1) that fall inside
	// the resized image; the rest is torchvision's zero padding.
	ox0, ox1 := max(0, -offX), min(ow, rw-offX)
	oy0, oy1 := max(0, -offY), min(oh, rh-offY)
	if ox0 > 0 || ox1 < ow || oy0 > 0 || oy1 < oh {
		plane := ow * oh
		for c := range C {
			z := p.lut[c][0]
			d := dst[c*plane : (c+1)*plane]
			for i := range d {
				d[i] = z
			}
		}
	}
	if ox0 >= ox1 || oy0 >= oy1 {
		return
	}
	ncols, nrows := ox1-ox0, oy1-oy0
	needH, needV := rw != img.w, rh != img.h

	// Source columns [sx0, sx1) and rows [sy0, sy1) that the kept pixels
	// read.
	ht, vt := &s.ht, &s.vt
	var sx0, sx1, sy0, sy1 int
	if needH {
		ht.set(img.w, rw, ox0+offX, ncols)
		sx0, sx1 = ht.lo, ht.hi
	} else {
		sx0, sx1 = ox0+offX, ox1+offX
	}
	if needV {
		vt.set(img.h, rh, oy0+offY, nrows)
		sy0, sy1 = vt.lo, vt.hi
	} else {
		sy0, sy1 = oy0+offY, oy1+offY
	}

	// src(x, y) is at pix[(y-sy0)*stride + (x-x0)*bpp].
	bpp, stride, x0 := img.bpp, img.stride, 0
	pix := img.pix[sy0*img.stride:]
	if bpp == 3 && C == 1 {
		// PIL's convert("L") of the pixels read.
		w := sx1 - sx0
		s.conv = grow(s.conv, w*(sy1-sy0))
		for y := sy0; y < sy1; y++ {
			in := pix[(y-sy0)*stride+sx0*3 : (y-sy0)*stride+sx1*3]
			out := s.conv[(y-sy0)*w : (y-sy0+1)*w]
			for x := range out {
				r, g, b := uint32(in[3*x]), uint32(in[3*x+1]), uint32(in[3*x+2])
				out[x] = byte((r*19595 + g*38470 + b*7471 + 0x8000) >> 16)
			}
		}
		bpp, stride, x0, pix = 1, w, sx0, s.conv
	}

	// Horizontal pass into tmp: rows sy0..sy1-1, ncols pixels each.
	var tmp []byte
	tstride := ncols * bpp
	if needH {
		s.tmp = grow(s.tmp, tstride*(sy1-sy0))
		tmp = s.tmp
		for y := 0; y < sy1-sy0; y++ {
			row := pix[y*stride+(sx0-x0)*bpp : y*stride+(sx1-x0)*bpp]
			out := tmp[y*tstride : (y+1)*tstride]
			horizontal(out, row, bpp, ht, sx0)
		}
	} else {
		// tmp(i, y) = src(sx0+i, y)
		tmp = pix[(sx0-x0)*bpp:]
		tstride = stride
	}

	// Vertical pass, then scale and normalise into dst.
	plane := ow * oh
	n := ncols * bpp
	for o := range nrows {
		base := (oy0+o)*ow + ox0
		var d [3][]float32
		for c := range C {
			d[c] = dst[c*plane+base : c*plane+base+ncols]
		}
		if !needV {
			row := tmp[(o+oy0+offY-sy0)*tstride:][:n]
			p.store(d, row, bpp)
			continue
		}
		st := int(vt.start[o]) - sy0
		k := vt.k[o*vt.n : (o+1)*vt.n]
		row := func(j int) []byte { return tmp[(st+j)*tstride:][:n] }
		switch {
		case vt.n == 2 && bpp == 3:
			vert3x2(d, row(0), row(1), k[0], k[1], &p.lut)
		case vt.n == 3 && bpp == 3:
			vert3x3(d, row(0), row(1), row(2), k[0], k[1], k[2], &p.lut)
		case vt.n == 4 && bpp == 3:
			vert3x4(d, row(0), row(1), row(2), row(3), k[0], k[1], k[2], k[3], &p.lut)
		default:
			s.acc = grow(s.acc, n)
			acc := s.acc
			for i := range acc {
				acc[i] = half
			}
			for j, kv := range k {
				r := row(j)[:len(acc)]
				for i, v := range r {
					acc[i] += int32(v) * kv
				}
			}
			s.tmp8 = grow(s.tmp8, n)
			out8 := s.tmp8
			for i, v := range acc {
				out8[i] = byte(v >> precisionBits)
			}
			p.store(d, out8, bpp)
		}
	}
}

// store writes one row of bytes (bpp per pixel) through the lookup tables.
func (p *Preprocessor) store(d [3][]float32, row []byte, bpp int) {
	if bpp == 3 {
		l0, l1, l2 := &p.lut[0], &p.lut[1], &p.lut[2]
		d0, d1, d2 := d[0], d[1][:len(d[0])], d[2][:len(d[0])]
		row = row[:3*len(d0)]
		for i := range d0 {
			px := (*[3]byte)(row[3*i:])
			d0[i] = l0[px[0]]
			d1[i] = l1[px[1]]
			d2[i] = l2[px[2]]
		}
		return
	}
	row = row[:len(d[0])]
	for c := range p.opt.Channels {
		l := &p.lut[c]
		dc := d[c][:len(row)]
		for i, v := range row {
			dc[i] = l[v]
		}
	}
}

// horizontal resamples one row; row starts at input column lo.
func horizontal(out, row []byte, bpp int, t *taps, lo int) {
	n := t.n
	if bpp == 1 {
		for i := range out {
			st := int(t.start[i]) - lo
			k := t.k[i*n : (i+1)*n]
			in := row[st : st+n]
			s := int32(half)
			for j, kv := range k {
				s += int32(in[j]) * kv
			}
			out[i] = byte(s >> precisionBits)
		}
		return
	}
	cols := len(out) / 3
	start := t.start[:cols]
	switch n {
	case 2:
		k := t.k[:2*cols]
		for i, st := range start {
			in := (*[6]byte)(row[3*(int(st)-lo):])
			kk := (*[2]int32)(k[2*i:])
			k0, k1 := kk[0], kk[1]
			o := (*[3]byte)(out[3*i:])
			o[0] = byte((half + int32(in[0])*k0 + int32(in[3])*k1) >> precisionBits)
			o[1] = byte((half + int32(in[1])*k0 + int32(in[4])*k1) >> precisionBits)
			o[2] = byte((half + int32(in[2])*k0 + int32(in[5])*k1) >> precisionBits)
		}
	case 3:
		k := t.k[:3*cols]
		for i, st := range start {
			in := (*[9]byte)(row[3*(int(st)-lo):])
			kk := (*[3]int32)(k[3*i:])
			k0, k1, k2 := kk[0], kk[1], kk[2]
			o := (*[3]byte)(out[3*i:])
			o[0] = byte((half + int32(in[0])*k0 + int32(in[3])*k1 + int32(in[6])*k2) >> precisionBits)
			o[1] = byte((half + int32(in[1])*k0 + int32(in[4])*k1 + int32(in[7])*k2) >> precisionBits)
			o[2] = byte((half + int32(in[2])*k0 + int32(in[5])*k1 + int32(in[8])*k2) >> precisionBits)
		}
	case 4:
		k := t.k[:4*cols]
		for i, st := range start {
			in := (*[12]byte)(row[3*(int(st)-lo):])
			kk := (*[4]int32)(k[4*i:])
			k0, k1, k2, k3 := kk[0], kk[1], kk[2], kk[3]
			o := (*[3]byte)(out[3*i:])
			o[0] = byte((half + int32(in[0])*k0 + int32(in[3])*k1 + int32(in[6])*k2 + int32(in[9])*k3) >> precisionBits)
			o[1] = byte((half + int32(in[1])*k0 + int32(in[4])*k1 + int32(in[7])*k2 + int32(in[10])*k3) >> precisionBits)
			o[2] = byte((half + int32(in[2])*k0 + int32(in[5])*k1 + int32(in[8])*k2 + int32(in[11])*k3) >> precisionBits)
		}
	default:
		for i, st := range start {
			k := t.k[i*n : (i+1)*n]
			in := row[3*(int(st)-lo) : 3*(int(st)-lo+n)]
			s0, s1, s2 := int32(half), int32(half), int32(half)
			for j, kv := range k {
				px := (*[3]byte)(in[3*j:])
				s0 += int32(px[0]) * kv
				s1 += int32(px[1]) * kv
				s2 += int32(px[2]) * kv
			}
			o := (*[3]byte)(out[3*i:])
			o[0], o[1], o[2] = byte(s0>>precisionBits), byte(s1>>precisionBits), byte(s2>>precisionBits)
		}
	}
}

func vert3x2(d [3][]float32, r0, r1 []byte, k0, k1 int32, lut *[][256]float32) {
	l0, l1, l2 := &(*lut)[0], &(*lut)[1], &(*lut)[2]
	d0 := d[0]
	d1, d2 := d[1][:len(d0)], d[2][:len(d0)]
	r0, r1 = r0[:3*len(d0)], r1[:3*len(d0)]
	for i := range d0 {
		a, b := (*[3]byte)(r0[3*i:]), (*[3]byte)(r1[3*i:])
		d0[i] = l0[byte((half+int32(a[0])*k0+int32(b[0])*k1)>>precisionBits)]
		d1[i] = l1[byte((half+int32(a[1])*k0+int32(b[1])*k1)>>precisionBits)]
		d2[i] = l2[byte((half+int32(a[2])*k0+int32(b[2])*k1)>>precisionBits)]
	}
}

func vert3x3(d [3][]float32, r0, r1, r2 []byte, k0, k1, k2 int32, lut *[][256]float32) {
	l0, l1, l2 := &(*lut)[0], &(*lut)[1], &(*lut)[2]
	d0 := d[0]
	d1, d2 := d[1][:len(d0)], d[2][:len(d0)]
	r0, r1, r2 = r0[:3*len(d0)], r1[:3*len(d0)], r2[:3*len(d0)]
	for i := range d0 {
		a, b, c := (*[3]byte)(r0[3*i:]), (*[3]byte)(r1[3*i:]), (*[3]byte)(r2[3*i:])
		d0[i] = l0[byte((half+int32(a[0])*k0+int32(b[0])*k1+int32(c[0])*k2)>>precisionBits)]
		d1[i] = l1[byte((half+int32(a[1])*k0+int32(b[1])*k1+int32(c[1])*k2)>>precisionBits)]
		d2[i] = l2[byte((half+int32(a[2])*k0+int32(b[2])*k1+int32(c[2])*k2)>>precisionBits)]
	}
}

func vert3x4(d [3][]float32, r0, r1, r2, r3 []byte, k0, k1, k2, k3 int32, lut *[][256]float32) {
	l0, l1, l2 := &(*lut)[0], &(*lut)[1], &(*lut)[2]
	d0 := d[0]
	d1, d2 := d[1][:len(d0)], d[2][:len(d0)]
	r0, r1, r2, r3 = r0[:3*len(d0)], r1[:3*len(d0)], r2[:3*len(d0)], r3[:3*len(d0)]
	for i := range d0 {
		a, b, c, e := (*[3]byte)(r0[3*i:]), (*[3]byte)(r1[3*i:]), (*[3]byte)(r2[3*i:]), (*[3]byte)(r3[3*i:])
		d0[i] = l0[byte((half+int32(a[0])*k0+int32(b[0])*k1+int32(c[0])*k2+int32(e[0])*k3)>>precisionBits)]
		d1[i] = l1[byte((half+int32(a[1])*k0+int32(b[1])*k1+int32(c[1])*k2+int32(e[1])*k3)>>precisionBits)]
		d2[i] = l2[byte((half+int32(a[2])*k0+int32(b[2])*k1+int32(c[2])*k2+int32(e[2])*k3)>>precisionBits)]
	}
}
