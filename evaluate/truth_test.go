package evaluate

import (
	"bytes"
	"encoding/csv"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

type truthRow struct {
	id   string
	flag bool
}

func readAllTruth(data []byte, column string) (string, []truthRow, error) {
	var rows []truthRow
	name, err := ReadTruth(bytes.NewReader(data), column, func(id string, flag bool) bool {
		rows = append(rows, truthRow{id, flag})
		return true
	})
	return name, rows, err
}

var (
	lineRE    = regexp.MustCompile(`line (\d+)`)
	notBoolRE = regexp.MustCompile(`= ("(?:[^"\\]|\\.)*") is not a boolean$`)
)

// FuzzReadTruth: a truth CSV reads into ids that are in the file (as its
// bytes, or quoted) and a flag column the header names, and written again
// as CSV reads back the same; or the error names a line of the file.
func FuzzReadTruth(f *testing.F) {
	f.Add([]byte("example_id,noisy\na/1.png,1\na/2.png,false\n\"b,3\",YES\n"), "")
	f.Add([]byte("\ufeffexample_id,ood\r\nx,0\r\n"), "ood")
	f.Add([]byte("example_id,noisy\n\"multi\nline\",1\nz,maybe\n"), "noisy")
	f.Add([]byte("example_id,noisy\na,1,extra\n"), "")
	f.Add([]byte("id,noisy\na,1\n"), "")
	f.Add([]byte("example_id,x,noisy\na,?, no \n"), "noisy")
	f.Add([]byte("example_id,noisy\n\"unterminated,1\n"), "")
	f.Fuzz(func(t *testing.T, data []byte, column string) {
		name, rows, err := readAllTruth(data, column)
		if err != nil {
			m := lineRE.FindStringSubmatch(err.Error())
			if m == nil {
				t.Fatalf("an error naming no line: %v", err)
			}
			lines := strings.Split(string(data), "\n")
			n, _ := strconv.Atoi(m[1])
			if n < 1 || n > len(lines) {
				t.Fatalf("line %d of a file of %d lines: %v", n, len(lines), err)
			}
			// A flag that is not a boolean starts on the line named.
			if m := notBoolRE.FindStringSubmatch(err.Error()); m != nil {
				v, uerr := strconv.Unquote(m[1])
				if uerr != nil {
					t.Fatalf("unquoting %s: %v", m[1], uerr)
				}
				first, _, _ := strings.Cut(v, "\n")
				first = strings.TrimSuffix(first, "\r")
				if l := lines[n-1]; !strings.Contains(l, first) && !strings.Contains(l, strings.ReplaceAll(first, `"`, `""`)) {
					t.Fatalf("%v: but line %d is %q", err, n, l)
				}
			}
			return
		}
		if column != "" && name != column {
			t.Fatalf("flag column %q, asked for %q", name, column)
		}
		text := strings.ReplaceAll(string(data), "\r\n", "\n")
		for _, r := range rows {
			if !strings.Contains(text, r.id) && !strings.Contains(text, strings.ReplaceAll(r.id, `"`, `""`)) {
				t.Fatalf("id %q is not in the file", r.id)
			}
		}
		// Written again, the rows read back the same.
		var b bytes.Buffer
		w := csv.NewWriter(&b)
		w.Write([]string{"example_id", name})
		for _, r := range rows {
			w.Write([]string{r.id, strconv.FormatBool(r.flag)})
		}
		w.Flush()
		name2, rows2, err := readAllTruth(b.Bytes(), name)
		if err != nil || name2 != name || len(rows2) != len(rows) {
			t.Fatalf("written again: %q, %d rows, %v; was %q, %d rows", name2, len(rows2), err, name, len(rows))
		}
		for i := range rows {
			if rows[i] != rows2[i] {
				t.Fatalf("row %d: %+v written again reads %+v", i, rows[i], rows2[i])
			}
		}
	})
}
