package main

import (
	"context"
	"fmt"
	"io"
	"os"

	"github.com/vogscore/vog/evaluate"
	"github.com/vogscore/vog/job"
	"github.com/vogscore/vog/jobstore"
	"github.com/vogscore/vog/location"
	"github.com/vogscore/vog/storage"
)

// evalCmd measures how well each score separates the examples a truth file
// flags (noisy labels, out-of-distribution inputs) from the rest.
func evalCmd(ctx context.Context, args []string) error {
	fs := newFlags("eval", "--out URL --truth URL [--column NAME] [--score-direction ENDS]")
	out := fs.String("out", "", "a finished job's output URL or path")
	truthURL := fs.String("truth", "", "CSV with a header: example_id and a boolean column (1/0, true/false)")
	column := fs.String("column", "", "the truth file's boolean column (default: its second column)")
	direction := fs.String("score-direction", "conventional", "which end of each score flags examples, stated in the table's flags column and measured by its AUROC and AUPR: "+
		"conventional (low conf_mean and margin_mean, high for the rest), high (every score), best (per window, the end with AUROC >= 0.5), "+
		"and NAME=high|low for single columns, comma-separated (best,vog=high)")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *out == "" || *truthURL == "" {
		return usagef("--out and --truth are both needed")
	}
	dirs, err := evaluate.ParseDirections(*direction)
	if err != nil {
		return usagef("--score-direction %v", err)
	}
	truth, done, err := readTruth(ctx, *truthURL, *column)
	if err != nil {
		return err
	}
	defer done()
	windows, err := evaluate.Measure(truth, func(fn func([]job.ScoreRow) error) error { return jobstore.ScanScores(ctx, *out, fn) })
	if err != nil {
		return err
	}
	return evaluate.WriteTable(os.Stdout, windows, truth.Column, dirs)
}

// readTruth reads the truth CSV at raw, a path or URL (evaluate.ReadTruthSet),
// from a bucket that stays open until done is called: the set reads the
// file again to name an id that no row has.
func readTruth(ctx context.Context, raw, column string) (truth *evaluate.TruthSet, done func(), err error) {
	l, err := location.Parse(raw)
	if err != nil {
		return nil, nil, fmt.Errorf("--truth: %w", err)
	}
	b, err := storage.Open(ctx, l)
	if err != nil {
		return nil, nil, fmt.Errorf("--truth: %w", err)
	}
	open := func() (io.ReadCloser, error) {
		rd, err := b.NewReader(ctx, l.Key, nil)
		if err != nil {
			return nil, fmt.Errorf("--truth %s: %w", raw, err)
		}
		return rd, nil
	}
	if truth, err = evaluate.ReadTruthSet("--truth "+raw, open, column); err != nil {
		b.Close()
		return nil, nil, err
	}
	return truth, func() { b.Close() }, nil
}
