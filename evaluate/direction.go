package evaluate

import (
	"fmt"
	"math"
	"slices"
	"strings"
)

// Direction is the end of a score that flags examples: High, the highest
// scores first, or Low, the lowest.
type Direction int8

const (
	High Direction = iota
	Low
)

// String returns "high" or "low".
func (d Direction) String() string {
	if d == Low {
		return "low"
	}
	return "high"
}

// Directions chooses, for each score column, the end that vog eval takes
// to flag examples and measures AUROC and AUPR in. The zero value takes
// each column's conventional end (Column.Flags).
type Directions struct {
	// Mode is how a column not in Ends is oriented: "" or "conventional"
	// (Column.Flags), "high" (every column high, as vog eval measured
	// before it stated directions) or "best" (per window, the end whose
	// AUROC is at least 0.5; the conventional end where the AUROC is NaN).
	Mode string
	// Ends are the columns given an end of their own, by name.
	Ends map[string]Direction
}

// ParseDirections parses a --score-direction value: comma-separated
// items, each a mode (conventional, high, best; at most one) or NAME=high
// or NAME=low for a column of Columns. The empty string is the zero
// Directions.
func ParseDirections(s string) (Directions, error) {
	var d Directions
	if s == "" {
		return d, nil
	}
	for _, item := range strings.Split(s, ",") {
		item = strings.TrimSpace(item)
		name, end, isEnd := strings.Cut(item, "=")
		if !isEnd {
			if !slices.Contains([]string{"conventional", "high", "best"}, item) {
				return Directions{}, fmt.Errorf("%q: not conventional, high, best or NAME=high|low", item)
			}
			if d.Mode != "" {
				return Directions{}, fmt.Errorf("%q: a second mode after %q", item, d.Mode)
			}
			d.Mode = item
			continue
		}
		if !slices.ContainsFunc(Columns, func(c Column) bool { return c.Name == name }) {
			return Directions{}, fmt.Errorf("%q: no score column %q", item, name)
		}
		var dir Direction
		switch end {
		case "high":
		case "low":
			dir = Low
		default:
			return Directions{}, fmt.Errorf("%q: the end is high or low", item)
		}
		if d.Ends == nil {
			d.Ends = map[string]Direction{}
		}
		d.Ends[name] = dir
	}
	return d, nil
}

// End returns the end of column c that flags examples, h being its
// histogram in the window at hand (only mode best reads it).
func (d Directions) End(c Column, h *Hist) Direction {
	if end, ok := d.Ends[c.Name]; ok {
		return end
	}
	switch d.Mode {
	case "high":
		return High
	case "best":
		if a := h.AUROC(); !math.IsNaN(a) {
			if a >= 0.5 {
				return High
			}
			return Low
		}
	}
	return c.Flags
}

// String describes d as the legend of vog eval's table does.
func (d Directions) String() string {
	var s string
	switch d.Mode {
	case "high":
		s = "the high end of every score"
	case "best":
		s = "per window, the end that ranks them first, AUROC at least 0.5"
	default:
		s = "each score's conventional end: low conf_mean and margin_mean, high for the rest"
	}
	if len(d.Ends) > 0 {
		names := make([]string, 0, len(d.Ends))
		for n := range d.Ends {
			names = append(names, n)
		}
		slices.Sort(names)
		for i, n := range names {
			names[i] = n + " " + d.Ends[n].String()
		}
		s += "; " + strings.Join(names, ", ")
	}
	return s
}
