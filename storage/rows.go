package storage

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"

	"github.com/parquet-go/parquet-go"
	"gocloud.dev/blob"
	"gocloud.dev/gcerrors"
)

// Meta is the key-value metadata of a Parquet file's footer (package
// jobstore writes the job's fingerprint there).
type Meta map[string]string

// ParquetMeta returns the footer metadata of a Parquet file held in data.
func ParquetMeta(data []byte) (Meta, error) {
	f, err := parquet.OpenFile(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		return nil, err
	}
	return fileMeta(f), nil
}

// WriteParquet writes rows to key as one Parquet file with the given
// footer metadata. The object appears only if everything was written: a
// failed write leaves any earlier object.
func WriteParquet[T any](ctx context.Context, b *blob.Bucket, key string, rows []T, meta Meta) (err error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	w, err := b.NewWriter(ctx, key, &blob.WriterOptions{ContentType: "application/vnd.apache.parquet"})
	if err != nil {
		return fmt.Errorf("storage: write %s: %w", key, err)
	}
	if err = encodeParquet(w, rows, meta); err != nil {
		cancel() // abandons the object
		w.Close()
		return fmt.Errorf("storage: write %s: %w", key, err)
	}
	if err := w.Close(); err != nil {
		return fmt.Errorf("storage: write %s: %w", key, err)
	}
	return nil
}

// EncodeParquet returns rows as one Parquet file with the given footer
// metadata, as WriteParquet writes it.
func EncodeParquet[T any](rows []T, meta Meta) ([]byte, error) {
	var buf bytes.Buffer
	if err := encodeParquet(&buf, rows, meta); err != nil {
		return nil, fmt.Errorf("storage: %w", err)
	}
	return buf.Bytes(), nil
}

func encodeParquet[T any](w io.Writer, rows []T, meta Meta) error {
	opts := []parquet.WriterOption{parquet.Compression(&parquet.Zstd)}
	for _, k := range slices.Sorted(maps.Keys(meta)) {
		opts = append(opts, parquet.KeyValueMetadata(k, meta[k]))
	}
	pw := parquet.NewGenericWriter[T](w, opts...)
	if _, err := pw.Write(rows); err != nil {
		return err
	}
	return pw.Close()
}

// ReadParquet reads rows [offset, offset+limit) of the Parquet file at key;
// limit < 0 reads to the end.
func ReadParquet[T any](ctx context.Context, b *blob.Bucket, key string, offset, limit int64) ([]T, error) {
	rows, _, err := ReadRows[T](ctx, b, key, offset, limit)
	return rows, err
}

// ReadRows is ReadParquet that also returns the file's footer metadata,
// read with the rows.
func ReadRows[T any](ctx context.Context, b *blob.Bucket, key string, offset, limit int64) ([]T, Meta, error) {
	attrs, err := b.Attributes(ctx, key)
	if err != nil {
		return nil, nil, fmt.Errorf("storage: read %s: %w", key, err)
	}
	// Ranged reads: a shard reads its slice of a large index, not the file.
	f, err := parquet.OpenFile(&blobReaderAt{ctx: ctx, b: b, key: key}, attrs.Size)
	if err != nil {
		return nil, nil, fmt.Errorf("storage: read %s: %w", key, err)
	}
	r := parquet.NewGenericReader[T](f)
	defer r.Close()
	n := r.NumRows()
	if offset > n {
		offset = n
	}
	if limit < 0 || offset+limit > n {
		limit = n - offset
	}
	if err := r.SeekToRow(offset); err != nil {
		return nil, nil, fmt.Errorf("storage: read %s: %w", key, err)
	}
	rows := make([]T, limit)
	for got := 0; got < len(rows); {
		k, err := r.Read(rows[got:])
		got += k
		if err != nil {
			if errors.Is(err, io.EOF) && got == len(rows) {
				break
			}
			return nil, nil, fmt.Errorf("storage: read %s: row %d: %w", key, offset+int64(got), err)
		}
	}
	return rows, fileMeta(f), nil
}

// ReadParquetBytes reads every row of a Parquet file held in data; key
// names it in errors.
func ReadParquetBytes[T any](data []byte, key string) ([]T, error) {
	f, err := parquet.OpenFile(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		return nil, fmt.Errorf("storage: read %s: %w", key, err)
	}
	r := parquet.NewGenericReader[T](f)
	defer r.Close()
	rows := make([]T, r.NumRows())
	for got := 0; got < len(rows); {
		k, err := r.Read(rows[got:])
		got += k
		if err != nil && !(errors.Is(err, io.EOF) && got == len(rows)) {
			return nil, fmt.Errorf("storage: read %s: row %d: %w", key, got, err)
		}
	}
	return rows, nil
}

// ParquetInfo returns the number of rows of the Parquet file at key and its
// footer metadata, reading only the footer.
func ParquetInfo(ctx context.Context, b *blob.Bucket, key string) (int64, Meta, error) {
	attrs, err := b.Attributes(ctx, key)
	if err != nil {
		return 0, nil, fmt.Errorf("storage: %s: %w", key, err)
	}
	f, err := parquet.OpenFile(&blobReaderAt{ctx: ctx, b: b, key: key}, attrs.Size)
	if err != nil {
		return 0, nil, fmt.Errorf("storage: %s: %w", key, err)
	}
	return f.NumRows(), fileMeta(f), nil
}

// fileMeta returns the footer metadata of an open Parquet file.
func fileMeta(f *parquet.File) Meta {
	meta := Meta{}
	for _, kv := range f.Metadata().KeyValueMetadata {
		meta[kv.Key] = kv.Value
	}
	return meta
}

// blobReaderAt reads an object by ranges.
type blobReaderAt struct {
	ctx context.Context
	b   *blob.Bucket
	key string
}

func (r *blobReaderAt) ReadAt(p []byte, off int64) (int, error) {
	rr, err := NewReader(r.ctx, r.b, r.key, off, int64(len(p)))
	if err != nil {
		return 0, err
	}
	defer rr.Close()
	n, err := io.ReadFull(rr, p)
	if errors.Is(err, io.ErrUnexpectedEOF) {
		err = io.EOF
	}
	return n, err
}

// Exists reports whether key exists in b.
func Exists(ctx context.Context, b *blob.Bucket, key string) (bool, error) {
	ok, err := b.Exists(ctx, key)
	if err != nil && gcerrors.Code(err) != gcerrors.NotFound {
		return false, fmt.Errorf("storage: %s: %w", key, err)
	}
	return ok, nil
}
