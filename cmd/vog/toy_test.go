package main_test

import (
	"encoding/csv"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"testing"

	"gonum.org/v1/gonum/stat"
	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
)

// ranks returns the ranks of xs, ties sharing their mean rank.
func ranks(xs []float64) []float64 {
	idx := make([]int, len(xs))
	for i := range idx {
		idx[i] = i
	}
	sort.Slice(idx, func(a, b int) bool { return xs[idx[a]] < xs[idx[b]] })
	r := make([]float64, len(xs))
	for i := 0; i < len(idx); {
		j := i
		for j < len(idx) && xs[idx[j]] == xs[idx[i]] {
			j++
		}
		for k := i; k < j; k++ {
			r[idx[k]] = float64(i+j+1) / 2
		}
		i = j
	}
	return r
}

// spearman is the Pearson correlation of ranks.
func spearman(a, b []float64) float64 { return stat.Correlation(ranks(a), ranks(b), nil) }

// TestToyExperiment runs the paper's toy experiment: two Gaussian clusters,
// an MLP of 10 hidden units trained 15 epochs with SGD (examples/toy/toy.py,
// Debian's PyTorch), scored by vog over its 15 checkpoints. vog's VoG must
// equal toy.py's own computation; the Spearman correlations of VoG with the
// distance to the learned decision boundary are measured and logged, not
// assumed (docs/toy.md records them). VOG_UPDATE_DOCS=1 redraws docs/toy.png.
func TestToyExperiment(t *testing.T) {
	vog(t)
	dir := t.TempDir()
	if out, err := exec.Command("/usr/bin/python3", "../../examples/toy/toy.py", dir).CombinedOutput(); err != nil {
		if os.Getenv("VOG_REQUIRE_TORCH") != "" {
			t.Fatalf("toy.py: %v\n%s", err, out)
		}
		t.Skipf("toy.py needs Debian's python3-torch: %v", err)
	}
	out := t.TempDir()
	r := runVog(t, "run", "--format", "idx", "--dataset", filepath.Join(dir, "toy"), "--checkpoints", filepath.Join(dir, "ckpt"),
		"--out", out, "--state-dir", t.TempDir())
	if r.err != nil {
		t.Fatalf("%v\n%s", r.err, r.stderr)
	}
	rows := readRows(t, out)
	f, err := os.Open(filepath.Join(dir, "distance.csv"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	recs, err := csv.NewReader(f).ReadAll()
	if err != nil || len(recs) != len(rows)+1 {
		t.Fatalf("distance.csv: %d records for %d rows, %v", len(recs), len(rows), err)
	}
	vogs, dists, soft := make([]float64, len(rows)), make([]float64, len(rows)), make([]float64, len(rows))
	byClass := map[int32][2][]float64{}
	for i, row := range rows {
		if recs[i+1][0] != row.ExampleID {
			t.Fatalf("distance.csv line %d is example %s, row is %s", i+2, recs[i+1][0], row.ExampleID)
		}
		vogs[i] = row.VoG
		dists[i], _ = strconv.ParseFloat(recs[i+1][1], 64)
		want, _ := strconv.ParseFloat(recs[i+1][3], 64)
		soft[i], _ = strconv.ParseFloat(recs[i+1][4], 64)
		if rel(row.VoG, want) > 1e-5 {
			t.Fatalf("example %s: VoG %g, toy.py's %g", row.ExampleID, row.VoG, want)
		}
		c := byClass[row.Label]
		byClass[row.Label] = [2][]float64{append(c[0], row.VoG), append(c[1], dists[i])}
	}
	rho := spearman(vogs, dists)
	t.Logf("Spearman of VoG (pre-softmax logit) with the distance to the boundary: %.3f over %d points; class 0: %.3f, class 1: %.3f",
		rho, len(rows), spearman(byClass[0][0], byClass[0][1]), spearman(byClass[1][0], byClass[1][1]))
	t.Logf("Spearman of VoG of the softmax probability (toy.py) with the distance: %.3f", spearman(soft, dists))
	if os.Getenv("VOG_UPDATE_DOCS") != "" {
		p := plot.New()
		p.Title.Text = "Toy: VoG (logit) against distance to the boundary, Spearman " + strconv.FormatFloat(rho, 'f', 2, 64)
		p.X.Label.Text = "distance to the last checkpoint's decision boundary"
		p.Y.Label.Text = "VoG over 15 epochs"
		pts := make(plotter.XYs, len(rows))
		for i := range rows {
			pts[i] = plotter.XY{X: dists[i], Y: vogs[i]}
		}
		sc, _ := plotter.NewScatter(pts)
		sc.GlyphStyle.Radius = vg.Points(1.5)
		p.Add(sc)
		if err := p.Save(7*vg.Inch, 4*vg.Inch, "../../docs/toy.png"); err != nil {
			t.Fatal(err)
		}
	}
}
