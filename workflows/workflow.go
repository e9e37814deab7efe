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
	"github.com/vogscore/vog/job"
)

// ScoreJob runs a job to its end.
func ScoreJob(ctx workflow.Context, in job.Request) (job.Result, error) {
	var a *activities.Activities
	p := job.Progress{Stage: job.StagePlanning}
	if err := workflow.SetQueryHandler(ctx, job.ProgressQuery, func() (job.Progress, error) { return p, nil }); err != nil {
		return job.Result{}, err
	}
	maxInFlight := in.MaxInFlight
	if maxInFlight <= 0 {
		maxInFlight = job.DefaultMaxInFlight
	}
	perWrite := in.ShardsPerWrite
	if perWrite <= 0 {
		perWrite = job.DefaultShardsPerWrite
	}

	t0 := workflow.Now(ctx)
	var plan job.PlanResult
	if err := workflow.ExecuteActivity(reduceOptions(ctx), a.Plan, job.PlanInput{Spec: in.Spec}).Get(ctx, &plan); err != nil {
		return job.Result{}, err
	}
	res := job.Result{Ref: plan.Ref, Examples: plan.Examples, Shards: plan.Shards}
	p.Stage, p.Examples, p.Shards = job.StageScoring, plan.Examples, plan.Shards
	t1 := workflow.Now(ctx)
	res.PlanSeconds = t1.Sub(t0).Seconds()

	// Shards run in child workflows of at most ShardsPerChild shards each,
	// so that no history nears Temporal's limits whatever the job's size.
	perChild := in.ShardsPerChild
	if perChild <= 0 {
		perChild = job.DefaultShardsPerChild
	}
	children := (plan.Shards + perChild - 1) / perChild
	parentID := workflow.GetInfo(ctx).WorkflowExecution.ID
	err := slidingWindow(ctx, children, job.MaxChildren, func(c int) workflow.Future {
		cctx := workflow.WithChildOptions(ctx, workflow.ChildWorkflowOptions{
			WorkflowID: fmt.Sprintf("%s/shards-%05d", parentID, c),
			TaskQueue:  job.ReduceQueue,
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
		p.Stage = job.StagePartial
		return res, nil
	}

	p.Stage = job.StageMerging
	rctx := reduceOptions(ctx)
	if err := workflow.ExecuteActivity(rctx, a.MergeClasses, job.MergeInput{Ref: plan.Ref}).Get(ctx, nil); err != nil {
		return res, err
	}

	p.Stage = job.StageWriting
	writes := (plan.Shards + perWrite - 1) / perWrite
	err = slidingWindow(ctx, writes, maxInFlight, func(i int) workflow.Future {
		in := job.WriteInput{Ref: plan.Ref, First: i * perWrite, Last: min((i+1)*perWrite, plan.Shards)}
		return workflow.ExecuteActivity(rctx, a.WriteScores, in)
	}, func(i int, f workflow.Future) error {
		var r job.WriteResult
		if err := f.Get(ctx, &r); err != nil {
			return err
		}
		res.Rows += r.Rows
		res.Hardest = job.Hardest(append(res.Hardest, r.Hardest...), job.HardestCount)
		return nil
	})
	if err != nil {
		return res, err
	}

	p.Stage = job.StageSealing
	var fin job.FinishResult
	if err := workflow.ExecuteActivity(rctx, a.Finish, job.FinishInput{Ref: plan.Ref, Rows: res.Rows}).Get(ctx, &fin); err != nil {
		return res, err
	}
	res.Parts = len(fin.Parts)
	res.ReduceSeconds = workflow.Now(ctx).Sub(t2).Seconds()
	p.Stage = job.StageDone
	return res, nil
}

// ShardsInput asks a ScoreShards child to score shards [First, Last).
type ShardsInput struct {
	Ref              job.Ref
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
	Failed   []job.ShardFailure
}

// ScoreShards scores a range of a job's shards through a sliding window of
// activities on the gradient queue. A shard that fails on its data or after
// its retries is listed in Failed; a job-level error fails the child.
func ScoreShards(ctx workflow.Context, in ShardsInput) (ShardsResult, error) {
	var a *activities.Activities
	var res ShardsResult
	p := job.Progress{Stage: job.StageScoring, Shards: in.Last - in.First}
	if err := workflow.SetQueryHandler(ctx, job.ProgressQuery, func() (job.Progress, error) { return p, nil }); err != nil {
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
			res.Failed = append(res.Failed, job.ShardFailure{Shard: shard, Error: message(err)})
			p.Failed = res.Failed
			p.ShardsFailed++
		}
		return nil
	}
	finished := func(f workflow.Future, shard int) error {
		var r job.ShardResult
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
			return workflow.ExecuteActivity(gctx, a.ScoreShard, job.ShardInput{Ref: in.Ref, Shard: in.First + i})
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
		gi := job.GroupInput{Ref: in.Ref, Shard: in.First + u/in.Groups, Group: u % in.Groups}
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
		return workflow.ExecuteActivity(rctx, a.ReduceShard, job.ShardInput{Ref: in.Ref, Shard: todo[j]})
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
	return errors.As(err, &app) && app.Type() == job.BadInputType
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
		NonRetryableErrorTypes: []string{job.BadInputType, job.BadDataType},
	}
}

func gradientOptions(ctx workflow.Context, heartbeat time.Duration) workflow.Context {
	if heartbeat <= 0 {
		heartbeat = job.DefaultHeartbeatTimeout
	}
	return workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		TaskQueue:           job.GradientQueue,
		StartToCloseTimeout: 12 * time.Hour,
		// A worker silent this long is dead; its shard moves to another.
		HeartbeatTimeout: heartbeat,
		RetryPolicy:      retryPolicy(),
	})
}

func reduceOptions(ctx workflow.Context) workflow.Context {
	return workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		TaskQueue:           job.ReduceQueue,
		StartToCloseTimeout: 2 * time.Hour,
		HeartbeatTimeout:    2 * time.Minute,
		RetryPolicy:         retryPolicy(),
	})
}
