// Package bytesize parses and prints storage sizes as people write them:
// 500GB, 2TiB, 1.5T, 750000000.
package bytesize

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// units maps a unit, lower-cased, to its bytes: k, M, G, T, P (with or
// without a B) are powers of 1000, as disks and buckets are sold; KiB,
// MiB, GiB, TiB, PiB (or Ki ... Pi) powers of 1024.
var units = map[string]float64{
	"": 1, "b": 1,
	"k": 1e3, "kb": 1e3, "m": 1e6, "mb": 1e6, "g": 1e9, "gb": 1e9, "t": 1e12, "tb": 1e12, "p": 1e15, "pb": 1e15,
	"ki": 1 << 10, "kib": 1 << 10, "mi": 1 << 20, "mib": 1 << 20, "gi": 1 << 30, "gib": 1 << 30,
	"ti": 1 << 40, "tib": 1 << 40, "pi": 1 << 50, "pib": 1 << 50,
}

// Parse reads a size: a non-negative number and an optional unit, with or
// without a space between: 500GB, 2TiB, 1.5 T, 100000.
func Parse(s string) (int64, error) {
	t := strings.TrimSpace(s)
	i := strings.IndexFunc(t, func(r rune) bool { return !(r >= '0' && r <= '9' || r == '.') })
	if i < 0 {
		i = len(t)
	}
	num, unit := t[:i], strings.ToLower(strings.TrimSpace(t[i:]))
	mult, ok := units[unit]
	v, err := strconv.ParseFloat(num, 64)
	if !ok || err != nil || num == "" {
		return 0, fmt.Errorf("size %q: want a number of bytes with an optional unit, as 500GB or 2TiB (kB, MB, GB, TB, PB: powers of 1000; KiB, MiB, GiB, TiB, PiB: of 1024)", s)
	}
	b := math.Round(v * mult)
	if b >= math.MaxInt64 {
		return 0, fmt.Errorf("size %q: too large", s)
	}
	return int64(b), nil
}

// Format prints n bytes in the largest decimal unit it holds one of, to
// four significant figures: 514.3 GB, 376.8 MB, 512 B.
func Format(n int64) string {
	if n < 0 {
		return "-" + Format(-n)
	}
	for _, u := range []struct {
		name string
		size float64
	}{{"PB", 1e15}, {"TB", 1e12}, {"GB", 1e9}, {"MB", 1e6}, {"kB", 1e3}} {
		if float64(n) >= u.size {
			return strconv.FormatFloat(float64(n)/u.size, 'g', 4, 64) + " " + u.name
		}
	}
	return strconv.FormatInt(n, 10) + " B"
}

// Flag is a size as a flag.Value: vog watch's --max-state.
type Flag int64

func (f *Flag) String() string {
	if f == nil {
		return ""
	}
	return Format(int64(*f))
}

// Set parses a size (Parse).
func (f *Flag) Set(s string) error {
	n, err := Parse(s)
	if err != nil {
		return err
	}
	*f = Flag(n)
	return nil
}
