package checkpoint

import (
	"fmt"
	"math/bits"
)

// DType is the element type of a tensor.
type DType uint8

// The element types that checkpoints hold.
const (
	Invalid DType = iota
	Bool
	U8
	I8
	I16
	U16
	I32
	U32
	I64
	U64
	F16
	BF16
	F32
	F64
	F8E4M3
	F8E5M2
	C64
	C128
)

// dtypes gives each DType's PyTorch name, safetensors name and size in
// bytes.
var dtypes = [...]struct {
	torch, safetensors string
	size               int
}{
	Invalid: {"invalid", "", 0},
	Bool:    {"bool", "BOOL", 1},
	U8:      {"uint8", "U8", 1},
	I8:      {"int8", "I8", 1},
	I16:     {"int16", "I16", 2},
	U16:     {"uint16", "U16", 2},
	I32:     {"int32", "I32", 4},
	U32:     {"uint32", "U32", 4},
	I64:     {"int64", "I64", 8},
	U64:     {"uint64", "U64", 8},
	F16:     {"float16", "F16", 2},
	BF16:    {"bfloat16", "BF16", 2},
	F32:     {"float32", "F32", 4},
	F64:     {"float64", "F64", 8},
	F8E4M3:  {"float8_e4m3fn", "F8_E4M3", 1},
	F8E5M2:  {"float8_e5m2", "F8_E5M2", 1},
	C64:     {"complex64", "C64", 8},
	C128:    {"complex128", "C128", 16},
}

// String returns the PyTorch name of d, such as "float32".
func (d DType) String() string {
	if int(d) < len(dtypes) {
		return dtypes[d].torch
	}
	return fmt.Sprintf("DType(%d)", uint8(d))
}

// Size returns the size of one element in bytes, or 0 for an invalid DType.
func (d DType) Size() int {
	if int(d) < len(dtypes) {
		return dtypes[d].size
	}
	return 0
}

// Tensor is one named tensor of a checkpoint. Data holds its elements
// little-endian in row-major order, Shape product times DType.Size() bytes;
// a scalar has an empty Shape and one element. Data may share memory with
// the input it was read from, so treat it as read-only.
type Tensor struct {
	Name  string
	DType DType
	Shape []int64
	Data  []byte
}

// Numel returns the number of elements of t.
func (t Tensor) Numel() int64 {
	n := int64(1)
	for _, d := range t.Shape {
		n *= d
	}
	return n
}

// view is a tensor as torch stores it: a strided window on a storage, with
// offset and strides counted in elements.
type view struct {
	dtype  DType
	store  []byte
	offset int64
	shape  []int64
	stride []int64
}

// maxElems bounds element counts so that byte sizes fit an int64.
const maxElems = 1 << 56

// numel returns the product of shape, or an error for a negative or
// overflowing dimension.
func numel(shape []int64) (int64, error) {
	n := uint64(1)
	for _, d := range shape {
		if d < 0 {
			return 0, fmt.Errorf("negative dimension in shape %v", shape)
		}
		hi, lo := bits.Mul64(n, uint64(d))
		if hi != 0 || lo > maxElems {
			return 0, fmt.Errorf("shape %v has too many elements", shape)
		}
		n = lo
	}
	return int64(n), nil
}

// budget bounds the bytes that materialising views may copy, so that a
// small file cannot ask for a huge allocation (an expanded view with stride
// 0 can cover many more elements than its storage holds).
type budget struct{ left int64 }

func (b *budget) take(n int64) error {
	if n > b.left {
		return fmt.Errorf("copying %d bytes would exceed the limit of 4 times the file size", n)
	}
	b.left -= n
	return nil
}

// materialise returns the contiguous bytes of v: a slice of its storage
// when v is already contiguous, else a copy charged to b.
func (v view) materialise(b *budget) ([]byte, error) {
	es := int64(v.dtype.Size())
	if es == 0 {
		return nil, fmt.Errorf("invalid dtype")
	}
	if len(v.stride) != len(v.shape) {
		return nil, fmt.Errorf("shape %v and stride %v differ in rank", v.shape, v.stride)
	}
	n, err := numel(v.shape)
	if err != nil {
		return nil, err
	}
	if n == 0 {
		return []byte{}, nil
	}
	if v.offset < 0 {
		return nil, fmt.Errorf("negative storage offset %d", v.offset)
	}
	// last is the storage index of the last element, and contiguous says
	// whether the strides are the row-major ones (ignoring size-1 dims).
	last, want, contiguous := uint64(v.offset), uint64(1), true
	for i := len(v.shape) - 1; i >= 0; i-- {
		d, s := v.shape[i], v.stride[i]
		if s < 0 {
			return nil, fmt.Errorf("negative stride in %v", v.stride)
		}
		hi, span := bits.Mul64(uint64(d-1), uint64(s))
		if hi != 0 || span > maxElems {
			return nil, fmt.Errorf("stride %v spans too far", v.stride)
		}
		last += span
		if d != 1 && uint64(s) != want {
			contiguous = false
		}
		want *= uint64(d)
	}
	if have := uint64(len(v.store)) / uint64(es); last >= have {
		return nil, fmt.Errorf("view (offset %d, shape %v, stride %v) reaches element %d of a %d-element storage",
			v.offset, v.shape, v.stride, last, have)
	}
	if contiguous {
		return v.store[v.offset*es : (v.offset+n)*es : (v.offset+n)*es], nil
	}
	if err := b.take(n * es); err != nil {
		return nil, err
	}
	out := make([]byte, 0, n*es)
	idx := make([]int64, len(v.shape))
	inner := len(v.shape) - 1
	for len(out) < cap(out) {
		base := v.offset
		for i, x := range idx[:inner] {
			base += x * v.stride[i]
		}
		if s := v.stride[inner]; s == 1 {
			out = append(out, v.store[base*es:(base+v.shape[inner])*es]...)
		} else {
			for j := int64(0); j < v.shape[inner]; j++ {
				p := (base + j*s) * es
				out = append(out, v.store[p:p+es]...)
			}
		}
		for i := inner - 1; i >= 0; i-- {
			if idx[i]++; idx[i] < v.shape[i] {
				break
			}
			idx[i] = 0
		}
	}
	return out, nil
}

// swapBytes returns a copy of big-endian data of dtype d in little-endian
// order. Complex elements swap each of their two parts.
func swapBytes(data []byte, d DType) []byte {
	w := d.Size()
	if d == C64 || d == C128 {
		w /= 2
	}
	out := make([]byte, len(data))
	for i := 0; i+w <= len(data); i += w {
		for j := 0; j < w; j++ {
			out[i+j] = data[i+w-1-j]
		}
	}
	return out
}
