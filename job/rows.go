package job

import (
	"cmp"
	"errors"
	"slices"
	"strings"
)

// The rows of a job's Parquet files. Their parquet tags are the schema
// (docs/design.md, "Result schema").

// ScoreRow is one row of the result, scores/part-*.parquet.
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
	// AbsVoGNorm is |VoGNorm|: how far from its class's typical VoG an
	// example is, either way (the authors' abs_normalize; the paper's
	// memorisation figures are means of it).
	AbsVoGNorm float64 `parquet:"abs_vog_norm"`
	// Loss is the cross-entropy of the label at the window's last
	// checkpoint. Without a label (-1), Loss, ConfMean, ConfStd,
	// MarginMean and EL2N are NaN, Forgetting is 0 and CorrectLast false.
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
	// channel-averaged input gradient of the target scalar (--target).
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
	// Source, Offset and Size locate the example's bytes: in an image
	// folder, Source is empty and ExampleID is the file's key; in a
	// WebDataset, they are Size bytes at Offset of the tar shard Source; in
	// a Parquet dataset, the image of row Offset of the file Source (Size 0).
	Source string `parquet:"source,optional"`
	Offset int64  `parquet:"offset,optional"`
	Size   int64  `parquet:"size,optional"`
}

// FailureRow is one row of failures.parquet: an example that could not be
// scored, left out of the rows and of the class statistics.
type FailureRow struct {
	Index     int64  `parquet:"index"`
	ExampleID string `parquet:"example_id"`
	Shard     int32  `parquet:"shard"`
	// Kind is one of the Fail* kinds, for counting; Reason says what
	// happened, naming the file or checkpoint.
	Kind   string `parquet:"kind"`
	Reason string `parquet:"reason"`
}

// Failure returns the row of example row's failure err in shard shard.
func Failure(row IndexRow, shard int, err error) FailureRow {
	kind := FailCorrupt
	var ex *ExampleError
	if errors.As(err, &ex) {
		kind = ex.Kind
	}
	return FailureRow{Index: row.Index, ExampleID: row.ExampleID, Shard: int32(shard), Kind: kind, Reason: err.Error()}
}

// Success is the content of _SUCCESS, written last: its presence means that
// the job's result is complete.
type Success struct {
	Fingerprint string `json:"fingerprint"`
	Rows        int64  `json:"rows"`
	// Failures counts the examples in failures.parquet.
	Failures int64  `json:"failures"`
	Parts    []Part `json:"parts"`
}

// Part is one result file, as listed in _SUCCESS.
type Part struct {
	Key  string `json:"key"`
	Size int64  `json:"size"`
}

// Hardest returns the n rows of highest vog_norm, most first; ties go to the
// lower index, then the window's name, so the answer does not depend on the
// order of rows.
func Hardest(rows []ScoreRow, n int) []ScoreRow {
	top := slices.Clone(rows)
	slices.SortFunc(top, func(a, b ScoreRow) int {
		if c := cmp.Compare(b.VoGNorm, a.VoGNorm); c != 0 {
			return c
		}
		if c := cmp.Compare(a.Index, b.Index); c != 0 {
			return c
		}
		return strings.Compare(a.Window, b.Window)
	})
	return top[:min(n, len(top))]
}
