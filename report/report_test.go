package report

import (
	"bytes"
	"image"
	"slices"
	"strings"
	"testing"

	"github.com/vogscore/vog/job"
)

func TestErrorByDecile(t *testing.T) {
	// 20 examples, VoG 0..19: deciles of 2; wrong exactly where VoG >= 16
	// and at VoG 1.
	var rows []job.ScoreRow
	for i := range 20 {
		rows = append(rows, job.ScoreRow{Index: int64(i), VoG: float64(19 - i), CorrectLast: !(19-i >= 16 || 19-i == 1)})
	}
	got := ErrorByDecile(rows)
	want := [10]float64{0.5, 0, 0, 0, 0, 0, 0, 0, 1, 1}
	if got != want {
		t.Fatalf("error by decile %v, want %v", got, want)
	}
}

func TestWrite(t *testing.T) {
	var rows []job.ScoreRow
	for i := range 30 {
		rows = append(rows, job.ScoreRow{Index: int64(i), ExampleID: "ex", Label: int32(i % 3), Pred: 0, Class: int32(i % 3), Window: "all", VoG: float64(i), VoGNorm: float64(i % 7)})
	}
	var b bytes.Buffer
	calls := 0
	err := Write(&b, rows, Options{Title: "t<b>", Grid: 4, ClassNames: []string{"cat", "dog", "eel"}, Image: func(int64) (image.Image, error) {
		calls++
		return image.NewGray(image.Rect(0, 0, 2, 2)), nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	html := b.String()
	if !strings.Contains(html, "t&lt;b&gt;") || !strings.Contains(html, "class dog: 4 highest VoG") || calls != 2*4+3*2*4 {
		t.Fatalf("calls %d\n%s", calls, html[:min(len(html), 400)])
	}
}

func TestGridColumns(t *testing.T) {
	for _, c := range []struct{ n, max, want int }{
		{0, 12, 1}, {1, 12, 1}, {5, 12, 5}, {12, 12, 12},
		{13, 12, 7},   // 7 + 6, not 12 + 1
		{24, 12, 12},  // two full rows
		{25, 12, 9},   // 9 + 9 + 7, not 12 + 12 + 1
		{30, 12, 10},  // three full rows
		{100, 12, 10}, // 10 x 10 rather than 8 x 12 + 4
		{400, 12, 12}, // 34 x 12 - 8: 35 rows would leave more empty
		{25, 0, 1},
	} {
		got := GridColumns(c.n, c.max)
		if got != c.want {
			t.Errorf("GridColumns(%d, %d) = %d, want %d", c.n, c.max, got, c.want)
		}
		if c.n > c.max && c.max > 0 {
			// Never more rows than one over the fewest, never a last row
			// emptier than the first rows by the rows' count or more.
			rows := (c.n + got - 1) / got
			if minRows := (c.n + c.max - 1) / c.max; rows > minRows+1 || got > c.max || rows*got-c.n >= rows {
				t.Errorf("GridColumns(%d, %d) = %d: %d rows", c.n, c.max, got, rows)
			}
		}
	}
	// Every size up to 500: within the bounds, and the last row of at
	// least half a row where one more row can balance it.
	for n := 13; n <= 500; n++ {
		c := GridColumns(n, MaxGridColumns)
		rows := (n + c - 1) / c
		last := n - (rows-1)*c
		if c > MaxGridColumns || c < 1 || last < 1 || (n <= 60 && 2*last < c) {
			t.Errorf("%d images: %d columns, %d rows, the last of %d", n, c, rows, last)
		}
	}
}

// TestWriteGridLayout: the page lays each grid out in GridColumns columns.
func TestWriteGridLayout(t *testing.T) {
	var rows []job.ScoreRow
	for i := range 60 {
		rows = append(rows, job.ScoreRow{Index: int64(i), ExampleID: "ex", Window: "all", VoG: float64(i), VoGNorm: float64(i)})
	}
	var b bytes.Buffer
	if err := Write(&b, rows, Options{Grid: 25}); err != nil {
		t.Fatal(err)
	}
	want := `<div class="grid" style="grid-template-columns:repeat(9,minmax(0,96px))">`
	if n := strings.Count(b.String(), want); n != 4 { // two overall, two for class 0
		t.Fatalf("%d grids of 9 columns, want 4", n)
	}
}

func TestClassNames(t *testing.T) {
	names, err := ParseClasses([]byte("cat\r\n  dog \neel\n\n"))
	if err != nil || !slices.Equal(names, []string{"cat", "dog", "eel"}) {
		t.Fatalf("ParseClasses: %q %v", names, err)
	}
	for _, bad := range []string{"", "\n\n", "cat\n\ndog\n"} {
		if names, err := ParseClasses([]byte(bad)); err == nil {
			t.Errorf("ParseClasses(%q) = %q, want an error", bad, names)
		}
	}
	if len(FashionMNIST) != 10 || FashionMNIST[0] != "T-shirt/top" || FashionMNIST[9] != "Ankle boot" {
		t.Fatalf("FashionMNIST %q", FashionMNIST)
	}
	train := []int32{9, 0, 0, 3, 0, 2, 7, 2, 5, 5, 0, 9, 5, 5, 7, 9, 1, 0, 6, 4, 3, 1, 4, 8, 4, 3, 0, 2, 4, 4, 5, 3, 7, 7}
	test := []int32{9, 2, 1, 1, 6, 1, 4, 6, 5, 7, 4, 5, 7, 3, 4, 1, 2, 4, 8, 0}
	mnist := []int32{5, 0, 4, 1, 9, 2, 1, 3, 1, 4, 3, 5, 3, 6, 1, 7, 2, 8, 6, 9}
	for _, c := range []struct {
		labels []int32
		want   bool
	}{
		{train, true}, {train[:DetectLabels], true}, {train[:MinDetectLabels], true}, {test, true},
		{train[:MinDetectLabels-1], false}, // too few to tell
		{mnist, false}, {train[1:], false}, {nil, false},
	} {
		if got := IsFashionMNIST(c.labels); got != c.want {
			t.Errorf("IsFashionMNIST(%v) = %v, want %v", c.labels, got, c.want)
		}
	}

	// The page names classes in grid titles and cells; a label beyond the
	// names shows as its index.
	rows := []job.ScoreRow{
		{Index: 0, ExampleID: "a", Label: 9, Pred: 0, Class: 9, Window: "all", VoG: 1},
		{Index: 1, ExampleID: "b", Label: 10, Pred: 10, Class: 10, Window: "all", VoG: 2},
	}
	var b bytes.Buffer
	if err := Write(&b, rows, Options{ClassNames: FashionMNIST}); err != nil {
		t.Fatal(err)
	}
	html := b.String()
	for _, want := range []string{"class Ankle boot: 1 highest VoG", "label Ankle boot", "pred T-shirt/top", "class 10: 1 highest", "label 10"} {
		if !strings.Contains(html, want) {
			t.Errorf("the page lacks %q", want)
		}
	}
}
