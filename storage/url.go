// Package storage opens object storage at a location (package location) and
// reads and writes the formats vog keeps there: Parquet files with footer
// metadata, read by ranges or scanned in chunks (rows.go, scan.go), and
// partial moments files (moments.go). What a job's output holds, and the
// rules for reusing it, are package jobstore's. Blob drivers are
// registered by blank imports in cmd/vog.
package storage

import (
	"context"
	"fmt"
	"os"
	"strings"

	"github.com/vogscore/vog/location"
	"gocloud.dev/blob"
)

// Open opens the bucket of a location.
func Open(ctx context.Context, l location.Location) (*blob.Bucket, error) {
	b, err := blob.OpenBucket(ctx, l.BucketURL)
	if err != nil {
		return nil, fmt.Errorf("storage: open %s: %w", l, err)
	}
	return b, nil
}

// CreatePrefix is OpenPrefix for writing: for local paths it first creates
// the directory.
func CreatePrefix(ctx context.Context, l location.Location) (*blob.Bucket, error) {
	if path, ok := l.LocalPath(); ok {
		if err := os.MkdirAll(path, 0o755); err != nil {
			return nil, fmt.Errorf("storage: %w", err)
		}
	}
	return OpenPrefix(ctx, l)
}

// OpenPrefix opens l as a directory: a bucket whose keys are relative to
// l.Key.
func OpenPrefix(ctx context.Context, l location.Location) (*blob.Bucket, error) {
	b, err := Open(ctx, l)
	if err != nil {
		return nil, err
	}
	if l.Key == "" {
		return b, nil
	}
	return blob.PrefixedBucket(b, strings.TrimSuffix(l.Key, "/")+"/"), nil
}
