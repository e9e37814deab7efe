package client

import (
	"context"
	"fmt"
	"io"
	"time"

	"go.temporal.io/sdk/client"

	"github.com/vogscore/vog/internal/bytesize"
	"github.com/vogscore/vog/job"
	"github.com/vogscore/vog/location"
)

// WatchID returns the id of the watch of run writing to out: one watch
// per run and --out.
func WatchID(run, out string) (string, error) {
	fp, err := job.Fingerprint([]string{run, out})
	if err != nil {
		return "", err
	}
	return "vog-watch-" + fp, nil
}

// StartWatch starts vog watch on a run, or attaches to the watch of the
// same run and --out if one is running, and returns its id.
func StartWatch(ctx context.Context, c client.Client, in job.WatchRequest) (string, error) {
	id, err := WatchID(in.Run, in.Job.Spec.Out)
	if err != nil {
		return "", err
	}
	if err := start(ctx, c, id, job.WatchWorkflow, in); err != nil {
		return "", fmt.Errorf("start watch: %w", err)
	}
	return id, nil
}

// AddCheckpoint announces a checkpoint (a path or URL) to watch id, and
// waits until it is accepted, or refused: the error then says why it does
// not fit the run. It is named as the watch's listing of its run names
// files, so that a checkpoint announced and also found there is one.
func AddCheckpoint(ctx context.Context, c client.Client, id, checkpoint string) error {
	url, err := location.Canonical(checkpoint)
	if err != nil {
		return err
	}
	return update(ctx, c, id, job.AddCheckpointUpdate, url)
}

// FinishWatch ends watch id as its marker would: the checkpoints folded
// are scored as the run's.
func FinishWatch(ctx context.Context, c client.Client, id string) error {
	return update(ctx, c, id, job.FinishUpdate)
}

func update(ctx context.Context, c client.Client, id, name string, args ...any) error {
	h, err := c.UpdateWorkflow(ctx, client.UpdateWorkflowOptions{
		WorkflowID: id, UpdateName: name, Args: args, WaitForStage: client.WorkflowUpdateStageCompleted,
	})
	if err == nil {
		err = h.Get(ctx, nil)
	}
	return explain(err)
}

// WatchStatus returns what watch id has folded, refused and waits for.
func WatchStatus(ctx context.Context, c client.Client, id string) (job.WatchProgress, error) {
	var p job.WatchProgress
	v, err := c.QueryWorkflow(ctx, id, "", job.WatchQuery)
	if err == nil {
		err = v.Get(&p)
	}
	return p, err
}

// FollowWatch waits for watch id to end, writing a line to w every
// interval while checkpoints are folded, then the final job's progress,
// and returns the final job's result.
func FollowWatch(ctx context.Context, c client.Client, id string, w io.Writer, interval time.Duration) (job.Result, error) {
	refused, sized := 0, false
	return FollowWith(ctx, c, id, w, interval, func(ctx context.Context) []string {
		p, err := WatchStatus(ctx, c, id)
		if err != nil {
			return nil
		}
		var head, lines []string
		if !sized && p.State.PerCheckpoint > 0 {
			sized = true
			head = append(head, StateLine(p.State, p.MaxState))
		}
		for _, r := range p.Refused[min(refused, len(p.Refused)):] {
			lines = append(lines, fmt.Sprintf("  refused %s: %s", r.Checkpoint, r.Reason))
		}
		refused = len(p.Refused)
		line := fmt.Sprintf("watching: %d checkpoint(s) folded", len(p.Folded))
		if p.State.PerCheckpoint > 0 {
			line += fmt.Sprintf(" (%s of state)", bytesize.Format(int64(len(p.Folded))*p.State.PerCheckpoint))
		}
		line += fmt.Sprintf(", %d waiting, %d refused", len(p.Pending), len(p.Refused))
		if p.Folding != "" {
			line += "; folding " + p.Folding
		}
		if p.Finish {
			line += "; the run is over: scoring it"
		}
		return append(append(head, line), lines...)
	})
}

// StateLine says what storage a watch's state takes, and how many
// checkpoints maxState (a bound as job.MaxWatchState gives it) holds.
func StateLine(s job.WatchStateSize, maxState int64) string {
	line := "watch state: " + s.String() + ", kept under --out"
	if fits := s.Fits(maxState); fits >= 0 {
		return line + fmt.Sprintf("; --max-state %s holds %d checkpoint(s)", bytesize.Format(maxState), fits)
	}
	return line + "; no --max-state bound"
}
