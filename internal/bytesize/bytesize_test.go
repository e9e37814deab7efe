package bytesize

import "testing"

func TestParse(t *testing.T) {
	for _, c := range []struct {
		in   string
		want int64
	}{
		{"0", 0}, {"512", 512}, {"512B", 512}, {"100GB", 100e9}, {"100 GB", 100e9}, {"100gb", 100e9}, {"100G", 100e9},
		{"500GB", 500e9}, {"2TiB", 2 << 40}, {"2 tib", 2 << 40}, {"2Ti", 2 << 40}, {"1.5TB", 1.5e12}, {"1.5T", 1.5e12},
		{"64MiB", 64 << 20}, {"3kB", 3000}, {"1PB", 1e15}, {" 7 GiB ", 7 << 30},
	} {
		got, err := Parse(c.in)
		if err != nil || got != c.want {
			t.Errorf("Parse(%q) = %d, %v; want %d", c.in, got, err, c.want)
		}
	}
	for _, bad := range []string{"", "GB", "-1GB", "1.2.3GB", "10 XB", "1e3", "10 G B", "99999999PB"} {
		if got, err := Parse(bad); err == nil {
			t.Errorf("Parse(%q) = %d, want an error", bad, got)
		}
	}
}

func TestFormat(t *testing.T) {
	for _, c := range []struct {
		n    int64
		want string
	}{
		{0, "0 B"}, {999, "999 B"}, {1000, "1 kB"}, {376_806_000, "376.8 MB"}, {514_322_000_000, "514.3 GB"},
		{100e9, "100 GB"}, {2 << 40, "2.199 TB"}, {6_171_000_000_000, "6.171 TB"},
	} {
		if got := Format(c.n); got != c.want {
			t.Errorf("Format(%d) = %q, want %q", c.n, got, c.want)
		}
	}
	var f Flag
	if err := f.Set("2TiB"); err != nil || int64(f) != 2<<40 || f.String() != "2.199 TB" {
		t.Fatalf("Flag: %d %q %v", f, f.String(), err)
	}
	if err := f.Set("lots"); err == nil {
		t.Fatal("Flag.Set(lots) accepted")
	}
}
