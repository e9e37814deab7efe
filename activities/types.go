// Package activities holds vog's side effects as Temporal activities: plan a
// job, score shards on a gradient worker, merge class statistics, normalise
// and write the result. Each takes one input struct and returns one result
// struct carrying keys and counts, never tensors.
package activities

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/vogscore/vog/dataset"
	"github.com/vogscore/vog/engine"
	"github.com/vogscore/vog/storage"
	"github.com/vogscore/vog/window"
)

// Label modes: which logit's gradient is taken.
const (
	LabelTrue      = "true"
	LabelPredicted = "predicted"
)

// JobSpec is what a user asks for.
type JobSpec struct {
	Dataset dataset.Spec `json:"dataset"`
	// Checkpoints is a list of checkpoint URLs in training order, or a single
	// folder/prefix meaning every *.pt in it in natural order.
	Checkpoints []string `json:"checkpoints"`
	// Label is LabelTrue (default) or LabelPredicted.
	Label string `json:"label"`
	// ShardSize is the number of examples per map activity.
	ShardSize int `json:"shard_size"`
	// BatchSize is the number of examples per engine call.
	BatchSize int `json:"batch_size"`
	// Windows names slices of the checkpoints to score separately, as
	// "early=0:3,late=-3:" (window.Parse); empty means one window, all.
	Windows string `json:"windows,omitempty"`
	// CheckpointGroup, when positive and smaller than the number of
	// checkpoints, splits them into groups of this many: a map activity
	// per shard and group writes per-pixel partial moments, and a shard
	// reduce merges them. 0 scores all checkpoints in one pass.
	CheckpointGroup int `json:"checkpoint_group,omitempty"`
	// Precision is the engine's: "" (float32), "tf32" or "bf16". It is
	// part of the job because it changes the scores: every worker computes
	// a job in its precision.
	Precision string `json:"precision,omitempty"`
	// Out is the URL under which the job's outputs are written.
	Out string `json:"out"`
}

// Defaults for JobSpec's zero fields.
const (
	DefaultShardSize = 10000
	DefaultBatchSize = 128
)

// WithDefaults returns s with zero fields set to their defaults.
func (s JobSpec) WithDefaults() JobSpec {
	if s.Label == "" {
		s.Label = LabelTrue
	}
	if s.ShardSize == 0 {
		s.ShardSize = DefaultShardSize
	}
	if s.BatchSize == 0 {
		s.BatchSize = DefaultBatchSize
	}
	if s.Precision == "fp32" {
		s.Precision = "" // float32 jobs keep their fingerprint
	}
	return s
}

// Validate names the first bad field of s by its flag.
func (s JobSpec) Validate() error {
	if err := s.Dataset.Validate(); err != nil {
		return err
	}
	if len(s.Checkpoints) == 0 {
		return errors.New("--checkpoints: missing")
	}
	if s.Label != LabelTrue && s.Label != LabelPredicted {
		return fmt.Errorf("--label %q: want %q or %q", s.Label, LabelTrue, LabelPredicted)
	}
	if s.ShardSize <= 0 {
		return fmt.Errorf("--shard-size %d: must be positive", s.ShardSize)
	}
	if s.BatchSize <= 0 {
		return fmt.Errorf("--batch-size %d: must be positive", s.BatchSize)
	}
	if s.Precision != "" && !slices.Contains(engine.Precisions, s.Precision) {
		return fmt.Errorf("--precision %q: want %s", s.Precision, strings.Join(engine.Precisions, ", "))
	}
	if s.CheckpointGroup < 0 {
		return fmt.Errorf("--checkpoint-group %d: must not be negative", s.CheckpointGroup)
	}
	if s.CheckpointGroup > 0 && s.Windows != "" {
		return errors.New("--windows with --checkpoint-group: not supported yet; score each window as its own job")
	}
	if s.Out == "" {
		return errors.New("--out: missing")
	}
	if _, err := storage.Parse(s.Out); err != nil {
		return fmt.Errorf("--out: %w", err)
	}
	return nil
}

// Checkpoint is a resolved checkpoint: where it is and its content hash,
// which workers verify so that every shard sees the same weights.
type Checkpoint struct {
	URL    string `json:"url"`
	SHA256 string `json:"sha256"`
}

// Job is a planned job: the spec with everything resolved. It is what
// job.json holds and what every activity of the job receives.
type Job struct {
	Spec        JobSpec      `json:"spec"`
	Checkpoints []Checkpoint `json:"checkpoints"`
	Shape       engine.Shape `json:"shape"`
	// Windows are Spec.Windows resolved against the checkpoints.
	Windows  []window.Window `json:"windows"`
	Examples int64           `json:"examples"`
	Shards   int             `json:"shards"`
	// Classes names the dataset's classes where the format has names.
	Classes []string `json:"classes,omitempty"`
	// IndexSHA256 hashes the dataset's index (ids and labels).
	IndexSHA256 string `json:"index_sha256"`
	Version     string `json:"version"`
	Fingerprint string `json:"fingerprint"`
}

// Version identifies the scoring code; it is part of every fingerprint, so
// outputs of a different version are not reused. Bump it when results change.
const Version = "vog/1"

// PlanInput asks to plan a job.
type PlanInput struct {
	Spec JobSpec
}

// JobRef names a planned job: activities read job.json from Out and check
// its fingerprint, so that inputs stay small whatever the job's size.
type JobRef struct {
	Out         string
	Fingerprint string
}

// PlanResult is the planned job.
type PlanResult struct {
	Ref       JobRef
	Examples  int64
	Shards    int
	ShardSize int
	// Checkpoints is the number of checkpoints the job scores with.
	Checkpoints int
	// Groups is the number of checkpoint groups: 1 unless
	// --checkpoint-group splits them.
	Groups int
}

// Groups returns the job's checkpoint groups as ranges [lo, hi) of its
// checkpoints: one group of all unless Spec.CheckpointGroup splits them.
func (j *Job) Groups() [][2]int {
	k, size := len(j.Checkpoints), j.Spec.CheckpointGroup
	if size <= 0 || size >= k {
		return [][2]int{{0, k}}
	}
	var g [][2]int
	for lo := 0; lo < k; lo += size {
		g = append(g, [2]int{lo, min(lo+size, k)})
	}
	return g
}

// GroupInput asks to fold one checkpoint group of one shard.
type GroupInput struct {
	Ref   JobRef
	Shard int
	Group int
}

// ShardInput asks to score one shard.
type ShardInput struct {
	Ref   JobRef
	Shard int
}

// ShardProgress is the heartbeat of ScoreShard.
type ShardProgress struct {
	Done  int64
	Total int64
}

// ShardResult reports a scored shard.
type ShardResult struct {
	Shard    int
	Examples int64
	// Reused is true when the shard's output already existed.
	Reused bool
	// Seconds is the time the shard took on its worker.
	Seconds float64
}

// MergeInput asks to merge the class statistics of every shard of a job.
type MergeInput struct {
	Ref JobRef
}

// MergeResult reports classes.parquet.
type MergeResult struct {
	Classes int
}

// WriteInput asks to normalise and write the result parts of shards
// [First, Last).
type WriteInput struct {
	Ref         JobRef
	First, Last int
}

// WriteResult reports the parts written.
type WriteResult struct {
	Rows int64
	// Hardest holds the rows of highest vog_norm, most first, at most
	// HardestCount.
	Hardest []storage.ScoreRow
}

// HardestCount is how many of the hardest examples results carry.
const HardestCount = 5

// FinishInput asks to seal a job with _SUCCESS.
type FinishInput struct {
	Ref  JobRef
	Rows int64
}

// FinishResult reports the sealed job.
type FinishResult struct {
	Parts []Part
}

// Part is one result file, as listed in _SUCCESS.
type Part struct {
	Key  string `json:"key"`
	Size int64  `json:"size"`
}
