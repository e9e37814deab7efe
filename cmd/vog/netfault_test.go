package main_test

// Faults between machines (docs/reliability.md, "Faults between
// machines"): a worker cut off from the Temporal server that can still
// write to S3, connections reset mid-body, S3 answering 503 SlowDown and
// 500 InternalError, a slow link. The links are made by Shopify's
// toxiproxy (partitions, bandwidth, latency) and by netFront, an HTTP
// proxy in this test that fails a fraction of S3 requests as a loaded S3
// does. Each process reaches S3 by the endpoint its environment names
// (AWS_ENDPOINT_URL_S3; --out names none), so each can have a link of its
// own.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	taskqueuepb "go.temporal.io/api/taskqueue/v1"

	"github.com/vogscore/vog/job"
	"github.com/vogscore/vog/jobstore"
)

const netKey, netSecret = "vognet", "vognetsecret"

// TestNetFaults runs the network fault scenarios at once, each in a
// subtest of its own (-run 'TestNetFaults/partitioned-worker' runs one),
// whatever -parallel says: most of their time is waiting out faults and
// timeouts, and each compares its rows with an undisturbed run's.
func TestNetFaults(t *testing.T) {
	vog(t)
	var wg sync.WaitGroup
	for _, s := range []struct {
		name string
		run  func(*testing.T)
	}{
		{"partitioned-worker", netPartitionedWorker},
		{"reduce-partitioned", netReducePartitioned},
		{"flaky-storage", netFlakyStorage},
		{"slow-storage", netSlowStorage},
		{"slow-server-link", netSlowServerLink},
		{"cut-server-link", netCutServerLink},
	} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			t.Run(s.name, s.run)
		}()
	}
	wg.Wait()
}

// netS3 is an S3 server of the test's own: versitygw over a folder, which
// the test reads directly.
type netS3 struct {
	addr, root, bucket string
}

func netStartS3(t *testing.T) *netS3 {
	t.Helper()
	gw := faultVersitygw(t)
	s := &netS3{addr: "127.0.0.1:" + strconv.Itoa(freePort(t)), root: t.TempDir(), bucket: "vog-net"}
	if err := os.Mkdir(filepath.Join(s.root, s.bucket), 0o755); err != nil {
		t.Fatal(err)
	}
	p := faultStart(t, "versitygw", gw, []string{"ROOT_ACCESS_KEY=" + netKey, "ROOT_SECRET_KEY=" + netSecret}, "--port", s.addr, "posix", s.root)
	faultListening(t, "versitygw", s.addr, p)
	return s
}

// out is the URL of prefix in the bucket, without an endpoint.
func (s *netS3) out(prefix string) string {
	return "s3://" + s.bucket + "/" + prefix + "?region=us-east-1&use_path_style=true"
}

// local is the folder where the server keeps prefix.
func (s *netS3) local(prefix string) string { return filepath.Join(s.root, s.bucket, prefix) }

// netEnv is the environment of a process that reaches the S3 server at
// addr (the server itself, or a faulty link to it).
func netEnv(addr string) []string {
	return []string{"AWS_ACCESS_KEY_ID=" + netKey, "AWS_SECRET_ACCESS_KEY=" + netSecret, "AWS_ENDPOINT_URL_S3=http://" + addr}
}

// netToxi is a toxiproxy server, driven through its HTTP API.
type netToxi struct {
	t   *testing.T
	api string
}

// netToxiproxy starts toxiproxy: $VOG_TOXIPROXY, else toxiproxy-server in
// $GOPATH/bin (scripts/test.sh installs it). Without one the test is
// skipped, unless VOG_REQUIRE_TOXIPROXY is set.
func netToxiproxy(t *testing.T) *netToxi {
	t.Helper()
	bin := os.Getenv("VOG_TOXIPROXY")
	if bin == "" {
		if out, err := exec.Command("go", "env", "GOPATH").Output(); err == nil {
			bin = filepath.Join(strings.Split(strings.TrimSpace(string(out)), string(os.PathListSeparator))[0], "bin", "toxiproxy-server")
		}
	}
	if _, err := os.Stat(bin); bin == "" || err != nil {
		if os.Getenv("VOG_REQUIRE_TOXIPROXY") != "" {
			t.Fatalf("VOG_REQUIRE_TOXIPROXY is set but there is no toxiproxy server (%q; set VOG_TOXIPROXY)", bin)
		}
		t.Skipf("no toxiproxy server (%q): set VOG_TOXIPROXY, or go install github.com/Shopify/toxiproxy/v2/cmd/server@v2.5.0", bin)
	}
	port := strconv.Itoa(freePort(t))
	p := faultStart(t, "toxiproxy", bin, nil, "-host", "127.0.0.1", "-port", port)
	faultListening(t, "toxiproxy", "127.0.0.1:"+port, p)
	return &netToxi{t: t, api: "http://127.0.0.1:" + port}
}

func (x *netToxi) call(method, path string, body any) {
	x.t.Helper()
	data, _ := json.Marshal(body)
	req, err := http.NewRequest(method, x.api+path, bytes.NewReader(data))
	if err != nil {
		x.t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		x.t.Fatalf("toxiproxy %s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 300 {
		msg, _ := io.ReadAll(resp.Body)
		x.t.Fatalf("toxiproxy %s %s: %s: %s", method, path, resp.Status, msg)
	}
}

// link makes a proxy to upstream and returns the address it listens on.
func (x *netToxi) link(name, upstream string) string {
	x.t.Helper()
	listen := "127.0.0.1:" + strconv.Itoa(freePort(x.t))
	x.call("POST", "/proxies", map[string]any{"name": name, "listen": listen, "upstream": upstream, "enabled": true})
	return listen
}

// toxic adds a toxic to every connection of a link, in one direction:
// "upstream" (to the server) or "downstream".
func (x *netToxi) toxic(link, name, kind, stream string, attrs map[string]any) {
	x.t.Helper()
	x.call("POST", "/proxies/"+link+"/toxics", map[string]any{"name": name, "type": kind, "stream": stream, "toxicity": 1.0, "attributes": attrs})
}

func (x *netToxi) remove(link, name string) {
	x.t.Helper()
	x.call("DELETE", "/proxies/"+link+"/toxics/"+name, nil)
}

// partition drops every byte through a link, both ways, keeping its
// connections open, as a cut cable or a dead switch does: calls hang until
// their deadlines. heal ends it.
func (x *netToxi) partition(link string) {
	x.t.Helper()
	x.toxic(link, "cut-up", "timeout", "upstream", map[string]any{"timeout": 0})
	x.toxic(link, "cut-down", "timeout", "downstream", map[string]any{"timeout": 0})
}

func (x *netToxi) heal(link string) {
	x.t.Helper()
	x.remove(link, "cut-up")
	x.remove(link, "cut-down")
}

// netFront is an HTTP proxy in front of an S3 server that fails a
// fraction of the requests as a loaded S3 and its network do: 503
// SlowDown, 500 InternalError, or the connection cut in the middle of the
// request's body (an upload) or of the response's (a download, or the
// answer to an upload that landed). So that every kind of object (job.json,
// index, partial moments, shard files, merged classes, parts, _SUCCESS,
// listings) meets each fault, the first request of each method on each
// kind is answered 503 and its second is cut; the others are failed at
// random with the given probabilities. It counts what it did by fault,
// method and kind.
type netFront struct {
	addr, upstream     string
	p503, p500, pReset float64
	tr                 *http.Transport
	mu                 sync.Mutex
	rng                *rand.Rand
	requests           int
	clean              bool           // no scheduled faults: only the probabilities
	puts               []netWrite     // the writes it passed on or failed
	holdUntil          time.Time      // writes before then wait for it, or for their client to give up
	abandoned          []netWrite     // held writes whose client gave up
	faults             map[string]int // "503 PUT group" ...
	kinds              map[string]int // requests by kind of object
	calls              map[string]int // requests by method and kind
}

func netStartFront(t *testing.T, upstream string, p503, p500, pReset float64) *netFront {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &netFront{addr: l.Addr().String(), upstream: upstream, p503: p503, p500: p500, pReset: pReset,
		tr: &http.Transport{MaxIdleConnsPerHost: 16}, rng: rand.New(rand.NewPCG(19, 2026)),
		faults: map[string]int{}, kinds: map[string]int{}, calls: map[string]int{}}
	srv := &http.Server{Handler: f, ErrorLog: nil}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close(); f.tr.CloseIdleConnections() })
	return f
}

var netKindRE = []struct {
	re   *regexp.Regexp
	kind string
}{
	{regexp.MustCompile(`/job\.json$`), "job.json"},
	{regexp.MustCompile(`/shards/index\.parquet$`), "index"},
	{regexp.MustCompile(`/group-[^/]*\.moments$`), "group moments"},
	{regexp.MustCompile(`/shards/\d+/(rows|failures)-[^/]*\.parquet$`), "shard rows"},
	{regexp.MustCompile(`/shards/\d+/classes\.parquet$`), "shard classes"},
	{regexp.MustCompile(`/(classes|failures)\.parquet$`), "merged classes"},
	{regexp.MustCompile(`/scores/part-\d+\.parquet$`), "result part"},
	{regexp.MustCompile(`/_SUCCESS$`), "_SUCCESS"},
}

func netKind(r *http.Request) string {
	if r.URL.Query().Has("list-type") || r.URL.Query().Has("prefix") {
		return "list"
	}
	for _, k := range netKindRE {
		if k.re.MatchString(r.URL.Path) {
			return k.kind
		}
	}
	return "other"
}

func (f *netFront) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	kind := netKind(r)
	f.mu.Lock()
	f.requests++
	f.kinds[kind]++
	f.calls[r.Method+" "+kind]++
	x := f.rng.Float64()
	fault := ""
	switch {
	case f.clean:
	case f.calls[r.Method+" "+kind] == 1:
		fault = "503"
	case f.calls[r.Method+" "+kind] == 2:
		fault = "reset"
	case x < f.p503:
		fault = "503"
	case x < f.p503+f.p500:
		fault = "500"
	case x < f.p503+f.p500+f.pReset:
		fault = "reset"
	}
	if fault != "" {
		f.faults[fault+" "+r.Method+" "+kind]++
	}
	write := r.Method == http.MethodPut || r.Method == http.MethodPost || r.Method == http.MethodDelete
	hold := time.Until(f.holdUntil)
	f.mu.Unlock()
	if write && hold > 0 {
		// The body is read first: only then does the server watch the
		// connection, so that the request's context ends when the client
		// gives up.
		body, err := io.ReadAll(r.Body)
		if err == nil {
			select {
			case <-time.After(hold):
			case <-r.Context().Done():
			}
			err = r.Context().Err()
		}
		if err != nil {
			f.mu.Lock()
			f.abandoned = append(f.abandoned, netWrite{r.Method + " " + r.URL.Path, time.Now()})
			f.mu.Unlock()
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
	}
	if write {
		f.mu.Lock()
		f.puts = append(f.puts, netWrite{r.Method + " " + r.URL.Path, time.Now()})
		f.mu.Unlock()
	}
	switch fault {
	case "503":
		netS3Error(w, http.StatusServiceUnavailable, "SlowDown", "Please reduce your request rate.")
		return
	case "500":
		netS3Error(w, http.StatusInternalServerError, "InternalError", "We encountered an internal error. Please try again.")
		return
	case "reset":
		if r.Method == http.MethodPut && r.ContentLength != 0 { // an upload, cut halfway
			io.CopyN(io.Discard, r.Body, max(r.ContentLength/2, 1))
			panic(http.ErrAbortHandler)
		}
	}
	out := r.Clone(r.Context())
	out.URL.Scheme, out.URL.Host, out.RequestURI = "http", f.upstream, ""
	out.Host = r.Host // the client signed it
	out.Header.Del("Expect")
	resp, err := f.tr.RoundTrip(out)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	defer resp.Body.Close()
	for k, v := range resp.Header {
		w.Header()[k] = v
	}
	w.WriteHeader(resp.StatusCode)
	if fault == "reset" { // a download, cut halfway (or before its body)
		io.CopyN(w, resp.Body, resp.ContentLength/2)
		http.NewResponseController(w).Flush()
		panic(http.ErrAbortHandler)
	}
	io.Copy(w, resp.Body)
}

// netWrite is a request that changes the store, and when it came.
type netWrite struct {
	key string
	at  time.Time
}

// writes returns the writes (PUT, POST, DELETE) the front passed on or
// failed, in order, and those held whose client gave up before they were
// passed on.
func (f *netFront) writes() (passed, abandoned []netWrite) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.puts), slices.Clone(f.abandoned)
}

// holdWrites makes writes that arrive in the next d wait until d has
// passed before the front handles them: a slow link to storage, which the
// client may give up on.
func (f *netFront) holdWrites(d time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.holdUntil = time.Now().Add(d)
}

func netS3Error(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/xml")
	w.WriteHeader(status)
	fmt.Fprintf(w, `<?xml version="1.0" encoding="UTF-8"?><Error><Code>%s</Code><Message>%s</Message><RequestId>vog-fault</RequestId></Error>`, code, msg)
}

// report says what the front did: requests by kind, faults by kind.
func (f *netFront) report() (requests int, faults int, text string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var lines []string
	for _, k := range mapKeys(f.faults) {
		lines = append(lines, fmt.Sprintf("%s %d", k, f.faults[k]))
		faults += f.faults[k]
	}
	var kinds []string
	for _, k := range mapKeys(f.kinds) {
		kinds = append(kinds, fmt.Sprintf("%s %d", k, f.kinds[k]))
	}
	return f.requests, faults, "requests by kind: " + strings.Join(kinds, ", ") + "; faults: " + strings.Join(lines, ", ")
}

// netRetries returns the distinct "retrying: ..." lines of a progress log,
// with their errors.
func netRetries(log string) []string {
	var seen []string
	for _, line := range strings.Split(log, "\n") {
		if _, r, ok := strings.Cut(line, "retrying: "); ok && !slices.Contains(seen, r) {
			seen = append(seen, r)
		}
	}
	return seen
}

// netLogLine returns the time, message, activity and error of the first
// line of an SDK log that holds s.
func netLogLine(log, s string) string {
	line := faultLine(log, s)
	var keep []string
	for _, f := range []string{`time=\S+`, `msg="[^"]*"`, `ActivityType=\S+`, `Attempt=\S+`, `Error="[^"]*"`} {
		if m := regexp.MustCompile(f).FindString(line); m != "" {
			keep = append(keep, m)
		}
	}
	return strings.Join(keep, " ")
}

// faultLine returns the first line of log that holds s.
func faultLine(log, s string) string {
	for _, l := range strings.Split(log, "\n") {
		if strings.Contains(l, s) {
			return l
		}
	}
	return ""
}

func mapKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// netCluster starts what a scenario of several machines needs: toxiproxy,
// an S3 server and a Temporal server (vog server), whose address it
// returns with the vog binary.
func netCluster(t *testing.T) (bin string, toxi *netToxi, s3 *netS3, addr string) {
	t.Helper()
	faultNeedT10k(t)
	bin = vog(t)
	toxi = netToxiproxy(t)
	s3 = netStartS3(t)
	port := strconv.Itoa(freePort(t))
	addr = "127.0.0.1:" + port
	faultStart(t, "server", bin, nil, "server", "--port", port, "--state-dir", t.TempDir())
	return bin, toxi, s3, addr
}

// netPartitionedWorker cuts a gradient worker off from the Temporal
// server for 90 s in the middle of a shard, while it can still reach S3:
// the worker stops its shard once its lease is gone (no heartbeat answered
// for the heartbeat timeout), the server gives the shard to the other
// worker after the heartbeat timeout, no file of the cut-off worker's
// attempt is published, it writes nothing to S3 after it stopped (each
// worker reaches S3 through a netFront of its own that fails nothing and
// logs its writes; the cut-off worker's is slow for a while, so that its
// lease, not the machine's speed, decides whether it publishes), the
// worker serves again when the link comes back, and the rows are an
// undisturbed run's.
func netPartitionedWorker(t *testing.T) {
	bin, toxi, s3, addr := netCluster(t)
	var workers []*exec.Cmd
	procs := map[*exec.Cmd]*faultProc{}
	links := map[*exec.Cmd]string{}
	fronts := map[*exec.Cmd]*netFront{}
	for i := 1; i <= 2; i++ {
		name := fmt.Sprintf("gradient%d", i)
		link := toxi.link(name, addr)
		front := netStartFront(t, s3.addr, 0, 0, 0)
		front.clean = true
		p := faultStart(t, "gradient worker "+strconv.Itoa(i), bin, netEnv(front.addr), "worker", "--temporal", link, "--queue", "gradient", "--threads", "1")
		workers = append(workers, p.cmd)
		procs[p.cmd], links[p.cmd], fronts[p.cmd] = p, name, front
	}
	faultStart(t, "reduce worker", bin, netEnv(s3.addr), "worker", "--temporal", addr, "--queue", "reduce")
	const prefix, shards = "zombie/out", 4
	out, local := s3.out(prefix), s3.local(prefix)
	const heartbeat, partition = 5 * time.Second, 90 * time.Second
	clock := faultClock(t)
	id := faultSubmit(t, addr, faultJob(out, "2500", "--heartbeat-timeout", heartbeat.String())...)
	clock("job submitted: 4 shards of 2500, --heartbeat-timeout %s, two gradient workers each behind its own link to the server", heartbeat)

	c := dialServer(t, addr)
	victim, shard := busy(t, c, id, byPid(workers))
	// Its link to storage turns slow with the cut: a write it starts in
	// the next 3 heartbeat timeouts waits that long before it reaches S3.
	// However fast the machine, the worker is then still under way, in
	// its computation or in an upload, when its lease runs out (the
	// heartbeat timeout and a quarter), so the test sees the lease stop
	// it; a worker that ignored the lease would write after the hold.
	hold := 3 * heartbeat
	fronts[victim].holdWrites(hold)
	toxi.partition(links[victim])
	cut := time.Now()
	zombie := procs[victim]
	clock("%s cut off from the server (all bytes dropped both ways), mid-shard; it still reaches S3, its writes held %s", zombie.name, hold)

	// The cut-off worker stops its shard when its lease is gone: the SDK
	// when a heartbeat call fails, or worker.Leases when none is answered
	// for the heartbeat timeout and a quarter, whichever comes first. The
	// SDK logs the activity's error once it has returned.
	stopped := faultPoll(t, "the cut-off worker stopping its shard", 2*time.Minute, 50*time.Millisecond, func() bool {
		return strings.Contains(zombie.output(), `msg="Activity error."`)
	})
	clock("%s stopped its shard %s after the cut: %s", zombie.name, stopped.Round(100*time.Millisecond),
		netLogLine(zombie.output(), `msg="Activity error."`))
	if line := faultLine(zombie.output(), "lease is lost"); line != "" {
		clock("%s: %s", zombie.name, netLogLine(zombie.output(), "lease is lost"))
	}

	// The other worker finishes the job.
	w := faultWait(t, addr, id, 5*time.Minute)
	done := time.Since(cut)
	clock("job done %s after the cut, the worker still cut off: %s", done.Round(100*time.Millisecond), faultSummary(w.output()))
	final := shard.finalAttempt(t, c)
	clock("the cut-off shard: final attempt %d by %s, after %q", final.GetAttempt(), final.GetIdentity(), final.GetLastFailure().GetMessage())
	if final.GetAttempt() < 2 || !strings.Contains(final.GetLastFailure().GetMessage(), "Heartbeat") ||
		strings.HasPrefix(final.GetIdentity(), strconv.Itoa(victim.Process.Pid)+"@") {
		t.Errorf("the cut-off worker's shard was not moved to the other worker after a heartbeat timeout")
	}

	// What the cut-off worker wrote to S3 after it stopped: nothing, seen
	// once the writes it started in the hold would have gone through.
	time.Sleep(time.Until(cut.Add(hold + time.Second)))
	var late []string
	passed, abandoned := fronts[victim].writes()
	for _, w := range passed {
		if w.at.After(cut.Add(stopped)) {
			late = append(late, fmt.Sprintf("%s %.1fs after the cut", w.key, w.at.Sub(cut).Seconds()))
		}
	}
	clock("%s wrote %d objects to S3 in all, %d after it stopped its shard; it gave up %d held writes", zombie.name, len(passed), len(late), len(abandoned))
	for _, l := range late {
		t.Errorf("the cut-off worker wrote %s, after it stopped", l)
	}

	want := faultBaseline(t, "2500", "1")
	got := readRows(t, local)
	if !slices.Equal(got, want) {
		t.Fatal("rows after the partition differ from an undisturbed run's")
	}
	clock("%d rows, equal to the undisturbed run's: 0 lost", len(got))

	// The link comes back after 90 s: the worker polls again.
	time.Sleep(time.Until(cut.Add(partition)))
	toxi.heal(links[victim])
	healed := time.Now()
	clock("link healed after %s", healed.Sub(cut).Round(100*time.Millisecond))
	pid := strconv.Itoa(victim.Process.Pid) + "@"
	back := faultPoll(t, "the worker polling again", 2*time.Minute, 200*time.Millisecond, func() bool {
		resp, err := c.DescribeTaskQueue(t.Context(), job.GradientQueue, enumspb.TASK_QUEUE_TYPE_ACTIVITY)
		return err == nil && slices.ContainsFunc(resp.GetPollers(), func(p *taskqueuepb.PollerInfo) bool {
			return strings.HasPrefix(p.GetIdentity(), pid) && p.GetLastAccessTime().AsTime().After(healed)
		})
	})
	clock("%s polling the server again %s after the link came back", zombie.name, back.Round(100*time.Millisecond))
	if zombie.exited() {
		t.Errorf("%s exited: %v", zombie.name, zombie.err)
	}
}

// netReducePartitioned cuts the reduce worker off from both the
// Temporal server and S3 the moment the reduce writes its first result
// part, and starts another reduce worker: the cut-off worker stops its
// activities when their leases are gone, the server moves them (and the
// job's workflow) to the new worker, and the job completes with every
// Parquet file whole whenever it appeared, _SUCCESS true to the parts, and
// the rows of an undisturbed run.
func netReducePartitioned(t *testing.T) {
	bin, toxi, s3, addr := netCluster(t)
	faultStart(t, "gradient worker", bin, netEnv(s3.addr), "worker", "--temporal", addr, "--queue", "gradient", "--threads", "1")
	toServer, toS3 := toxi.link("reduce1", addr), toxi.link("reduce1-s3", s3.addr)
	reducer := faultStart(t, "reduce worker 1", bin, netEnv(toS3), "worker", "--temporal", toServer, "--queue", "reduce")
	const prefix, shards = "reduce/out", 79
	out, local := s3.out(prefix), s3.local(prefix)
	const heartbeat = 5 * time.Second
	stopWatch := faultWatchParquet(local)
	clock := faultClock(t)
	id := faultSubmit(t, addr, faultJob(out, "128", "--heartbeat-timeout", heartbeat.String())...)
	clock("job submitted: 79 shards, --heartbeat-timeout %s; the reduce worker reaches the server and S3 through links of its own", heartbeat)

	partsGlob := filepath.Join(local, "scores", "part-*.parquet")
	faultPoll(t, "the first part", 5*time.Minute, 2*time.Millisecond, func() bool { return faultCount(partsGlob) > 0 })
	toxi.partition("reduce1")
	toxi.partition("reduce1-s3")
	cut := time.Now()
	parts := faultCount(partsGlob)
	clock("first part written: reduce worker 1 cut off from the server and S3 with %d of %d parts written", parts, shards)
	if parts >= shards || faultExists(filepath.Join(local, jobstore.SuccessKey)) {
		t.Fatalf("the cut came after the parts were written (%d of %d)", parts, shards)
	}
	faultStart(t, "reduce worker 2", bin, netEnv(s3.addr), "worker", "--temporal", addr, "--queue", "reduce")
	w := faultWait(t, addr, id, 5*time.Minute)
	done := time.Since(cut)
	clock("job done %s after the cut: %s", done.Round(100*time.Millisecond), faultSummary(w.output()))
	for _, l := range strings.Split(reducer.output(), "\n") {
		if strings.Contains(l, "lease is lost") || strings.Contains(l, `msg="Activity error."`) {
			clock("reduce worker 1: %s", netLogLine(l, ""))
		}
	}
	st, _ := faultStatus(t, addr, id)
	t.Logf("retried: %s", strings.Join(netRetries(st+w.output()), "; "))
	faultStopWatch(t, stopWatch)
	faultCheckResult(t, local, shards)
	got := readRows(t, local)
	if !slices.Equal(got, faultBaseline(t, "128", "1")) {
		t.Fatal("rows after cutting off the reduce worker differ from an undisturbed run's")
	}
	clock("%d rows, equal to the undisturbed run's: 0 lost", len(got))
	toxi.heal("reduce1")
	toxi.heal("reduce1-s3")
}

// netFlakyStorage runs a job whose every S3 request goes through
// netFront: 7% answered 503 SlowDown, 3% 500 InternalError, 2% cut in the
// middle of their upload or download, and the first two of each kind of
// object a 503 and a cut. The job uses checkpoint groups, so
// that every kind of object is written and read: job.json, the index,
// partial moments, shard files, merged classes, parts and _SUCCESS. It
// completes with the rows of an undisturbed run.
func netFlakyStorage(t *testing.T) {
	faultNeedT10k(t)
	bin := vog(t)
	s3 := netStartS3(t)
	front := netStartFront(t, s3.addr, 0.07, 0.03, 0.02)
	const prefix = "flaky/out"
	out, local := s3.out(prefix), s3.local(prefix)
	clock := faultClock(t)
	run := faultStart(t, "run", bin, netEnv(front.addr), append([]string{"run", "--state-dir", t.TempDir(), "--threads", "1",
		"--heartbeat-timeout", "10s", "--progress", "1s"}, faultJob(out, "2500", "--checkpoint-group", "6")...)...)
	clock("vog run started: 4 shards of 2500, 2 checkpoint groups; S3 behind a front failing 12%% of requests")
	if !run.waitExit(8 * time.Minute) {
		t.Fatal("the job did not end within 8 minutes")
	}
	took := clock
	if run.err != nil {
		t.Fatalf("the job failed: %v\n%s", run.err, faultTail(run.output(), 4000))
	}
	log := run.output()
	requests, faults, what := front.report()
	took("job done: %s", faultSummary(log))
	t.Logf("S3 front: %d requests, %d failed on purpose (%.1f%%); %s", requests, faults, 100*float64(faults)/float64(max(requests, 1)), what)
	t.Logf("activities retried: %s", strings.Join(netRetries(log), "; "))
	if faults == 0 {
		t.Fatal("no request was failed: the test proves nothing")
	}
	got := readRows(t, local)
	if !slices.Equal(got, faultBaseline(t, "2500", "1", "--checkpoint-group", "6")) {
		t.Fatal("rows under S3 faults differ from an undisturbed run's")
	}
	clock("%d rows, equal to the undisturbed run's: 0 lost", len(got))
}

// netSlowStorage runs a job over a link to S3 of 128 KB/s each way
// with 10 ms of latency each way, with a heartbeat timeout (5 s) shorter
// than its transfers (each partial moments file, 1.6 MB, takes over 12 s
// to write and again to read): heartbeats keep the activities alive while
// they move data, so nothing times out and nothing is retried, and the
// rows are those of a local run.
func netSlowStorage(t *testing.T) {
	bin := vog(t)
	toxi := netToxiproxy(t)
	s3 := netStartS3(t)
	link := toxi.link("slow-s3", s3.addr)
	for _, stream := range []string{"upstream", "downstream"} {
		toxi.toxic("slow-s3", "bandwidth-"+stream, "bandwidth", stream, map[string]any{"rate": 128}) // KB/s
		toxi.toxic("slow-s3", "latency-"+stream, "latency", stream, map[string]any{"latency": 10})
	}
	job := func(out string) []string {
		return []string{"run", "--format", "idx", "--dataset", fixtures + "/small", "--checkpoints", fixtures + "/ckpt",
			"--out", out, "--state-dir", t.TempDir(), "--threads", "1", "--shard-size", "256", "--checkpoint-group", "6",
			"--heartbeat-timeout", "5s", "--progress", "1s"}
	}
	const prefix = "slow/out"
	clock := faultClock(t)
	run := faultStart(t, "run", bin, netEnv(link), job(s3.out(prefix))...)
	if !run.waitExit(5 * time.Minute) {
		t.Fatal("the job did not end within 5 minutes")
	}
	if run.err != nil {
		t.Fatalf("the job failed: %v\n%s", run.err, faultTail(run.output(), 4000))
	}
	log := run.output()
	local := s3.local(prefix)
	groups, _ := filepath.Glob(filepath.Join(local, "shards", "*", "group-*.moments"))
	var sizes []string
	for _, g := range groups {
		if info, err := os.Stat(g); err == nil {
			sizes = append(sizes, fmt.Sprintf("%.1f MB", float64(info.Size())/1e6))
		}
	}
	clock("job done over a 128 KB/s link: %s; partial moments files %s, each written once and read once at 128 KB/s",
		faultSummary(log), strings.Join(sizes, ", "))
	if r := faultRetries(log); len(r) > 0 {
		t.Errorf("activities were retried over a slow link that kept working: %q", r)
	}
	ref := t.TempDir()
	if r := runVog(t, job(ref)...); r.err != nil {
		t.Fatalf("local run: %v\n%s", r.err, r.stderr)
	}
	got := readRows(t, local)
	if want := readRows(t, ref); len(got) == 0 || !slices.Equal(got, want) {
		t.Fatalf("rows over the slow link (%d) differ from a local run's (%d)", len(got), len(want))
	}
	clock("%d rows, equal to a local run's: 0 lost", len(got))
}

// netSlowServerLink puts 1 s of latency each way between the gradient
// worker and the Temporal server, with --heartbeat-timeout 10s. The SDK
// sends a heartbeat T = min(0.8 timeout, 5 s) after the last was answered
// and gives each call T to be answered, so a link with a round trip R
// keeps an attempt alive while R < T and T + R < the timeout: here 2 s
// against 5 s and 7 s against 10 s. Polls, task handoffs, heartbeats and
// completions all cross the slow link; no activity may be retried, the
// worker's lease must not stop a shard the server still holds, and the
// rows are an undisturbed run's.
func netSlowServerLink(t *testing.T) {
	r := netServerLinkJob(t, "slow-server", "1 s each way", "10s", func(x *netToxi, link string) {
		for _, stream := range []string{"upstream", "downstream"} {
			x.toxic(link, "latency-"+stream, "latency", stream, map[string]any{"latency": 1000})
		}
	})
	if len(r.retries) > 0 {
		t.Errorf("activities were retried over a slow link to the server that kept working: %q", r.retries)
	}
	if r.leaseLost != "" {
		t.Errorf("the worker stopped a shard the server still held: %s", r.leaseLost)
	}
	r.clock("%d rows, equal to the undisturbed run's: 0 lost, no activity retried, no lease lost", r.rows)
}

// netCutServerLink closes every connection between the gradient worker and
// the Temporal server once 16 KB have come down it (toxiproxy's
// limit_data), for the whole job: the worker's polls, heartbeats and
// completions keep failing mid-call and reconnecting. The job completes
// with the rows of an undisturbed run; what was retried is reported.
func netCutServerLink(t *testing.T) {
	r := netServerLinkJob(t, "cut-server", "every connection closed after 16 KB from the server", "10s", func(x *netToxi, link string) {
		x.toxic(link, "cut", "limit_data", "downstream", map[string]any{"bytes": 16384})
	})
	r.clock("%d rows, equal to the undisturbed run's: 0 lost; activities retried: %q; lease lost: %q", r.rows, r.retries, r.leaseLost)
}

// netLinkRun is what netServerLinkJob saw.
type netLinkRun struct {
	clock     func(format string, args ...any)
	retries   []string // the activities retried, as vog wait reported them
	leaseLost string   // the gradient worker's log line, if it stopped a shard for a lost lease
	rows      int
}

// netServerLinkJob runs a job of 2 shards of 5000 with --heartbeat-timeout
// heartbeat on a gradient worker that reaches the Temporal server through
// a toxiproxy link that setup spoils (what says how), and a reduce worker
// that reaches it directly; the rows must be an undisturbed run's.
func netServerLinkJob(t *testing.T, name, what, heartbeat string, setup func(x *netToxi, link string)) netLinkRun {
	bin, toxi, s3, addr := netCluster(t)
	link := toxi.link(name, addr)
	setup(toxi, name)
	gradient := faultStart(t, "gradient worker", bin, netEnv(s3.addr), "worker", "--temporal", link, "--queue", "gradient", "--threads", "1")
	faultStart(t, "reduce worker", bin, netEnv(s3.addr), "worker", "--temporal", addr, "--queue", "reduce")
	prefix := name + "/out"
	clock := faultClock(t)
	id := faultSubmit(t, addr, faultJob(s3.out(prefix), "5000", "--heartbeat-timeout", heartbeat)...)
	clock("job submitted: 2 shards of 5000, --heartbeat-timeout %s, the gradient worker's link to the server: %s", heartbeat, what)
	w := faultWait(t, addr, id, 5*time.Minute)
	clock("job done: %s", faultSummary(w.output()))
	got, want := readRows(t, s3.local(prefix)), faultBaseline(t, "5000", "1")
	if !slices.Equal(got, want) {
		t.Fatalf("rows over the spoilt link to the server (%d) differ from an undisturbed run's (%d)", len(got), len(want))
	}
	return netLinkRun{clock: clock, retries: faultRetries(w.output()), leaseLost: faultLine(gradient.output(), "lease is lost"), rows: len(got)}
}
