// Package jobstore is a job's output location (--out) as one portable
// type, Store, over a *blob.Bucket and the job it holds: the keys of what a
// job writes there (layout.go; docs/design.md, "Storage layout"), and the
// rules that make those objects safe to reuse. job.json is created only if
// absent, so of two planners exactly one wins; every artefact carries the
// job's fingerprint (or, for partial moments, its group's), and a Store
// refuses, naming the key and both fingerprints, one that is not its job's;
// a shard is done only when its files verify; _SUCCESS is written last and
// lists the result's parts, which scans check against it.
//
// The formats themselves (Parquet with footer metadata, partial moments
// files) and the opening of buckets are package storage's. Package
// jobstoretest is the conformance suite that every backend passes.
package jobstore

import (
	"bytes"
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
	"github.com/vogscore/vog/storage"
	"github.com/vogscore/vog/window"
)

// Store is the output location of one job. Open or Create it from --out,
// then bind its job (CreateJob, Load, Watch or Bind): the methods that read
// or write the job's artefacts check them against that job's fingerprint.
// A Store is safe for concurrent use; Close it when done.
type Store struct {
	b   *blob.Bucket
	out string // the location as given, for messages
	dir string // a local folder: job.json is created by a hard link
	j   *job.Job
}

// Open opens the output location out (a path or URL) to read it.
func Open(ctx context.Context, out string) (*Store, error) { return open(ctx, out, false) }

// Create opens the output location out to write it: a local folder is
// created first.
func Create(ctx context.Context, out string) (*Store, error) { return open(ctx, out, true) }

func open(ctx context.Context, out string, create bool) (*Store, error) {
	l, err := location.Parse(out)
	if err != nil {
		return nil, job.BadJob("--out: %v", err)
	}
	var b *blob.Bucket
	if create {
		b, err = storage.CreatePrefix(ctx, l)
	} else {
		b, err = storage.OpenPrefix(ctx, l)
	}
	if err != nil {
		return nil, err
	}
	s := &Store{b: b, out: out}
	s.dir, _ = l.LocalPath()
	return s, nil
}

// New returns a Store over a bucket that holds one job's output; name
// stands for it in messages. job.json is created with a conditional write
// (blob.WriterOptions.IfNotExist), which fileblob checks within one
// writer only: open local folders with Create.
func New(b *blob.Bucket, name string) *Store { return &Store{b: b, out: name} }

// Close closes the bucket.
func (s *Store) Close() error { return s.b.Close() }

// CheckBucket makes sure that the location's bucket exists and that these
// credentials may list it, as the job's outputs need: a missing bucket is
// a bad job, not an outage to wait out.
func (s *Store) CheckBucket(ctx context.Context) error {
	ok, err := storage.Accessible(ctx, s.b)
	if err != nil {
		return fmt.Errorf("--out %s: list the bucket: %w", s.out, err)
	}
	if !ok {
		return job.BadJob("--out %s: the bucket does not exist", s.out)
	}
	return nil
}

// String returns the location, as given.
func (s *Store) String() string { return s.out }

// Bind makes j the Store's job, as one read before (a worker caches them).
func (s *Store) Bind(j *job.Job) { s.j = j }

// Job returns the bound job, or nil.
func (s *Store) Job() *job.Job { return s.j }

// job returns the bound job; calling a method that needs one on a Store
// without one is a bug.
func (s *Store) job() *job.Job {
	if s.j == nil {
		panic("jobstore: no job bound to the store of " + s.out + " (CreateJob, Load, Watch or Bind first)")
	}
	return s.j
}

// ReadJob reads job.json, returning nil where there is none.
func (s *Store) ReadJob(ctx context.Context) (*job.Job, error) { return s.readJob(ctx, JobKey) }

// ReadWatch reads vog watch's watch.json, returning nil where there is none.
func (s *Store) ReadWatch(ctx context.Context) (*job.Job, error) { return s.readJob(ctx, WatchKey) }

func (s *Store) readJob(ctx context.Context, key string) (*job.Job, error) {
	data, err := storage.ReadAll(ctx, s.b, key)
	if storage.IsNotFound(err) {
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

// CreateJob writes j as job.json unless one is there already: then it
// returns that one and writes nothing. Of two jobs created at once in one
// location, exactly one is written. Local folders get an atomic hard link
// (fileblob's own precondition holds within one writer only); object
// stores a conditional write (S3 If-None-Match, GCS and Azure
// preconditions). j is bound when it is written, or when the one there is
// j and still hashes to its fingerprint.
func (s *Store) CreateJob(ctx context.Context, j *job.Job) (*job.Job, error) {
	created, err := s.create(ctx, JobKey, j.Encode(), "application/json")
	if err != nil {
		return nil, err
	}
	if created {
		s.j = j
		return nil, nil
	}
	old, err := s.ReadJob(ctx)
	if err == nil && old == nil {
		err = fmt.Errorf("%s: %s was there, then was not", s.out, JobKey)
	}
	if err == nil && old.Fingerprint == j.Fingerprint && old.Verify() == nil {
		s.j = old
	}
	return old, err
}

// create writes data to key only if nothing is there, and reports whether
// it did. Local folders get an atomic hard link (fileblob's own
// precondition holds within one writer only); object stores a conditional
// write (S3 If-None-Match, GCS and Azure preconditions). A conditional
// write whose first try created the object, retried by the client after
// its answer was lost, reports false: the caller reads what is there.
func (s *Store) create(ctx context.Context, key string, data []byte, contentType string) (bool, error) {
	var err error
	if s.dir != "" {
		err = linkNew(filepath.Join(s.dir, filepath.FromSlash(key)), data)
	} else {
		// Upload, not WriteAll: azureblob (gocloud.dev v0.47.0) panics
		// closing a writer whose upload failed, as this one does when
		// the object is there (jobstoretest's CreateJob on Azurite).
		err = s.b.Upload(ctx, key, bytes.NewReader(data), &blob.WriterOptions{ContentType: contentType, IfNotExist: true})
	}
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, fs.ErrExist) || gcerrors.Code(err) == gcerrors.FailedPrecondition:
		return false, nil
	}
	return false, fmt.Errorf("write %s: %w", key, err)
}

// linkNew writes data to path only if path does not exist, atomically: a
// temporary file is linked to path, which fails if path exists.
func linkNew(path string, data []byte) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*.tmp")
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

// Load reads and binds the job ref names: job.json, or with ref.Watch
// watch.json cut to its first ref.Watch checkpoints (one window over
// them). It refuses a job of another fingerprint, and a job.json whose
// content no longer hashes to its fingerprint (a watch's grows under its
// first one).
func (s *Store) Load(ctx context.Context, ref job.Ref) (*job.Job, error) {
	key := JobKey
	if ref.Watch > 0 {
		key = WatchKey
	}
	j, err := s.readJob(ctx, key)
	if err != nil {
		return nil, err
	}
	if j == nil {
		return nil, job.BadJob("%s: no %s: the job was not planned there, or its outputs were removed", ref.Out, key)
	}
	if j.Fingerprint != ref.Fingerprint {
		return nil, job.BadJob("%s/%s is job %s, not %s: another job replaced it", ref.Out, key, j.Fingerprint, ref.Fingerprint)
	}
	if ref.Watch == 0 {
		if err := j.Verify(); err != nil {
			return nil, fmt.Errorf("%s/%s: %w", ref.Out, key, err)
		}
	} else {
		if len(j.Checkpoints) < ref.Watch {
			return nil, fmt.Errorf("%s/%s holds %d checkpoints, not yet %d", ref.Out, key, len(j.Checkpoints), ref.Watch)
		}
		j.Checkpoints = j.Checkpoints[:ref.Watch]
		j.Windows = []window.Window{{Name: window.All, Lo: 0, Hi: ref.Watch}}
	}
	s.j = j
	return j, nil
}

// Watch reads and binds vog watch's job of the given fingerprint as it
// is, with every checkpoint added; another watch's is refused.
func (s *Store) Watch(ctx context.Context, fingerprint string) (*job.Job, error) {
	j, err := s.ReadWatch(ctx)
	if err == nil && (j == nil || j.Fingerprint != fingerprint) {
		err = job.BadJob("%s/%s is not watch %s", s.out, WatchKey, fingerprint)
	}
	if err != nil {
		return nil, err
	}
	s.j = j
	return j, nil
}

// WriteWatch writes j, vog watch's job, as watch.json, and binds it.
func (s *Store) WriteWatch(ctx context.Context, j *job.Job) error {
	if err := s.b.WriteAll(ctx, WatchKey, j.Encode(), nil); err != nil {
		return fmt.Errorf("write %s: %w", WatchKey, err)
	}
	s.j = j
	return nil
}

// RemoveOutputs deletes every object a job writes (job.json, watch.json,
// classes.parquet, failures.parquet, _SUCCESS, report.html, shards/,
// scores/), calling removed, where not nil, after each.
func (s *Store) RemoveOutputs(ctx context.Context, removed func(key string)) error {
	for _, prefix := range outputs {
		err := s.list(ctx, prefix, func(key string) error {
			if err := s.b.Delete(ctx, key); err != nil && !storage.IsNotFound(err) {
				return fmt.Errorf("%s: %w", key, err)
			}
			if removed != nil {
				removed(key)
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("remove the old outputs: %w", err)
		}
	}
	return nil
}

// list calls fn with the key of every object under prefix.
// A page whose listing fails for a moment is asked for again
// (storage.List).
func (s *Store) list(ctx context.Context, prefix string, fn func(key string) error) error {
	var fnErr error
	err := storage.List(ctx, s.b, &blob.ListOptions{Prefix: prefix}, func(obj *blob.ListObject) error {
		fnErr = fn(obj.Key)
		return fnErr
	})
	if err != nil && err != fnErr {
		return fmt.Errorf("list %s: %w", prefix, err)
	}
	return err
}

// WriteModel writes an exported --model of the given sha256 (ModelKey),
// unless it is there.
func (s *Store) WriteModel(ctx context.Context, sha256 string, data []byte) error {
	key := ModelKey(sha256)
	if ok, err := storage.Exists(ctx, s.b, key); err != nil || ok {
		return err
	}
	if err := s.b.WriteAll(ctx, key, data, nil); err != nil {
		return fmt.Errorf("write %s: %w", key, err)
	}
	return nil
}

// ReadJob reads the job.json of the output location out.
func ReadJob(ctx context.Context, out string) (*job.Job, error) {
	s, err := Open(ctx, out)
	if err != nil {
		return nil, err
	}
	defer s.Close()
	j, err := s.ReadJob(ctx)
	if err == nil && j == nil {
		err = fmt.Errorf("%s: no %s", out, JobKey)
	}
	return j, err
}
