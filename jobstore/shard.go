package jobstore

import (
	"context"
	"fmt"
	"strconv"

	"github.com/vogscore/vog/job"
	"github.com/vogscore/vog/shard"
	"github.com/vogscore/vog/storage"
)

// IndexCurrent reports whether the dataset index is there and is the bound
// job's dataset's (by its footer's vog.index_sha256).
func (s *Store) IndexCurrent(ctx context.Context) (bool, error) {
	_, meta, err := storage.ParquetInfo(ctx, s.b, IndexKey)
	if storage.IsNotFound(err) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return meta[IndexMeta] == s.job().IndexSHA256, nil
}

// WriteIndex writes the bound job's dataset index, one row per example in
// dataset order.
func (s *Store) WriteIndex(ctx context.Context, rows []job.IndexRow) error {
	j := s.job()
	return storage.WriteParquet(ctx, s.b, IndexKey, rows, storage.Meta{IndexMeta: j.IndexSHA256, FingerprintMeta: j.Fingerprint})
}

// Index reads the index rows of r by ranged reads, refusing an index of
// another dataset than the bound job's.
func (s *Store) Index(ctx context.Context, r shard.Range) ([]job.IndexRow, error) {
	rows, meta, err := storage.ReadRows[job.IndexRow](ctx, s.b, IndexKey, r.Start, r.Len())
	if err != nil {
		return nil, err
	}
	if want := s.job().IndexSHA256; meta[IndexMeta] != want {
		return nil, job.BadData("%s/%s indexes dataset %q, not this job's %s: plan the job again", s.out, IndexKey, meta[IndexMeta], want)
	}
	return rows, nil
}

// ShardState is what ShardDone found of a shard.
type ShardState struct {
	// Done: the shard's class file, written last, is the bound job's, and
	// the rows and failures files it records are there with its sizes.
	Done bool
	// Why a shard that has a class file is not done: written by another
	// job, a file missing or of another size. Empty where nothing is there.
	Why string
	// Failures are a done shard's failed examples.
	Failures []job.FailureRow
}

// ShardDone reports whether shard i is done (ShardState.Done), and if so
// returns its failures. A shard that is not done is computed again, its
// files overwritten.
func (s *Store) ShardDone(ctx context.Context, i int) (ShardState, error) {
	fp := s.job().Fingerprint
	data, err := storage.ReadAll(ctx, s.b, ShardClassesKey(i))
	if storage.IsNotFound(err) {
		return ShardState{}, nil
	}
	if err != nil {
		return ShardState{}, fmt.Errorf("read %s: %w", ShardClassesKey(i), err)
	}
	meta, err := storage.ParquetMeta(data)
	switch {
	case err != nil:
		return ShardState{Why: fmt.Sprintf("%s: %v", ShardClassesKey(i), err)}, nil
	case meta[FingerprintMeta] != fp:
		return ShardState{Why: fmt.Sprintf("%s written by job %s", ShardClassesKey(i), meta[FingerprintMeta])}, nil
	}
	for _, f := range []struct{ key, meta string }{
		{ShardRowsKey(i), RowsBytesMeta}, {ShardFailuresKey(i), FailuresBytesMeta},
	} {
		attrs, err := s.b.Attributes(ctx, f.key)
		if storage.IsNotFound(err) {
			return ShardState{Why: f.key + " is missing"}, nil
		}
		if err != nil {
			return ShardState{}, fmt.Errorf("%s: %w", f.key, err)
		}
		if size := strconv.FormatInt(attrs.Size, 10); size != meta[f.meta] {
			return ShardState{Why: fmt.Sprintf("%s has %s bytes, not %s", f.key, size, meta[f.meta])}, nil
		}
	}
	failures, meta, err := storage.ReadRows[job.FailureRow](ctx, s.b, ShardFailuresKey(i), 0, -1)
	if err != nil {
		return ShardState{}, err
	}
	if meta[FingerprintMeta] != fp {
		return ShardState{Why: fmt.Sprintf("%s written by job %s", ShardFailuresKey(i), meta[FingerprintMeta])}, nil
	}
	return ShardState{Done: true, Failures: failures}, nil
}

// WriteShard writes shard i's rows and failures, then its class sums
// (sorted by window and class): the class file marks the shard done, with
// the sizes of the other two.
func (s *Store) WriteShard(ctx context.Context, i int, rows []job.ScoreRow, failures []job.FailureRow, classes []job.ShardClassRow) error {
	fp := s.job().Fingerprint
	if err := storage.WriteParquet(ctx, s.b, ShardRowsKey(i), rows, storage.Meta{FingerprintMeta: fp}); err != nil {
		return err
	}
	if err := storage.WriteParquet(ctx, s.b, ShardFailuresKey(i), failures, storage.Meta{FingerprintMeta: fp}); err != nil {
		return err
	}
	marker := storage.Meta{FingerprintMeta: fp}
	for key, m := range map[string]string{ShardRowsKey(i): RowsBytesMeta, ShardFailuresKey(i): FailuresBytesMeta} {
		attrs, err := s.b.Attributes(ctx, key)
		if err != nil {
			return fmt.Errorf("%s: %w", key, err)
		}
		marker[m] = strconv.FormatInt(attrs.Size, 10)
	}
	return storage.WriteParquet(ctx, s.b, ShardClassesKey(i), classes, marker)
}

// ShardRows reads shard i's rows, ShardFailures its failed examples and
// ShardClasses its class sums, each refused (BadData) unless the bound job
// wrote it: a shard reported done whose file was since replaced can be
// told only by running the whole job again.
func (s *Store) ShardRows(ctx context.Context, i int) ([]job.ScoreRow, error) {
	return readOwn[job.ScoreRow](ctx, s, ShardRowsKey(i))
}

// ShardFailures: see ShardRows.
func (s *Store) ShardFailures(ctx context.Context, i int) ([]job.FailureRow, error) {
	return readOwn[job.FailureRow](ctx, s, ShardFailuresKey(i))
}

// ShardClasses: see ShardRows.
func (s *Store) ShardClasses(ctx context.Context, i int) ([]job.ShardClassRow, error) {
	return readOwn[job.ShardClassRow](ctx, s, ShardClassesKey(i))
}

// readOwn reads every row of the Parquet file at key, refusing it (BadData)
// unless the bound job wrote it.
func readOwn[T any](ctx context.Context, s *Store, key string) ([]T, error) {
	data, err := storage.ReadAll(ctx, s.b, key)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", key, err)
	}
	meta, err := storage.ParquetMeta(data)
	if err != nil {
		return nil, job.BadData("%s/%s is not a Parquet file (%v): run the job again to recompute it", s.out, key, err)
	}
	if err := s.own(key, meta); err != nil {
		return nil, err
	}
	return storage.ReadParquetBytes[T](data, key)
}

// own refuses (BadData) a file whose footer metadata meta is not the bound
// job's.
func (s *Store) own(key string, meta storage.Meta) error {
	if got, want := meta[FingerprintMeta], s.job().Fingerprint; got != want {
		return job.BadData("%s/%s was written by job %q, not this job (%s): run the job again to recompute it", s.out, key, got, want)
	}
	return nil
}
