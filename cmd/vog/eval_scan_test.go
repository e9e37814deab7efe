package main

import (
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gonum.org/v1/gonum/stat"

	"github.com/vogscore/vog/evaluate"
	"github.com/vogscore/vog/job"
	"github.com/vogscore/vog/score"
)

// scanOf visits rows in chunks of n through one reused buffer.
func scanOf(rows []job.ScoreRow, n int) func(func([]job.ScoreRow) error) error {
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

func writeTruth(t *testing.T, lines []string) string {
	p := filepath.Join(t.TempDir(), "truth.csv")
	if err := os.WriteFile(p, []byte("example_id,noisy\n"+strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestEvalScan checks the streamed measures against the exact functions on
// the rows in the truth file, with more rows than the histograms' sample.
func TestEvalScan(t *testing.T) {
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
	truth, err := readTruth(t.Context(), writeTruth(t, lines), "")
	if err != nil {
		t.Fatal(err)
	}
	if len(truth.entries) != len(flags) || truth.name != "noisy" {
		t.Fatalf("%d ids, column %q", len(truth.entries), truth.name)
	}
	windows, err := evalScan(t.Context(), truth, scanOf(rows, 1000))
	if err != nil {
		t.Fatal(err)
	}
	if len(windows) != 2 || windows[0].name != "all" || windows[1].name != "late" {
		t.Fatalf("windows %v", windows)
	}
	for _, w := range windows {
		var in []job.ScoreRow
		var pos, notPos []bool
		npos := 0
		for _, row := range rows {
			flag, ok := flags[row.ExampleID]
			if row.Window != w.name || !ok {
				continue
			}
			in, pos, notPos = append(in, row), append(pos, flag), append(notPos, !flag)
			if flag {
				npos++
			}
		}
		if w.n != int64(len(in)) || w.npos != int64(npos) {
			t.Fatalf("window %s: %d examples, %d flagged; want %d, %d", w.name, w.n, w.npos, len(in), npos)
		}
		for c, col := range scoreColumns {
			s, neg := make([]float64, len(in)), make([]float64, len(in))
			var a, b []float64 // the flagged and the other examples' finite scores
			for i := range in {
				s[i] = col.get(&in[i])
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
			h := w.hists[c]
			for _, m := range [][3]any{
				{"AUROC", h.AUROC(), evaluate.AUROC(s, pos)},
				{"AUPR-in", h.AveragePrecision(), evaluate.AveragePrecision(s, pos)},
				{"AUPR-out", h.AveragePrecisionNeg(), evaluate.AveragePrecision(neg, notPos)},
			} {
				if d := math.Abs(m[1].(float64) - m[2].(float64)); !(d < 1e-5) {
					t.Errorf("window %s, %s: %s %.6f, exact %.6f", w.name, col.name, m[0], m[1], m[2])
				}
			}
			// The groups' mean ± std and Welch's test, against gonum on
			// the scores themselves.
			for g, m := range map[string]struct {
				got  score.Moments
				vals []float64
			}{"flagged": {w.flagged[c], a}, "others": {w.others[c], b}} {
				mean, std := stat.MeanStdDev(m.vals, nil)
				if m.got.N != int64(len(m.vals)) || !near(m.got.Mean, mean, 1e-12) || !near(math.Sqrt(m.got.SampleVar()), std, 1e-9) {
					t.Errorf("window %s, %s, %s: n %v, %v ± %v; want %d, %v ± %v", w.name, col.name, g,
						m.got.N, m.got.Mean, math.Sqrt(m.got.SampleVar()), len(m.vals), mean, std)
				}
				if want := fmt.Sprintf("%.4g ± %.3g", mean, std); meanStd(m.got) != want {
					t.Errorf("window %s, %s, %s: printed %q, want %q", w.name, col.name, g, meanStd(m.got), want)
				}
			}
			got, want := evaluate.WelchMoments(w.flagged[c], w.others[c]), evaluate.WelchT(a, b)
			if !near(got.T, want.T, 1e-9) || math.Abs(got.P-want.P) > 1e-9 {
				t.Errorf("window %s, %s: Welch %+v, want %+v", w.name, col.name, got, want)
			}
		}
	}

	// An id no row has is an error that names it (the first in the file).
	lines = append(lines, "train/999999.jpg,1", "nope,0")
	truth, err = readTruth(t.Context(), writeTruth(t, lines), "noisy")
	if err != nil {
		t.Fatal(err)
	}
	_, err = evalScan(t.Context(), truth, scanOf(rows, 1000))
	if err == nil || !strings.Contains(err.Error(), `2 of its example ids are not in the result, "train/999999.jpg" for one`) {
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
		truth, err := readTruth(t.Context(), writeTruth(t, lines), "")
		if err != nil {
			t.Fatal(err)
		}
		if len(truth.entries) != n {
			t.Fatalf("%d ids: %d entries", n, len(truth.entries))
		}
		for i := range n {
			id := fmt.Sprintf("x%d", i*7)
			if flag, ok := truth.lookup(id); !ok || flag != want[id] {
				t.Fatalf("%d ids: %s: %v %v, want %v", n, id, flag, ok, want[id])
			}
			if _, ok := truth.lookup(fmt.Sprintf("x%d", i*7+1)); ok {
				t.Fatalf("%d ids: x%d found", n, i*7+1)
			}
		}
	}
}
