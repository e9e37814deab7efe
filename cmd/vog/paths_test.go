package main_test

import (
	"bytes"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestSubmitRelativePaths submits a job with relative paths from one
// working directory to a worker started in another: the paths mean what
// they meant where they were typed (absolute file:// URLs, printed on
// submission), and the rows equal those of vog run.
func TestSubmitRelativePaths(t *testing.T) {
	bin := vog(t)
	abs, err := filepath.Abs(fixtures)
	if err != nil {
		t.Fatal(err)
	}
	port := freePort(t)
	addr := "127.0.0.1:" + strconv.Itoa(port)
	startProcess(t, "server", "--port", strconv.Itoa(port), "--state-dir", t.TempDir())
	faultPoll(t, "vog server on "+addr+" to listen", 2*time.Minute, 100*time.Millisecond, func() bool {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
		}
		return err == nil
	})
	worker := exec.Command(bin, "worker", "--temporal", addr, "--threads", "2")
	worker.Dir = t.TempDir() // elsewhere
	worker.Env = append(os.Environ(), "TEMPORAL_ADDRESS=")
	if err := worker.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { worker.Process.Kill(); worker.Wait() })

	here := t.TempDir()
	if err := os.CopyFS(filepath.Join(here, "ckpt"), os.DirFS(filepath.Join(abs, "ckpt"))); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"small-images-idx3-ubyte.gz", "small-labels-idx1-ubyte.gz"} {
		if err := os.Symlink(filepath.Join(abs, name), filepath.Join(here, name)); err != nil {
			t.Fatal(err)
		}
	}
	run := func(args ...string) (string, string) {
		t.Helper()
		cmd := exec.Command(bin, args...)
		cmd.Dir = here
		cmd.Env = append(os.Environ(), "TEMPORAL_ADDRESS=")
		var so, se bytes.Buffer
		cmd.Stdout, cmd.Stderr = &so, &se
		if err := cmd.Run(); err != nil {
			t.Fatalf("vog %v: %v\n%s", args, err, se.String())
		}
		return so.String(), se.String()
	}
	id, said := run("submit", "--temporal", addr, "--format", "idx", "--dataset", "small", "--checkpoints", "ckpt", "--out", "out", "--threads", "2")
	for _, p := range []string{"small", "ckpt", "out"} {
		if u := "file://" + filepath.Join(here, p); !strings.Contains(said, u) {
			t.Errorf("submit does not say %s:\n%s", u, said)
		}
	}
	run("wait", "--temporal", addr, strings.TrimSpace(id))
	want := readRows(t, func() string {
		out := t.TempDir()
		if r := runVog(t, scoreArgs(t, out)...); r.err != nil {
			t.Fatalf("%v\n%s", r.err, r.stderr)
		}
		return out
	}())
	if got := readRows(t, filepath.Join(here, "out")); len(got) == 0 || !slices.Equal(got, want) {
		t.Errorf("relative paths: %d rows, differing from vog run's %d", len(got), len(want))
	}
}
