package main_test

import (
	"bytes"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	enumspb "go.temporal.io/api/enums/v1"
	sdkclient "go.temporal.io/sdk/client"
	"gocloud.dev/blob/s3blob"
	"google.golang.org/protobuf/proto"

	"github.com/vogscore/vog/job"
)

const localCluster = "../../deploy/local-cluster.sh"

// containerEngine returns the engine deploy/local-cluster.sh uses, and skips
// the test where it cannot run containers, unless $VOG_REQUIRE_PODMAN is
// set (scripts/test.sh sets it).
func containerEngine(t *testing.T) string {
	t.Helper()
	engine := os.Getenv("CONTAINER_ENGINE")
	if engine == "" {
		engine = "podman"
	}
	out, err := exec.Command(engine, "info").CombinedOutput()
	if err != nil {
		msg := fmt.Sprintf("%s cannot run containers here (%v: %s); scripts/setup.sh --test installs podman",
			engine, err, firstLine(string(out)))
		if os.Getenv("VOG_REQUIRE_PODMAN") != "" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	return engine
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(strings.TrimSpace(s), "\n")
	return line
}

// TestContainerCluster follows docs/deploy.md's local cluster literally:
// deploy/local-cluster.sh builds the images and starts a Temporal server
// (vog server), an S3 server (versitygw), two gradient workers and a reduce
// worker, each in its own container. From the host, Fashion-MNIST's test
// set and the checkpoints go to its S3 store and a job is submitted that
// reads them there and writes its result there. One gradient worker's
// container is killed in the middle of a shard; the job completes on the
// other, and its rows equal vog run's on this machine, bit for bit.
func TestContainerCluster(t *testing.T) {
	faultNeedT10k(t)
	const data = faultT10k
	vog(t)
	engine := containerEngine(t)
	// In parallel with the other tests that wait more than they compute:
	// most of this one is image layers and a heartbeat timeout.
	t.Parallel()
	name := "vogtest-" + strconv.FormatInt(time.Now().UnixNano()%(1<<30), 36)
	tport, uiport, s3port := freePort(t), freePort(t), freePort(t)
	env := append(os.Environ(), "VOG_CLUSTER="+name, "CONTAINER_ENGINE="+engine,
		"VOG_TEMPORAL_PORT="+strconv.Itoa(tport), "VOG_UI_PORT="+strconv.Itoa(uiport), "VOG_S3_PORT="+strconv.Itoa(s3port),
		// The thread count of the run it is compared with: bit-equal rows
		// need equal thread counts (TestThreadCounts).
		"VOG_WORKER_ARGS=--threads 1")
	cluster := func(cmd string) string {
		t.Helper()
		c := exec.Command(localCluster, cmd)
		c.Env = env
		var out bytes.Buffer
		c.Stdout, c.Stderr = &out, &out
		start := time.Now()
		if err := c.Run(); err != nil {
			t.Fatalf("local-cluster.sh %s: %v\n%s", cmd, err, out.String())
		}
		t.Logf("local-cluster.sh %s: %.0f s", cmd, time.Since(start).Seconds())
		return out.String()
	}
	t.Cleanup(func() {
		if t.Failed() {
			for _, c := range []string{"temporal", "s3", "gradient-1", "gradient-2", "reduce"} {
				out, _ := exec.Command(engine, "logs", "--tail", "30", name+"-"+c).CombinedOutput()
				t.Logf("%s-%s:\n%s", name, c, out)
			}
		}
		cluster("down")
	})
	// Built each time: the layer cache makes it quick when nothing changed,
	// and the images then hold this tree's code.
	cluster("build")
	up := cluster("up")
	if !strings.Contains(up, "Web UI http://127.0.0.1:"+strconv.Itoa(uiport)) {
		t.Fatalf("up did not say where the Web UI is:\n%s", up)
	}
	ui := fmt.Sprintf("http://127.0.0.1:%d/", uiport)
	faultPoll(t, "the Web UI at "+ui, 30*time.Second, 200*time.Millisecond, func() bool {
		resp, err := http.Get(ui)
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})

	// The cluster's S3 store, with the keys up printed (given here, not in
	// the environment, which the suite's own S3 server's keys hold).
	u, err := url.Parse(fmt.Sprintf("s3://vog?endpoint=http://127.0.0.1:%d&region=us-east-1&use_path_style=true", s3port))
	if err != nil {
		t.Fatal(err)
	}
	client := s3.New(s3.Options{Region: "us-east-1", UsePathStyle: true,
		BaseEndpoint: aws.String(fmt.Sprintf("http://127.0.0.1:%d", s3port)),
		Credentials:  credentials.NewStaticCredentialsProvider("vog", "vogsecret", "")})
	b, err := s3blob.OpenBucket(t.Context(), client, "vog", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	upload := func(local, key string) {
		body, err := os.ReadFile(local)
		if err != nil {
			t.Fatal(err)
		}
		if err := b.WriteAll(t.Context(), key, body, nil); err != nil {
			t.Fatalf("upload %s: %v", key, err)
		}
	}
	upload(data+"-images-idx3-ubyte.gz", "data/t10k-images-idx3-ubyte.gz")
	upload(data+"-labels-idx1-ubyte.gz", "data/t10k-labels-idx1-ubyte.gz")
	ckpts, _ := filepath.Glob(filepath.Join(fixtures, "ckpt", "*.pt"))
	for _, c := range ckpts {
		upload(c, "runs/cnn/"+filepath.Base(c))
	}

	addr := "127.0.0.1:" + strconv.Itoa(tport)
	sub := runVog(t, "submit", "--temporal", addr, "--format", "idx",
		"--dataset", storeKey(u, "data/t10k"), "--checkpoints", storeKey(u, "runs/cnn"), "--out", storeKey(u, "scores/cnn"),
		"--shard-size", "500", "--heartbeat-timeout", "5s")
	if sub.err != nil {
		t.Fatalf("submit: %v\n%s", sub.err, sub.stderr)
	}
	id := strings.TrimSpace(sub.stdout)

	// Kill a gradient worker's container while it computes a shard: the
	// SDK names a worker pid@host, and each container's host name is its
	// own name.
	c := dialServer(t, addr)
	victim, shard := busy(t, c, id, func(identity string) string {
		if parts := strings.Split(identity, "@"); len(parts) > 1 && strings.HasPrefix(parts[1], name+"-gradient-") {
			return parts[1]
		}
		return ""
	})
	killed := time.Now()
	if out, err := exec.Command(engine, "kill", victim).CombinedOutput(); err != nil {
		t.Fatalf("%s kill %s: %v\n%s", engine, victim, err, out)
	}

	w := runVog(t, "wait", "--temporal", addr, "--progress", "1h", id)
	if w.err != nil {
		t.Fatalf("wait: %v\n%s", w.err, w.stderr)
	}
	t.Logf("killed %s mid-shard; the job ended %.0f s later", victim, time.Since(killed).Seconds())
	if !strings.Contains(w.stdout, "wrote 10000 rows") {
		t.Fatalf("wait output:\n%s", w.stdout)
	}
	started := shard.finalAttempt(t, c)
	if started.GetAttempt() < 2 || strings.Contains(started.GetIdentity(), "@"+victim+"@") {
		t.Fatalf("the killed container's shard was not retried elsewhere: %v", started)
	}

	checkHistories(t, c, id)

	local := t.TempDir()
	r := runVog(t, "run", "--state-dir", t.TempDir(), "--format", "idx", "--dataset", data,
		"--checkpoints", fixtures+"/ckpt", "--out", local, "--shard-size", "10000", "--threads", "1")
	if r.err != nil {
		t.Fatalf("%v\n%s", r.err, r.stderr)
	}
	got, want := readRows(t, fetchBucket(t, b, "scores/cnn")), readRows(t, local)
	if len(want) != 10000 || !slices.Equal(got, want) {
		t.Fatalf("the cluster's rows (%d) differ from vog run's (%d)", len(got), len(want))
	}
}

// checkHistories measures the job's workflow histories against Temporal's
// limits (docs/deploy.md, "Sizing"): events per shard activity in the leaf
// children, extrapolated to a full leaf of job.ActivitiesPerChild, against
// the 51,200 events a history may hold; and the largest event, against the
// 2 MB a payload may be.
func checkHistories(t *testing.T, c sdkclient.Client, id string) {
	t.Helper()
	var walk func(id string)
	walk = func(id string) {
		var events, shards, largest int
		var children []string
		it := c.GetWorkflowHistory(t.Context(), id, "", false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
		for it.HasNext() {
			e, err := it.Next()
			if err != nil {
				t.Fatal(err)
			}
			events++
			largest = max(largest, proto.Size(e))
			if a := e.GetActivityTaskScheduledEventAttributes(); a != nil && a.GetActivityType().GetName() == job.ScoreShardActivity {
				shards++
			}
			if a := e.GetStartChildWorkflowExecutionInitiatedEventAttributes(); a != nil {
				children = append(children, a.GetWorkflowId())
			}
		}
		t.Logf("history of %s: %d events, %d shard activities, %d children, largest event %d bytes", id, events, shards, len(children), largest)
		if largest > 2<<20/10 {
			t.Errorf("%s: an event of %d bytes: within 10x of Temporal's 2 MB payload limit", id, largest)
		}
		if shards > 0 {
			full := events * job.ActivitiesPerChild / shards
			t.Logf("a leaf of %d shards would hold about %d events (Temporal's limit: 51,200)", job.ActivitiesPerChild, full)
			if full > 51200/2 {
				t.Errorf("%s: %d events per shard: a full leaf (%d) would come within 2x of the 51,200 limit", id, events/shards, full)
			}
		}
		for _, child := range children {
			walk(child)
		}
	}
	walk(id)
}
