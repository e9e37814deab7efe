package job

import (
	"errors"

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
