package storage

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"gocloud.dev/blob"
	"gocloud.dev/gcerrors"
)

// resumeTries is how many times a read is opened again after a transient
// error, with backoff from resumeWait doubling up to 5 s (about 20 s in
// all): object stores reset connections mid-body and answer 503 SlowDown
// under load, and the clients retry a request only until its body starts.
const (
	resumeTries = 8
	resumeWait  = 100 * time.Millisecond
)

// transient reports whether a storage error may pass by trying again: not
// a missing object, a refused precondition or permission, a bad request,
// or the caller's context ending.
func transient(ctx context.Context, err error) bool {
	if err == nil || ctx.Err() != nil || errors.Is(err, context.Canceled) || Refused(err) {
		return false
	}
	switch gcerrors.Code(err) {
	case gcerrors.NotFound, gcerrors.FailedPrecondition, gcerrors.PermissionDenied, gcerrors.InvalidArgument,
		gcerrors.Unimplemented, gcerrors.AlreadyExists, gcerrors.Canceled:
		return false
	}
	return true
}

// backoff waits before try n (from 0), or until ctx ends.
func backoff(ctx context.Context, n int) error {
	t := time.NewTimer(min(resumeWait<<n, 5*time.Second))
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// Reader reads length bytes of an object from an offset, and survives a
// connection reset or a transient error in the middle of the body: it
// opens the rest of the object again and goes on, after checking that the
// object is still the one it was reading (its size and modification time).
type Reader struct {
	ctx         context.Context
	b           *blob.Bucket
	key         string
	off, left   int64 // left < 0: to the end
	r           *blob.Reader
	size        int64
	mod         time.Time
	tries       int
	Resumptions int // how many times the body was opened again
}

// NewReader opens length bytes of the object at key from offset (length <
// 0: to its end) as a Reader. Opening is retried on transient errors.
func NewReader(ctx context.Context, b *blob.Bucket, key string, offset, length int64) (*Reader, error) {
	rd := &Reader{ctx: ctx, b: b, key: key, off: offset, left: length, size: -1}
	if err := rd.open(); err != nil {
		return nil, err
	}
	rd.size, rd.mod = rd.r.Size(), rd.r.ModTime()
	return rd, nil
}

// open opens the rest of the object, retrying transient errors.
func (rd *Reader) open() error {
	for {
		r, err := rd.b.NewRangeReader(rd.ctx, rd.key, rd.off, rd.left, nil)
		if err == nil {
			if rd.size >= 0 && (r.Size() != rd.size || !r.ModTime().Equal(rd.mod)) {
				r.Close()
				return fmt.Errorf("storage: read %s: the object changed while it was read (%d bytes, modified %s; was %d, %s)",
					rd.key, r.Size(), r.ModTime(), rd.size, rd.mod)
			}
			rd.r = r
			return nil
		}
		if !transient(rd.ctx, err) || rd.tries >= resumeTries {
			return err
		}
		if err := backoff(rd.ctx, rd.tries); err != nil {
			return err
		}
		rd.tries++
	}
}

// Size is the size of the whole object.
func (rd *Reader) Size() int64 { return rd.size }

// Read implements io.Reader.
func (rd *Reader) Read(p []byte) (int, error) {
	if rd.left == 0 {
		return 0, io.EOF
	}
	if rd.left > 0 && int64(len(p)) > rd.left {
		p = p[:rd.left]
	}
	for {
		n, err := rd.r.Read(p)
		rd.off += int64(n)
		if rd.left > 0 {
			rd.left -= int64(n)
		}
		if err == io.EOF && rd.left > 0 {
			err = io.ErrUnexpectedEOF // the body ended short of its range
		}
		if err == nil || err == io.EOF || n > 0 || !transient(rd.ctx, err) || rd.tries >= resumeTries {
			if err != nil && err != io.EOF && n > 0 {
				err = nil // the error comes back on the next call
			}
			return n, err
		}
		rd.r.Close()
		rd.r = nil
		if berr := backoff(rd.ctx, rd.tries); berr != nil {
			return 0, berr
		}
		rd.tries++
		rd.Resumptions++
		if oerr := rd.open(); oerr != nil {
			return 0, oerr
		}
	}
}

// Close closes the object.
func (rd *Reader) Close() error {
	if rd.r == nil {
		return nil
	}
	return rd.r.Close()
}

// ReadAll reads the whole object at key (Reader: it survives a connection
// reset mid-body). A missing object is an error for which IsNotFound is
// true.
func ReadAll(ctx context.Context, b *blob.Bucket, key string) ([]byte, error) {
	rd, err := NewReader(ctx, b, key, 0, -1)
	if err != nil {
		return nil, err
	}
	defer rd.Close()
	data := make([]byte, 0, rd.Size())
	for {
		if len(data) == cap(data) {
			data = append(data, 0)[:len(data)]
		}
		n, err := rd.Read(data[len(data):cap(data)])
		data = data[:len(data)+n]
		if err == io.EOF {
			return data, nil
		}
		if err != nil {
			return nil, err
		}
	}
}

// List calls fn with every object that opts selects (nil: all), a page at
// a time. A page whose listing fails with a transient error (the client
// retries a request, not a body cut short) is asked for again, with
// backoff, as reads are. An error from fn stops the listing and is
// returned as it is.
func List(ctx context.Context, b *blob.Bucket, opts *blob.ListOptions, fn func(*blob.ListObject) error) error {
	token := blob.FirstPageToken
	for {
		var page []*blob.ListObject
		var next []byte
		var err error
		for try := 0; ; try++ {
			page, next, err = b.ListPage(ctx, token, 1000, opts)
			if err == nil || !transient(ctx, err) || try >= resumeTries {
				break
			}
			if err := backoff(ctx, try); err != nil {
				return err
			}
		}
		if err != nil {
			return err
		}
		for _, obj := range page {
			if err := fn(obj); err != nil {
				return err
			}
		}
		if len(next) == 0 {
			return nil
		}
		token = next
	}
}

// Accessible reports whether the bucket b exists and may be listed, asking
// again after a transient error as List does; a refusal (Refused) is
// returned as the error.
func Accessible(ctx context.Context, b *blob.Bucket) (bool, error) {
	for try := 0; ; try++ {
		_, _, err := b.ListPage(ctx, blob.FirstPageToken, 1, nil)
		switch {
		case err == nil:
			return true, nil
		case gcerrors.Code(err) == gcerrors.NotFound:
			return false, nil
		case !transient(ctx, err) || try >= resumeTries:
			return false, err
		}
		if err := backoff(ctx, try); err != nil {
			return false, err
		}
	}
}
