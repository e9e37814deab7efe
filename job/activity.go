package job

// Inputs and results of vog's activities. Each carries keys and counts,
// never tensors, so that histories stay small whatever the job's size.

// PlanInput asks to plan a job.
type PlanInput struct {
	Spec Spec
	// Overwrite discards the outputs of another job found at Spec.Out
	// (--overwrite); the outputs of this same job are always kept.
	Overwrite bool
}

// PlanResult is the planned job.
type PlanResult struct {
	Ref       Ref
	Examples  int64
	Shards    int
	ShardSize int
	// Checkpoints is the number of checkpoints the job scores with.
	Checkpoints int
	// Groups is the number of checkpoint groups: 1 unless
	// --checkpoint-group splits them.
	Groups int
	// Notes say what planning chose: the checkpoints of a folder in
	// order, the files it left out and why, where the weights were found.
	Notes []string `json:",omitempty"`
}

// GroupInput asks to fold one checkpoint group of one shard.
type GroupInput struct {
	Ref   Ref
	Shard int
	Group int
}

// ShardInput asks to score one shard, or to reduce its groups.
type ShardInput struct {
	Ref   Ref
	Shard int
}

// ShardProgress is the heartbeat of the activities that compute gradients:
// Done of the shard's Total examples have passed through the activity's
// checkpoints, which are one of Groups checkpoint groups (0 or 1: all of
// them).
type ShardProgress struct {
	Done   int64
	Total  int64
	Groups int
}

// Examples returns the shard's examples that the progress stands for:
// Done, shared over the checkpoint groups.
func (p ShardProgress) Examples() int64 { return p.Done / int64(max(p.Groups, 1)) }

// ShardResult reports a scored shard, or a folded group.
type ShardResult struct {
	Shard    int
	Examples int64
	// Failed counts the shard's examples that could not be scored (in its
	// failures file), by kind in FailedKinds.
	Failed      int64
	FailedKinds map[string]int64
	// Reused is true when the output already existed.
	Reused bool
	// Seconds is the time the activity took on its worker.
	Seconds float64
}

// MergeInput asks to merge the class statistics of every shard of a job.
type MergeInput struct {
	Ref Ref
}

// MergeResult reports classes.parquet and failures.parquet.
type MergeResult struct {
	Classes  int
	Failures int64
}

// WriteInput asks to normalise and write the result parts of shards
// [First, Last).
type WriteInput struct {
	Ref         Ref
	First, Last int
}

// WriteResult reports the parts written.
type WriteResult struct {
	Rows int64
	// Hardest holds the rows of highest vog_norm, most first, at most
	// HardestCount.
	Hardest []ScoreRow
}

// HardestCount is how many of the hardest examples results carry.
const HardestCount = 5

// FinishInput asks to seal a job with _SUCCESS.
type FinishInput struct {
	Ref      Ref
	Rows     int64
	Failures int64
}

// FinishResult reports the sealed job.
type FinishResult struct {
	Parts []Part
}
