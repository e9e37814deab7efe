// Package workflows orchestrates a VoG job: plan, score shards on gradient
// workers through a sliding window of activities, merge class statistics,
// write normalised parts, seal with _SUCCESS. Orchestration only: every side
// effect is an activity, and the code is deterministic.
package workflows

import (
	"errors"
	"fmt"
	"sort"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/vogscore/vog/activities"
	"github.com/vogscore/vog/storage"
)

// Task queues. Gradient workers hold the models and run one map activity per
// device at a time; reduce workers plan and merge on CPUs.
const (
	GradientQueue = "vog-gradient"
	ReduceQueue   = "vog-reduce"
)

// ProgressQuery is the query that returns a job's Progress.
const ProgressQuery = "progress"

// JobInput starts a job.
type JobInput struct {
	Spec activities.JobSpec
	// MaxInFlight bounds the shard activities scheduled at once; 0 means
	// DefaultMaxInFlight.
	MaxInFlight int
	// ShardsPerWrite is the number of shards each write activity
	// normalises; 0 means DefaultShardsPerWrite.
	ShardsPerWrite int
	// ShardsPerChild is the number of shards each ScoreShards child
	// workflow runs; 0 means DefaultShardsPerChild.
	ShardsPerChild int
	// HeartbeatTimeout is how long a shard's worker may stay silent before
	// the shard moves to another worker; 0 means DefaultHeartbeatTimeout.
	// Shards heartbeat after every checkpoint of every batch.
	HeartbeatTimeout time.Duration
}

// Defaults for JobInput's zero fields.
const (
	DefaultMaxInFlight      = 256
	DefaultShardsPerWrite   = 64
	DefaultHeartbeatTimeout = time.Minute
	// About 6 history events per shard keep a child of 1000 shards well
	// under Temporal's 10,240-event warning.
	DefaultShardsPerChild = 1000
	// maxChildren children run at once, so that one finishing leaves no gap.
	maxChildren = 2
)

// ShardFailure is a shard that failed after its retries.
type ShardFailure struct {
	Shard int
	Error string
}

// JobResult reports a finished job. A job with Failed shards is partial: it
// has no result files; running it again computes only the failed shards.
type JobResult struct {
	Ref      activities.JobRef
	Examples int64
	Shards   int
	// Reused counts shards whose outputs existed before this run.
	Reused int
	// Failed lists the shards that failed, in shard order.
	Failed  []ShardFailure
	Rows    int64
	Parts   int
	Hardest []storage.ScoreRow
	// Seconds spent planning, scoring shards, and reducing (merging,
	// normalising, writing, sealing), by the workflow's clock.
	PlanSeconds, ScoreSeconds, ReduceSeconds float64
}

// Progress is what ProgressQuery returns.
type Progress struct {
	Stage         string
	Examples      int64
	ExamplesDone  int64
	Shards        int
	ShardsDone    int
	ShardsFailed  int
	ShardsRunning int
	// Failed lists the shards that have failed so far, and why.
	Failed []ShardFailure
}

// ScoreJob runs a job to its end.
func ScoreJob(ctx workflow.Context, in JobInput) (JobResult, error) {
	var a *activities.Activities
	p := Progress{Stage: "planning"}
	if err := workflow.SetQueryHandler(ctx, ProgressQuery, func() (Progress, error) { return p, nil }); err != nil {
		return JobResult{}, err
	}
	maxInFlight := in.MaxInFlight
	if maxInFlight <= 0 {
		maxInFlight = DefaultMaxInFlight
	}
	perWrite := in.ShardsPerWrite
	if perWrite <= 0 {
		perWrite = DefaultShardsPerWrite
	}

	t0 := workflow.Now(ctx)
	var plan activities.PlanResult
	if err := workflow.ExecuteActivity(reduceOptions(ctx), a.Plan, activities.PlanInput{Spec: in.Spec}).Get(ctx, &plan); err != nil {
		return JobResult{}, err
	}
	res := JobResult{Ref: plan.Ref, Examples: plan.Examples, Shards: plan.Shards}
	p.Stage, p.Examples, p.Shards = "scoring", plan.Examples, plan.Shards
	t1 := workflow.Now(ctx)
	res.PlanSeconds = t1.Sub(t0).Seconds()

	// Shards run in child workflows of at most ShardsPerChild shards each,
	// so that no history nears Temporal's limits whatever the job's size.
	perChild := in.ShardsPerChild
	if perChild <= 0 {
		perChild = DefaultShardsPerChild
	}
	children := (plan.Shards + perChild - 1) / perChild
	parentID := workflow.GetInfo(ctx).WorkflowExecution.ID
	err := slidingWindow(ctx, children, maxChildren, func(c int) workflow.Future {
		cctx := workflow.WithChildOptions(ctx, workflow.ChildWorkflowOptions{
			WorkflowID: fmt.Sprintf("%s/shards-%05d", parentID, c),
			TaskQueue:  ReduceQueue,
		})
		return workflow.ExecuteChildWorkflow(cctx, ScoreShards, ShardsInput{
			Ref: plan.Ref, First: c * perChild, Last: min((c+1)*perChild, plan.Shards),
			MaxInFlight: maxInFlight, HeartbeatTimeout: in.HeartbeatTimeout, Groups: plan.Groups,
		})
	}, func(c int, f workflow.Future) error {
		var r ShardsResult
		if err := f.Get(ctx, &r); err != nil {
			return err
		}
		res.Failed = append(res.Failed, r.Failed...)
		p.Failed = res.Failed
		res.Reused += r.Reused
		p.ShardsDone += r.Done
		p.ShardsFailed += len(r.Failed)
		p.ExamplesDone += r.Examples
		return nil
	})
	if err != nil {
		return res, err
	}
	t2 := workflow.Now(ctx)
	res.ScoreSeconds = t2.Sub(t1).Seconds()
	if len(res.Failed) > 0 {
		sort.Slice(res.Failed, func(a, b int) bool { return res.Failed[a].Shard < res.Failed[b].Shard })
		p.Stage = "partial"
		return res, nil
	}

	p.Stage = "merging classes"
	rctx := reduceOptions(ctx)
	if err := workflow.ExecuteActivity(rctx, a.MergeClasses, activities.MergeInput{Ref: plan.Ref}).Get(ctx, nil); err != nil {
		return res, err
	}

	p.Stage = "writing"
	writes := (plan.Shards + perWrite - 1) / perWrite
	err = slidingWindow(ctx, writes, maxInFlight, func(i int) workflow.Future {
		in := activities.WriteInput{Ref: plan.Ref, First: i * perWrite, Last: min((i+1)*perWrite, plan.Shards)}
		return workflow.ExecuteActivity(rctx, a.WriteScores, in)
	}, func(i int, f workflow.Future) error {
		var r activities.WriteResult
		if err := f.Get(ctx, &r); err != nil {
			return err
		}
		res.Rows += r.Rows
		res.Hardest = activities.Hardest(append(res.Hardest, r.Hardest...), activities.HardestCount)
		return nil
	})
	if err != nil {
		return res, err
	}

	p.Stage = "sealing"
	var fin activities.FinishResult
	if err := workflow.ExecuteActivity(rctx, a.Finish, activities.FinishInput{Ref: plan.Ref, Rows: res.Rows}).Get(ctx, &fin); err != nil {
		return res, err
	}
	res.Parts = len(fin.Parts)
	res.ReduceSeconds = workflow.Now(ctx).Sub(t2).Seconds()
	p.Stage = "done"
	return res, nil
}

// ShardsInput asks a ScoreShards child to score shards [First, Last).
type ShardsInput struct {
	Ref              activities.JobRef
	First, Last      int
	MaxInFlight      int
	HeartbeatTimeout time.Duration
	// Groups is the job's number of checkpoint groups; above 1, each shard
	// is mapped per group and then reduced.
	Groups int
}

// ShardsResult reports a ScoreShards child.
type ShardsResult struct {
	Done     int
	Reused   int
	Examples int64
	Failed   []ShardFailure
}

// ScoreShards scores a range of a job's shards through a sliding window of
// activities on the gradient queue. A shard that fails on its data or after
// its retries is listed in Failed; a job-level error fails the child.
func ScoreShards(ctx workflow.Context, in ShardsInput) (ShardsResult, error) {
	var a *activities.Activities
	var res ShardsResult
	p := Progress{Stage: "scoring", Shards: in.Last - in.First}
	if err := workflow.SetQueryHandler(ctx, ProgressQuery, func() (Progress, error) { return p, nil }); err != nil {
		return res, err
	}
	gctx := gradientOptions(ctx, in.HeartbeatTimeout)
	failed := map[int]bool{}
	fail := func(shard int, err error) error {
		if jobLevel(err) {
			return err
		}
		// The shard failed after its retries, or on its data: the others
		// go on, and the job ends partial.
		if !failed[shard] {
			failed[shard] = true
			res.Failed = append(res.Failed, ShardFailure{Shard: shard, Error: message(err)})
			p.Failed = res.Failed
			p.ShardsFailed++
		}
		return nil
	}
	finished := func(f workflow.Future, shard int) error {
		var r activities.ShardResult
		if err := f.Get(ctx, &r); err != nil {
			return fail(shard, err)
		}
		res.Done++
		res.Examples += r.Examples
		p.ShardsDone++
		p.ExamplesDone = res.Examples
		if r.Reused {
			res.Reused++
		}
		return nil
	}
	n := in.Last - in.First
	if in.Groups <= 1 {
		err := slidingWindow(ctx, n, max(in.MaxInFlight, 1), func(i int) workflow.Future {
			p.ShardsRunning++
			return workflow.ExecuteActivity(gctx, a.ScoreShard, activities.ShardInput{Ref: in.Ref, Shard: in.First + i})
		}, func(i int, f workflow.Future) error {
			p.ShardsRunning--
			return finished(f, in.First+i)
		})
		return res, err
	}

	// Checkpoint groups: map every (shard, group), then reduce each shard
	// whose groups all succeeded.
	err := slidingWindow(ctx, n*in.Groups, max(in.MaxInFlight, 1), func(u int) workflow.Future {
		p.ShardsRunning++
		gi := activities.GroupInput{Ref: in.Ref, Shard: in.First + u/in.Groups, Group: u % in.Groups}
		return workflow.ExecuteActivity(gctx, a.ScoreGroup, gi)
	}, func(u int, f workflow.Future) error {
		p.ShardsRunning--
		if err := f.Get(ctx, nil); err != nil {
			return fail(in.First+u/in.Groups, err)
		}
		return nil
	})
	if err != nil {
		return res, err
	}
	var todo []int
	for i := in.First; i < in.Last; i++ {
		if !failed[i] {
			todo = append(todo, i)
		}
	}
	rctx := reduceOptions(ctx)
	err = slidingWindow(ctx, len(todo), max(in.MaxInFlight, 1), func(j int) workflow.Future {
		return workflow.ExecuteActivity(rctx, a.ReduceShard, activities.ShardInput{Ref: in.Ref, Shard: todo[j]})
	}, func(j int, f workflow.Future) error {
		return finished(f, todo[j])
	})
	return res, err
}

// slidingWindow runs n activities, at most max at a time: start(i) schedules
// activity i, done(i, f) handles its completion. The first error stops
// scheduling and is returned.
func slidingWindow(ctx workflow.Context, n, max int, start func(int) workflow.Future, done func(int, workflow.Future) error) error {
	sel := workflow.NewSelector(ctx)
	next, running := 0, 0
	var firstErr error
	launch := func() {
		for next < n && running < max && firstErr == nil {
			i := next
			sel.AddFuture(start(i), func(f workflow.Future) {
				running--
				if err := done(i, f); err != nil && firstErr == nil {
					firstErr = err
				}
			})
			next++
			running++
		}
	}
	launch()
	for running > 0 && firstErr == nil {
		sel.Select(ctx)
		launch()
	}
	return firstErr
}

// jobLevel reports whether err fails the whole job rather than one shard.
func jobLevel(err error) bool {
	var app *temporal.ApplicationError
	return errors.As(err, &app) && app.Type() == activities.BadInputType
}

// message returns the activity's own error message.
func message(err error) string {
	var app *temporal.ApplicationError
	if errors.As(err, &app) {
		return app.Message()
	}
	var timeout *temporal.TimeoutError
	if errors.As(err, &timeout) {
		return "timed out: " + timeout.Error()
	}
	return err.Error()
}

func retryPolicy() *temporal.RetryPolicy {
	return &temporal.RetryPolicy{
		InitialInterval:        time.Second,
		BackoffCoefficient:     2,
		MaximumInterval:        time.Minute,
		MaximumAttempts:        5,
		NonRetryableErrorTypes: []string{activities.BadInputType, activities.BadDataType},
	}
}

func gradientOptions(ctx workflow.Context, heartbeat time.Duration) workflow.Context {
	if heartbeat <= 0 {
		heartbeat = DefaultHeartbeatTimeout
	}
	return workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		TaskQueue:           GradientQueue,
		StartToCloseTimeout: 12 * time.Hour,
		// A worker silent this long is dead; its shard moves to another.
		HeartbeatTimeout: heartbeat,
		RetryPolicy:      retryPolicy(),
	})
}

func reduceOptions(ctx workflow.Context) workflow.Context {
	return workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		TaskQueue:           ReduceQueue,
		StartToCloseTimeout: 2 * time.Hour,
		HeartbeatTimeout:    2 * time.Minute,
		RetryPolicy:         retryPolicy(),
	})
}
