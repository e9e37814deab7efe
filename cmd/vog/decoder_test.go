package main_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"image"
	"image/jpeg"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/vogscore/vog/dataset"
	"github.com/vogscore/vog/engine"
	"github.com/vogscore/vog/job"
	"github.com/vogscore/vog/preprocess"
)

// Go's image/jpeg (the fallback where libturbojpeg is missing) rounds its
// IDCT differently from libjpeg-turbo: 1 level of 255 at most on grey
// images (preprocess/README.md). On the 256 fixture images as quality-90
// grey JPEGs, scored with the 12 fixture checkpoints, the rows of the two
// decoders measured (2026-11-30): VoG within 1.5% relative, Spearman of VoG
// 0.9994, the same predictions (JPEG compression itself, against the
// lossless images: 6.7%, Spearman 0.984). The test allows a margin over that.
const (
	decoderMaxRelVoG   = 0.05
	decoderMinSpearman = 0.998
)

// TestJPEGDecoders scores the same JPEG ImageFolder with libjpeg-turbo (the
// default) and with Go's decoder (VOG_TURBOJPEG=none): two jobs, since the
// decoder is part of the job (its job.json's jpeg_decoder, and so its
// fingerprint), whose rows agree within the tolerance above. PNGs decode
// the same either way, so their rows are equal. A worker without the job's
// decoder refuses to read, naming it.
func TestJPEGDecoders(t *testing.T) {
	ref := readReference(t)
	images := readSmallImages(t)
	root := t.TempDir()
	for i, e := range ref.Examples {
		img := image.NewGray(image.Rect(0, 0, 28, 28))
		copy(img.Pix, images[i*784:(i+1)*784])
		var b bytes.Buffer
		if err := jpeg.Encode(&b, img, &jpeg.Options{Quality: 90}); err != nil {
			t.Fatal(err)
		}
		dir := filepath.Join(root, fmt.Sprintf("class%d", e.Label))
		os.MkdirAll(dir, 0o755)
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("%03d.jpg", i)), b.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// score runs the folder with $VOG_TURBOJPEG set to lib ("" leaves it
	// unset) and returns the job, its rows and its output.
	score := func(root, lib string) (job.Job, []job.ScoreRow, string) {
		t.Helper()
		t.Setenv(preprocess.TurboJPEGEnv, lib)
		out := t.TempDir()
		r := runVog(t, "run", "--format", "imagefolder", "--channels", "1", "--dataset", root,
			"--checkpoints", fixtures+"/ckpt", "--out", out, "--state-dir", t.TempDir(), "--shard-size", "100")
		if r.err != nil {
			t.Fatalf("VOG_TURBOJPEG=%q: %v\n%s", lib, r.err, r.stderr)
		}
		return readJobJSON(t, out), readRows(t, out), out
	}
	turboJob, turbo, turboOut := score(root, "")
	goJob, fallback, _ := score(root, "none")
	if turboJob.JPEGDecoder != preprocess.DecoderTurboJPEG || goJob.JPEGDecoder != preprocess.DecoderGoJPEG {
		t.Fatalf("jpeg_decoder %q and %q, want %q and %q (is libturbojpeg0 installed?)",
			turboJob.JPEGDecoder, goJob.JPEGDecoder, preprocess.DecoderTurboJPEG, preprocess.DecoderGoJPEG)
	}
	if turboJob.Fingerprint == goJob.Fingerprint {
		t.Fatalf("both decoders give job %s: the decoder must be part of the job", turboJob.Fingerprint)
	}
	if len(turbo) != len(ref.Examples) || len(fallback) != len(turbo) {
		t.Fatalf("%d and %d rows, want %d", len(turbo), len(fallback), len(ref.Examples))
	}
	maxRel, samePred := 0.0, 0
	a, b := make([]float64, len(turbo)), make([]float64, len(turbo))
	for i := range turbo {
		x, y := turbo[i], fallback[i]
		if x.Index != y.Index || x.ExampleID != y.ExampleID || x.Label != y.Label {
			t.Fatalf("row %d: %+v and %+v are not the same example", i, x, y)
		}
		maxRel = math.Max(maxRel, rel(y.VoG, x.VoG))
		if x.Pred == y.Pred {
			samePred++
		}
		a[i], b[i] = x.VoG, y.VoG
	}
	rho := spearman(a, b)
	// For scale: what JPEG compression itself does, against the PNG
	// (lossless) rows PyTorch computed.
	// Rows are in the folder's order; a file is named by its example's
	// index in the reference.
	png := make([]float64, len(turbo))
	jpegRel := 0.0
	for i, r := range turbo {
		var k int
		if _, err := fmt.Sscanf(filepath.Base(r.ExampleID), "%03d.jpg", &k); err != nil {
			t.Fatalf("example %q: %v", r.ExampleID, err)
		}
		png[i] = ref.Examples[k].VoGTrue
		jpegRel = math.Max(jpegRel, rel(r.VoG, png[i]))
	}
	t.Logf("image/jpeg against libjpeg-turbo over %d examples: VoG max relative difference %.3g, Spearman %.5f, same prediction %d; "+
		"quality-90 JPEG (libjpeg-turbo) against the lossless images: max relative %.3g, Spearman %.5f",
		len(turbo), maxRel, rho, samePred, jpegRel, spearman(a, png))
	if maxRel > decoderMaxRelVoG || rho < decoderMinSpearman {
		t.Fatalf("the decoders' rows differ beyond the tolerance: VoG max relative %.3g (allowed %g), Spearman %.5f (allowed %g)",
			maxRel, decoderMaxRelVoG, rho, decoderMinSpearman)
	}

	// PNG: the same rows whichever JPEG decoder the job records.
	pngs := t.TempDir()
	writeImageFolder(t, pngs, len(ref.Examples))
	_, withTurbo, _ := score(pngs, "")
	_, withGo, _ := score(pngs, "none")
	if !slices.Equal(withTurbo, withGo) {
		t.Fatal("a PNG ImageFolder gives other rows with VOG_TURBOJPEG=none")
	}

	// A worker without the job's decoder refuses it, naming the decoder.
	spec := job.Dataset{Format: "imagefolder", URL: root, Preprocess: job.Preprocess{Channels: 1}}
	shape := engine.Shape{C: 1, H: 28, W: 28}
	t.Setenv(preprocess.TurboJPEGEnv, "none")
	rd, err := dataset.NewReader(t.Context(), spec, shape, preprocess.DecoderTurboJPEG)
	if err == nil {
		rd.Close()
		t.Fatal("a worker with VOG_TURBOJPEG=none opened a libjpeg-turbo job")
	}
	for _, want := range []string{"decodes JPEGs with libjpeg-turbo, which this worker lacks", "libturbojpeg0", preprocess.TurboJPEGEnv} {
		if !strings.Contains(err.Error(), want) {
			t.Fatalf("refusal %q does not say %q", err, want)
		}
	}
	// vog report on a machine without libjpeg-turbo (a laptop) shows the
	// libjpeg-turbo job's images with Go's decoder, saying so.
	r := runVog(t, "report", "--out", turboOut)
	if r.err != nil || !strings.Contains(r.stderr, "which this machine lacks") {
		t.Fatalf("report of a libjpeg-turbo job with VOG_TURBOJPEG=none: %v\n%s%s", r.err, r.stdout, r.stderr)
	}
	if html, err := os.ReadFile(filepath.Join(turboOut, "report.html")); err != nil || !strings.Contains(string(html), "data:image/png") {
		t.Fatalf("report.html: %v", err)
	}
	// The other way works: a worker that has libjpeg-turbo can still
	// decode with Go's decoder.
	t.Setenv(preprocess.TurboJPEGEnv, "")
	rd, err = dataset.NewReader(t.Context(), spec, shape, preprocess.DecoderGoJPEG)
	if err != nil {
		t.Fatalf("an image/jpeg job on a worker with libjpeg-turbo: %v", err)
	}
	rd.Close()
}

// readJobJSON reads a job's job.json.
func readJobJSON(t *testing.T, out string) job.Job {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(out, "job.json"))
	if err != nil {
		t.Fatal(err)
	}
	var j job.Job
	if err := json.Unmarshal(data, &j); err != nil {
		t.Fatal(err)
	}
	return j
}
