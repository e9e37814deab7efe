package client

import (
	"math"
	"strings"
	"testing"
	"time"

	"github.com/vogscore/vog/job"
)

func TestMeterLine(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	m := newMeter(t0)
	p := job.Progress{Stage: job.StageScoring, Examples: 1000, Shards: 4}
	p.ExamplesDone, p.ShardsDone = 100, 1
	line := m.line(t0.Add(10*time.Second), p)
	for _, want := range []string{"scoring [##", "10.0%", "100/1000 examples", "10 ex/s", "shards 1/4", "ETA 1m30s", "(10s elapsed)"} {
		if !strings.Contains(line, want) {
			t.Errorf("line %q lacks %q", line, want)
		}
	}
	p.ExamplesDone, p.ShardsFailed = 300, 1
	line = m.line(t0.Add(20*time.Second), p)
	// The rate is smoothed: 0.7*10 + 0.3*20 = 13 ex/s.
	if !strings.Contains(line, "13 ex/s") || !strings.Contains(line, "(1 failed)") {
		t.Errorf("line %q", line)
	}
	// No progress for a minute: the rate decays, and the ETA says it is
	// unknown rather than hours.
	for s := 22; s <= 80; s += 2 {
		line = m.line(t0.Add(time.Duration(s)*time.Second), p)
	}
	if !strings.Contains(line, "0 ex/s") || !strings.Contains(line, "ETA ?") {
		t.Errorf("stalled: %q", line)
	}
	if line := m.line(t0.Add(90*time.Second), job.Progress{Stage: job.StageWriting}); line != "writing          1m30s elapsed" {
		t.Errorf("writing: %q", line)
	}
	if b := bar(2, 4); b != "[####]" {
		t.Errorf("bar beyond 1: %s", b)
	}
}

// TestETA: the one ETA of vog run's progress line and vog status: the time
// left at the rate, or "?" with no rate, a rate decayed under a twentieth
// of the average, or none that is finite.
func TestETA(t *testing.T) {
	for _, c := range []struct {
		left      int64
		rate, avg float64
		want      string
	}{
		{900, 10, 10, "1m30s"},
		{900, 10, 0, "1m30s"},
		{0, 10, 10, "0s"},
		{1000, 0, 0, "?"}, // nothing done yet (vog status at the start)
		{700, 0.4, 10, "?"},
		{700, 0.5, 10, "23m20s"},
		{700, math.NaN(), math.NaN(), "?"},
		{700, math.Inf(1), math.Inf(1), "?"},
	} {
		if got := eta(c.left, c.rate, c.avg); got != c.want {
			t.Errorf("eta(%d, %v, %v) = %q, want %q", c.left, c.rate, c.avg, got, c.want)
		}
	}
}
