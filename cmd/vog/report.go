package main

import (
	"bytes"
	"context"
	"fmt"
	"image"
	"image/color"

	"github.com/vogscore/vog/dataset"
	"github.com/vogscore/vog/job"
	"github.com/vogscore/vog/report"
	"github.com/vogscore/vog/storage"
)

// reportCmd writes report.html beside a finished job's result.
func reportCmd(ctx context.Context, args []string) error {
	fs := newFlags("report", "--out URL [flags]")
	out := fs.String("out", "", "a finished job's output URL or path")
	grid := fs.Int("grid", 25, "examples per image grid")
	maxClasses := fs.Int("max-classes", 10, "classes that get their own grids")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *out == "" {
		return usagef("--out: missing")
	}
	j, err := storage.ReadJob(ctx, *out)
	if err != nil {
		return err
	}
	loc, err := storage.Parse(*out)
	if err != nil {
		return err
	}
	b, err := storage.OpenPrefix(ctx, loc)
	if err != nil {
		return err
	}
	defer b.Close()
	reader, err := dataset.NewReader(ctx, j.Spec.Dataset, j.Shape, j.JPEGDecoder)
	if err != nil {
		return fmt.Errorf("--dataset %s: %w", j.Spec.Dataset.URL, err)
	}
	defer reader.Close()
	x := make([]float32, j.Shape.Len())
	picture := func(index int64) (image.Image, error) {
		idx, err := storage.ReadParquet[job.IndexRow](ctx, b, storage.IndexKey, index, 1)
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
		return toImage(x, j.Shape.C, j.Shape.H, j.Shape.W, j.Spec.Dataset.Preprocess), nil
	}
	// The rows are streamed, twice: memory holds the examples shown, not
	// the result.
	scan := func(fn func([]job.ScoreRow) error) error { return storage.ScanScores(ctx, *out, fn) }
	var html bytes.Buffer
	err = report.WriteScan(&html, scan, report.Options{
		Title:      "VoG report: " + j.Spec.Dataset.URL,
		Grid:       *grid,
		MaxClasses: *maxClasses,
		ClassNames: j.Classes,
		Image:      picture,
	})
	if err != nil {
		return err
	}
	if err := b.WriteAll(ctx, storage.ReportKey, html.Bytes(), nil); err != nil {
		return fmt.Errorf("write report.html: %w", err)
	}
	fmt.Printf("report: %s\n", loc.Join(storage.ReportKey))
	return nil
}

// toImage turns a preprocessed example back into a picture: it undoes the
// per-channel normalisation and clamps to [0, 1].
func toImage(x []float32, c, h, w int, p job.Preprocess) image.Image {
	px := func(ch, i int) uint8 {
		v := x[ch*h*w+i]
		if len(p.Mean) > ch {
			v = v*p.Std[ch] + p.Mean[ch]
		}
		return uint8(max(0, min(1, v))*255 + 0.5)
	}
	if c == 1 {
		g := image.NewGray(image.Rect(0, 0, w, h))
		for i := range h * w {
			g.Pix[i] = px(0, i)
		}
		return g
	}
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for i := range h * w {
		img.Set(i%w, i/w, color.RGBA{px(0, i), px(1, i), px(2, i), 255})
	}
	return img
}
