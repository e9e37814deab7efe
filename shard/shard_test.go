package shard

import (
	"slices"
	"testing"
)

func TestNth(t *testing.T) {
	tests := []struct {
		name  string
		n     int64
		size  int
		count int
		last  Range
	}{
		{"exact", 100, 10, 10, Range{9, 90, 100}},
		{"remainder", 101, 10, 11, Range{10, 100, 101}},
		{"one shard", 5, 10, 1, Range{0, 0, 5}},
		{"empty", 0, 10, 0, Range{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := Count(tt.n, tt.size)
			if c != tt.count {
				t.Fatalf("Count = %d, want %d", c, tt.count)
			}
			var total int64
			for i := range c {
				r := Nth(tt.n, tt.size, i)
				if i > 0 && r.Start != Nth(tt.n, tt.size, i-1).End {
					t.Fatalf("shard %d does not start where %d ends", i, i-1)
				}
				total += r.Len()
			}
			if total != tt.n {
				t.Fatalf("shards hold %d examples, want %d", total, tt.n)
			}
			if c > 0 && Nth(tt.n, tt.size, c-1) != tt.last {
				t.Fatalf("last shard %+v, want %+v", Nth(tt.n, tt.size, c-1), tt.last)
			}
		})
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
