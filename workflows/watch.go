package workflows

import (
	"errors"
	"fmt"
	"slices"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/vogscore/vog/activities"
	"github.com/vogscore/vog/internal/bytesize"
	"github.com/vogscore/vog/job"
)

// pending is a checkpoint accepted by a watch and not yet folded.
type pending struct {
	URL     string
	Outputs int
}

// WatchRun folds a training run's checkpoints in as they appear, each as
// its own checkpoint group of every shard, found by listing the run's
// folder every Poll or announced with job.AddCheckpointUpdate; a checkpoint
// that does not fit the run's is refused with the reason and never
// folded. When the run's marker appears (or on job.FinishUpdate), it runs
// the job of the folded checkpoints with --checkpoint-group 1 as a child,
// which finds every group folded and merges them, and returns its result.
// It continues as new every PerRun checkpoints, or sooner where the server
// suggests it (SuggestedContinueAsNew), so that its history stays small. Workers register it as job.WatchWorkflow.
func WatchRun(ctx workflow.Context, in job.WatchRequest) (job.Result, error) {
	var a *activities.Activities
	st := in.State
	var plan job.WatchPlan
	maxState := job.MaxWatchState(in.MaxState)
	var queue []pending
	folding := ""
	stage := job.StageScoring
	progress := func() (job.WatchProgress, error) {
		p := job.WatchProgress{WatchState: st, Folding: folding, Stage: stage, State: plan.State, MaxState: maxState}
		for _, q := range queue {
			p.Pending = append(p.Pending, q.URL)
		}
		return p, nil
	}
	if err := workflow.SetQueryHandler(ctx, job.WatchQuery, progress); err != nil {
		return job.Result{}, err
	}
	opts := options{heartbeat: in.Job.HeartbeatTimeout, retryFor: in.Job.RetryFor}
	rctx, gctx := opts.reduce(ctx), opts.gradient(ctx)
	spec := in.Job.Spec
	spec.Checkpoints, spec.CheckpointGroup = []string{orDefault(in.Run, "vog watch")}, 1
	if err := workflow.ExecuteActivity(rctx, a.PlanWatch, job.WatchPlanInput{Spec: spec, Overwrite: in.Job.Overwrite, MaxState: maxState}).Get(ctx, &plan); err != nil {
		return job.Result{}, err
	}

	// checking holds the checkpoints being checked now: a run folder's poll
	// and an announcement of the same file may overlap, and the checkpoint
	// must be queued once.
	checking := map[string]bool{}
	known := func(url string) string {
		switch {
		case slices.Contains(st.Folded, url) || url == folding:
			return "folded already"
		case slices.ContainsFunc(queue, func(q pending) bool { return q.URL == url }):
			return "already waiting to be folded"
		case checking[url]:
			return "already being checked"
		}
		for _, r := range st.Refused {
			if r.Checkpoint == url {
				return "refused before: " + r.Reason
			}
		}
		return ""
	}
	// overState says why one more checkpoint's state would not fit under
	// maxState, with those folded, waiting and being checked.
	overState := func() string {
		held := int64(len(st.Folded) + len(queue) + len(checking))
		if folding != "" {
			held++
		}
		if fits := plan.State.Fits(maxState); fits < 0 || held < fits {
			return ""
		}
		return fmt.Sprintf("the watch's state would take %s with it, over --max-state %s (%s): the watch goes on without it; "+
			"score the run with vog run once it ends, or watch with a larger --max-state",
			bytesize.Format((held+1)*plan.State.PerCheckpoint), bytesize.Format(maxState), plan.State)
	}
	// accept checks a checkpoint on a gradient worker, and queues it or
	// records why it does not fit.
	accept := func(ctx workflow.Context, url string) error {
		if why := overState(); why != "" {
			st.Refused = append(st.Refused, job.Refusal{Checkpoint: url, Reason: why})
			return errors.New(why)
		}
		checking[url] = true
		defer delete(checking, url)
		var outputs int
		err := workflow.ExecuteActivity(gctx, a.CheckCheckpoint, job.AddCheckpointInput{Ref: plan.Ref, Checkpoint: url}).Get(ctx, &outputs)
		if err != nil {
			if !jobLevel(err) && !isBadData(err) {
				return err // not the checkpoint's fault: it may be tried again
			}
			st.Refused = append(st.Refused, job.Refusal{Checkpoint: url, Reason: message(err)})
			return errors.New(message(err))
		}
		queue = append(queue, pending{URL: url, Outputs: outputs})
		return nil
	}
	err := workflow.SetUpdateHandlerWithOptions(ctx, job.AddCheckpointUpdate, accept, workflow.UpdateHandlerOptions{
		Validator: func(url string) error {
			switch {
			case url == "":
				return errors.New("no checkpoint named")
			case st.Finish:
				return errors.New("the watch has finished: its run is being scored")
			case known(url) != "":
				return fmt.Errorf("%s: %s", url, known(url))
			}
			return nil
		},
	})
	if err == nil {
		err = workflow.SetUpdateHandler(ctx, job.FinishUpdate, func(ctx workflow.Context) error {
			st.Finish = true
			return nil
		})
	}
	if err != nil {
		return job.Result{}, err
	}

	poll := in.Poll
	if poll <= 0 {
		poll = job.DefaultWatchPoll
	}
	perRun := in.PerRun
	if perRun <= 0 {
		perRun = job.CheckpointsPerWatchRun
	}
	foldedHere := 0
	for {
		for len(queue) > 0 {
			q := queue[0]
			queue, folding = queue[1:], q.URL
			var added job.AddCheckpointResult
			if err := workflow.ExecuteActivity(rctx, a.AddCheckpoint, job.AddCheckpointInput{Ref: plan.Ref, Checkpoint: q.URL, Outputs: q.Outputs}).Get(ctx, &added); err != nil {
				return job.Result{}, err
			}
			fold := ShardsInput{Ref: added.Ref, Last: plan.Shards, MaxInFlight: orDefaultInt(in.Job.MaxInFlight, job.DefaultMaxInFlight),
				HeartbeatTimeout: in.Job.HeartbeatTimeout, RetryFor: in.Job.RetryFor, Fold: true, FoldGroup: added.Index, PerChild: in.Job.ShardsPerChild}
			// A shard that fails here is mapped again by the final job.
			if err := children(ctx, fold, func(ShardsResult) error { return nil }); err != nil {
				return job.Result{}, err
			}
			st.Folded, folding = append(st.Folded, q.URL), ""
			foldedHere++
		}
		if st.Finish {
			break
		}
		if workflow.AllHandlersFinished(ctx) && (foldedHere >= perRun || historyFull(ctx)) {
			next := in
			next.State = st
			return job.Result{}, workflow.NewContinueAsNewError(ctx, WatchRun, next)
		}
		if in.Run != "" {
			var run job.ListRunResult
			if err := workflow.ExecuteActivity(rctx, a.ListRun, job.ListRunInput{Run: in.Run, Marker: in.Marker, Exclude: spec.Model}).Get(ctx, &run); err != nil {
				return job.Result{}, err
			}
			for _, url := range run.Checkpoints {
				if known(url) == "" {
					// A refusal is recorded; another failure is tried at
					// the next poll.
					accept(ctx, url)
				}
			}
			if run.Finished {
				st.Finish = true // after folding what it found
				continue
			}
		}
		if _, err := workflow.AwaitWithTimeout(ctx, poll, func() bool { return len(queue) > 0 || st.Finish }); err != nil {
			return job.Result{}, err
		}
	}
	if err := workflow.Await(ctx, func() bool { return workflow.AllHandlersFinished(ctx) }); err != nil {
		return job.Result{}, err
	}
	if len(st.Folded) == 0 {
		return job.Result{}, temporal.NewNonRetryableApplicationError("the run ended with no checkpoint folded", job.BadInputType, nil)
	}

	// The run is over: the job of its checkpoints finds every group folded.
	stage = job.StageMerging
	final := in.Job
	final.Spec.Checkpoints, final.Spec.CheckpointGroup = st.Folded, 1
	id, err := job.WorkflowID(final.Spec)
	if err != nil {
		return job.Result{}, err
	}
	cctx := workflow.WithChildOptions(ctx, workflow.ChildWorkflowOptions{WorkflowID: id, TaskQueue: job.ReduceQueue})
	var res job.Result
	err = workflow.ExecuteChildWorkflow(cctx, ScoreJob, final).Get(ctx, &res)
	stage = job.StageDone
	return res, err
}

// SuggestedContinueAsNew is the workflow.GetVersion change id under which
// a watch also continues as new when the server suggests it (version 1).
// A watch waiting for a run's next checkpoint polls every Poll, 11 events
// each (ListRun 3, a timer 2, two workflow tasks 6): at the default 30 s,
// 39 h of waiting, or about 38 checkpoints an hour apart, fill a history
// to Temporal's limit of 51,200 events, where the server terminates the
// workflow, long before PerRun checkpoints are folded. The server suggests
// continuing as new from 4096 events or 4 MB, or 1800 updates of the 2000
// it allows. A watch running when workers with this change come (no marker
// in its history) keeps the old path if it met a suggestion already, else
// takes the new one at its next (docs/design.md, "Upgrading workers while
// jobs run").
const SuggestedContinueAsNew = "suggested-continue-as-new"

// historyFull reports whether the server suggests that the watch continue
// as new, for watches on version 1 of SuggestedContinueAsNew.
func historyFull(ctx workflow.Context) bool {
	return workflow.GetInfo(ctx).GetContinueAsNewSuggested() &&
		workflow.GetVersion(ctx, SuggestedContinueAsNew, workflow.DefaultVersion, 1) >= 1
}

// isBadData reports whether err is about the data or a checkpoint, not the
// machine.
func isBadData(err error) bool {
	var app *temporal.ApplicationError
	return errors.As(err, &app) && app.Type() == job.BadDataType
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// orDefaultInt returns v, or def where v is not set (0 or less): a caller's
// own bound, below the default too, is kept.
func orDefaultInt(v, def int) int {
	if v <= 0 {
		return def
	}
	return v
}
