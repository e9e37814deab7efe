package activities

import (
	"testing"

	"github.com/vogscore/vog/engine"
	"github.com/vogscore/vog/job"
)

// TestWatchState: the storage one checkpoint of a watch takes, as
// storage.MomentsBytes sizes its files (one per shard; TestMomentsBytes
// checks that against the writer), for the data sets
// job.DefaultMaxWatchState is argued from.
func TestWatchState(t *testing.T) {
	for _, c := range []struct {
		name     string
		examples int64
		shards   int
		shape    engine.Shape
		want     int64
	}{
		{"Fashion-MNIST train", 60000, 6, engine.Shape{C: 1, H: 28, W: 28}, 60000*(8*784+42) + 6*52},
		{"CIFAR-10 train", 50000, 5, engine.Shape{C: 3, H: 32, W: 32}, 50000*(8*1024+42) + 5*52},
		{"ImageNet-1k val, 224", 50000, 5, engine.Shape{C: 3, H: 224, W: 224}, 50000*(8*50176+42) + 5*52},
		{"ImageNet-1k train, 224", 1281167, 129, engine.Shape{C: 3, H: 224, W: 224}, 514324498858},
	} {
		got := watchState(&job.Job{Examples: c.examples, Shards: c.shards, Shape: c.shape})
		if got.PerCheckpoint != c.want || got.Examples != c.examples || got.Pixels != c.shape.H*c.shape.W {
			t.Errorf("%s: %+v, want %d bytes a checkpoint", c.name, got, c.want)
		}
		t.Logf("%s: %s; the default --max-state holds %d", c.name, got, got.Fits(job.DefaultMaxWatchState))
	}
}
