// Package job is vog's job contract: what a user asks for (Spec), what a
// planned job is (Job, the content of job.json), the result schema, the
// inputs and results that workflows and activities exchange, progress and
// its stages, and the kinds of error that decide retries.
//
// It does no I/O and imports only pure packages (engine's shapes and
// precisions, window): neither Temporal, nor blob drivers, nor Parquet, so
// that a client that only submits and follows jobs links none of them. docs/design.md describes the contract as a whole.
package job
