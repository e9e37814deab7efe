// Package dataset reads labelled image datasets from object storage and turns
// examples into the float32 NCHW tensors the engine takes: pixels scaled to
// [0, 1], then optionally normalised per channel.
//
// # Formats
//
//   - idx: MNIST/Fashion-MNIST. The URL is the prefix shared by
//     <prefix>-images-idx3-ubyte[.gz] and <prefix>-labels-idx1-ubyte[.gz].
//   - imagefolder: one sub-folder per class under the URL; sorted folder
//     names give label indices; PNG and JPEG files, sorted by path.
//   - webdataset: tar shards under the URL (natural order) whose samples
//     are <key>.jpg|.jpeg|.png with an optional <key>.cls label.
//   - parquet: Parquet files in the Hugging Face image layout (natural
//     order): a column image, a struct of encoded bytes and a path, and an
//     integer column label.
//
// A dataset is listed once (List, by the planner) into an index of example
// ids and labels; workers then read examples by index (Reader).
package dataset

import (
	"context"

	"github.com/vogscore/vog/engine"
	"github.com/vogscore/vog/job"
)

// shapeUnknown stands for the example shape before listing has found it.
var shapeUnknown engine.Shape

// Listing is a planned dataset: its examples in order, class names where the
// format has them, the shape of one preprocessed example, and for image
// formats the JPEG decoder (preprocess.DecoderTurboJPEG or DecoderGoJPEG),
// which every reader of the job must then use.
type Listing struct {
	Rows        []job.IndexRow
	Classes     []string
	Shape       engine.Shape
	JPEGDecoder string
}

// List reads a dataset's index: count, ids, labels and example shape.
func List(ctx context.Context, s job.Dataset) (*Listing, error) {
	if err := s.Validate(); err != nil {
		return nil, err
	}
	switch s.Format {
	case "idx":
		return listIDX(ctx, s)
	case "webdataset":
		return listWebDataset(ctx, s)
	case "parquet":
		return listParquet(ctx, s)
	default:
		return listImageFolder(ctx, s)
	}
}

// Reader decodes examples of a listed dataset.
type Reader interface {
	// Read decodes rows into dst, len(rows)*Shape.Len() float32 values in
	// NCHW order. An example that cannot be read or decoded gets a
	// *job.ExampleError, naming it, in bad[i] (len(rows) of them) and zeros
	// in dst; the error Read returns is about more than one example (a
	// missing tar or Parquet file, storage that does not answer) and fails
	// the batch.
	Read(ctx context.Context, rows []job.IndexRow, dst []float32, bad []error) error
	// Close releases the reader.
	Close() error
}

// NewReader opens a dataset for reading examples of the given shape, with
// the JPEG decoder its listing chose ("" for any, and for IDX datasets).
func NewReader(ctx context.Context, s job.Dataset, shape engine.Shape, decoder string) (Reader, error) {
	if err := s.Validate(); err != nil {
		return nil, err
	}
	switch s.Format {
	case "idx":
		return openIDX(ctx, s, shape)
	default:
		return openImages(ctx, s, shape, decoder)
	}
}

// normalize applies the per-channel mean and std of p to one example in
// place.
func normalize(p job.Preprocess, x []float32, s engine.Shape) {
	if len(p.Mean) == 0 {
		return
	}
	hw := s.Pixels()
	for c := range s.C {
		m, sd := p.Mean[c], p.Std[c]
		plane := x[c*hw : (c+1)*hw]
		for i, v := range plane {
			plane[i] = (v - m) / sd // a division, as torchvision's Normalize
		}
	}
}

var badData = job.BadData
