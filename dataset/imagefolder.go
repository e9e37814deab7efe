package dataset

import (
	"context"
	"errors"
	"fmt"
	_ "image/jpeg" // registers JPEG decoding
	_ "image/png"  // registers PNG decoding
	"io"
	"path"
	"runtime"
	"sort"
	"strings"
	"sync"

	"gocloud.dev/blob"

	"github.com/vogscore/vog/engine"
	"github.com/vogscore/vog/job"
	"github.com/vogscore/vog/location"
	"github.com/vogscore/vog/preprocess"
	"github.com/vogscore/vog/storage"
)

var imageExts = map[string]bool{".png": true, ".jpg": true, ".jpeg": true}

func listImageFolder(ctx context.Context, s job.Dataset) (*Listing, error) {
	r, err := openImages(ctx, s, shapeUnknown, "")
	if err != nil {
		return nil, err
	}
	defer r.Close()
	b, root := r.b, r.root
	type file struct{ class, key string }
	var files []file
	classSet := map[string]bool{}
	err = storage.List(ctx, b, nil, func(obj *blob.ListObject) error {
		class, _, nested := strings.Cut(obj.Key, "/")
		if obj.IsDir || !nested || !imageExts[strings.ToLower(path.Ext(obj.Key))] {
			return nil
		}
		classSet[class] = true
		files = append(files, file{class, obj.Key})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", root, err)
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
// asked for the resized size of the first image whose header reads, which
// every other image must then match. It also records the JPEG decoder.
func (r *imageReader) setShape(ctx context.Context, l *Listing) error {
	l.Shape = engine.Shape{C: r.s.ChannelCount(), H: r.s.Crop, W: r.s.Crop}
	l.JPEGDecoder, _ = r.pre.JPEGDecoder()
	if r.s.Crop != 0 {
		return nil
	}
	// A bad first image must not sink the job: it fails as an example.
	var first error
	for _, row := range l.Rows[:min(len(l.Rows), 100)] {
		data, err := r.bytesOf(ctx, row)
		var ex *job.ExampleError
		if err != nil && !errors.As(err, &ex) {
			return err
		}
		if err == nil {
			var w, h int
			if w, h, err = r.size(row, data); err == nil {
				l.Shape.W, l.Shape.H = r.pre.OutputSize(w, h)
				return nil
			}
		}
		if first == nil {
			first = err
		}
	}
	return badData("%s: no readable image among the first examples, to learn their size (%v); give --crop", r.root, first)
}

// imageReader decodes and preprocesses encoded images: whole objects
// (ImageFolder), members of tar shards (WebDataset) or Parquet cells.
type imageReader struct {
	s     job.Dataset
	root  location.Location
	b     *blob.Bucket
	shape engine.Shape
	pre   *preprocess.Preprocessor
}

// openImages opens an image dataset. decoder, where not empty, is the JPEG
// decoder the job was planned with: the reader decodes with it, or fails.
func openImages(ctx context.Context, s job.Dataset, shape engine.Shape, decoder string) (*imageReader, error) {
	root, err := location.Parse(s.URL)
	if err != nil {
		return nil, err
	}
	opts := preprocess.Options{Channels: s.ChannelCount(), Resize: s.Resize, Crop: s.Crop,
		Mean: s.Mean, Std: s.Std, MaxPixels: s.MaxPixelCount(), DCTScale: s.DCTScale}
	if decoder == preprocess.DecoderGoJPEG {
		opts.TurboJPEG = "none"
	}
	pre, err := preprocess.New(opts)
	if err != nil {
		return nil, err
	}
	if got, why := pre.JPEGDecoder(); decoder != "" && got != decoder {
		// Retried: another worker may have the decoder.
		return nil, fmt.Errorf("the job decodes JPEGs with %s, which this worker lacks (%v): install Debian's libturbojpeg0, or set %s", decoder, why, preprocess.TurboJPEGEnv)
	}
	b, err := storage.OpenPrefix(ctx, root)
	if err != nil {
		return nil, err
	}
	return &imageReader{s: s, root: root, b: b, shape: shape, pre: pre}, nil
}

// name names a row's image for messages: a URL, with #member for a tar
// member and #rowN for a Parquet row.
func (r *imageReader) name(row job.IndexRow) string {
	switch {
	case r.s.Format == "parquet":
		return r.parquetName(row)
	case row.Source != "": // a tar member, perhaps of no bytes
		return r.root.Join(row.Source).String() + "#" + strings.TrimPrefix(row.ExampleID, row.Source+"/")
	}
	return r.root.Join(row.ExampleID).String()
}

// bytesOf reads a row's encoded image: the object ExampleID, Size bytes at
// Offset of the object Source, or a Parquet cell. A missing image object is
// the example's failure; a missing tar or Parquet file fails the batch.
func (r *imageReader) bytesOf(ctx context.Context, row job.IndexRow) ([]byte, error) {
	if r.s.Format == "parquet" {
		data, err := r.parquetBytes(ctx, []job.IndexRow{row})
		if err != nil {
			return nil, err
		}
		return data[0], nil
	}
	key, offset, length := row.ExampleID, int64(0), int64(-1)
	if row.Source != "" { // a tar member; one of no bytes is an empty image, not another object
		key, offset, length = row.Source, row.Offset, row.Size
	}
	rd, err := storage.NewReader(ctx, r.b, key, offset, length)
	if storage.IsNotFound(err) && row.Source == "" {
		return nil, job.ExampleFailure(job.FailUnreadable, "%s: no such file", r.name(row))
	}
	if storage.IsNotFound(err) {
		return nil, badData("%s: no such file", r.root.Join(key))
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", r.name(row), err)
	}
	defer rd.Close()
	data, err := io.ReadAll(rd)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", r.name(row), err)
	}
	return data, nil
}

// Read decodes the rows on every CPU: images are decoded once for all of a
// job's checkpoints, so the cores feed the engine. Errors about one example
// go to bad; of other errors, the first in row order is returned.
func (r *imageReader) Read(ctx context.Context, rows []job.IndexRow, dst []float32, bad []error) error {
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
		wg.Go(func() {
			for i := range next {
				var data []byte
				if encoded != nil {
					data = encoded[i]
				}
				errs[i] = r.readOne(ctx, rows[i], data, dst[i*r.shape.Len():(i+1)*r.shape.Len()])
			}
		})
	}
	for i := range rows {
		next <- i
	}
	close(next)
	wg.Wait()
	return sortErrors(errs, dst, r.shape.Len(), bad)
}

// sortErrors moves the errors about one example into bad, zeroing their
// examples in dst, and returns the first other error.
func sortErrors(errs []error, dst []float32, n int, bad []error) error {
	for i, err := range errs {
		var ex *job.ExampleError
		if err != nil && !errors.As(err, &ex) {
			return err
		}
		bad[i] = err
		if err != nil {
			clear(dst[i*n : (i+1)*n])
		}
	}
	return nil
}

// readOne decodes and preprocesses one example into x; data, where not
// nil, holds its encoded image already read.
func (r *imageReader) readOne(ctx context.Context, row job.IndexRow, data []byte, x []float32) error {
	if data == nil {
		var err error
		if data, err = r.bytesOf(ctx, row); err != nil {
			return fmt.Errorf("example %d: %w", row.Index, err)
		}
	}
	w, h, err := r.size(row, data)
	if err != nil {
		return err
	}
	if ow, oh := r.pre.OutputSize(w, h); ow != r.shape.W || oh != r.shape.H {
		return job.ExampleFailure(job.FailSize, "example %d: %s: a %dx%d image, %dx%d after preprocessing, where the job's are %dx%d (use --resize and --crop)",
			row.Index, r.name(row), w, h, ow, oh, r.shape.W, r.shape.H)
	}
	if _, err := r.pre.Preprocess(data, x); err != nil {
		return r.imageFailure(row, err)
	}
	return nil
}

// size reads an image's size from its header, refusing one of more pixels
// than the cap before anything is decoded.
func (r *imageReader) size(row job.IndexRow, data []byte) (w, h int, err error) {
	w, h, err = r.pre.Config(data)
	if err == nil && int64(w)*int64(h) > int64(r.s.MaxPixelCount()) {
		err = fmt.Errorf("%w: %dx%d pixels", preprocess.ErrTooLarge, w, h)
	}
	if err != nil {
		return 0, 0, r.imageFailure(row, err)
	}
	return w, h, nil
}

// imageFailure turns an error of package preprocess into the example's
// failure.
func (r *imageReader) imageFailure(row job.IndexRow, err error) error {
	if errors.Is(err, preprocess.ErrTooLarge) {
		return job.ExampleFailure(job.FailTooLarge, "example %d: %s: %v, above --max-pixels %d", row.Index, r.name(row), err, r.s.MaxPixelCount())
	}
	return job.ExampleFailure(job.FailCorrupt, "example %d: %s: corrupt or unsupported image: %v", row.Index, r.name(row), err)
}

func (r *imageReader) Close() error { return r.b.Close() }
