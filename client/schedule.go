package client

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"

	"github.com/vogscore/vog/job"
)

// CreateSchedule creates the schedule name: every interval, a scan of
// in.Runs starts the job of each finished run that has none
// (workflows.ScanRuns).
func CreateSchedule(ctx context.Context, c client.Client, name string, every time.Duration, in job.ScanRequest) error {
	_, err := c.ScheduleClient().Create(ctx, client.ScheduleOptions{
		ID:   name,
		Spec: client.ScheduleSpec{Intervals: []client.ScheduleIntervalSpec{{Every: every}}},
		Action: &client.ScheduleWorkflowAction{
			ID:        "vog-scan-" + name,
			Workflow:  job.ScanWorkflow,
			Args:      []any{in},
			TaskQueue: job.ReduceQueue,
		},
		Overlap: enumspb.SCHEDULE_OVERLAP_POLICY_SKIP,
		Note:    fmt.Sprintf("vog: every %s, score the runs under %s whose %s exists, into %s/<run>", every, in.Runs, in.Marker, in.OutPrefix),
	})
	if err != nil {
		return fmt.Errorf("schedule %s: %w", name, err)
	}
	return nil
}

// TriggerSchedule takes the schedule's action now, even while an earlier
// one runs: runs already being scored are not started again.
func TriggerSchedule(ctx context.Context, c client.Client, name string) error {
	return c.ScheduleClient().GetHandle(ctx, name).Trigger(ctx, client.ScheduleTriggerOptions{Overlap: enumspb.SCHEDULE_OVERLAP_POLICY_ALLOW_ALL})
}

// PauseSchedule pauses or resumes schedule name.
func PauseSchedule(ctx context.Context, c client.Client, name string, pause bool) error {
	h := c.ScheduleClient().GetHandle(ctx, name)
	if pause {
		return h.Pause(ctx, client.SchedulePauseOptions{Note: "paused by vog schedule pause"})
	}
	return h.Unpause(ctx, client.ScheduleUnpauseOptions{Note: "unpaused by vog schedule unpause"})
}

// DeleteSchedule deletes schedule name; the jobs it started go on.
func DeleteSchedule(ctx context.Context, c client.Client, name string) error {
	return c.ScheduleClient().GetHandle(ctx, name).Delete(ctx)
}

// ListSchedules writes one line per schedule to w.
func ListSchedules(ctx context.Context, c client.Client, w io.Writer) error {
	it, err := c.ScheduleClient().List(ctx, client.ScheduleListOptions{})
	if err != nil {
		return err
	}
	for it.HasNext() {
		s, err := it.Next()
		if err != nil {
			return err
		}
		state := "active"
		if s.Paused {
			state = "paused"
		}
		next := ""
		if len(s.NextActionTimes) > 0 {
			next = ", next " + s.NextActionTimes[0].Format(time.RFC3339)
		}
		fmt.Fprintf(w, "%s\t%s%s\t%s\n", s.ID, state, next, s.Note)
	}
	return nil
}

// DescribeSchedule writes schedule name's state and its recent scans, with
// what each started, to w.
func DescribeSchedule(ctx context.Context, c client.Client, name string, w io.Writer) error {
	d, err := c.ScheduleClient().GetHandle(ctx, name).Describe(ctx)
	if err != nil {
		return err
	}
	state := "active"
	if d.Schedule.State.Paused {
		state = "paused"
	}
	fmt.Fprintf(w, "schedule %s: %s; %s\n", name, state, d.Schedule.State.Note)
	for _, iv := range d.Schedule.Spec.Intervals {
		fmt.Fprintf(w, "every %s\n", iv.Every)
	}
	for _, t := range d.Info.NextActionTimes {
		fmt.Fprintf(w, "next scan %s\n", t.Format(time.RFC3339))
	}
	for _, a := range d.Info.RecentActions {
		id := a.StartWorkflowResult.WorkflowID
		fmt.Fprintf(w, "scan %s at %s", id, a.ActualTime.Format(time.RFC3339))
		var res job.ScanResult
		if err := c.GetWorkflow(ctx, id, a.StartWorkflowResult.FirstExecutionRunID).Get(ctx, &res); err != nil {
			fmt.Fprintf(w, ": %v\n", explain(err))
			continue
		}
		fmt.Fprintf(w, ": started %s; running %s; done %d; still training %d\n",
			orNone(res.Started), orNone(res.Running), len(res.Done), len(res.Waiting))
	}
	return nil
}

// ScheduleScans returns the results of the scans schedule name has taken,
// oldest first, waiting for the ones still running.
func ScheduleScans(ctx context.Context, c client.Client, name string) ([]job.ScanResult, error) {
	d, err := c.ScheduleClient().GetHandle(ctx, name).Describe(ctx)
	if err != nil {
		return nil, err
	}
	var out []job.ScanResult
	for _, a := range d.Info.RecentActions {
		var res job.ScanResult
		if err := c.GetWorkflow(ctx, a.StartWorkflowResult.WorkflowID, a.StartWorkflowResult.FirstExecutionRunID).Get(ctx, &res); err != nil {
			return nil, explain(err)
		}
		out = append(out, res)
	}
	return out, nil
}

func orNone(ids []string) string {
	if len(ids) == 0 {
		return "none"
	}
	return strings.Join(ids, ", ")
}
