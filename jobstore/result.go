package jobstore

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/vogscore/vog/job"
	"github.com/vogscore/vog/storage"
)

// WriteClasses writes failures.parquet, then classes.parquet: the merged
// failed examples of every shard and the class statistics.
func (s *Store) WriteClasses(ctx context.Context, classes []job.ClassRow, failures []job.FailureRow) error {
	meta := storage.Meta{FingerprintMeta: s.job().Fingerprint}
	if err := storage.WriteParquet(ctx, s.b, FailuresKey, failures, meta); err != nil {
		return err
	}
	return storage.WriteParquet(ctx, s.b, ClassesKey, classes, meta)
}

// Classes reads classes.parquet, refused (BadData) unless the bound job
// wrote it.
func (s *Store) Classes(ctx context.Context) ([]job.ClassRow, error) {
	return readOwn[job.ClassRow](ctx, s, ClassesKey)
}

// WritePart writes the result part of shard i.
func (s *Store) WritePart(ctx context.Context, i int, rows []job.ScoreRow) error {
	return storage.WriteParquet(ctx, s.b, PartKey(i), rows, storage.Meta{FingerprintMeta: s.job().Fingerprint})
}

// Finish writes _SUCCESS, last: the bound job's result parts, one per
// shard, with their sizes, and its counts of rows and failed examples. It
// first deletes every other Parquet file under scores/ (another job's that
// held the location before), so that the folder holds this result only.
func (s *Store) Finish(ctx context.Context, rows, failures int64) ([]job.Part, error) {
	j := s.job()
	parts := make([]job.Part, 0, j.Shards)
	ours := map[string]bool{}
	for i := range j.Shards {
		attrs, err := s.b.Attributes(ctx, PartKey(i))
		if err != nil {
			return nil, fmt.Errorf("part %d: %w", i, err)
		}
		parts = append(parts, job.Part{Key: PartKey(i), Size: attrs.Size})
		ours[PartKey(i)] = true
	}
	err := s.list(ctx, PartsPrefix, func(key string) error {
		if ours[key] || !strings.HasSuffix(key, ".parquet") {
			return nil
		}
		if err := s.b.Delete(ctx, key); err != nil && !storage.IsNotFound(err) {
			return fmt.Errorf("remove %s, another job's: %w", key, err)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	data, _ := json.MarshalIndent(job.Success{Fingerprint: j.Fingerprint, Rows: rows, Failures: failures, Parts: parts}, "", "  ")
	if err := s.b.WriteAll(ctx, SuccessKey, append(data, '\n'), nil); err != nil {
		return nil, fmt.Errorf("write %s: %w", SuccessKey, err)
	}
	return parts, nil
}

// Success reads _SUCCESS: the job's result is complete. A Store with a job
// bound refuses another job's.
func (s *Store) Success(ctx context.Context) (job.Success, error) {
	var v job.Success
	data, err := storage.ReadAll(ctx, s.b, SuccessKey)
	if err != nil {
		return v, fmt.Errorf("%s: no finished result (%s): %w", s.out, SuccessKey, err)
	}
	if err := json.Unmarshal(data, &v); err != nil {
		return v, fmt.Errorf("%s/%s: %w", s.out, SuccessKey, err)
	}
	if s.j != nil && v.Fingerprint != s.j.Fingerprint {
		return v, job.BadData("%s/%s is the result of job %q, not this job (%s)", s.out, SuccessKey, v.Fingerprint, s.j.Fingerprint)
	}
	return v, nil
}

// Scan visits every row of the finished result, in part order, after
// reading _SUCCESS (Success): a partial or running job has none. It calls
// fn with chunks of at most storage.ScanChunk rows, one call at a time,
// decoding parts ahead with bounded memory (storage.ScanParts); fn may keep
// copies of the rows (their strings are their own) but not the slice,
// which is reused. An error from fn stops the scan and is returned as it
// is. Each part must carry the fingerprint _SUCCESS names; finally the
// number of rows is checked against _SUCCESS. As fn has seen the rows by
// then, a caller should act on what it gathered only when Scan returns nil.
func (s *Store) Scan(ctx context.Context, fn func([]job.ScoreRow) error) error {
	done, err := s.Success(ctx)
	if err != nil {
		return err
	}
	keys := make([]string, len(done.Parts))
	for i, p := range done.Parts {
		keys[i] = p.Key
	}
	check := func(key string, meta storage.Meta) error {
		if got := meta[FingerprintMeta]; got != done.Fingerprint {
			return job.BadData("%s/%s was written by job %q, not the job %s names (%s)", s.out, key, got, SuccessKey, done.Fingerprint)
		}
		return nil
	}
	n, err := storage.ScanParts(ctx, s.b, keys, check, fn)
	if err != nil {
		return err
	}
	if n != done.Rows {
		return fmt.Errorf("%s: %d rows in the parts, %s says %d", s.out, n, SuccessKey, done.Rows)
	}
	return nil
}

// ReadScores reads every row of the finished result, in part order: Scan,
// gathered.
func (s *Store) ReadScores(ctx context.Context) ([]job.ScoreRow, error) {
	var rows []job.ScoreRow
	err := s.Scan(ctx, func(chunk []job.ScoreRow) error {
		rows = append(rows, chunk...)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return rows, nil
}

// ScanScores is Store.Scan of the output location out.
func ScanScores(ctx context.Context, out string, fn func([]job.ScoreRow) error) error {
	s, err := Open(ctx, out)
	if err != nil {
		return err
	}
	defer s.Close()
	return s.Scan(ctx, fn)
}

// ReadScores is Store.ReadScores of the output location out.
func ReadScores(ctx context.Context, out string) ([]job.ScoreRow, error) {
	s, err := Open(ctx, out)
	if err != nil {
		return nil, err
	}
	defer s.Close()
	return s.ReadScores(ctx)
}

// Finished reports whether the output location out holds a finished
// result: its _SUCCESS is there.
func Finished(ctx context.Context, out string) (bool, error) {
	s, err := Open(ctx, out)
	if err != nil {
		return false, err
	}
	defer s.Close()
	return storage.Exists(ctx, s.b, SuccessKey)
}
