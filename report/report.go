// Package report renders a job's result as one self-contained HTML page:
// the hardest and easiest examples overall and per class as image grids,
// test error by VoG decile, class mean VoG against class error, and score
// histograms, for every window. Plots are drawn with gonum/plot; images are
// embedded as data URIs, so the page needs nothing beside itself.
package report

import (
	"bytes"
	"cmp"
	"encoding/base64"
	"fmt"
	"html/template"
	"image"
	"image/color"
	"image/png"
	"io"
	"math"
	"slices"
	"sort"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"

	"github.com/vogscore/vog/evaluate"
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

// MaxGridColumns is the most images in a row of a grid: 12 cells of 96
// pixels and their gaps fit a 1280-pixel laptop screen.
const MaxGridColumns = 12

// Cols is the number of columns the grid is laid out in (GridColumns).
func (g grid) Cols() int { return GridColumns(len(g.Cells), MaxGridColumns) }

// GridColumns returns the number of columns that lay out n images in rows
// of at most maxCols and leave the last row as full as they can: the
// fewest cells left empty over the fewest rows and the next number of rows
// (so 25 images make rows of 9, 9 and 7, not 12, 12 and 1, and 100 make
// 10 rows of 10 rather than 8 rows of 12 and one of 4); on a tie, the
// fewer rows. n <= maxCols is one row.
func GridColumns(n, maxCols int) int {
	if maxCols < 1 {
		maxCols = 1
	}
	if n <= maxCols {
		return max(n, 1)
	}
	rows := (n + maxCols - 1) / maxCols
	best, bestEmpty := 0, 0
	for r := rows; r <= rows+1; r++ {
		c := (n + r - 1) / r // the fewest columns that hold n in r rows
		if c > maxCols {
			continue
		}
		if empty := r*c - n; best == 0 || empty < bestEmpty {
			best, bestEmpty = c, empty
		}
	}
	return best
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
	return WriteScan(w, func(fn func([]job.ScoreRow) error) error { return fn(rows) }, opts)
}

// Scan visits one job's rows: it calls fn with successive chunks of them
// (jobstore.ScanScores does, part by part) and returns fn's first error.
type Scan func(fn func([]job.ScoreRow) error) error

// WriteScan renders the rows that scan visits to w, in memory that does not
// depend on their number: it scans twice (the same rows both times) and
// keeps, per window, the rows of the grids (top-k heaps), per-class sums, a
// VoG sample and fixed-size histograms, never the rows themselves. Images
// are read for the examples shown only.
//
// Grids rank by vog_norm; ties go to the lower index, then to the row seen
// first, and a "lowest" grid is the bottom of that same ranking read
// upwards: what a stable sort of the rows in index order gives. Error by
// decile is computed from VoG bins (ErrorByDecile).
func WriteScan(w io.Writer, scan Scan, opts Options) error {
	if opts.Grid == 0 {
		opts.Grid = 25
	}
	if opts.MaxClasses == 0 {
		opts.MaxClasses = 10
	}
	windows := map[string]*window{}
	var last *window
	at := func(name string) *window {
		if last != nil && last.name == name {
			return last
		}
		if last = windows[name]; last == nil {
			last = newWindow(strings.Clone(name), opts)
			windows[last.name] = last
		}
		return last
	}
	err := scan(func(rows []job.ScoreRow) error {
		for i := range rows {
			at(rows[i].Window).first(&rows[i])
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, w := range windows {
		w.startSecond()
	}
	last = nil
	err = scan(func(rows []job.ScoreRow) error {
		for i := range rows {
			w := at(rows[i].Window)
			if w.decile == nil {
				return fmt.Errorf("report: window %s: not in the first pass over the rows", w.name)
			}
			w.second(&rows[i])
		}
		return nil
	})
	if err != nil {
		return err
	}
	names := make([]string, 0, len(windows))
	for n := range windows {
		names = append(names, n)
	}
	sort.Strings(names)
	var sections []section
	for _, name := range names {
		s, err := windows[name].render(opts)
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

// window gathers what the page shows of one window, in two passes.
type window struct {
	name       string
	maxClasses int
	n          int64 // rows seen in the first pass
	hard, easy *topK // all classes
	classes    map[int32]*classSums
	// grids holds the heaps of the maxClasses lowest classes seen so far;
	// gridMax is the highest of them.
	grids   map[int32]*[2]*topK
	gridMax int32
	// First pass: the ranges of the histograms and a VoG sample; second:
	// the histograms and the VoG bins.
	vogHist, normHist linearHist
	sample            *evaluate.Sampler
	decile            *evaluate.Hist
	n2                int64 // rows seen in the second pass
}

type classSums struct{ vog, wrong, n float64 }

func newWindow(name string, opts Options) *window {
	return &window{
		name: name, maxClasses: opts.MaxClasses,
		hard: newTopK(opts.Grid, hardest), easy: newTopK(opts.Grid, easiest),
		classes: map[int32]*classSums{}, grids: map[int32]*[2]*topK{},
		vogHist: newLinearHist(), normHist: newLinearHist(),
		sample: evaluate.NewSampler(0),
	}
}

func (w *window) first(r *job.ScoreRow) {
	seq := w.n
	w.n++
	w.hard.offer(r, seq)
	w.easy.offer(r, seq)
	a := w.classes[r.Class]
	if a == nil {
		a = &classSums{}
		w.classes[r.Class] = a
	}
	a.vog += r.VoG
	a.n++
	if !r.CorrectLast {
		a.wrong++
	}
	if g := w.gridsOf(r.Class); g != nil {
		g[0].offer(r, seq)
		g[1].offer(r, seq)
	}
	w.vogHist.see(r.VoG)
	w.normHist.see(r.VoGNorm)
	w.sample.Add(r.VoG)
}

// gridsOf returns the heaps of class c, or nil where c is not among the
// maxClasses lowest classes seen.
func (w *window) gridsOf(c int32) *[2]*topK {
	if g := w.grids[c]; g != nil || w.maxClasses <= 0 {
		return g
	}
	if len(w.grids) >= w.maxClasses {
		if c > w.gridMax {
			return nil
		}
		delete(w.grids, w.gridMax) // it can come back no more: maxClasses lower classes are in
	}
	g := &[2]*topK{newTopK(w.hard.k, hardest), newTopK(w.hard.k, easiest)}
	w.grids[c] = g
	w.gridMax = c
	for k := range w.grids {
		w.gridMax = max(w.gridMax, k)
	}
	return g
}

func (w *window) startSecond() {
	w.vogHist.start()
	w.normHist.start()
	w.decile = evaluate.NewHist(w.sample.Bins())
	w.sample = nil
}

func (w *window) second(r *job.ScoreRow) {
	w.n2++
	w.vogHist.add(r.VoG)
	w.normHist.add(r.VoGNorm)
	w.decile.Add(r.VoG, !r.CorrectLast)
}

func (w *window) render(opts Options) (section, error) {
	s := section{Window: w.name, Rows: int(w.n)}
	if w.n2 != w.n {
		return s, fmt.Errorf("report: window %s: %d rows in the first pass, %d in the second", w.name, w.n, w.n2)
	}
	plots := []func() (*plot.Plot, error){
		func() (*plot.Plot, error) { return errorByDecile(w.decile) },
		func() (*plot.Plot, error) { return classScatter(w.classes) },
		func() (*plot.Plot, error) { return w.vogHist.plot("vog") },
		func() (*plot.Plot, error) { return w.normHist.plot("vog_norm") },
	}
	for _, p := range plots {
		pl, err := p()
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
	hard, easy := w.hard.sorted(), w.easy.sorted()
	if err := add(fmt.Sprintf("%d highest VoG (class-normalised), all classes", len(hard)), hard); err != nil {
		return s, err
	}
	if err := add(fmt.Sprintf("%d lowest VoG, all classes", len(easy)), easy); err != nil {
		return s, err
	}
	keys := make([]int32, 0, len(w.grids))
	for c := range w.grids {
		keys = append(keys, c)
	}
	slices.Sort(keys)
	for _, c := range keys {
		hard, easy := w.grids[c][0].sorted(), w.grids[c][1].sorted()
		if err := add(fmt.Sprintf("class %s: %d highest VoG", opts.className(c), len(hard)), hard); err != nil {
			return s, err
		}
		if err := add(fmt.Sprintf("class %s: %d lowest VoG", opts.className(c), len(easy)), easy); err != nil {
			return s, err
		}
	}
	return s, nil
}

// ranked is a row kept by a topK, with its position in the scan.
type ranked struct {
	row job.ScoreRow
	seq int64
}

// hardest ranks by vog_norm, highest first, then lower index, then the row
// seen first.
func hardest(a, b *job.ScoreRow, aSeq, bSeq int64) int {
	if c := cmp.Compare(b.VoGNorm, a.VoGNorm); c != 0 {
		return c
	}
	if c := cmp.Compare(a.Index, b.Index); c != 0 {
		return c
	}
	return cmp.Compare(aSeq, bSeq)
}

// easiest is hardest reversed: the bottom of that ranking, read upwards.
func easiest(a, b *job.ScoreRow, aSeq, bSeq int64) int {
	return hardest(b, a, bSeq, aSeq)
}

// topK keeps the k first rows of a ranking: a heap with the last kept row
// at its root.
type topK struct {
	k     int
	rank  func(a, b *job.ScoreRow, aSeq, bSeq int64) int
	items []ranked
}

func newTopK(k int, rank func(a, b *job.ScoreRow, aSeq, bSeq int64) int) *topK {
	return &topK{k: k, rank: rank}
}

// after reports whether item i ranks after item j.
func (t *topK) after(i, j int) bool {
	return t.rank(&t.items[i].row, &t.items[j].row, t.items[i].seq, t.items[j].seq) > 0
}

func (t *topK) offer(r *job.ScoreRow, seq int64) {
	if t.k <= 0 {
		return
	}
	if len(t.items) == t.k {
		if t.rank(r, &t.items[0].row, seq, t.items[0].seq) >= 0 {
			return
		}
		t.items[0] = keep(r, seq)
		t.down(0)
		return
	}
	t.items = append(t.items, keep(r, seq))
	for i := len(t.items) - 1; i > 0; {
		p := (i - 1) / 2
		if !t.after(i, p) {
			break
		}
		t.items[i], t.items[p] = t.items[p], t.items[i]
		i = p
	}
}

func (t *topK) down(i int) {
	for {
		c := 2*i + 1
		if c >= len(t.items) {
			return
		}
		if c+1 < len(t.items) && t.after(c+1, c) {
			c++
		}
		if !t.after(c, i) {
			return
		}
		t.items[i], t.items[c] = t.items[c], t.items[i]
		i = c
	}
}

// keep copies a row to be kept: its example id gets its own memory, so that
// a kept row holds nothing of the chunk it came from.
func keep(r *job.ScoreRow, seq int64) ranked {
	k := ranked{row: *r, seq: seq}
	k.row.ExampleID = strings.Clone(r.ExampleID)
	k.row.Window = ""
	return k
}

// sorted returns the kept rows in ranking order.
func (t *topK) sorted() []job.ScoreRow {
	items := slices.Clone(t.items)
	slices.SortFunc(items, func(a, b ranked) int { return t.rank(&a.row, &b.row, a.seq, b.seq) })
	out := make([]job.ScoreRow, len(items))
	for i, it := range items {
		out[i] = it.row
	}
	return out
}

// ErrorByDecile returns, for each VoG decile from lowest to highest, the
// fraction of its examples the window's last checkpoint gets wrong. Rows
// with a NaN VoG are left out.
//
// It bins VoG as evaluate.Hist does (2^16+1 bins or more, at the quantiles
// of a sample of 2^15 values, each sampled value a bin of its own) and
// splits a bin that straddles two deciles in proportion. That is exact
// where every value has a bin of its own (up to 2^15 rows) and no tie
// straddles a decile boundary. Otherwise only the rows of the bin at either
// end of a decile, about n/2^15 each against the decile's n/10, can be
// misplaced, and only the difference of their error from the bin's counts:
// the error rates were off by 1e-5 to 4e-5 on 300,000 and 1.28 M rows
// (TestErrorByDecileBinned asserts 1e-4); a bar of the plot is a few
// hundred pixels high.
func ErrorByDecile(rows []job.ScoreRow) [10]float64 {
	s := evaluate.NewSampler(0)
	for _, r := range rows {
		s.Add(r.VoG)
	}
	h := evaluate.NewHist(s.Bins())
	for _, r := range rows {
		h.Add(r.VoG, !r.CorrectLast)
	}
	var out [10]float64
	copy(out[:], h.PosRateByQuantile(10))
	return out
}

func errorByDecile(h *evaluate.Hist) (*plot.Plot, error) {
	e := h.PosRateByQuantile(10)
	p := plot.New()
	p.Title.Text = "Error (1 - correct_last) by VoG decile"
	p.X.Label.Text = "VoG decile (1 = lowest)"
	p.Y.Label.Text = "error"
	bars, err := plotter.NewBarChart(plotter.Values(e), vg.Points(18))
	if err != nil {
		return nil, err
	}
	p.Add(bars)
	p.NominalX("1", "2", "3", "4", "5", "6", "7", "8", "9", "10")
	return p, nil
}

func classScatter(classes map[int32]*classSums) (*plot.Plot, error) {
	var pts plotter.XYs
	for _, a := range classes {
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

// histBins is the number of bins of the score histograms.
const histBins = 40

// linearHist is plotter.NewHist's histogram of the finite values of a
// score, built in two passes: their range, then the counts. Its bins are
// those plotter.NewHist computes.
type linearHist struct {
	min, max float64
	bins     []plotter.HistogramBin
	width    float64
}

func newLinearHist() linearHist { return linearHist{min: math.Inf(1), max: math.Inf(-1)} }

func (h *linearHist) see(x float64) {
	if !math.IsNaN(x) && !math.IsInf(x, 0) {
		h.min, h.max = math.Min(h.min, x), math.Max(h.max, x)
	}
}

// start makes the bins, as plotter's binPoints does.
func (h *linearHist) start() {
	n := histBins
	if h.max <= h.min {
		n = 1
	}
	h.bins = make([]plotter.HistogramBin, n)
	w := (h.max - h.min) / float64(n)
	if w == 0 {
		w = 1
	}
	for i := range h.bins {
		h.bins[i].Min = h.min + float64(i)*w
		h.bins[i].Max = h.min + float64(i+1)*w
	}
	h.width = w
}

func (h *linearHist) add(x float64) {
	if math.IsNaN(x) || math.IsInf(x, 0) {
		return
	}
	n := len(h.bins)
	bin := int((x - h.min) / h.width)
	if x == h.max {
		bin = n - 1
	}
	h.bins[max(0, min(bin, n-1))].Weight++
}

func (h *linearHist) plot(name string) (*plot.Plot, error) {
	p := plot.New()
	p.Title.Text = "Histogram of " + name
	p.X.Label.Text = name
	p.Y.Label.Text = "examples"
	p.Add(&plotter.Histogram{Bins: h.bins, Width: h.width, FillColor: color.Gray{128}, LineStyle: plotter.DefaultLineStyle})
	return p, nil
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
.grid{display:grid;gap:6px;margin-bottom:1.5em;justify-content:start}
.cell{font-size:11px;text-align:center;overflow-wrap:anywhere}
.cell img{width:84px;max-width:100%;height:auto;aspect-ratio:1;object-fit:contain;image-rendering:pixelated;border:1px solid #ddd}
.wrong{color:#b00}
</style></head><body>
<h1>{{.Title}}</h1>
<p>VoG: per pixel, the standard deviation across checkpoints of the gradient of the target logit with
respect to the input; averaged over pixels; z-scored within each class (vog_norm). Red predictions differ from the label.</p>
{{range .Sections}}
<h2 id="window-{{.Window}}">Window {{.Window}} ({{.Rows}} examples)</h2>
<div class="plots">{{range .Plots}}<img src="{{.Src}}" alt="{{.Title}}" title="{{.Title}}">{{end}}</div>
{{range .Grids}}<h3>{{.Title}}</h3><div class="grid" style="grid-template-columns:repeat({{.Cols}},minmax(0,96px))">{{range .Cells}}
<div class="cell">{{if .Src}}<img src="{{.Src}}" alt="{{.ID}}">{{end}}<br>{{.ID}}<br>label {{.Label}}
<span{{if ne .Label .Pred}} class="wrong"{{end}}>pred {{.Pred}}</span><br>vog {{printf "%.3g" .VoG}} ({{printf "%+.2f" .VoGNorm}})</div>{{end}}
</div>{{end}}
{{end}}
</body></html>
`))
