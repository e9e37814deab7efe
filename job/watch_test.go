package job_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/vogscore/vog/job"
)

func TestWatchStateSize(t *testing.T) {
	if job.MaxWatchState(0) != job.DefaultMaxWatchState || job.MaxWatchState(5) != 5 || job.MaxWatchState(-1) != -1 {
		t.Fatal("MaxWatchState: 0 is the default, others themselves")
	}
	// ImageNet-1k's training set at 224x224 in 129 shards.
	s := job.WatchStateSize{Examples: 1281167, Pixels: 224 * 224, PerCheckpoint: 514324498858}
	if got := s.String(); got != "514.3 GB per checkpoint (1281167 examples x 50176 pixels x 8 bytes, and their scores)" {
		t.Errorf("String: %q", got)
	}
	for _, c := range []struct{ max, want int64 }{{job.DefaultMaxWatchState, 0}, {2 << 40, 4}, {7e12, 13}, {-1, -1}} {
		if got := s.Fits(c.max); got != c.want {
			t.Errorf("Fits(%d) = %d, want %d", c.max, got, c.want)
		}
	}
	err := s.TooLarge(job.DefaultMaxWatchState)
	if !errors.Is(err, job.ErrBadJob) {
		t.Fatalf("TooLarge is not a job error: %v", err)
	}
	for _, want := range []string{"514.3 GB per checkpoint", "over --max-state 100 GB", "give a larger --max-state (6.172 TB holds 12 checkpoints)", "vog run"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("%q does not say %q", err, want)
		}
	}
	if (job.WatchStateSize{}).Fits(100) != -1 {
		t.Error("an unknown size fits any number")
	}
}
