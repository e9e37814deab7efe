package workflows_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/interceptor"
	tlog "go.temporal.io/sdk/log"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	_ "gocloud.dev/blob/fileblob"

	"github.com/vogscore/vog/activities"
	"github.com/vogscore/vog/engine"
	"github.com/vogscore/vog/engine/linear"
	"github.com/vogscore/vog/internal/testjob"
	"github.com/vogscore/vog/job"
	"github.com/vogscore/vog/jobstore"
	"github.com/vogscore/vog/storage"
	"github.com/vogscore/vog/workflows"
)

const (
	h, w, classes, examples = 4, 5, 3, 50
)

type fixture struct {
	dataset     string
	ckptDir     string
	checkpoints []linear.Checkpoint
}

func newFixture(t *testing.T, k int) fixture {
	t.Helper()
	dir := t.TempDir()
	images, labels := testjob.Dataset(examples, h, w, classes)
	prefix, err := testjob.WriteIDX(dir, "toy", h, w, images, labels)
	if err != nil {
		t.Fatal(err)
	}
	cs := testjob.Linear(k, classes, h, w)
	if _, err := testjob.WriteCheckpoints(filepath.Join(dir, "ckpt"), cs); err != nil {
		t.Fatal(err)
	}
	return fixture{dataset: prefix, ckptDir: filepath.Join(dir, "ckpt"), checkpoints: cs}
}

func (f fixture) spec(out string, shardSize int) job.Spec {
	return job.Spec{
		Dataset:     datasetSpec(f.dataset),
		Checkpoints: []string{f.ckptDir},
		ShardSize:   shardSize,
		BatchSize:   5,
		Out:         out,
	}
}

type shardFunc = func(context.Context, job.ShardInput) (job.ShardResult, error)

// aroundShards routes every ScoreShard call through f, which may fail it or
// call the real activity.
func aroundShards(f func(ctx context.Context, in job.ShardInput, real shardFunc) (job.ShardResult, error)) func(*testsuite.TestWorkflowEnvironment, *activities.Activities) {
	return func(env *testsuite.TestWorkflowEnvironment, a *activities.Activities) {
		env.OnActivity(a.ScoreShard, mock.Anything, mock.Anything).Return(
			func(ctx context.Context, in job.ShardInput) (job.ShardResult, error) {
				return f(ctx, in, a.ScoreShard)
			})
	}
}

// lastProgress is what the progress query answered after the last run.
var lastProgress job.Progress

// run executes ScoreJob in the SDK's test environment with real activities
// over local files and the linear engine. setup may inject failures.
func run(t *testing.T, in job.Request, setup func(*testsuite.TestWorkflowEnvironment, *activities.Activities)) (job.Result, error) {
	t.Helper()
	var s testsuite.WorkflowTestSuite
	s.SetLogger(tlog.NewStructuredLogger(slog.New(slog.NewTextHandler(io.Discard, nil))))
	env := s.NewTestWorkflowEnvironment()
	env.SetWorkerOptions(worker.Options{Interceptors: []interceptor.WorkerInterceptor{&activities.Interceptor{}}})
	a := &activities.Activities{Loader: linear.Loader{}}
	env.RegisterWorkflow(workflows.ScoreJob)
	env.RegisterWorkflow(workflows.ScoreShards)
	env.RegisterActivity(a)
	if setup != nil {
		setup(env, a)
	}
	env.ExecuteWorkflow(workflows.ScoreJob, in)
	if !env.IsWorkflowCompleted() {
		t.Fatal("workflow did not complete")
	}
	var res job.Result
	err := env.GetWorkflowError()
	if err == nil {
		err = env.GetWorkflowResult(&res)
	}
	lastProgress = job.Progress{}
	if v, qerr := env.QueryWorkflow(job.ProgressQuery); qerr == nil {
		v.Get(&lastProgress)
	}
	return res, err
}

func readScores(t *testing.T, out string, shards int) []job.ScoreRow {
	t.Helper()
	b, err := storage.OpenPrefix(t.Context(), mustParse(t, out))
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	var rows []job.ScoreRow
	for i := range shards {
		part, err := storage.ReadParquet[job.ScoreRow](t.Context(), b, jobstore.PartKey(i), 0, -1)
		if err != nil {
			t.Fatal(err)
		}
		rows = append(rows, part...)
	}
	return rows
}

func TestScoreJobClosedForm(t *testing.T) {
	f := newFixture(t, 4)
	out := t.TempDir()
	res, err := run(t, job.Request{Spec: f.spec(out, 7)}, nil) // rounded up to 2 batches of 5
	if err != nil {
		t.Fatal(err)
	}
	if res.Examples != examples || res.Shards != 5 || res.Rows != examples || res.Parts != 5 {
		t.Fatalf("result %+v", res)
	}
	rows := readScores(t, out, res.Shards)
	for i, r := range rows {
		want := testjob.ClassVoG(f.checkpoints, int(r.Label))
		if r.Index != int64(i) || r.Class != r.Label || r.Window != "all" || math.Abs(r.VoG-want) > 1e-6*want {
			t.Fatalf("row %d: %+v, want index %d class %d vog %g", i, r, i, r.Label, want)
		}
		// Within a class every example has the same gradient: std 0.
		if r.VoGNorm != 0 {
			t.Fatalf("row %d: vog_norm %g, want 0 for a class of equal scores", i, r.VoGNorm)
		}
	}
	if len(res.Hardest) != job.HardestCount {
		t.Fatalf("%d hardest examples, want %d", len(res.Hardest), job.HardestCount)
	}
}

// TestSameRowsWhateverTheSharding runs one job with several shard sizes and
// checks that the rows are identical, bit for bit.
func TestSameRowsWhateverTheSharding(t *testing.T) {
	f := newFixture(t, 11) // epoch_10 and epoch_11 test natural order
	var first []job.ScoreRow
	for _, size := range []int{50, 7, 13, 1} {
		out := t.TempDir()
		spec := f.spec(out, size)
		spec.Label = job.LabelPredicted
		res, err := run(t, job.Request{Spec: spec, MaxInFlight: 3, ShardsPerWrite: 4, ShardsPerChild: 7}, nil)
		if err != nil {
			t.Fatalf("shard size %d: %v", size, err)
		}
		rows := readScores(t, out, res.Shards)
		if first == nil {
			first = rows
			checkPredicted(t, f, rows)
			continue
		}
		if !slices.Equal(rows, first) {
			t.Fatalf("shard size %d gives other rows than shard size 50", size)
		}
	}
}

// checkPredicted checks that --label predicted targets the class the last
// checkpoint (epoch_11, not epoch_9) predicts.
func checkPredicted(t *testing.T, f fixture, rows []job.ScoreRow) {
	images, _ := testjob.Dataset(examples, h, w, classes)
	last := f.checkpoints[len(f.checkpoints)-1]
	for i, r := range rows {
		best, bestV := 0, math.Inf(-1)
		for p := range classes {
			v := float64(last.Bias[p])
			for j, px := range images[i] {
				v += float64(last.Weight[p*h*w+j]) * float64(float32(px)/255)
			}
			if v > bestV {
				best, bestV = p, v
			}
		}
		if r.Class != int32(best) || r.Pred != int32(best) {
			t.Fatalf("row %d: class %d pred %d, want the last checkpoint's prediction %d", i, r.Class, r.Pred, best)
		}
	}
}

// TestShardRetry fails one shard's first attempt; the retry completes the
// job with the rows of an undisturbed run.
func TestShardRetry(t *testing.T) {
	f := newFixture(t, 4)
	clean := t.TempDir()
	res, err := run(t, job.Request{Spec: f.spec(clean, 10)}, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := readScores(t, clean, res.Shards)

	out := t.TempDir()
	var calls atomic.Int32
	res, err = run(t, job.Request{Spec: f.spec(out, 10)}, aroundShards(func(ctx context.Context, in job.ShardInput, real shardFunc) (job.ShardResult, error) {
		if in.Shard == 2 && calls.Add(1) == 1 {
			return job.ShardResult{}, errors.New("worker lost")
		}
		return real(ctx, in)
	}))
	if err != nil {
		t.Fatal(err)
	}
	if calls.Load() != 2 {
		t.Fatalf("shard 2 ran %d times, want 2", calls.Load())
	}
	if got := readScores(t, out, res.Shards); !slices.Equal(got, want) {
		t.Fatal("rows after a retry differ from an undisturbed run's")
	}
}

// TestBadExamplesFailAlone: an example whose label the model lacks is
// left out and listed in failures.parquet, with its reason, while its
// shard and the job complete; the other rows are those of a run without
// it. With no failures allowed, the same job fails, naming the reason.
func TestBadExamplesFailAlone(t *testing.T) {
	dir := t.TempDir()
	images, labels := testjob.Dataset(20, h, w, classes)
	labels[13] = 7
	prefix, err := testjob.WriteIDX(dir, "bad", h, w, images, labels)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := testjob.WriteCheckpoints(filepath.Join(dir, "ckpt"), testjob.Linear(3, classes, h, w)); err != nil {
		t.Fatal(err)
	}
	out := t.TempDir()
	spec := job.Spec{Dataset: datasetSpec(prefix), Checkpoints: []string{filepath.Join(dir, "ckpt")}, ShardSize: 5, BatchSize: 5, Out: out}
	res, err := run(t, job.Request{Spec: spec, MaxInFlight: 1, MaxBadFraction: 0.1}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Failed) != 0 || res.Failures != 1 || res.FailedKinds[job.FailLabel] != 1 || res.Rows != 19 {
		t.Fatalf("result %+v", res)
	}
	b, err := storage.OpenPrefix(t.Context(), mustParse(t, out))
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	failures, err := storage.ReadParquet[job.FailureRow](t.Context(), b, jobstore.FailuresKey, 0, -1)
	if err != nil {
		t.Fatal(err)
	}
	if len(failures) != 1 || failures[0].Index != 13 || failures[0].Shard != 2 || failures[0].Kind != job.FailLabel ||
		!strings.Contains(failures[0].Reason, "label 7 outside the 3 outputs") {
		t.Fatalf("failures %+v", failures)
	}
	rows := readScores(t, out, res.Shards)
	for _, r := range rows {
		if r.Index == 13 {
			t.Fatal("the failed example has a row")
		}
	}
	// The others are scored as in a dataset without it: the same VoG, and
	// class statistics over the good examples only.
	classRows, err := storage.ReadParquet[job.ClassRow](t.Context(), b, jobstore.ClassesKey, 0, -1)
	if err != nil {
		t.Fatal(err)
	}
	var n int64
	for _, c := range classRows {
		n += c.N
	}
	if n != 19 {
		t.Fatalf("class statistics over %d examples, want 19", n)
	}

	spec.Out = t.TempDir()
	// One shard at a time: no activity is left writing when the job fails.
	_, err = run(t, job.Request{Spec: spec, MaxInFlight: 1}, nil)
	if err == nil || !strings.Contains(err.Error(), "1 of 20 examples could not be scored") || !strings.Contains(err.Error(), "1 label outside the model") {
		t.Fatalf("no failures allowed: got %v", err)
	}
}

// TestPartialThenResume: a shard that keeps failing after its retries does
// not sink the job; once the cause is gone, running the job again computes
// only that shard and gives the rows of an undisturbed run.
func TestPartialThenResume(t *testing.T) {
	f := newFixture(t, 4)
	clean := t.TempDir()
	res, err := run(t, job.Request{Spec: f.spec(clean, 10)}, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := readScores(t, clean, res.Shards)

	out := t.TempDir()
	var attempts atomic.Int32
	res, err = run(t, job.Request{Spec: f.spec(out, 10)}, aroundShards(func(ctx context.Context, in job.ShardInput, real shardFunc) (job.ShardResult, error) {
		if in.Shard == 3 {
			attempts.Add(1)
			return job.ShardResult{}, errors.New("GPU fell off the bus")
		}
		return real(ctx, in)
	}))
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Failed) != 1 || res.Failed[0].Shard != 3 || !strings.Contains(res.Failed[0].Error, "GPU fell off the bus") {
		t.Fatalf("failed %+v", res.Failed)
	}
	// Backoff from 1 s, doubling to a minute: 15 attempts fit in the
	// default 10 minutes (in the test environment's skipped time).
	if attempts.Load() != 15 {
		t.Fatalf("failing shard tried %d times, want 15", attempts.Load())
	}
	var computed []int
	res, err = run(t, job.Request{Spec: f.spec(out, 10)}, aroundShards(func(ctx context.Context, in job.ShardInput, real shardFunc) (job.ShardResult, error) {
		r, err := real(ctx, in)
		if !r.Reused {
			computed = append(computed, in.Shard)
		}
		return r, err
	}))
	if err != nil || len(res.Failed) != 0 {
		t.Fatalf("resume: %v %+v", err, res.Failed)
	}
	if !slices.Equal(computed, []int{3}) || res.Reused != res.Shards-1 {
		t.Fatalf("resume computed shards %v (reused %d of %d), want only 3", computed, res.Reused, res.Shards)
	}
	if got := readScores(t, out, res.Shards); !slices.Equal(got, want) {
		t.Fatal("resumed rows differ from an undisturbed run's")
	}
}

// TestOutHoldsAnotherJob: --out holding a different job is refused and its
// files are left as they were.
func TestOutHoldsAnotherJob(t *testing.T) {
	f := newFixture(t, 4)
	out := t.TempDir()
	if _, err := run(t, job.Request{Spec: f.spec(out, 10)}, nil); err != nil {
		t.Fatal(err)
	}
	before := readScores(t, out, 5)
	spec := f.spec(out, 10)
	spec.Label = job.LabelPredicted
	_, err := run(t, job.Request{Spec: spec}, nil)
	if err == nil || !strings.Contains(err.Error(), "holds another job") {
		t.Fatalf("got %v, want a refusal", err)
	}
	if !slices.Equal(readScores(t, out, 5), before) {
		t.Fatal("the refused job changed the earlier results")
	}
	// The same job again reuses every shard.
	res, err := run(t, job.Request{Spec: f.spec(out, 10)}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.Reused != res.Shards {
		t.Fatalf("rerun reused %d of %d shards", res.Reused, res.Shards)
	}
}

// closeRows checks rows against a single-pass run's: the same examples,
// classes and predictions, and VoG within 1e-5 relative (partial moments
// are stored as float32).
func closeRows(t *testing.T, got, want []job.ScoreRow) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%d rows, want %d", len(got), len(want))
	}
	for i := range want {
		g, w := got[i], want[i]
		if g.Index != w.Index || g.Class != w.Class || g.Pred != w.Pred || g.Label != w.Label ||
			math.Abs(g.VoG-w.VoG) > 1e-5*w.VoG || math.Abs(g.VoGNorm-w.VoGNorm) > 1e-4 {
			t.Fatalf("row %d: %+v, single pass %+v", i, g, w)
		}
	}
}

// TestCheckpointGroups maps 5 checkpoints in groups of 2 and merges the
// partial moments: the rows equal a single pass's, in both label modes.
func TestCheckpointGroups(t *testing.T) {
	f := newFixture(t, 5)
	for _, label := range []string{job.LabelTrue, job.LabelPredicted} {
		single := t.TempDir()
		spec := f.spec(single, 10)
		spec.Label = label
		res, err := run(t, job.Request{Spec: spec}, nil)
		if err != nil {
			t.Fatal(err)
		}
		want := readScores(t, single, res.Shards)

		grouped := t.TempDir()
		spec.Out, spec.CheckpointGroup = grouped, 2
		res, err = run(t, job.Request{Spec: spec, MaxInFlight: 4}, nil)
		if err != nil || len(res.Failed) > 0 {
			t.Fatalf("%v %+v", err, res.Failed)
		}
		for g := range 3 {
			if _, err := os.Stat(groupFile(t, grouped, 2, g)); err != nil {
				t.Fatalf("group file: %v", err)
			}
		}
		closeRows(t, readScores(t, grouped, res.Shards), want)
	}
}

// TestCorruptPartialMoments: a partial moments file altered after it was
// written fails its shard at the reduce and is removed; running the job
// again recomputes only that group and completes it.
func TestCorruptPartialMoments(t *testing.T) {
	f := newFixture(t, 5)
	single := t.TempDir()
	res, err := run(t, job.Request{Spec: f.spec(single, 10)}, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := readScores(t, single, res.Shards)

	out := t.TempDir()
	spec := f.spec(out, 10)
	spec.CheckpointGroup = 2
	var key string
	res, err = run(t, job.Request{Spec: spec}, func(env *testsuite.TestWorkflowEnvironment, a *activities.Activities) {
		env.OnActivity(a.ScoreGroup, mock.Anything, mock.Anything).Return(
			func(ctx context.Context, in job.GroupInput) (job.ShardResult, error) {
				r, err := a.ScoreGroup(ctx, in)
				if in.Shard == 1 && in.Group == 2 {
					key = groupFile(t, out, 1, 2)
					data, _ := os.ReadFile(key)
					data[len(data)/2] ^= 1
					os.WriteFile(key, data, 0o644)
				}
				return r, err
			})
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Failed) != 1 || res.Failed[0].Shard != 1 || !strings.Contains(res.Failed[0].Error, "checksum mismatch") {
		t.Fatalf("failed %+v", res.Failed)
	}
	if _, err := os.Stat(key); !os.IsNotExist(err) {
		t.Fatalf("the corrupt file was not removed: %v", err)
	}
	var recomputed []string
	res, err = run(t, job.Request{Spec: spec}, func(env *testsuite.TestWorkflowEnvironment, a *activities.Activities) {
		env.OnActivity(a.ScoreGroup, mock.Anything, mock.Anything).Return(
			func(ctx context.Context, in job.GroupInput) (job.ShardResult, error) {
				r, err := a.ScoreGroup(ctx, in)
				if !r.Reused {
					recomputed = append(recomputed, fmt.Sprintf("%d/%d", in.Shard, in.Group))
				}
				return r, err
			})
	})
	if err != nil || len(res.Failed) > 0 {
		t.Fatalf("%v %+v", err, res.Failed)
	}
	if !slices.Equal(recomputed, []string{"1/2"}) {
		t.Fatalf("recomputed %v, want only shard 1 group 2", recomputed)
	}
	closeRows(t, readScores(t, out, res.Shards), want)
}

// TestShardTree: a range of more leaves than a workflow may have children
// becomes a tree of ScoreShards children, every shard scored once.
func TestShardTree(t *testing.T) {
	f := newFixture(t, 4)
	out := t.TempDir()
	res, err := run(t, job.Request{Spec: f.spec(out, 5)}, nil)
	if err != nil {
		t.Fatal(err)
	}
	var s testsuite.WorkflowTestSuite
	s.SetLogger(tlog.NewStructuredLogger(slog.New(slog.NewTextHandler(io.Discard, nil))))
	env := s.NewTestWorkflowEnvironment()
	env.SetWorkerOptions(worker.Options{Interceptors: []interceptor.WorkerInterceptor{&activities.Interceptor{}}})
	env.RegisterWorkflow(workflows.ScoreShards)
	env.RegisterActivity(&activities.Activities{Loader: linear.Loader{}})
	var children atomic.Int32
	env.SetOnChildWorkflowStartedListener(func(*workflow.Info, workflow.Context, converter.EncodedValues) { children.Add(1) })
	// 10 shards, one per leaf, at most 2 children per workflow: 2 children
	// of 5, each with 2 of 3 and 2, and so on down to 10 leaves.
	env.ExecuteWorkflow(workflows.ScoreShards, workflows.ShardsInput{
		Ref: res.Ref, First: 0, Last: res.Shards, MaxInFlight: 3, PerChild: 1, Fanout: 2,
	})
	var got workflows.ShardsResult
	if err := env.GetWorkflowResult(&got); err != nil {
		t.Fatal(err)
	}
	if res.Shards != 10 || got.Done != 10 || got.Reused != 10 || got.Examples != examples {
		t.Fatalf("tree over %d shards: %+v", res.Shards, got)
	}
	if children.Load() < 10 {
		t.Fatalf("%d child workflows, want a tree down to 10 leaves", children.Load())
	}
}

// TestTargetsClosedForm runs a job with each --target and checks every
// row's VoG against a direct computation from the linear checkpoints'
// closed-form gradients of the logit, the softmax probability and the
// loss; the target is part of the job's fingerprint.
func TestTargetsClosedForm(t *testing.T) {
	f := newFixture(t, 5)
	images, _ := testjob.Dataset(examples, h, w, classes)
	fingerprints := map[string]bool{}
	for _, target := range engine.Targets {
		out := t.TempDir()
		spec := f.spec(out, 10)
		spec.Target = target
		res, err := run(t, job.Request{Spec: spec}, nil)
		if err != nil {
			t.Fatalf("--target %s: %v", target, err)
		}
		fingerprints[res.Ref.Fingerprint] = true
		kind, _ := engine.ParseTarget(target)
		for _, r := range readScores(t, out, res.Shards) {
			x := make([]float64, h*w)
			for j, v := range images[r.Index] {
				x[j] = float64(float32(v) / 255)
			}
			want := testjob.TargetVoG(f.checkpoints, x, int(r.Class), kind)
			if math.Abs(r.VoG-want) > 1e-5*math.Max(want, 1e-3) {
				t.Fatalf("--target %s, example %d: VoG %g, closed form %g", target, r.Index, r.VoG, want)
			}
			if r.AbsVoGNorm != math.Abs(r.VoGNorm) {
				t.Fatalf("abs_vog_norm %g for vog_norm %g", r.AbsVoGNorm, r.VoGNorm)
			}
		}
	}
	if len(fingerprints) != len(engine.Targets) {
		t.Fatal("two targets gave one fingerprint")
	}
}

// groupFile is the path of the partial moments file of shard i and
// checkpoint group g of the job planned at out.
func groupFile(t *testing.T, out string, i, g int) string {
	t.Helper()
	j, err := jobstore.ReadJob(t.Context(), out)
	if err != nil {
		t.Fatal(err)
	}
	r := j.Groups()[g]
	return filepath.Join(out, jobstore.ShardGroupKey(i, j.GroupFingerprint(r[0], r[1])))
}
