package job

import (
	"errors"
	"fmt"

	"github.com/vogscore/vog/internal/fault"
)

// Kinds of error that retrying cannot fix. Test them with errors.Is.
var (
	// ErrBadJob marks errors in what the user asked for: a bad flag, an
	// --out holding another job, checkpoints that disagree. They fail the
	// whole job.
	ErrBadJob = errors.New("bad job")
	// ErrBadData marks errors in the dataset itself: a missing, truncated or
	// corrupt file, an image of the wrong size, a label outside the model.
	// They fail one shard; the job goes on and ends partial.
	ErrBadData = errors.New("bad data")
)

// Application error types that activities fail with, for the errors above;
// retry policies list both as non-retryable.
const (
	BadInputType = "BadInput"
	BadDataType  = "BadData"
)

// BadJob returns a formatted error marked ErrBadJob.
func BadJob(format string, args ...any) error { return fault.Mark(ErrBadJob, format, args...) }

// BadData returns a formatted error marked ErrBadData.
func BadData(format string, args ...any) error { return fault.Mark(ErrBadData, format, args...) }

// Kinds of example failure: the kind column of failures.parquet.
const (
	FailUnreadable = "unreadable"    // the example's bytes cannot be read
	FailCorrupt    = "corrupt image" // not a decodable image
	FailTooLarge   = "too large"     // more pixels than --max-pixels
	FailSize       = "wrong size"    // another size than the job's, after preprocessing
	FailLabel      = "label outside the model"
	FailNonFinite  = "non-finite" // NaN or infinite logits or gradients at a checkpoint
)

// ExampleError is the failure of one example: it is left out of the rows
// and the class statistics, and listed in failures.parquet, while the rest
// of its shard is scored. It is marked ErrBadData.
type ExampleError struct {
	Kind string
	Err  error
}

func (e *ExampleError) Error() string        { return e.Err.Error() }
func (e *ExampleError) Unwrap() error        { return e.Err }
func (e *ExampleError) Is(target error) bool { return target == ErrBadData }

// ExampleFailure returns an *ExampleError of the given kind.
func ExampleFailure(kind, format string, args ...any) error {
	return &ExampleError{Kind: kind, Err: fmt.Errorf(format, args...)}
}
