// Package window parses windows of checkpoints: named Python-style slices
// over a job's checkpoints in training order, such as early=0:3,late=-3:.
package window

import (
	"fmt"
	"strconv"
	"strings"
)

// All is the default window: every checkpoint.
const All = "all"

// Window is a named range [Lo, Hi) of checkpoint indices.
type Window struct {
	Name   string `json:"name"`
	Lo, Hi int
}

// Contains reports whether checkpoint k is in w.
func (w Window) Contains(k int) bool { return w.Lo <= k && k < w.Hi }

// Last returns the index of w's last checkpoint.
func (w Window) Last() int { return w.Hi - 1 }

// Parse resolves spec ("name=lo:hi,..." with Python slice semantics:
// negative indices count from the end, empty bounds mean the ends) against
// k checkpoints. An empty spec means one window, All. Every window must hold
// at least one checkpoint; names must be distinct.
func Parse(spec string, k int) ([]Window, error) {
	if strings.TrimSpace(spec) == "" {
		return []Window{{Name: All, Lo: 0, Hi: k}}, nil
	}
	var out []Window
	seen := map[string]bool{}
	for _, part := range strings.Split(spec, ",") {
		name, slice, ok := strings.Cut(part, "=")
		if name = strings.TrimSpace(name); !ok || name == "" {
			return nil, fmt.Errorf("--windows %q: want name=lo:hi", part)
		}
		if seen[name] {
			return nil, fmt.Errorf("--windows: window %q named twice", name)
		}
		seen[name] = true
		los, his, ok := strings.Cut(slice, ":")
		if !ok {
			return nil, fmt.Errorf("--windows %q: want name=lo:hi", part)
		}
		lo, err := bound(los, 0, k)
		if err != nil {
			return nil, fmt.Errorf("--windows %q: %v", part, err)
		}
		hi, err := bound(his, k, k)
		if err != nil {
			return nil, fmt.Errorf("--windows %q: %v", part, err)
		}
		if hi <= lo {
			return nil, fmt.Errorf("--windows %q: no checkpoints of the %d", part, k)
		}
		out = append(out, Window{Name: name, Lo: lo, Hi: hi})
	}
	return out, nil
}

// bound resolves one slice bound as Python does, clamped to [0, k].
func bound(s string, def, k int) (int, error) {
	if s = strings.TrimSpace(s); s == "" {
		return def, nil
	}
	v, err := strconv.Atoi(s)
	if err != nil {
		return 0, fmt.Errorf("bound %q is not an integer", s)
	}
	if v < 0 {
		v += k
	}
	return max(0, min(v, k)), nil
}
