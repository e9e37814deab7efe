package job

import (
	"encoding/json"
	"math"
	"reflect"
	"testing"
)

// TestScoreRowJSON: a row with NaN and infinite scores (no label) survives
// a JSON round trip, as activity results take it; finite rows encode as
// encoding/json encodes the plain struct, and that decodes too.
func TestScoreRowJSON(t *testing.T) {
	type plain ScoreRow
	finite := ScoreRow{Index: 7, ExampleID: "img/7.png", Label: 2, Pred: 3, Class: 2, Window: "late", VoG: 0.25,
		VoGNorm: -1.5, AbsVoGNorm: 1.5, Loss: 2.1, ConfMean: 0.3, ConfStd: 0.1, MarginMean: -0.7, EL2N: 0.9,
		Forgetting: 2, GradNorm: 4, CorrectLast: true}
	b, err := json.Marshal(finite)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := json.Marshal(plain(finite))
	var a, c map[string]any
	json.Unmarshal(b, &a)
	json.Unmarshal(want, &c)
	if !reflect.DeepEqual(a, c) {
		t.Fatalf("finite row:\n%s\nwant the fields of\n%s", b, want)
	}
	var back ScoreRow
	if err := json.Unmarshal(want, &back); err != nil || back != finite {
		t.Fatalf("plain encoding: %+v, %v", back, err)
	}

	unlabelled := ScoreRow{Index: 9, ExampleID: "9", Label: -1, Pred: 1, Class: 1, Window: "all", VoG: 0.5,
		VoGNorm: math.Inf(1), AbsVoGNorm: math.Inf(1), Loss: math.NaN(), ConfMean: math.NaN(), ConfStd: math.NaN(),
		MarginMean: math.NaN(), EL2N: math.Inf(-1)}
	b, err = json.Marshal(WriteResult{Rows: 1, Hardest: []ScoreRow{unlabelled, finite}})
	if err != nil {
		t.Fatal(err)
	}
	var res WriteResult
	if err := json.Unmarshal(b, &res); err != nil {
		t.Fatal(err)
	}
	got := res.Hardest[0]
	if len(res.Hardest) != 2 || res.Hardest[1] != finite || got.Index != 9 || got.Label != -1 || got.VoG != 0.5 ||
		!math.IsInf(got.VoGNorm, 1) || !math.IsNaN(got.Loss) || !math.IsNaN(got.MarginMean) || !math.IsInf(got.EL2N, -1) {
		t.Fatalf("round trip: %+v from %s", res.Hardest, b)
	}
	if err := json.Unmarshal([]byte(`{"Loss":"much"}`), &got); err == nil {
		t.Fatal(`"much" decoded as a float`)
	}
}
