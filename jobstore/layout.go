package jobstore

import "fmt"

// Keys of a job's output, relative to --out (docs/design.md, "Storage layout").
const (
	JobKey     = "job.json"
	IndexKey   = "shards/index.parquet"
	ClassesKey = "classes.parquet"
	// FailuresKey lists the examples that could not be scored.
	FailuresKey = "failures.parquet"
	// ReportKey is vog report's page.
	ReportKey = "report.html"
	// WatchKey is vog watch's job: the checkpoints folded so far.
	WatchKey = "watch.json"
	// SuccessKey is written last: the result is complete (job.Success).
	SuccessKey = "_SUCCESS"
	// ModelsPrefix holds the TorchScript modules that planning exported
	// for --model torchvision:NAME, named by their sha256 (ModelKey).
	ModelsPrefix = "models/"
	// PartsPrefix holds the result parts (PartKey).
	PartsPrefix = "scores/"
)

// outputs are the keys and prefixes of everything a job writes, which
// RemoveOutputs deletes.
var outputs = []string{JobKey, WatchKey, ClassesKey, FailuresKey, SuccessKey, ReportKey, "shards/", PartsPrefix}

// Keys of the footer metadata of the Parquet files a job writes.
const (
	// FingerprintMeta is the fingerprint of the job that wrote the file.
	FingerprintMeta = "vog.fingerprint"
	// IndexMeta is the SHA-256 of the dataset index, in the index.
	IndexMeta = "vog.index_sha256"
	// RowsBytesMeta and FailuresBytesMeta are the sizes of a shard's rows
	// and failures files, in the class file that marks the shard done.
	RowsBytesMeta     = "vog.rows_bytes"
	FailuresBytesMeta = "vog.failures_bytes"
	// AttemptMeta names, in a shard's class file, the attempt whose rows
	// and failures files are the shard's (ShardRowsKey, ShardFailuresKey).
	AttemptMeta = "vog.attempt"
)

// ShardPrefix holds shard i's files.
func ShardPrefix(i int) string { return fmt.Sprintf("shards/%05d/", i) }

// ShardRowsKey is where the attempt of the given name keeps shard i's
// per-example scores (before class normalisation); the shard's class file
// names the attempt whose files are the shard's.
func ShardRowsKey(i int, attempt string) string {
	return fmt.Sprintf("shards/%05d/rows-%s.parquet", i, attempt)
}

// ShardClassesKey is where shard i's per-class moments are kept: the file
// that publishes the shard, created once (Store.WriteShard).
func ShardClassesKey(i int) string { return fmt.Sprintf("shards/%05d/classes.parquet", i) }

// ShardFailuresKey is where the attempt of the given name keeps shard i's
// failed examples.
func ShardFailuresKey(i int, attempt string) string {
	return fmt.Sprintf("shards/%05d/failures-%s.parquet", i, attempt)
}

// PartKey is the result file holding shard i's rows.
func PartKey(i int) string { return fmt.Sprintf(PartsPrefix+"part-%05d.parquet", i) }

// ShardGroupKey is where shard i's partial moments over a checkpoint group
// are kept (--checkpoint-group, vog watch), named by the group's
// fingerprint (job.Job.GroupFingerprint): any job that would compute the
// same moments finds them.
func ShardGroupKey(i int, group string) string {
	return fmt.Sprintf("shards/%05d/group-%s.moments", i, group)
}

// ModelKey is where an exported --model of the given sha256 is kept.
func ModelKey(sha256 string) string { return ModelsPrefix + sha256 + ".pt" }
