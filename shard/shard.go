// Package shard cuts a dataset into shards and orders names naturally. It
// is pure: no I/O, no Temporal, so workflow code may call it.
package shard

import (
	"strings"
	"unicode"
)

// Range is a shard: examples [Start, End) of the dataset's order.
type Range struct {
	Index int   `json:"index"`
	Start int64 `json:"start"`
	End   int64 `json:"end"`
}

// Len returns the number of examples in r.
func (r Range) Len() int64 { return r.End - r.Start }

// Count returns how many shards of size hold n examples.
func Count(n int64, size int) int {
	if n <= 0 || size <= 0 {
		return 0
	}
	return int((n + int64(size) - 1) / int64(size))
}

// Nth returns shard i of n examples cut into shards of size.
func Nth(n int64, size, i int) Range {
	start := int64(i) * int64(size)
	return Range{Index: i, Start: start, End: min(start+int64(size), n)}
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
