package window

import (
	"reflect"
	"testing"
)

func TestParse(t *testing.T) {
	tests := []struct {
		spec string
		k    int
		want []Window
		err  bool
	}{
		{"", 5, []Window{{"all", 0, 5}}, false},
		{"early=0:3,late=-3:", 12, []Window{{"early", 0, 3}, {"late", 9, 12}}, false},
		{"mid=2:-2", 10, []Window{{"mid", 2, 8}}, false},
		{"all=:", 4, []Window{{"all", 0, 4}}, false},
		{"big=-100:100", 4, []Window{{"big", 0, 4}}, false},
		{"empty=3:3", 5, nil, true},
		{"x=0:2,x=1:3", 5, nil, true},
		{"noslice", 5, nil, true},
		{"a=1:b", 5, nil, true},
	}
	for _, tt := range tests {
		got, err := Parse(tt.spec, tt.k)
		if (err != nil) != tt.err || (!tt.err && !reflect.DeepEqual(got, tt.want)) {
			t.Errorf("Parse(%q, %d) = %v, %v; want %v (error %v)", tt.spec, tt.k, got, err, tt.want, tt.err)
		}
	}
}
