package evaluate

import (
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"regexp"
	"slices"
	"strings"
	"testing"

	"gonum.org/v1/gonum/stat"

	"github.com/vogscore/vog/job"
	"github.com/vogscore/vog/score"
)

// scanOf visits rows in chunks of n through one reused buffer.
func scanOf(rows []job.ScoreRow, n int) Scan {
	return func(fn func([]job.ScoreRow) error) error {
		buf := make([]job.ScoreRow, n)
		for rest := rows; len(rest) > 0; {
			k := copy(buf, rest)
			if err := fn(buf[:k]); err != nil {
				return err
			}
			rest = rest[k:]
		}
		return nil
	}
}

// evalRows makes a two-window result of n examples; a tenth have no label
// (NaN label-based scores), forgetting is a small integer (ties).
func evalRows(n int) []job.ScoreRow {
	r := rand.New(rand.NewPCG(3, 1))
	var rows []job.ScoreRow
	for i := range n {
		for w, name := range []string{"all", "late"} {
			row := job.ScoreRow{Index: int64(i), ExampleID: fmt.Sprintf("train/%06d.jpg", i), Window: name,
				VoG: math.Exp(r.NormFloat64() + float64(w)), VoGNorm: r.NormFloat64(), Loss: r.ExpFloat64(),
				ConfMean: r.Float64(), ConfStd: r.Float64() / 4, MarginMean: r.NormFloat64(), EL2N: r.Float64(),
				Forgetting: int32(r.IntN(4)), GradNorm: r.ExpFloat64()}
			row.AbsVoGNorm = math.Abs(row.VoGNorm)
			if i%10 == 3 {
				row.Label, row.Loss, row.ConfMean, row.ConfStd, row.MarginMean, row.EL2N = -1, math.NaN(), math.NaN(), math.NaN(), math.NaN(), math.NaN()
			}
			rows = append(rows, row)
		}
	}
	return rows
}

// truthOf reads a truth set of a header and lines, from memory.
func truthOf(t *testing.T, lines []string, column string) *TruthSet {
	t.Helper()
	text := "example_id,noisy\n" + strings.Join(lines, "\n") + "\n"
	open := func() (io.ReadCloser, error) { return io.NopCloser(strings.NewReader(text)), nil }
	truth, err := ReadTruthSet("--truth truth.csv", open, column)
	if err != nil {
		t.Fatal(err)
	}
	return truth
}

// TestMeasure checks the streamed measures against the exact functions on
// the rows in the truth file, with more rows than the histograms' sample.
func TestMeasure(t *testing.T) {
	n := 40_000
	rows := evalRows(n)
	r := rand.New(rand.NewPCG(8, 8))
	flags := map[string]bool{}
	var lines []string
	for i := range n {
		if i%7 == 0 {
			continue // not in the truth file: left out
		}
		id := fmt.Sprintf("train/%06d.jpg", i)
		flags[id] = r.IntN(5) == 0
		if i%1000 == 1 { // given twice: the last flag counts
			lines = append(lines, fmt.Sprintf("%s,%v", id, !flags[id]))
		}
		lines = append(lines, fmt.Sprintf("%s,%v", id, flags[id]))
	}
	truth := truthOf(t, lines, "")
	if truth.Len() != len(flags) || truth.Column != "noisy" {
		t.Fatalf("%d ids, column %q", truth.Len(), truth.Column)
	}
	windows, err := Measure(truth, scanOf(rows, 1000))
	if err != nil {
		t.Fatal(err)
	}
	if len(windows) != 2 || windows[0].Name != "all" || windows[1].Name != "late" {
		t.Fatalf("windows %v", windows)
	}
	for _, w := range windows {
		var in []job.ScoreRow
		var pos, notPos []bool
		npos := 0
		for _, row := range rows {
			flag, ok := flags[row.ExampleID]
			if row.Window != w.Name || !ok {
				continue
			}
			in, pos, notPos = append(in, row), append(pos, flag), append(notPos, !flag)
			if flag {
				npos++
			}
		}
		if w.Examples != int64(len(in)) || w.Flagged != int64(npos) {
			t.Fatalf("window %s: %d examples, %d flagged; want %d, %d", w.Name, w.Examples, w.Flagged, len(in), npos)
		}
		for c, col := range Columns {
			s, neg := make([]float64, len(in)), make([]float64, len(in))
			var a, b []float64 // the flagged and the other examples' finite scores
			for i := range in {
				s[i] = col.Get(&in[i])
				neg[i] = -s[i]
				if math.IsNaN(s[i]) {
					continue
				}
				if pos[i] {
					a = append(a, s[i])
				} else {
					b = append(b, s[i])
				}
			}
			h := w.Hists[c]
			for _, m := range [][3]any{
				{"AUROC", h.AUROC(), AUROC(s, pos)},
				{"AUPR-in", h.AveragePrecision(), AveragePrecision(s, pos)},
				{"AUPR-out", h.AveragePrecisionNeg(), AveragePrecision(neg, notPos)},
				{"AUPR-in low", h.AveragePrecisionLow(), AveragePrecision(neg, pos)},
				{"AUPR-out low", h.AveragePrecisionNegHigh(), AveragePrecision(s, notPos)},
			} {
				if d := math.Abs(m[1].(float64) - m[2].(float64)); !(d < 1e-5) {
					t.Errorf("window %s, %s: %s %.6f, exact %.6f", w.Name, col.Name, m[0], m[1], m[2])
				}
			}
			// The groups' mean ± std and Welch's test, against gonum on
			// the scores themselves.
			for g, m := range map[string]struct {
				got  score.Moments
				vals []float64
			}{"flagged": {w.FlaggedScores[c], a}, "others": {w.OtherScores[c], b}} {
				mean, std := stat.MeanStdDev(m.vals, nil)
				if m.got.N != int64(len(m.vals)) || !near(m.got.Mean, mean, 1e-12) || !near(math.Sqrt(m.got.SampleVar()), std, 1e-9) {
					t.Errorf("window %s, %s, %s: n %v, %v ± %v; want %d, %v ± %v", w.Name, col.Name, g,
						m.got.N, m.got.Mean, math.Sqrt(m.got.SampleVar()), len(m.vals), mean, std)
				}
				if want := fmt.Sprintf("%.4g ± %.3g", mean, std); meanStd(m.got) != want {
					t.Errorf("window %s, %s, %s: printed %q, want %q", w.Name, col.Name, g, meanStd(m.got), want)
				}
			}
			got, want := WelchMoments(w.FlaggedScores[c], w.OtherScores[c]), WelchT(a, b)
			if !near(got.T, want.T, 1e-9) || math.Abs(got.P-want.P) > 1e-9 {
				t.Errorf("window %s, %s: Welch %+v, want %+v", w.Name, col.Name, got, want)
			}
		}
	}

	// An id no row has is an error that names it (the first in the file).
	lines = append(lines, "train/999999.jpg,1", "nope,0")
	_, err = Measure(truthOf(t, lines, "noisy"), scanOf(rows, 1000))
	if err == nil || err.Error() != `--truth truth.csv: 2 of its example ids are not in the result, "train/999999.jpg" for one` {
		t.Fatalf("missing ids: %v", err)
	}
}

// near reports whether a and b agree within rel relative to b (or
// absolutely, where b is under 1).
func near(a, b, rel float64) bool { return math.Abs(a-b) <= rel*max(1, math.Abs(b)) }

// TestTruthSet: ids found with their last flag, others not, at any size.
func TestTruthSet(t *testing.T) {
	for _, n := range []int{0, 1, 2, 5, 17, 1000, 100_003} {
		var lines []string
		want := map[string]bool{}
		for i := range n {
			id := fmt.Sprintf("x%d", i*7)
			want[id] = i%3 == 0
			if i%5 == 0 {
				lines = append(lines, fmt.Sprintf("%s,%v", id, !want[id]))
			}
			lines = append(lines, fmt.Sprintf("%s,%v", id, want[id]))
		}
		truth := truthOf(t, lines, "")
		if truth.Len() != n {
			t.Fatalf("%d ids: %d entries", n, truth.Len())
		}
		for i := range n {
			id := fmt.Sprintf("x%d", i*7)
			if flag, ok := truth.Lookup(id); !ok || flag != want[id] {
				t.Fatalf("%d ids: %s: %v %v, want %v", n, id, flag, ok, want[id])
			}
			if _, ok := truth.Lookup(fmt.Sprintf("x%d", i*7+1)); ok {
				t.Fatalf("%d ids: x%d found", n, i*7+1)
			}
		}
	}
}

// TestTruthSetErrors: the file's errors carry its name; the opener's are
// its own.
func TestTruthSetErrors(t *testing.T) {
	bad := func() (io.ReadCloser, error) {
		return io.NopCloser(strings.NewReader("example_id,noisy\na,maybe\n")), nil
	}
	if _, err := ReadTruthSet("--truth t.csv", bad, ""); err == nil || err.Error() != `--truth t.csv: line 2: noisy = "maybe" is not a boolean` {
		t.Fatalf("bad flag: %v", err)
	}
	gone := errors.New("--truth t.csv: no such file")
	if _, err := ReadTruthSet("--truth t.csv", func() (io.ReadCloser, error) { return nil, gone }, ""); err != gone {
		t.Fatalf("open: %v", err)
	}
}

// TestWriteTable: the header of each window, a line per column, and a
// group of fewer than two values shown by its mean and size.
func TestWriteTable(t *testing.T) {
	rows := []job.ScoreRow{
		{ExampleID: "a", Window: "all", VoG: 1},
		{ExampleID: "b", Window: "all", VoG: 2},
		{ExampleID: "c", Window: "all", VoG: 4},
	}
	windows, err := Measure(truthOf(t, []string{"a,1", "b,0", "c,0"}, ""), scanOf(rows, 2))
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	if err := WriteTable(&b, windows, "noisy", Directions{}); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	if !strings.HasPrefix(out, "\nwindow all: 3 examples, 1 flagged noisy\n") || strings.Count(out, "\n") != 2+1+len(Columns)+7 {
		t.Fatalf("output:\n%s", out)
	}
	// The flagged example has the lowest VoG: AUROC 0 from the high end.
	vog := regexp.MustCompile(`(?m)^\s*vog .*$`).FindString(out)
	if !regexp.MustCompile(`vog\s+high\s+0\.0000\s`).MatchString(vog) || !strings.Contains(vog, "1 (n=1)") || !strings.Contains(vog, "3 ± 1.41") {
		t.Fatalf("vog line %q", vog)
	}
	b.Reset()
	if err := WriteTable(&b, windows, "noisy", Directions{Mode: "best"}); err != nil {
		t.Fatal(err)
	}
	if vog := regexp.MustCompile(`(?m)^\s*vog .*$`).FindString(b.String()); !regexp.MustCompile(`vog\s+low\s+1\.0000\s+1\.0000\s+1\.0000\s`).MatchString(vog) {
		t.Fatalf("best: vog line %q", vog)
	}
	if m := meanStd(score.Moments{}); m != "NaN (n=0)" {
		t.Fatalf("empty group: %q", m)
	}
}

// TestDirections: each mode and column end orients the AUROC and AUPR as
// the exact functions do on the score or its negation, and WriteTable
// states the end it measured.
func TestDirections(t *testing.T) {
	// conf_mean and vog fall with the flag; loss rises with it.
	var rows []job.ScoreRow
	var truth []string
	var vogs, confs, losses, negVogs, negConfs []float64
	var pos, notPos []bool
	for i := range 40 {
		flag := i%4 == 0
		x := float64(i % 7) // ties across the groups
		if flag {
			x -= 4
		}
		r := job.ScoreRow{ExampleID: fmt.Sprint(i), Window: "all", VoG: x, ConfMean: x / 10, Loss: -x}
		rows = append(rows, r)
		truth = append(truth, fmt.Sprintf("%d,%v", i, flag))
		vogs, confs, losses = append(vogs, r.VoG), append(confs, r.ConfMean), append(losses, r.Loss)
		negVogs, negConfs = append(negVogs, -r.VoG), append(negConfs, -r.ConfMean)
		pos, notPos = append(pos, flag), append(notPos, !flag)
	}
	windows, err := Measure(truthOf(t, truth, "noisy"), scanOf(rows, 7))
	if err != nil {
		t.Fatal(err)
	}
	w := windows[0]
	col := func(name string) (int, Column) {
		i := slices.IndexFunc(Columns, func(c Column) bool { return c.Name == name })
		return i, Columns[i]
	}
	// exact is the AUROC, AUPR-in and AUPR-out from the high end of s.
	exact := func(s, neg []float64) [3]float64 {
		return [3]float64{AUROC(s, pos), AveragePrecision(s, pos), AveragePrecision(neg, notPos)}
	}
	for _, c := range []struct {
		dirs        string
		column      string
		end         Direction
		score, negd []float64
	}{
		{"", "vog", High, vogs, negVogs},
		{"", "conf_mean", Low, negConfs, confs},
		{"", "loss", High, losses, vogs},
		{"conventional", "conf_mean", Low, negConfs, confs},
		{"high", "conf_mean", High, confs, negConfs},
		{"high", "vog", High, vogs, negVogs},
		{"best", "vog", Low, negVogs, vogs},
		{"best", "conf_mean", Low, negConfs, confs},
		{"best", "loss", High, losses, vogs},
		{"vog=low", "vog", Low, negVogs, vogs},
		{"vog=low", "conf_mean", Low, negConfs, confs},
		{"high,conf_mean=low", "conf_mean", Low, negConfs, confs},
		{"high,conf_mean=low", "vog", High, vogs, negVogs},
		{"best,vog=high", "vog", High, vogs, negVogs},
	} {
		dirs, err := ParseDirections(c.dirs)
		if err != nil {
			t.Fatalf("%q: %v", c.dirs, err)
		}
		i, column := col(c.column)
		end := dirs.End(column, w.Hists[i])
		if end != c.end {
			t.Errorf("%q, %s: end %v, want %v", c.dirs, c.column, end, c.end)
			continue
		}
		auroc, in, out := w.Oriented(i, end)
		want := exact(c.score, c.negd)
		for k, got := range []float64{auroc, in, out} {
			if !(math.Abs(got-want[k]) < 1e-9) {
				t.Errorf("%q, %s: %s %.6f, exact %.6f", c.dirs, c.column, []string{"AUROC", "AUPR-in", "AUPR-out"}[k], got, want[k])
			}
		}
		if end != High && auroc < 0.5 {
			t.Errorf("%q, %s: AUROC %.4f from the flagging end", c.dirs, c.column, auroc)
		}
		var b strings.Builder
		if err := WriteTable(&b, windows, "noisy", dirs); err != nil {
			t.Fatal(err)
		}
		line := regexp.MustCompile(`(?m)^\s*` + c.column + ` .*$`).FindString(b.String())
		if f := strings.Fields(line); len(f) < 3 || f[1] != end.String() || f[2] != fmt.Sprintf("%.4f", want[0]) {
			t.Errorf("%q: line %q, want %s %.4f", c.dirs, line, end, want[0])
		}
	}

	for _, bad := range []string{"up", "vog=up", "nope=low", "best,high", "vog"} {
		if _, err := ParseDirections(bad); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
	if d, _ := ParseDirections("best,vog=low,loss=high"); d.String() != "per window, the end that ranks them first, AUROC at least 0.5; loss high, vog low" {
		t.Errorf("String: %q", d)
	}
}
