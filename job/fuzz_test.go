package job_test

import (
	"bytes"
	"errors"
	"math"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/vogscore/vog/job"
	"github.com/vogscore/vog/window"
)

// FuzzDecode: job.json that Decode accepts holds a fingerprint and a
// version, and is a fixed point of Encode and Decode: re-encoded it decodes
// to the same job (empty lists read as absent, which is how Encode writes
// them) and re-encodes to the same bytes, so its fingerprint does not move.
// Anything else is an error marked ErrBadJob. Seeds: below and
// testdata/fuzz/FuzzDecode.
func FuzzDecode(f *testing.F) {
	j := planned()
	if err := j.Seal(); err != nil {
		f.Fatal(err)
	}
	f.Add(j.Encode())
	f.Add([]byte(`{"fingerprint":"f","version":"v"}`))
	f.Add([]byte(`{"fingerprint":"f","version":"v","spec":{"dataset":{"mean":[],"std":[0.5]}},"classes":[],"checkpoints":[],"windows":null}`))
	f.Add([]byte(`{"Fingerprint":"f","VERSION":"v","shape":{"C":1,"H":2,"W":3},"examples":1e3}`))
	f.Add([]byte(`{"fingerprint":"f","version":"v","spec":{"dataset":{"mean":[3.5e38]}}}`))
	f.Add([]byte(`{"fingerprint":"\ud800","version":"v","classes":["a\u0000b"]}`))
	f.Add([]byte(`[1,2]`))
	f.Fuzz(func(t *testing.T, data []byte) {
		j1, err := job.Decode(data)
		if err != nil {
			if !errors.Is(err, job.ErrBadJob) {
				t.Fatalf("an error not marked ErrBadJob: %v", err)
			}
			return
		}
		if j1.Fingerprint == "" || j1.Version == "" {
			t.Fatalf("decoded a job without fingerprint or version: %+v", j1)
		}
		enc1 := j1.Encode()
		j2, err := job.Decode(enc1)
		if err != nil {
			t.Fatalf("re-encoded job does not decode: %v\n%s", err, enc1)
		}
		if enc2 := j2.Encode(); !bytes.Equal(enc1, enc2) {
			t.Fatalf("encodings differ:\n%s\n%s", enc1, enc2)
		}
		if !reflect.DeepEqual(emptyAsNil(*j1), emptyAsNil(*j2)) {
			t.Fatalf("round trip changed the job:\n%+v\n%+v", *j1, *j2)
		}
		f1, err1 := job.Fingerprint(j1)
		f2, err2 := job.Fingerprint(j2)
		if err1 != nil || err2 != nil || f1 != f2 {
			t.Fatalf("fingerprints %s (%v), %s (%v)", f1, err1, f2, err2)
		}
	})
}

// emptyAsNil returns v with every empty slice in it made nil: JSON does
// not tell them apart where a field is omitted when empty.
func emptyAsNil[T any](v T) T {
	rv := reflect.ValueOf(&v).Elem()
	var walk func(reflect.Value)
	walk = func(v reflect.Value) {
		switch v.Kind() {
		case reflect.Struct:
			for i := range v.NumField() {
				if v.Field(i).CanSet() {
					walk(v.Field(i))
				}
			}
		case reflect.Slice:
			if v.Len() == 0 {
				v.SetZero()
			}
			for i := range v.Len() {
				walk(v.Index(i))
			}
		}
	}
	walk(rv)
	return v
}

// FuzzEncode builds jobs from fuzzed fields: one that seals round-trips
// through job.json exactly, and seals again to the same fingerprint, which
// workers compare with the planner's. Seal refuses only what JSON cannot
// hold, non-finite numbers, with an error.
func FuzzEncode(f *testing.F) {
	f.Add("s3://b/imagenet/val", "/ckpt/epoch_1.pt", "early=0:3,late=-3:", "cat", float32(0.485), float32(0.229), 128, int64(50000), 224)
	f.Add("", "", "", "", float32(0), float32(1), 0, int64(0), 0)
	f.Add("file:///d\u00e9j\u00e0 vu/\"q\"\\", "a\u2028b", "x=:", "\u00e9t\u00e9", float32(math.SmallestNonzeroFloat32), float32(math.Copysign(0, -1)), -1, int64(math.MinInt64), math.MaxInt)
	f.Add("u", "c", "w", "k", float32(math.NaN()), float32(math.Inf(1)), 1, int64(1), 1)
	f.Fuzz(func(t *testing.T, url, ckpt, windows, class string, mean, std float32, batch int, examples int64, side int) {
		for _, s := range []string{url, ckpt, windows, class} {
			if !utf8.ValidString(s) {
				// JSON strings are UTF-8 (encoding/json writes U+FFFD for
				// the rest), as are blob keys (gocloud refuses others).
				t.Skip("not UTF-8")
			}
		}
		j := job.Job{
			Spec: job.Spec{Dataset: job.Dataset{Format: "imagefolder", URL: url, Preprocess: job.Preprocess{Resize: side, Crop: side, Mean: []float32{mean}, Std: []float32{std}}},
				Checkpoints: []string{ckpt}, Label: "true", ShardSize: 10000, BatchSize: batch, Windows: windows, Out: url + "/out"},
			Checkpoints: []job.Checkpoint{{URL: ckpt, SHA256: "aa"}},
			Shape:       job.Shape{C: 1, H: side, W: side},
			Windows:     []window.Window{{Name: windows, Lo: batch, Hi: side}},
			Examples:    examples, Shards: batch, IndexSHA256: "ii", Version: job.Version,
		}
		if class != "" {
			j.Classes = []string{class, strings.ToUpper(class)}
		}
		if err := j.Seal(); err != nil {
			if finite(mean) && finite(std) {
				t.Fatalf("Seal: %v", err)
			}
			return
		}
		if !finite(mean) || !finite(std) {
			t.Fatalf("sealed a job holding %g, %g", mean, std)
		}
		got, err := job.Decode(j.Encode())
		if err != nil {
			t.Fatalf("Decode(Encode()): %v\n%s", err, j.Encode())
		}
		if !reflect.DeepEqual(*got, j) {
			t.Fatalf("round trip changed the job:\n%+v\n%+v", j, *got)
		}
		if math.Signbit(float64(got.Spec.Dataset.Mean[0])) != math.Signbit(float64(mean)) {
			t.Fatalf("mean %g read back as %g", mean, got.Spec.Dataset.Mean[0])
		}
		fp := got.Fingerprint
		if err := got.Seal(); err != nil || got.Fingerprint != fp {
			t.Fatalf("sealed again: %s (%v), was %s", got.Fingerprint, err, fp)
		}
	})
}

func finite(v float32) bool { return !math.IsNaN(float64(v)) && !math.IsInf(float64(v), 0) }
