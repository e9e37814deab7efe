package evaluate

import (
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/vogscore/vog/job"
	"github.com/vogscore/vog/score"
)

// Column is a score column of a result that Measure ranks examples by.
type Column struct {
	Name string
	Get  func(*job.ScoreRow) float64
	// Flags is the end of the score that its method reads as flagging an
	// example (hard, mislabelled, atypical): High for VoG (the paper),
	// loss, EL2N, confidence variability (Data Maps' ambiguous examples),
	// forgetting and the gradient norm; Low for confidence (Data Maps'
	// hard-to-learn examples) and the margin (AUM's mislabelled ones).
	Flags Direction
}

// Columns are the result's score columns that Measure ranks by, in the
// order WriteTable prints them: a new score column is one more entry here.
var Columns = []Column{
	{"vog", func(r *job.ScoreRow) float64 { return r.VoG }, High},
	{"vog_norm", func(r *job.ScoreRow) float64 { return r.VoGNorm }, High},
	{"abs_vog_norm", func(r *job.ScoreRow) float64 { return r.AbsVoGNorm }, High},
	{"loss", func(r *job.ScoreRow) float64 { return r.Loss }, High},
	{"conf_mean", func(r *job.ScoreRow) float64 { return r.ConfMean }, Low},
	{"conf_std", func(r *job.ScoreRow) float64 { return r.ConfStd }, High},
	{"margin_mean", func(r *job.ScoreRow) float64 { return r.MarginMean }, Low},
	{"el2n", func(r *job.ScoreRow) float64 { return r.EL2N }, High},
	{"forgetting", func(r *job.ScoreRow) float64 { return float64(r.Forgetting) }, High},
	{"grad_norm", func(r *job.ScoreRow) float64 { return r.GradNorm }, High},
}

// Scan visits one job's rows: it calls fn with successive chunks of them
// (storage.ScanScores does, part by part) and returns fn's first error.
type Scan func(fn func([]job.ScoreRow) error) error

// Window is what Measure finds of one window: per score column (Columns),
// a histogram of flagged and other examples (Hist: AUROC and average
// precision to about 1e-6, exact up to 2^15 examples), and the running
// moments of the flagged and the other examples' finite scores (their mean
// ± std and Welch's t-test, WelchMoments).
type Window struct {
	Name string
	// Examples are the window's rows whose example is in the truth set;
	// Flagged, those of them it flags.
	Examples, Flagged int64
	Hists             []*Hist
	FlaggedScores     []score.Moments
	OtherScores       []score.Moments

	samplers []*Sampler // first pass
	n2       int64      // rows in the second pass
}

// Measure measures every window of the rows that scan visits (twice, the
// same rows each time) against truth, in memory that does not depend on
// the number of rows: rows whose example is not in truth are left out, and
// an example of truth that no row has is an error naming it. Windows come
// in name order.
func Measure(truth *TruthSet, scan Scan) ([]*Window, error) {
	byName := map[string]*Window{}
	var last *Window
	at := func(name string) *Window {
		if last == nil || last.Name != name {
			if last = byName[name]; last == nil {
				last = &Window{Name: strings.Clone(name),
					FlaggedScores: make([]score.Moments, len(Columns)), OtherScores: make([]score.Moments, len(Columns))}
				for range Columns {
					last.samplers = append(last.samplers, NewSampler(0))
				}
				byName[last.Name] = last
			}
		}
		return last
	}
	// First pass: counts, the groups' moments, and the samples that place
	// the histograms' bins.
	err := scan(func(rows []job.ScoreRow) error {
		for i := range rows {
			r := &rows[i]
			flag, ok := truth.mark(r.ExampleID)
			if !ok {
				continue
			}
			w := at(r.Window)
			w.Examples++
			group := w.OtherScores
			if flag {
				w.Flagged++
				group = w.FlaggedScores
			}
			for c, col := range Columns {
				v := col.Get(r)
				w.samplers[c].Add(v)
				if !math.IsNaN(v) && !math.IsInf(v, 0) { // as WelchT
					group[c].Add(v)
				}
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if missing := truth.unseen(); missing > 0 {
		id, err := truth.firstUnseen()
		if err != nil {
			return nil, err
		}
		return nil, fmt.Errorf("%s: %d of its example ids are not in the result, %q for one", truth.name, missing, id)
	}
	windows := make([]*Window, 0, len(byName))
	for _, w := range byName {
		for _, s := range w.samplers {
			w.Hists = append(w.Hists, NewHist(s.Bins()))
		}
		w.samplers = nil
		windows = append(windows, w)
	}
	slices.SortFunc(windows, func(a, b *Window) int { return strings.Compare(a.Name, b.Name) })
	// Second pass: the histograms, a score at a time over a chunk, which
	// keeps one histogram's bins in cache.
	last = nil
	var (
		in    []int // the chunk's rows in truth
		ws    []*Window
		flags []bool
	)
	err = scan(func(rows []job.ScoreRow) error {
		in, ws, flags = in[:0], ws[:0], flags[:0]
		for i := range rows {
			r := &rows[i]
			flag, ok := truth.Lookup(r.ExampleID)
			if !ok {
				continue
			}
			w := at(r.Window)
			if w.Hists == nil {
				return fmt.Errorf("window %s: not in the first pass over the rows", r.Window)
			}
			w.n2++
			in, ws, flags = append(in, i), append(ws, w), append(flags, flag)
		}
		for c, col := range Columns {
			for k, i := range in {
				ws[k].Hists[c].Add(col.Get(&rows[i]), flags[k])
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	for _, w := range windows {
		if w.n2 != w.Examples {
			return nil, fmt.Errorf("window %s: %d rows in the first pass over the rows, %d in the second", w.Name, w.Examples, w.n2)
		}
	}
	return windows, nil
}

// Oriented returns column c's AUROC, AUPR-in and AUPR-out in window w with
// end d flagging: for High, the flagged examples ranked by descending score
// (AUPR-in) and the others by ascending (AUPR-out); for Low, the reverse,
// so that the AUROC is 1 - that of High.
func (w *Window) Oriented(c int, d Direction) (auroc, aprIn, aprOut float64) {
	h := w.Hists[c]
	if d == Low {
		return 1 - h.AUROC(), h.AveragePrecisionLow(), h.AveragePrecisionNegHigh()
	}
	return h.AUROC(), h.AveragePrecision(), h.AveragePrecisionNeg()
}

// WriteTable writes what Measure found, as vog eval prints it: per window,
// a line per score column with the end that flags (dirs), the AUROC and
// AUPR in that orientation and the groups' figures, then what they mean.
// flagged names what the truth set flags (its column).
func WriteTable(w io.Writer, windows []*Window, flagged string, dirs Directions) error {
	for _, win := range windows {
		fmt.Fprintf(w, "\nwindow %s: %d examples, %d flagged %s\n", win.Name, win.Examples, win.Flagged, flagged)
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(tw, "score\tflags\tAUROC\tAUPR-in\tAUPR-out\tflagged mean ± std\tothers mean ± std\tWelch t\tp\t")
		for i, c := range Columns {
			d := dirs.End(c, win.Hists[i])
			auroc, in, out := win.Oriented(i, d)
			t := WelchMoments(win.FlaggedScores[i], win.OtherScores[i])
			p := fmt.Sprintf("%.3g", t.P)
			if t.P == 0 {
				p = "<1e-300" // below what a float64 holds
			}
			fmt.Fprintf(tw, "%s\t%s\t%.4f\t%.4f\t%.4f\t%s\t%s\t%.2f\t%s\t\n", c.Name, d, auroc, in, out,
				meanStd(win.FlaggedScores[i]), meanStd(win.OtherScores[i]), t.T, p)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	_, err := fmt.Fprintf(w, `
flags: the end of the score taken to flag examples (%s), in which AUROC and AUPR are
measured: AUROC is the chance that a flagged example lies nearer that end than another example. Below
0.5 the other end flags them, at 1 - AUROC: an inverted score, not a weak one. AUPR-in treats flagged
examples as positives ranked from that end; AUPR-out treats the others as positives ranked from the other.
mean ± std: of the score over either group (std with n-1; NaN scores left out, as by the AUROC), the
figures the paper reports; Welch's t-test of the two means (two-sided p; t > 0: flagged higher).
`, dirs)
	return err
}

// meanStd formats a group's mean ± std (n-1), or its mean and size where
// it has fewer than two values.
func meanStd(m score.Moments) string {
	if m.N < 2 {
		return fmt.Sprintf("%.4g (n=%d)", mean(m), m.N)
	}
	return fmt.Sprintf("%.4g ± %.3g", m.Mean, math.Sqrt(m.SampleVar()))
}
