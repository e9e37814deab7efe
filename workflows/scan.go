package workflows

import (
	"errors"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/vogscore/vog/activities"
	"github.com/vogscore/vog/job"
)

// ScanRuns is a schedule's action (vog schedule): it lists the training
// runs under the request's Runs and starts, as an abandoned child that
// outlives the scan, the job of each finished run (its marker is there)
// that has no complete result yet, writing to OutPrefix/<run>. The job's
// workflow id is the job's (job.WorkflowID): a run whose job is running
// already is not started again, so two scans at once never score a run
// twice. Workers register it as job.ScanWorkflow.
func ScanRuns(ctx workflow.Context, in job.ScanRequest) (job.ScanResult, error) {
	var a *activities.Activities
	var res job.ScanResult
	opts := options{heartbeat: in.Job.HeartbeatTimeout, retryFor: in.Job.RetryFor}
	var runs job.ListRunsResult
	listing := job.ListRunsInput{Runs: in.Runs, Marker: in.Marker, OutPrefix: in.OutPrefix}
	if err := workflow.ExecuteActivity(opts.reduce(ctx), a.ListRuns, listing).Get(ctx, &runs); err != nil {
		return res, err
	}
	for _, r := range runs.Done {
		res.Done = append(res.Done, r.Name)
	}
	for _, r := range runs.Waiting {
		res.Waiting = append(res.Waiting, r.Name)
	}
	for _, r := range runs.Todo {
		req := in.Job
		req.Spec.Checkpoints, req.Spec.Out = []string{r.URL}, r.Out
		id, err := job.WorkflowID(req.Spec)
		if err != nil {
			return res, err
		}
		cctx := workflow.WithChildOptions(ctx, workflow.ChildWorkflowOptions{
			WorkflowID:        id,
			TaskQueue:         job.ReduceQueue,
			ParentClosePolicy: enumspb.PARENT_CLOSE_POLICY_ABANDON,
		})
		var started workflow.Execution
		err = workflow.ExecuteChildWorkflow(cctx, ScoreJob, req).GetChildWorkflowExecution().Get(ctx, &started)
		var already *temporal.ChildWorkflowExecutionAlreadyStartedError
		switch {
		case errors.As(err, &already):
			res.Running = append(res.Running, id)
		case err != nil:
			return res, err
		default:
			res.Started = append(res.Started, id)
		}
	}
	return res, nil
}
