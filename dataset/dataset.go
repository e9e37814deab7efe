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
	"errors"
	"fmt"

	"github.com/vogscore/vog/engine"
	"github.com/vogscore/vog/internal/fault"
	"github.com/vogscore/vog/storage"
)

// Formats lists the dataset formats vog reads.
var Formats = []string{"idx", "imagefolder", "webdataset", "parquet"}

// Spec says where a dataset is and how to preprocess it.
type Spec struct {
	Format string `json:"format"`
	URL    string `json:"url"`
	Preprocess
}

// Preprocess is the preprocessing applied to every image, in this order:
// convert to Channels, resize the shorter side to Resize, centre-crop to
// Crop x Crop, scale to [0, 1], subtract Mean and divide by Std per channel.
// Zero values mean: the format's channels (1 for idx, 3 for imagefolder), no
// resize, no crop, no normalisation.
type Preprocess struct {
	Channels int       `json:"channels,omitempty"`
	Resize   int       `json:"resize,omitempty"`
	Crop     int       `json:"crop,omitempty"`
	Mean     []float32 `json:"mean,omitempty"`
	Std      []float32 `json:"std,omitempty"`
}

// Validate reports the first invalid field of s, by its flag name.
func (s Spec) Validate() error {
	switch s.Format {
	case "idx", "imagefolder", "webdataset", "parquet":
	default:
		return fmt.Errorf("--format %q: want one of %v", s.Format, Formats)
	}
	if s.URL == "" {
		return errors.New("--dataset: missing")
	}
	if s.Channels != 0 && s.Channels != 1 && s.Channels != 3 {
		return fmt.Errorf("--channels %d: want 1 or 3", s.Channels)
	}
	if s.Resize < 0 || s.Crop < 0 {
		return fmt.Errorf("--resize %d / --crop %d: must not be negative", s.Resize, s.Crop)
	}
	c := s.channels()
	if len(s.Mean) != 0 && len(s.Mean) != c {
		return fmt.Errorf("--mean has %d values for %d channels", len(s.Mean), c)
	}
	if len(s.Std) != len(s.Mean) {
		return fmt.Errorf("--std has %d values, --mean %d: give both, one per channel", len(s.Std), len(s.Mean))
	}
	for i, v := range s.Std {
		if v == 0 {
			return fmt.Errorf("--std value %d is 0", i)
		}
	}
	return nil
}

func (s Spec) channels() int {
	if s.Channels != 0 {
		return s.Channels
	}
	if s.Format == "idx" {
		return 1
	}
	return 3
}

// shapeUnknown stands for the example shape before listing has found it.
var shapeUnknown engine.Shape

// ErrBadData marks errors in the dataset itself: a missing, truncated or
// corrupt file, an image of the wrong size. Retrying does not help.
var ErrBadData = errors.New("bad data")

// Listing is a planned dataset: its examples in order, class names where the
// format has them, and the shape of one preprocessed example.
type Listing struct {
	Rows    []storage.IndexRow
	Classes []string
	Shape   engine.Shape
}

// List reads a dataset's index: count, ids, labels and example shape.
func List(ctx context.Context, s Spec) (*Listing, error) {
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
	Read(ctx context.Context, rows []storage.IndexRow, dst []float32) error
	// Close releases the reader.
	Close() error
}

// NewReader opens a dataset for reading examples of the given shape.
func NewReader(ctx context.Context, s Spec, shape engine.Shape) (Reader, error) {
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

// normalize applies the per-channel mean and std to one example in place.
func (p Preprocess) normalize(x []float32, s engine.Shape) {
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

func badData(format string, args ...any) error { return fault.Mark(ErrBadData, format, args...) }
