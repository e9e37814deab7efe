package activities

import (
	"context"
	"os"
	"path/filepath"
	"testing"
)

// TestKeptRead: the checkpoint planning kept is returned once, for its own
// URL only; every other read goes to storage.
func TestKeptRead(t *testing.T) {
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a.pt"), filepath.Join(dir, "b.pt")
	for _, p := range []string{a, b} {
		if err := os.WriteFile(p, []byte("stored "+filepath.Base(p)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	ctx := context.Background()
	read := func(k *keptRead, url string) string {
		t.Helper()
		data, err := k.read(ctx, url)
		if err != nil {
			t.Fatal(err)
		}
		return string(data)
	}
	k := &keptRead{}
	k.keep(a, []byte("kept"))
	for _, c := range []struct{ url, want string }{{b, "stored b.pt"}, {a, "kept"}, {a, "stored a.pt"}} {
		if got := read(k, c.url); got != c.want {
			t.Errorf("read %s: %q, want %q", filepath.Base(c.url), got, c.want)
		}
	}
	var none *keptRead
	none.keep(a, []byte("kept"))
	if got := read(none, a); got != "stored a.pt" {
		t.Errorf("a nil keptRead read %q", got)
	}
}
