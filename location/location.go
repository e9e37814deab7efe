// Package location names where data lives: a gocloud.dev blob URL
// (file:///data/train, s3://bucket/path?region=us-east-1, gs://bucket/path,
// azblob://container/path) or a local path, which means file://. It is URL
// and path syntax only, with no I/O and no blob driver, so that the job
// contract and the client can name locations without linking storage.
package location

import (
	"fmt"
	"net/url"
	"path/filepath"
	"strings"
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
		return "file:///" + fileEscaper.Replace(l.Key)
	}
	u.Path = "/" + l.Key
	return u.String()
}

// fileEscaper escapes what would end a file URL's path: a glob's ?, a #,
// and % itself.
var fileEscaper = strings.NewReplacer("%", "%25", "?", "%3F", "#", "%23")

// Canonical is the URL Parse makes of a path or URL: one file or folder
// named two ways (a path, a file:// URL) gets one name.
func Canonical(raw string) (string, error) {
	l, err := Parse(raw)
	if err != nil {
		return "", err
	}
	return l.String(), nil
}

// LocalPath returns the file system path of a file:// location.
func (l Location) LocalPath() (string, bool) {
	if !strings.HasPrefix(l.BucketURL, "file:") {
		return "", false
	}
	return "/" + l.Key, true
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
		return Location{}, fmt.Errorf("location: empty location")
	}
	if !strings.Contains(raw, "://") {
		abs, err := filepath.Abs(raw)
		if err != nil {
			return Location{}, fmt.Errorf("location: %s: %w", raw, err)
		}
		return Location{BucketURL: "file:///?metadata=skip&no_tmp_dir=true", Key: strings.TrimPrefix(filepath.ToSlash(abs), "/")}, nil
	}
	u, err := url.Parse(raw)
	if err != nil {
		return Location{}, fmt.Errorf("location: %s: %w", raw, err)
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
