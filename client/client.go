// Package client submits vog jobs to Temporal and follows them, printing
// progress with rate and ETA. It depends on the job contract and the
// Temporal SDK's client only: no storage, engine or workflow code.
package client

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/vogscore/vog/job"
)

// WorkflowID returns the id of the workflow that runs spec (job.WorkflowID).
func WorkflowID(spec job.Spec) (string, error) { return job.WorkflowID(spec) }

// Submit starts a job, or attaches to the run of the same job if one is
// running, and returns its workflow id.
func Submit(ctx context.Context, c client.Client, in job.Request) (string, error) {
	id, err := WorkflowID(in.Spec)
	if err != nil {
		return "", err
	}
	if err := start(ctx, c, id, job.ScoreJobWorkflow, in); err != nil {
		return "", fmt.Errorf("submit job: %w", err)
	}
	return id, nil
}

// start starts workflow as id, or attaches to the running one of that id:
// submitting twice never runs the same work twice at once, and a finished
// id may run again.
func start(ctx context.Context, c client.Client, id, workflow string, in any) error {
	_, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
		ID:                       id,
		TaskQueue:                job.ReduceQueue,
		WorkflowIDConflictPolicy: enumspb.WORKFLOW_ID_CONFLICT_POLICY_USE_EXISTING,
		WorkflowIDReusePolicy:    enumspb.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE,
	}, workflow, in)
	return err
}

// Follow waits for workflow id to end, writing a progress line to w every
// interval, and returns the job's result. While the server cannot be
// reached (a restart, a network outage) it says so and keeps waiting: only
// the job's own end, or ctx, ends Follow.
func Follow(ctx context.Context, c client.Client, id string, w io.Writer, interval time.Duration) (job.Result, error) {
	meter := newMeter(time.Now())
	planned := false
	res, err := FollowWith(ctx, c, id, w, interval, func(ctx context.Context) []string {
		st, err := Status(ctx, c, id)
		if err != nil {
			return nil // the job may not have set its query handler yet
		}
		var lines []string
		if !planned && st.Stage != job.StagePlanning {
			lines, planned = prefixed("plan: ", st.Plan), true
		}
		lines = append(lines, meter.line(time.Now(), st.Progress))
		return append(lines, prefixed("  retrying: ", st.Retrying)...)
	})
	if !planned {
		for _, l := range prefixed("plan: ", res.Plan) {
			fmt.Fprintln(w, l)
		}
	}
	return res, err
}

func prefixed(prefix string, lines []string) []string {
	out := make([]string, len(lines))
	for i, l := range lines {
		out[i] = prefix + l
	}
	return out
}

// FollowWith is Follow with the progress lines that lines returns.
func FollowWith(ctx context.Context, c client.Client, id string, w io.Writer, interval time.Duration, lines func(context.Context) []string) (job.Result, error) {
	type outcome struct {
		res job.Result
		err error
	}
	done := make(chan outcome, 1)
	lost := make(chan error, 1)
	go func() {
		// The goroutine decodes into its own value: when ctx ends first,
		// Follow returns without waiting, and nothing is shared.
		var o outcome
		for delay := time.Second; ; delay = min(2*delay, 10*time.Second) {
			o.err = c.GetWorkflow(ctx, id, "").Get(ctx, &o.res)
			if o.err == nil || Final(o.err) || ctx.Err() != nil {
				break
			}
			select {
			case lost <- o.err:
			default:
			}
			select {
			case <-ctx.Done():
			case <-time.After(delay):
			}
		}
		done <- o
	}()
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		select {
		case o := <-done:
			if ctx.Err() != nil {
				return job.Result{}, ctx.Err()
			}
			if o.err != nil {
				return o.res, explain(o.err)
			}
			return o.res, nil
		case err := <-lost:
			fmt.Fprintf(w, "  the Temporal server does not answer (%v); the job goes on: waiting\n", oneLine(err))
		case <-tick.C:
			for _, l := range lines(ctx) {
				fmt.Fprintln(w, l)
			}
		case <-ctx.Done():
			return job.Result{}, ctx.Err()
		}
	}
}

// Final reports whether err ends a wait for a job: the workflow ended
// (failed, was canceled or terminated), or does not exist. Other errors
// (the server unreachable, or restarting) are worth waiting out.
func Final(err error) bool {
	var ended *temporal.WorkflowExecutionError
	var notFound *serviceerror.NotFound
	var app *temporal.ApplicationError
	var canceled *temporal.CanceledError
	var terminated *temporal.TerminatedError
	var timeout *temporal.TimeoutError
	return errors.As(err, &ended) || errors.As(err, &notFound) || errors.As(err, &app) ||
		errors.As(err, &canceled) || errors.As(err, &terminated) || errors.As(err, &timeout)
}

func oneLine(err error) string {
	s := err.Error()
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	return s
}

// JobStatus is a job's progress and the activities being retried.
type JobStatus struct {
	job.Progress
	// Retrying describes each running activity that failed before: its
	// type, attempt and last error.
	Retrying []string
	// Started counts the gradient activities (shards, or checkpoint groups
	// of shards) that a worker is running now; the rest of
	// Progress.ShardsRunning wait in the queue.
	Started int
}

// Status returns a job's progress: what its workflow reports, plus the
// progress of its running ScoreShards children and the examples that their
// running shards have reported in heartbeats.
func Status(ctx context.Context, c client.Client, id string) (JobStatus, error) {
	var st JobStatus
	v, err := c.QueryWorkflow(ctx, id, "", job.ProgressQuery)
	if err != nil {
		return st, err
	}
	if err := v.Get(&st.Progress); err != nil {
		return st, err
	}
	desc, err := c.DescribeWorkflowExecution(ctx, id, "")
	if err != nil {
		return st, err
	}
	for _, child := range desc.GetPendingChildren() {
		cs, err := Status(ctx, c, child.GetWorkflowId())
		if err != nil {
			continue // starting or finishing: counted when it completes
		}
		st.ExamplesDone += cs.ExamplesDone
		st.ShardsDone += cs.ShardsDone
		st.ShardsFailed += cs.ShardsFailed
		st.ExamplesFailed += cs.ExamplesFailed
		st.ShardsRunning += cs.ShardsRunning
		st.Started += cs.Started
		st.Retrying = append(st.Retrying, cs.Retrying...)
		st.Failed = append(st.Failed, cs.Failed...)
	}
	for _, pa := range desc.GetPendingActivities() {
		if gradientActivity(pa.GetActivityType().GetName()) && pa.GetState() == enumspb.PENDING_ACTIVITY_STATE_STARTED {
			st.Started++
		}
		if f := pa.GetLastFailure(); pa.GetAttempt() > 1 && f != nil {
			st.Retrying = append(st.Retrying, fmt.Sprintf("%s (attempt %d): %s", pa.GetActivityType().GetName(), pa.GetAttempt(), f.GetMessage()))
		}
		if pa.GetHeartbeatDetails() == nil {
			continue
		}
		var sp job.ShardProgress
		if err := converterFromPayloads(pa.GetHeartbeatDetails(), &sp); err == nil {
			st.ExamplesDone += sp.Examples()
		}
	}
	return st, nil
}

// gradientActivity reports whether an activity type is one that
// Progress.ShardsRunning counts.
func gradientActivity(name string) bool {
	return name == job.ScoreShardActivity || name == job.ScoreGroupActivity
}

// explain unwraps a workflow failure to the activity error that caused it,
// which names the culprit.
func explain(err error) error {
	var app *temporal.ApplicationError
	if errors.As(err, &app) {
		return errors.New(app.Message())
	}
	return err
}

// Input returns the input a job was submitted with, from its history.
func Input(ctx context.Context, c client.Client, id string) (job.Request, error) {
	var in job.Request
	it := c.GetWorkflowHistory(ctx, id, "", false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	if !it.HasNext() {
		return in, fmt.Errorf("job %s: no history", id)
	}
	e, err := it.Next()
	if err != nil {
		return in, fmt.Errorf("job %s: %w", id, err)
	}
	start := e.GetWorkflowExecutionStartedEventAttributes()
	if start == nil {
		return in, fmt.Errorf("job %s: history does not begin with its start", id)
	}
	if err := converterFromPayloads(start.GetInput(), &in); err != nil {
		return in, fmt.Errorf("job %s: input: %w", id, err)
	}
	return in, nil
}

// Describe returns a readable account of a job: its state, shards
// done/failed/total, rate and ETA while it runs, and the errors of failed
// or retrying shards.
func Describe(ctx context.Context, c client.Client, id string) (string, error) {
	desc, err := c.DescribeWorkflowExecution(ctx, id, "")
	if err != nil {
		return "", fmt.Errorf("job %s: %w", id, err)
	}
	info := desc.GetWorkflowExecutionInfo()
	var b strings.Builder
	state := strings.ToLower(strings.TrimPrefix(info.GetStatus().String(), "WORKFLOW_EXECUTION_STATUS_"))
	fmt.Fprintf(&b, "job %s: %s\n", id, state)
	if info.GetStatus() == enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING {
		st, err := Status(ctx, c, id)
		if err != nil {
			fmt.Fprintf(&b, "progress unknown: %v\n", err)
			return b.String(), nil
		}
		elapsed := time.Since(info.GetStartTime().AsTime())
		fmt.Fprintf(&b, "stage %s; shards %d done, %d failed, %d running, %d queued, %d total; examples %d/%d",
			st.Stage, st.ShardsDone, st.ShardsFailed, st.Started, st.ShardsRunning-st.Started, st.Shards, st.ExamplesDone, st.Examples)
		if st.ExamplesFailed > 0 {
			fmt.Fprintf(&b, " (%d could not be scored)", st.ExamplesFailed)
		}
		if elapsed > 0 && st.Examples > 0 {
			rate := float64(st.ExamplesDone) / elapsed.Seconds()
			fmt.Fprintf(&b, "; %.0f ex/s since start; ETA %s", rate, eta(st.Examples-st.ExamplesDone, rate, rate))
		}
		b.WriteString("\n")
		for _, r := range st.Retrying {
			fmt.Fprintf(&b, "retrying: %s\n", r)
		}
		for _, f := range st.Failed {
			fmt.Fprintf(&b, "shard %d failed: %s\n", f.Shard, f.Error)
		}
		return b.String(), nil
	}
	var res job.Result
	if err := c.GetWorkflow(ctx, id, "").Get(ctx, &res); err != nil {
		fmt.Fprintf(&b, "error: %v\n", explain(err))
		return b.String(), nil
	}
	fmt.Fprintf(&b, "shards %d done, %d failed, %d total; %d rows in %s\n",
		res.Shards-len(res.Failed), len(res.Failed), res.Shards, res.Rows, res.Ref.Out)
	if res.Failures > 0 {
		fmt.Fprintf(&b, "%d example(s) could not be scored (%s): see failures.parquet\n", res.Failures, Kinds(res.FailedKinds))
	}
	for _, f := range res.Failed {
		fmt.Fprintf(&b, "shard %d failed: %s\n", f.Shard, f.Error)
	}
	return b.String(), nil
}

// Kinds writes counts of failed examples by kind, commonest first:
// "12 corrupt image, 3 too large".
func Kinds(kinds map[string]int64) string {
	names := slices.SortedFunc(maps.Keys(kinds), func(a, b string) int {
		if c := cmp.Compare(kinds[b], kinds[a]); c != 0 {
			return c
		}
		return strings.Compare(a, b)
	})
	parts := make([]string, len(names))
	for i, k := range names {
		parts[i] = fmt.Sprintf("%d %s", kinds[k], k)
	}
	return strings.Join(parts, ", ")
}
