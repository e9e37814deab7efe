package activities_test

import (
	"bytes"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"go.temporal.io/sdk/interceptor"
	tlog "go.temporal.io/sdk/log"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/worker"

	"gocloud.dev/blob/fileblob"

	"github.com/vogscore/vog/activities"
	"github.com/vogscore/vog/engine"
	"github.com/vogscore/vog/engine/linear"
	"github.com/vogscore/vog/internal/testjob"
	"github.com/vogscore/vog/job"
	"github.com/vogscore/vog/jobstore"
	"github.com/vogscore/vog/storage"
)

const h, w, classes = 3, 4, 3

type env struct {
	spec job.Spec
	dir  string
	acts *activities.Activities
	te   *testsuite.TestActivityEnvironment
}

func newEnv(t testing.TB, ckpts ...linear.Checkpoint) *env {
	t.Helper()
	dir := t.TempDir()
	images, labels := testjob.Dataset(30, h, w, classes)
	prefix, err := testjob.WriteIDX(dir, "toy", h, w, images, labels)
	if err != nil {
		t.Fatal(err)
	}
	if len(ckpts) == 0 {
		ckpts = testjob.Linear(3, classes, h, w)
	}
	if _, err := testjob.WriteCheckpoints(filepath.Join(dir, "ckpt"), ckpts); err != nil {
		t.Fatal(err)
	}
	var s testsuite.WorkflowTestSuite
	s.SetLogger(tlog.NewStructuredLogger(slog.New(slog.NewTextHandler(io.Discard, nil))))
	e := &env{
		spec: job.Spec{
			Dataset:     job.Dataset{Format: "idx", URL: prefix},
			Checkpoints: []string{filepath.Join(dir, "ckpt")},
			ShardSize:   10,
			BatchSize:   5,
			Out:         filepath.Join(dir, "out"),
		},
		dir:  dir,
		acts: &activities.Activities{Loader: linear.Loader{}},
		te:   s.NewTestActivityEnvironment(),
	}
	e.te.SetWorkerOptions(worker.Options{Interceptors: []interceptor.WorkerInterceptor{&activities.Interceptor{}}})
	e.te.RegisterActivity(e.acts)
	return e
}

func (e *env) plan(t testing.TB) job.PlanResult {
	t.Helper()
	v, err := e.te.ExecuteActivity(e.acts.Plan, job.PlanInput{Spec: e.spec})
	if err != nil {
		t.Fatal(err)
	}
	var res job.PlanResult
	if err := v.Get(&res); err != nil {
		t.Fatal(err)
	}
	return res
}

func (e *env) score(ref job.Ref, shard int) (job.ShardResult, error) {
	var res job.ShardResult
	v, err := e.te.ExecuteActivity(e.acts.ScoreShard, job.ShardInput{Ref: ref, Shard: shard})
	if err == nil {
		err = v.Get(&res)
	}
	return res, err
}

func TestPlan(t *testing.T) {
	e := newEnv(t)
	res := e.plan(t)
	if res.Examples != 30 || res.Shards != 3 || res.Checkpoints != 3 || res.Ref.Fingerprint == "" {
		t.Fatalf("plan %+v", res)
	}
	// Planning the same job again gives the same fingerprint.
	if again := e.plan(t); again.Ref != res.Ref {
		t.Fatalf("replanning changed the job: %+v vs %+v", again.Ref, res.Ref)
	}
	job, err := os.ReadFile(filepath.Join(e.spec.Out, jobstore.JobKey))
	if err != nil || !bytes.Contains(job, []byte(res.Ref.Fingerprint)) || !bytes.Contains(job, []byte("epoch_3.pt")) {
		t.Fatalf("job.json: %v\n%s", err, job)
	}
}

// TestScoreShardIdempotent: a shard computed twice (a retry after its
// output was written, say) gives the same bytes.
func TestScoreShardIdempotent(t *testing.T) {
	e := newEnv(t)
	ref := e.plan(t).Ref
	if _, err := e.score(ref, 1); err != nil {
		t.Fatal(err)
	}
	rowsKey := shardRowsPath(t, e.spec.Out, 1)
	classesKey := filepath.Join(e.spec.Out, jobstore.ShardClassesKey(1))
	first, _ := os.ReadFile(rowsKey)
	firstClasses := readParquetFile[job.ShardClassRow](t, classesKey)
	// Done outputs are reused, not recomputed.
	res, err := e.score(ref, 1)
	if err != nil || !res.Reused {
		t.Fatalf("second call: %+v %v, want reuse", res, err)
	}
	// Computed again from scratch: the same bytes.
	os.Remove(classesKey)
	os.Remove(rowsKey)
	res, err = e.score(ref, 1)
	if err != nil || res.Reused || res.Examples != 10 {
		t.Fatalf("recompute: %+v %v", res, err)
	}
	// Another attempt, so other names: the same bytes under them, and
	// the same class sums.
	again, _ := os.ReadFile(shardRowsPath(t, e.spec.Out, 1))
	againClasses := readParquetFile[job.ShardClassRow](t, classesKey)
	if len(first) == 0 || !bytes.Equal(first, again) || !slices.Equal(firstClasses, againClasses) {
		t.Fatal("recomputing a shard gave different bytes")
	}
}

// TestShardReusedWithWindows: a finished shard of a job with several
// windows (several rows per example) is reused, not computed again.
func TestShardReusedWithWindows(t *testing.T) {
	e := newEnv(t)
	e.spec.Windows = "early=0:2,late=1:"
	ref := e.plan(t).Ref
	first, err := e.score(ref, 2)
	if err != nil || first.Reused {
		t.Fatalf("first: %+v %v", first, err)
	}
	if rows := readShardRows(t, e.spec.Out, 2); len(rows) != 2*10 {
		t.Fatalf("%d rows: want 2 windows x 10 examples", len(rows))
	}
	again, err := e.score(ref, 2)
	if err != nil || !again.Reused || again.Examples != first.Examples {
		t.Fatalf("second: %+v %v, want the shard reused", again, err)
	}
}

func isBadInput(err error) bool {
	var app *temporal.ApplicationError
	return errors.As(err, &app) && app.Type() == job.BadInputType && app.NonRetryable()
}

func TestCheckpointsDisagree(t *testing.T) {
	cs := testjob.Linear(2, classes, h, w)
	cs = append(cs, testjob.Linear(1, classes+1, h, w)...)
	e := newEnv(t, cs...)
	_, err := e.score(e.plan(t).Ref, 0)
	if !isBadInput(err) || !strings.Contains(err.Error(), "epoch_3.pt has 4") {
		t.Fatalf("got %v, want a bad-input error naming epoch_3.pt", err)
	}
}

func TestCheckpointChangedAfterPlanning(t *testing.T) {
	e := newEnv(t)
	ref := e.plan(t).Ref
	changed := testjob.Linear(4, classes, h, w)[3]
	if err := os.WriteFile(filepath.Join(e.dir, "ckpt", "epoch_2.pt"), changed.Marshal(), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := e.score(ref, 0)
	if !isBadInput(err) || !strings.Contains(err.Error(), "epoch_2.pt changed since the job was planned") {
		t.Fatalf("got %v", err)
	}
}

// TestJobEditedAfterPlanning: a job.json changed by hand is not trusted:
// shards refuse it, planning again names it, and --overwrite plans anew.
func TestJobEditedAfterPlanning(t *testing.T) {
	e := newEnv(t)
	ref := e.plan(t).Ref
	path := filepath.Join(e.spec.Out, jobstore.JobKey)
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	edited := bytes.Replace(data, []byte(`"batch_size": 5`), []byte(`"batch_size": 6`), 1)
	if bytes.Equal(edited, data) {
		t.Fatalf("no batch_size in job.json:\n%s", data)
	}
	if err := os.WriteFile(path, edited, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := e.score(ref, 0); !isBadInput(err) || !strings.Contains(err.Error(), "does not match its fingerprint") {
		t.Fatalf("scoring an edited job: %v", err)
	}
	_, err = e.te.ExecuteActivity(e.acts.Plan, job.PlanInput{Spec: e.spec})
	if !isBadInput(err) || !strings.Contains(err.Error(), "job.json") || !strings.Contains(err.Error(), "--overwrite") {
		t.Fatalf("planning over an edited job: %v", err)
	}
	if _, err := e.te.ExecuteActivity(e.acts.Plan, job.PlanInput{Spec: e.spec, Overwrite: true}); err != nil {
		t.Fatalf("--overwrite: %v", err)
	}
	if again, _ := os.ReadFile(path); !bytes.Equal(again, data) {
		t.Fatal("--overwrite did not plan the job anew")
	}
}

func TestPlanErrors(t *testing.T) {
	e := newEnv(t)
	bad := e.spec
	bad.Checkpoints = []string{filepath.Join(e.dir, "empty")}
	os.Mkdir(filepath.Join(e.dir, "empty"), 0o755)
	_, err := e.te.ExecuteActivity(e.acts.Plan, job.PlanInput{Spec: bad})
	if !isBadInput(err) || !strings.Contains(err.Error(), "no checkpoint-N/ folders") {
		t.Fatalf("empty checkpoint folder: %v", err)
	}
	bad = e.spec
	bad.ShardSize = -1
	_, err = e.te.ExecuteActivity(e.acts.Plan, job.PlanInput{Spec: bad})
	if !isBadInput(err) || !strings.Contains(err.Error(), "--shard-size") {
		t.Fatalf("bad shard size: %v", err)
	}
}

func TestHardest(t *testing.T) {
	rows := []job.ScoreRow{{Index: 3, VoGNorm: 1}, {Index: 1, VoGNorm: 2}, {Index: 2, VoGNorm: 1}, {Index: 0, VoGNorm: -1}}
	got := job.Hardest(rows, 3)
	if len(got) != 3 || got[0].Index != 1 || got[1].Index != 2 || got[2].Index != 3 {
		t.Fatalf("hardest %+v", got)
	}
}

// TestReuseVerifiesShards: a shard output that does not verify (its rows
// file replaced by a truncated one) is computed again, not reused.
func TestReuseVerifiesShards(t *testing.T) {
	e := newEnv(t)
	ref := e.plan(t).Ref
	if _, err := e.score(ref, 0); err != nil {
		t.Fatal(err)
	}
	rowsKey := shardRowsPath(t, e.spec.Out, 0)
	good, _ := os.ReadFile(rowsKey)
	os.WriteFile(rowsKey, good[:len(good)/2], 0o644)
	res, err := e.score(ref, 0)
	if err != nil || res.Reused {
		t.Fatalf("%+v %v: want a recompute", res, err)
	}
	if again, _ := os.ReadFile(shardRowsPath(t, e.spec.Out, 0)); !bytes.Equal(again, good) {
		t.Fatal("recomputed shard differs")
	}
}

// stagingLoader gives linear models a Stage, as the GPU engine has, and
// counts the staged batches that are not yet closed.
type stagingLoader struct {
	linear.Loader
	open *atomic.Int64
	// failIn, where set, counts down gradient passes: the one that takes
	// it to 0 fails, as a GPU that falls off the bus.
	failIn *atomic.Int64
}

func (l stagingLoader) Load(data []byte, name string) (engine.Driver, error) {
	d, err := l.Loader.Load(data, name)
	return stagingDriver{d, l.open, l.failIn}, err
}

type stagingDriver struct {
	engine.Driver
	open, failIn *atomic.Int64
}

func (d stagingDriver) Grad(b *engine.Batch, s engine.Shape, t engine.Target, targets []int64, logits, grads []float32) (int, error) {
	if d.failIn != nil && d.failIn.Add(-1) == 0 {
		return 0, errors.New("GPU fell off the bus")
	}
	return d.Driver.Grad(b, s, t, targets, logits, grads)
}

type stagedCopy struct {
	open *atomic.Int64
}

func (s *stagedCopy) Close() error {
	s.open.Add(-1)
	return nil
}

func (d stagingDriver) Stage(x []float32, n int, s engine.Shape) (engine.Staged, error) {
	d.open.Add(1)
	return &stagedCopy{d.open}, nil
}

// TestStagedBatchesReleased: every batch the shard activity stages is
// closed, whether the shard succeeds or fails part-way (on the GPU an
// unclosed batch is leaked device memory), and staging changes no row.
//
// Staged batches are folded while the next checkpoint computes (as on a
// GPU). The windows make three windows share one pass per checkpoint, and
// leave a checkpoint outside every window; the shared windows' rows must
// equal the first's.
func TestStagedBatchesReleased(t *testing.T) {
	var open atomic.Int64
	var staging *env
	for _, tc := range []struct{ windows, label string }{
		{"", job.LabelTrue},
		{"a=0:2,b=0:2,c=0:2", job.LabelTrue},
		{"a=1:,b=1:,c=1:", job.LabelPredicted},
	} {
		e := newEnv(t)
		e.spec.Windows, e.spec.Label = tc.windows, tc.label
		if _, err := e.score(e.plan(t).Ref, 0); err != nil {
			t.Fatal(err)
		}
		want := readShardRows(t, e.spec.Out, 0)

		staging = newEnv(t)
		staging.acts.Loader = stagingLoader{open: &open}
		staging.spec.Windows, staging.spec.Label = tc.windows, tc.label
		staging.spec.Out = t.TempDir()
		if _, err := staging.score(staging.plan(t).Ref, 0); err != nil {
			t.Fatal(err)
		}
		if got := readShardRows(t, staging.spec.Out, 0); len(want) == 0 || !slices.Equal(got, want) {
			t.Errorf("windows %q: staged batches gave different rows", tc.windows)
		}
		first := map[int64]job.ScoreRow{}
		for _, r := range readShardRows(t, staging.spec.Out, 0) {
			f, ok := first[r.Index]
			if !ok {
				first[r.Index] = r
				continue
			}
			r.Window = f.Window
			if r != f {
				t.Fatalf("windows %q: window of the same checkpoints as window %s gives other scores:\n%+v\n%+v", tc.windows, f.Window, r, f)
			}
		}
		if n := open.Load(); n != 0 {
			t.Errorf("%d staged batches left open after a shard", n)
		}
	}

	// The engine fails in the second batch: the shard fails, and no
	// staged batch stays open.
	var failIn atomic.Int64
	failIn.Store(4)
	staging = newEnv(t)
	staging.acts.Loader = stagingLoader{open: &open, failIn: &failIn}
	_, err := staging.score(staging.plan(t).Ref, 0)
	if err == nil || !strings.Contains(err.Error(), "GPU fell off the bus") {
		t.Fatalf("engine failure: got %v", err)
	}
	if n := open.Load(); n != 0 {
		t.Errorf("%d staged batches left open after a failed shard", n)
	}
}

// TestPrecisionNeedsEngine: a job in bf16 on an engine that computes only
// in float32 fails as a bad job, naming the flag, instead of silently
// computing float32 scores.
func TestPrecisionNeedsEngine(t *testing.T) {
	e := newEnv(t)
	e.spec.Precision = "bf16"
	_, err := e.score(e.plan(t).Ref, 0)
	if err == nil || !strings.Contains(err.Error(), "--precision bf16") || !isBadInput(err) {
		t.Fatalf("bf16 on the linear engine: got %v", err)
	}
}

func readShardRows(t *testing.T, out string, shard int) []job.ScoreRow {
	t.Helper()
	b, err := fileblob.OpenBucket(out, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	rows, err := storage.ReadParquet[job.ScoreRow](t.Context(), b, strings.TrimPrefix(shardRowsPath(t, out, shard), out+"/"), 0, -1)
	if err != nil {
		t.Fatal(err)
	}
	return rows
}

// shardRowsPath returns the path of the rows file of the attempt that
// published shard i under the local folder out.
func shardRowsPath(t *testing.T, out string, i int) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(out, jobstore.ShardClassesKey(i)))
	if err != nil {
		t.Fatal(err)
	}
	meta, err := storage.ParquetMeta(data)
	if err != nil {
		t.Fatal(err)
	}
	return filepath.Join(out, jobstore.ShardRowsKey(i, meta[jobstore.AttemptMeta]))
}

func readParquetFile[T any](t *testing.T, path string) []T {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	rows, err := storage.ReadParquetBytes[T](data, path)
	if err != nil {
		t.Fatal(err)
	}
	return rows
}
