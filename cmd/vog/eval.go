package main

import (
	"context"
	"encoding/csv"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"text/tabwriter"

	"github.com/vogscore/vog/evaluate"
	"github.com/vogscore/vog/job"
	"github.com/vogscore/vog/storage"
)

// scoreColumns are the result's score columns that eval ranks by.
var scoreColumns = []struct {
	name string
	get  func(job.ScoreRow) float64
}{
	{"vog", func(r job.ScoreRow) float64 { return r.VoG }},
	{"vog_norm", func(r job.ScoreRow) float64 { return r.VoGNorm }},
	{"loss", func(r job.ScoreRow) float64 { return r.Loss }},
	{"conf_mean", func(r job.ScoreRow) float64 { return r.ConfMean }},
	{"conf_std", func(r job.ScoreRow) float64 { return r.ConfStd }},
	{"margin_mean", func(r job.ScoreRow) float64 { return r.MarginMean }},
	{"el2n", func(r job.ScoreRow) float64 { return r.EL2N }},
	{"forgetting", func(r job.ScoreRow) float64 { return float64(r.Forgetting) }},
	{"grad_norm", func(r job.ScoreRow) float64 { return r.GradNorm }},
}

// evalCmd measures how well each score separates the examples a truth file
// flags (noisy labels, out-of-distribution inputs) from the rest.
func evalCmd(ctx context.Context, args []string) error {
	fs := newFlags("eval", "--out URL --truth URL [--column NAME]")
	out := fs.String("out", "", "a finished job's output URL or path")
	truthURL := fs.String("truth", "", "CSV with a header: example_id and a boolean column (1/0, true/false)")
	column := fs.String("column", "", "the truth file's boolean column (default: its second column)")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *out == "" || *truthURL == "" {
		return usagef("--out and --truth are both needed")
	}
	truth, name, err := readTruth(ctx, *truthURL, *column)
	if err != nil {
		return err
	}
	rows, err := storage.ReadScores(ctx, *out)
	if err != nil {
		return err
	}
	byWindow := map[string][]job.ScoreRow{}
	seen := map[string]bool{}
	for _, r := range rows {
		if _, ok := truth[r.ExampleID]; ok {
			byWindow[r.Window] = append(byWindow[r.Window], r)
			seen[r.ExampleID] = true
		}
	}
	if len(seen) < len(truth) {
		for id := range truth {
			if !seen[id] {
				return fmt.Errorf("--truth %s: %d of its example ids are not in the result, %q for one", *truthURL, len(truth)-len(seen), id)
			}
		}
	}
	windows := make([]string, 0, len(byWindow))
	for w := range byWindow {
		windows = append(windows, w)
	}
	sort.Strings(windows)
	for _, w := range windows {
		wr := byWindow[w]
		pos := make([]bool, len(wr))
		npos := 0
		for i, r := range wr {
			pos[i] = truth[r.ExampleID]
			if pos[i] {
				npos++
			}
		}
		fmt.Printf("\nwindow %s: %d examples, %d flagged %s\n", w, len(wr), npos, name)
		tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(tw, "score\tAUROC\tAUPR-in\tAUPR-out\t")
		for _, c := range scoreColumns {
			s := make([]float64, len(wr))
			neg, notPos := make([]float64, len(wr)), make([]bool, len(wr))
			for i, r := range wr {
				s[i] = c.get(r)
				neg[i], notPos[i] = -s[i], !pos[i]
			}
			fmt.Fprintf(tw, "%s\t%.4f\t%.4f\t%.4f\t\n", c.name, evaluate.AUROC(s, pos), evaluate.AveragePrecision(s, pos), evaluate.AveragePrecision(neg, notPos))
		}
		tw.Flush()
		var a, b []float64
		for i, r := range wr {
			if pos[i] {
				a = append(a, r.VoG)
			} else {
				b = append(b, r.VoG)
			}
		}
		t := evaluate.WelchT(a, b)
		direction := "higher"
		if t.MeanA < t.MeanB {
			direction = "lower"
		}
		fmt.Printf("Welch's t-test of VoG: flagged mean %.4g, others %.4g (flagged score %s): t = %.3f, df = %.1f, p = %.3g\n",
			t.MeanA, t.MeanB, direction, t.T, t.DF, t.P)
	}
	fmt.Println("\nAUROC above 0.5: the score ranks flagged examples higher; below 0.5: lower. AUPR-in treats flagged")
	fmt.Println("examples as positives ranked by the score; AUPR-out treats the others as positives ranked by its negation.")
	return nil
}

// readTruth reads example_id and a boolean column from a CSV file.
func readTruth(ctx context.Context, raw, column string) (map[string]bool, string, error) {
	l, err := storage.Parse(raw)
	if err != nil {
		return nil, "", fmt.Errorf("--truth: %w", err)
	}
	b, err := storage.Open(ctx, l)
	if err != nil {
		return nil, "", fmt.Errorf("--truth: %w", err)
	}
	defer b.Close()
	rd, err := b.NewReader(ctx, l.Key, nil)
	if err != nil {
		return nil, "", fmt.Errorf("--truth %s: %w", raw, err)
	}
	defer rd.Close()
	cr := csv.NewReader(rd)
	head, err := cr.Read()
	if err != nil {
		return nil, "", fmt.Errorf("--truth %s: header: %w", raw, err)
	}
	idCol, flagCol := -1, -1
	for i, h := range head {
		switch {
		case h == "example_id":
			idCol = i
		case (column == "" && flagCol < 0 && i > 0) || h == column:
			flagCol = i
		}
	}
	if idCol < 0 || flagCol < 0 {
		return nil, "", fmt.Errorf("--truth %s: want columns example_id and %s, have %v", raw, orDefault(column, "a boolean"), head)
	}
	truth := map[string]bool{}
	for line := 2; ; line++ {
		rec, err := cr.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, "", fmt.Errorf("--truth %s: %w", raw, err)
		}
		switch strings.ToLower(strings.TrimSpace(rec[flagCol])) {
		case "1", "true", "yes":
			truth[rec[idCol]] = true
		case "0", "false", "no":
			truth[rec[idCol]] = false
		default:
			return nil, "", fmt.Errorf("--truth %s: line %d: %s = %q is not a boolean", raw, line, head[flagCol], rec[flagCol])
		}
	}
	return truth, head[flagCol], nil
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
