package storage

import (
	"context"
	"fmt"

	"gocloud.dev/blob"
	"gocloud.dev/gcerrors"

	"github.com/vogscore/vog/job"
)

// ReadJobIn reads the job.json of the output location b, returning nil
// where there is none.
func ReadJobIn(ctx context.Context, b *blob.Bucket) (*job.Job, error) {
	data, err := b.ReadAll(ctx, JobKey)
	if gcerrors.Code(err) == gcerrors.NotFound {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", JobKey, err)
	}
	j, err := job.Decode(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", JobKey, err)
	}
	return j, nil
}

// ReadJob reads the job.json of a job's output location.
func ReadJob(ctx context.Context, out string) (*job.Job, error) {
	l, err := Parse(out)
	if err != nil {
		return nil, err
	}
	b, err := OpenPrefix(ctx, l)
	if err != nil {
		return nil, err
	}
	defer b.Close()
	j, err := ReadJobIn(ctx, b)
	if err == nil && j == nil {
		err = fmt.Errorf("%s: no %s", out, JobKey)
	}
	return j, err
}

// ReadObject reads a whole object named by URL or path. For a missing
// object, IsNotFound(err) is true.
func ReadObject(ctx context.Context, raw string) ([]byte, error) {
	l, err := Parse(raw)
	if err != nil {
		return nil, err
	}
	b, err := Open(ctx, l)
	if err != nil {
		return nil, err
	}
	defer b.Close()
	data, err := b.ReadAll(ctx, l.Key)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", raw, err)
	}
	return data, nil
}

// IsNotFound reports whether err says that an object does not exist.
func IsNotFound(err error) bool { return gcerrors.Code(err) == gcerrors.NotFound }
