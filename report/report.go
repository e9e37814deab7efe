// Package report renders a job's result as one self-contained HTML page:
// the hardest and easiest examples overall and per class as image grids,
// test error by VoG decile, class mean VoG against class error, and score
// histograms, for every window. Plots are drawn with gonum/plot; images are
// embedded as data URIs, so the page needs nothing beside itself.
package report

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"html/template"
	"image"
	"image/png"
	"io"
	"math"
	"sort"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"

	"github.com/vogscore/vog/job"
)

// Options configures Write. Zero values mean defaults.
type Options struct {
	// Title heads the page.
	Title string
	// Grid is the number of examples in each image grid (default 25).
	Grid int
	// MaxClasses bounds the classes that get their own grids (default 10),
	// so that a 1000-class data set still makes a readable page.
	MaxClasses int
	// ClassNames names class indices where the data set has names.
	ClassNames []string
	// Image returns the picture of the example at a dataset index, as the
	// model saw it; nil leaves grids without pictures.
	Image func(index int64) (image.Image, error)
}

type cell struct {
	Src          template.URL
	ID           string
	Label, Pred  string
	VoG, VoGNorm float64
}

type grid struct {
	Title string
	Cells []cell
}

type figure struct {
	Src   template.URL
	Title string
}

type section struct {
	Window string
	Rows   int
	Plots  []figure
	Grids  []grid
}

// Write renders rows (one job's result) to w.
func Write(w io.Writer, rows []job.ScoreRow, opts Options) error {
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
		s, err := renderWindow(name, byWindow[name], opts)
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

func (o Options) className(c int32) string {
	if int(c) >= 0 && int(c) < len(o.ClassNames) {
		return o.ClassNames[c]
	}
	return fmt.Sprint(c)
}

func renderWindow(name string, rows []job.ScoreRow, opts Options) (section, error) {
	s := section{Window: name, Rows: len(rows)}
	byNorm := append([]job.ScoreRow(nil), rows...)
	sort.SliceStable(byNorm, func(i, j int) bool { return byNorm[i].VoGNorm > byNorm[j].VoGNorm })
	for _, p := range []func([]job.ScoreRow) (*plot.Plot, error){errorByDecile, classScatter, histogram("vog", func(r job.ScoreRow) float64 { return r.VoG }), histogram("vog_norm", func(r job.ScoreRow) float64 { return r.VoGNorm })} {
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
	if err := add(fmt.Sprintf("%d lowest VoG, all classes", n), reversed(byNorm[len(byNorm)-n:])); err != nil {
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
		if err := add(fmt.Sprintf("class %s: %d lowest VoG", opts.className(c), k), reversed(cr[len(cr)-k:])); err != nil {
			return s, err
		}
	}
	return s, nil
}

func reversed(rs []job.ScoreRow) []job.ScoreRow {
	out := make([]job.ScoreRow, len(rs))
	for i, r := range rs {
		out[len(rs)-1-i] = r
	}
	return out
}

// ErrorByDecile returns, for each VoG decile from lowest to highest, the
// fraction of its examples the window's last checkpoint gets wrong.
func ErrorByDecile(rows []job.ScoreRow) [10]float64 {
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

func errorByDecile(rows []job.ScoreRow) (*plot.Plot, error) {
	e := ErrorByDecile(rows)
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

func classScatter(rows []job.ScoreRow) (*plot.Plot, error) {
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

func histogram(name string, get func(job.ScoreRow) float64) func([]job.ScoreRow) (*plot.Plot, error) {
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

func plotURL(p *plot.Plot) (template.URL, error) {
	wt, err := p.WriterTo(5*vg.Inch, 3.2*vg.Inch, "png")
	if err != nil {
		return "", err
	}
	var b bytes.Buffer
	if _, err := wt.WriteTo(&b); err != nil {
		return "", err
	}
	return template.URL("data:image/png;base64," + base64.StdEncoding.EncodeToString(b.Bytes())), nil
}

func pngURL(img image.Image) (template.URL, error) {
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		return "", err
	}
	return template.URL("data:image/png;base64," + base64.StdEncoding.EncodeToString(b.Bytes())), nil
}

var page = template.Must(template.New("report").Parse(`<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{{.Title}}</title>
<style>
body{font-family:system-ui,sans-serif;margin:2em;color:#222}
h2{border-bottom:1px solid #ccc}
.plots img{width:480px;margin:4px}
.grid{display:flex;flex-wrap:wrap;gap:6px;margin-bottom:1.5em}
.cell{width:96px;font-size:11px;text-align:center}
.cell img{width:84px;height:84px;image-rendering:pixelated;border:1px solid #ddd}
.wrong{color:#b00}
</style></head><body>
<h1>{{.Title}}</h1>
<p>VoG: per pixel, the standard deviation across checkpoints of the gradient of the target logit with
respect to the input; averaged over pixels; z-scored within each class (vog_norm). Red predictions differ from the label.</p>
{{range .Sections}}
<h2 id="window-{{.Window}}">Window {{.Window}} ({{.Rows}} examples)</h2>
<div class="plots">{{range .Plots}}<img src="{{.Src}}" alt="{{.Title}}" title="{{.Title}}">{{end}}</div>
{{range .Grids}}<h3>{{.Title}}</h3><div class="grid">{{range .Cells}}
<div class="cell">{{if .Src}}<img src="{{.Src}}" alt="{{.ID}}">{{end}}<br>{{.ID}}<br>label {{.Label}}
<span{{if ne .Label .Pred}} class="wrong"{{end}}>pred {{.Pred}}</span><br>vog {{printf "%.3g" .VoG}} ({{printf "%+.2f" .VoGNorm}})</div>{{end}}
</div>{{end}}
{{end}}
</body></html>
`))
