package checkpoint

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"sort"
)

// A safetensors file is an 8-byte little-endian header length, a JSON
// header of that length, and a byte buffer. The header maps each tensor's
// name to its dtype, shape and data_offsets [begin, end) in the buffer,
// plus an optional "__metadata__" map of strings. As the reference
// implementation does, the reader requires the tensors to tile the buffer
// exactly, without gaps or overlaps.

// isSafetensors reports whether data starts like a safetensors file: a
// plausible header length, then a JSON object.
func isSafetensors(data []byte) bool {
	if len(data) < 10 || data[8] != '{' {
		return false
	}
	n := binary.LittleEndian.Uint64(data)
	return n >= 2 && n < 1<<32
}

// stEntry is one tensor's entry in the header.
type stEntry struct {
	DType       string  `json:"dtype"`
	Shape       []int64 `json:"shape"`
	DataOffsets []int64 `json:"data_offsets"`
}

// readSafetensors returns the tensors of a safetensors file.
func readSafetensors(data []byte, opts Options) ([]Tensor, []string, error) {
	if len(data) < 8 {
		return nil, nil, fmt.Errorf("safetensors: %d bytes, too short for a header", len(data))
	}
	n := binary.LittleEndian.Uint64(data)
	if n > uint64(len(data)-8) {
		return nil, nil, fmt.Errorf("safetensors: the %d-byte header runs past the %d-byte file (a truncated file?)", n, len(data))
	}
	var header map[string]json.RawMessage
	if err := json.Unmarshal(data[8:8+n], &header); err != nil {
		return nil, nil, fmt.Errorf("safetensors: header: %w", err)
	}
	buf := data[8+n:]
	var kept []Tensor
	var dropped []string
	type span struct {
		name       string
		begin, end int64
	}
	var spans []span
	names := make([]string, 0, len(header))
	for name := range header {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		raw := header[name]
		if name == "__metadata__" {
			var meta map[string]string
			if err := json.Unmarshal(raw, &meta); err != nil {
				return nil, nil, fmt.Errorf("safetensors: header: __metadata__: %w", err)
			}
			continue
		}
		var e stEntry
		if err := json.Unmarshal(raw, &e); err != nil {
			return nil, nil, fmt.Errorf("safetensors: header: %q: %w", name, err)
		}
		dt := safetensorsDType(e.DType)
		if dt == Invalid {
			return nil, nil, fmt.Errorf("safetensors: header: %q: unsupported dtype %q", name, e.DType)
		}
		if e.Shape == nil {
			return nil, nil, fmt.Errorf("safetensors: header: %q: no shape", name)
		}
		count, err := numel(e.Shape)
		if err != nil {
			return nil, nil, fmt.Errorf("safetensors: header: %q: %w", name, err)
		}
		if len(e.DataOffsets) != 2 {
			return nil, nil, fmt.Errorf("safetensors: header: %q: data_offsets %v, want [begin, end]", name, e.DataOffsets)
		}
		b, end := e.DataOffsets[0], e.DataOffsets[1]
		if b < 0 || end < b || end > int64(len(buf)) {
			return nil, nil, fmt.Errorf("safetensors: header: %q: data_offsets [%d, %d] lie outside the %d-byte data after the header (a truncated file?)",
				name, b, end, len(buf))
		}
		if want := count * int64(dt.Size()); end-b != want {
			return nil, nil, fmt.Errorf("safetensors: header: %q: data_offsets [%d, %d] hold %d bytes, want %d for %s %v",
				name, b, end, end-b, want, dt, e.Shape)
		}
		spans = append(spans, span{name, b, end})
		key, ok := strip(name, opts.Prefix)
		if !ok {
			dropped = append(dropped, name)
			continue
		}
		kept = append(kept, Tensor{Name: key, DType: dt, Shape: e.Shape, Data: buf[b:end:end]})
	}
	sort.Slice(spans, func(i, j int) bool {
		if spans[i].begin != spans[j].begin {
			return spans[i].begin < spans[j].begin
		}
		return spans[i].end < spans[j].end
	})
	at := int64(0)
	for _, s := range spans {
		if s.begin != at {
			return nil, nil, fmt.Errorf("safetensors: header: %q: data_offsets start at %d, want %d (tensors must tile the data without gaps or overlaps)", s.name, s.begin, at)
		}
		at = s.end
	}
	if at != int64(len(buf)) {
		return nil, nil, fmt.Errorf("safetensors: tensors cover %d bytes of the %d-byte data after the header", at, len(buf))
	}
	return kept, dropped, nil
}

// safetensorsDType returns the DType of a safetensors dtype name, or
// Invalid.
func safetensorsDType(name string) DType {
	for d := range dtypes {
		if name != "" && dtypes[d].safetensors == name {
			return DType(d)
		}
	}
	return Invalid
}
