// Package shard cuts a dataset into batches and shards, and orders names
// naturally. It is pure: no I/O, no Temporal, so workflow code may call it.
package shard

import (
	"strings"
	"unicode"
)

// Range is examples [Start, End) of the dataset's order; as a shard, Index
// is its number.
type Range struct {
	Index int   `json:"index"`
	Start int64 `json:"start"`
	End   int64 `json:"end"`
}

// Len returns the number of examples in r.
func (r Range) Len() int64 { return r.End - r.Start }

// Layout cuts a dataset of N examples into batches and shards aligned to
// the dataset: batch boundaries are at multiples of Batch from the first
// example, and shard boundaries at multiples of Shard, itself a multiple of
// Batch. So an example's batch, and hence what the engine computes for it,
// does not depend on the shard size, the worker or a retry. A last batch of
// a single example joins the batch before it, so that no example is ever
// computed alone (where libraries may take another code path).
type Layout struct {
	N     int64
	Batch int
	Shard int
}

// NewLayout returns the layout of n examples in batches of batch, with
// shards of shardSize rounded up to a whole number of batches.
func NewLayout(n int64, batch, shardSize int) Layout {
	batch = max(batch, 1)
	shardSize = (max(shardSize, 1) + batch - 1) / batch * batch
	return Layout{N: n, Batch: batch, Shard: shardSize}
}

// tail returns the start of the last batch, which may hold Batch+1
// examples.
func (l Layout) tail() int64 {
	b := int64(l.Batch)
	if l.N <= 0 {
		return 0
	}
	last := (l.N - 1) / b * b
	if l.N-last == 1 && last > 0 {
		last -= b // a single example joins the batch before it
	}
	return last
}

// Shards returns the number of shards.
func (l Layout) Shards() int {
	if l.N <= 0 {
		return 0
	}
	// A shard starts at every multiple of Shard before the last batch's
	// start, and the last shard takes that batch.
	return int(l.tail()/int64(l.Shard)) + 1
}

// Nth returns shard i.
func (l Layout) Nth(i int) Range {
	start := int64(i) * int64(l.Shard)
	end := start + int64(l.Shard)
	if i == l.Shards()-1 {
		end = l.N
	}
	return Range{Index: i, Start: start, End: end}
}

// Batches returns the batches of shard r, as ranges of the dataset.
func (l Layout) Batches(r Range) []Range {
	var out []Range
	tail := l.tail()
	for s := r.Start; s < r.End; s += int64(l.Batch) {
		e := min(s+int64(l.Batch), r.End)
		if s == tail {
			e = r.End
		}
		out = append(out, Range{Start: s, End: e})
		if e == r.End {
			break
		}
	}
	return out
}

// NaturalLess orders strings with digit runs compared as numbers, so that
// epoch_2 comes before epoch_10.
func NaturalLess(a, b string) bool {
	for a != "" && b != "" {
		ai, bi := digitRun(a), digitRun(b)
		if ai > 0 && bi > 0 {
			na, nb := strings.TrimLeft(a[:ai], "0"), strings.TrimLeft(b[:bi], "0")
			if len(na) != len(nb) {
				return len(na) < len(nb)
			}
			if na != nb {
				return na < nb
			}
			if ai != bi { // same number, fewer leading zeros first
				return ai < bi
			}
			a, b = a[ai:], b[bi:]
			continue
		}
		if a[0] != b[0] {
			return a[0] < b[0]
		}
		a, b = a[1:], b[1:]
	}
	return len(a) < len(b)
}

func digitRun(s string) int {
	i := 0
	for i < len(s) && s[i] < 0x80 && unicode.IsDigit(rune(s[i])) {
		i++
	}
	return i
}
