package storage

import (
	"context"
	"fmt"

	"gocloud.dev/gcerrors"

	"github.com/vogscore/vog/location"
)

// ReadObject reads a whole object named by URL or path. For a missing
// object, IsNotFound(err) is true.
func ReadObject(ctx context.Context, raw string) ([]byte, error) {
	l, err := location.Parse(raw)
	if err != nil {
		return nil, err
	}
	b, err := Open(ctx, l)
	if err != nil {
		return nil, err
	}
	defer b.Close()
	data, err := ReadAll(ctx, b, l.Key)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", raw, err)
	}
	return data, nil
}

// IsNotFound reports whether err says that an object does not exist.
func IsNotFound(err error) bool { return gcerrors.Code(err) == gcerrors.NotFound }
