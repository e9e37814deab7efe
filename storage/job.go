package storage

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"gocloud.dev/blob"
	"gocloud.dev/gcerrors"

	"github.com/vogscore/vog/job"
	"github.com/vogscore/vog/location"
)

// ReadJobIn reads the job.json of the output location b, returning nil
// where there is none.
func ReadJobIn(ctx context.Context, b *blob.Bucket) (*job.Job, error) {
	return ReadJobKey(ctx, b, JobKey)
}

// ReadJobKey reads a job written at key (JobKey, WatchKey), returning nil
// where there is none.
func ReadJobKey(ctx context.Context, b *blob.Bucket, key string) (*job.Job, error) {
	data, err := b.ReadAll(ctx, key)
	if gcerrors.Code(err) == gcerrors.NotFound {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", key, err)
	}
	j, err := job.Decode(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", key, err)
	}
	return j, nil
}

// CreateJob writes j as the job.json of the output location out, unless
// one is there already: then it returns that one and writes nothing. Of
// two jobs planned into one --out at once, exactly one creates it. Local
// folders get an atomic hard link (fileblob's own precondition checks in
// one process only); object stores get a conditional write (S3
// If-None-Match, GCS and Azure preconditions).
func CreateJob(ctx context.Context, out string, j *job.Job) (*job.Job, error) {
	l, err := location.Parse(out)
	if err != nil {
		return nil, err
	}
	b, err := CreatePrefix(ctx, l)
	if err != nil {
		return nil, err
	}
	defer b.Close()
	if path, ok := l.LocalPath(); ok {
		err = linkNew(filepath.Join(path, JobKey), j.Encode())
	} else {
		err = b.WriteAll(ctx, JobKey, j.Encode(), &blob.WriterOptions{ContentType: "application/json", IfNotExist: true})
	}
	if err == nil {
		return nil, nil
	}
	if !errors.Is(err, fs.ErrExist) && gcerrors.Code(err) != gcerrors.FailedPrecondition {
		return nil, fmt.Errorf("write %s: %w", JobKey, err)
	}
	old, err := ReadJobIn(ctx, b)
	if err == nil && old == nil {
		err = fmt.Errorf("%s: %s was there, then was not", out, JobKey)
	}
	return old, err
}

// linkNew writes data to path only if path does not exist, atomically: a
// temporary file is linked to path, which fails if path exists.
func linkNew(path string, data []byte) error {
	f, err := os.CreateTemp(filepath.Dir(path), ".job-*.json")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Link(f.Name(), path)
}

// ReadJob reads the job.json of a job's output location.
func ReadJob(ctx context.Context, out string) (*job.Job, error) {
	l, err := location.Parse(out)
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
	l, err := location.Parse(raw)
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
