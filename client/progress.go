package client

import (
	"fmt"
	"math"
	"strings"
	"time"

	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/sdk/converter"

	"github.com/vogscore/vog/job"
)

func converterFromPayloads(p *commonpb.Payloads, v any) error {
	return converter.GetDefaultDataConverter().FromPayloads(p, v)
}

// meter turns successive progress readings into a rate and an ETA.
type meter struct {
	start    time.Time
	lastT    time.Time
	lastDone int64
	rate     float64 // examples per second, smoothed
}

func newMeter(now time.Time) *meter { return &meter{start: now, lastT: now} }

func (m *meter) line(now time.Time, p job.Progress) string {
	if dt := now.Sub(m.lastT).Seconds(); dt > 0 && p.ExamplesDone >= m.lastDone {
		r := float64(p.ExamplesDone-m.lastDone) / dt
		if m.rate == 0 {
			m.rate = r
		} else {
			m.rate = 0.7*m.rate + 0.3*r
		}
	}
	m.lastT, m.lastDone = now, p.ExamplesDone
	elapsed := now.Sub(m.start).Round(time.Second)
	if p.Stage != job.StageScoring || p.Examples == 0 {
		return fmt.Sprintf("%-16s %s elapsed", p.Stage, elapsed)
	}
	frac := float64(p.ExamplesDone) / float64(p.Examples)
	avg := float64(p.ExamplesDone) / now.Sub(m.start).Seconds()
	failed := ""
	if p.ShardsFailed > 0 {
		failed = fmt.Sprintf(" (%d failed)", p.ShardsFailed)
	}
	if p.ExamplesFailed > 0 {
		failed += fmt.Sprintf(", %d examples failed", p.ExamplesFailed)
	}
	return fmt.Sprintf("scoring %s %5.1f%%  %d/%d examples  %.0f ex/s  shards %d/%d%s  ETA %s  (%s elapsed)",
		bar(frac, 24), 100*frac, p.ExamplesDone, p.Examples, m.rate, p.ShardsDone, p.Shards, failed, eta(p.Examples-p.ExamplesDone, m.rate, avg), elapsed)
}

// eta is the time that left examples take at rate examples per second, or
// "?" where the rate says nothing of it: while no progress is reported (no
// example done yet, a shard retried from its start, the last shard's slow
// end) a rate is 0, or a smoothed rate decays towards 0; under a twentieth
// of avg, the average rate since the start, it is taken for none.
func eta(left int64, rate, avg float64) string {
	if !(rate > 0) || math.IsInf(rate, 0) || rate < avg/20 {
		return "?"
	}
	return (time.Duration(float64(left)/rate) * time.Second).Round(time.Second).String()
}

func bar(frac float64, width int) string {
	n := int(frac*float64(width) + 0.5)
	n = max(0, min(width, n))
	return "[" + strings.Repeat("#", n) + strings.Repeat(".", width-n) + "]"
}
