package report

import (
	"bytes"
	"image"
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
