package main_test

import (
	"io"
	"log/slog"
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

	enumspb "go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	sdkclient "go.temporal.io/sdk/client"
	tlog "go.temporal.io/sdk/log"

	"github.com/vogscore/vog/job"
	"github.com/vogscore/vog/temporalserver"
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
	faultNeedT10k(t)
	const data = faultT10k
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

	// Kill a worker in the middle of a shard: one the server saw start it.
	c := dialServer(t, addr)
	victim, shard := busy(t, c, id, byPid(workers))
	victim.Process.Signal(syscall.SIGKILL)
	// Its shard stops heartbeating, times out after 3s and is retried on
	// another worker.

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
	// The history says how the shard was done in the end: after a
	// heartbeat timeout, by another worker.
	started := shard.finalAttempt(t, c)
	if started.GetAttempt() < 2 || !strings.Contains(started.GetLastFailure().GetMessage(), "Heartbeat") ||
		strings.HasPrefix(started.GetIdentity(), strconv.Itoa(victim.Process.Pid)+"@") {
		t.Fatalf("the killed worker's shard was not retried elsewhere after a heartbeat timeout: %v", started)
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

func dialServer(t *testing.T, addr string) sdkclient.Client {
	t.Helper()
	c, err := sdkclient.Dial(sdkclient.Options{HostPort: addr, Namespace: temporalserver.Namespace,
		Logger: tlog.NewStructuredLogger(slog.New(slog.NewTextHandler(io.Discard, nil)))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

// activityRef names one activity of a workflow run.
type activityRef struct{ workflow, run, activity string }

// finalAttempt returns the started event of the attempt that ended the
// activity: its attempt number, worker and the failure before it.
func (a activityRef) finalAttempt(t *testing.T, c sdkclient.Client) *historypb.ActivityTaskStartedEventAttributes {
	t.Helper()
	var scheduled int64
	it := c.GetWorkflowHistory(t.Context(), a.workflow, a.run, false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	for it.HasNext() {
		e, err := it.Next()
		if err != nil {
			t.Fatal(err)
		}
		if s := e.GetActivityTaskScheduledEventAttributes(); s != nil && s.GetActivityId() == a.activity {
			scheduled = e.GetEventId()
		}
		if s := e.GetActivityTaskStartedEventAttributes(); s != nil && scheduled != 0 && s.GetScheduledEventId() == scheduled {
			return s
		}
	}
	t.Fatalf("no started event for activity %s of %s", a.activity, a.workflow)
	return nil
}

// byPid maps a worker identity (pid@host@queue) to the worker process of
// that pid, for busy.
func byPid(workers []*exec.Cmd) func(identity string) *exec.Cmd {
	return func(identity string) *exec.Cmd {
		pid, _, _ := strings.Cut(identity, "@")
		for _, w := range workers {
			if strconv.Itoa(w.Process.Pid) == pid {
				return w
			}
		}
		return nil
	}
}

// busy waits for a shard that a worker of interest has begun, and returns
// that worker (as mine names it) and the shard's activity: killing or
// cutting off the worker then loses a shard under way (seen as it begins,
// it has seconds to run), not the moment between two. Begun means the
// server recorded a heartbeat of the attempt: the server marks an activity
// started when it hands the task to a poll, before the worker has it, and a
// worker cut off in that moment never runs the shard at all. mine maps a
// worker identity (the SDK's pid@host@queue) to the test's worker, or to
// the zero value.
func busy[W comparable](t *testing.T, c sdkclient.Client, id string, mine func(identity string) W) (W, activityRef) {
	t.Helper()
	var none W
	var started func(id string) (W, activityRef)
	started = func(id string) (W, activityRef) {
		desc, err := c.DescribeWorkflowExecution(t.Context(), id, "")
		if err != nil {
			return none, activityRef{}
		}
		for _, pa := range desc.GetPendingActivities() {
			if pa.GetActivityType().GetName() != job.ScoreShardActivity || pa.GetState() != enumspb.PENDING_ACTIVITY_STATE_STARTED ||
				pa.GetLastHeartbeatTime() == nil || pa.GetLastHeartbeatTime().AsTime().Before(pa.GetLastStartedTime().AsTime()) {
				continue
			}
			if w := mine(pa.GetLastWorkerIdentity()); w != none {
				return w, activityRef{id, desc.GetWorkflowExecutionInfo().GetExecution().GetRunId(), pa.GetActivityId()}
			}
		}
		for _, child := range desc.GetPendingChildren() {
			if w, a := started(child.GetWorkflowId()); w != none {
				return w, a
			}
		}
		return none, activityRef{}
	}
	for end := time.Now().Add(time.Minute); time.Now().Before(end); time.Sleep(100 * time.Millisecond) {
		if w, a := started(id); w != none {
			return w, a
		}
	}
	t.Fatal("no worker began a shard of the job (a heartbeat recorded) in a minute")
	return none, activityRef{}
}
