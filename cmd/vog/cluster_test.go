package main_test

import (
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// startProcess starts a long-running vog process that the test stops.
func startProcess(t *testing.T, args ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(vog(t), args...)
	cmd.Env = append(os.Environ(), "TEMPORAL_ADDRESS=")
	log, err := os.Create(filepath.Join(t.TempDir(), "log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		cmd.Wait()
	})
	return cmd
}

func freePort(t *testing.T) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// TestWorkerKilledMidShard runs a job on a Temporal server with three
// worker processes, writing to the S3 server where there is one, kills one
// worker with SIGKILL in the middle of a shard, and checks that the job
// completes with the rows of a one-worker run.
func TestWorkerKilledMidShard(t *testing.T) {
	const data = "/usr/share/datasets/fashion-mnist/t10k"
	if _, err := os.Stat(data + "-images-idx3-ubyte.gz"); err != nil {
		t.Skip(err)
	}
	vog(t)
	port := freePort(t)
	addr := "127.0.0.1:" + strconv.Itoa(port)
	startProcess(t, "server", "--port", strconv.Itoa(port), "--state-dir", t.TempDir())
	var workers []*exec.Cmd
	for range 3 {
		workers = append(workers, startProcess(t, "worker", "--temporal", addr, "--threads", "1"))
	}

	args := func(out string) []string {
		return []string{"--format", "idx", "--dataset", data, "--checkpoints", fixtures + "/ckpt",
			"--out", out, "--shard-size", "500", "--heartbeat-timeout", "3s"}
	}
	out := t.TempDir()
	fetch := func() string { return out }
	if os.Getenv("VOG_S3_URL") != "" || os.Getenv("VOG_REQUIRE_S3") != "" {
		u := s3Bucket(t)
		prefix := "cluster-" + strconv.FormatInt(time.Now().UnixNano(), 36) + "/out"
		out = s3Key(u, prefix)
		fetch = func() string { return fetchS3(t, u, prefix) }
	}
	var sub result
	for range 50 { // the server takes a moment to start
		if sub = runVog(t, append([]string{"submit", "--temporal", addr}, args(out)...)...); sub.err == nil {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if sub.err != nil {
		t.Fatalf("submit: %v\n%s", sub.err, sub.stderr)
	}
	id := strings.TrimSpace(sub.stdout)

	// Kill a worker once the job is under way, in the middle of its shard.
	deadline := time.Now().Add(time.Minute)
	for {
		st := runVog(t, "status", "--temporal", addr, id)
		if strings.Contains(st.stdout, "running") && strings.Contains(st.stdout, "3 running") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("job did not get going:\n%s%s", st.stdout, st.stderr)
		}
		time.Sleep(300 * time.Millisecond)
	}
	time.Sleep(time.Second)
	workers[0].Process.Signal(syscall.SIGKILL)
	// Its shard stops heartbeating, times out after 3s and is retried on
	// another worker.
	moved := false
	for end := time.Now().Add(30 * time.Second); !moved && time.Now().Before(end); time.Sleep(200 * time.Millisecond) {
		st := runVog(t, "status", "--temporal", addr, id)
		moved = strings.Contains(st.stdout, "retrying: ScoreShard (attempt 2)") && strings.Contains(st.stdout, "Heartbeat")
	}
	if !moved {
		t.Fatal("the killed worker's shard was not retried elsewhere")
	}

	w := runVog(t, "wait", "--temporal", addr, "--progress", "1h", id)
	if w.err != nil {
		t.Fatalf("wait: %v\n%s", w.err, w.stderr)
	}
	if !strings.Contains(w.stdout, "wrote 10000 rows") {
		t.Fatalf("wait output:\n%s", w.stdout)
	}
	st := runVog(t, "status", "--temporal", addr, id)
	if !strings.Contains(st.stdout, "completed") || !strings.Contains(st.stdout, "20 done, 0 failed, 20 total") {
		t.Fatalf("status after the job:\n%s", st.stdout)
	}

	// An undisturbed run on one machine, with one shard and the workers'
	// thread count, gives the same rows, bit for bit: batches are aligned
	// to the dataset, so neither the shard size nor the retry changes what
	// the engine computes (another thread count would, within the
	// tolerance TestThreadCounts measures).
	single := t.TempDir()
	r := runVog(t, append([]string{"run", "--state-dir", t.TempDir(), "--shard-size", "10000", "--threads", "1"}, args(single)[:8]...)...)
	if r.err != nil {
		t.Fatalf("%v\n%s", r.err, r.stderr)
	}
	if !slices.Equal(readRows(t, fetch()), readRows(t, single)) {
		t.Fatal("rows after losing a worker differ from a one-worker run's")
	}
}
