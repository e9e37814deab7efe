package storage_test

import (
	"bytes"
	"errors"
	"io"
	"testing"

	"github.com/vogscore/vog/score"
	"github.com/vogscore/vog/storage"
)

// fp is a job fingerprint.
const fp = "0123456789abcdef01234567"

func writeMoments(t testing.TB, recs []storage.MomentsRecord, h storage.MomentsHeader) []byte {
	var b bytes.Buffer
	w, err := storage.NewMomentsWriter(&b, h)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range recs {
		if err := w.Write(r); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func readMoments(data []byte) ([]storage.MomentsRecord, error) {
	r, err := storage.NewMomentsReader(bytes.NewReader(data))
	if err != nil {
		return nil, err
	}
	var out []storage.MomentsRecord
	for {
		var rec storage.MomentsRecord
		err := r.Next(&rec)
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return out, err
		}
		out = append(out, rec)
	}
}

func TestMomentsRoundTrip(t *testing.T) {
	h := storage.MomentsHeader{Pixels: 3, Examples: 2, Group: 1, Checkpoints: 2, Fingerprint: fp}
	ls := []score.Logits{{PLabel: 0.25, Margin: -1, Loss: 1.5, EL2N: 0.75, Correct: false}, {PLabel: 0.5, Margin: 2, Loss: 0.5, EL2N: 0.125, Correct: true}}
	recs := []storage.MomentsRecord{
		{Index: 10, Target: 2, Pred: -1, N: 2, Mean: []float64{0.5, -1.25, 3}, M2: []float64{1, 0, 0.25}, Logits: ls, GradNorms: []float64{3, 4}},
		{Index: 11, Target: 0, Pred: 7, Failure: "non-finite: NaN gradient", N: 2, Mean: []float64{1, 2, 3}, M2: []float64{4, 5, 6}, Logits: ls, GradNorms: []float64{5, 6}},
	}
	data := writeMoments(t, recs, h)
	got, err := readMoments(data)
	if err != nil {
		t.Fatal(err)
	}
	if got[0].Failure != "" || got[1].Failure != "non-finite: NaN gradient" {
		t.Fatalf("failures %q %q", got[0].Failure, got[1].Failure)
	}
	if len(got) != 2 || got[1].Index != 11 || got[1].Pred != 7 || got[0].Mean[1] != -1.25 || got[1].M2[2] != 6 || got[0].N != 2 ||
		got[1].Logits[1] != ls[1] || got[0].Logits[0] != ls[0] || got[1].GradNorms[0] != 5 {
		t.Fatalf("round trip: %+v", got)
	}
	// Every single-byte change and every truncation is detected.
	for i := range data {
		bad := bytes.Clone(data)
		bad[i] ^= 0x40
		if _, err := readMoments(bad); !errors.Is(err, storage.ErrCorruptMoments) {
			t.Fatalf("byte %d changed: got %v", i, err)
		}
		if _, err := readMoments(data[:i]); !errors.Is(err, storage.ErrCorruptMoments) {
			t.Fatalf("truncated at %d: got %v", i, err)
		}
	}
	if _, err := readMoments(append(bytes.Clone(data), 0)); !errors.Is(err, storage.ErrCorruptMoments) {
		t.Fatalf("trailing byte: got %v", err)
	}
}

func TestMomentsWriterChecks(t *testing.T) {
	var b bytes.Buffer
	w, _ := storage.NewMomentsWriter(&b, storage.MomentsHeader{Pixels: 2, Examples: 1, Checkpoints: 3, Fingerprint: fp})
	if err := w.Write(storage.MomentsRecord{N: 2, Mean: []float64{1, 2}, M2: []float64{0, 0}, Logits: make([]score.Logits, 2), GradNorms: []float64{0, 0}}); err == nil {
		t.Fatal("a record over another checkpoint count was accepted")
	}
	if err := w.Close(); err == nil {
		t.Fatal("a file missing its examples was closed")
	}
}

func FuzzMomentsReader(f *testing.F) {
	f.Add(writeMoments(f, []storage.MomentsRecord{{N: 2, Mean: []float64{1}, M2: []float64{2}, Logits: make([]score.Logits, 2), GradNorms: []float64{1, 2}}},
		storage.MomentsHeader{Pixels: 1, Examples: 1, Checkpoints: 2, Fingerprint: fp}))
	f.Fuzz(func(t *testing.T, data []byte) {
		recs, err := readMoments(data)
		if err != nil && !errors.Is(err, storage.ErrCorruptMoments) {
			t.Fatalf("unclassified error: %v", err)
		}
		if err == nil {
			for _, r := range recs {
				if len(r.Mean) != len(r.M2) {
					t.Fatal("ragged record")
				}
			}
		}
	})
}

// TestMomentsBytes: MomentsBytes is the size of the file the writer
// writes, for examples with no failure.
func TestMomentsBytes(t *testing.T) {
	for _, c := range []struct{ examples, pixels, checkpoints int }{{0, 1, 1}, {1, 1, 1}, {3, 784, 1}, {5, 16, 4}} {
		h := storage.MomentsHeader{Pixels: c.pixels, Examples: c.examples, Checkpoints: c.checkpoints, Fingerprint: fp}
		var recs []storage.MomentsRecord
		for i := range c.examples {
			recs = append(recs, storage.MomentsRecord{Index: int64(i), N: int64(c.checkpoints), Mean: make([]float64, c.pixels), M2: make([]float64, c.pixels),
				Logits: make([]score.Logits, c.checkpoints), GradNorms: make([]float64, c.checkpoints)})
		}
		if got, want := storage.MomentsBytes(int64(c.examples), c.pixels, c.checkpoints), int64(len(writeMoments(t, recs, h))); got != want {
			t.Errorf("%+v: MomentsBytes %d, the file %d bytes", c, got, want)
		}
	}
}
