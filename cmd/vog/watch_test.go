package main_test

import (
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vogscore/vog/internal/testref"
)

// TestWatchCLI runs vog watch as a user does while a run trains: the
// checkpoints appear in the run's folder one by one, one is announced from
// elsewhere with vog watch --add (through the watch's embedded server,
// found by its --state-dir), a file that is not a checkpoint is refused
// with the reason, and the marker ends the watch with the rows of vog run
// --checkpoint-group 1 on the same checkpoints.
func TestWatchCLI(t *testing.T) {
	bin := vog(t)
	run, elsewhere, out, state := t.TempDir(), t.TempDir(), t.TempDir(), t.TempDir()
	copyFile := func(src, dst string) { copyWhole(t, src, dst) }
	w := startWatch(t, bin, "--run", run, "--out", out, "--state-dir", state, "--poll", "100ms", "--progress", "200ms",
		"--format", "idx", "--dataset", fixtures+"/small", "--threads", "2")
	folded := w.folded
	var order []string
	for k := 1; k <= 3; k++ {
		dst := filepath.Join(run, "ckpt_"+string(rune('0'+k))+".pt")
		copyFile(filepath.Join(fixtures, "ckpt", "ckpt_"+string(rune('0'+k))+".pt"), dst)
		order = append(order, dst)
		folded(k)
	}
	junk := filepath.Join(elsewhere, "junk.pt")
	os.WriteFile(junk, []byte("not a checkpoint"), 0o644)
	control := func(args ...string) result {
		return runVog(t, append([]string{"watch", "--run", run, "--out", out, "--state-dir", state}, args...)...)
	}
	if r := control("--add", junk); r.err == nil || !strings.Contains(r.stderr, "junk.pt refused") {
		t.Fatalf("a file that is not a checkpoint: %v\n%s", r.err, r.stderr)
	}
	fourth := filepath.Join(elsewhere, "ckpt_4.pt")
	copyFile(filepath.Join(fixtures, "ckpt", "ckpt_4.pt"), fourth)
	if r := control("--add", fourth); r.err != nil {
		t.Fatalf("%v\n%s", r.err, r.stderr)
	}
	order = append(order, fourth)
	folded(4)
	w.finish(run)

	// It said what its state takes: 256 examples of 28x28, one shard.
	if data, _ := os.ReadFile(w.log); !strings.Contains(string(data), "watch state: 1.616 MB per checkpoint (256 examples x 784 pixels x 8 bytes, and their scores), kept under --out; --max-state 100 GB holds 61864 checkpoint(s)") {
		t.Errorf("vog watch did not say what its state takes:\n%s", data)
	}

	watchRowsAsRun(t, out, "--checkpoints", strings.Join(order, ","))
}

// copyWhole copies src to dst so that dst appears whole, as a training
// script should save.
func copyWhole(t *testing.T, src, dst string) {
	t.Helper()
	data, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dst+".tmp", data, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(dst+".tmp", dst); err != nil {
		t.Fatal(err)
	}
}

// watchRun is a vog watch process of a test, its output in log.
type watchRun struct {
	t    *testing.T
	log  string
	done chan error
}

// startWatch starts vog watch with args; it is stopped when the test ends.
func startWatch(t *testing.T, bin string, args ...string) *watchRun {
	t.Helper()
	cmd := exec.Command(bin, append([]string{"watch"}, args...)...)
	cmd.Env = append(os.Environ(), "TEMPORAL_ADDRESS=")
	w := &watchRun{t: t, log: filepath.Join(t.TempDir(), "watch.log"), done: make(chan error, 1)}
	log, _ := os.Create(w.log)
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { w.done <- cmd.Wait() }()
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		w.done <- <-w.done
	})
	return w
}

// folded waits until the watch says it has folded n checkpoints.
func (w *watchRun) folded(n int) {
	w.t.Helper()
	want := fmt.Sprintf("watching: %d checkpoint(s) folded", n)
	for end := time.Now().Add(3 * time.Minute); ; time.Sleep(100 * time.Millisecond) {
		data, _ := os.ReadFile(w.log)
		if strings.Contains(string(data), want) {
			return
		}
		if time.Now().After(end) {
			w.t.Fatalf("no %q in:\n%s", want, data)
		}
	}
}

// finish writes the run's DONE marker and waits for the watch to end well.
func (w *watchRun) finish(run string) {
	w.t.Helper()
	os.WriteFile(filepath.Join(run, "DONE"), nil, 0o644)
	select {
	case err := <-w.done:
		w.done <- err
		if err != nil {
			data, _ := os.ReadFile(w.log)
			w.t.Fatalf("vog watch: %v\n%s", err, data)
		}
	case <-time.After(3 * time.Minute):
		w.t.Fatal("vog watch did not end after the marker")
	}
}

// watchRowsAsRun checks that the rows a watch wrote to out are those of
// vog run with --checkpoint-group 1 and extra, within float tolerance.
func watchRowsAsRun(t *testing.T, out string, extra ...string) {
	t.Helper()
	single := t.TempDir()
	if r := runVog(t, scoreArgs(t, single, append([]string{"--checkpoint-group", "1"}, extra...)...)...); r.err != nil {
		t.Fatalf("%v\n%s", r.err, r.stderr)
	}
	got, want := readRows(t, out), readRows(t, single)
	if len(got) != len(want) || len(got) == 0 {
		t.Fatalf("%d rows, want %d", len(got), len(want))
	}
	for i := range got {
		if rel(got[i].VoG, want[i].VoG) > 1e-5 || math.Abs(got[i].VoGNorm-want[i].VoGNorm) > 1e-4 {
			t.Fatalf("row %d: %+v, want %+v", i, got[i], want[i])
		}
	}
}

// TestWatchMaxState: vog watch refuses, before it scores anything, a run
// whose one checkpoint's state is over --max-state, naming the flag and
// the size; --max-state takes sizes as people write them.
func TestWatchMaxState(t *testing.T) {
	run, out := t.TempDir(), t.TempDir()
	args := func(max string) []string {
		return []string{"watch", "--run", run, "--out", out, "--state-dir", t.TempDir(), "--max-state", max,
			"--format", "idx", "--dataset", fixtures + "/small", "--threads", "2"}
	}
	r := runVog(t, args("1MB")...)
	if r.err == nil || !strings.Contains(r.stderr, "its state would take 1.616 MB per checkpoint") || !strings.Contains(r.stderr, "over --max-state 1 MB: give a larger --max-state") {
		t.Fatalf("a watch over --max-state: %v\n%s%s", r.err, r.stdout, r.stderr)
	}
	if entries, _ := os.ReadDir(out); len(entries) != 0 {
		t.Fatalf("the refused watch wrote %d entries into --out", len(entries))
	}
	if r := runVog(t, args("lots")...); r.err == nil || !strings.Contains(r.stderr, `invalid value "lots" for flag --max-state`) {
		t.Fatalf("--max-state lots: %v\n%s", r.err, r.stderr)
	}
}

// TestWatchTorchvision: vog watch started before the run has written a
// checkpoint, with --model torchvision:resnet18 and --classes, folds
// torchvision reference-script checkpoints as they appear, with the rows
// of vog run on them; without --classes it says to give it.
func TestWatchTorchvision(t *testing.T) {
	bin := vog(t)
	dir := t.TempDir()
	testref.Python(t, "native_checkpoints.py", dir)
	run, out, state := t.TempDir(), t.TempDir(), t.TempDir()
	model := []string{"--channels", "3", "--batch-size", "64", "--model", "torchvision:resnet18"}
	args := append([]string{"--run", run, "--out", out, "--state-dir", state, "--format", "idx", "--dataset", fixtures + "/small",
		"--threads", "2"}, model...)
	if r := runVog(t, append([]string{"watch"}, args...)...); r.err == nil || !strings.Contains(r.stderr, "give --classes") {
		t.Fatalf("a watch of an empty run without --classes: %v\n%s", r.err, r.stderr)
	}
	w := startWatch(t, bin, append([]string{"--poll", "100ms", "--progress", "1s", "--classes", "10"}, args...)...)
	var order []string
	for k := range 3 {
		name := fmt.Sprintf("model_%d.pth", k)
		dst := filepath.Join(run, name)
		copyWhole(t, filepath.Join(dir, "resnet", name), dst)
		order = append(order, dst)
		w.folded(k + 1)
	}
	w.finish(run)
	watchRowsAsRun(t, out, append([]string{"--checkpoints", strings.Join(order, ",")}, model...)...)
}
