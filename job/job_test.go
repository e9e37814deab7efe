package job_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/vogscore/vog/job"
	"github.com/vogscore/vog/window"
)

func planned() job.Job {
	return job.Job{
		Spec: job.Spec{Dataset: job.Dataset{Format: "imagefolder", URL: "s3://b/imagenet/val", Preprocess: job.Preprocess{Resize: 256, Crop: 224, Mean: []float32{0.485, 0.456, 0.406}, Std: []float32{0.229, 0.224, 0.225}}},
			Checkpoints: []string{"s3://b/ckpt/"}, Label: "true", ShardSize: 10000, BatchSize: 128, Windows: "early=0:3,late=-3:", Precision: "bf16", Out: "s3://b/out"},
		Checkpoints: []job.Checkpoint{{URL: "s3://b/ckpt/a.pt", SHA256: "aa"}, {URL: "s3://b/ckpt/b.pt", SHA256: "bb"}},
		Shape:       job.Shape{C: 3, H: 224, W: 224},
		Windows:     []window.Window{{Name: "early", Lo: 0, Hi: 1}, {Name: "late", Lo: 1, Hi: 2}},
		Examples:    50000, Shards: 5, Classes: []string{"a", "b"}, IndexSHA256: "ii", Version: "vog/1",
	}
}

// TestFingerprintsKept: the fingerprints of a job and of its workflow id are
// those that vog computed before the contract moved into this package (the
// values were printed by that code), so existing outputs are still reused.
func TestFingerprintsKept(t *testing.T) {
	j := planned()
	if err := j.Seal(); err != nil {
		t.Fatal(err)
	}
	if j.Fingerprint != "8f0d781f596336db30381817" {
		t.Errorf("job fingerprint %s changed", j.Fingerprint)
	}
	if fp, _ := job.Fingerprint(j.Spec.WithDefaults()); fp != "93eefedf386642bc60ee7974" {
		t.Errorf("spec fingerprint %s changed", fp)
	}
	// Out is not part of the job; the precision is.
	other := planned()
	other.Spec.Out = "/elsewhere"
	other.Seal()
	if other.Fingerprint != j.Fingerprint {
		t.Error("the same job written elsewhere has another fingerprint")
	}
	other.Spec.Precision = ""
	other.Seal()
	if other.Fingerprint == j.Fingerprint {
		t.Error("another precision has the same fingerprint")
	}
	// The logit target, spelt or not, is the one jobs had before targets.
	if fp, _ := job.Fingerprint(planned().Spec.WithDefaults()); fp != "93eefedf386642bc60ee7974" {
		t.Errorf("spec fingerprint %s changed", fp)
	}
	logit := planned().Spec
	logit.Target = "logit"
	if fp, _ := job.Fingerprint(logit.WithDefaults()); fp != "93eefedf386642bc60ee7974" {
		t.Errorf("--target logit changed the spec's fingerprint to %s", fp)
	}
	prob := planned()
	prob.Spec.Target = "prob"
	prob.Seal()
	if prob.Fingerprint == j.Fingerprint {
		t.Error("another target has the same fingerprint")
	}
}

func TestFingerprintStable(t *testing.T) {
	type spec struct {
		A string
		B []int
	}
	a, _ := job.Fingerprint(spec{"x", []int{1, 2}})
	b, _ := job.Fingerprint(spec{"x", []int{1, 2}})
	c, _ := job.Fingerprint(spec{"x", []int{2, 1}})
	if a != b || a == c || len(a) != 24 {
		t.Fatalf("fingerprints %q %q %q", a, b, c)
	}
}

func TestEncodeDecode(t *testing.T) {
	j := planned()
	j.Seal()
	got, err := job.Decode(j.Encode())
	if err != nil {
		t.Fatal(err)
	}
	if got.Fingerprint != j.Fingerprint || got.Shape != j.Shape || got.Spec.Dataset.Mean[2] != j.Spec.Dataset.Mean[2] {
		t.Fatalf("round trip: %+v", got)
	}
	for _, bad := range []string{"", "{", `{"spec": {}}`, "[1,2]"} {
		if _, err := job.Decode([]byte(bad)); !errors.Is(err, job.ErrBadJob) {
			t.Errorf("Decode(%q): got %v, want ErrBadJob", bad, err)
		}
	}
}

func TestSpecValidate(t *testing.T) {
	good := job.Spec{Dataset: job.Dataset{Format: "idx", URL: "/d"}, Checkpoints: []string{"/c"}, Out: "/o"}.WithDefaults()
	if err := good.Validate(); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		edit func(*job.Spec)
		flag string
	}{
		{"format", func(s *job.Spec) { s.Dataset.Format = "csv" }, "--format"},
		{"dataset", func(s *job.Spec) { s.Dataset.URL = "" }, "--dataset"},
		{"checkpoints", func(s *job.Spec) { s.Checkpoints = nil }, "--checkpoints"},
		{"label", func(s *job.Spec) { s.Label = "soft" }, "--label"},
		{"shard size", func(s *job.Spec) { s.ShardSize = -1 }, "--shard-size"},
		{"batch size", func(s *job.Spec) { s.BatchSize = -1 }, "--batch-size"},
		{"precision", func(s *job.Spec) { s.Precision = "fp8" }, "--precision"},
		{"group", func(s *job.Spec) { s.CheckpointGroup = -2 }, "--checkpoint-group"},
		{"out", func(s *job.Spec) { s.Out = "" }, "--out"},
		{"mean", func(s *job.Spec) { s.Dataset.Mean = []float32{1, 2} }, "--mean"},
		{"std", func(s *job.Spec) { s.Dataset.Mean, s.Dataset.Std = []float32{1}, []float32{0} }, "--std"},
		{"channels", func(s *job.Spec) { s.Dataset.Channels = 2 }, "--channels"},
	}
	for _, tt := range tests {
		s := good
		tt.edit(&s)
		if err := s.Validate(); err == nil || !strings.Contains(err.Error(), tt.flag) {
			t.Errorf("%s: got %v, want an error naming %s", tt.name, err, tt.flag)
		}
	}
	if p := (job.Spec{Precision: "fp32"}).WithDefaults(); p.Precision != "" || p.EnginePrecision() != "fp32" {
		t.Errorf("fp32 is spelt %q, and %q to the engine", p.Precision, p.EnginePrecision())
	}
}

func TestGroups(t *testing.T) {
	j := planned()
	j.Checkpoints = make([]job.Checkpoint, 7)
	for size, want := range map[int]string{0: "[[0 7]]", 7: "[[0 7]]", 3: "[[0 3] [3 6] [6 7]]", 1: "[[0 1] [1 2] [2 3] [3 4] [4 5] [5 6] [6 7]]"} {
		j.Spec.CheckpointGroup = size
		if got := fmt.Sprint(j.Groups()); got != want {
			t.Errorf("groups of %d: %s, want %s", size, got, want)
		}
	}
}
