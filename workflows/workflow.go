// Package workflows orchestrates a VoG job: plan, score shards on gradient
// workers through a tree of child workflows and sliding windows of
// activities, merge class statistics, write normalised parts, seal with
// _SUCCESS. Orchestration only: every side effect is an activity, and the
// code is deterministic.
package workflows

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/vogscore/vog/activities"
	"github.com/vogscore/vog/job"
)

// TooManyFailuresType is the error type of a job whose failed examples
// pass its --max-bad-fraction.
const TooManyFailuresType = "TooManyFailures"

// ScoreJob runs a job to its end. Workers register it as
// job.ScoreJobWorkflow.
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
	opts := options{heartbeat: in.HeartbeatTimeout, retryFor: in.RetryFor}

	t0 := workflow.Now(ctx)
	var plan job.PlanResult
	rctx := opts.reduce(ctx)
	if err := workflow.ExecuteActivity(rctx, a.Plan, job.PlanInput{Spec: in.Spec, Overwrite: in.Overwrite}).Get(ctx, &plan); err != nil {
		return job.Result{}, err
	}
	res := job.Result{Ref: plan.Ref, Examples: plan.Examples, Shards: plan.Shards, Plan: plan.Notes}
	p.Stage, p.Examples, p.Shards, p.Plan = job.StageScoring, plan.Examples, plan.Shards, plan.Notes
	t1 := workflow.Now(ctx)
	res.PlanSeconds = t1.Sub(t0).Seconds()

	shards := ShardsInput{
		Ref: plan.Ref, First: 0, Last: plan.Shards, MaxInFlight: maxInFlight,
		HeartbeatTimeout: in.HeartbeatTimeout, RetryFor: in.RetryFor, Groups: plan.Groups,
		Allowed: allowed(in.MaxBadFraction, plan.Examples), PerChild: in.ShardsPerChild,
		Examples: plan.Examples, MaxBadFraction: in.MaxBadFraction,
	}
	var sum ShardsResult
	err := children(ctx, shards, func(r ShardsResult) error {
		sum.add(r)
		res.Failed = sum.Failed
		p.Failed = res.Failed
		p.ShardsDone, p.ShardsFailed, p.ExamplesDone, p.ExamplesFailed = sum.Done, len(sum.Failed), sum.Examples, sum.BadExamples
		return tooManyFailures(sum, shards)
	})
	res.Reused, res.Failures, res.FailedKinds = sum.Reused, sum.BadExamples, sum.BadKinds
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
	var merged job.MergeResult
	if err := workflow.ExecuteActivity(rctx, a.MergeClasses, job.MergeInput{Ref: plan.Ref}).Get(ctx, &merged); err != nil {
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
	if err := workflow.ExecuteActivity(rctx, a.Finish, job.FinishInput{Ref: plan.Ref, Rows: res.Rows, Failures: merged.Failures}).Get(ctx, &fin); err != nil {
		return res, err
	}
	res.Parts = len(fin.Parts)
	res.ReduceSeconds = workflow.Now(ctx).Sub(t2).Seconds()
	p.Stage = job.StageDone
	return res, nil
}

// allowed is how many failed examples of n a job allows.
func allowed(fraction float64, n int64) int64 { return int64(fraction * float64(n)) }

// tooManyFailures returns the error that fails a job whose failed examples
// so far pass what it allows, naming the commonest reasons.
func tooManyFailures(r ShardsResult, in ShardsInput) error {
	if r.BadExamples <= in.Allowed {
		return nil
	}
	kinds := slices.SortedFunc(maps.Keys(r.BadKinds), func(a, b string) int {
		if r.BadKinds[a] != r.BadKinds[b] {
			return int(r.BadKinds[b] - r.BadKinds[a])
		}
		return strings.Compare(a, b)
	})
	var reasons []string
	for _, k := range kinds[:min(len(kinds), 3)] {
		reasons = append(reasons, fmt.Sprintf("%d %s", r.BadKinds[k], k))
	}
	msg := fmt.Sprintf("%d of %d examples could not be scored, more than --max-bad-fraction %g allows (%d): %s; each is listed with its reason in shards/*/failures.parquet under --out",
		r.BadExamples, in.Examples, in.MaxBadFraction, in.Allowed, strings.Join(reasons, ", "))
	return temporal.NewNonRetryableApplicationError(msg, TooManyFailuresType, nil)
}

// ShardsInput asks a ScoreShards child to score shards [First, Last).
type ShardsInput struct {
	Ref              job.Ref
	First, Last      int
	MaxInFlight      int
	HeartbeatTimeout time.Duration
	RetryFor         time.Duration
	// Groups is the job's number of checkpoint groups; above 1, each shard
	// is mapped per group and then reduced.
	Groups int
	// Allowed is how many failed examples the whole job allows (of its
	// Examples, at MaxBadFraction): a child with more fails at once.
	Allowed        int64
	Examples       int64
	MaxBadFraction float64
	// PerChild is Request.ShardsPerChild: the shards of a child that runs
	// activities (0: as many as ActivitiesPerChild allows).
	PerChild int
	// Fanout bounds the children of one workflow; 0 means
	// job.ChildrenPerWorkflow.
	Fanout int
	// Fold, where set, maps checkpoint group FoldGroup of every shard and
	// nothing else (vog watch folding a new checkpoint in).
	Fold      bool
	FoldGroup int
}

// leafShards is how many shards one child runs activities for: no more
// than job.ActivitiesPerChild activities, whatever the number of groups.
func (in ShardsInput) leafShards() int {
	perShard := 1
	if in.Groups > 1 && !in.Fold {
		perShard = in.Groups + 1
	}
	n := max(job.ActivitiesPerChild/perShard, 1)
	if in.PerChild > 0 {
		n = min(n, in.PerChild)
	}
	return n
}

// ShardsResult reports a ScoreShards child.
type ShardsResult struct {
	Done     int
	Reused   int
	Examples int64
	Failed   []job.ShardFailure
	// BadExamples counts the examples that could not be scored, by kind
	// in BadKinds.
	BadExamples int64
	BadKinds    map[string]int64
}

func (r *ShardsResult) add(o ShardsResult) {
	r.Done += o.Done
	r.Reused += o.Reused
	r.Examples += o.Examples
	r.Failed = append(r.Failed, o.Failed...)
	r.addBad(o.BadExamples, o.BadKinds)
}

func (r *ShardsResult) addBad(n int64, kinds map[string]int64) {
	r.BadExamples += n
	for k, v := range kinds {
		if r.BadKinds == nil {
			r.BadKinds = map[string]int64{}
		}
		r.BadKinds[k] += v
	}
}

// children runs ScoreShards children over in's range, at most
// job.ChildrenPerWorkflow of them, each of equal whole numbers of leaves,
// job.MaxChildren at a time; done sees each one's result, and may stop the
// others with an error.
func children(ctx workflow.Context, in ShardsInput, done func(ShardsResult) error) error {
	n, leaf := in.Last-in.First, in.leafShards()
	fanout := in.Fanout
	if fanout <= 0 {
		fanout = job.ChildrenPerWorkflow
	}
	leaves := (n + leaf - 1) / leaf
	per := (leaves + fanout - 1) / fanout * leaf // shards per child
	count := (n + per - 1) / per
	parentID := workflow.GetInfo(ctx).WorkflowExecution.ID
	return slidingWindow(ctx, count, job.MaxChildren, func(c int) workflow.Future {
		cctx := workflow.WithChildOptions(ctx, workflow.ChildWorkflowOptions{
			WorkflowID: fmt.Sprintf("%s/shards-%05d", parentID, c),
			TaskQueue:  job.ReduceQueue,
		})
		child := in
		child.First, child.Last = in.First+c*per, min(in.First+(c+1)*per, in.Last)
		return workflow.ExecuteChildWorkflow(cctx, ScoreShards, child)
	}, func(c int, f workflow.Future) error {
		var r ShardsResult
		if err := f.Get(ctx, &r); err != nil {
			return err
		}
		return done(r)
	})
}

// ScoreShards scores a range of a job's shards: through a sliding window
// of activities on the gradient queue where the range fits one workflow's
// history, else through children of its own. A shard that fails on its
// data or after its retries is listed in Failed; a job-level error, or more
// failed examples than the job allows, fails the child.
func ScoreShards(ctx workflow.Context, in ShardsInput) (ShardsResult, error) {
	var res ShardsResult
	p := job.Progress{Stage: job.StageScoring, Shards: in.Last - in.First}
	if err := workflow.SetQueryHandler(ctx, job.ProgressQuery, func() (job.Progress, error) { return p, nil }); err != nil {
		return res, err
	}
	update := func() {
		p.ShardsDone, p.ShardsFailed, p.ExamplesDone, p.ExamplesFailed, p.Failed = res.Done, len(res.Failed), res.Examples, res.BadExamples, res.Failed
	}
	if in.Last-in.First > in.leafShards() {
		err := children(ctx, in, func(r ShardsResult) error {
			res.add(r)
			update()
			return tooManyFailures(res, in)
		})
		return res, err
	}

	var a *activities.Activities
	opts := options{heartbeat: in.HeartbeatTimeout, retryFor: in.RetryFor}
	gctx := opts.gradient(ctx)
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
			update()
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
		res.addBad(r.Failed, r.FailedKinds)
		if r.Reused {
			res.Reused++
		}
		update()
		return tooManyFailures(res, in)
	}
	n := in.Last - in.First
	if in.Fold {
		err := slidingWindow(ctx, n, max(in.MaxInFlight, 1), func(i int) workflow.Future {
			p.ShardsRunning++
			return workflow.ExecuteActivity(gctx, a.ScoreGroup, job.GroupInput{Ref: in.Ref, Shard: in.First + i, Group: in.FoldGroup})
		}, func(i int, f workflow.Future) error {
			p.ShardsRunning--
			if err := f.Get(ctx, nil); err != nil {
				return fail(in.First+i, err)
			}
			res.Done++
			update()
			return nil
		})
		return res, err
	}
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
	rctx := opts.reduce(ctx)
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
	return errors.As(err, &app) && (app.Type() == job.BadInputType || app.Type() == TooManyFailuresType)
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

// options are a job's activity options.
type options struct {
	heartbeat, retryFor time.Duration
}

// retryPolicy retries with backoff from a second to a minute, as many
// times as fit in retryFor: a storage or server outage of that long is
// survived, while a shard that keeps failing for longer ends partial.
func (o options) retryPolicy() *temporal.RetryPolicy {
	retryFor := o.retryFor
	if retryFor <= 0 {
		retryFor = job.DefaultRetryFor
	}
	const first, most = time.Second, time.Minute
	attempts := int32(1)
	for wait, total := first, time.Duration(0); total+wait <= retryFor; wait = min(2*wait, most) {
		total += wait
		attempts++
	}
	return &temporal.RetryPolicy{
		InitialInterval:        first,
		BackoffCoefficient:     2,
		MaximumInterval:        most,
		MaximumAttempts:        attempts,
		NonRetryableErrorTypes: []string{job.BadInputType, job.BadDataType},
	}
}

func (o options) heartbeatTimeout() time.Duration {
	if o.heartbeat <= 0 {
		return job.DefaultHeartbeatTimeout
	}
	return o.heartbeat
}

func (o options) gradient(ctx workflow.Context) workflow.Context {
	return workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		TaskQueue:           job.GradientQueue,
		StartToCloseTimeout: 12 * time.Hour,
		// A worker silent this long is dead; its shard moves to another.
		HeartbeatTimeout: o.heartbeatTimeout(),
		RetryPolicy:      o.retryPolicy(),
	})
}

func (o options) reduce(ctx workflow.Context) workflow.Context {
	return workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		TaskQueue:           job.ReduceQueue,
		StartToCloseTimeout: 2 * time.Hour,
		// Reduce activities heartbeat every second.
		HeartbeatTimeout: o.heartbeatTimeout(),
		RetryPolicy:      o.retryPolicy(),
	})
}
