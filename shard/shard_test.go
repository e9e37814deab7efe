package shard

import (
	"slices"
	"testing"
)

func TestLayout(t *testing.T) {
	tests := []struct {
		name         string
		n            int64
		batch, shard int
		shards       int
		last         Range
		lastBatches  []Range
	}{
		{"exact", 100, 10, 50, 2, Range{1, 50, 100}, nil},
		{"shard rounded up to batches", 100, 8, 20, 5, Range{4, 96, 100}, []Range{{0, 96, 100}}},
		{"remainder", 105, 10, 50, 3, Range{2, 100, 105}, []Range{{0, 100, 105}}},
		{"single example joins the batch before", 101, 10, 50, 2, Range{1, 50, 101}, []Range{{0, 90, 101}}},
		{"single example joins across a shard boundary", 101, 10, 100, 1, Range{0, 0, 101}, nil},
		{"one example", 1, 10, 50, 1, Range{0, 0, 1}, []Range{{0, 0, 1}}},
		{"small", 5, 10, 50, 1, Range{0, 0, 5}, []Range{{0, 0, 5}}},
		{"empty", 0, 10, 50, 0, Range{}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := NewLayout(tt.n, tt.batch, tt.shard)
			c := l.Shards()
			if c != tt.shards {
				t.Fatalf("Shards = %d, want %d", c, tt.shards)
			}
			var total int64
			for i := range c {
				r := l.Nth(i)
				if i > 0 && r.Start != l.Nth(i-1).End {
					t.Fatalf("shard %d does not start where %d ends", i, i-1)
				}
				if r.Len() == 0 {
					t.Fatalf("shard %d is empty", i)
				}
				var inBatches int64
				for _, b := range l.Batches(r) {
					if b.Start%int64(tt.batch) != 0 {
						t.Fatalf("batch %+v does not start at a multiple of %d", b, tt.batch)
					}
					if b.Len() < 2 && tt.n > 1 {
						t.Fatalf("batch %+v of one example", b)
					}
					inBatches += b.Len()
				}
				if inBatches != r.Len() {
					t.Fatalf("shard %+v: batches hold %d examples", r, inBatches)
				}
				total += r.Len()
			}
			if total != tt.n {
				t.Fatalf("shards hold %d examples, want %d", total, tt.n)
			}
			if c > 0 && l.Nth(c-1) != tt.last {
				t.Fatalf("last shard %+v, want %+v", l.Nth(c-1), tt.last)
			}
			if tt.lastBatches != nil && !slices.Equal(l.Batches(l.Nth(c - 1))[len(l.Batches(l.Nth(c-1)))-1:], tt.lastBatches) {
				t.Fatalf("last batch %+v, want %+v", l.Batches(l.Nth(c-1)), tt.lastBatches)
			}
		})
	}
}

// TestBatchesDoNotDependOnShards: every example is in the same batch
// whatever the shard size.
func TestBatchesDoNotDependOnShards(t *testing.T) {
	for _, n := range []int64{1, 2, 31, 32, 33, 97, 10000} {
		var want []Range
		for _, size := range []int{1, 7, 32, 33, 64, 1000, 20000} {
			l := NewLayout(n, 32, size)
			var got []Range
			for i := range l.Shards() {
				got = append(got, l.Batches(l.Nth(i))...)
			}
			if want == nil {
				want = got
			} else if !slices.Equal(got, want) {
				t.Fatalf("%d examples, shards of %d: batches %v, want %v", n, size, got, want)
			}
		}
	}
}

func TestNaturalLess(t *testing.T) {
	got := []string{"epoch_10.pt", "epoch_2.pt", "epoch_1.pt", "epoch_02.pt", "b.pt", "a10b2", "a10b10", "a9"}
	slices.SortFunc(got, func(a, b string) int {
		switch {
		case NaturalLess(a, b):
			return -1
		case NaturalLess(b, a):
			return 1
		}
		return 0
	})
	want := []string{"a9", "a10b2", "a10b10", "b.pt", "epoch_1.pt", "epoch_2.pt", "epoch_02.pt", "epoch_10.pt"}
	if !slices.Equal(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
}
