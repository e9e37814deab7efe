package report

import (
	"bytes"
	"fmt"
	"image"
	"io"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/vogscore/vog/job"
)

// resultRows makes a result as a job writes it: examples in index order,
// each with one row per window; vog_norm is rounded so that ties are many,
// and the 14 classes come in no order, the highest first.
func resultRows(examples int, windows ...string) []job.ScoreRow {
	r := rand.New(rand.NewPCG(4, 2))
	var rows []job.ScoreRow
	for i := range examples {
		class := int32(13 - i%14)
		if i >= 14 {
			class = int32(r.IntN(14))
		}
		for w, name := range windows {
			vog := math.Exp(r.NormFloat64() + float64(w))
			rows = append(rows, job.ScoreRow{
				Index: int64(i), ExampleID: fmt.Sprintf("img/%05d.png", i), Label: class, Pred: class ^ int32(r.IntN(2)),
				Class: class, Window: name, VoG: vog, VoGNorm: math.Round(4*r.NormFloat64()) / 4,
				CorrectLast: r.Float64() > math.Min(0.9, vog/10),
			})
		}
	}
	return rows
}

// chunked scans rows in chunks of n through one reused buffer, which it
// scribbles over after each call: kept rows must not share it.
func chunked(all []job.ScoreRow, n int) Scan {
	return func(fn func([]job.ScoreRow) error) error {
		rows := all
		buf := make([]job.ScoreRow, n)
		for len(rows) > 0 {
			k := copy(buf, rows)
			if err := fn(buf[:k]); err != nil {
				return err
			}
			rows = rows[k:]
			for i := range buf {
				buf[i] = job.ScoreRow{ExampleID: "scribbled", VoGNorm: math.NaN(), Window: "all"}
			}
		}
		return nil
	}
}

// TestWriteScanAsBefore renders a two-window result in chunks and gets
// the page the report gave when it held and sorted every row, byte for
// byte: the same examples in the same order (ties included), plots and
// titles.
func TestWriteScanAsBefore(t *testing.T) {
	rows := resultRows(3000, "all", "late")
	picture := func(calls *int) func(int64) (image.Image, error) {
		return func(index int64) (image.Image, error) {
			*calls++
			g := image.NewGray(image.Rect(0, 0, 3, 3))
			for i := range g.Pix {
				g.Pix[i] = uint8(index >> (i % 3 * 8))
			}
			return g, nil
		}
	}
	for _, opts := range []Options{
		{Title: "t", ClassNames: []string{"a", "b"}},
		{Title: "small", Grid: 3, MaxClasses: 20},
		{Title: "one class", Grid: 400, MaxClasses: 1},
	} {
		var want, got bytes.Buffer
		var wantCalls, gotCalls int
		o := opts
		o.Image = picture(&wantCalls)
		if err := oldWrite(&want, rows, o); err != nil {
			t.Fatal(err)
		}
		o.Image = picture(&gotCalls)
		if err := WriteScan(&got, chunked(rows, 7), o); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got.Bytes(), want.Bytes()) || gotCalls != wantCalls {
			t.Fatalf("%s: the streamed page differs from the sorted one (%d and %d bytes, %d and %d images)",
				opts.Title, got.Len(), want.Len(), gotCalls, wantCalls)
		}
	}
}

// TestErrorByDecileBinned compares the binned deciles with those of a sort
// on more rows than the sample.
func TestErrorByDecileBinned(t *testing.T) {
	rows := resultRows(300_000, "all")
	got, want := ErrorByDecile(rows), oldErrorByDecile(rows)
	for d := range got {
		if math.Abs(got[d]-want[d]) > 1e-4 {
			t.Fatalf("binned %v\nsorted %v", got, want)
		}
	}
}

// TestWriteScanChangingRows: a scan that does not give the same rows twice
// is an error, not a wrong page.
func TestWriteScanChangingRows(t *testing.T) {
	rows := resultRows(50, "all")
	calls := 0
	scan := func(fn func([]job.ScoreRow) error) error {
		calls++
		if calls == 2 {
			return fn(resultRows(50, "other"))
		}
		return fn(rows)
	}
	if err := WriteScan(io.Discard, scan, Options{}); err == nil || !strings.Contains(err.Error(), "window other") {
		t.Fatalf("err %v", err)
	}
	calls = 0
	scan = func(fn func([]job.ScoreRow) error) error {
		calls++
		return fn(rows[:len(rows)-calls+1])
	}
	if err := WriteScan(io.Discard, scan, Options{}); err == nil || !strings.Contains(err.Error(), "50 rows in the first pass, 49 in the second") {
		t.Fatalf("err %v", err)
	}
}
