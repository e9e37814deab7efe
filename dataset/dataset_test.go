package dataset_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/parquet-go/parquet-go"
	_ "gocloud.dev/blob/fileblob"

	"github.com/vogscore/vog/dataset"
	"github.com/vogscore/vog/engine"
	"github.com/vogscore/vog/internal/testjob"
	"github.com/vogscore/vog/job"
)

const fashion = "/usr/share/datasets/fashion-mnist"

// TestFashionMNIST reads the real Fashion-MNIST test set (Debian package
// dataset-fashion-mnist).
func TestFashionMNIST(t *testing.T) {
	if _, err := os.Stat(fashion); err != nil {
		if os.Getenv("VOG_REQUIRE_TORCH") != "" {
			t.Fatal(err)
		}
		t.Skip("dataset-fashion-mnist is not installed")
	}
	ctx := t.Context()
	spec := job.Dataset{Format: "idx", URL: "file://" + fashion + "/t10k"}
	l, err := dataset.List(ctx, spec)
	if err != nil {
		t.Fatal(err)
	}
	if len(l.Rows) != 10000 || l.Shape != (engine.Shape{C: 1, H: 28, W: 28}) {
		t.Fatalf("%d rows of shape %v", len(l.Rows), l.Shape)
	}
	counts := map[int32]int{}
	for _, r := range l.Rows {
		counts[r.Label]++
	}
	if len(counts) != 10 || counts[0] != 1000 {
		t.Fatalf("label counts %v, want 1000 of each of 10 classes", counts)
	}
	r, err := dataset.NewReader(ctx, spec, l.Shape)
	if err != nil {
		t.Fatal(err)
	}
	x := make([]float32, 2*784)
	if err := r.Read(ctx, l.Rows[9998:], x); err != nil {
		t.Fatal(err)
	}
	var lo, hi float32 = 1, 0
	for _, v := range x {
		lo, hi = min(lo, v), max(hi, v)
	}
	if lo != 0 || hi != 1 {
		t.Fatalf("pixels span [%g, %g], want [0, 1]", lo, hi)
	}
}

func writeFile(t testing.TB, path string, data []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

func gz(data []byte) []byte {
	var b bytes.Buffer
	w := gzip.NewWriter(&b)
	w.Write(data)
	w.Close()
	return b.Bytes()
}

// TestIDXErrors checks that every kind of broken IDX input is reported with
// the culprit's name, as bad data.
func TestIDXErrors(t *testing.T) {
	images, labels := testjob.Dataset(10, 3, 3, 2)
	dir := t.TempDir()
	good, err := testjob.WriteIDX(dir, "good", 3, 3, images, labels)
	if err != nil {
		t.Fatal(err)
	}
	img, _ := os.ReadFile(good + "-images-idx3-ubyte")
	lab, _ := os.ReadFile(good + "-labels-idx1-ubyte")
	seven, err := testjob.WriteIDX(dir, "seven", 3, 3, images[:7], labels[:7])
	if err != nil {
		t.Fatal(err)
	}
	lab7, _ := os.ReadFile(seven + "-labels-idx1-ubyte")

	tests := []struct {
		name       string
		images     []byte
		labels     []byte
		gzipImages bool
		want       string
	}{
		{"truncated images", img[:len(img)-5], lab, false, "truncated"},
		{"truncated gzip", gz(img)[:40], lab, true, "images-idx3-ubyte.gz"},
		{"bad magic", append([]byte{0, 0, 9, 3}, img[4:]...), lab, false, "not an IDX file"},
		{"fewer labels", img, lab7, false, "holds 7 labels"},
		{"trailing bytes", append(img, 1, 2), lab, false, "bytes after the data"},
		{"missing labels", img, nil, false, "labels-idx1-ubyte"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := t.TempDir()
			prefix := filepath.Join(d, "x")
			if tt.gzipImages {
				writeFile(t, prefix+"-images-idx3-ubyte.gz", tt.images)
			} else {
				writeFile(t, prefix+"-images-idx3-ubyte", tt.images)
			}
			if tt.labels != nil {
				writeFile(t, prefix+"-labels-idx1-ubyte", tt.labels)
			}
			spec := job.Dataset{Format: "idx", URL: prefix}
			_, err := dataset.List(t.Context(), spec)
			if err == nil {
				var r dataset.Reader
				r, err = dataset.NewReader(t.Context(), spec, engine.Shape{C: 1, H: 3, W: 3})
				if r != nil {
					r.Close()
				}
			}
			if !errors.Is(err, job.ErrBadData) || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), prefix) {
				t.Fatalf("got %v, want bad data naming %s and %q", err, prefix, tt.want)
			}
		})
	}
}

func encodePNG(t *testing.T, img image.Image) []byte {
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// TestImageFolder lists classes in sorted order, decodes PNG and JPEG, and
// preprocesses: resize, centre crop, scale, normalise, grey or RGB.
func TestImageFolder(t *testing.T) {
	root := t.TempDir()
	// An 8x6 RGB PNG whose pixel (x, y) is (10x, 20y, 30).
	rgb := image.NewNRGBA(image.Rect(0, 0, 8, 6))
	for y := range 6 {
		for x := range 8 {
			rgb.Set(x, y, color.NRGBA{uint8(10 * x), uint8(20 * y), 30, 255})
		}
	}
	writeFile(t, filepath.Join(root, "zebra", "a.png"), encodePNG(t, rgb))
	var jb bytes.Buffer
	if err := jpeg.Encode(&jb, rgb, &jpeg.Options{Quality: 100}); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(root, "ant", "b.JPG"), jb.Bytes())
	writeFile(t, filepath.Join(root, "ant", "notes.txt"), []byte("not an image"))

	ctx := t.Context()
	spec := job.Dataset{Format: "imagefolder", URL: root, Preprocess: job.Preprocess{Crop: 4}}
	l, err := dataset.List(ctx, spec)
	if err != nil {
		t.Fatal(err)
	}
	want := []job.IndexRow{{Index: 0, ExampleID: "ant/b.JPG", Label: 0}, {Index: 1, ExampleID: "zebra/a.png", Label: 1}}
	if len(l.Rows) != 2 || l.Rows[0] != want[0] || l.Rows[1] != want[1] || strings.Join(l.Classes, ",") != "ant,zebra" {
		t.Fatalf("listing %+v %v", l.Rows, l.Classes)
	}
	if l.Shape != (engine.Shape{C: 3, H: 4, W: 4}) {
		t.Fatalf("shape %v", l.Shape)
	}
	r, err := dataset.NewReader(ctx, spec, l.Shape)
	if err != nil {
		t.Fatal(err)
	}
	x := make([]float32, 2*l.Shape.Len())
	if err := r.Read(ctx, l.Rows, x); err != nil {
		t.Fatal(err)
	}
	// The PNG is exact: the centre 4x4 crop starts at (2, 1).
	png := x[l.Shape.Len():]
	for y := range 4 {
		for xx := range 4 {
			i := y*4 + xx
			wantR, wantG, wantB := float32(10*(xx+2))/255, float32(20*(y+1))/255, float32(30)/255
			if png[i] != wantR || png[16+i] != wantG || png[32+i] != wantB {
				t.Fatalf("pixel (%d,%d) = %g %g %g, want %g %g %g", xx, y, png[i], png[16+i], png[32+i], wantR, wantG, wantB)
			}
		}
	}
	// The JPEG is lossy: close to the PNG.
	for i, v := range x[:l.Shape.Len()] {
		if math.Abs(float64(v-png[i])) > 0.05 {
			t.Fatalf("JPEG value %d = %g, PNG %g", i, v, png[i])
		}
	}

	// Grey, normalised: luma of (10x, 20y, 30), then (v - 0.5) / 0.25.
	grey := job.Dataset{Format: "imagefolder", URL: root, Preprocess: job.Preprocess{Channels: 1, Crop: 4, Mean: []float32{0.5}, Std: []float32{0.25}}}
	gr, err := dataset.NewReader(ctx, grey, engine.Shape{C: 1, H: 4, W: 4})
	if err != nil {
		t.Fatal(err)
	}
	g := make([]float32, 16)
	if err := gr.Read(ctx, l.Rows[1:], g); err != nil {
		t.Fatal(err)
	}
	luma := (0.299*20 + 0.587*20 + 0.114*30) / 255 // pixel (0,0) of the crop: x=2, y=1
	if math.Abs(float64(g[0])-(luma-0.5)/0.25) > 0.02 {
		t.Fatalf("grey pixel %g, want about %g", g[0], (luma-0.5)/0.25)
	}

	// Resize the shorter side to 3: 8x6 becomes 4x3.
	rs := job.Dataset{Format: "imagefolder", URL: root, Preprocess: job.Preprocess{Resize: 3}}
	rl, err := dataset.List(ctx, rs)
	if err != nil {
		t.Fatal(err)
	}
	if rl.Shape != (engine.Shape{C: 3, H: 3, W: 4}) {
		t.Fatalf("resized shape %v, want 3x3x4", rl.Shape)
	}
}

// TestImageFolderErrors: a corrupt image and an image of another size are
// reported by name, not skipped.
func TestImageFolderErrors(t *testing.T) {
	root := t.TempDir()
	writeFile(t, filepath.Join(root, "a", "1.png"), encodePNG(t, image.NewGray(image.Rect(0, 0, 5, 5))))
	writeFile(t, filepath.Join(root, "a", "2.png"), encodePNG(t, image.NewGray(image.Rect(0, 0, 6, 5))))
	writeFile(t, filepath.Join(root, "b", "3.jpg"), []byte("\xff\xd8\xff\xe0 this is not really a JPEG"))
	ctx := t.Context()
	spec := job.Dataset{Format: "imagefolder", URL: root}
	l, err := dataset.List(ctx, spec)
	if err != nil {
		t.Fatal(err)
	}
	r, err := dataset.NewReader(ctx, spec, l.Shape)
	if err != nil {
		t.Fatal(err)
	}
	x := make([]float32, l.Shape.Len())
	if err := r.Read(ctx, l.Rows[:1], x); err != nil {
		t.Fatal(err)
	}
	err = r.Read(ctx, l.Rows[1:2], x)
	if !errors.Is(err, job.ErrBadData) || !strings.Contains(err.Error(), "a/2.png") || !strings.Contains(err.Error(), "6x5") {
		t.Fatalf("wrong size: got %v", err)
	}
	err = r.Read(ctx, l.Rows[2:3], x)
	if !errors.Is(err, job.ErrBadData) || !strings.Contains(err.Error(), "b/3.jpg") || !strings.Contains(err.Error(), "corrupt") {
		t.Fatalf("corrupt image: got %v", err)
	}
	if _, err := dataset.List(ctx, job.Dataset{Format: "imagefolder", URL: t.TempDir()}); !errors.Is(err, job.ErrBadData) {
		t.Fatalf("empty folder: got %v", err)
	}
}

func TestSpecValidate(t *testing.T) {
	tests := []struct {
		spec job.Dataset
		want string
	}{
		{job.Dataset{Format: "csv", URL: "x"}, "--format"},
		{job.Dataset{Format: "idx"}, "--dataset"},
		{job.Dataset{Format: "idx", URL: "x", Preprocess: job.Preprocess{Channels: 2}}, "--channels"},
		{job.Dataset{Format: "imagefolder", URL: "x", Preprocess: job.Preprocess{Mean: []float32{1}, Std: []float32{1}}}, "--mean"},
		{job.Dataset{Format: "idx", URL: "x", Preprocess: job.Preprocess{Mean: []float32{1}}}, "--std"},
		{job.Dataset{Format: "idx", URL: "x", Preprocess: job.Preprocess{Mean: []float32{1}, Std: []float32{0}}}, "--std"},
	}
	for _, tt := range tests {
		if err := tt.spec.Validate(); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%+v: got %v, want an error naming %s", tt.spec, err, tt.want)
		}
	}
}

type tarMember struct {
	name string
	data []byte
}

func writeTar(t *testing.T, path string, members []tarMember) {
	t.Helper()
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	for _, m := range members {
		if err := tw.WriteHeader(&tar.Header{Name: m.name, Mode: 0o644, Size: int64(len(m.data)), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		tw.Write(m.data)
	}
	tw.Close()
	writeFile(t, path, b.Bytes())
}

// TestWebDataset indexes tar shards in natural order, pairs images with
// their .cls labels by key, and reads images by range.
func TestWebDataset(t *testing.T) {
	root := t.TempDir()
	grey := func(v uint8) []byte {
		img := image.NewGray(image.Rect(0, 0, 3, 2))
		for i := range img.Pix {
			img.Pix[i] = v + uint8(i)
		}
		return encodePNG(t, img)
	}
	// A long member ahead of the images makes the offsets non-trivial.
	writeTar(t, filepath.Join(root, "shard-10.tar"), []tarMember{
		{"000007.png", grey(70)}, {"000007.cls", []byte("2\n")},
	})
	writeTar(t, filepath.Join(root, "shard-2.tar"), []tarMember{
		{"000001.json", bytes.Repeat([]byte("x"), 3000)},
		{"000001.png", grey(10)}, {"000001.cls", []byte("1")},
		{"sub/000002.cls", []byte("0")}, {"sub/000002.png", grey(20)},
		{"000003.png", grey(30)},
	})
	ctx := t.Context()
	spec := job.Dataset{Format: "webdataset", URL: root, Preprocess: job.Preprocess{Channels: 1}}
	l, err := dataset.List(ctx, spec)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	var labels []int32
	for _, r := range l.Rows {
		ids = append(ids, r.ExampleID)
		labels = append(labels, r.Label)
	}
	wantIDs := "shard-2.tar/000001 shard-2.tar/sub/000002 shard-2.tar/000003 shard-10.tar/000007"
	if strings.Join(ids, " ") != wantIDs || fmt.Sprint(labels) != "[1 0 -1 2]" || l.Shape != (engine.Shape{C: 1, H: 2, W: 3}) {
		t.Fatalf("ids %v labels %v shape %v", ids, labels, l.Shape)
	}
	r, err := dataset.NewReader(ctx, spec, l.Shape)
	if err != nil {
		t.Fatal(err)
	}
	x := make([]float32, len(l.Rows)*6)
	if err := r.Read(ctx, l.Rows, x); err != nil {
		t.Fatal(err)
	}
	for i, base := range []float32{10, 20, 30, 70} {
		for p := range 6 {
			if want := (base + float32(p)) / 255; x[i*6+p] != want {
				t.Fatalf("example %d pixel %d = %g, want %g", i, p, x[i*6+p], want)
			}
		}
	}

	// A corrupt image inside a tar is reported with the tar and member.
	writeTar(t, filepath.Join(root, "shard-11.tar"), []tarMember{{"000009.png", []byte("\x89PNG garbage")}})
	l, err = dataset.List(ctx, spec)
	if err != nil {
		t.Fatal(err)
	}
	err = r.Read(ctx, l.Rows[4:], x[:6])
	if !errors.Is(err, job.ErrBadData) || !strings.Contains(err.Error(), "shard-11.tar#000009") {
		t.Fatalf("corrupt member: %v", err)
	}
	writeFile(t, filepath.Join(root, "shard-12.tar"), []byte("not a tar at all, but long enough to hold a header block?"))
	if _, err := dataset.List(ctx, spec); !errors.Is(err, job.ErrBadData) || !strings.Contains(err.Error(), "shard-12.tar") {
		t.Fatalf("corrupt tar: %v", err)
	}
}

// TestParquetDataset reads images and labels from Parquet files in the
// Hugging Face layout, written here by parquet-go with that schema.
func TestParquetDataset(t *testing.T) {
	type hfRow struct {
		Image struct {
			Bytes []byte `parquet:"bytes,optional"`
			Path  string `parquet:"path,optional"`
		} `parquet:"image"`
		Label int64 `parquet:"label"`
	}
	root := t.TempDir()
	write := func(name string, rows []hfRow) {
		var b bytes.Buffer
		if err := parquet.Write(&b, rows); err != nil {
			t.Fatal(err)
		}
		writeFile(t, filepath.Join(root, name), b.Bytes())
	}
	row := func(v uint8, path string, label int64) hfRow {
		img := image.NewGray(image.Rect(0, 0, 2, 2))
		for i := range img.Pix {
			img.Pix[i] = v + uint8(i)
		}
		var r hfRow
		r.Image.Bytes, r.Image.Path, r.Label = encodePNG(t, img), path, label
		return r
	}
	write("train-00001-of-00002.parquet", []hfRow{row(50, "", 3)})
	write("train-00000-of-00002.parquet", []hfRow{row(10, "n01/a.png", 0), row(20, "n02/b.png", 1), {Label: 2}})
	ctx := t.Context()
	spec := job.Dataset{Format: "parquet", URL: root, Preprocess: job.Preprocess{Channels: 1}}
	l, err := dataset.List(ctx, spec)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, r := range l.Rows {
		ids = append(ids, fmt.Sprintf("%s:%d", r.ExampleID, r.Label))
	}
	if got := strings.Join(ids, " "); got != "n01/a.png:0 n02/b.png:1 train-00000-of-00002.parquet/2:2 train-00001-of-00002.parquet/0:3" {
		t.Fatalf("listing %s", got)
	}
	r, err := dataset.NewReader(ctx, spec, l.Shape)
	if err != nil {
		t.Fatal(err)
	}
	x := make([]float32, 4)
	for i, base := range map[int]float32{0: 10, 1: 20, 3: 50} {
		if err := r.Read(ctx, l.Rows[i:i+1], x); err != nil {
			t.Fatal(err)
		}
		if x[0] != base/255 || x[3] != (base+3)/255 {
			t.Fatalf("row %d: %v", i, x)
		}
	}
	// The row without image bytes is reported by file, row and id.
	err = r.Read(ctx, l.Rows[2:3], x)
	if !errors.Is(err, job.ErrBadData) || !strings.Contains(err.Error(), "train-00000-of-00002.parquet#row2") {
		t.Fatalf("empty image: %v", err)
	}
}
