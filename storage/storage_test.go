package storage_test

import (
	"os"
	"path/filepath"
	"slices"
	"testing"

	_ "gocloud.dev/blob/fileblob"
	_ "gocloud.dev/blob/memblob"

	"github.com/vogscore/vog/job"
	"github.com/vogscore/vog/location"
	"github.com/vogscore/vog/storage"
)

// TestParquetRoundTrip writes rows to a local directory and reads ranges of
// them back, as shards read their slice of the index.
func TestParquetRoundTrip(t *testing.T) {
	ctx := t.Context()
	dir := filepath.Join(t.TempDir(), "new", "out")
	b, err := storage.CreatePrefix(ctx, location.Location{BucketURL: "file:///?metadata=skip&no_tmp_dir=true", Key: dir[1:]})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	rows := make([]job.IndexRow, 1000)
	for i := range rows {
		rows[i] = job.IndexRow{Index: int64(i), ExampleID: filepath.Join("class", string(rune('a'+i%26))), Label: int32(i % 7)}
	}
	if err := storage.WriteParquet(ctx, b, "shards/index.parquet", rows, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "shards", "index.parquet")); err != nil {
		t.Fatalf("not under the prefix: %v", err)
	}
	for _, r := range []struct{ off, lim int64 }{{0, -1}, {10, 5}, {990, 100}, {1000, 3}} {
		got, err := storage.ReadParquet[job.IndexRow](ctx, b, "shards/index.parquet", r.off, r.lim)
		if err != nil {
			t.Fatal(err)
		}
		end := int64(len(rows))
		if r.lim >= 0 {
			end = min(end, r.off+r.lim)
		}
		if !slices.Equal(got, rows[r.off:end]) {
			t.Fatalf("rows [%d, +%d): got %d rows, want %d", r.off, r.lim, len(got), end-r.off)
		}
	}
	if ok, err := storage.Exists(ctx, b, "_SUCCESS"); ok || err != nil {
		t.Fatalf("Exists(missing) = %v, %v", ok, err)
	}
	if _, err := storage.ReadParquet[job.IndexRow](ctx, b, "nothing.parquet", 0, -1); err == nil {
		t.Fatal("reading a missing file: no error")
	}
}
