package job

import (
	"fmt"
	"time"

	"github.com/vogscore/vog/internal/bytesize"
)

// Names of vog watch's and schedules' workflows, updates and query.
const (
	// WatchWorkflow folds a training run's checkpoints in as they appear
	// (workflows.WatchRun).
	WatchWorkflow = "WatchRun"
	// AddCheckpointUpdate announces a checkpoint to a watch; it is refused,
	// with the reason, if the checkpoint does not fit the run's.
	AddCheckpointUpdate = "add-checkpoint"
	// FinishUpdate ends a watch without its marker: the checkpoints folded
	// so far are scored as the run's.
	FinishUpdate = "finish"
	// WatchQuery returns a watch's WatchProgress.
	WatchQuery = "watch"
	// ScanWorkflow is a schedule's action: it starts a job for each
	// finished run that has none (workflows.ScanRuns).
	ScanWorkflow = "ScanRuns"
)

// Defaults of vog watch.
const (
	DefaultWatchPoll = 30 * time.Second
	// CheckpointsPerWatchRun bounds the checkpoints one run of a watch's
	// workflow folds before it continues as new, so that its history stays
	// small for runs of hundreds of checkpoints.
	CheckpointsPerWatchRun = 100
	// DefaultMaxWatchState bounds the storage a watch's state takes, all
	// its checkpoints together (WatchRequest.MaxState): 100 GB, what a
	// disk or a bucket gives without anyone deciding it. It holds
	// hundreds of checkpoints of Fashion-MNIST's or CIFAR-10's training
	// set (0.38 and 0.41 GB each), four of ImageNet-1k's validation set at
	// 224x224 (20 GB each), and refuses ImageNet-1k's training set (514 GB
	// each, 6.2 TB for 12 checkpoints) until it is raised.
	DefaultMaxWatchState int64 = 100e9
)

// WatchRequest starts vog watch on one training run: each checkpoint that
// appears in Run (or is announced by AddCheckpointUpdate) is scored at once
// as its own checkpoint group; when Marker appears under Run (or on
// FinishUpdate), the groups are merged and the job's result written as vog
// run writes it, by a ScoreJob of Job.Spec with those checkpoints and
// --checkpoint-group 1.
type WatchRequest struct {
	// Job is the job to run; Job.Spec.Checkpoints is ignored.
	Job Request
	// Run is the run's folder, listed every Poll for new checkpoint files
	// or Hugging Face checkpoint-N/ folders; "" only takes updates.
	Run string
	// Marker is the file, under Run, that says the run has finished.
	Marker string
	// Poll is how often Run is listed; 0 means DefaultWatchPoll.
	Poll time.Duration
	// PerRun is how many checkpoints one run of the workflow folds before
	// continuing as new; 0 means CheckpointsPerWatchRun.
	PerRun int
	// MaxState bounds, in bytes, the partial moments the watch keeps under
	// Job.Spec.Out, all its checkpoints together (WatchStateSize): a watch
	// whose one checkpoint would take more is refused when planned, before
	// anything is scored, and a checkpoint that would take the total over
	// is refused, with the reason. 0 means DefaultMaxWatchState; a
	// negative value, no bound.
	MaxState int64 `json:",omitempty"`
	// State is carried from a run of the workflow to the next.
	State WatchState
}

// WatchState is what a watch has seen.
type WatchState struct {
	// Folded lists the checkpoints folded, in order.
	Folded []string
	// Refused lists the checkpoints that did not fit, and why.
	Refused []Refusal
	// Finish is set once the run is over.
	Finish bool
}

// Refusal is a checkpoint a watch refused.
type Refusal struct {
	Checkpoint string
	Reason     string
}

// WatchProgress is what WatchQuery returns.
type WatchProgress struct {
	WatchState
	// Pending lists the checkpoints accepted and waiting to be folded.
	Pending []string
	// Folding is the checkpoint being folded, if any.
	Folding string
	// Stage is StageScoring while checkpoints are folded, then the final
	// job's.
	Stage Stage
	// State is the storage each folded checkpoint takes, once the watch
	// is planned (zero before), and MaxState the bound on all of them
	// (negative: none).
	State    WatchStateSize
	MaxState int64
}

// MaxWatchState is the bound a WatchRequest's MaxState sets: v, or
// DefaultMaxWatchState where v is 0; negative means none.
func MaxWatchState(v int64) int64 {
	if v == 0 {
		return DefaultMaxWatchState
	}
	return v
}

// WatchStateSize is the storage each checkpoint a watch folds takes: its
// partial moments, one file per shard (storage.MomentsBytes), 8 bytes a
// pixel of the channel-averaged gradient and a few per example, kept under
// --out until the run ends and after (they serve later jobs of the same
// checkpoints).
type WatchStateSize struct {
	Examples int64
	// Pixels is H x W of one example.
	Pixels int
	// PerCheckpoint is the bytes of one checkpoint's files.
	PerCheckpoint int64
}

// Fits returns how many checkpoints' state fits in maxState bytes (a
// WatchRequest's bound, MaxWatchState), or -1 where there is no bound.
func (s WatchStateSize) Fits(maxState int64) int64 {
	if maxState < 0 || s.PerCheckpoint <= 0 {
		return -1
	}
	return maxState / s.PerCheckpoint
}

// String describes the size: "376.8 MB per checkpoint (60000 examples x
// 784 pixels x 8 bytes, and their scores)".
func (s WatchStateSize) String() string {
	return fmt.Sprintf("%s per checkpoint (%d examples x %d pixels x 8 bytes, and their scores)",
		bytesize.Format(s.PerCheckpoint), s.Examples, s.Pixels)
}

// TooLarge is the error of a watch whose one checkpoint's state is over
// maxState: it names --max-state, what would fit it, and vog run.
func (s WatchStateSize) TooLarge(maxState int64) error {
	return BadJob("vog watch: its state would take %s, over --max-state %s: give a larger --max-state "+
		"(%s holds 12 checkpoints), or score the run with vog run once it ends (it keeps no state)",
		s, bytesize.Format(maxState), bytesize.Format(12*s.PerCheckpoint))
}

// WatchPlanInput asks to plan a watch: the dataset and everything but the
// checkpoints, which AddCheckpointInput adds one by one.
type WatchPlanInput struct {
	Spec      Spec
	Overwrite bool
	// MaxState bounds one checkpoint's state (MaxWatchState: negative
	// means none; 0 none either, as before the bound).
	MaxState int64 `json:",omitempty"`
}

// WatchPlan is a planned watch: the Ref of its job (with the checkpoints
// it holds already) and its shards.
type WatchPlan struct {
	Ref    Ref
	Shards int
	// State is the storage each folded checkpoint takes.
	State WatchStateSize
}

// AddCheckpointInput asks to check a checkpoint against a watch's (Check)
// or to add it to the watch's job (Add).
type AddCheckpointInput struct {
	Ref        Ref
	Checkpoint string
	// Outputs is the checkpoint's outputs, as CheckCheckpoint found.
	Outputs int
}

// AddCheckpointResult reports an added checkpoint: its index among the
// watch's, and the Ref of the watch's job with it.
type AddCheckpointResult struct {
	Index int
	Ref   Ref
}

// ListRunInput asks which checkpoints a run's folder holds, and whether
// its marker is there.
type ListRunInput struct {
	Run, Marker string
	// Exclude is a file not to take for a checkpoint (the --model).
	Exclude string
}

// ListRunResult is a run's checkpoints, in natural order, and whether it
// has finished.
type ListRunResult struct {
	Checkpoints []string
	Finished    bool
}

// ScanRequest is a schedule's action: for each folder directly under Runs
// whose Marker file exists, and whose result at OutPrefix/<folder name>
// is not complete, start the job of Job.Spec with Checkpoints that folder
// and Out OutPrefix/<folder name>.
type ScanRequest struct {
	Job       Request
	Runs      string
	Marker    string
	OutPrefix string
}

// ScanResult lists what a scan did with each run folder.
type ScanResult struct {
	// Started lists the ids of the jobs started, Running those already
	// running, Done the runs with a complete result, Waiting those without
	// a marker.
	Started, Running, Done, Waiting []string
}

// ListRunsInput asks for the run folders under Runs and their state.
type ListRunsInput struct {
	Runs, Marker, OutPrefix string
}

// ListRunsResult lists the run folders under Runs: those finished
// (marker present) and not yet scored (no _SUCCESS at their out), those
// done, and those still training.
type ListRunsResult struct {
	Todo, Done, Waiting []RunFolder
}

// RunFolder is one training run's folder and where its scores go.
type RunFolder struct {
	Name, URL, Out string
}
