package checkpoint

import (
	"archive/zip"
	"bytes"
	"encoding/binary"
	"fmt"
	"math"
	"testing"
)

// pk builds a pickle by hand, to make the damaged and hostile files that
// PyTorch would never write.
type pk []byte

func (p pk) op(ops ...byte) pk { return append(p, ops...) }

func (p pk) str(s string) pk {
	p = append(p, 'X')
	p = binary.LittleEndian.AppendUint32(p, uint32(len(s)))
	return append(p, s...)
}

func (p pk) global(module, name string) pk { return append(p, "c"+module+"\n"+name+"\n"...) }

func (p pk) int(v int32) pk {
	return binary.LittleEndian.AppendUint32(append(p, 'J'), uint32(v))
}

func (p pk) long(v int64) pk {
	return binary.LittleEndian.AppendUint64(p.op(0x8a, 8), uint64(v))
}

func (p pk) ints(vs ...int64) pk {
	p = p.op('(')
	for _, v := range vs {
		p = p.long(v)
	}
	return p.op('t')
}

// tensor appends _rebuild_tensor_v2 of a storage view.
func (p pk) tensor(class, key string, numel int64, offset int32, shape, stride []int64) pk {
	p = p.global("torch._utils", "_rebuild_tensor_v2").op('(')
	p = p.op('(').str("storage").global("torch", class).str(key).str("cpu").long(numel).op('t', 'Q')
	p = p.int(offset).ints(shape...).ints(stride...)
	return p.op(0x89).global("collections", "OrderedDict").op(')', 'R', 't', 'R')
}

// stateDictPickle returns a pickle of {"w": tensor}.
func stateDictPickle(tensor pk) []byte {
	return pk{0x80, 2, '}', '(', 'X', 1, 0, 0, 0, 'w'}.op(tensor...).op('u', '.')
}

// torchZip returns a zip of the given records under "archive/".
func torchZip(t *testing.T, records ...any) []byte {
	t.Helper()
	var buf bytes.Buffer
	w := zip.NewWriter(&buf)
	for i := 0; i < len(records); i += 2 {
		method := zip.Store
		name := records[i].(string)
		if name[0] == '~' {
			method, name = zip.Deflate, name[1:]
		}
		f, err := w.CreateHeader(&zip.FileHeader{Name: "archive/" + name, Method: method})
		if err != nil {
			t.Fatal(err)
		}
		f.Write(records[i+1].([]byte))
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func f32s(order binary.AppendByteOrder, vs ...float32) []byte {
	var b []byte
	for _, v := range vs {
		b = order.AppendUint32(b, math.Float32bits(v))
	}
	return b
}

// TestBigEndian: a file from a big-endian machine reads little-endian.
func TestBigEndian(t *testing.T) {
	p := pk{0x80, 2, '}', '('}.str("t").tensor("FloatStorage", "0", 3, 0, []int64{2}, []int64{2})
	p = p.str("n").tensor("LongStorage", "1", 1, 0, nil, nil).op('u', '.')
	data := torchZip(t, "data.pkl", []byte(p),
		"data/0", f32s(binary.BigEndian, 1.5, 7, -2),
		"data/1", binary.BigEndian.AppendUint64(nil, 258),
		"byteorder", []byte("big"))
	ts, err := Read(data, Options{})
	if err != nil {
		t.Fatal(err)
	}
	same(t, "big-endian", ts, []Tensor{
		{Name: "n", DType: I64, Shape: []int64{}, Data: binary.LittleEndian.AppendUint64(nil, 258)},
		{Name: "t", DType: F32, Shape: []int64{2}, Data: f32s(binary.LittleEndian, 1.5, -2)},
	})
	data = torchZip(t, "data.pkl", []byte(p),
		"data/0", f32s(binary.LittleEndian, 1.5, 7, -2),
		"data/1", binary.LittleEndian.AppendUint64(nil, 258),
		"byteorder", []byte("little"))
	little, err := Read(data, Options{})
	if err != nil {
		t.Fatal(err)
	}
	same(t, "little-endian", little, ts)
	data = torchZip(t, "data.pkl", []byte(p), "byteorder", []byte("middle"))
	_, err = Read(data, Options{})
	wantErr(t, err, "archive/byteorder", `unknown byte order "middle"`)
}

// TestHostile: damaged or hostile torch.save files give errors that name
// the record and key, without panics or huge allocations.
func TestHostile(t *testing.T) {
	four := f32s(binary.LittleEndian, 1, 2, 3, 4)
	view := func(numel int64, offset int32, shape, stride []int64) []byte {
		return stateDictPickle(pk{}.tensor("FloatStorage", "0", numel, offset, shape, stride))
	}
	for _, c := range []struct {
		what  string
		files []any
		want  []string
	}{
		{"expanded far past the copy limit",
			[]any{"data.pkl", view(4, 0, []int64{1 << 20, 1 << 10}, []int64{0, 0}), "data/0", four},
			[]string{`"w"`, "exceed the limit"}},
		{"a view past the storage",
			[]any{"data.pkl", view(4, 2, []int64{3}, []int64{1}), "data/0", four},
			[]string{`key "w" (archive/data/0)`, "reaches element 4 of a 4-element storage"}},
		{"a view of huge strides",
			[]any{"data.pkl", view(4, 0, []int64{2, 2}, []int64{math.MaxInt64 / 2, 1}), "data/0", four},
			[]string{`"w"`, "spans too far"}},
		{"a negative dimension",
			[]any{"data.pkl", view(4, 0, []int64{-1}, []int64{1}), "data/0", four},
			[]string{`"w"`, "negative dimension"}},
		{"a negative offset",
			[]any{"data.pkl", view(4, -1, []int64{1}, []int64{1}), "data/0", four},
			[]string{`"w"`, "negative storage offset"}},
		{"a storage shorter than it says",
			[]any{"data.pkl", view(5, 0, []int64{4}, []int64{1}), "data/0", four},
			[]string{`key "w": archive/data/0: 16 bytes, want 20`}},
		{"a missing storage",
			[]any{"data.pkl", view(4, 0, []int64{4}, []int64{1})},
			[]string{`key "w": zip: no archive/data/0 record`}},
		{"a compressed record",
			[]any{"~data.pkl", view(4, 0, []int64{4}, []int64{1}), "data/0", four},
			[]string{"archive/data.pkl: compressed record"}},
		{"no data.pkl",
			[]any{"data/0", four},
			[]string{"no archive/data.pkl record"}},
		{"a string longer than the pickle",
			[]any{"data.pkl", []byte("\x80\x02X\xff\xff\xff\x7fabc")},
			[]string{"archive/data.pkl: pickle opcode 0x58 at offset 2: pickle ends early"}},
		{"a stack underflow",
			[]any{"data.pkl", []byte("\x80\x02R.")},
			[]string{"opcode 0x52 at offset 2: stack underflow"}},
		{"an unset memo entry",
			[]any{"data.pkl", []byte("\x80\x02h\x05.")},
			[]string{"memo entry 5 is not set"}},
		{"an unsupported opcode",
			[]any{"data.pkl", []byte("\x80\x02i__main__\nX\n.")},
			[]string{"opcode 0x69 at offset 2: unsupported opcode"}},
		{"a list that holds itself",
			[]any{"data.pkl", []byte("\x80\x02]q\x00h\x00a.")},
			[]string{"the checkpoint is a list, not a dict of tensors"}},
		{"a key that is not a string",
			[]any{"data.pkl", []byte(pk{0x80, 2, '}', 'K', 1}.tensor("FloatStorage", "0", 4, 0, []int64{4}, []int64{1}).op('s', '.')), "data/0", four},
			[]string{"key 0 is an int, not a string"}},
		{"a storage of an unknown class",
			[]any{"data.pkl", stateDictPickle(pk{}.tensor("QInt8Storage", "0", 4, 0, []int64{4}, []int64{1})), "data/0", four},
			[]string{"storage of unsupported type torch.QInt8Storage"}},
		{"a tensor with a non-tuple size",
			[]any{"data.pkl", []byte(pk{0x80, 2, '}', 'X', 1, 0, 0, 0, 'w'}.global("torch._utils", "_rebuild_tensor_v2").
				op('(', '(').str("storage").global("torch", "FloatStorage").str("0").str("cpu").int(4).op('t', 'Q').
				int(0).int(4).int(1).op('t', 'R', 's', '.')), "data/0", four},
			[]string{"_rebuild_tensor size: an int, not a tuple"}},
	} {
		_, err := Read(torchZip(t, c.files...), Options{})
		if err == nil {
			t.Errorf("%s: no error", c.what)
			continue
		}
		wantErr(t, err, c.want...)
	}
}

// TestDictSubclass: a state dict may be an instance of a dict subclass.
func TestDictSubclass(t *testing.T) {
	p := pk{0x80, 2}.global("__main__", "StateDict").op(')', 0x81, '(').str("w")
	p = p.tensor("FloatStorage", "0", 4, 1, []int64{2}, []int64{1}).op('u', '.')
	ts, err := Read(torchZip(t, "data.pkl", []byte(p), "data/0", f32s(binary.LittleEndian, 1, 2, 3, 4)), Options{})
	if err != nil {
		t.Fatal(err)
	}
	same(t, "dict subclass", ts, []Tensor{{Name: "w", DType: F32, Shape: []int64{2}, Data: f32s(binary.LittleEndian, 2, 3)}})
}

// TestCRC: a changed byte in a storage is caught.
func TestCRC(t *testing.T) {
	data := torchZip(t, "data.pkl", view1(), "data/0", f32s(binary.LittleEndian, 1, 2, 3, 4))
	if _, err := Read(data, Options{}); err != nil {
		t.Fatal(err)
	}
	i := bytes.Index(data, f32s(binary.LittleEndian, 1, 2, 3, 4))
	data[i+1] ^= 1
	_, err := Read(data, Options{})
	wantErr(t, err, `key "w": archive/data/0: CRC mismatch`)
}

func view1() []byte {
	return stateDictPickle(pk{}.tensor("FloatStorage", "0", 4, 0, []int64{4}, []int64{1}))
}

// safetensors returns a safetensors file of a header and data.
func safetensors(header string, data []byte) []byte {
	b := binary.LittleEndian.AppendUint64(nil, uint64(len(header)))
	return append(append(b, header...), data...)
}

func TestSafetensorsErrors(t *testing.T) {
	eight := make([]byte, 8)
	entry := func(name, dtype, shape string, begin, end int) string {
		return fmt.Sprintf(`%q: {"dtype": %q, "shape": %s, "data_offsets": [%d, %d]}`, name, dtype, shape, begin, end)
	}
	for _, c := range []struct {
		what string
		file []byte
		want []string
	}{
		{"offsets past the end", safetensors("{"+entry("w", "F32", "[4]", 0, 16)+"}", eight),
			[]string{`safetensors: header: "w": data_offsets [0, 16] lie outside the 8-byte data`}},
		{"a file too short for a header", safetensors("{}", nil)[:9],
			[]string{"unknown checkpoint format"}},
		{"a header longer than the file", append(binary.LittleEndian.AppendUint64(nil, 100), `{"w": {}}`...),
			[]string{"safetensors: the 100-byte header runs past the 17-byte file"}},
		{"a size that does not fit the shape", safetensors("{"+entry("w", "F32", "[1]", 0, 8)+"}", eight),
			[]string{`"w": data_offsets [0, 8] hold 8 bytes, want 4 for float32 [1]`}},
		{"a gap", safetensors("{"+entry("a", "F16", "[1]", 0, 2)+","+entry("b", "F16", "[1]", 4, 6)+"}", eight[:6]),
			[]string{`"b": data_offsets start at 4, want 2`}},
		{"an overlap", safetensors("{"+entry("a", "F32", "[2]", 0, 8)+","+entry("b", "F32", "[1]", 4, 8)+"}", eight),
			[]string{`"b": data_offsets start at 4, want 8`}},
		{"bytes after the tensors", safetensors("{"+entry("a", "F32", "[1]", 0, 4)+"}", eight),
			[]string{"tensors cover 4 bytes of the 8-byte data"}},
		{"an unknown dtype", safetensors("{"+entry("a", "F128", "[1]", 0, 8)+"}", eight),
			[]string{`"a": unsupported dtype "F128"`}},
		{"a negative dimension", safetensors("{"+entry("a", "U8", "[-8]", 0, 8)+"}", eight),
			[]string{`"a": negative dimension`}},
		{"no shape", safetensors(`{"a": {"dtype": "U8", "data_offsets": [0, 8]}}`, eight),
			[]string{`"a": no shape`}},
		{"bad metadata", safetensors(`{"__metadata__": {"k": 1}}`, nil),
			[]string{"__metadata__"}},
		{"bad JSON", safetensors(`{"a": [}`, nil),
			[]string{"safetensors: header: invalid character"}},
	} {
		_, err := Read(c.file, Options{})
		if err == nil {
			t.Errorf("%s: no error", c.what)
			continue
		}
		wantErr(t, err, c.want...)
	}

	ts, err := Read(safetensors(`{"__metadata__": {"format": "pt"}, `+entry("e", "F32", "[0, 3]", 0, 0)+", "+entry("s", "I64", "[]", 0, 8)+"}", eight), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(ts) != 2 || ts[0].Numel() != 0 || len(ts[0].Data) != 0 || ts[1].Numel() != 1 {
		t.Errorf("empty and scalar tensors read as %+v", ts)
	}
}
