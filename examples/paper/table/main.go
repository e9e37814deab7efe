// Command table prints docs/paper.md's "Which score finds what": for each
// score column and each kind of truth, the AUROC mean ± std over the runs
// (seeds) of examples/paper/run.sh given, measured from the end of the
// score that flags (evaluate.Column.Flags, as vog eval states it), as a
// Markdown table, and each run's AUROCs below it.
//
// A truth is a result, a truth file and a window of one recipe: --memorise
// runs (MEMORISE=1 run.sh) give the replaced labels late (the model fits
// them) and early (the first quarter of training, before it has), the
// misclassified test images and both kinds of OOD inputs; --cnn runs (the
// CNN that never fits its replaced labels) give the replaced labels late.
// A truth that none of the runs has is left out; a cell without a value
// (loss and the like of images of classes the model lacks: they have no
// label it knows) reads n/a.
//
// Usage: go run ./examples/paper/table --memorise DIR,DIR,DIR [--cnn DIR,...]
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"

	_ "gocloud.dev/blob/fileblob"
	"gonum.org/v1/gonum/stat"

	"github.com/vogscore/vog/evaluate"
	"github.com/vogscore/vog/job"
	"github.com/vogscore/vog/jobstore"
)

// truth is one column of the table.
type truth struct {
	title, recipe, window, truthFile string
	// results by target: the result that gives the VoG columns of each
	// --target; the first also gives the other scores.
	logit, prob string
	// same names the scores computed from the prediction that defines the
	// truth (†) or from a window that ends with it (‡).
	same map[string]string
}

var truths = []truth{
	{"replaced, memorised (late)", "memorise", "late", "replaced", "train-logit", "train-prob", nil},
	{"replaced, not yet memorised (early)", "memorise", "early", "replaced", "train-logit", "train-prob", nil},
	{"replaced, CNN never fits them (late)", "cnn", "late", "replaced", "train-logit", "train-prob", nil},
	{"misclassified test images (late)", "memorise", "late", "misclassified", "test-logit", "test-prob", map[string]string{
		"loss": "†", "el2n": "†", "conf_mean": "‡", "margin_mean": "‡", "conf_std": "‡", "forgetting": "‡"}},
	{"OOD: unseen classes (late)", "memorise", "late", "ood_unseen", "mixed-logit-pred", "mixed-prob-pred", nil},
	{"OOD: inverted images (late)", "memorise", "late", "ood_inverted", "mixed-logit-pred", "mixed-prob-pred", nil},
}

// row is one row of the table: a score column of a target's result.
type row struct {
	name, column, target string
}

var rows = []row{
	{"vog (logit)", "vog", "logit"}, {"vog_norm (logit)", "vog_norm", "logit"}, {"abs_vog_norm (logit)", "abs_vog_norm", "logit"},
	{"vog (prob)", "vog", "prob"}, {"vog_norm (prob)", "vog_norm", "prob"}, {"abs_vog_norm (prob)", "abs_vog_norm", "prob"},
	{"loss", "loss", "logit"}, {"el2n", "el2n", "logit"}, {"conf_mean", "conf_mean", "logit"}, {"conf_std", "conf_std", "logit"},
	{"margin_mean", "margin_mean", "logit"}, {"forgetting", "forgetting", "logit"},
}

func main() {
	memorise := flag.String("memorise", "", "comma-separated run.sh directories of MEMORISE=1 runs, one per seed")
	cnn := flag.String("cnn", "", "comma-separated run.sh directories of the CNN recipe, one per seed")
	flag.Parse()
	dirs := map[string][]string{"memorise": split(*memorise), "cnn": split(*cnn)}
	if len(dirs["memorise"])+len(dirs["cnn"]) == 0 {
		fmt.Fprintln(os.Stderr, "usage: table --memorise DIR,DIR,DIR [--cnn DIR,...]")
		os.Exit(2)
	}
	// aurocs[truth][row]: one AUROC per run.
	aurocs := make([]map[string][]float64, len(truths))
	var kept []int
	var log strings.Builder
	for t, tr := range truths {
		aurocs[t] = map[string][]float64{}
		for _, dir := range dirs[tr.recipe] {
			for _, target := range []string{"logit", "prob"} {
				result := tr.logit
				if target == "prob" {
					result = tr.prob
				}
				got, err := measure(filepath.Join(dir, result), filepath.Join(dir, "truth_"+tr.truthFile+".csv"), tr.window)
				if err != nil {
					fmt.Fprintln(os.Stderr, "table:", err)
					os.Exit(1)
				}
				for _, r := range rows {
					if r.target == target {
						aurocs[t][r.name] = append(aurocs[t][r.name], got[r.column])
						fmt.Fprintf(&log, "%s\t%s\t%s\t%.4f\n", dir, tr.title, r.name, got[r.column])
					}
				}
			}
		}
		if len(dirs[tr.recipe]) > 0 {
			kept = append(kept, t)
		}
	}

	fmt.Print("| score | flags |")
	for _, t := range kept {
		fmt.Printf(" %s |", truths[t].title)
	}
	fmt.Print("\n|---|---|")
	for range kept {
		fmt.Print("---|")
	}
	fmt.Println()
	for _, r := range rows {
		fmt.Printf("| %s | %s |", r.name, flags(r.column))
		for _, t := range kept {
			xs := aurocs[t][r.name]
			mean, std := stat.MeanStdDev(xs, nil)
			cell := fmt.Sprintf("%.2f ± %.2f", mean, std)
			switch {
			case math.IsNaN(mean):
				cell = "n/a" // no value: a score of the label, for images of classes the model lacks
			case len(xs) == 1:
				cell = fmt.Sprintf("%.2f", mean)
			}
			fmt.Printf(" %s%s |", cell, truths[t].same[r.column])
		}
		fmt.Println()
	}
	fmt.Print("\nruns per column:")
	for _, t := range kept {
		fmt.Printf(" %s %d;", truths[t].title, len(dirs[truths[t].recipe]))
	}
	fmt.Printf("\n\neach run's AUROC:\n%s", log.String())
}

func split(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(s, ",")
}

// flags is the end of column name that flags examples.
func flags(name string) string {
	for _, c := range evaluate.Columns {
		if c.Name == name {
			return c.Flags.String()
		}
	}
	return "?"
}

// measure returns each column's AUROC from its flagging end in window of
// the result at out against the truth file at truthPath.
func measure(out, truthPath, window string) (map[string]float64, error) {
	truth, err := evaluate.ReadTruthSet(truthPath, func() (io.ReadCloser, error) { return os.Open(truthPath) }, "")
	if err != nil {
		return nil, err
	}
	ctx := context.Background()
	windows, err := evaluate.Measure(truth, func(fn func([]job.ScoreRow) error) error { return jobstore.ScanScores(ctx, out, fn) })
	if err != nil {
		return nil, fmt.Errorf("%s: %w", out, err)
	}
	for _, w := range windows {
		if w.Name != window {
			continue
		}
		got := map[string]float64{}
		for i, c := range evaluate.Columns {
			got[c.Name], _, _ = w.Oriented(i, c.Flags)
		}
		return got, nil
	}
	return nil, fmt.Errorf("%s: no window %s", out, window)
}
