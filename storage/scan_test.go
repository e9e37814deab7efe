package storage_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/vogscore/vog/job"
	"github.com/vogscore/vog/location"
	"github.com/vogscore/vog/storage"
)

// writeResult writes a finished result of parts of the given sizes under a
// new directory and returns the directory and the rows.
func writeResult(t *testing.T, sizes ...int) (string, []job.ScoreRow) {
	t.Helper()
	ctx := t.Context()
	dir := filepath.Join(t.TempDir(), "out")
	b, err := storage.CreatePrefix(ctx, location.Location{BucketURL: "file:///?metadata=skip&no_tmp_dir=true", Key: dir[1:]})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	var all []job.ScoreRow
	s := job.Success{Fingerprint: "f"}
	for i, n := range sizes {
		rows := make([]job.ScoreRow, n)
		for k := range rows {
			idx := int64(len(all) + k)
			rows[k] = job.ScoreRow{Index: idx, ExampleID: fmt.Sprintf("img/%07d.png", idx), Label: int32(idx % 10), Class: int32(idx % 10), Window: "all", VoG: float64(idx) / 7, CorrectLast: idx%3 == 0}
		}
		if err := storage.WriteParquet(ctx, b, storage.PartKey(i), rows, nil); err != nil {
			t.Fatal(err)
		}
		s.Parts = append(s.Parts, job.Part{Key: storage.PartKey(i)})
		s.Rows += int64(n)
		all = append(all, rows...)
	}
	data, _ := json.Marshal(s)
	if err := b.WriteAll(ctx, storage.SuccessKey, data, nil); err != nil {
		t.Fatal(err)
	}
	return dir, all
}

// TestScanScores reads a result part by part in chunks and gets the rows of
// ReadScores, in order; kept rows stay intact while the chunk is reused.
func TestScanScores(t *testing.T) {
	dir, want := writeResult(t, storage.ScanChunk+5, 0, 3, 2*storage.ScanChunk)
	var got []job.ScoreRow
	chunks := 0
	err := storage.ScanScores(t.Context(), dir, func(rows []job.ScoreRow) error {
		if len(rows) == 0 || len(rows) > storage.ScanChunk {
			t.Fatalf("a chunk of %d rows", len(rows))
		}
		chunks++
		got = append(got, rows...)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, want) || chunks < 4 {
		t.Fatalf("%d rows in %d chunks, want %d rows", len(got), chunks, len(want))
	}
	read, err := storage.ReadScores(t.Context(), dir)
	if err != nil || !slices.Equal(read, want) {
		t.Fatalf("ReadScores: %v", err)
	}

	// An error from fn stops the scan and comes back as it is.
	stop := errors.New("stop")
	calls := 0
	err = storage.ScanScores(t.Context(), dir, func([]job.ScoreRow) error { calls++; return stop })
	if err != stop || calls != 1 {
		t.Fatalf("err %v after %d calls", err, calls)
	}
}

func TestScanScoresRefuses(t *testing.T) {
	nop := func([]job.ScoreRow) error { return nil }
	// No _SUCCESS: not a finished result.
	if err := storage.ScanScores(t.Context(), t.TempDir(), nop); err == nil || !strings.Contains(err.Error(), "no finished result") {
		t.Fatalf("no _SUCCESS: %v", err)
	}
	// A row count that disagrees with _SUCCESS.
	dir, _ := writeResult(t, 10)
	s := job.Success{Rows: 11, Parts: []job.Part{{Key: storage.PartKey(0)}}}
	data, _ := json.Marshal(s)
	b, err := storage.OpenPrefix(t.Context(), location.Location{BucketURL: "file:///?metadata=skip&no_tmp_dir=true", Key: dir[1:]})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	b.WriteAll(t.Context(), storage.SuccessKey, data, nil)
	if err := storage.ScanScores(t.Context(), dir, nop); err == nil || !strings.Contains(err.Error(), "10 rows in the parts") {
		t.Fatalf("wrong count: %v", err)
	}
	// A missing part.
	s = job.Success{Rows: 10, Parts: []job.Part{{Key: storage.PartKey(0)}, {Key: storage.PartKey(1)}}}
	data, _ = json.Marshal(s)
	b.WriteAll(t.Context(), storage.SuccessKey, data, nil)
	if err := storage.ScanScores(t.Context(), dir, nop); err == nil || !strings.Contains(err.Error(), "part-00001") {
		t.Fatalf("missing part: %v", err)
	}
}
