package window

import (
	"fmt"
	"reflect"
	"strings"
	"testing"
)

// FuzzParse parses fuzzed --windows specs against 1 to 50 checkpoints. A
// spec parses to windows with distinct, non-empty names, without spaces
// around them (as around bounds), each a non-empty range within [0, k),
// the Python slice its bounds name; written back as name=lo:hi they parse
// to themselves. Or it is an error. A blank spec is the one window All.
// Seeds: below and testdata/fuzz/FuzzParse.
func FuzzParse(f *testing.F) {
	for _, s := range []string{"", " ", "early=0:3,late=-3:", "mid=2:-2", "all=:", "big=-100:100", "empty=3:3",
		"x=0:2,x=1:3", "noslice", "a=1:b", " a = 1 : 2 , b=:-1", "a=0:1,", "=0:1", "a=0:1:2", "a=+1:0x2", "a=-9223372036854775808:9223372036854775807"} {
		f.Add(s, 12)
	}
	f.Fuzz(func(t *testing.T, spec string, k int) {
		k = 1 + int(uint(k)%50)
		ws, err := Parse(spec, k)
		if strings.TrimSpace(spec) == "" {
			if err != nil || !reflect.DeepEqual(ws, []Window{{Name: All, Lo: 0, Hi: k}}) {
				t.Fatalf("Parse(%q, %d) = %v, %v; want one window %s", spec, k, ws, err, All)
			}
			return
		}
		if err != nil {
			if ws != nil {
				t.Fatalf("windows %v beside error %v", ws, err)
			}
			return
		}
		parts := strings.Split(spec, ",")
		if len(ws) != len(parts) {
			t.Fatalf("Parse(%q, %d): %d windows of %d parts", spec, k, len(ws), len(parts))
		}
		seen := map[string]bool{}
		var back []string
		for i, w := range ws {
			if w.Name == "" || w.Name != strings.TrimSpace(w.Name) || seen[w.Name] || strings.ContainsAny(w.Name, ",=") {
				t.Fatalf("Parse(%q, %d): window %d named %q (%v)", spec, k, i, w.Name, ws)
			}
			seen[w.Name] = true
			if !(0 <= w.Lo && w.Lo < w.Hi && w.Hi <= k) {
				t.Fatalf("Parse(%q, %d): window %v", spec, k, w)
			}
			if lo, hi := pySlice(t, parts[i], k); w.Lo != lo || w.Hi != hi {
				t.Fatalf("Parse(%q, %d): window %v, Python's slice is %d:%d", spec, k, w, lo, hi)
			}
			if w.Last() != w.Hi-1 || !w.Contains(w.Lo) || !w.Contains(w.Last()) || w.Contains(w.Hi) || w.Contains(w.Lo-1) {
				t.Fatalf("window %v: Contains or Last wrong", w)
			}
			back = append(back, fmt.Sprintf("%s=%d:%d", w.Name, w.Lo, w.Hi))
		}
		again, err := Parse(strings.Join(back, ","), k)
		if err != nil || !reflect.DeepEqual(again, ws) {
			t.Fatalf("Parse(%q, %d) = %v, but its windows written back parse to %v, %v", spec, k, ws, again, err)
		}
	})
}

// pySlice resolves the bounds of one part name=lo:hi the way Python's
// range(k)[lo:hi] does, written independently of Parse: the part parsed
// without error, so its bounds are integers or empty.
func pySlice(t *testing.T, part string, k int) (lo, hi int) {
	t.Helper()
	_, slice, _ := strings.Cut(part, "=")
	los, his, _ := strings.Cut(slice, ":")
	resolve := func(s string, def int) int {
		s = strings.TrimSpace(s)
		if s == "" {
			return def
		}
		var v int
		if _, err := fmt.Sscanf(s, "%d", &v); err != nil {
			t.Fatalf("bound %q accepted by Parse: %v", s, err)
		}
		if v < 0 {
			v = max(v+k, 0)
		}
		return min(v, k)
	}
	return resolve(los, 0), resolve(his, k)
}
