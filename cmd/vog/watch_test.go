package main_test

import (
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
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
	copyFile := func(src, dst string) {
		data, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(dst+".tmp", data, 0o644); err != nil {
			t.Fatal(err)
		}
		os.Rename(dst+".tmp", dst) // appears whole, as a training script should save
	}
	cmd := exec.Command(bin, "watch", "--run", run, "--out", out, "--state-dir", state, "--poll", "100ms", "--progress", "200ms",
		"--format", "idx", "--dataset", fixtures+"/small", "--threads", "2")
	cmd.Env = append(os.Environ(), "TEMPORAL_ADDRESS=")
	logPath := filepath.Join(t.TempDir(), "watch.log")
	log, _ := os.Create(logPath)
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	defer func() {
		cmd.Process.Signal(syscall.SIGTERM)
		<-done
	}()
	folded := func(n int) {
		t.Helper()
		want := "watching: " + string(rune('0'+n)) + " checkpoint(s) folded"
		for end := time.Now().Add(2 * time.Minute); ; time.Sleep(100 * time.Millisecond) {
			data, _ := os.ReadFile(logPath)
			if strings.Contains(string(data), want) {
				return
			}
			if time.Now().After(end) {
				t.Fatalf("no %q in:\n%s", want, data)
			}
		}
	}
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
	os.WriteFile(filepath.Join(run, "DONE"), nil, 0o644)
	select {
	case err := <-done:
		done <- err
		if err != nil {
			data, _ := os.ReadFile(logPath)
			t.Fatalf("vog watch: %v\n%s", err, data)
		}
	case <-time.After(3 * time.Minute):
		t.Fatal("vog watch did not end after the marker")
	}

	single := t.TempDir()
	if r := runVog(t, scoreArgs(t, single, "--checkpoints", strings.Join(order, ","), "--checkpoint-group", "1")...); r.err != nil {
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
