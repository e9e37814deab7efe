package dataset_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/parquet-go/parquet-go"
	_ "gocloud.dev/blob/fileblob"

	"github.com/vogscore/vog/dataset"
	"github.com/vogscore/vog/engine"
	"github.com/vogscore/vog/internal/testjob"
	"github.com/vogscore/vog/job"
	"github.com/vogscore/vog/preprocess"
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
	r, err := dataset.NewReader(ctx, spec, l.Shape, "")
	if err != nil {
		t.Fatal(err)
	}
	x := make([]float32, 2*784)
	read(t, r, l.Rows[9998:], x)
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
		{"header claims too much", append(header(1000000, 28, 28), 1, 2, 3), lab, false, "header promises 784000000 bytes"},
		{"gzipped header claims too much", gz(append(header(10, 30000, 30000), 1, 2, 3)), lab, true, "images are 30000x30000"},
		{"header beyond any dataset", header(1<<30, 1<<20, 1<<20), lab, false, "beyond"},
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
				r, err = dataset.NewReader(t.Context(), spec, engine.Shape{C: 1, H: 3, W: 3}, "")
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

// header is an IDX header of unsigned bytes with the given dimensions.
func header(dims ...uint32) []byte {
	h := []byte{0, 0, 8, byte(len(dims))}
	for _, d := range dims {
		h = binary.BigEndian.AppendUint32(h, d)
	}
	return h
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
	r, err := dataset.NewReader(ctx, spec, l.Shape, "")
	if err != nil {
		t.Fatal(err)
	}
	x := make([]float32, 2*l.Shape.Len())
	read(t, r, l.Rows, x)
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
	gr, err := dataset.NewReader(ctx, grey, engine.Shape{C: 1, H: 4, W: 4}, "")
	if err != nil {
		t.Fatal(err)
	}
	g := make([]float32, 16)
	read(t, gr, l.Rows[1:], g)
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

// TestImageFolderErrors: each example that cannot be scored is reported by
// name and kind, beside the others of its batch, which are decoded: an image
// of another size, a corrupt one, a truncated JPEG, a PNG whose header
// claims 100000x100000 pixels (refused before anything is allocated), a
// file deleted after listing. A CMYK JPEG is an image like any other.
func TestImageFolderErrors(t *testing.T) {
	root := t.TempDir()
	var jb bytes.Buffer
	jpeg.Encode(&jb, image.NewGray(image.Rect(0, 0, 5, 5)), nil)
	writeFile(t, filepath.Join(root, "a", "1.png"), encodePNG(t, image.NewGray(image.Rect(0, 0, 5, 5))))
	writeFile(t, filepath.Join(root, "a", "2.png"), encodePNG(t, image.NewGray(image.Rect(0, 0, 6, 5))))
	writeFile(t, filepath.Join(root, "b", "3.jpg"), []byte("\xff\xd8\xff\xe0 this is not really a JPEG"))
	writeFile(t, filepath.Join(root, "b", "4.jpg"), jb.Bytes()[:jb.Len()/2])
	writeFile(t, filepath.Join(root, "b", "5.png"), BombPNG(100000, 100000))
	writeFile(t, filepath.Join(root, "c", "6.png"), encodePNG(t, image.NewGray(image.Rect(0, 0, 5, 5))))
	ctx := t.Context()
	spec := job.Dataset{Format: "imagefolder", URL: root, Preprocess: job.Preprocess{Channels: 1}}
	l, err := dataset.List(ctx, spec)
	if err != nil {
		t.Fatal(err)
	}
	os.Remove(filepath.Join(root, "c", "6.png"))
	r, err := dataset.NewReader(ctx, spec, l.Shape, "")
	if err != nil {
		t.Fatal(err)
	}
	x := make([]float32, len(l.Rows)*l.Shape.Len())
	for i := range x {
		x[i] = 1 // failed examples are zeroed
	}
	bad := readBad(t, r, l.Rows, x)
	want := []struct{ kind, text string }{
		{"", ""},
		{job.FailSize, "a/2.png: a 6x5 image"},
		{job.FailCorrupt, "b/3.jpg: corrupt"},
		{job.FailCorrupt, "b/4.jpg: corrupt"},
		{job.FailTooLarge, "b/5.png"},
		{job.FailUnreadable, "c/6.png: no such file"},
	}
	for i, w := range want {
		if w.kind == "" {
			if bad[i] != nil {
				t.Errorf("%s: %v", l.Rows[i].ExampleID, bad[i])
			}
			continue
		}
		if !isFailure(bad[i], w.kind) || !strings.Contains(bad[i].Error(), w.text) || !strings.Contains(bad[i].Error(), "example "+strconv.Itoa(i)) {
			t.Errorf("%s: got %v, want a %q failure saying %q", l.Rows[i].ExampleID, bad[i], w.kind, w.text)
		}
		for _, v := range x[i*l.Shape.Len() : (i+1)*l.Shape.Len()] {
			if v != 0 {
				t.Fatalf("%s: failed example not zeroed", l.Rows[i].ExampleID)
			}
		}
	}
	if _, err := dataset.List(ctx, job.Dataset{Format: "imagefolder", URL: t.TempDir()}); !errors.Is(err, job.ErrBadData) {
		t.Fatalf("empty folder: got %v", err)
	}

	// A CMYK JPEG is decoded (PIL's conversion), not a failure.
	cmyk := t.TempDir()
	data, err := os.ReadFile("../preprocess/testdata/fixtures/cmyk_129x97.jpg")
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(cmyk, "a", "cmyk.jpg"), data)
	cspec := job.Dataset{Format: "imagefolder", URL: cmyk, Preprocess: job.Preprocess{Resize: 8, Crop: 8}}
	cl, err := dataset.List(ctx, cspec)
	if err != nil {
		t.Fatal(err)
	}
	cr, err := dataset.NewReader(ctx, cspec, cl.Shape, "")
	if err != nil {
		t.Fatal(err)
	}
	cx := make([]float32, cl.Shape.Len())
	read(t, cr, cl.Rows, cx)
	if slices.Max(cx) == 0 {
		t.Fatal("CMYK image decoded as black")
	}
}

// TestBombNeverAllocated: listing a dataset whose only image claims
// 100000x100000 pixels fails cleanly, naming the image, within the memory
// of a small process.
func TestBombNeverAllocated(t *testing.T) {
	root := t.TempDir()
	writeFile(t, filepath.Join(root, "a", "bomb.png"), BombPNG(100000, 100000))
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	_, err := dataset.List(t.Context(), job.Dataset{Format: "imagefolder", URL: root})
	runtime.ReadMemStats(&after)
	if !errors.Is(err, job.ErrBadData) || !strings.Contains(err.Error(), "bomb.png") {
		t.Fatalf("got %v", err)
	}
	if grew := after.TotalAlloc - before.TotalAlloc; grew > 64<<20 {
		t.Fatalf("listing allocated %d MB", grew>>20)
	}
}

// read decodes rows into x, failing the test on any error.
func read(t *testing.T, r dataset.Reader, rows []job.IndexRow, x []float32) {
	t.Helper()
	for i, err := range readBad(t, r, rows, x) {
		if err != nil {
			t.Fatalf("row %d: %v", i, err)
		}
	}
}

// readBad decodes rows into x and returns each example's failure.
func readBad(t *testing.T, r dataset.Reader, rows []job.IndexRow, x []float32) []error {
	t.Helper()
	bad := make([]error, len(rows))
	if err := r.Read(t.Context(), rows, x, bad); err != nil {
		t.Fatal(err)
	}
	return bad
}

func isFailure(err error, kind string) bool {
	var ex *job.ExampleError
	return errors.As(err, &ex) && ex.Kind == kind && errors.Is(err, job.ErrBadData)
}

// BombPNG is a valid PNG header claiming w x h pixels, with no pixels.
func BombPNG(w, h uint32) []byte {
	chunk := func(typ string, data []byte) []byte {
		b := binary.BigEndian.AppendUint32(nil, uint32(len(data)))
		b = append(b, typ...)
		b = append(b, data...)
		return binary.BigEndian.AppendUint32(b, crc32.ChecksumIEEE(append([]byte(typ), data...)))
	}
	ihdr := binary.BigEndian.AppendUint32(nil, w)
	ihdr = binary.BigEndian.AppendUint32(ihdr, h)
	ihdr = append(ihdr, 8, 2, 0, 0, 0) // 8-bit RGB
	out := []byte("\x89PNG\r\n\x1a\n")
	out = append(out, chunk("IHDR", ihdr)...)
	return append(out, chunk("IEND", nil)...)
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
		{job.Dataset{Format: "imagefolder", URL: "x", Preprocess: job.Preprocess{DCTScale: 2}}, "--dct-scale 2 needs --resize"},
		{job.Dataset{Format: "imagefolder", URL: "x", Preprocess: job.Preprocess{Resize: 64, DCTScale: -1}}, "--dct-scale -1"},
		{job.Dataset{Format: "imagefolder", URL: "x", Preprocess: job.Preprocess{Resize: 64, DCTScale: math.NaN()}}, "--dct-scale NaN"},
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
	r, err := dataset.NewReader(ctx, spec, l.Shape, "")
	if err != nil {
		t.Fatal(err)
	}
	x := make([]float32, len(l.Rows)*6)
	read(t, r, l.Rows, x)
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
	bad := readBad(t, r, l.Rows[4:], x[:6])
	if !isFailure(bad[0], job.FailCorrupt) || !strings.Contains(bad[0].Error(), "shard-11.tar#000009") {
		t.Fatalf("corrupt member: %v", bad[0])
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
	r, err := dataset.NewReader(ctx, spec, l.Shape, "")
	if err != nil {
		t.Fatal(err)
	}
	x := make([]float32, 4)
	for i, base := range map[int]float32{0: 10, 1: 20, 3: 50} {
		read(t, r, l.Rows[i:i+1], x)
		if x[0] != base/255 || x[3] != (base+3)/255 {
			t.Fatalf("row %d: %v", i, x)
		}
	}
	// The row without image bytes is reported by file, row and id.
	bad := readBad(t, r, l.Rows[2:3], x)
	if !isFailure(bad[0], job.FailCorrupt) || !strings.Contains(bad[0].Error(), "train-00000-of-00002.parquet#row2") {
		t.Fatalf("empty image: %v", bad[0])
	}
}

// TestDCTScale: --dct-scale lets libjpeg-turbo decode a large JPEG at a
// fraction of its size before the resize: the tensor stays close to the
// full-size decode's (a smooth image: within 3 of 255 levels) but is not
// the same, so it is part of the job. Go's decoder has no DCT scaling and
// gives the full-size tensor.
func TestDCTScale(t *testing.T) {
	img := image.NewRGBA(image.Rect(0, 0, 1024, 768))
	for y := range 768 {
		for x := range 1024 {
			img.SetRGBA(x, y, color.RGBA{uint8(x / 4), uint8(y / 3), uint8((x + y) / 8), 255})
		}
	}
	var b bytes.Buffer
	if err := jpeg.Encode(&b, img, &jpeg.Options{Quality: 90}); err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	writeFile(t, filepath.Join(root, "a", "big.jpg"), b.Bytes())
	tensor := func(dct float64) ([]float32, string) {
		spec := job.Dataset{Format: "imagefolder", URL: root, Preprocess: job.Preprocess{Resize: 64, Crop: 64, DCTScale: dct}}
		if err := spec.Validate(); err != nil {
			t.Fatal(err)
		}
		l, err := dataset.List(t.Context(), spec)
		if err != nil {
			t.Fatal(err)
		}
		r, err := dataset.NewReader(t.Context(), spec, l.Shape, l.JPEGDecoder)
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		x := make([]float32, l.Shape.Len())
		read(t, r, l.Rows, x)
		return x, l.JPEGDecoder
	}
	full, decoder := tensor(0)
	scaled, _ := tensor(2) // 1/4 size: 256x192, whose shorter side is at least 2 x 64
	var maxDiff float64
	for i := range full {
		maxDiff = max(maxDiff, math.Abs(float64(full[i]-scaled[i])))
	}
	t.Logf("%s: --dct-scale 2 against full size: max difference %.4f (%.1f of 255 levels)", decoder, maxDiff, maxDiff*255)
	if maxDiff > 3.0/255 {
		t.Fatalf("--dct-scale 2 moved a pixel by %.4f", maxDiff)
	}
	if decoder == preprocess.DecoderTurboJPEG && maxDiff == 0 {
		t.Fatal("--dct-scale 2 with libjpeg-turbo gave the full-size tensor: was the image scaled?")
	}
	if decoder == preprocess.DecoderGoJPEG && maxDiff != 0 {
		t.Fatal("Go's decoder has no DCT scaling, but --dct-scale changed its tensor")
	}
}
