// Package job is vog's job contract: what a user asks for (Spec), what a
// planned job is (Job, the content of job.json), the result schema, the
// inputs and results that workflows and activities exchange, progress and
// its stages, and the kinds of error that decide retries.
//
// It does no I/O and imports only pure packages (shard, window): neither
// the engine (Shape, Target and the precisions are defined here, and
// package engine computes with them), nor the checkpoint reader, storage,
// dataset readers, Temporal, blob drivers or Parquet, so that a client that
// only submits and follows jobs links none of them (internal/deps checks). docs/design.md describes the contract as a whole.
package job
