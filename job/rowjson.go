package job

import (
	"encoding/json"
	"math"
	"reflect"
	"strconv"
)

// ScoreRows travel in activity and workflow results (WriteResult.Hardest,
// Result.Hardest), which Temporal encodes as JSON, and JSON has no number
// for NaN: a row without a label, whose loss and confidence are NaN, among
// the hardest made WriteScores fail at every attempt. MarshalJSON writes
// the non-finite float fields as the strings "NaN", "+Inf" and "-Inf";
// UnmarshalJSON reads them back, and plain numbers as before.

// MarshalJSON encodes r as encoding/json encodes its fields by name, with
// NaN and infinite floats as strings.
func (r ScoreRow) MarshalJSON() ([]byte, error) {
	v := reflect.ValueOf(r)
	m := make(map[string]any, v.NumField())
	for i := range v.NumField() {
		f := v.Field(i)
		if f.Kind() == reflect.Float64 {
			if x := f.Float(); math.IsNaN(x) || math.IsInf(x, 0) {
				m[v.Type().Field(i).Name] = strconv.FormatFloat(x, 'g', -1, 64)
				continue
			}
		}
		m[v.Type().Field(i).Name] = f.Interface()
	}
	return json.Marshal(m)
}

// UnmarshalJSON decodes what MarshalJSON encodes, and the plain encoding of
// a ScoreRow (histories recorded before it).
func (r *ScoreRow) UnmarshalJSON(b []byte) error {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil {
		return err
	}
	v := reflect.ValueOf(r).Elem()
	for i := range v.NumField() {
		raw, ok := m[v.Type().Field(i).Name]
		if !ok {
			continue
		}
		f := v.Field(i)
		if f.Kind() == reflect.Float64 && len(raw) > 0 && raw[0] == '"' {
			var s string
			if err := json.Unmarshal(raw, &s); err != nil {
				return err
			}
			x, err := strconv.ParseFloat(s, 64)
			if err != nil {
				return &json.UnmarshalTypeError{Value: "string " + s, Type: f.Type(), Field: v.Type().Field(i).Name}
			}
			f.SetFloat(x)
			continue
		}
		if err := json.Unmarshal(raw, f.Addr().Interface()); err != nil {
			return err
		}
	}
	return nil
}
