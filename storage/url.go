// Package storage opens object storage from URLs, names the objects of a
// job's output (layout.go; docs/design.md, "Storage layout"), and reads and
// writes them: job.json, Parquet files, partial moments.
//
// # URLs
//
// A location is a gocloud.dev blob URL naming an object or a prefix:
// file:///data/train, s3://bucket/path?region=us-east-1, gs://bucket/path,
// azblob://container/path. A plain path (./data, /data) means file://.
// Blob drivers are registered by blank imports in cmd/vog.
package storage

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"gocloud.dev/blob"
)

// Location is a parsed storage URL: the bucket to open and the key (object
// name or prefix, without a leading slash) within it.
type Location struct {
	BucketURL string
	Key       string
}

func (l Location) String() string {
	u, err := url.Parse(l.BucketURL)
	if err != nil {
		return l.BucketURL + l.Key
	}
	if u.Scheme == "file" {
		return "file:///" + l.Key
	}
	u.Path = "/" + l.Key
	return u.String()
}

// Canonical is the URL Parse makes of a path or URL: one file or folder
// named two ways (a path, a file:// URL) gets one name.
func Canonical(raw string) (string, error) {
	l, err := Parse(raw)
	if err != nil {
		return "", err
	}
	return l.String(), nil
}

// Join returns the location of name under l, as a prefix joins a key.
func (l Location) Join(name string) Location {
	k := strings.TrimSuffix(l.Key, "/")
	if k == "" {
		l.Key = name
	} else {
		l.Key = k + "/" + name
	}
	return l
}

// Parse splits a URL or local path into bucket and key. For file URLs the
// bucket is the file system root, so that every local path is a key; for
// other schemes it is the URL's host with its query (driver options).
func Parse(raw string) (Location, error) {
	if raw == "" {
		return Location{}, fmt.Errorf("storage: empty location")
	}
	if !strings.Contains(raw, "://") {
		abs, err := filepath.Abs(raw)
		if err != nil {
			return Location{}, fmt.Errorf("storage: %s: %w", raw, err)
		}
		return Location{BucketURL: "file:///?metadata=skip&no_tmp_dir=true", Key: strings.TrimPrefix(filepath.ToSlash(abs), "/")}, nil
	}
	u, err := url.Parse(raw)
	if err != nil {
		return Location{}, fmt.Errorf("storage: %s: %w", raw, err)
	}
	key := strings.TrimPrefix(u.Path, "/")
	if u.Scheme == "file" {
		q := u.Query()
		if !q.Has("metadata") {
			// No .attrs sidecar files beside the outputs.
			q.Set("metadata", "skip")
		}
		// Temporary files beside their target, so the final rename never
		// crosses file systems.
		q.Set("no_tmp_dir", "true")
		return Location{BucketURL: "file:///?" + q.Encode(), Key: key}, nil
	}
	bucket := url.URL{Scheme: u.Scheme, Host: u.Host, RawQuery: u.RawQuery}
	return Location{BucketURL: bucket.String(), Key: key}, nil
}

// Open opens the bucket of a location.
func Open(ctx context.Context, l Location) (*blob.Bucket, error) {
	b, err := blob.OpenBucket(ctx, l.BucketURL)
	if err != nil {
		return nil, fmt.Errorf("storage: open %s: %w", l, err)
	}
	return b, nil
}

// localPath returns the folder of a file:// location.
func localPath(l Location) (string, bool) {
	if !strings.HasPrefix(l.BucketURL, "file:") {
		return "", false
	}
	return "/" + l.Key, true
}

// CreatePrefix is OpenPrefix for writing: for local paths it first creates
// the directory.
func CreatePrefix(ctx context.Context, l Location) (*blob.Bucket, error) {
	if path, ok := localPath(l); ok {
		if err := os.MkdirAll(path, 0o755); err != nil {
			return nil, fmt.Errorf("storage: %w", err)
		}
	}
	return OpenPrefix(ctx, l)
}

// OpenPrefix opens l as a directory: a bucket whose keys are relative to
// l.Key.
func OpenPrefix(ctx context.Context, l Location) (*blob.Bucket, error) {
	b, err := Open(ctx, l)
	if err != nil {
		return nil, err
	}
	if l.Key == "" {
		return b, nil
	}
	return blob.PrefixedBucket(b, strings.TrimSuffix(l.Key, "/")+"/"), nil
}
