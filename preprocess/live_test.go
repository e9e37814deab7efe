package preprocess

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"testing"
	"time"
)

// liveSet is the images TestTorchvisionLive compares, by kind.
type liveSet struct {
	dir   string
	files map[string][]string // kind -> paths
}

// makeLiveSet writes the benchmark's JPEGs (Go's encoder), the large
// photo-like JPEGs and the committed fixtures' kinds into a temporary
// folder.
func makeLiveSet(t *testing.T, py string) liveSet {
	t.Helper()
	dir := t.TempDir()
	s := liveSet{dir: dir, files: map[string][]string{}}
	files, _ := benchJPEGs(t, dir, 4)
	s.files["bench 500x375 q90 4:2:0 (Go encoder)"] = files
	large := filepath.Join(dir, "large")
	out, err := exec.Command(py, "testdata/make_reference.py", "large", large).CombinedOutput()
	if err != nil {
		t.Fatalf("make_reference.py large: %v\n%s", err, out)
	}
	ents, err := os.ReadDir(large)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		// large<i>_<w>x<h>.jpg
		size := strings.TrimSuffix(strings.SplitN(e.Name(), "_", 2)[1], ".jpg")
		s.files["large "+size] = []string{filepath.Join(large, e.Name())}
	}
	ents, err = os.ReadDir("testdata/fixtures")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		kind := strings.SplitN(e.Name(), "_", 2)[0]
		abs, _ := filepath.Abs(filepath.Join("testdata/fixtures", e.Name()))
		s.files["fixture "+kind] = append(s.files["fixture "+kind], abs)
	}
	return s
}

// references computes torchvision's tensor of every file with each of
// the options, returning name -> file of the raw tensor.
func references(t *testing.T, py string, s liveSet, opts map[string]Options) map[string]string {
	t.Helper()
	var cases []map[string]any
	refs := map[string]string{}
	for oname, o := range opts {
		for _, files := range s.files {
			for _, f := range files {
				name := oname + "-" + strings.TrimSuffix(filepath.Base(f), filepath.Ext(f))
				c := map[string]any{"name": name, "file": f, "channels": o.Channels, "resize": o.Resize, "crop": o.Crop, "mean": o.Mean, "std": o.Std}
				if o.Mean == nil {
					c["mean"], c["std"] = nil, nil
				}
				cases = append(cases, c)
				refs[oname+"|"+f] = filepath.Join(s.dir, "ref", name+".f32")
			}
		}
	}
	b, _ := json.Marshal(cases)
	cj := filepath.Join(s.dir, "cases.json")
	if err := os.WriteFile(cj, b, 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(py, "testdata/make_reference.py", "tensors", cj, filepath.Join(s.dir, "ref")).CombinedOutput()
	if err != nil {
		t.Fatalf("make_reference.py tensors: %v\n%s", err, out)
	}
	return refs
}

// TestTorchvisionLive compares vog with torchvision run now, at full
// ImageNet size (Resize(256), CenterCrop(224)) and in grey, on the
// benchmark's JPEGs, large JPEGs and the fixtures: bit-identical with
// libjpeg-turbo at full size, within goJPEGLevels with Go's decoder. It logs
// the difference DCT-domain scaling makes (DCTScale 1 to 4) and its speed.
// It needs Python with torchvision (skipped otherwise, unless
// VOG_REQUIRE_TORCH=1); -short skips it.
func TestTorchvisionLive(t *testing.T) {
	if testing.Short() {
		t.Skip("-short")
	}
	py := needTorch(t)
	s := makeLiveSet(t, py)
	grey := Options{Channels: 1, Resize: 256, Crop: 224, Mean: []float32{0.5}, Std: []float32{0.5}}
	rgb := imagenet
	rgb.Channels = 3
	opts := map[string]Options{"rgb": rgb, "grey": grey}
	refs := references(t, py, s, opts)
	kinds := make([]string, 0, len(s.files))
	for k := range s.files {
		kinds = append(kinds, k)
	}
	sort.Strings(kinds)

	type row struct {
		d   diff
		cpu time.Duration
		n   int
	}
	add := func(r *row, d diff, cpu time.Duration) {
		r.d.max = max(r.d.max, d.max)
		r.d.levels = max(r.d.levels, d.levels)
		r.d.mean += d.mean // averaged below
		r.cpu += cpu
		r.n++
	}
	variants := []struct {
		name string
		opt  func(Options) Options
	}{
		{"libjpeg-turbo", func(o Options) Options { return o }},
		{"image/jpeg", func(o Options) Options { o.TurboJPEG = "none"; return o }},
		{"DCTScale 4", func(o Options) Options { o.DCTScale = 4; return o }},
		{"DCTScale 3", func(o Options) Options { o.DCTScale = 3; return o }},
		{"DCTScale 2", func(o Options) Options { o.DCTScale = 2; return o }},
		{"DCTScale 1.5", func(o Options) Options { o.DCTScale = 1.5; return o }},
		{"DCTScale 1", func(o Options) Options { o.DCTScale = 1; return o }},
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	var report strings.Builder
	fmt.Fprintf(&report, "\n| options | images | decoder | max abs diff | mean abs diff | max levels | CPU ms/img |\n|---|---|---|---|---|---|---|\n")
	for _, oname := range []string{"rgb", "grey"} {
		for _, kind := range kinds {
			for _, v := range variants {
				opt := v.opt(opts[oname])
				var r row
				for _, f := range s.files[kind] {
					want := readF32(t, refs[oname+"|"+f])
					data, err := os.ReadFile(f)
					if err != nil {
						t.Fatal(err)
					}
					p, err := New(opt)
					if err != nil {
						t.Fatal(err)
					}
					w, h, err := p.Config(data)
					if err != nil {
						t.Fatal(err)
					}
					got := make([]float32, p.Len(w, h))
					var res Result
					c0 := threadCPU()
					const reps = 5
					for range reps {
						res, err = p.Preprocess(data, got)
					}
					if err != nil && res.Decoder == DecoderGoJPEG && strings.Contains(f, "corrupt_") {
						continue // Go's decoder rejects what libjpeg and PIL recover from
					}
					if err != nil {
						t.Fatalf("%s: %v", f, err)
					}
					cpu := (threadCPU() - c0) / reps
					if len(got) != len(want) {
						t.Fatalf("%s %s: %d values, torchvision %d", oname, f, len(got), len(want))
					}
					d := compare(got, want, opt.Channels, opt.Std)
					add(&r, d, cpu)
					switch {
					case v.name == "libjpeg-turbo" && d.max != 0:
						t.Errorf("%s %s (%s): %s, want bit-identical", oname, f, res.Decoder, d)
					case v.name == "image/jpeg" && d.levels > goJPEGLevels+1e-3:
						t.Errorf("%s %s (%s): %s, want within %d levels", oname, f, res.Decoder, d, goJPEGLevels)
					}
				}
				if strings.HasPrefix(v.name, "DCT") && !strings.HasPrefix(kind, "large") {
					continue // DCT scaling needs images at least 2x larger than the resize
				}
				if v.name == "image/jpeg" && strings.HasSuffix(s.files[kind][0], ".png") {
					continue // PNG: the same decoder either way
				}
				if r.n == 0 {
					continue
				}
				fmt.Fprintf(&report, "| %s | %s (%d) | %s | %.3g | %.3g | %.3g | %.2f |\n", oname, kind, r.n, v.name, r.d.max, r.d.mean/float64(r.n), r.d.levels, float64(r.cpu.Microseconds())/1000/float64(r.n))
			}
		}
	}
	t.Log(report.String())
}
