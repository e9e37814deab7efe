package storage

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"runtime"
	"sync"
	"sync/atomic"

	"github.com/parquet-go/parquet-go"
	"gocloud.dev/blob"

	"github.com/vogscore/vog/job"
	"github.com/vogscore/vog/location"
)

// ScanChunk is the most rows ScanScores and ScanParquet hand over at once.
const ScanChunk = 1024

// ScanScores visits every row of a finished job's result at out, in part
// order (the order of ReadScores), after checking _SUCCESS: a partial or
// running job has none. It calls fn with chunks of at most ScanChunk rows,
// one call at a time. Parts are decoded ahead by GOMAXPROCS goroutines (8
// at most), each holding at most three chunks, so its memory does not
// depend on the number of rows. fn may keep copies of the rows (their
// strings are their own) but not the slice, which is reused. An error from
// fn stops the scan and is returned as it is. Finally the number of rows is
// checked against _SUCCESS; as fn has seen them by then, a caller should act
// on what it gathered only when ScanScores returns nil.
func ScanScores(ctx context.Context, out string, fn func([]job.ScoreRow) error) error {
	l, err := location.Parse(out)
	if err != nil {
		return err
	}
	b, err := OpenPrefix(ctx, l)
	if err != nil {
		return err
	}
	defer b.Close()
	s, err := readSuccess(ctx, b, out)
	if err != nil {
		return err
	}
	n, err := scanParts(ctx, b, s.Parts, fn)
	if err != nil {
		return err
	}
	if n != s.Rows {
		return fmt.Errorf("%s: %d rows in the parts, %s says %d", out, n, SuccessKey, s.Rows)
	}
	return nil
}

// scanWorkers bounds the parts decoded at once.
func scanWorkers() int { return min(runtime.GOMAXPROCS(0), 8) }

// scanParts decodes parts concurrently and hands their chunks to fn in
// order. Part i's chunks go through feeds[i], which holds two at most; a
// worker takes the next part only when it has sent all of its part, so the
// part fn waits for is always being decoded or done.
func scanParts(ctx context.Context, b *blob.Bucket, parts []job.Part, fn func([]job.ScoreRow) error) (int64, error) {
	type chunk struct {
		rows []job.ScoreRow
		err  error
	}
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel() // first: unblocks the workers
	feeds := make([]chan chunk, len(parts))
	for i := range feeds {
		feeds[i] = make(chan chunk, 2)
	}
	free := make(chan []job.ScoreRow, 4*scanWorkers()) // chunks fn is done with
	var next atomic.Int64
	for range min(scanWorkers(), len(parts)) {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= len(parts) {
					return
				}
				get := func() []job.ScoreRow {
					select {
					case buf := <-free:
						return buf
					default:
						return make([]job.ScoreRow, ScanChunk)
					}
				}
				err := scanParquet(ctx, b, parts[i].Key, get, func(rows []job.ScoreRow) error {
					select {
					case feeds[i] <- chunk{rows: rows}:
						return nil
					case <-ctx.Done():
						return ctx.Err()
					}
				})
				if err != nil {
					select {
					case feeds[i] <- chunk{err: err}:
					case <-ctx.Done():
					}
				}
				close(feeds[i])
			}
		})
	}
	var n int64
	for i := range feeds {
		for c := range feeds[i] {
			if c.err != nil {
				return n, c.err
			}
			n += int64(len(c.rows))
			if err := fn(c.rows); err != nil {
				return n, err
			}
			select {
			case free <- c.rows[:cap(c.rows)]:
			default:
			}
		}
	}
	return n, ctx.Err()
}

// readSuccess reads and decodes _SUCCESS.
func readSuccess(ctx context.Context, b *blob.Bucket, out string) (job.Success, error) {
	var s job.Success
	data, err := b.ReadAll(ctx, SuccessKey)
	if err != nil {
		return s, fmt.Errorf("%s: no finished result (%s): %w", out, SuccessKey, err)
	}
	if err := json.Unmarshal(data, &s); err != nil {
		return s, fmt.Errorf("%s/%s: %w", out, SuccessKey, err)
	}
	return s, nil
}

// ScanParquet reads the Parquet file at key in chunks of at most ScanChunk
// rows, by ranged reads, calling fn with each; the chunk is reused between
// calls. An error from fn stops the scan and is returned as it is.
func ScanParquet[T any](ctx context.Context, b *blob.Bucket, key string, fn func([]T) error) error {
	var buf []T
	get := func() []T {
		if buf == nil {
			buf = make([]T, ScanChunk)
		}
		return buf
	}
	return scanParquet(ctx, b, key, get, fn)
}

// scanParquet is ScanParquet reading each chunk into a slice of ScanChunk
// rows from get; fn owns the chunk it is given.
func scanParquet[T any](ctx context.Context, b *blob.Bucket, key string, get func() []T, fn func([]T) error) error {
	attrs, err := b.Attributes(ctx, key)
	if err != nil {
		return fmt.Errorf("storage: read %s: %w", key, err)
	}
	f, err := parquet.OpenFile(&blobReaderAt{ctx: ctx, b: b, key: key}, attrs.Size)
	if err != nil {
		return fmt.Errorf("storage: read %s: %w", key, err)
	}
	r := parquet.NewGenericReader[T](f)
	defer r.Close()
	var done int64
	for done < r.NumRows() {
		if err := ctx.Err(); err != nil {
			return err
		}
		buf := get()
		k, err := r.Read(buf)
		if err != nil && !errors.Is(err, io.EOF) {
			return fmt.Errorf("storage: read %s: row %d: %w", key, done, err)
		}
		if k == 0 {
			break
		}
		done += int64(k)
		if err := fn(buf[:k]); err != nil {
			return err
		}
	}
	if done != r.NumRows() {
		return fmt.Errorf("storage: read %s: %d rows of %d", key, done, r.NumRows())
	}
	return nil
}
