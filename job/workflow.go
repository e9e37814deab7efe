package job

import "time"

// Task queues. Gradient workers hold the models and run one map activity per
// device at a time; reduce workers plan and merge on CPUs.
const (
	GradientQueue = "vog-gradient"
	ReduceQueue   = "vog-reduce"
)

// Names of the workflows and the query that clients use.
const (
	// ScoreJobWorkflow runs a job to its end (workflows.ScoreJob).
	ScoreJobWorkflow = "ScoreJob"
	// ScoreShardsWorkflow scores a range of a job's shards, as a child.
	ScoreShardsWorkflow = "ScoreShards"
	// ProgressQuery returns a workflow's Progress.
	ProgressQuery = "progress"
)

// Activity names, for clients that read pending activities. Each is the
// name the SDK gives a method of activities.Activities (the method's own),
// which workflows call through a nil *Activities and the worker registers
// by the struct: this contract links neither, so the names are spelt here
// once, and TestActivityNames (workflows) checks each against its method.
const (
	ScoreShardActivity  = "ScoreShard"
	ScoreGroupActivity  = "ScoreGroup"
	ReduceShardActivity = "ReduceShard"
)

// Stage is where a job is.
type Stage string

// A job's stages, in order; StagePartial ends a job whose shards failed.
const (
	StagePlanning = Stage("planning")
	StageScoring  = Stage("scoring")
	StageMerging  = Stage("merging classes")
	StageWriting  = Stage("writing")
	StageSealing  = Stage("sealing")
	StageDone     = Stage("done")
	StagePartial  = Stage("partial")
)

// Request starts a job: its spec and how to orchestrate it.
type Request struct {
	Spec Spec
	// MaxInFlight bounds the map activities that each leaf ScoreShards
	// child schedules at once (a tree of depth d runs up to
	// MaxChildren^d leaves at once), and the write activities of the job;
	// 0 means DefaultMaxInFlight.
	MaxInFlight int
	// ShardsPerWrite is the number of shards each write activity
	// normalises; 0 means DefaultShardsPerWrite.
	ShardsPerWrite int
	// ShardsPerChild is the number of shards each ScoreShards child
	// workflow runs; 0 means DefaultShardsPerChild.
	ShardsPerChild int
	// HeartbeatTimeout is how long a shard's worker may stay silent before
	// the shard moves to another worker; 0 means DefaultHeartbeatTimeout.
	// Shards heartbeat after every checkpoint of every batch; the reduce's
	// activities every second.
	HeartbeatTimeout time.Duration
	// RetryFor is how long an activity's failures are retried, with
	// backoff up to a minute apart, before its shard fails or the job does
	// (a storage or server outage shorter than this is survived); 0 means
	// DefaultRetryFor.
	RetryFor time.Duration
	// MaxBadFraction is the fraction of the examples that may fail (be
	// unreadable, corrupt, too large, have a label the model lacks, or give
	// non-finite gradients) before the job fails; 0 allows none
	// (--max-bad-fraction defaults to DefaultMaxBadFraction).
	MaxBadFraction float64
	// Overwrite discards another job's outputs found at Spec.Out.
	Overwrite bool
}

// Defaults for Request's zero fields, and for --max-bad-fraction.
const (
	DefaultMaxInFlight      = 256
	DefaultShardsPerWrite   = 64
	DefaultHeartbeatTimeout = time.Minute
	DefaultRetryFor         = 10 * time.Minute
	DefaultMaxBadFraction   = 0.001
	// ActivitiesPerChild bounds the activities one ScoreShards child runs:
	// at about 6 history events each, 1000 keep a child well under
	// Temporal's 10,240-event warning. A shard takes one activity, or one
	// per checkpoint group and one to reduce them.
	ActivitiesPerChild = 1000
	// DefaultShardsPerChild is the shards of a child without checkpoint
	// groups.
	DefaultShardsPerChild = ActivitiesPerChild
	// ChildrenPerWorkflow bounds the children of one workflow: a job of
	// more shards than that many children hold gets a tree of them.
	ChildrenPerWorkflow = 500
	// MaxChildren children run at once, so that one finishing leaves no gap.
	MaxChildren = 2
)

// ShardFailure is a shard that failed after its retries.
type ShardFailure struct {
	Shard int
	Error string
}

// Result reports a finished job. A job with Failed shards is partial: it
// has no result files; running it again computes only the failed shards.
type Result struct {
	Ref      Ref
	Examples int64
	Shards   int
	// Reused counts shards whose outputs existed before this run.
	Reused int
	// Failed lists the shards that failed, in shard order.
	Failed  []ShardFailure
	Rows    int64
	Parts   int
	Hardest []ScoreRow
	// Failures counts the examples that could not be scored (listed in
	// failures.parquet), by kind in FailedKinds.
	Failures    int64
	FailedKinds map[string]int64
	// Seconds spent planning, scoring shards, and reducing (merging,
	// normalising, writing, sealing), by the workflow's clock.
	PlanSeconds, ScoreSeconds, ReduceSeconds float64
	// Plan holds what planning chose (PlanResult.Notes).
	Plan []string `json:",omitempty"`
}

// Progress is what ProgressQuery returns.
type Progress struct {
	Stage         Stage
	Examples      int64
	ExamplesDone  int64
	Shards        int
	ShardsDone    int
	ShardsFailed  int
	ShardsRunning int
	// ExamplesFailed counts the examples that could not be scored so far.
	ExamplesFailed int64
	// Failed lists the shards that have failed so far, and why.
	Failed []ShardFailure
	// Plan holds what planning chose (PlanResult.Notes).
	Plan []string `json:",omitempty"`
}
