package main

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/vogscore/vog/job"
	"github.com/vogscore/vog/jobstore"
	"github.com/vogscore/vog/location"
	"github.com/vogscore/vog/preprocess"
	"github.com/vogscore/vog/report"
	"github.com/vogscore/vog/storage"
)

// TestReportClasses: where vog report's class names come from, in order:
// --classes, classes.txt beside the data, the ImageFolder's folder names,
// Fashion-MNIST recognised by its labels or (idx) its path; else indices.
func TestReportClasses(t *testing.T) {
	ctx := t.Context()
	fashionTest := []int32{9, 2, 1, 1, 6, 1, 4, 6, 5, 7, 4, 5, 7, 3, 4, 1, 2, 4, 8, 0, 2, 5, 7, 9, 1, 4, 6, 0, 9, 3, 8, 8, 0, 3}
	other := []int32{5, 0, 4, 1, 9, 2, 1, 3, 1, 4, 3, 5, 3, 6, 1, 7, 2, 8, 6, 9} // MNIST's
	// outWith writes a job output whose index holds these labels.
	outWith := func(labels []int32) string {
		out := t.TempDir()
		loc, _ := location.Parse(out)
		b, err := storage.OpenPrefix(ctx, loc)
		if err != nil {
			t.Fatal(err)
		}
		defer b.Close()
		rows := make([]job.IndexRow, len(labels))
		for i, l := range labels {
			rows[i] = job.IndexRow{Index: int64(i), Label: l}
		}
		if err := storage.WriteParquet(ctx, b, jobstore.IndexKey, rows, nil); err != nil {
			t.Fatal(err)
		}
		return out
	}
	write := func(path, text string) string {
		os.MkdirAll(filepath.Dir(path), 0o755)
		if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		return path
	}
	dir := t.TempDir()
	idx := job.Dataset{Format: "idx", URL: filepath.Join(dir, "plain", "train")}
	withTxt := job.Dataset{Format: "idx", URL: filepath.Join(dir, "named", "train")}
	write(filepath.Join(dir, "named", classesFile), "zero\none\n")
	folder := job.Dataset{Format: "imagefolder", URL: filepath.Join(dir, "folder")}
	os.MkdirAll(folder.URL, 0o755)
	folderTxt := job.Dataset{Format: "imagefolder", URL: filepath.Join(dir, "folder-txt")}
	write(filepath.Join(folderTxt.URL, classesFile), "tench\ngoldfish\n")
	fashionPath := job.Dataset{Format: "idx", URL: filepath.Join(dir, "Fashion-MNIST", "mine")}
	file := write(filepath.Join(dir, "names.txt"), "a\nb\nc\n")
	broken := write(filepath.Join(dir, "broken.txt"), "a\n\nc\n")

	for _, c := range []struct {
		name    string
		flag    string
		data    job.Dataset
		classes []string // the job's (folder names)
		outputs int
		labels  []int32
		want    []string
		from    string // in the description of the source
		err     string
	}{
		{name: "fashion labels", data: idx, labels: fashionTest, want: report.FashionMNIST, from: "labels begin as Fashion-MNIST's"},
		{name: "fashion labels, 10 outputs", data: idx, outputs: 10, labels: fashionTest, want: report.FashionMNIST},
		{name: "fashion labels, 12 outputs", data: idx, outputs: 12, labels: fashionTest, want: nil, from: "indices"},
		{name: "other labels", data: idx, labels: other, want: nil, from: "indices (no names found"},
		{name: "fashion in the path", data: fashionPath, labels: other, want: report.FashionMNIST, from: "path says fashion"},
		{name: "--classes none", flag: "none", data: idx, labels: fashionTest, want: nil, from: "--classes none"},
		{name: "--classes builtin", flag: "cifar10", data: idx, labels: other, want: report.CIFAR10},
		{name: "--classes file", flag: file, data: withTxt, labels: fashionTest, want: []string{"a", "b", "c"}, from: "3 names from " + file},
		{name: "--classes missing", flag: filepath.Join(dir, "nope.txt"), data: idx, labels: other, err: "--classes " + filepath.Join(dir, "nope.txt")},
		{name: "--classes blank line", flag: broken, data: idx, labels: other, err: "line 2 is empty"},
		{name: "classes.txt beside idx", data: withTxt, labels: fashionTest, want: []string{"zero", "one"}, from: "classes.txt"},
		{name: "folder names", data: folder, classes: []string{"cat", "dog"}, labels: other, want: []string{"cat", "dog"}, from: "folder names"},
		{name: "classes.txt over folder names", data: folderTxt, classes: []string{"n01440764", "n01443537"}, labels: other, want: []string{"tench", "goldfish"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			out := outWith(c.labels)
			loc, _ := location.Parse(out)
			b, err := storage.OpenPrefix(ctx, loc)
			if err != nil {
				t.Fatal(err)
			}
			defer b.Close()
			j := &job.Job{Spec: job.Spec{Dataset: c.data}, Classes: c.classes, Outputs: c.outputs}
			names, from, err := reportClasses(ctx, c.flag, j, b)
			if c.err != "" {
				if err == nil || !strings.Contains(err.Error(), c.err) {
					t.Fatalf("err %v, want one saying %q", err, c.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(names, c.want) || !strings.Contains(from, c.from) {
				t.Fatalf("names %q from %q, want %q from %q", names, from, c.want, c.from)
			}
		})
	}
}

// TestReportDecoder: the report reads a libjpeg-turbo job's images with
// Go's decoder where this machine lacks libjpeg-turbo, saying so, instead
// of refusing as a worker does; an image/jpeg job keeps its decoder.
func TestReportDecoder(t *testing.T) {
	t.Setenv(preprocess.TurboJPEGEnv, "none")
	if d, note := reportDecoder(preprocess.DecoderTurboJPEG); d != preprocess.DecoderGoJPEG || !strings.Contains(note, "lacks") {
		t.Fatalf("without libjpeg-turbo: decoder %q, note %q", d, note)
	}
	for _, d := range []string{preprocess.DecoderGoJPEG, ""} {
		if got, note := reportDecoder(d); got != d || note != "" {
			t.Fatalf("job decoder %q: %q, note %q", d, got, note)
		}
	}
	if _, err := preprocess.LoadTurboJPEG(preprocess.DefaultTurboJPEG); err == nil {
		t.Setenv(preprocess.TurboJPEGEnv, "")
		if d, note := reportDecoder(preprocess.DecoderTurboJPEG); d != preprocess.DecoderTurboJPEG || note != "" {
			t.Fatalf("with libjpeg-turbo: decoder %q, note %q", d, note)
		}
	}
}
