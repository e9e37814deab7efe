// Package client submits vog jobs to Temporal and follows them, printing
// progress with rate and ETA.
package client

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/vogscore/vog/activities"
	"github.com/vogscore/vog/shard"
	"github.com/vogscore/vog/workflows"
)

// WorkflowID returns the id of the workflow that runs spec: the same spec
// gives the same id, so submitting a running job again attaches to it.
func WorkflowID(spec activities.JobSpec) (string, error) {
	fp, err := shard.Fingerprint(spec.WithDefaults())
	if err != nil {
		return "", err
	}
	return "vog-" + fp, nil
}

// Submit starts a job, or attaches to the run of the same job if one is
// running, and returns its workflow id.
func Submit(ctx context.Context, c client.Client, in workflows.JobInput) (string, error) {
	id, err := WorkflowID(in.Spec)
	if err != nil {
		return "", err
	}
	_, err = c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
		ID:                       id,
		TaskQueue:                workflows.ReduceQueue,
		WorkflowIDConflictPolicy: enumspb.WORKFLOW_ID_CONFLICT_POLICY_USE_EXISTING,
		WorkflowIDReusePolicy:    enumspb.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE,
	}, workflows.ScoreJob, in)
	if err != nil {
		return "", fmt.Errorf("submit job: %w", err)
	}
	return id, nil
}

// Follow waits for workflow id to end, writing a progress line to w every
// interval, and returns the job's result.
func Follow(ctx context.Context, c client.Client, id string, w io.Writer, interval time.Duration) (workflows.JobResult, error) {
	run := c.GetWorkflow(ctx, id, "")
	done := make(chan error, 1)
	var res workflows.JobResult
	go func() { done <- run.Get(ctx, &res) }()
	tick := time.NewTicker(interval)
	defer tick.Stop()
	meter := newMeter(time.Now())
	for {
		select {
		case err := <-done:
			if err != nil {
				return res, explain(err)
			}
			return res, nil
		case <-tick.C:
			st, err := Status(ctx, c, id)
			if err != nil {
				continue // the job may not have set its query handler yet
			}
			fmt.Fprintln(w, meter.line(time.Now(), st.Progress))
			for _, r := range st.Retrying {
				fmt.Fprintln(w, "  retrying:", r)
			}
		case <-ctx.Done():
			return res, ctx.Err()
		}
	}
}

// JobStatus is a job's progress and the activities being retried.
type JobStatus struct {
	workflows.Progress
	// Retrying describes each running activity that failed before: its
	// type, attempt and last error.
	Retrying []string
}

// Status returns a job's progress, counting the examples that running shards
// have reported in their heartbeats.
func Status(ctx context.Context, c client.Client, id string) (JobStatus, error) {
	var st JobStatus
	v, err := c.QueryWorkflow(ctx, id, "", workflows.ProgressQuery)
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
	for _, pa := range desc.GetPendingActivities() {
		if f := pa.GetLastFailure(); pa.GetAttempt() > 1 && f != nil {
			st.Retrying = append(st.Retrying, fmt.Sprintf("%s (attempt %d): %s", pa.GetActivityType().GetName(), pa.GetAttempt(), f.GetMessage()))
		}
		if pa.GetHeartbeatDetails() == nil {
			continue
		}
		var sp activities.ShardProgress
		if err := converterFromPayloads(pa.GetHeartbeatDetails(), &sp); err == nil {
			st.ExamplesDone += sp.Done
		}
	}
	return st, nil
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
