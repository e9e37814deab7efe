package jobstore_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/vogscore/vog/job"
	"github.com/vogscore/vog/jobstore"
	"github.com/vogscore/vog/storage"
)

// writeResult writes a finished result of parts of the given sizes under a
// new directory and returns the directory and the rows.
func writeResult(t *testing.T, sizes ...int) (string, []job.ScoreRow) {
	t.Helper()
	ctx := t.Context()
	dir := filepath.Join(t.TempDir(), "out")
	s, err := jobstore.Create(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	s.Bind(&job.Job{Fingerprint: "f", Shards: len(sizes)})
	var all []job.ScoreRow
	for i, n := range sizes {
		rows := make([]job.ScoreRow, n)
		for k := range rows {
			idx := int64(len(all) + k)
			rows[k] = job.ScoreRow{Index: idx, ExampleID: fmt.Sprintf("img/%07d.png", idx), Label: int32(idx % 10), Class: int32(idx % 10), Window: "all", VoG: float64(idx) / 7, CorrectLast: idx%3 == 0}
		}
		if err := s.WritePart(ctx, i, rows); err != nil {
			t.Fatal(err)
		}
		all = append(all, rows...)
	}
	if _, err := s.Finish(ctx, int64(len(all)), 0); err != nil {
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
	err := jobstore.ScanScores(t.Context(), dir, func(rows []job.ScoreRow) error {
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
	read, err := jobstore.ReadScores(t.Context(), dir)
	if err != nil || !slices.Equal(read, want) {
		t.Fatalf("ReadScores: %v", err)
	}
	if ok, err := jobstore.Finished(t.Context(), dir); !ok || err != nil {
		t.Fatalf("Finished: %v, %v", ok, err)
	}

	// An error from fn stops the scan and comes back as it is.
	stop := errors.New("stop")
	calls := 0
	err = jobstore.ScanScores(t.Context(), dir, func([]job.ScoreRow) error { calls++; return stop })
	if err != stop || calls != 1 {
		t.Fatalf("err %v after %d calls", err, calls)
	}
}

func TestScanScoresRefuses(t *testing.T) {
	nop := func([]job.ScoreRow) error { return nil }
	// No _SUCCESS: not a finished result.
	empty := t.TempDir()
	if err := jobstore.ScanScores(t.Context(), empty, nop); err == nil || !strings.Contains(err.Error(), "no finished result") {
		t.Fatalf("no _SUCCESS: %v", err)
	}
	if ok, err := jobstore.Finished(t.Context(), empty); ok || err != nil {
		t.Fatalf("Finished of an empty folder: %v, %v", ok, err)
	}
	// A row count that disagrees with _SUCCESS.
	dir, _ := writeResult(t, 10)
	success := func(s job.Success) {
		data, _ := json.Marshal(s)
		if err := os.WriteFile(filepath.Join(dir, jobstore.SuccessKey), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	success(job.Success{Fingerprint: "f", Rows: 11, Parts: []job.Part{{Key: jobstore.PartKey(0)}}})
	if err := jobstore.ScanScores(t.Context(), dir, nop); err == nil || !strings.Contains(err.Error(), "10 rows in the parts") {
		t.Fatalf("wrong count: %v", err)
	}
	// A missing part.
	success(job.Success{Fingerprint: "f", Rows: 10, Parts: []job.Part{{Key: jobstore.PartKey(0)}, {Key: jobstore.PartKey(1)}}})
	if err := jobstore.ScanScores(t.Context(), dir, nop); err == nil || !strings.Contains(err.Error(), "part-00001") {
		t.Fatalf("missing part: %v", err)
	}
	// Parts of another job than _SUCCESS names.
	success(job.Success{Fingerprint: "g", Rows: 10, Parts: []job.Part{{Key: jobstore.PartKey(0)}}})
	if err := jobstore.ScanScores(t.Context(), dir, nop); !errors.Is(err, job.ErrBadData) || !strings.Contains(err.Error(), `job "f"`) {
		t.Fatalf("another job's part: %v", err)
	}
}
