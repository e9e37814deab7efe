package job

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"

	"github.com/vogscore/vog/shard"
	"github.com/vogscore/vog/window"
)

// Version identifies the scoring code; it is part of every fingerprint, so
// outputs of a different version are not reused. Bump it when results change.
const Version = "vog/2"

// Checkpoint is a resolved checkpoint: where it is and its content hash,
// which workers verify so that every shard sees the same weights.
type Checkpoint struct {
	URL    string `json:"url"`
	SHA256 string `json:"sha256"`
}

// Job is a planned job: the spec with everything resolved. It is what
// job.json holds; activities read it through a Ref.
type Job struct {
	Spec        Spec         `json:"spec"`
	Checkpoints []Checkpoint `json:"checkpoints"`
	// Model is Spec.Model resolved, where it is set.
	Model *Checkpoint `json:"model,omitempty"`
	Shape Shape       `json:"shape"`
	// Windows are Spec.Windows resolved against the checkpoints.
	Windows  []window.Window `json:"windows"`
	Examples int64           `json:"examples"`
	Shards   int             `json:"shards"`
	// Classes names the dataset's classes where the format has names.
	Classes []string `json:"classes,omitempty"`
	// IndexSHA256 hashes the dataset's index (ids and labels).
	IndexSHA256 string `json:"index_sha256"`
	// JPEGDecoder is the decoder of image datasets' JPEGs, which every
	// worker of the job uses: "libjpeg-turbo" or "image/jpeg".
	JPEGDecoder string `json:"jpeg_decoder,omitempty"`
	// Outputs is the number of the models' outputs, where it is known
	// before the job runs: vog watch checks each new checkpoint against it.
	Outputs     int    `json:"outputs,omitempty"`
	Version     string `json:"version"`
	Fingerprint string `json:"fingerprint"`
}

// Ref names a planned job: activities read job.json from Out and check its
// fingerprint, so that inputs stay small whatever the job's size.
type Ref struct {
	Out         string
	Fingerprint string
	// Watch, where set, names the job of vog watch (watch.json) with its
	// first Watch checkpoints, those folded or being folded.
	Watch int `json:",omitempty"`
}

// Ref returns the reference to j.
func (j *Job) Ref() Ref { return Ref{Out: j.Spec.Out, Fingerprint: j.Fingerprint} }

// Seal sets j's fingerprint: a hash of everything that decides its rows.
// Out is left out: the same job written elsewhere is the same job.
func (j *Job) Seal() error {
	fp := *j
	fp.Spec.Out, fp.Fingerprint = "", ""
	sum, err := Fingerprint(fp)
	if err != nil {
		return err
	}
	j.Fingerprint = sum
	return nil
}

// Fingerprint returns a short hash of v's JSON encoding: the same value
// gives the same fingerprint.
func Fingerprint(v any) (string, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return "", fmt.Errorf("job: fingerprint: %w", err)
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:12]), nil
}

// Layout returns how the job's examples are cut into batches and shards.
func (j *Job) Layout() shard.Layout {
	return shard.NewLayout(j.Examples, j.Spec.BatchSize, j.Spec.ShardSize)
}

// WorkflowID returns the id of the workflow that runs spec: the same spec
// gives the same id, so submitting a running job again attaches to it.
func WorkflowID(spec Spec) (string, error) {
	fp, err := Fingerprint(spec.WithDefaults())
	if err != nil {
		return "", err
	}
	return "vog-" + fp, nil
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

// GroupFingerprint identifies the partial moments of checkpoints [lo, hi)
// of j: what decides them (the dataset, its index and preprocessing, the
// batches and shards, the label, target and precision, the model, those
// checkpoints' bytes, and for predicted labels the predicting checkpoint's)
// and nothing else, so that a group computed by one job serves any other
// that would compute the same: vog watch folds a run's checkpoints one by
// one, and the job that ends it finds them.
func (j *Job) GroupFingerprint(lo, hi int) string {
	g := struct {
		Version, Label, Target, Precision, Prefix, Index, Decoder string
		Dataset                                                   Dataset
		Shape                                                     Shape
		Layout                                                    shard.Layout
		Model                                                     *Checkpoint
		Checkpoints                                               []string
		Entry                                                     string `json:",omitempty"`
	}{Entry: j.Spec.StateDictEntry, Version: j.Version, Label: j.Spec.Label, Target: j.Spec.Target, Precision: j.Spec.Precision, Prefix: j.Spec.StateDictPrefix,
		Index: j.IndexSHA256, Decoder: j.JPEGDecoder, Dataset: j.Spec.Dataset, Shape: j.Shape, Layout: j.Layout(), Model: j.Model}
	for _, c := range j.Checkpoints[lo:hi] {
		g.Checkpoints = append(g.Checkpoints, c.SHA256)
	}
	if j.Spec.Label == LabelPredicted && len(j.Windows) > 0 {
		g.Checkpoints = append(g.Checkpoints, "predicted by "+j.Checkpoints[j.Windows[0].Last()].SHA256)
	}
	if g.Model != nil {
		g.Model = &Checkpoint{SHA256: g.Model.SHA256}
	}
	fp, _ := Fingerprint(g) // plain fields: cannot fail
	return fp
}

// Verify checks that j's fingerprint is the hash of its content: a
// job.json edited by hand, or damaged, would otherwise be trusted by every
// activity that reads it.
func (j *Job) Verify() error {
	c := *j
	if err := c.Seal(); err != nil {
		return err
	}
	if c.Fingerprint != j.Fingerprint {
		return BadJob("content does not match its fingerprint %s (edited since it was planned?): remove it, or give --overwrite, to plan the job again", j.Fingerprint)
	}
	return nil
}

// Encode returns j as job.json holds it.
func (j *Job) Encode() []byte {
	data, _ := json.MarshalIndent(j, "", "  ") // plain fields: cannot fail
	return append(data, '\n')
}

// Decode parses job.json. Errors wrap ErrBadJob: a file that is not a vog
// job cannot be fixed by retrying.
func Decode(data []byte) (*Job, error) {
	var j Job
	if err := json.Unmarshal(data, &j); err != nil {
		return nil, BadJob("not a vog job: %v", err)
	}
	if j.Fingerprint == "" || j.Version == "" {
		return nil, BadJob("not a vog job: no fingerprint or version")
	}
	return &j, nil
}
