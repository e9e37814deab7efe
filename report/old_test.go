package report

// The report as it was before it was streamed (git history: report.go),
// kept as the reference the streamed report must reproduce.

import (
	"fmt"
	"io"
	"math"
	"sort"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"

	"github.com/vogscore/vog/job"
)

// oldWrite renders rows (one job's result) to w.
func oldWrite(w io.Writer, rows []job.ScoreRow, opts Options) error {
	if opts.Grid == 0 {
		opts.Grid = 25
	}
	if opts.MaxClasses == 0 {
		opts.MaxClasses = 10
	}
	byWindow := map[string][]job.ScoreRow{}
	for _, r := range rows {
		byWindow[r.Window] = append(byWindow[r.Window], r)
	}
	names := make([]string, 0, len(byWindow))
	for n := range byWindow {
		names = append(names, n)
	}
	sort.Strings(names)
	var sections []section
	for _, name := range names {
		s, err := oldRenderWindow(name, byWindow[name], opts)
		if err != nil {
			return err
		}
		sections = append(sections, s)
	}
	return page.Execute(w, struct {
		Title    string
		Sections []section
	}{opts.Title, sections})
}

func oldRenderWindow(name string, rows []job.ScoreRow, opts Options) (section, error) {
	s := section{Window: name, Rows: len(rows)}
	byNorm := append([]job.ScoreRow(nil), rows...)
	sort.SliceStable(byNorm, func(i, j int) bool { return byNorm[i].VoGNorm > byNorm[j].VoGNorm })
	for _, p := range []func([]job.ScoreRow) (*plot.Plot, error){oldErrorByDecilePlot, oldClassScatter, oldHistogram("vog", func(r job.ScoreRow) float64 { return r.VoG }), oldHistogram("vog_norm", func(r job.ScoreRow) float64 { return r.VoGNorm })} {
		pl, err := p(rows)
		if err != nil {
			return s, err
		}
		src, err := plotURL(pl)
		if err != nil {
			return s, err
		}
		s.Plots = append(s.Plots, figure{Src: src, Title: pl.Title.Text})
	}
	add := func(title string, rs []job.ScoreRow) error {
		g := grid{Title: title}
		for _, r := range rs {
			c := cell{ID: r.ExampleID, Label: opts.className(r.Label), Pred: opts.className(r.Pred), VoG: r.VoG, VoGNorm: r.VoGNorm}
			if opts.Image != nil {
				img, err := opts.Image(r.Index)
				if err != nil {
					return err
				}
				if c.Src, err = pngURL(img); err != nil {
					return err
				}
			}
			g.Cells = append(g.Cells, c)
		}
		s.Grids = append(s.Grids, g)
		return nil
	}
	n := min(opts.Grid, len(byNorm))
	if err := add(fmt.Sprintf("%d highest VoG (class-normalised), all classes", n), byNorm[:n]); err != nil {
		return s, err
	}
	if err := add(fmt.Sprintf("%d lowest VoG, all classes", n), oldReversed(byNorm[len(byNorm)-n:])); err != nil {
		return s, err
	}
	classes := map[int32][]job.ScoreRow{}
	for _, r := range byNorm {
		classes[r.Class] = append(classes[r.Class], r)
	}
	keys := make([]int32, 0, len(classes))
	for c := range classes {
		keys = append(keys, c)
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i] < keys[j] })
	for _, c := range keys[:min(len(keys), opts.MaxClasses)] {
		cr := classes[c]
		k := min(opts.Grid, len(cr))
		if err := add(fmt.Sprintf("class %s: %d highest VoG", opts.className(c), k), cr[:k]); err != nil {
			return s, err
		}
		if err := add(fmt.Sprintf("class %s: %d lowest VoG", opts.className(c), k), oldReversed(cr[len(cr)-k:])); err != nil {
			return s, err
		}
	}
	return s, nil
}

func oldReversed(rs []job.ScoreRow) []job.ScoreRow {
	out := make([]job.ScoreRow, len(rs))
	for i, r := range rs {
		out[len(rs)-1-i] = r
	}
	return out
}

// oldErrorByDecile returns, for each VoG decile from lowest to highest, the
// fraction of its examples the window's last checkpoint gets wrong.
func oldErrorByDecile(rows []job.ScoreRow) [10]float64 {
	byVoG := append([]job.ScoreRow(nil), rows...)
	sort.SliceStable(byVoG, func(i, j int) bool { return byVoG[i].VoG < byVoG[j].VoG })
	var out [10]float64
	for d := range 10 {
		lo, hi := d*len(byVoG)/10, (d+1)*len(byVoG)/10
		wrong := 0
		for _, r := range byVoG[lo:hi] {
			if !r.CorrectLast {
				wrong++
			}
		}
		if hi > lo {
			out[d] = float64(wrong) / float64(hi-lo)
		}
	}
	return out
}

func oldErrorByDecilePlot(rows []job.ScoreRow) (*plot.Plot, error) {
	e := oldErrorByDecile(rows)
	p := plot.New()
	p.Title.Text = "Error (1 - correct_last) by VoG decile"
	p.X.Label.Text = "VoG decile (1 = lowest)"
	p.Y.Label.Text = "error"
	bars, err := plotter.NewBarChart(plotter.Values(e[:]), vg.Points(18))
	if err != nil {
		return nil, err
	}
	p.Add(bars)
	p.NominalX("1", "2", "3", "4", "5", "6", "7", "8", "9", "10")
	return p, nil
}

func oldClassScatter(rows []job.ScoreRow) (*plot.Plot, error) {
	type agg struct{ vog, wrong, n float64 }
	byClass := map[int32]*agg{}
	for _, r := range rows {
		a := byClass[r.Class]
		if a == nil {
			a = &agg{}
			byClass[r.Class] = a
		}
		a.vog += r.VoG
		a.n++
		if !r.CorrectLast {
			a.wrong++
		}
	}
	var pts plotter.XYs
	for _, a := range byClass {
		pts = append(pts, plotter.XY{X: a.vog / a.n, Y: a.wrong / a.n})
	}
	sort.Slice(pts, func(i, j int) bool { return pts[i].X < pts[j].X })
	p := plot.New()
	p.Title.Text = "Class mean VoG against class error"
	p.X.Label.Text = "mean VoG of the class"
	p.Y.Label.Text = "class error"
	sc, err := plotter.NewScatter(pts)
	if err != nil {
		return nil, err
	}
	p.Add(sc)
	return p, nil
}

func oldHistogram(name string, get func(job.ScoreRow) float64) func([]job.ScoreRow) (*plot.Plot, error) {
	return func(rows []job.ScoreRow) (*plot.Plot, error) {
		var v plotter.Values
		for _, r := range rows {
			if x := get(r); !math.IsNaN(x) {
				v = append(v, x)
			}
		}
		p := plot.New()
		p.Title.Text = "Histogram of " + name
		p.X.Label.Text = name
		p.Y.Label.Text = "examples"
		h, err := plotter.NewHist(v, 40)
		if err != nil {
			return nil, err
		}
		p.Add(h)
		return p, nil
	}
}
