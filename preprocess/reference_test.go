package preprocess

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// refCase is one entry of testdata/cases.json (see make_reference.py).
type refCase struct {
	Name     string    `json:"name"`
	File     string    `json:"file"`
	Channels int       `json:"channels"`
	Resize   int       `json:"resize"`
	Crop     int       `json:"crop"`
	Mean     []float32 `json:"mean"`
	Std      []float32 `json:"std"`
}

func (c refCase) options(lib string) Options {
	return Options{Channels: c.Channels, Resize: c.Resize, Crop: c.Crop, Mean: c.Mean, Std: c.Std, TurboJPEG: lib}
}

func loadCases(t testing.TB, path string) []refCase {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var cs []refCase
	if err := json.Unmarshal(b, &cs); err != nil {
		t.Fatal(err)
	}
	return cs
}

// readF32 reads a raw little-endian float32 file, gzipped where it ends in .gz.
func readF32(t testing.TB, path string) []float32 {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if strings.HasSuffix(path, ".gz") {
		z, err := gzip.NewReader(bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		if b, err = io.ReadAll(z); err != nil {
			t.Fatal(err)
		}
	}
	x := make([]float32, len(b)/4)
	for i := range x {
		x[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
	}
	return x
}

// diff is the largest and mean absolute difference between two tensors,
// and the largest in 8-bit levels (the difference times 255*std: the step
// one level makes after normalisation).
type diff struct {
	max, mean, levels float64
	n                 int
}

func (d diff) String() string {
	return fmt.Sprintf("max %.3g mean %.3g (%.3g levels)", d.max, d.mean, d.levels)
}

// compare compares CHW tensors normalised with std (nil: 1).
func compare(got, want []float32, channels int, std []float32) diff {
	var d diff
	var sum float64
	plane := len(got) / channels
	for i := range got {
		a := math.Abs(float64(got[i]) - float64(want[i]))
		sum += a
		d.max = max(d.max, a)
		s := 1.0
		if len(std) == channels {
			s = float64(std[i/plane])
		} else if len(std) == 1 {
			s = float64(std[0])
		}
		d.levels = max(d.levels, a*255*s)
	}
	d.n = len(got)
	if d.n > 0 {
		d.mean = sum / float64(d.n)
	}
	return d
}

// run preprocesses file with opt.
func run(t testing.TB, opt Options, file string) ([]float32, Result, error) {
	t.Helper()
	p, err := New(opt)
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	w, h, err := p.Config(data)
	if err != nil {
		t.Fatal(err)
	}
	x := make([]float32, p.Len(w, h))
	res, err := p.Preprocess(data, x)
	return x, res, err
}

// goJPEGLevels bounds the difference, in 8-bit levels, between Go's
// image/jpeg decoder (with libjpeg's upsampling and colour conversion) and
// torchvision on the committed fixtures: 2 measured, from the IDCTs'
// rounding.
const goJPEGLevels = 3

// TestTorchvisionReference compares every committed case with the tensor
// torchvision computed (testdata/ref): bit-identical with libjpeg-turbo
// and for PNGs; within goJPEGTolerance with Go's JPEG decoder.
func TestTorchvisionReference(t *testing.T) {
	cases := loadCases(t, "testdata/cases.json")
	for _, lib := range []string{"", "none"} {
		for _, c := range cases {
			name := c.Name
			if lib == "none" {
				name += "/go"
			}
			t.Run(name, func(t *testing.T) {
				want := readF32(t, filepath.Join("testdata/ref", c.Name+".f32.gz"))
				got, res, err := run(t, c.options(lib), filepath.Join("testdata", c.File))
				if strings.Contains(c.File, "corrupt_") && res.Decoder == DecoderGoJPEG {
					// Go's decoder rejects what libjpeg (and PIL) recover from.
					if err == nil {
						t.Fatal("Go's decoder accepted the corrupt JPEG")
					}
					return
				}
				if err != nil {
					t.Fatal(err)
				}
				if len(got) != len(want) {
					t.Fatalf("%d values, torchvision has %d (%dx%d)", len(got), len(want), res.OutWidth, res.OutHeight)
				}
				d := compare(got, want, c.Channels, c.Std)
				tol := 0.0
				if res.Decoder == DecoderGoJPEG {
					tol = goJPEGLevels + 1e-3
				}
				t.Logf("%s: %s", res.Decoder, d)
				if d.levels > tol {
					t.Errorf("%s: %s, want at most %g levels", res.Decoder, d, tol)
				}
			})
		}
	}
}
