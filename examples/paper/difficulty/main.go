// Command difficulty prints, for each window of a finished vog result, the
// error of the trained model by decile of the window's vog, vog_norm and
// abs_vog_norm (the paper's Fig. 4), and per class the mean VoG against the
// class error, with their Pearson and Spearman correlations (the paper's
// appendix). The error of an example is 1 - correct_last of the window that
// --error-window names (default all, whose last checkpoint is the trained
// model), so that every window's VoG is set against the same errors, as in
// the paper. docs/paper.md quotes its output.
//
// Deciles are exact: the rows of a window are sorted by the score and cut
// into ten groups of n/10 (rounded down at the cuts), lowest first. Rows
// without a label (-1) are left out: they have no error.
//
// Usage: go run ./examples/paper/difficulty --out DIR [--error-window all]
package main

import (
	"cmp"
	"context"
	"flag"
	"fmt"
	"math"
	"os"
	"slices"
	"strings"

	_ "gocloud.dev/blob/fileblob"
	"gonum.org/v1/gonum/stat"

	"github.com/vogscore/vog/evaluate"
	"github.com/vogscore/vog/job"
	"github.com/vogscore/vog/jobstore"
)

// example is what difficulty keeps of a row.
type example struct {
	vog, norm, abs float64
	class          int32
	wrong          bool
}

func main() {
	out := flag.String("out", "", "a finished vog result (its --out)")
	errWindow := flag.String("error-window", "all", "the window whose last checkpoint's errors are set against every window's scores")
	flag.Parse()
	if *out == "" {
		fmt.Fprintln(os.Stderr, "usage: difficulty --out DIR")
		os.Exit(2)
	}
	windows := map[string][]example{}
	index := map[string][]int64{} // each window's example indices, in its rows' order
	wrong := map[int64]bool{}     // the error window's errors
	err := jobstore.ScanScores(context.Background(), *out, func(rows []job.ScoreRow) error {
		for _, r := range rows {
			if r.Label < 0 {
				continue
			}
			windows[r.Window] = append(windows[r.Window], example{r.VoG, r.VoGNorm, r.AbsVoGNorm, r.Label, false})
			index[r.Window] = append(index[r.Window], r.Index)
			if r.Window == *errWindow {
				wrong[r.Index] = !r.CorrectLast
			}
		}
		return nil
	})
	if err == nil && len(wrong) == 0 {
		err = fmt.Errorf("--error-window %s: no such window in %s", *errWindow, *out)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "difficulty:", err)
		os.Exit(1)
	}
	fmt.Printf("errors: 1 - correct_last of window %s\n", *errWindow)
	for name, ex := range windows {
		for i := range ex {
			ex[i].wrong = wrong[index[name][i]]
		}
	}
	names := make([]string, 0, len(windows))
	for name := range windows {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		printWindow(name, windows[name])
	}
}

func printWindow(name string, ex []example) {
	wrong := 0
	for _, e := range ex {
		if e.wrong {
			wrong++
		}
	}
	fmt.Printf("\nwindow %s: %d examples, error %.4f\n", name, len(ex), float64(wrong)/float64(len(ex)))
	fmt.Printf("error by decile (1 = lowest):  %s\n", strings.Join(header(), " "))
	for _, col := range []struct {
		name string
		get  func(example) float64
	}{
		{"vog", func(e example) float64 { return e.vog }},
		{"vog_norm", func(e example) float64 { return e.norm }},
		{"abs_vog_norm", func(e example) float64 { return e.abs }},
	} {
		cells := make([]string, 10)
		for i, v := range errorByDecile(ex, col.get) {
			cells[i] = fmt.Sprintf("%5.3f", v)
		}
		fmt.Printf("  %-28s %s\n", col.name, strings.Join(cells, " "))
	}

	type class struct{ n, vog, wrong float64 }
	classes := map[int32]*class{}
	for _, e := range ex {
		c := classes[e.class]
		if c == nil {
			c = &class{}
			classes[e.class] = c
		}
		c.n++
		c.vog += e.vog
		if e.wrong {
			c.wrong++
		}
	}
	ids := make([]int32, 0, len(classes))
	for id := range classes {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	var means, errs []float64
	fmt.Println("  class      n    mean vog   error")
	for _, id := range ids {
		c := classes[id]
		means, errs = append(means, c.vog/c.n), append(errs, c.wrong/c.n)
		fmt.Printf("  %5d  %5.0f  %10.4g  %6.4f\n", id, c.n, c.vog/c.n, c.wrong/c.n)
	}
	fmt.Printf("  class mean vog against class error (%d classes): Pearson %+.3f, Spearman %+.3f\n",
		len(ids), stat.Correlation(means, errs, nil), evaluate.Spearman(means, errs))
}

func header() []string {
	h := make([]string, 10)
	for i := range h {
		h[i] = fmt.Sprintf("%5d", i+1)
	}
	return h
}

// errorByDecile sorts ex by score (NaN first) and returns the error of
// each tenth, lowest first.
func errorByDecile(ex []example, score func(example) float64) [10]float64 {
	s := slices.Clone(ex)
	slices.SortStableFunc(s, func(a, b example) int { return cmp.Compare(score(a), score(b)) })
	var out [10]float64
	for d := range 10 {
		part := s[d*len(s)/10 : (d+1)*len(s)/10]
		wrong := 0
		for _, e := range part {
			if e.wrong {
				wrong++
			}
		}
		out[d] = float64(wrong) / float64(len(part))
		if len(part) == 0 {
			out[d] = math.NaN()
		}
	}
	return out
}
