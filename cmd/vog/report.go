package main

import (
	"bytes"
	"context"
	"fmt"
	"image"
	"os"
	"path"
	"strings"

	"gocloud.dev/blob"

	"github.com/vogscore/vog/dataset"
	"github.com/vogscore/vog/job"
	"github.com/vogscore/vog/jobstore"
	"github.com/vogscore/vog/location"
	"github.com/vogscore/vog/preprocess"
	"github.com/vogscore/vog/report"
	"github.com/vogscore/vog/storage"
)

// reportCmd writes report.html beside a finished job's result.
func reportCmd(ctx context.Context, args []string) error {
	fs := newFlags("report", "--out URL [flags]")
	out := fs.String("out", "", "a finished job's output URL or path")
	grid := fs.Int("grid", 25, "examples per image grid")
	maxClasses := fs.Int("max-classes", 10, "classes that get their own grids")
	classes := fs.String("classes", "", "class names: a `FILE` (path or URL) of one name per line, class 0 first; "+
		"fashion-mnist or cifar10; or none (indices). Default: classes.txt in the dataset's folder, "+
		"else the ImageFolder's folder names, else Fashion-MNIST's names where the labels are Fashion-MNIST's")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *out == "" {
		return usagef("--out: missing")
	}
	j, err := jobstore.ReadJob(ctx, *out)
	if err != nil {
		return err
	}
	loc, err := location.Parse(*out)
	if err != nil {
		return err
	}
	b, err := storage.OpenPrefix(ctx, loc)
	if err != nil {
		return err
	}
	defer b.Close()
	names, from, err := reportClasses(ctx, *classes, j, b)
	if err != nil {
		return err
	}
	fmt.Printf("classes: %s\n", from)
	decoder, note := reportDecoder(j.JPEGDecoder)
	if note != "" {
		fmt.Fprintln(os.Stderr, note)
	}
	reader, err := dataset.NewReader(ctx, j.Spec.Dataset, j.Shape, decoder)
	if err != nil {
		return fmt.Errorf("--dataset %s: %w", j.Spec.Dataset.URL, err)
	}
	defer reader.Close()
	x := make([]float32, j.Shape.Len())
	picture := func(index int64) (image.Image, error) {
		idx, err := storage.ReadParquet[job.IndexRow](ctx, b, jobstore.IndexKey, index, 1)
		if err != nil || len(idx) != 1 {
			return nil, fmt.Errorf("example %d: not in the index: %v", index, err)
		}
		bad := make([]error, 1)
		if err := reader.Read(ctx, idx, x, bad); err != nil {
			return nil, err
		}
		if bad[0] != nil {
			return nil, bad[0]
		}
		return report.ToImage(x, j.Shape, j.Spec.Dataset.Preprocess), nil
	}
	// The rows are streamed, twice: memory holds the examples shown, not
	// the result.
	scan := func(fn func([]job.ScoreRow) error) error { return jobstore.ScanScores(ctx, *out, fn) }
	var html bytes.Buffer
	err = report.WriteScan(&html, scan, report.Options{
		Title:      "VoG report: " + j.Spec.Dataset.URL,
		Grid:       *grid,
		MaxClasses: *maxClasses,
		ClassNames: names,
		Image:      picture,
	})
	if err != nil {
		return err
	}
	if err := b.WriteAll(ctx, jobstore.ReportKey, html.Bytes(), nil); err != nil {
		return fmt.Errorf("write report.html: %w", err)
	}
	fmt.Printf("report: %s\n", loc.Join(jobstore.ReportKey))
	return nil
}

// reportDecoder returns the JPEG decoder the report reads the job's images
// with, and a note where it is not the job's. Thumbnails need not be
// bit-identical to the tensors the job scored, so a machine without
// libjpeg-turbo (a laptop) shows a libjpeg-turbo job's images with Go's
// decoder (within a few levels of 255) rather than refusing, as a worker
// must.
func reportDecoder(jobDecoder string) (decoder, note string) {
	if jobDecoder != preprocess.DecoderTurboJPEG {
		return jobDecoder, "" // Go's decoder, which every machine has, or none (idx)
	}
	if _, err := preprocess.LoadTurboJPEG(""); err != nil {
		return preprocess.DecoderGoJPEG, fmt.Sprintf("note: the job decoded JPEGs with %s, which this machine lacks (%v): "+
			"the report shows them decoded by Go's %s, within a few levels of 255 of what was scored", jobDecoder, err, preprocess.DecoderGoJPEG)
	}
	return jobDecoder, ""
}

// classesFile is the file beside a dataset that names its classes.
const classesFile = "classes.txt"

// reportClasses returns the names the report gives the job's classes, and
// where they come from, in this order: --classes (a file, a built-in list,
// or none); classes.txt in the dataset's folder (for idx, the folder of
// its prefix); the ImageFolder's folder names; Fashion-MNIST's names where
// the dataset's first labels are those of Fashion-MNIST's training or test
// set, or it is an idx dataset whose path says fashion. Otherwise nil: the
// report shows class indices. out is the job's output (its index).
func reportClasses(ctx context.Context, flag string, j *job.Job, out *blob.Bucket) ([]string, string, error) {
	switch {
	case flag == "none":
		return nil, "indices (--classes none)", nil
	case report.BuiltinClasses[flag] != nil:
		return report.BuiltinClasses[flag], "--classes " + flag, nil
	case flag != "":
		names, err := readClasses(ctx, flag)
		if err != nil {
			return nil, "", usagef("--classes %s: %v (or one of fashion-mnist, cifar10, none)", flag, err)
		}
		return names, fmt.Sprintf("%d names from %s", len(names), flag), nil
	}
	loc, err := location.Parse(j.Spec.Dataset.URL)
	if err != nil {
		return nil, "", err
	}
	if j.Spec.Dataset.Format == "idx" {
		loc.Key = path.Dir(loc.Key) // the prefix's folder
		if loc.Key == "." {
			loc.Key = ""
		}
	}
	beside := loc.Join(classesFile)
	names, err := readClasses(ctx, beside.String())
	switch {
	case err == nil:
		return names, fmt.Sprintf("%d names from %s", len(names), beside), nil
	case !storage.IsNotFound(err):
		return nil, "", fmt.Errorf("%s: %w", beside, err)
	}
	if len(j.Classes) > 0 {
		return j.Classes, "the dataset's folder names", nil
	}
	if j.Outputs == 0 || j.Outputs == len(report.FashionMNIST) {
		idx, err := storage.ReadParquet[job.IndexRow](ctx, out, jobstore.IndexKey, 0, report.DetectLabels)
		if err != nil {
			return nil, "", err
		}
		first := make([]int32, len(idx))
		for i, r := range idx {
			first[i] = r.Label
		}
		switch {
		case report.IsFashionMNIST(first):
			return report.FashionMNIST, "Fashion-MNIST's names (the dataset's labels begin as Fashion-MNIST's do; --classes none for indices)", nil
		case j.Spec.Dataset.Format == "idx" && strings.Contains(strings.ToLower(j.Spec.Dataset.URL), "fashion"):
			return report.FashionMNIST, "Fashion-MNIST's names (the dataset's path says fashion; --classes none for indices)", nil
		}
	}
	return nil, "indices (no names found: --classes FILE, or " + classesFile + " in the dataset's folder, names them)", nil
}

// readClasses reads a classes file (report.ParseClasses) from a path or URL.
func readClasses(ctx context.Context, url string) ([]string, error) {
	loc, err := location.Parse(url)
	if err != nil {
		return nil, err
	}
	b, err := storage.Open(ctx, loc)
	if err != nil {
		return nil, err
	}
	defer b.Close()
	data, err := b.ReadAll(ctx, loc.Key)
	if err != nil {
		return nil, err
	}
	return report.ParseClasses(data)
}
