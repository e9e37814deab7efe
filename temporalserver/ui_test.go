package temporalserver_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.temporal.io/sdk/client"

	"github.com/vogscore/vog/engine/linear"
	"github.com/vogscore/vog/internal/headless"
	"github.com/vogscore/vog/internal/short"
	"github.com/vogscore/vog/internal/testjob"
	"github.com/vogscore/vog/job"
	"github.com/vogscore/vog/temporalserver"
	"github.com/vogscore/vog/worker"
	"github.com/vogscore/vog/workflows"
)

// TestWebUI runs a job through a server started with a UIPort, finds the
// job's workflow through the Web UI's HTTP API, and, in headless Chromium,
// on the UI's page of workflows; after Stop the UI is gone.
func TestWebUI(t *testing.T) {
	short.Skip(t, "a Temporal server")
	uiPort := freePort(t)
	srv, err := temporalserver.Start(temporalserver.Options{UIPort: uiPort})
	if err != nil {
		t.Fatal(err)
	}
	var (
		c client.Client
		w *worker.Workers
	)
	stop := func() error {
		if w != nil {
			w.Stop()
			w = nil
		}
		if c != nil {
			c.Close()
			c = nil
		}
		if srv == nil {
			return nil
		}
		err := srv.Stop()
		srv = nil
		return err
	}
	defer stop()
	if c, err = client.Dial(client.Options{HostPort: srv.HostPort(), Namespace: temporalserver.Namespace}); err != nil {
		t.Fatal(err)
	}
	if w, err = worker.Start(c, worker.Config{Loader: linear.Loader{}}); err != nil {
		t.Fatal(err)
	}

	dir := t.TempDir()
	images, labels := testjob.Dataset(20, 3, 3, 2)
	prefix, err := testjob.WriteIDX(dir, "toy", 3, 3, images, labels)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := testjob.WriteCheckpoints(filepath.Join(dir, "ckpt"), testjob.Linear(3, 2, 3, 3)); err != nil {
		t.Fatal(err)
	}
	spec := job.Spec{
		Dataset:     job.Dataset{Format: "idx", URL: prefix},
		Checkpoints: []string{filepath.Join(dir, "ckpt")},
		ShardSize:   10,
		BatchSize:   10,
		Out:         filepath.Join(dir, "out"),
	}
	const id = "vog-ui-test-job"
	run, err := c.ExecuteWorkflow(t.Context(), client.StartWorkflowOptions{ID: id, TaskQueue: job.ReduceQueue},
		workflows.ScoreJob, job.Request{Spec: spec, MaxInFlight: 2, ShardsPerWrite: 2})
	if err != nil {
		t.Fatal(err)
	}
	var res job.Result
	if err := run.Get(t.Context(), &res); err != nil {
		t.Fatal(err)
	}
	if res.Rows != 20 {
		t.Fatalf("result %+v", res)
	}

	base := fmt.Sprintf("http://127.0.0.1:%d", uiPort)
	// The UI server's API, which the page calls: visibility may lag the
	// workflow's completion a little.
	api := base + "/api/v1/namespaces/" + temporalserver.Namespace + "/workflows"
	var body string
	for deadline := time.Now().Add(20 * time.Second); ; {
		body = httpGet(t, api)
		if strings.Contains(body, id) || time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if !strings.Contains(body, id) {
		t.Fatalf("GET %s does not list workflow %s:\n%.2000s", api, id, body)
	}

	page := base + "/namespaces/" + temporalserver.Namespace + "/workflows"
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	// The page is a JavaScript app that fetches the list from the API
	// above; the virtual time budget lets it render before the DOM is dumped.
	dom, stderr := headless.Chromium(t, ctx, "--window-size=1400,1000", "--virtual-time-budget=15000", "--dump-dom", page)
	// A row of the table of workflows links to the run.
	link := fmt.Sprintf(`href="/namespaces/%s/workflows/%s/%s/`, temporalserver.Namespace, id, run.GetRunID())
	if !strings.Contains(dom, link) {
		t.Fatalf("the UI's page %s does not list workflow %s (the API does): no %s in its DOM:\n%.3000s\nchromium:\n%s",
			page, id, link, dom, stderr)
	}

	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if conn, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", uiPort), time.Second); err == nil {
		conn.Close()
		t.Fatal("the Web UI still answers after Stop")
	}
}

// TestWebUIPortTaken gets an error, not an exit, when the UI's port is in use.
func TestWebUIPortTaken(t *testing.T) {
	short.Skip(t, "a Temporal server")
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	srv, err := temporalserver.Start(temporalserver.Options{UIPort: l.Addr().(*net.TCPAddr).Port})
	if err == nil {
		srv.Stop()
		t.Fatal("Start succeeded on a UI port in use")
	}
	if !strings.Contains(err.Error(), "Web UI") {
		t.Fatalf("error %q does not name the Web UI", err)
	}
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func httpGet(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s\n%.2000s", url, resp.Status, b)
	}
	return string(b)
}
