package evaluate

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"strings"
)

// ReadTruth reads a truth CSV: a header naming example_id and the flag
// column (column, or where column is "" the first column after the first
// that is not example_id), then one example per record, whose flag is 1,
// true or yes, or 0, false or no (any case, spaces around). fn gets each
// id and flag in file order, and stops the reading by returning false.
// ReadTruth returns the flag column's name. Its errors name the line, as
// the file counts them (a quoted field may hold line breaks). A UTF-8 byte
// order mark before the header, as spreadsheets write, is skipped.
func ReadTruth(r io.Reader, column string, fn func(id string, flag bool) bool) (string, error) {
	cr := csv.NewReader(r)
	cr.ReuseRecord = true
	head, err := cr.Read()
	if err == io.EOF {
		return "", errors.New("line 1: no header (example_id and a boolean column)")
	}
	if err != nil {
		return "", fmt.Errorf("header: %w", err) // a *csv.ParseError, naming the line
	}
	head = append([]string(nil), head...)
	if len(head) > 0 {
		head[0] = strings.TrimPrefix(head[0], "\ufeff")
	}
	idCol, flagCol := -1, -1
	for i, h := range head {
		switch {
		case h == "example_id":
			idCol = i
		case (column == "" && flagCol < 0 && i > 0) || h == column:
			flagCol = i
		}
	}
	if idCol < 0 || flagCol < 0 {
		want := column
		if want == "" {
			want = "a boolean"
		}
		return "", fmt.Errorf("line 1: want columns example_id and %s, have %q", want, head)
	}
	for {
		rec, err := cr.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			return "", err // a *csv.ParseError, naming the line
		}
		var flag bool
		switch strings.ToLower(strings.TrimSpace(rec[flagCol])) {
		case "1", "true", "yes":
			flag = true
		case "0", "false", "no":
		default:
			line, _ := cr.FieldPos(flagCol)
			return "", fmt.Errorf("line %d: %s = %q is not a boolean", line, head[flagCol], rec[flagCol])
		}
		if !fn(rec[idCol], flag) {
			break
		}
	}
	return head[flagCol], nil
}
