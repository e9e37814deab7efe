// Package short keeps `go test -short ./...` a quick inner loop: tests
// that need a real part (a Temporal server, libtorch, Python, a browser,
// the vog binary) call Skip first, and run in the full suite
// (scripts/test.sh) only.
package short

import "testing"

// Skip skips t under -short, saying what it needs.
func Skip(t testing.TB, needs string) {
	t.Helper()
	if testing.Short() {
		t.Skipf("-short: needs %s (scripts/test.sh runs it)", needs)
	}
}
