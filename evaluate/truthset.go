package evaluate

import (
	"fmt"
	"hash/maphash"
	"io"
	"math"
	"math/bits"
	"slices"
)

// TruthSet is a truth file's flags (ReadTruth), kept compactly for files of
// millions of ids: an id is known by a 63-bit hash of it, kept with its
// flag in the lowest bit in a slice sorted by hash, which a directory of
// the hashes' leading bits cuts into buckets of about 4 (9 bytes per id in
// all, against about 100 for a map[string]bool); a bit per id records
// whether a row had it. Two ids with the same hash would be taken for one,
// with a chance of about ids*rows/2^63 per run (under 1e-6 for 1.28 M ids
// and rows): the hash has a seed drawn per process, so such a collision
// does not repeat. The ids themselves are read again from the file only to
// name a missing one.
type TruthSet struct {
	// Column is the flag column's name.
	Column string

	name   string                        // names the file in errors
	open   func() (io.ReadCloser, error) // reads the file from its start
	column string                        // as asked for: "" for the default
	seed   maphash.Seed
	// entries holds hash<<1 | flag, by hash, one per id.
	entries []uint64
	// Bucket b, the hashes whose leading bits are b, is
	// entries[starts[b]:starts[b+1]].
	starts []uint32
	shift  uint
	seen   []uint64 // bit i: a row had the id of entries[i]
}

// ReadTruthSet reads the truth file that open opens (ReadTruth, with its
// flag column column, "" for the default). An id given more than once takes
// its last flag. name names the file in errors; open's own errors are
// returned as they are. open is called again only to name an id that no
// row has (Measure).
func ReadTruthSet(name string, open func() (io.ReadCloser, error), column string) (*TruthSet, error) {
	t := &TruthSet{name: name, open: open, column: column, seed: maphash.MakeSeed()}
	var lines []uint64 // in file order
	flagColumn, err := t.read(func(id string, flag bool) bool {
		e := t.hash(id) << 1
		if flag {
			e |= 1
		}
		lines = append(lines, e)
		return true
	})
	if err != nil {
		return nil, err
	}
	if len(lines) > math.MaxUint32 {
		return nil, fmt.Errorf("%s: more than %d lines", name, uint32(math.MaxUint32))
	}
	t.Column = flagColumn
	// A counting sort by bucket keeps the file order within a bucket; an
	// insertion sort by hash, stable too, finishes it: of an id's lines,
	// the last comes last.
	t.setBuckets(len(lines))
	t.count(lines)
	t.entries = make([]uint64, len(lines))
	next := slices.Clone(t.starts)
	for _, e := range lines {
		b := t.bucket(e >> 1)
		t.entries[next[b]] = e
		next[b]++
	}
	lines = nil
	for b := range len(t.starts) - 1 {
		bucket := t.entries[t.starts[b]:t.starts[b+1]]
		for i := 1; i < len(bucket); i++ {
			for j := i; j > 0 && bucket[j-1]>>1 > bucket[j]>>1; j-- {
				bucket[j-1], bucket[j] = bucket[j], bucket[j-1]
			}
		}
	}
	kept := t.entries[:0]
	for i, e := range t.entries {
		if i+1 < len(t.entries) && t.entries[i+1]>>1 == e>>1 {
			continue
		}
		kept = append(kept, e)
	}
	t.entries = slices.Clip(kept)
	t.count(t.entries) // the directory of what is left
	t.seen = make([]uint64, (len(t.entries)+63)/64)
	return t, nil
}

// Len returns the number of distinct ids.
func (t *TruthSet) Len() int { return len(t.entries) }

// read reads the file from its start, calling fn with the example_id and
// the flag of each line until fn returns false; it returns the flag
// column's name.
func (t *TruthSet) read(fn func(id string, flag bool) bool) (string, error) {
	rd, err := t.open()
	if err != nil {
		return "", err
	}
	defer rd.Close()
	column, err := ReadTruth(rd, t.column, fn)
	if err != nil {
		return "", fmt.Errorf("%s: %w", t.name, err)
	}
	return column, nil
}

// setBuckets sizes the directory for n ids: a power of two buckets, about
// n/4.
func (t *TruthSet) setBuckets(n int) {
	k := bits.Len(uint(n / 4))
	t.shift = uint(63 - k)
	t.starts = make([]uint32, 1<<k+1)
}

// count sets the directory to the buckets of entries.
func (t *TruthSet) count(entries []uint64) {
	clear(t.starts)
	for _, e := range entries {
		t.starts[t.bucket(e>>1)+1]++
	}
	for b := 1; b < len(t.starts); b++ {
		t.starts[b] += t.starts[b-1]
	}
}

// bucket returns the bucket of hash h.
func (t *TruthSet) bucket(h uint64) uint64 { return h >> t.shift }

// hash is the id's 63-bit hash.
func (t *TruthSet) hash(id string) uint64 { return maphash.String(t.seed, id) >> 1 }

func (t *TruthSet) find(id string) (int, bool) {
	h := t.hash(id)
	b := t.bucket(h)
	for i := t.starts[b]; i < t.starts[b+1]; i++ {
		if t.entries[i]>>1 == h {
			return int(i), true
		}
	}
	return 0, false
}

// Lookup returns the flag of id, and whether the truth file has it.
func (t *TruthSet) Lookup(id string) (flag, ok bool) {
	i, ok := t.find(id)
	return ok && t.entries[i]&1 == 1, ok
}

// mark is Lookup, and records that a row had id.
func (t *TruthSet) mark(id string) (flag, ok bool) {
	i, ok := t.find(id)
	if !ok {
		return false, false
	}
	t.seen[i/64] |= 1 << (i % 64)
	return t.entries[i]&1 == 1, true
}

// unseen returns the number of ids no row had.
func (t *TruthSet) unseen() int {
	n := len(t.entries)
	for _, w := range t.seen {
		n -= bits.OnesCount64(w)
	}
	return n
}

// firstUnseen reads the truth file again for the first id no row had.
func (t *TruthSet) firstUnseen() (string, error) {
	var found string
	_, err := t.read(func(id string, _ bool) bool {
		if i, ok := t.find(id); ok && t.seen[i/64]&(1<<(i%64)) == 0 {
			found = id
			return false
		}
		return true
	})
	return found, err
}
