package fault

import (
	"errors"
	"io"
	"testing"
)

func TestMark(t *testing.T) {
	bad := errors.New("bad input")
	err := Mark(bad, "file %s: %w", "x.pt", io.ErrUnexpectedEOF)
	if err.Error() != "file x.pt: unexpected EOF" {
		t.Fatalf("message %q", err)
	}
	if !errors.Is(err, bad) || !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatal("mark or cause lost")
	}
	wrapped := errors.Join(errors.New("context"), err)
	if !errors.Is(wrapped, bad) {
		t.Fatal("mark lost when wrapped")
	}
}
