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
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/vogscore/vog/dataset"
	"github.com/vogscore/vog/engine"
	"github.com/vogscore/vog/internal/testjob"
	"github.com/vogscore/vog/job"
)

// The fuzz tests feed each parser of dataset files arbitrary bytes, as the
// file it reads, and check what it promises: it lists and reads the data
// consistently, or fails with an error marked job.ErrBadData (an example's
// *job.ExampleError of a known kind), within memory proportional to the
// input. Their seeds are below and under testdata/fuzz; scripts/test.sh
// runs each for a few seconds.

// allocLimit bounds what parsing n bytes of input may allocate: buffers of
// fixed size (a reader's 1 MiB, an image's pixels under the fuzz tests'
// --max-pixels) plus a multiple of the input; inflated is the size of a
// gzipped input's content, which the reader holds as it comes.
func allocLimit(n, inflated int) uint64 { return 64<<20 + 100*uint64(n) + 8*uint64(inflated) }

// bounded runs f and fails t if it allocated more than allocLimit.
func bounded(t *testing.T, n, inflated int, f func()) {
	t.Helper()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	if got := after.TotalAlloc - before.TotalAlloc; got > allocLimit(n, inflated) {
		t.Fatalf("%d bytes of input (%d inflated) allocated %d MiB", n, inflated, got>>20)
	}
}

// inflatedSize returns the size of data's gzip content, where it is
// gzipped, up to 1 GiB.
func inflatedSize(data []byte) int {
	zr, err := gzip.NewReader(bytes.NewReader(data))
	if err != nil {
		return 0
	}
	n, _ := io.Copy(io.Discard, io.LimitReader(zr, 1<<30))
	return int(n)
}

// mustBadData fails t unless err is marked job.ErrBadData.
func mustBadData(t *testing.T, what string, err error) {
	t.Helper()
	if !errors.Is(err, job.ErrBadData) {
		t.Fatalf("%s: an error not marked bad data: %v", what, err)
	}
}

// FuzzIDX fuzzes the images and the labels file of an IDX dataset (either
// may be gzipped: the reader goes by the magic, not the name). Listing
// gives one row per label, numbered, of the images' shape; a reader of that
// shape reads every row into [0, 1].
func FuzzIDX(f *testing.F) {
	images, labels := testjob.Dataset(3, 2, 3, 2)
	dir := f.TempDir()
	prefix, err := testjob.WriteIDX(dir, "seed", 2, 3, images, labels)
	if err != nil {
		f.Fatal(err)
	}
	img, _ := os.ReadFile(prefix + "-images-idx3-ubyte")
	lab, _ := os.ReadFile(prefix + "-labels-idx1-ubyte")
	f.Add(img, lab)
	f.Add(gz(img), gz(lab))
	f.Add(gz(img), lab)
	f.Add(header(0, 1<<16, 1<<16), header(0))
	f.Add(header(3, 0, 5), lab)
	f.Add(append(header(1<<30, 1<<20, 1<<20), 1, 2, 3), lab)
	f.Add(gz(append(header(3, 30000, 30000), 1, 2, 3)), lab)
	f.Add(img, gz(append(header(1<<31), 1, 2)))
	p := filepath.Join(f.TempDir(), "x") // one per fuzzing process, rewritten by each input
	f.Fuzz(func(t *testing.T, img, lab []byte) {
		writeFile(t, p+"-images-idx3-ubyte", img)
		writeFile(t, p+"-labels-idx1-ubyte", lab)
		spec := job.Dataset{Format: "idx", URL: p}
		ctx := t.Context()
		imgInflated := inflatedSize(img)
		inflated := imgInflated + inflatedSize(lab)
		var (
			l   *dataset.Listing
			r   dataset.Reader
			err error
		)
		bounded(t, len(img)+len(lab), inflated, func() {
			if l, err = dataset.List(ctx, spec); err == nil {
				r, err = dataset.NewReader(ctx, spec, l.Shape, "")
			}
		})
		if err != nil {
			mustBadData(t, "idx", err)
			return
		}
		defer r.Close()
		if len(l.Rows) == 0 || l.Shape.C != 1 || l.Shape.H < 1 || l.Shape.W < 1 {
			t.Fatalf("listed %d rows of shape %v", len(l.Rows), l.Shape)
		}
		for i, row := range l.Rows {
			if row.Index != int64(i) || row.ExampleID != strconv.Itoa(i) || row.Label < 0 || row.Label > 255 || row.Source != "" {
				t.Fatalf("row %d: %+v", i, row)
			}
		}
		// The reader holds the images: one of H x W bytes per row.
		if data := max(len(img), imgInflated); len(l.Rows)*l.Shape.Pixels() > data {
			t.Fatalf("%d rows of %v from %d bytes of images", len(l.Rows), l.Shape, data)
		}
		x := make([]float32, len(l.Rows)*l.Shape.Len())
		bad := make([]error, len(l.Rows))
		if err := r.Read(ctx, l.Rows, x, bad); err != nil {
			t.Fatalf("reading the listed rows: %v", err)
		}
		for i, err := range bad {
			if err != nil {
				t.Fatalf("row %d: %v", i, err)
			}
		}
		for _, v := range x {
			if !(v >= 0 && v <= 1) {
				t.Fatalf("pixel %g", v)
			}
		}
		// Where the files are not gzipped, labels and pixels are their
		// bytes after the headers (8 and 16 bytes).
		if imgInflated == 0 {
			for i, v := range x {
				if want := float32(img[16+i]) / 255; v != want {
					t.Fatalf("pixel %d = %g, the file says %g", i, v, want)
				}
			}
		}
		if inflatedSize(lab) == 0 {
			if len(lab) != 8+len(l.Rows) {
				t.Fatalf("%d rows from a labels file of %d bytes", len(l.Rows), len(lab))
			}
			for i, row := range l.Rows {
				if row.Label != int32(lab[8+i]) {
					t.Fatalf("row %d: label %d, the file says %d", i, row.Label, lab[8+i])
				}
			}
		}
	})
}

// fuzzMaxPixels is the fuzz tests' --max-pixels: small, so that the
// fuzzer reaches the cap and a decoded image stays small.
const fuzzMaxPixels = 1 << 16

// imageCase is preprocessing the image fuzz tests read with, the kinds of
// failure an image that the listing accepted may have (its file is there,
// so never job.FailUnreadable), and the range of the values it decodes to.
type imageCase struct {
	pre    job.Preprocess
	kinds  []string
	lo, hi float32
}

var imageCases = []imageCase{
	// The image's own size, which the listing reads from its header (the
	// first image's): reading it again, only the decoder can fail.
	{job.Preprocess{MaxPixels: fuzzMaxPixels}, []string{job.FailCorrupt}, 0, 1},
	// A fixed resize and crop: the listing reads no image, and the resized
	// image may be beyond the cap.
	{job.Preprocess{Channels: 1, Resize: 8, Crop: 6, Mean: []float32{0.5}, Std: []float32{0.25}, MaxPixels: fuzzMaxPixels},
		[]string{job.FailCorrupt, job.FailTooLarge}, -2, 2},
}

// checkRead reads rows with r and checks each example: decoded into values
// in [c.lo, c.hi], or failed with a *job.ExampleError of one of c.kinds.
func checkRead(t *testing.T, r dataset.Reader, rows []job.IndexRow, shape engine.Shape, c imageCase) {
	t.Helper()
	x := make([]float32, len(rows)*shape.Len())
	bad := make([]error, len(rows))
	if err := r.Read(t.Context(), rows, x, bad); err != nil {
		t.Fatalf("an error about more than one example: %v", err)
	}
	for i, err := range bad {
		var ex *job.ExampleError
		switch {
		case err == nil:
			for _, v := range x[i*shape.Len() : (i+1)*shape.Len()] {
				if !(v >= c.lo && v <= c.hi) {
					t.Fatalf("row %d: value %g outside [%g, %g]", i, v, c.lo, c.hi)
				}
			}
		case !errors.As(err, &ex) || !slices.Contains(c.kinds, ex.Kind) || !errors.Is(err, job.ErrBadData):
			t.Fatalf("row %d: not an example failure of kind %q: %v", i, c.kinds, err)
		}
	}
}

// FuzzImageHeader fuzzes the one image of an imagefolder dataset: the
// guard that reads its size from its header before anything is decoded,
// then the decoder. Listing learns a positive shape or fails as bad data;
// reading gives the image or its failure, of a known kind, never an error
// about the batch; memory stays bounded whatever size the header claims.
func FuzzImageHeader(f *testing.F) {
	rgb := image.NewNRGBA(image.Rect(0, 0, 5, 4))
	for i := range rgb.Pix {
		rgb.Pix[i] = uint8(i * 7)
	}
	var pb, jb bytes.Buffer
	png.Encode(&pb, rgb)
	jpeg.Encode(&jb, rgb, &jpeg.Options{Quality: 90})
	f.Add(pb.Bytes())
	f.Add(jb.Bytes())
	grey := image.NewGray(image.Rect(0, 0, 3, 7))
	grey.Set(1, 1, color.Gray{200})
	pb.Reset()
	png.Encode(&pb, grey)
	f.Add(pb.Bytes())
	f.Add(BombPNG(100000, 100000))
	f.Add(BombPNG(300, 300))
	f.Add(BombPNG(0, 5))
	f.Add([]byte("\xff\xd8\xff\xe0 not really a JPEG"))
	f.Add(jb.Bytes()[:jb.Len()/2])
	root := f.TempDir()
	f.Fuzz(func(t *testing.T, data []byte) {
		writeFile(t, filepath.Join(root, "a", "img.png"), data)
		ctx := t.Context()
		for _, c := range imageCases {
			spec := job.Dataset{Format: "imagefolder", URL: root, Preprocess: c.pre}
			var (
				l   *dataset.Listing
				r   dataset.Reader
				err error
			)
			bounded(t, len(data), 0, func() {
				if l, err = dataset.List(ctx, spec); err == nil {
					r, err = dataset.NewReader(ctx, spec, l.Shape, l.JPEGDecoder)
				}
			})
			if err != nil {
				mustBadData(t, "listing", err)
				continue
			}
			if len(l.Rows) != 1 || l.Rows[0] != (job.IndexRow{ExampleID: "a/img.png"}) || len(l.Classes) != 1 || l.Classes[0] != "a" {
				t.Fatalf("listing %+v %v", l.Rows, l.Classes)
			}
			if l.Shape.H < 1 || l.Shape.W < 1 || l.Shape.Pixels() > fuzzMaxPixels {
				t.Fatalf("listed with shape %v", l.Shape)
			}
			bounded(t, len(data), 0, func() { checkRead(t, r, l.Rows, l.Shape, c) })
			r.Close()
		}
	})
}

// tarOf returns a tar of the members.
func tarOf(members ...tarMember) []byte {
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	for _, m := range members {
		tw.WriteHeader(&tar.Header{Name: m.name, Mode: 0o644, Size: int64(len(m.data)), Typeflag: tar.TypeReg})
		tw.Write(m.data)
	}
	tw.Close()
	return b.Bytes()
}

// FuzzWebDataset fuzzes the one tar shard of a WebDataset dataset. Indexing
// gives rows numbered in order, with distinct ids under the shard, each
// locating a range within the file; reading them gives images or example
// failures (the tar is there, so none reads as missing); or it fails as bad
// data. Only headers and labels are read, so memory stays bounded.
func FuzzWebDataset(f *testing.F) {
	grey := image.NewGray(image.Rect(0, 0, 3, 2))
	for i := range grey.Pix {
		grey.Pix[i] = uint8(40 * i)
	}
	var pb bytes.Buffer
	png.Encode(&pb, grey)
	f.Add(tarOf(tarMember{"000001.png", pb.Bytes()}, tarMember{"000001.cls", []byte("3\n")},
		tarMember{"sub/000002.cls", []byte("1")}, tarMember{"sub/000002.png", pb.Bytes()}))
	f.Add(tarOf(tarMember{"a.json", []byte(`{"x":1}`)}, tarMember{"a.jpg", []byte("\xff\xd8\xff not a JPEG")},
		tarMember{"b.png", nil}, tarMember{"b.cls", []byte("x")}))
	f.Add(tarOf(tarMember{"c.cls", []byte("99999999999")}, tarMember{"c.png", pb.Bytes()}))
	f.Add(tarOf(tarMember{"d.png", pb.Bytes()}, tarMember{"e.png", nil}))
	f.Add([]byte("not a tar at all, but long enough to hold a header block?"))
	root := f.TempDir()
	f.Fuzz(func(t *testing.T, data []byte) {
		checkWebDataset(t, root, data)
		// The same bytes with every block's header checksum made right,
		// so that mutations reach past archive/tar's checksum test.
		checkWebDataset(t, root, fixChecksums(data))
	})
}

// fixChecksums returns data with the checksum field of every 512-byte
// block that is not all zeros set as if the block were a tar header.
func fixChecksums(data []byte) []byte {
	data = bytes.Clone(data)
	for off := 0; off+512 <= len(data); off += 512 {
		block := data[off : off+512]
		if bytes.Count(block, []byte{0}) == 512 {
			continue
		}
		copy(block[148:156], "        ")
		sum := 0
		for _, c := range block {
			sum += int(c)
		}
		copy(block[148:156], fmt.Sprintf("%06o\x00 ", sum))
	}
	return data
}

// checkWebDataset indexes a dataset of the one tar shard data, and reads
// what it lists.
func checkWebDataset(t *testing.T, root string, data []byte) {
	t.Helper()
	writeFile(t, filepath.Join(root, "s.tar"), data)
	ctx := t.Context()
	shape := engine.Shape{C: 1, H: 6, W: 6}
	spec := job.Dataset{Format: "webdataset", URL: root, Preprocess: imageCases[1].pre}
	var (
		l   *dataset.Listing
		err error
	)
	bounded(t, len(data), 0, func() { l, err = dataset.List(ctx, spec) })
	if err != nil {
		mustBadData(t, "indexing", err)
		return
	}
	if l.Shape != shape || len(l.Rows) == 0 {
		t.Fatalf("%d rows of shape %v", len(l.Rows), l.Shape)
	}
	ids := map[string]bool{}
	for i, row := range l.Rows {
		if row.Index != int64(i) || row.Source != "s.tar" || !strings.HasPrefix(row.ExampleID, "s.tar/") || ids[row.ExampleID] {
			t.Fatalf("row %d: %+v", i, row)
		}
		ids[row.ExampleID] = true
		if row.Offset < 0 || row.Size < 0 || row.Offset > int64(len(data))-row.Size {
			t.Fatalf("row %d: %d bytes at %d of a tar of %d", i, row.Size, row.Offset, len(data))
		}
	}
	r, err := dataset.NewReader(ctx, spec, l.Shape, l.JPEGDecoder)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	bounded(t, len(data), 0, func() { checkRead(t, r, l.Rows, l.Shape, imageCases[1]) })
}
