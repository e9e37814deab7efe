package activities

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"

	"go.temporal.io/sdk/temporal"
	"gocloud.dev/blob"
	"gocloud.dev/gcerrors"

	"github.com/vogscore/vog/dataset"
	"github.com/vogscore/vog/engine"
	"github.com/vogscore/vog/internal/fault"
	"github.com/vogscore/vog/storage"
)

// ErrBadJob marks errors in what the user asked for: a bad flag, an --out
// holding another job, checkpoints that disagree.
var ErrBadJob = errors.New("bad job")

// Application error types of failures that retrying cannot fix; retry
// policies list both as non-retryable. BadInputType fails the whole job (a
// bad flag, checkpoints that disagree); BadDataType fails one shard (a
// corrupt file, a bad label), and the job goes on to end partial.
const (
	BadInputType = "BadInput"
	BadDataType  = "BadData"
)

// Activities holds the dependencies of vog's activities. Workflows call its
// methods through a nil *Activities; workers register a real one.
type Activities struct {
	// Loader loads checkpoints on this worker's device. Only gradient
	// workers need one.
	Loader engine.Loader

	mu     sync.Mutex
	jobs   map[JobRef]*Job
	models *modelSet
	reader *readerEntry
}

// classify turns errors that retrying cannot fix into non-retryable
// application errors; others are returned as they are, to be retried.
func classify(err error) error {
	if err == nil {
		return nil
	}
	switch {
	case errors.Is(err, dataset.ErrBadData):
		return temporal.NewNonRetryableApplicationError(err.Error(), BadDataType, err)
	case errors.Is(err, ErrBadJob) || errors.Is(err, engine.ErrBadInput):
		return temporal.NewNonRetryableApplicationError(err.Error(), BadInputType, err)
	}
	return err
}

func badJob(format string, args ...any) error { return fault.Mark(ErrBadJob, format, args...) }

// openOut opens a job's output location as a directory.
func openOut(ctx context.Context, out string) (*blob.Bucket, error) {
	l, err := storage.Parse(out)
	if err != nil {
		return nil, badJob("--out: %v", err)
	}
	return storage.CreatePrefix(ctx, l)
}

// job reads and caches job.json of ref, checking its fingerprint.
func (a *Activities) job(ctx context.Context, ref JobRef) (*Job, error) {
	a.mu.Lock()
	j := a.jobs[ref]
	a.mu.Unlock()
	if j != nil {
		return j, nil
	}
	b, err := openOut(ctx, ref.Out)
	if err != nil {
		return nil, err
	}
	defer b.Close()
	j, err = readJob(ctx, b)
	if err != nil {
		return nil, err
	}
	if j == nil {
		return nil, fmt.Errorf("%s: no %s: the job was not planned there", ref.Out, storage.JobKey)
	}
	if j.Fingerprint != ref.Fingerprint {
		return nil, badJob("%s/%s is job %s, not %s: another job replaced it", ref.Out, storage.JobKey, j.Fingerprint, ref.Fingerprint)
	}
	a.mu.Lock()
	if a.jobs == nil {
		a.jobs = map[JobRef]*Job{}
	}
	a.jobs[ref] = j
	a.mu.Unlock()
	return j, nil
}

// readJob reads job.json, returning nil where there is none.
func readJob(ctx context.Context, b *blob.Bucket) (*Job, error) {
	data, err := b.ReadAll(ctx, storage.JobKey)
	if gcerrors.Code(err) == gcerrors.NotFound {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", storage.JobKey, err)
	}
	var j Job
	if err := json.Unmarshal(data, &j); err != nil {
		return nil, badJob("%s is not a vog job: %v", storage.JobKey, err)
	}
	return &j, nil
}

// ReadJob reads the job.json of a job's output location.
func ReadJob(ctx context.Context, out string) (*Job, error) {
	l, err := storage.Parse(out)
	if err != nil {
		return nil, err
	}
	b, err := storage.OpenPrefix(ctx, l)
	if err != nil {
		return nil, err
	}
	defer b.Close()
	j, err := readJob(ctx, b)
	if err == nil && j == nil {
		err = fmt.Errorf("%s: no %s", out, storage.JobKey)
	}
	return j, err
}
