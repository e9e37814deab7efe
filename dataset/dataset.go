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
// format has them, and the shape of one preprocessed example.
type Listing struct {
	Rows    []job.IndexRow
	Classes []string
	Shape   engine.Shape
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
	// NCHW order. Errors name the example.
	Read(ctx context.Context, rows []job.IndexRow, dst []float32) error
	// Close releases the reader.
	Close() error
}

// NewReader opens a dataset for reading examples of the given shape.
func NewReader(ctx context.Context, s job.Dataset, shape engine.Shape) (Reader, error) {
	if err := s.Validate(); err != nil {
		return nil, err
	}
	switch s.Format {
	case "idx":
		return openIDX(ctx, s, shape)
	default:
		return openImages(ctx, s, shape)
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
		m, inv := p.Mean[c], 1/p.Std[c]
		plane := x[c*hw : (c+1)*hw]
		for i, v := range plane {
			plane[i] = (v - m) * inv
		}
	}
}

var badData = job.BadData
