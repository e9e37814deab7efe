package jobstore

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"

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
	// Done: the shard's class file, which publishes it, is the bound
	// job's, and the rows and failures files of the attempt it names are
	// there with its sizes.
	Done bool
	// Why a shard that has a class file is not done: written by another
	// job, a file missing or of another size. Empty where nothing is there.
	Why string
	// Attempt names the attempt whose files are the shard's, where Done.
	Attempt string
	// Failures are a done shard's failed examples.
	Failures []job.FailureRow
}

// ShardDone reports whether shard i is done (ShardState.Done), and if so
// returns its failures. A shard that is not done is computed again.
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
	case meta[AttemptMeta] == "":
		return ShardState{Why: fmt.Sprintf("%s names no attempt (an older layout)", ShardClassesKey(i))}, nil
	}
	attempt := meta[AttemptMeta]
	for _, f := range []struct{ key, meta string }{
		{ShardRowsKey(i, attempt), RowsBytesMeta}, {ShardFailuresKey(i, attempt), FailuresBytesMeta},
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
	failures, meta, err := storage.ReadRows[job.FailureRow](ctx, s.b, ShardFailuresKey(i, attempt), 0, -1)
	if err != nil {
		return ShardState{}, err
	}
	if meta[FingerprintMeta] != fp {
		return ShardState{Why: fmt.Sprintf("%s written by job %s", ShardFailuresKey(i, attempt), meta[FingerprintMeta])}, nil
	}
	return ShardState{Done: true, Attempt: attempt, Failures: failures}, nil
}

// WriteShard writes shard i's rows and failures under names of their own
// (this attempt's: a random name), then publishes them by creating the
// shard's class file, which names the attempt and the two files' sizes,
// only if it is not there: of two attempts that write a shard (a worker
// cut off from the server computing on while the shard was given to
// another), the first to publish wins, and the other's files are
// removed, never read. A late writer cannot replace a published shard, so
// the reduce reads rows and class sums of one attempt. A class file that
// does not verify (another job's, its files gone) is replaced.
func (s *Store) WriteShard(ctx context.Context, i int, rows []job.ScoreRow, failures []job.FailureRow, classes []job.ShardClassRow) error {
	fp := s.job().Fingerprint
	var tag [8]byte
	rand.Read(tag[:])
	attempt := hex.EncodeToString(tag[:])
	rk, fk := ShardRowsKey(i, attempt), ShardFailuresKey(i, attempt)
	if err := storage.WriteParquet(ctx, s.b, rk, rows, storage.Meta{FingerprintMeta: fp}); err != nil {
		return err
	}
	if err := storage.WriteParquet(ctx, s.b, fk, failures, storage.Meta{FingerprintMeta: fp}); err != nil {
		return err
	}
	marker := storage.Meta{FingerprintMeta: fp, AttemptMeta: attempt}
	for key, m := range map[string]string{rk: RowsBytesMeta, fk: FailuresBytesMeta} {
		attrs, err := s.b.Attributes(ctx, key)
		if err != nil {
			return fmt.Errorf("%s: %w", key, err)
		}
		marker[m] = strconv.FormatInt(attrs.Size, 10)
	}
	data, err := storage.EncodeParquet(classes, marker)
	if err != nil {
		return err
	}
	key := ShardClassesKey(i)
	for range 3 {
		created, err := s.create(ctx, key, data, "application/vnd.apache.parquet")
		if err != nil {
			return err
		}
		if created {
			s.sweep(ctx, i, attempt)
			return nil
		}
		// A class file is there: ours (a retried request whose first
		// try had created it), another attempt's that won, or a stale
		// one, which is removed and the shard published again.
		st, err := s.ShardDone(ctx, i)
		if err != nil {
			return err
		}
		if st.Done {
			s.sweep(ctx, i, st.Attempt)
			return nil
		}
		if err := s.b.Delete(ctx, key); err != nil && !storage.IsNotFound(err) {
			return fmt.Errorf("replace %s (%s): %w", key, st.Why, err)
		}
	}
	return fmt.Errorf("%s: could not publish shard %d: its class file was replaced as often as it was written", s.out, i)
}

// sweep removes shard i's rows and failures files other than those of
// attempt, the published one: files of attempts that lost, or died
// before they published. It is tidying only (no reader opens a file the
// class file does not name), so its errors are not the shard's: the first
// is returned for tests, and the next attempt to publish sweeps again.
func (s *Store) sweep(ctx context.Context, i int, attempt string) error {
	keep := map[string]bool{ShardRowsKey(i, attempt): true, ShardFailuresKey(i, attempt): true}
	return s.list(ctx, ShardPrefix(i), func(key string) error {
		name := strings.TrimPrefix(key, ShardPrefix(i))
		if keep[key] || !(strings.HasPrefix(name, "rows") || strings.HasPrefix(name, "failures")) || !strings.HasSuffix(name, ".parquet") {
			return nil
		}
		if err := s.b.Delete(ctx, key); err != nil && !storage.IsNotFound(err) {
			return fmt.Errorf("remove %s, of an attempt not published: %w", key, err)
		}
		return nil
	})
}

// ShardKeys lists the keys of shard i's files: its class file, the rows
// and failures of the attempt that published it, and of attempts not
// (yet) removed, and its partial moments files.
func (s *Store) ShardKeys(ctx context.Context, i int) ([]string, error) {
	var keys []string
	err := s.list(ctx, ShardPrefix(i), func(key string) error {
		keys = append(keys, key)
		return nil
	})
	return keys, err
}

// shardAttempt returns the attempt that published shard i, refusing
// (BadData) a class file that is not the bound job's.
func (s *Store) shardAttempt(ctx context.Context, i int) (string, error) {
	key := ShardClassesKey(i)
	data, err := storage.ReadAll(ctx, s.b, key)
	if err != nil {
		return "", fmt.Errorf("read %s: %w", key, err)
	}
	meta, err := storage.ParquetMeta(data)
	if err != nil {
		return "", job.BadData("%s/%s is not a Parquet file (%v): run the job again to recompute it", s.out, key, err)
	}
	if err := s.own(key, meta); err != nil {
		return "", err
	}
	if meta[AttemptMeta] == "" {
		return "", job.BadData("%s/%s names no attempt (an older layout): run the job again to recompute it", s.out, key)
	}
	return meta[AttemptMeta], nil
}

// ShardRows reads shard i's rows, ShardFailures its failed examples and
// ShardClasses its class sums, each refused (BadData) unless the bound job
// wrote it: a shard reported done whose file was since replaced can be
// told only by running the whole job again. Rows and failures are those
// of the attempt the class file names.
func (s *Store) ShardRows(ctx context.Context, i int) ([]job.ScoreRow, error) {
	attempt, err := s.shardAttempt(ctx, i)
	if err != nil {
		return nil, err
	}
	return readOwn[job.ScoreRow](ctx, s, ShardRowsKey(i, attempt))
}

// ShardFailures: see ShardRows.
func (s *Store) ShardFailures(ctx context.Context, i int) ([]job.FailureRow, error) {
	attempt, err := s.shardAttempt(ctx, i)
	if err != nil {
		return nil, err
	}
	return readOwn[job.FailureRow](ctx, s, ShardFailuresKey(i, attempt))
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
