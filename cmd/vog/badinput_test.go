package main_test

import (
	"bytes"
	"encoding/binary"
	"hash/crc32"
	"image"
	"image/jpeg"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/vogscore/vog/internal/testref"
	"github.com/vogscore/vog/job"
)

// TestRunBadInputs scores an image folder holding, beside 60 good images,
// a PNG whose header claims 100000x100000 pixels, a truncated JPEG, a CMYK
// JPEG, an image in a class the model lacks (an eleventh folder), and an
// image whose white corner gives NaN logits and gradients with the
// checkpoints used. The job completes: the four bad ones are in
// failures.parquet with their reasons, the CMYK JPEG is scored like any
// image, and the other rows equal a run without the bad ones.
func TestRunBadInputs(t *testing.T) {
	vog(t)
	ckpts := t.TempDir()
	var args []string
	for _, k := range []string{"10", "11", "12"} {
		args = append(args, filepath.Join(fixtures, "ckpt", "ckpt_"+k+".pt"), filepath.Join(ckpts, "ckpt_"+k+".pt"))
	}
	testref.Python(t, "nan_model.py", args...)

	clean, dirty := t.TempDir(), t.TempDir()
	for _, root := range []string{clean, dirty} {
		paths := writeImageFolder(t, root, 60)
		cmyk, err := os.ReadFile("../../preprocess/testdata/fixtures/cmyk_129x97.jpg")
		if err != nil {
			t.Fatal(err)
		}
		writeFile(t, filepath.Join(root, "class2", "cmyk.jpg"), cmyk)
		if root == clean {
			continue
		}
		writeFile(t, filepath.Join(root, "class0", "bomb.png"), bombPNG(100000, 100000))
		var jb bytes.Buffer
		jpeg.Encode(&jb, image.NewGray(image.Rect(0, 0, 28, 28)), nil)
		writeFile(t, filepath.Join(root, "class1", "truncated.jpg"), jb.Bytes()[:jb.Len()/2])
		first, _ := os.ReadFile(paths[0])
		writeFile(t, filepath.Join(root, "zzz", "unknown.png"), first)
		// A copy of an image with a white top-left pixel.
		img := image.NewGray(image.Rect(0, 0, 28, 28))
		copy(img.Pix, readSmallImages(t)[3*784:4*784])
		img.Pix[0] = 255
		writeFile(t, filepath.Join(root, "class3", "nan.png"), encodePNG(t, img))
	}
	run := func(root string) string {
		out := t.TempDir()
		r := runVog(t, "run", "--format", "imagefolder", "--channels", "1", "--resize", "28", "--crop", "28",
			"--dataset", root, "--checkpoints", ckpts, "--out", out, "--state-dir", t.TempDir(),
			"--shard-size", "32", "--batch-size", "16", "--max-bad-fraction", "0.1")
		if r.err != nil {
			t.Fatalf("%s: %v\n%s", root, r.err, r.stderr)
		}
		return out
	}
	cleanOut, dirtyOut := run(clean), run(dirty)

	failures := readFailures(t, dirtyOut)
	sort.Slice(failures, func(i, j int) bool { return failures[i].ExampleID < failures[j].ExampleID })
	want := []struct{ id, kind, reason string }{
		{"class0/bomb.png", job.FailTooLarge, "100000x100000"},
		{"class1/truncated.jpg", job.FailCorrupt, "truncated.jpg: corrupt"},
		{"class3/nan.png", job.FailNonFinite, "non-finite logits at checkpoint"},
		{"zzz/unknown.png", job.FailLabel, "label 10 outside the 10 outputs"},
	}
	if len(failures) != len(want) {
		t.Fatalf("failures %+v", failures)
	}
	for i, w := range want {
		f := failures[i]
		if f.ExampleID != w.id || f.Kind != w.kind || !strings.Contains(f.Reason, w.reason) {
			t.Errorf("failure %+v, want %s of kind %q saying %q", f, w.id, w.kind, w.reason)
		}
		t.Logf("%s: %s", f.ExampleID, f.Reason)
	}

	got, base := readRows(t, dirtyOut), readRows(t, cleanOut)
	if len(got) != 61 || len(base) != 61 {
		t.Fatalf("%d and %d rows, want 61: the 60 images and the CMYK JPEG", len(got), len(base))
	}
	byID := map[string]job.ScoreRow{}
	for _, r := range base {
		byID[r.ExampleID] = r
	}
	var worst float64
	for _, r := range got {
		b, ok := byID[r.ExampleID]
		if !ok {
			t.Fatalf("%s scored in one run only", r.ExampleID)
		}
		if r.Label != b.Label || r.Pred != b.Pred {
			t.Fatalf("%s: %+v against %+v", r.ExampleID, r, b)
		}
		worst = max(worst, rel(r.VoG, b.VoG), math.Abs(r.VoGNorm-b.VoGNorm), rel(r.Loss, b.Loss))
	}
	// Their batches differ (the bad examples took places in them): the
	// engine's arithmetic may then differ in its last bits.
	t.Logf("largest difference from the run without the bad inputs: %.2g", worst)
	if worst > threadTolerance {
		t.Fatalf("rows differ from a run without the bad inputs by %.2g", worst)
	}
}

// bombPNG is a valid PNG header claiming w x h pixels, with no pixels.
func bombPNG(w, h uint32) []byte {
	chunk := func(typ string, data []byte) []byte {
		b := binary.BigEndian.AppendUint32(nil, uint32(len(data)))
		b = append(b, typ...)
		b = append(b, data...)
		return binary.BigEndian.AppendUint32(b, crc32.ChecksumIEEE(append([]byte(typ), data...)))
	}
	ihdr := binary.BigEndian.AppendUint32(nil, w)
	ihdr = binary.BigEndian.AppendUint32(ihdr, h)
	ihdr = append(ihdr, 8, 2, 0, 0, 0) // 8-bit RGB
	out := []byte("\x89PNG\r\n\x1a\n")
	out = append(out, chunk("IHDR", ihdr)...)
	return append(out, chunk("IEND", nil)...)
}

func writeFile(t *testing.T, path string, data []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

func encodePNG(t *testing.T, img image.Image) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}
