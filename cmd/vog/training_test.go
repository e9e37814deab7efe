package main_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestSubmitFromTraining runs examples/training/train_and_submit.py, a
// training script whose last line submits its run (state dicts saved per
// epoch, the architecture exported as TorchScript) to a vog server, twice:
// both runs print the same job, and the second submit computes nothing.
func TestSubmitFromTraining(t *testing.T) {
	bin := vog(t)
	if _, err := os.Stat("/usr/bin/python3"); err != nil {
		t.Skip(err)
	}
	port := freePort(t)
	addr := "127.0.0.1:" + strconv.Itoa(port)
	startProcess(t, "server", "--port", strconv.Itoa(port), "--state-dir", t.TempDir())
	startProcess(t, "worker", "--temporal", addr, "--threads", "2")
	dir := t.TempDir()
	run, out := filepath.Join(dir, "run", "ckpt"), filepath.Join(dir, "scores")
	submit := func() string {
		t.Helper()
		var last []byte
		for end := time.Now().Add(time.Minute); time.Now().Before(end); time.Sleep(300 * time.Millisecond) {
			cmd := exec.Command("/usr/bin/python3", "../../examples/training/train_and_submit.py", run, out)
			cmd.Env = append(os.Environ(), "TEMPORAL_ADDRESS="+addr, "VOG_BIN="+bin)
			data, err := cmd.CombinedOutput()
			if err == nil {
				return strings.TrimSpace(string(data))
			}
			last = data // the server may still be starting
		}
		t.Fatalf("train_and_submit.py: %s", last)
		return ""
	}
	id := submit()
	if !strings.HasPrefix(id, "vog-") {
		t.Fatalf("the script printed %q, not a job id", id)
	}
	w := runVog(t, "wait", "--temporal", addr, "--progress", "1h", id)
	if w.err != nil || !strings.Contains(w.stdout, "wrote 256 rows") || !strings.Contains(w.stdout, "(0 reused)") {
		t.Fatalf("wait: %v\n%s%s", w.err, w.stdout, w.stderr)
	}
	if again := submit(); again != id {
		t.Fatalf("the same run submitted twice gave jobs %s and %s", id, again)
	}
	w = runVog(t, "wait", "--temporal", addr, "--progress", "1h", id)
	if w.err != nil || !strings.Contains(w.stdout, "(1 reused)") {
		t.Fatalf("the second submit computed again: %v\n%s%s", w.err, w.stdout, w.stderr)
	}
}

// TestTrainingCallbacks runs examples/training/test_callbacks.py: the
// Lightning callback imports lightning.pytorch (Lightning 2.x), else
// pytorch_lightning (stub modules stand in for both: neither is installed
// here), and exports and submits at the end of fit; vog_submit.submit
// raises vog's own message when vog refuses (this vog binary, asked for a
// format that does not exist, and with no server to submit to).
func TestTrainingCallbacks(t *testing.T) {
	bin := vog(t)
	if _, err := os.Stat("/usr/bin/python3"); err != nil {
		t.Skip(err)
	}
	cmd := exec.Command("/usr/bin/python3", "-m", "unittest", "-v", "test_callbacks.py")
	cmd.Dir = "../../examples/training"
	cmd.Env = append(os.Environ(), "VOG_BIN="+bin, "TEMPORAL_ADDRESS=", "PYTHONDONTWRITEBYTECODE=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("test_callbacks.py: %v\n%s", err, out)
	}
	t.Logf("%s", out)
	if strings.Contains(string(out), "skipped") && os.Getenv("VOG_REQUIRE_TORCH") != "" {
		t.Fatalf("test_callbacks.py skipped tests (is python3-torch installed?):\n%s", out)
	}
}
