package main

import (
	"context"
	"fmt"
	"hash/maphash"
	"math"
	"math/bits"
	"os"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/vogscore/vog/evaluate"
	"github.com/vogscore/vog/job"
	"github.com/vogscore/vog/jobstore"
	"github.com/vogscore/vog/location"
	"github.com/vogscore/vog/storage"
)

// scoreColumns are the result's score columns that eval ranks by, in the
// order it prints them: a new score column is one more entry here.
var scoreColumns = []struct {
	name string
	get  func(*job.ScoreRow) float64
}{
	{"vog", func(r *job.ScoreRow) float64 { return r.VoG }},
	{"vog_norm", func(r *job.ScoreRow) float64 { return r.VoGNorm }},
	{"abs_vog_norm", func(r *job.ScoreRow) float64 { return r.AbsVoGNorm }},
	{"loss", func(r *job.ScoreRow) float64 { return r.Loss }},
	{"conf_mean", func(r *job.ScoreRow) float64 { return r.ConfMean }},
	{"conf_std", func(r *job.ScoreRow) float64 { return r.ConfStd }},
	{"margin_mean", func(r *job.ScoreRow) float64 { return r.MarginMean }},
	{"el2n", func(r *job.ScoreRow) float64 { return r.EL2N }},
	{"forgetting", func(r *job.ScoreRow) float64 { return float64(r.Forgetting) }},
	{"grad_norm", func(r *job.ScoreRow) float64 { return r.GradNorm }},
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
	truth, err := readTruth(ctx, *truthURL, *column)
	if err != nil {
		return err
	}
	windows, err := evalScan(ctx, truth, func(fn func([]job.ScoreRow) error) error { return jobstore.ScanScores(ctx, *out, fn) })
	if err != nil {
		return err
	}
	for _, w := range windows {
		fmt.Printf("\nwindow %s: %d examples, %d flagged %s\n", w.name, w.n, w.npos, truth.name)
		tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(tw, "score\tAUROC\tAUPR-in\tAUPR-out\tflagged mean ± std\tothers mean ± std\tWelch t\tp\t")
		for i, c := range scoreColumns {
			h := w.hists[i]
			t := evaluate.WelchMoments(w.flagged[i], w.others[i])
			p := fmt.Sprintf("%.3g", t.P)
			if t.P == 0 {
				p = "<1e-300" // below what a float64 holds
			}
			fmt.Fprintf(tw, "%s\t%.4f\t%.4f\t%.4f\t%s\t%s\t%.2f\t%s\t\n", c.name, h.AUROC(), h.AveragePrecision(), h.AveragePrecisionNeg(),
				meanStd(w.flagged[i]), meanStd(w.others[i]), t.T, p)
		}
		tw.Flush()
	}
	fmt.Println("\nAUROC above 0.5: the score ranks flagged examples higher; below 0.5: lower. AUPR-in treats flagged")
	fmt.Println("examples as positives ranked by the score; AUPR-out treats the others as positives ranked by its negation.")
	fmt.Println("mean ± std: of the score over either group (std with n-1; NaN scores left out, as by the AUROC), the")
	fmt.Println("figures the paper reports; Welch's t-test of the two means (two-sided p; t > 0: flagged higher).")
	return nil
}

// evalWindow is what eval measures of one window: per score column, a
// histogram of flagged and other examples (evaluate.Hist: AUROC and average
// precision to about 1e-6, exact up to 2^15 examples), and the running
// moments of the flagged and the other examples' scores (their mean ± std
// and Welch's t-test).
type evalWindow struct {
	name            string
	n, npos         int64
	samplers        []*evaluate.Sampler // first pass
	hists           []*evaluate.Hist    // second pass
	n2              int64
	flagged, others []evaluate.Moments // per score column
}

// meanStd formats a group's mean ± std (n-1).
func meanStd(m evaluate.Moments) string {
	if m.N() < 2 {
		return fmt.Sprintf("%.4g (n=%.0f)", m.Mean(), m.N())
	}
	return fmt.Sprintf("%.4g ± %.3g", m.Mean(), math.Sqrt(m.Variance()))
}

// evalScan measures every window of the rows that scan visits (twice, the
// same rows each time) against truth, in memory that does not depend on the
// number of rows: rows whose example is not in truth are left out, and an
// example of truth that no row has is an error naming it. Windows come in
// name order.
func evalScan(ctx context.Context, truth *truthSet, scan func(func([]job.ScoreRow) error) error) ([]*evalWindow, error) {
	byName := map[string]*evalWindow{}
	var last *evalWindow
	at := func(name string) *evalWindow {
		if last == nil || last.name != name {
			if last = byName[name]; last == nil {
				last = &evalWindow{name: strings.Clone(name),
					flagged: make([]evaluate.Moments, len(scoreColumns)), others: make([]evaluate.Moments, len(scoreColumns))}
				for range scoreColumns {
					last.samplers = append(last.samplers, evaluate.NewSampler(0))
				}
				byName[last.name] = last
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
			w.n++
			group := w.others
			if flag {
				w.npos++
				group = w.flagged
			}
			for c, col := range scoreColumns {
				v := col.get(r)
				w.samplers[c].Add(v)
				group[c].Add(v)
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if missing := truth.unseen(); missing > 0 {
		id, err := truth.firstUnseen(ctx)
		if err != nil {
			return nil, err
		}
		return nil, fmt.Errorf("--truth %s: %d of its example ids are not in the result, %q for one", truth.url, missing, id)
	}
	windows := make([]*evalWindow, 0, len(byName))
	for _, w := range byName {
		for _, s := range w.samplers {
			w.hists = append(w.hists, evaluate.NewHist(s.Bins()))
		}
		w.samplers = nil
		windows = append(windows, w)
	}
	slices.SortFunc(windows, func(a, b *evalWindow) int { return strings.Compare(a.name, b.name) })
	// Second pass: the histograms, a score at a time over a chunk, which
	// keeps one histogram's bins in cache.
	last = nil
	var (
		in    []int // the chunk's rows in truth
		ws    []*evalWindow
		flags []bool
	)
	err = scan(func(rows []job.ScoreRow) error {
		in, ws, flags = in[:0], ws[:0], flags[:0]
		for i := range rows {
			r := &rows[i]
			flag, ok := truth.lookup(r.ExampleID)
			if !ok {
				continue
			}
			w := at(r.Window)
			if w.hists == nil {
				return fmt.Errorf("window %s: not in the first pass over the rows", r.Window)
			}
			w.n2++
			in, ws, flags = append(in, i), append(ws, w), append(flags, flag)
		}
		for c, col := range scoreColumns {
			for k, i := range in {
				ws[k].hists[c].Add(col.get(&rows[i]), flags[k])
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	for _, w := range windows {
		if w.n2 != w.n {
			return nil, fmt.Errorf("window %s: %d rows in the first pass over the rows, %d in the second", w.name, w.n, w.n2)
		}
	}
	return windows, nil
}

// truthSet is a truth file's flags, kept compactly for files of millions of
// ids: an id is known by a 63-bit hash of it, kept with its flag in the
// lowest bit in a slice sorted by hash, which a directory of the hashes'
// leading bits cuts into buckets of about 4 (9 bytes per id in all, against
// about 100 for a map[string]bool); a bit per id records whether a row had
// it. Two ids with the same hash would be taken for one, with a chance of
// about ids*rows/2^63 per run (under 1e-6 for 1.28 M ids and rows): the
// hash has a seed drawn per process, so such a collision does not repeat.
// The ids themselves are read again from the file only to name a missing
// one.
type truthSet struct {
	url, column string
	name        string // the flag column's name
	seed        maphash.Seed
	entries     []uint64 // hash<<1 | flag, by hash, one per id
	// Bucket b, the hashes whose leading bits are b, is
	// entries[starts[b]:starts[b+1]].
	starts []uint32
	shift  uint
	seen   []uint64 // bit i: a row had the id of entries[i]
}

// readTruth reads example_id and a boolean column from a CSV file. An id
// given more than once takes its last flag.
func readTruth(ctx context.Context, raw, column string) (*truthSet, error) {
	t := &truthSet{url: raw, column: column, seed: maphash.MakeSeed()}
	var lines []uint64 // in file order
	name, err := scanTruth(ctx, raw, column, func(id string, flag bool) bool {
		e := t.hash(id) << 1
		if flag {
			e |= 1
		}
		lines = append(lines, e)
		return true
	})
	if err != nil {
		return nil, err
	}
	if len(lines) > math.MaxUint32 {
		return nil, fmt.Errorf("--truth %s: more than %d lines", raw, uint32(math.MaxUint32))
	}
	t.name = name
	// A counting sort by bucket keeps the file order within a bucket; an
	// insertion sort by hash, stable too, finishes it: of an id's lines,
	// the last comes last.
	t.setBuckets(len(lines))
	t.count(lines)
	t.entries = make([]uint64, len(lines))
	next := slices.Clone(t.starts)
	for _, e := range lines {
		b := t.bucket(e >> 1)
		t.entries[next[b]] = e
		next[b]++
	}
	lines = nil
	for b := range len(t.starts) - 1 {
		bucket := t.entries[t.starts[b]:t.starts[b+1]]
		for i := 1; i < len(bucket); i++ {
			for j := i; j > 0 && bucket[j-1]>>1 > bucket[j]>>1; j-- {
				bucket[j-1], bucket[j] = bucket[j], bucket[j-1]
			}
		}
	}
	kept := t.entries[:0]
	for i, e := range t.entries {
		if i+1 < len(t.entries) && t.entries[i+1]>>1 == e>>1 {
			continue
		}
		kept = append(kept, e)
	}
	t.entries = slices.Clip(kept)
	t.count(t.entries) // the directory of what is left
	t.seen = make([]uint64, (len(t.entries)+63)/64)
	return t, nil
}

// setBuckets sizes the directory for n ids: a power of two buckets, about
// n/4.
func (t *truthSet) setBuckets(n int) {
	k := bits.Len(uint(n / 4))
	t.shift = uint(63 - k)
	t.starts = make([]uint32, 1<<k+1)
}

// count sets the directory to the buckets of entries.
func (t *truthSet) count(entries []uint64) {
	clear(t.starts)
	for _, e := range entries {
		t.starts[t.bucket(e>>1)+1]++
	}
	for b := 1; b < len(t.starts); b++ {
		t.starts[b] += t.starts[b-1]
	}
}

// bucket returns the bucket of hash h.
func (t *truthSet) bucket(h uint64) uint64 { return h >> t.shift }

// hash is the id's 63-bit hash.
func (t *truthSet) hash(id string) uint64 { return maphash.String(t.seed, id) >> 1 }

func (t *truthSet) find(id string) (int, bool) {
	h := t.hash(id)
	b := t.bucket(h)
	for i := t.starts[b]; i < t.starts[b+1]; i++ {
		if t.entries[i]>>1 == h {
			return int(i), true
		}
	}
	return 0, false
}

// lookup returns the flag of id, and whether the truth file has it.
func (t *truthSet) lookup(id string) (flag, ok bool) {
	i, ok := t.find(id)
	return ok && t.entries[i]&1 == 1, ok
}

// mark is lookup, and records that a row had id.
func (t *truthSet) mark(id string) (flag, ok bool) {
	i, ok := t.find(id)
	if !ok {
		return false, false
	}
	t.seen[i/64] |= 1 << (i % 64)
	return t.entries[i]&1 == 1, true
}

// unseen returns the number of ids no row had.
func (t *truthSet) unseen() int {
	n := len(t.entries)
	for _, w := range t.seen {
		n -= bits.OnesCount64(w)
	}
	return n
}

// firstUnseen reads the truth file again for the first id no row had.
func (t *truthSet) firstUnseen(ctx context.Context) (string, error) {
	var found string
	_, err := scanTruth(ctx, t.url, t.column, func(id string, _ bool) bool {
		if i, ok := t.find(id); ok && t.seen[i/64]&(1<<(i%64)) == 0 {
			found = id
			return false
		}
		return true
	})
	return found, err
}

// scanTruth reads the truth CSV at raw (evaluate.ReadTruth), calling fn
// with the example_id and the flag of each line until fn returns false; it
// returns the flag column's name.
func scanTruth(ctx context.Context, raw, column string, fn func(id string, flag bool) bool) (string, error) {
	l, err := location.Parse(raw)
	if err != nil {
		return "", fmt.Errorf("--truth: %w", err)
	}
	b, err := storage.Open(ctx, l)
	if err != nil {
		return "", fmt.Errorf("--truth: %w", err)
	}
	defer b.Close()
	rd, err := b.NewReader(ctx, l.Key, nil)
	if err != nil {
		return "", fmt.Errorf("--truth %s: %w", raw, err)
	}
	defer rd.Close()
	name, err := evaluate.ReadTruth(rd, column, fn)
	if err != nil {
		return "", fmt.Errorf("--truth %s: %w", raw, err)
	}
	return name, nil
}
