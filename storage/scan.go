package storage

import (
	"context"
	"errors"
	"fmt"
	"io"
	"runtime"
	"sync"
	"sync/atomic"

	"github.com/parquet-go/parquet-go"
	"gocloud.dev/blob"
)

// ScanChunk is the most rows ScanParts and ScanParquet hand over at once.
const ScanChunk = 1024

// scanWorkers bounds the parts decoded at once.
func scanWorkers() int { return min(runtime.GOMAXPROCS(0), 8) }

// ScanParts visits every row of the Parquet files at keys, in order, and
// returns how many it visited. It calls fn with chunks of at most ScanChunk
// rows, one call at a time. Files are decoded ahead by GOMAXPROCS
// goroutines (8 at most), each holding at most three chunks, so its memory
// does not depend on the number of rows. fn may keep copies of the rows
// but not the slice, which is reused. check, where not nil, sees each
// file's footer metadata before its rows are read, and an error from it
// stops the scan, as one from fn does; either is returned as it is.
//
// Part i's chunks go through feeds[i], which holds two at most; a worker
// takes the next part only when it has sent all of its part, so the part
// fn waits for is always being decoded or done.
func ScanParts[T any](ctx context.Context, b *blob.Bucket, keys []string, check func(key string, meta Meta) error, fn func([]T) error) (int64, error) {
	type chunk struct {
		rows []T
		err  error
	}
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel() // first: unblocks the workers
	feeds := make([]chan chunk, len(keys))
	for i := range feeds {
		feeds[i] = make(chan chunk, 2)
	}
	free := make(chan []T, 4*scanWorkers()) // chunks fn is done with
	var next atomic.Int64
	for range min(scanWorkers(), len(keys)) {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= len(keys) {
					return
				}
				get := func() []T {
					select {
					case buf := <-free:
						return buf
					default:
						return make([]T, ScanChunk)
					}
				}
				err := scanParquet(ctx, b, keys[i], check, get, func(rows []T) error {
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
	return scanParquet(ctx, b, key, nil, get, fn)
}

// scanParquet is ScanParquet reading each chunk into a slice of ScanChunk
// rows from get, after check (where not nil) has seen the footer's
// metadata; fn owns the chunk it is given.
func scanParquet[T any](ctx context.Context, b *blob.Bucket, key string, check func(string, Meta) error, get func() []T, fn func([]T) error) error {
	attrs, err := b.Attributes(ctx, key)
	if err != nil {
		return fmt.Errorf("storage: read %s: %w", key, err)
	}
	f, err := parquet.OpenFile(&blobReaderAt{ctx: ctx, b: b, key: key}, attrs.Size)
	if err != nil {
		return fmt.Errorf("storage: read %s: %w", key, err)
	}
	if check != nil {
		if err := check(key, fileMeta(f)); err != nil {
			return err
		}
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
