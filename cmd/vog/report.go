package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"image"
	"image/color"

	"github.com/vogscore/vog/activities"
	"github.com/vogscore/vog/dataset"
	"github.com/vogscore/vog/report"
	"github.com/vogscore/vog/storage"
)

// reportCmd writes report.html beside a finished job's result.
func reportCmd(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("vog report", flag.ContinueOnError)
	out := fs.String("out", "", "a finished job's output URL or path")
	grid := fs.Int("grid", 25, "examples per image grid")
	maxClasses := fs.Int("max-classes", 10, "classes that get their own grids")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *out == "" {
		return errors.New("usage: vog report --out URL")
	}
	job, err := activities.ReadJob(ctx, *out)
	if err != nil {
		return err
	}
	rows, err := storage.ReadScores(ctx, *out)
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
	reader, err := dataset.NewReader(ctx, job.Spec.Dataset, job.Shape)
	if err != nil {
		return fmt.Errorf("--dataset %s: %w", job.Spec.Dataset.URL, err)
	}
	defer reader.Close()
	x := make([]float32, job.Shape.Len())
	picture := func(index int64) (image.Image, error) {
		idx, err := storage.ReadParquet[storage.IndexRow](ctx, b, storage.IndexKey, index, 1)
		if err != nil || len(idx) != 1 {
			return nil, fmt.Errorf("example %d: not in the index: %v", index, err)
		}
		if err := reader.Read(ctx, idx, x); err != nil {
			return nil, err
		}
		return toImage(x, job.Shape.C, job.Shape.H, job.Shape.W, job.Spec.Dataset.Preprocess), nil
	}
	var html bytes.Buffer
	err = report.Write(&html, rows, report.Options{
		Title:      "VoG report: " + job.Spec.Dataset.URL,
		Grid:       *grid,
		MaxClasses: *maxClasses,
		ClassNames: job.Classes,
		Image:      picture,
	})
	if err != nil {
		return err
	}
	if err := b.WriteAll(ctx, "report.html", html.Bytes(), nil); err != nil {
		return fmt.Errorf("write report.html: %w", err)
	}
	fmt.Printf("report: %s\n", loc.Join("report.html"))
	return nil
}

// toImage turns a preprocessed example back into a picture: it undoes the
// per-channel normalisation and clamps to [0, 1].
func toImage(x []float32, c, h, w int, p dataset.Preprocess) image.Image {
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
