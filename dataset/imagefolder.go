package dataset

import (
	"context"
	"fmt"
	"image"
	_ "image/jpeg" // registers JPEG decoding
	_ "image/png"  // registers PNG decoding
	"io"
	"path"
	"runtime"
	"sort"
	"strings"
	"sync"

	"gocloud.dev/blob"
	"golang.org/x/image/draw"

	"github.com/vogscore/vog/engine"
	"github.com/vogscore/vog/job"
	"github.com/vogscore/vog/storage"
)

var imageExts = map[string]bool{".png": true, ".jpg": true, ".jpeg": true}

func listImageFolder(ctx context.Context, s job.Dataset) (*Listing, error) {
	r, err := openImages(ctx, s, shapeUnknown)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	b, root := r.b, r.root
	type file struct{ class, key string }
	var files []file
	classSet := map[string]bool{}
	it := b.List(nil)
	for {
		obj, err := it.Next(ctx)
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("list %s: %w", root, err)
		}
		class, _, nested := strings.Cut(obj.Key, "/")
		if obj.IsDir || !nested || !imageExts[strings.ToLower(path.Ext(obj.Key))] {
			continue
		}
		classSet[class] = true
		files = append(files, file{class, obj.Key})
	}
	if len(files) == 0 {
		return nil, badData("%s: no PNG or JPEG files in class sub-folders", root)
	}
	classes := make([]string, 0, len(classSet))
	for c := range classSet {
		classes = append(classes, c)
	}
	sort.Strings(classes)
	label := make(map[string]int32, len(classes))
	for i, c := range classes {
		label[c] = int32(i)
	}
	sort.Slice(files, func(i, j int) bool { return files[i].key < files[j].key })
	l := &Listing{Rows: make([]job.IndexRow, len(files)), Classes: classes}
	for i, f := range files {
		l.Rows[i] = job.IndexRow{Index: int64(i), ExampleID: f.key, Label: label[f.class]}
	}
	return l, r.setShape(ctx, l)
}

// setShape sets the listing's example shape: the crop, or where no crop is
// asked for the first image's size, which every other image must then match.
func (r *imageReader) setShape(ctx context.Context, l *Listing) error {
	l.Shape = engine.Shape{C: r.s.ChannelCount(), H: r.s.Crop, W: r.s.Crop}
	if r.s.Crop == 0 {
		img, err := r.decode(ctx, l.Rows[0])
		if err != nil {
			return err
		}
		img = resizeShorter(img, r.s.Resize)
		l.Shape.H, l.Shape.W = img.Bounds().Dy(), img.Bounds().Dx()
	}
	return nil
}

// imageReader decodes image files: whole objects (ImageFolder) or members
// of tar shards (WebDataset).
type imageReader struct {
	s     job.Dataset
	root  storage.Location
	b     *blob.Bucket
	shape engine.Shape
}

func openImages(ctx context.Context, s job.Dataset, shape engine.Shape) (*imageReader, error) {
	root, err := storage.Parse(s.URL)
	if err != nil {
		return nil, err
	}
	b, err := storage.OpenPrefix(ctx, root)
	if err != nil {
		return nil, err
	}
	return &imageReader{s: s, root: root, b: b, shape: shape}, nil
}

// decode decodes a row's image in the reader's format.
func (r *imageReader) decode(ctx context.Context, row job.IndexRow) (image.Image, error) {
	if r.s.Format == "parquet" {
		return r.parquetImage(ctx, row)
	}
	return decodeRow(ctx, r.b, r.root, row)
}

// decodeRow decodes a row's image: the object ExampleID, or Size bytes at
// Offset of the object Source.
func decodeRow(ctx context.Context, b *blob.Bucket, root storage.Location, row job.IndexRow) (image.Image, error) {
	key, offset, length := row.ExampleID, int64(0), int64(-1)
	name := root.Join(key).String()
	if row.Size > 0 {
		key, offset, length = row.Source, row.Offset, row.Size
		name = root.Join(row.Source).String() + "#" + strings.TrimPrefix(row.ExampleID, row.Source+"/")
	}
	r, err := b.NewRangeReader(ctx, key, offset, length, nil)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	defer r.Close()
	img, _, err := image.Decode(r)
	if err != nil {
		return nil, badData("%s: corrupt or unsupported image: %v", name, err)
	}
	return img, nil
}

// Read decodes the rows on every CPU: one core decodes about 60
// ImageNet-sized JPEGs a second (docs/benchmarks.md), far below a GPU's
// rate. Of several bad examples, the first in row order is reported.
func (r *imageReader) Read(ctx context.Context, rows []job.IndexRow, dst []float32) error {
	var encoded [][]byte // Parquet rows come in runs, not one by one
	if r.s.Format == "parquet" {
		var err error
		if encoded, err = r.parquetBytes(ctx, rows); err != nil {
			return err
		}
	}
	errs := make([]error, len(rows))
	next := make(chan int)
	var wg sync.WaitGroup
	for range min(runtime.NumCPU(), len(rows)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				var data []byte
				if encoded != nil {
					data = encoded[i]
				}
				errs[i] = r.readOne(ctx, rows[i], data, dst[i*r.shape.Len():(i+1)*r.shape.Len()])
			}
		}()
	}
	for i := range rows {
		next <- i
	}
	close(next)
	wg.Wait()
	return firstError(errs)
}

func firstError(errs []error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// readOne decodes and preprocesses one example into x; data, where not
// nil, holds its encoded image already read.
func (r *imageReader) readOne(ctx context.Context, row job.IndexRow, data []byte, x []float32) error {
	var img image.Image
	var err error
	if data != nil {
		img, err = r.decodeParquetBytes(row, data)
	} else {
		img, err = r.decode(ctx, row)
	}
	if err != nil {
		return fmt.Errorf("example %d: %w", row.Index, err)
	}
	img = resizeCrop(img, r.s.Resize, r.s.Crop)
	if b := img.Bounds(); b.Dx() != r.shape.W || b.Dy() != r.shape.H {
		return badData("example %d: %s: image is %dx%d after preprocessing, the job expects %dx%d (use --resize and --crop)",
			row.Index, r.root.Join(row.ExampleID), b.Dx(), b.Dy(), r.shape.W, r.shape.H)
	}
	toFloat(img, r.shape, x)
	normalize(r.s.Preprocess, x, r.shape)
	return nil
}

func (r *imageReader) Close() error { return r.b.Close() }

// resizeShorter scales img so that its shorter side is size (bilinear);
// size 0 leaves it as it is.
func resizeShorter(img image.Image, size int) image.Image {
	b := img.Bounds()
	if size == 0 || min(b.Dx(), b.Dy()) == size {
		return img
	}
	w, h := resizedSize(b, size)
	dst := image.NewRGBA(image.Rect(0, 0, w, h))
	draw.BiLinear.Scale(dst, dst.Bounds(), img, b, draw.Src, nil)
	return dst
}

// resizeCrop is centreCrop(resizeShorter(img, resize), crop), computing
// only the pixels the crop keeps: the same bilinear weights, so the same
// pixels, with a third less resizing for ImageNet-sized images.
func resizeCrop(img image.Image, resize, crop int) image.Image {
	b := img.Bounds()
	if resize == 0 || crop == 0 || min(b.Dx(), b.Dy()) == resize {
		return centreCrop(resizeShorter(img, resize), crop)
	}
	w, h := resizedSize(b, resize)
	if crop > w || crop > h {
		return centreCrop(resizeShorter(img, resize), crop)
	}
	// The destination's bounds are the crop within the whole resized image:
	// Scale maps img onto all of it and computes only those pixels.
	x0, y0 := (w-crop)/2, (h-crop)/2
	dst := image.NewRGBA(image.Rect(x0, y0, x0+crop, y0+crop))
	draw.BiLinear.Scale(dst, image.Rect(0, 0, w, h), img, b, draw.Src, nil)
	return dst
}

// resizedSize is the size of b with its shorter side scaled to size.
func resizedSize(b image.Rectangle, size int) (w, h int) {
	w, h = size, size
	if b.Dx() > b.Dy() {
		w = (b.Dx()*size + b.Dy()/2) / b.Dy()
	} else {
		h = (b.Dy()*size + b.Dx()/2) / b.Dx()
	}
	return w, h
}

// centreCrop cuts the central size x size square; size 0 leaves img as it is.
func centreCrop(img image.Image, size int) image.Image {
	b := img.Bounds()
	if size == 0 || size > b.Dx() || size > b.Dy() {
		return img // a too-small image fails the size check with its name
	}
	x0 := b.Min.X + (b.Dx()-size)/2
	y0 := b.Min.Y + (b.Dy()-size)/2
	type subImager interface {
		SubImage(image.Rectangle) image.Image
	}
	if si, ok := img.(subImager); ok {
		return si.SubImage(image.Rect(x0, y0, x0+size, y0+size))
	}
	dst := image.NewRGBA(image.Rect(0, 0, size, size))
	draw.Draw(dst, dst.Bounds(), img, image.Pt(x0, y0), draw.Src)
	return dst
}

// toFloat writes img's pixels into x as [C][H][W] in [0, 1]: RGB for three
// channels, luma (ITU-R 601, as PIL's "L") for one.
func toFloat(img image.Image, s engine.Shape, x []float32) {
	b := img.Bounds()
	hw := s.Pixels()
	if s.C == 1 {
		gray := image.NewGray(image.Rect(0, 0, b.Dx(), b.Dy()))
		draw.Draw(gray, gray.Bounds(), img, b.Min, draw.Src)
		for i, v := range gray.Pix[:hw] {
			x[i] = float32(v) / 255
		}
		return
	}
	rgba, ok := img.(*image.RGBA)
	if !ok || rgba.Stride != 4*b.Dx() { // Pix starts at Bounds().Min
		rgba = image.NewRGBA(image.Rect(0, 0, b.Dx(), b.Dy()))
		draw.Draw(rgba, rgba.Bounds(), img, b.Min, draw.Src)
	}
	for i := range hw {
		p := rgba.Pix[4*i : 4*i+3]
		x[i] = float32(p[0]) / 255
		x[hw+i] = float32(p[1]) / 255
		x[2*hw+i] = float32(p[2]) / 255
	}
}
