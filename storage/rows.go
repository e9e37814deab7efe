package storage

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/parquet-go/parquet-go"
	"gocloud.dev/blob"
	"gocloud.dev/gcerrors"
)

// ScoreRow is one row of the result, scores/part-*.parquet (DESIGN section 6).
type ScoreRow struct {
	// Index is the example's position in the dataset's order.
	Index int64 `parquet:"index"`
	// ExampleID is a stable id: a relative path, or the index as text.
	ExampleID string `parquet:"example_id"`
	// Label is the true label, -1 where the dataset has none.
	Label int32 `parquet:"label"`
	// Pred is the class predicted by the window's last checkpoint.
	Pred int32 `parquet:"pred"`
	// Class is the class used as the gradient target and for normalisation.
	Class int32 `parquet:"class"`
	// Window names the window of checkpoints.
	Window string `parquet:"window"`
	// VoG is the raw score: mean over pixels of the per-pixel population std
	// of the gradient across the window's checkpoints.
	VoG float64 `parquet:"vog"`
	// VoGNorm is VoG as a z-score within its class and window.
	VoGNorm float64 `parquet:"vog_norm"`
	// Loss is the cross-entropy of the label at the window's last
	// checkpoint; NaN without a label, as are the scores below.
	Loss float64 `parquet:"loss"`
	// ConfMean and ConfStd are the mean and population std over the window
	// of the label's softmax probability (Data Maps' confidence and
	// variability).
	ConfMean float64 `parquet:"conf_mean"`
	ConfStd  float64 `parquet:"conf_std"`
	// MarginMean is the mean over the window of the label's logit minus the
	// largest other logit.
	MarginMean float64 `parquet:"margin_mean"`
	// EL2N is the L2 norm of softmax minus the one-hot label at the window's
	// last checkpoint.
	EL2N float64 `parquet:"el2n"`
	// Forgetting counts correct-then-wrong changes between consecutive
	// checkpoints of the window.
	Forgetting int32 `parquet:"forgetting"`
	// GradNorm is the mean over the window of the L2 norm of the
	// channel-averaged input gradient of the target logit.
	GradNorm float64 `parquet:"grad_norm"`
	// CorrectLast is whether the window's last checkpoint predicts the label.
	CorrectLast bool `parquet:"correct_last"`
}

// ClassRow is one row of classes.parquet: the statistics that normalise VoG.
type ClassRow struct {
	Window string  `parquet:"window"`
	Class  int32   `parquet:"class"`
	N      int64   `parquet:"n"`
	Mean   float64 `parquet:"mean"`
	Std    float64 `parquet:"std"`
}

// ShardClassRow holds one shard's exact class accumulator (score.ClassMoments
// as text), merged across shards by the reduce.
type ShardClassRow struct {
	Window  string `parquet:"window"`
	Class   int32  `parquet:"class"`
	Moments string `parquet:"moments"`
}

// IndexRow is one example of the planned dataset, in dataset order.
type IndexRow struct {
	Index     int64  `parquet:"index"`
	ExampleID string `parquet:"example_id"`
	Label     int32  `parquet:"label"`
	// Source, Offset and Size locate the example's bytes inside a larger
	// object (a tar shard of a WebDataset); Size 0 means ExampleID is the
	// object's own key.
	Source string `parquet:"source,optional"`
	Offset int64  `parquet:"offset,optional"`
	Size   int64  `parquet:"size,optional"`
}

// WriteParquet writes rows to key as one Parquet file. The object appears
// only if everything was written: a failed write leaves any earlier object.
func WriteParquet[T any](ctx context.Context, b *blob.Bucket, key string, rows []T) (err error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	w, err := b.NewWriter(ctx, key, &blob.WriterOptions{ContentType: "application/vnd.apache.parquet"})
	if err != nil {
		return fmt.Errorf("storage: write %s: %w", key, err)
	}
	pw := parquet.NewGenericWriter[T](w, parquet.Compression(&parquet.Zstd))
	if _, err = pw.Write(rows); err == nil {
		err = pw.Close()
	}
	if err != nil {
		cancel() // abandons the object
		w.Close()
		return fmt.Errorf("storage: write %s: %w", key, err)
	}
	if err := w.Close(); err != nil {
		return fmt.Errorf("storage: write %s: %w", key, err)
	}
	return nil
}

// ReadParquet reads rows [offset, offset+limit) of the Parquet file at key;
// limit < 0 reads to the end.
func ReadParquet[T any](ctx context.Context, b *blob.Bucket, key string, offset, limit int64) ([]T, error) {
	attrs, err := b.Attributes(ctx, key)
	if err != nil {
		return nil, fmt.Errorf("storage: read %s: %w", key, err)
	}
	// Ranged reads: a shard reads its slice of a large index, not the file.
	f, err := parquet.OpenFile(&blobReaderAt{ctx: ctx, b: b, key: key}, attrs.Size)
	if err != nil {
		return nil, fmt.Errorf("storage: read %s: %w", key, err)
	}
	r := parquet.NewGenericReader[T](f)
	defer r.Close()
	n := r.NumRows()
	if offset > n {
		offset = n
	}
	if limit < 0 || offset+limit > n {
		limit = n - offset
	}
	if err := r.SeekToRow(offset); err != nil {
		return nil, fmt.Errorf("storage: read %s: %w", key, err)
	}
	rows := make([]T, limit)
	for got := 0; got < len(rows); {
		k, err := r.Read(rows[got:])
		got += k
		if err != nil {
			if errors.Is(err, io.EOF) && got == len(rows) {
				break
			}
			return nil, fmt.Errorf("storage: read %s: row %d: %w", key, offset+int64(got), err)
		}
	}
	return rows, nil
}

// ParquetRows returns the number of rows of the Parquet file at key,
// reading only its footer.
func ParquetRows(ctx context.Context, b *blob.Bucket, key string) (int64, error) {
	attrs, err := b.Attributes(ctx, key)
	if err != nil {
		return 0, fmt.Errorf("storage: %s: %w", key, err)
	}
	f, err := parquet.OpenFile(&blobReaderAt{ctx: ctx, b: b, key: key}, attrs.Size)
	if err != nil {
		return 0, fmt.Errorf("storage: %s: %w", key, err)
	}
	return f.NumRows(), nil
}

// blobReaderAt reads an object by ranges.
type blobReaderAt struct {
	ctx context.Context
	b   *blob.Bucket
	key string
}

func (r *blobReaderAt) ReadAt(p []byte, off int64) (int, error) {
	rr, err := r.b.NewRangeReader(r.ctx, r.key, off, int64(len(p)), nil)
	if err != nil {
		return 0, err
	}
	defer rr.Close()
	n, err := io.ReadFull(rr, p)
	if errors.Is(err, io.ErrUnexpectedEOF) {
		err = io.EOF
	}
	return n, err
}

// Exists reports whether key exists in b.
func Exists(ctx context.Context, b *blob.Bucket, key string) (bool, error) {
	ok, err := b.Exists(ctx, key)
	if err != nil && gcerrors.Code(err) != gcerrors.NotFound {
		return false, fmt.Errorf("storage: %s: %w", key, err)
	}
	return ok, nil
}

// Success is the content of _SUCCESS.
type Success struct {
	Fingerprint string `json:"fingerprint"`
	Rows        int64  `json:"rows"`
	Parts       []struct {
		Key  string `json:"key"`
		Size int64  `json:"size"`
	} `json:"parts"`
}

// ReadScores reads every row of a finished job's result at out, in part
// order, after checking _SUCCESS: a partial or running job has none.
func ReadScores(ctx context.Context, out string) ([]ScoreRow, error) {
	l, err := Parse(out)
	if err != nil {
		return nil, err
	}
	b, err := OpenPrefix(ctx, l)
	if err != nil {
		return nil, err
	}
	defer b.Close()
	data, err := b.ReadAll(ctx, SuccessKey)
	if err != nil {
		return nil, fmt.Errorf("%s: no finished result (%s): %w", out, SuccessKey, err)
	}
	var s Success
	if err := json.Unmarshal(data, &s); err != nil {
		return nil, fmt.Errorf("%s/%s: %w", out, SuccessKey, err)
	}
	var rows []ScoreRow
	for _, p := range s.Parts {
		part, err := ReadParquet[ScoreRow](ctx, b, p.Key, 0, -1)
		if err != nil {
			return nil, err
		}
		rows = append(rows, part...)
	}
	if int64(len(rows)) != s.Rows {
		return nil, fmt.Errorf("%s: %d rows in the parts, %s says %d", out, len(rows), SuccessKey, s.Rows)
	}
	return rows, nil
}
