package main_test

// End-to-end fault tests: each injects one kind of fault into a real job
// (real processes, the real Fashion-MNIST test set, a real S3 server) and
// compares the rows it ends with against an undisturbed run's, bit for bit.
// What they measured is in docs/reliability.md.

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/parquet-go/parquet-go"

	"github.com/vogscore/vog/job"
	"github.com/vogscore/vog/jobstore"
	"github.com/vogscore/vog/storage"
)

// faultT10k is the Fashion-MNIST test set (10,000 images) that the fault
// tests score: long enough to be interrupted in the middle.
const faultT10k = "/usr/share/datasets/fashion-mnist/t10k"

func faultNeedT10k(t *testing.T) {
	t.Helper()
	if _, err := os.Stat(faultT10k + "-images-idx3-ubyte.gz"); err != nil {
		t.Skip(err)
	}
}

// faultJob returns the flags of a job scoring the test set with the fixture
// checkpoints into out.
func faultJob(out, shardSize string, extra ...string) []string {
	return append([]string{"--format", "idx", "--dataset", faultT10k, "--checkpoints", fixtures + "/ckpt",
		"--out", out, "--shard-size", shardSize}, extra...)
}

// faultBaseline runs the same job undisturbed, on one machine with the
// libtorch threads of the faulty run's gradient workers (so that the rows
// are bit-identical), into a new folder, and returns its rows. A job is
// run once per test binary: tests of the same job share its rows.
func faultBaseline(t *testing.T, shardSize, threads string, extra ...string) []job.ScoreRow {
	t.Helper()
	key := strings.Join(append([]string{shardSize, threads}, extra...), " ")
	v, _ := faultBaselines.LoadOrStore(key, &faultRun{})
	b := v.(*faultRun)
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.rows != nil {
		return b.rows
	}
	out := t.TempDir()
	args := append([]string{"run", "--state-dir", t.TempDir(), "--threads", threads}, faultJob(out, shardSize, extra...)...)
	if r := runVog(t, args...); r.err != nil {
		t.Fatalf("undisturbed run: %v\n%s", r.err, r.stderr)
	}
	rows := readRows(t, out)
	if len(rows) != 10000 {
		t.Fatalf("the undisturbed run wrote %d rows, want 10000", len(rows))
	}
	b.rows = rows
	return rows
}

// faultBaselines holds the rows of the undisturbed runs, by job.
var faultBaselines sync.Map

type faultRun struct {
	mu   sync.Mutex
	rows []job.ScoreRow
}

// faultProc is a long-running process (vog, versitygw) that a test reads
// the output of while it runs, and stops, kills or waits for.
type faultProc struct {
	name           string
	cmd            *exec.Cmd
	stdout, stderr string // files holding its output
	done           chan struct{}
	err            error // its exit status, once done is closed
}

// faultStart starts bin with args and the environment plus env. The process
// is stopped when the test ends, and its output logged if the test failed.
func faultStart(t *testing.T, name, bin string, env []string, args ...string) *faultProc {
	t.Helper()
	dir := t.TempDir()
	p := &faultProc{name: name, stdout: filepath.Join(dir, "stdout"), stderr: filepath.Join(dir, "stderr"), done: make(chan struct{})}
	so, err := os.Create(p.stdout)
	if err != nil {
		t.Fatal(err)
	}
	se, err := os.Create(p.stderr)
	if err != nil {
		t.Fatal(err)
	}
	p.cmd = exec.Command(bin, args...)
	p.cmd.Env = append(append(os.Environ(), "TEMPORAL_ADDRESS="), env...)
	p.cmd.Stdout, p.cmd.Stderr = so, se
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	go func() {
		p.err = p.cmd.Wait()
		so.Close()
		se.Close()
		close(p.done)
	}()
	t.Cleanup(func() {
		p.stop()
		if t.Failed() {
			t.Logf("--- %s (%s %s), %v:\n%s", name, filepath.Base(bin), strings.Join(args, " "), p.err, faultTail(p.output(), 6000))
		}
	})
	return p
}

// output returns what the process wrote to stdout, then to stderr.
func (p *faultProc) output() string {
	so, _ := os.ReadFile(p.stdout)
	se, _ := os.ReadFile(p.stderr)
	return string(so) + string(se)
}

func (p *faultProc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// waitExit waits up to d for the process to end on its own.
func (p *faultProc) waitExit(d time.Duration) bool {
	select {
	case <-p.done:
		return true
	case <-time.After(d):
		return false
	}
}

// kill ends the process with SIGKILL, as a crash or a lost machine would.
func (p *faultProc) kill() {
	p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
}

// stop asks the process to end (SIGTERM), and kills it after 15 s.
func (p *faultProc) stop() {
	if p.exited() {
		return
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	if !p.waitExit(15 * time.Second) {
		p.kill()
	}
}

func faultTail(s string, n int) string {
	if len(s) > n {
		return "..." + s[len(s)-n:]
	}
	return s
}

// faultClock returns a function that logs a line with the time since the
// call, so that a test's log reads as the timeline of its faults.
func faultClock(t *testing.T) func(format string, args ...any) {
	start := time.Now()
	return func(format string, args ...any) {
		t.Helper()
		t.Logf("[%6.1fs] %s", time.Since(start).Seconds(), fmt.Sprintf(format, args...))
	}
}

// faultSummary returns the lines of a job's summary: its counts and times.
func faultSummary(log string) string {
	var lines []string
	for _, l := range strings.Split(log, "\n") {
		if strings.HasPrefix(l, "scored ") || strings.HasPrefix(l, "time: ") {
			lines = append(lines, l)
		}
	}
	return strings.Join(lines, "; ")
}

// faultPoll calls cond every interval until it holds, and fails the test
// after timeout; it returns how long it took.
func faultPoll(t *testing.T, what string, timeout, interval time.Duration, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > timeout {
			t.Fatalf("%s: not after %s", what, timeout)
		}
		time.Sleep(interval)
	}
	return time.Since(start)
}

// faultListening waits for a server process to accept connections on
// addr, and fails the test if it exits first.
func faultListening(t *testing.T, name, addr string, p *faultProc) {
	t.Helper()
	faultPoll(t, name+" listening", 30*time.Second, 50*time.Millisecond, func() bool {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
		}
		return err == nil || p.exited()
	})
	if p.exited() {
		t.Fatalf("%s exited: %v\n%s", name, p.err, p.output())
	}
}

// faultWait follows job id on the server at addr with vog wait until it
// ends, within limit, and fails the test unless it completed; it returns
// vog wait's process (its output holds the summary).
func faultWait(t *testing.T, addr, id string, limit time.Duration) *faultProc {
	t.Helper()
	w := faultStart(t, "wait", vog(t), nil, "wait", "--temporal", addr, "--progress", "1s", id)
	if !w.waitExit(limit) {
		t.Fatalf("the job did not end within %s", limit)
	}
	if w.err != nil {
		t.Fatalf("vog wait: %v", w.err)
	}
	return w
}

// faultSubmit submits a job to the server at addr, waiting for the server
// to come up, and returns the job's id.
func faultSubmit(t *testing.T, addr string, args ...string) string {
	t.Helper()
	var sub result
	faultPoll(t, "vog submit", time.Minute, 200*time.Millisecond, func() bool {
		sub = runVog(t, append([]string{"submit", "--temporal", addr}, args...)...)
		return sub.err == nil
	})
	return strings.TrimSpace(sub.stdout)
}

var faultShardsDoneRE = regexp.MustCompile(`shards (\d+) done`)

// faultStatus runs vog status and returns its output and the number of
// shards done it reports (-1 where it reports none).
func faultStatus(t *testing.T, addr, id string) (string, int) {
	st := runVog(t, "status", "--temporal", addr, "--server-wait", "5s", id)
	m := faultShardsDoneRE.FindStringSubmatch(st.stdout)
	if m == nil {
		return st.stdout + st.stderr, -1
	}
	n, _ := strconv.Atoi(m[1])
	return st.stdout, n
}

// faultCount counts the files matching a glob pattern.
func faultCount(pattern string) int {
	m, _ := filepath.Glob(pattern)
	return len(m)
}

func faultExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// faultAllWritten returns a condition that holds once each of a job's n
// shards has its class file under the local folder out; it looks only for
// those still missing, so that it can be polled often.
func faultAllWritten(out string, n int) func() bool {
	missing := make([]string, n)
	for i := range missing {
		missing[i] = filepath.Join(out, jobstore.ShardClassesKey(i))
	}
	return func() bool {
		missing = slices.DeleteFunc(missing, faultExists)
		return len(missing) == 0
	}
}

// faultReduceStarted reports whether the reduce has written anything under
// the local folder out: the merged classes or failures, or a result part.
func faultReduceStarted(out string) bool {
	return faultExists(filepath.Join(out, jobstore.ClassesKey)) || faultExists(filepath.Join(out, jobstore.FailuresKey)) ||
		faultCount(filepath.Join(out, "scores", "part-*.parquet")) > 0
}

var faultReduceRE = regexp.MustCompile(`reduce ([0-9.]+)s`)

// faultReduceSeconds reads the reduce time from a job's summary.
func faultReduceSeconds(t *testing.T, summary string) float64 {
	t.Helper()
	m := faultReduceRE.FindStringSubmatch(summary)
	if m == nil {
		t.Fatalf("no reduce time in the summary:\n%s", summary)
	}
	s, _ := strconv.ParseFloat(m[1], 64)
	return s
}

// faultRetries returns the distinct "retrying: ..." lines a progress log
// holds, without their error text.
func faultRetries(log string) []string {
	var seen []string
	for _, line := range strings.Split(log, "\n") {
		_, r, ok := strings.Cut(line, "retrying: ")
		if !ok {
			continue
		}
		if i := strings.Index(r, "):"); i >= 0 {
			r = r[:i+1]
		}
		if !slices.Contains(seen, r) {
			seen = append(seen, r)
		}
	}
	return seen
}

// faultCheckParquet opens a Parquet file with parquet-go and reads every
// row of it: a file cut short, or not yet whole, fails.
func faultCheckParquet(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	pf, err := parquet.OpenFile(f, st.Size())
	if err != nil {
		return err
	}
	var n int64
	buf := make([]parquet.Row, 256)
	for _, rg := range pf.RowGroups() {
		rows := rg.Rows()
		for {
			k, err := rows.ReadRows(buf)
			n += int64(k)
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				rows.Close()
				return fmt.Errorf("row %d: %w", n, err)
			}
		}
		rows.Close()
	}
	if n != pf.NumRows() {
		return fmt.Errorf("read %d rows of %d", n, pf.NumRows())
	}
	return nil
}

// faultWatchParquet checks every *.parquet file under dir, each time one
// appears or changes, until the returned function is called; that returns
// how many versions of files it checked and what was wrong with any.
func faultWatchParquet(dir string) func() (checked int, bad []string) {
	type version struct {
		size int64
		mod  time.Time
	}
	seen := map[string]version{}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var checked int
	var bad []string
	scan := func() {
		filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() || !strings.HasSuffix(path, ".parquet") {
				return nil
			}
			info, err := d.Info()
			if err != nil {
				return nil // replaced or removed since it was listed
			}
			v := version{info.Size(), info.ModTime()}
			if seen[path] == v {
				return nil
			}
			seen[path] = v
			checked++
			if err := faultCheckParquet(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
				bad = append(bad, fmt.Sprintf("%s (%d bytes): %v", path, v.size, err))
			}
			return nil
		})
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			scan()
			select {
			case <-stop:
				scan()
				return
			case <-time.After(20 * time.Millisecond):
			}
		}
	}()
	return func() (int, []string) {
		close(stop)
		wg.Wait()
		return checked, bad
	}
}

// faultStopWatch stops a faultWatchParquet, and fails the test for every
// partial file it saw at a final key.
func faultStopWatch(t *testing.T, stop func() (int, []string)) {
	t.Helper()
	checked, bad := stop()
	t.Logf("checked %d versions of Parquet files as they appeared", checked)
	for _, b := range bad {
		t.Errorf("partial Parquet file at a final key: %s", b)
	}
}

// TestServerRestartMidJob kills the Temporal server (vog server, SIGKILL)
// while a worker scores a job's shards, and starts it again on the same
// port and state folder 8 seconds later: vog wait, which was following the
// job, waits the outage out, and the job completes with the rows of an
// undisturbed run.
//
// The shard in flight at the kill is finished by its worker during the
// outage, but the SDK gives up reporting it after 10 s, so the server
// moves it to a worker again only after --heartbeat-timeout (10 s here,
// where the default of a minute would make the test slower); the retry
// finds the shard's outputs and reuses them.
func TestServerRestartMidJob(t *testing.T) {
	faultNeedT10k(t)
	bin := vog(t)
	port := strconv.Itoa(freePort(t))
	addr := "127.0.0.1:" + port
	state := t.TempDir()
	serverArgs := []string{"server", "--port", port, "--state-dir", state}
	server := faultStart(t, "server", bin, nil, serverArgs...)
	faultStart(t, "worker", bin, nil, "worker", "--temporal", addr, "--threads", "1")
	out := t.TempDir()
	shardClasses := filepath.Join(out, "shards", "*", "classes.parquet")
	clock := faultClock(t)
	id := faultSubmit(t, addr, faultJob(out, "512", "--heartbeat-timeout", "10s")...) // 20 shards
	clock("job submitted")
	wait := faultStart(t, "wait", bin, nil, "wait", "--temporal", addr, "--progress", "1s", id)

	// Kill the server while a shard is being scored, a few shards in.
	var before int
	faultPoll(t, "shards under way", 3*time.Minute, 500*time.Millisecond, func() bool {
		var st string
		st, before = faultStatus(t, addr, id)
		return strings.Contains(st, "1 running") && before >= 2
	})
	server.kill()
	killed := time.Now()
	clock("server killed, %d of 20 shards done", before)
	const outage = 8 * time.Second
	time.Sleep(outage)
	if wait.exited() {
		t.Fatalf("vog wait ended while the server was down (%v):\n%s", wait.err, wait.output())
	}
	faultStart(t, "server, restarted", bin, nil, serverArgs...)
	restarted := time.Now()
	clock("server restarted after %s", restarted.Sub(killed).Round(100*time.Millisecond))

	// The worker reconnects, and shards are done again.
	atRestart := faultCount(shardClasses)
	recovered := faultPoll(t, "a shard done after the restart", 3*time.Minute, 50*time.Millisecond, func() bool {
		return faultCount(shardClasses) > atRestart || wait.exited()
	})
	clock("a shard written %s after the restart (%d were when it came back)", recovered.Round(100*time.Millisecond), atRestart)
	if !wait.waitExit(5 * time.Minute) {
		t.Fatal("vog wait did not end within 5 minutes of the restart")
	}
	finished := time.Since(restarted)
	if wait.err != nil {
		t.Fatalf("vog wait reported the job failed: %v", wait.err)
	}
	log := wait.output()
	if !strings.Contains(log, "wrote 10000 rows") {
		t.Fatalf("vog wait's output:\n%s", log)
	}
	clock("job done, %s after the restart: %s", finished.Round(100*time.Millisecond), faultSummary(log))
	t.Logf("vog wait said the server did not answer: %v; retried: %s", strings.Contains(log, "does not answer"), strings.Join(faultRetries(log), "; "))

	got := readRows(t, out)
	if !slices.Equal(got, faultBaseline(t, "512", "1")) {
		t.Fatal("rows after the server restart differ from an undisturbed run's")
	}
	t.Logf("%d rows, equal to the undisturbed run's: 0 lost", len(got))
}

// faultVersitygw returns the versitygw binary: $VOG_VERSITYGW, else the one
// in $GOPATH/bin (scripts/test.sh installs it). Without one the test is
// skipped, unless VOG_REQUIRE_S3 is set.
func faultVersitygw(t *testing.T) string {
	t.Helper()
	bin := os.Getenv("VOG_VERSITYGW")
	if bin == "" {
		gopath := os.Getenv("GOPATH")
		if gopath == "" {
			if out, err := exec.Command("go", "env", "GOPATH").Output(); err == nil {
				gopath = strings.TrimSpace(string(out))
			}
		}
		if gopath != "" {
			bin = filepath.Join(strings.Split(gopath, string(os.PathListSeparator))[0], "bin", "versitygw")
		}
	}
	if _, err := os.Stat(bin); bin == "" || err != nil {
		if os.Getenv("VOG_REQUIRE_S3") != "" {
			t.Fatalf("VOG_REQUIRE_S3 is set but there is no versitygw (%q; set VOG_VERSITYGW)", bin)
		}
		t.Skipf("no versitygw (%q): set VOG_VERSITYGW, or go install github.com/versity/versitygw/cmd/versitygw@v1.8.0", bin)
	}
	return bin
}

// TestStorageOutage stops the S3 server that holds a job's --out for 60
// seconds while shards are being scored, and again for 60 seconds once
// the reduce has begun: the job waits both out and completes with the
// rows of an undisturbed run.
func TestStorageOutage(t *testing.T) {
	faultNeedT10k(t)
	bin := vog(t)
	gw := faultVersitygw(t)
	const outage = 60 * time.Second

	// An S3 server of our own over a folder, so that the test can stop it
	// and read what it holds.
	root := t.TempDir()
	const bucket = "vog-outage"
	if err := os.Mkdir(filepath.Join(root, bucket), 0o755); err != nil {
		t.Fatal(err)
	}
	s3Addr := "127.0.0.1:" + strconv.Itoa(freePort(t))
	const key, secret = "vogoutage", "vogoutagesecret"
	startS3 := func(name string) *faultProc {
		p := faultStart(t, name, gw, []string{"ROOT_ACCESS_KEY=" + key, "ROOT_SECRET_KEY=" + secret}, "--port", s3Addr, "posix", root)
		faultListening(t, name, s3Addr, p)
		return p
	}
	s3 := startS3("versitygw")
	out := "s3://" + bucket + "/job/out?endpoint=http://" + s3Addr + "&region=us-east-1&use_path_style=true"
	local := filepath.Join(root, bucket, "job", "out") // the same objects, as the server stores them
	shardClasses := filepath.Join(local, "shards", "*", "classes.parquet")

	clock := faultClock(t)
	run := faultStart(t, "run", bin, []string{"AWS_ACCESS_KEY_ID=" + key, "AWS_SECRET_ACCESS_KEY=" + secret},
		append([]string{"run", "--state-dir", t.TempDir(), "--threads", "2", "--heartbeat-timeout", "10s", "--progress", "1s"},
			faultJob(out, "128")...)...) // 79 shards
	clock("vog run started, --out on S3")

	// Outage 1, during the map: a few shards in.
	faultPoll(t, "3 shards scored", 3*time.Minute, 20*time.Millisecond, func() bool { return faultCount(shardClasses) >= 3 || run.exited() })
	if run.exited() {
		t.Fatalf("the job ended early: %v", run.err)
	}
	s3.kill()
	down := time.Now()
	before := faultCount(shardClasses)
	clock("S3 killed, %d of 79 shards written", before)
	// The CPU is idle while the job waits: run the undisturbed job now.
	want := faultBaseline(t, "128", "2")
	clock("undisturbed run done")
	time.Sleep(time.Until(down.Add(outage)))
	if run.exited() {
		t.Fatalf("the job ended during the map's storage outage: %v\n%s", run.err, faultTail(run.output(), 4000))
	}
	s3 = startS3("versitygw, after the map outage")
	up := time.Now()
	clock("S3 back after %s", up.Sub(down).Round(100*time.Millisecond))
	mapRecovered := faultPoll(t, "a shard scored after the outage", 3*time.Minute, 50*time.Millisecond, func() bool { return faultCount(shardClasses) > before })
	clock("a shard written, %s after S3 came back", mapRecovered.Round(100*time.Millisecond))

	// Outage 2, during the reduce: the moment it writes its first object
	// (the merged failures or classes, or a part), with the rest of the
	// reduce still to write.
	faultPoll(t, "the reduce under way", 3*time.Minute, 2*time.Millisecond, func() bool { return faultReduceStarted(local) || run.exited() })
	if run.exited() {
		t.Fatalf("the job ended before its reduce: %v", run.err)
	}
	s3.kill()
	down2 := time.Now()
	parts := faultCount(filepath.Join(local, "scores", "part-*.parquet"))
	clock("S3 killed as the reduce wrote its first object (merged classes %v, failures %v, %d of 79 parts)",
		faultExists(filepath.Join(local, jobstore.ClassesKey)), faultExists(filepath.Join(local, jobstore.FailuresKey)), parts)
	if faultExists(filepath.Join(local, jobstore.SuccessKey)) {
		t.Fatal("the reduce had finished before the storage outage")
	}
	time.Sleep(time.Until(down2.Add(outage)))
	if run.exited() {
		t.Fatalf("the job ended during the reduce's storage outage: %v\n%s", run.err, faultTail(run.output(), 4000))
	}
	startS3("versitygw, after the reduce outage")
	up2 := time.Now()
	clock("S3 back after %s", up2.Sub(down2).Round(100*time.Millisecond))
	if !run.waitExit(5 * time.Minute) {
		t.Fatal("the job did not end within 5 minutes of the second outage")
	}
	reduceRecovered := time.Since(up2)
	if run.err != nil {
		t.Fatalf("the job failed: %v\n%s", run.err, faultTail(run.output(), 4000))
	}
	log := run.output()
	clock("job done, %s after S3 came back: %s", reduceRecovered.Round(100*time.Millisecond), faultSummary(log))
	if !strings.Contains(log, "wrote 10000 rows") {
		t.Fatalf("output:\n%s", log)
	}
	// The reduce was held up by the outage, not done before or after it.
	reduce := faultReduceSeconds(t, log)
	retries := faultRetries(log)
	t.Logf("retried: %s", strings.Join(retries, "; "))
	if reduce < outage.Seconds()-5 {
		t.Errorf("the reduce took %.1fs: the %s outage did not hold it up", reduce, outage)
	}
	if !slices.ContainsFunc(retries, func(r string) bool {
		return strings.HasPrefix(r, "MergeClasses") || strings.HasPrefix(r, "WriteScores") || strings.HasPrefix(r, "Finish")
	}) {
		t.Errorf("no reduce activity was retried: %q", retries)
	}

	got := readRows(t, local)
	if !slices.Equal(got, want) {
		t.Fatal("rows after two storage outages differ from an undisturbed run's")
	}
	t.Logf("%d rows, equal to the undisturbed run's: 0 lost", len(got))
}

// TestReduceWorkerKilled runs the gradient and reduce queues in separate
// worker processes and kills the reduce worker (SIGKILL) twice: the moment
// the last shard is written, before the reduce starts, and in the middle of
// writing the result parts; a new reduce worker takes over each time. The
// job completes with the rows of an undisturbed run, and no Parquet file at
// a final key is ever partial: every one opens and reads whole whenever it
// appears or changes, and _SUCCESS lists parts of the sizes they have.
func TestReduceWorkerKilled(t *testing.T) {
	faultNeedT10k(t)
	bin := vog(t)
	port := strconv.Itoa(freePort(t))
	addr := "127.0.0.1:" + port
	faultStart(t, "server", bin, nil, "server", "--port", port, "--state-dir", t.TempDir())
	faultStart(t, "gradient worker", bin, nil, "worker", "--temporal", addr, "--queue", "gradient", "--threads", "1")
	reduceWorker := func(name string) *faultProc {
		return faultStart(t, name, bin, nil, "worker", "--temporal", addr, "--queue", "reduce")
	}
	reducer := reduceWorker("reduce worker 1")
	out := t.TempDir()
	stopWatch := faultWatchParquet(out)
	clock := faultClock(t)
	id := faultSubmit(t, addr, faultJob(out, "128", "--heartbeat-timeout", "3s")...)
	clock("job submitted")
	const shards = 79
	partsGlob := filepath.Join(out, "scores", "part-*.parquet")

	// Kill 1: the moment the last shard's class file appears.
	faultPoll(t, "every shard scored", 4*time.Minute, 2*time.Millisecond, faultAllWritten(out, shards))
	reducer.kill()
	clock("all %d shards written: reduce worker 1 killed (reduce begun writing: %v)", shards, faultReduceStarted(out))
	reducer = reduceWorker("reduce worker 2")

	// Kill 2: in the middle of writing the parts.
	faultPoll(t, "the first part", 2*time.Minute, 2*time.Millisecond, func() bool { return faultCount(partsGlob) > 0 })
	reducer.kill()
	kill2 := time.Now()
	parts := faultCount(partsGlob)
	clock("first part written: reduce worker 2 killed with %d of %d parts written", parts, shards)
	if parts >= shards || faultExists(filepath.Join(out, jobstore.SuccessKey)) {
		t.Fatalf("kill 2 came after the parts were written (%d of %d)", parts, shards)
	}
	reduceWorker("reduce worker 3")
	for end := time.Now().Add(time.Minute); time.Now().Before(end); time.Sleep(200 * time.Millisecond) {
		st, _ := faultStatus(t, addr, id)
		if i := strings.Index(st, "retrying: WriteScores"); i >= 0 {
			line, _, _ := strings.Cut(st[i:], "\n")
			clock("%s", line)
			break
		}
		if strings.Contains(st, ": completed") {
			break
		}
	}

	w := faultStart(t, "wait", bin, nil, "wait", "--temporal", addr, "--progress", "1s", id)
	if !w.waitExit(3 * time.Minute) {
		t.Fatal("the job did not end within 3 minutes of the last kill")
	}
	if w.err != nil {
		t.Fatalf("vog wait: %v", w.err)
	}
	clock("job done (vog wait: %s), %s after the second kill", faultSummary(w.output()), time.Since(kill2).Round(100*time.Millisecond))
	faultStopWatch(t, stopWatch)

	faultCheckResult(t, out, shards)

	got := readRows(t, out)
	if !slices.Equal(got, faultBaseline(t, "128", "1")) {
		t.Fatal("rows after killing the reduce worker differ from an undisturbed run's")
	}
	t.Logf("%d rows, equal to the undisturbed run's: 0 lost", len(got))
}

var faultAttemptRE = regexp.MustCompile(`-[0-9a-f]{16}\.parquet$`)

// faultCheckResult checks a finished job's result under the local folder
// out: _SUCCESS lists its shards parts with the sizes they have and the
// job's fingerprint and 10,000 rows, and every Parquet file there is whole
// and the job's. It logs other files found (temporary files of killed
// workers).
func faultCheckResult(t *testing.T, out string, shards int) {
	t.Helper()
	partsGlob := filepath.Join(out, "scores", "part-*.parquet")
	// _SUCCESS lists every part with the size it has.
	var success job.Success
	data, err := os.ReadFile(filepath.Join(out, jobstore.SuccessKey))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, &success); err != nil {
		t.Fatal(err)
	}
	j, err := jobstore.ReadJob(t.Context(), out)
	if err != nil {
		t.Fatal(err)
	}
	if success.Fingerprint != j.Fingerprint || success.Rows != 10000 || len(success.Parts) != shards {
		t.Fatalf("_SUCCESS: fingerprint %s rows %d parts %d; want %s, 10000, %d", success.Fingerprint, success.Rows, len(success.Parts), j.Fingerprint, shards)
	}
	for _, p := range success.Parts {
		info, err := os.Stat(filepath.Join(out, p.Key))
		if err != nil || info.Size() != p.Size {
			t.Errorf("_SUCCESS lists %s of %d bytes: %v", p.Key, p.Size, faultStatSize(info, err))
		}
	}
	if n := faultCount(partsGlob); n != shards {
		t.Errorf("%d parts, want %d", n, shards)
	}
	// Every Parquet file is whole and this job's.
	var leftovers []string
	filepath.WalkDir(out, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		switch {
		case strings.HasSuffix(path, ".parquet"):
			data, err := os.ReadFile(path)
			if err != nil {
				t.Error(err)
				return nil
			}
			if err := faultCheckParquet(path); err != nil {
				t.Errorf("%s: %v", path, err)
			} else if meta, err := storage.ParquetMeta(data); err != nil || meta[jobstore.FingerprintMeta] != j.Fingerprint {
				t.Errorf("%s: fingerprint %q, not the job's (%v)", path, meta[jobstore.FingerprintMeta], err)
			}
		case filepath.Base(path) != jobstore.JobKey && filepath.Base(path) != jobstore.SuccessKey:
			leftovers = append(leftovers, strings.TrimPrefix(path, out+"/"))
		}
		return nil
	})
	if len(leftovers) > 0 {
		t.Logf("other files under --out (temporary files of the killed workers): %s", strings.Join(leftovers, ", "))
	}
}

func faultStatSize(info fs.FileInfo, err error) string {
	if err != nil {
		return err.Error()
	}
	return fmt.Sprintf("has %d", info.Size())
}

// TestReplannedAfterOutputsRemoved: a job's job.json and _SUCCESS removed
// (as an interrupted rm -r would leave it) and a checkpoint replaced in
// place make a new job at the same --out, which reuses none of the old
// shards and gives the rows of a fresh run. A job of another fingerprint
// is refused there, with a message suggesting --overwrite; with
// --overwrite it runs and leaves nothing of the old job.
func TestReplannedAfterOutputsRemoved(t *testing.T) {
	vog(t)
	ckpts := t.TempDir()
	files, _ := filepath.Glob(filepath.Join(fixtures, "ckpt", "*.pt"))
	if len(files) != 12 {
		t.Fatalf("%d fixture checkpoints, want 12", len(files))
	}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(ckpts, filepath.Base(f)), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// 256 examples in batches of 32: 4 shards of 64, or 2 of 128.
	run := func(out, shardSize string, extra ...string) result {
		r := runVog(t, append([]string{"run", "--format", "idx", "--dataset", fixtures + "/small", "--checkpoints", ckpts,
			"--out", out, "--state-dir", t.TempDir(), "--threads", "2", "--batch-size", "32", "--shard-size", shardSize}, extra...)...)
		return r
	}
	mustRun := func(what, out, shardSize string, extra ...string) result {
		t.Helper()
		r := run(out, shardSize, extra...)
		if r.err != nil {
			t.Fatalf("%s: %v\n%s", what, r.err, r.stderr)
		}
		return r
	}
	out := t.TempDir()
	mustRun("first run", out, "64")
	old := readRows(t, out)
	oldJob, err := jobstore.ReadJob(t.Context(), out)
	if err != nil {
		t.Fatal(err)
	}

	for _, k := range []string{jobstore.JobKey, jobstore.SuccessKey} {
		if err := os.Remove(filepath.Join(out, k)); err != nil {
			t.Fatal(err)
		}
	}
	last, err := os.ReadFile(filepath.Join(ckpts, "ckpt_1.pt"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(ckpts, "ckpt_12.pt"), last, 0o644); err != nil {
		t.Fatal(err)
	}
	r := mustRun("run after removing job.json and _SUCCESS", out, "64")
	if !strings.Contains(r.stdout, "in 4 shard(s) (0 reused)") {
		t.Fatalf("shards of the old job were reused:\n%s", r.stdout)
	}
	fresh := t.TempDir()
	mustRun("fresh run", fresh, "64")
	want := readRows(t, fresh)
	if slices.Equal(want, old) {
		t.Fatal("replacing the last checkpoint changed no row: the test proves nothing")
	}
	if !slices.Equal(readRows(t, out), want) {
		t.Fatal("rows of the job run again over the old outputs differ from a fresh run's")
	}
	newJob, err := jobstore.ReadJob(t.Context(), out)
	if err != nil || newJob.Fingerprint == oldJob.Fingerprint {
		t.Fatalf("job.json after the rerun: %v, fingerprint %s (the old job's was %s)", err, newJob.Fingerprint, oldJob.Fingerprint)
	}

	// Another job (other shards) is refused there...
	r = run(out, "128")
	if r.err == nil || !strings.Contains(r.stderr, "holds another job") || !strings.Contains(r.stderr, "--overwrite") {
		t.Fatalf("another job at the same --out: %v\n%s", r.err, r.stderr)
	}
	if !slices.Equal(readRows(t, out), want) || !faultExists(filepath.Join(out, jobstore.SuccessKey)) {
		t.Fatal("the refused job changed the result there")
	}
	// ...and runs with --overwrite, leaving nothing of the job before.
	r = mustRun("--overwrite", out, "128", "--overwrite")
	if !strings.Contains(r.stdout, "in 2 shard(s) (0 reused)") {
		t.Fatalf("--overwrite:\n%s", r.stdout)
	}
	if !slices.Equal(readRows(t, out), want) {
		t.Fatal("rows after --overwrite differ from a fresh run's")
	}
	j, err := jobstore.ReadJob(t.Context(), out)
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	filepath.WalkDir(out, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		key := strings.TrimPrefix(path, out+"/")
		// A shard's rows and failures are named by the attempt that
		// published them.
		keys = append(keys, faultAttemptRE.ReplaceAllString(key, "-ATTEMPT.parquet"))
		if strings.HasSuffix(key, ".parquet") {
			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if meta, err := storage.ParquetMeta(data); err != nil || meta[jobstore.FingerprintMeta] != j.Fingerprint {
				t.Errorf("%s: fingerprint %q, not the new job's %s (%v)", key, meta[jobstore.FingerprintMeta], j.Fingerprint, err)
			}
		}
		return nil
	})
	slices.Sort(keys)
	wantKeys := []string{jobstore.SuccessKey, jobstore.ClassesKey, jobstore.FailuresKey, jobstore.JobKey,
		"scores/part-00000.parquet", "scores/part-00001.parquet",
		"shards/00000/classes.parquet", "shards/00000/failures-ATTEMPT.parquet", "shards/00000/rows-ATTEMPT.parquet",
		"shards/00001/classes.parquet", "shards/00001/failures-ATTEMPT.parquet", "shards/00001/rows-ATTEMPT.parquet",
		"shards/index.parquet"}
	slices.Sort(wantKeys)
	if !slices.Equal(keys, wantKeys) {
		t.Fatalf("files under --out after --overwrite:\n  %s\nwant:\n  %s", strings.Join(keys, "\n  "), strings.Join(wantKeys, "\n  "))
	}
}

// TestWaitInterrupted: vog wait stopped by the user (SIGTERM, as Ctrl-C)
// says that it stopped waiting, not that the job failed, and the job goes
// on: vog status still shows it running.
func TestWaitInterrupted(t *testing.T) {
	bin := vog(t)
	port := strconv.Itoa(freePort(t))
	addr := "127.0.0.1:" + port
	faultStart(t, "server", bin, nil, "server", "--port", port, "--state-dir", t.TempDir())
	// No worker: the job stays queued until the test ends.
	id := faultSubmit(t, addr, "--format", "idx", "--dataset", fixtures+"/small", "--checkpoints", fixtures+"/ckpt", "--out", t.TempDir())
	wait := faultStart(t, "wait", bin, nil, "wait", "--temporal", addr, "--progress", "200ms", id)
	// Interrupted once it has attached (without a worker it shows no
	// progress, only that it waits).
	for end := time.Now().Add(time.Minute); !strings.Contains(wait.output(), "job "+id+": waiting"); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(end) || wait.exited() {
			t.Fatalf("vog wait did not start waiting:\n%s", wait.output())
		}
	}
	wait.stop()
	var exit *exec.ExitError
	if !errors.As(wait.err, &exit) || exit.ExitCode() != 1 {
		t.Fatalf("vog wait, interrupted: %v, want exit status 1\n%s", wait.err, wait.output())
	}
	if log := wait.output(); strings.Contains(log, "failed") || !strings.Contains(log, "stopped waiting for job "+id) || !strings.Contains(log, "it goes on") {
		t.Fatalf("vog wait, interrupted, said:\n%s", log)
	}
	if st, _ := faultStatus(t, addr, id); !strings.Contains(st, id+": running") {
		t.Fatalf("vog status after the interrupted wait:\n%s", st)
	}
}
