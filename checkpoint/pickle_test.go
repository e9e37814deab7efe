package checkpoint

import (
	"encoding/binary"
	"reflect"
	"testing"
)

func dictOf(kv ...any) *dict {
	d := &dict{}
	for i := 0; i < len(kv); i += 2 {
		d.set(kv[i], kv[i+1])
	}
	return d
}

// TestOpcodes: each opcode the unpickler knows makes the value Python's
// pickle would, or a placeholder for what it does not run.
func TestOpcodes(t *testing.T) {
	for _, c := range []struct {
		pickle string
		want   any
	}{
		{"\x80\x02N.", nil},
		{"\x88.", true},
		{"\x89.", false},
		{"K\x05.", int64(5)},
		{"J\xff\xff\xff\xff.", int64(-1)},
		{"M\x00\x01.", int64(256)},
		{"\x8a\x00.", int64(0)},
		{"\x8a\x01\xff.", int64(-1)},
		{"\x8a\x02\x00\x80.", int64(-32768)},
		{"\x8a\x08\x00\x00\x00\x00\x00\x00\x00\x80.", int64(-1 << 63)},
		{"\x8a\x09\x00\x00\x00\x00\x00\x00\x00\x00\x01.", bigInt{hex: "0x10000000000000000"}},
		{"\x8b\x01\x00\x00\x00\x07.", int64(7)},
		{"I01\n.", true},
		{"I00\n.", false},
		{"I-42\n.", int64(-42)},
		{"G\x3f\xf8\x00\x00\x00\x00\x00\x00.", 1.5},
		{"X\x02\x00\x00\x00hi.", "hi"},
		{"T\x02\x00\x00\x00hi.", "hi"},
		{"U\x02hi.", "hi"},
		{"\x8c\x02hi.", "hi"},
		{"\x8d\x02\x00\x00\x00\x00\x00\x00\x00hi.", "hi"},
		{"B\x02\x00\x00\x00hi.", []byte("hi")},
		{"C\x02hi.", []byte("hi")},
		{"\x8e\x02\x00\x00\x00\x00\x00\x00\x00hi.", []byte("hi")},
		{"\x96\x02\x00\x00\x00\x00\x00\x00\x00hi.", []byte("hi")},
		{").", tuple{}},
		{"(K\x01K\x02t.", tuple{int64(1), int64(2)}},
		{"K\x01\x85.", tuple{int64(1)}},
		{"K\x01K\x02K\x03\x87.", tuple{int64(1), int64(2), int64(3)}},
		{"].", &list{}},
		{"(K\x01l.", &list{items: []any{int64(1)}}},
		{"]K\x01a.", &list{items: []any{int64(1)}}},
		{"](K\x01K\x02e.", &list{items: []any{int64(1), int64(2)}}},
		{"}.", &dict{}},
		{"(U\x01aK\x01d.", dictOf("a", int64(1))},
		{"}U\x01aK\x01sU\x01aK\x02s.", dictOf("a", int64(2))},
		{"}(K\x01K\x02U\x01bNu.", dictOf(int64(1), int64(2), "b", nil)},
		{"K\x01K\x020.", int64(1)},
		{"K\x01(K\x02K\x031.", int64(1)},
		{"K\x012\x86.", tuple{int64(1), int64(1)}},
		{"\x8f(K\x01\x90.", &object{class: "builtins.set"}},
		{"(K\x01\x91.", &object{class: "builtins.frozenset"}},
		{"K\x07\x94h\x00\x86.", tuple{int64(7), int64(7)}},
		{"K\x07q\x09h\x09\x86.", tuple{int64(7), int64(7)}},
		{"K\x07r\x05\x00\x01\x00j\x05\x00\x01\x00\x86.", tuple{int64(7), int64(7)}},
		{"\x80\x04\x95\x02\x00\x00\x00\x00\x00\x00\x00N.", nil},
		{"\x8c\x01m\x8c\x01n\x93.", global{"m", "n"}},
		{"cm\nC\n.", global{"m", "C"}},
		{"cm\nC\n)\x81}b.", &object{class: "m.C", state: &dict{}}},
		{"cm\nC\n)}\x92.", &object{class: "m.C"}},
		{"cm\nC\n)\x81U\x01kK\x01s.", &object{class: "m.C", items: dictOf("k", int64(1))}},
		{"cm\nC\n)\x81K\x01a.", &object{class: "m.C"}},
		{"cm\nf\n)R.", &object{class: "m.f"}},
		{"K\x01)R.", &object{class: "result of an int"}},
		{"ccollections\nOrderedDict\n)\x81.", &dict{}},
		{"ccollections\nOrderedDict\n](U\x01aK\x01\x86e\x85R.", dictOf("a", int64(1))},
		{"(U\x07storagecm\nX\nK\x01K\x02t\x85Q.", &object{class: "persistent id"}},
		{"ctorch._utils\n_rebuild_parameter\nK\x01\x85R.", int64(1)},
	} {
		got, _, err := unpickle([]byte(c.pickle))
		if err != nil {
			t.Errorf("%q: %v", c.pickle, err)
		} else if !reflect.DeepEqual(got, c.want) {
			t.Errorf("%q = %#v, want %#v", c.pickle, got, c.want)
		}
	}
}

func TestOpcodeErrors(t *testing.T) {
	for _, c := range []struct{ pickle, want string }{
		{"\x80\x06N.", "opcode 0x80 at offset 0: pickle protocol 6"},
		{"N", "pickle ends early"},
		{"Ixx\n.", `INT "xx"`},
		{"Ixx", "pickle ends early"},
		{"(.", "stack underflow"},
		{"(K\x01\x86.", "stack underflow"},
		{"1.", "no mark"},
		{"K\x01K\x02\x93.", "STACK_GLOBAL of an int and an int"},
		{"}(K\x01u.", "odd number of dict items"},
		{"K\x01K\x01a.", "append to an int"},
		{"K\x01K\x01K\x01s.", "set items on an int"},
		{"cm\nf\nK\x01R.", "m.f called with an int, not a tuple"},
		{"ccollections\nOrderedDict\nK\x01\x85R.", "OrderedDict of an int"},
		{"ccollections\nOrderedDict\n]K\x01a\x85R.", "OrderedDict item an int"},
		{"ctorch._utils\n_rebuild_parameter\n)R.", "with no arguments"},
		{"ctorch._utils\n_rebuild_tensor_v2\nK\x01\x85R.", "_rebuild_tensor with 1 arguments"},
		{"ctorch._utils\n_rebuild_tensor_v2\n(K\x01K\x01K\x01K\x01tR.", "_rebuild_tensor of an int, not a storage"},
		{"ctorch._utils\n_rebuild_tensor_v3\n(tR.", "_rebuild_tensor_v3 with 0 arguments"},
		{"ctorch._utils\n_rebuild_tensor_v3\n(NNNNNNctorch\nnope\ntR.", "_rebuild_tensor_v3 with dtype torch.nope"},
		{"(U\x07storagetQ.", "storage persistent id with 1 fields, want 5"},
		{"(U\x07storagecm\nX\nK\x01K\x01K\x01tQ.", "storage of unsupported type m.X"},
		{"(U\x07storagectorch\nFloatStorage\nK\x01K\x01K\x01tQ.", "storage key an int"},
		{"(U\x07storagectorch\nFloatStorage\nU\x010K\x01J\xff\xff\xff\xfftQ.", "storage 0 size -1"},
		{"h\x00.", "memo entry 0 is not set"},
		{"q\x00.", "stack underflow"},
		{"\x00", "unsupported opcode"},
	} {
		_, _, err := unpickle([]byte(c.pickle))
		if err == nil {
			t.Errorf("%q: no error", c.pickle)
			continue
		}
		wantErr(t, err, c.want)
	}
}

// TestRebuildTensorV3: newer PyTorch names the dtype of a tensor on an
// untyped storage; offsets count elements of that dtype.
func TestRebuildTensorV3(t *testing.T) {
	p := pk{0x80, 2, '}', '('}.str("h").global("torch._utils", "_rebuild_tensor_v3").op('(')
	p = p.op('(').str("storage").global("torch", "UntypedStorage").str("0").str("cpu").long(8).op('t', 'Q')
	p = p.int(1).ints(2).ints(1).op(0x89).global("collections", "OrderedDict").op(')', 'R')
	p = p.global("torch", "float16").op('t', 'R', 'u', '.')
	ts, err := Read(torchZip(t, "data.pkl", []byte(p), "data/0", []byte{0, 1, 2, 3, 4, 5, 6, 7}), Options{})
	if err != nil {
		t.Fatal(err)
	}
	same(t, "v3", ts, []Tensor{{Name: "h", DType: F16, Shape: []int64{2}, Data: []byte{2, 3, 4, 5}}})
}

func TestDType(t *testing.T) {
	if F32.String() != "float32" || BF16.Size() != 2 || C128.Size() != 16 || DType(200).Size() != 0 || DType(200).String() != "DType(200)" {
		t.Errorf("DType names or sizes are off")
	}
	if TorchZip.String() != "torch.save zip" || Format(99).String() != "unknown format" {
		t.Errorf("Format names are off")
	}
	var le []byte
	for _, v := range []uint32{1, 2} {
		le = binary.BigEndian.AppendUint32(le, v)
	}
	if got := swapBytes(le, C64); !reflect.DeepEqual(got, []byte{1, 0, 0, 0, 2, 0, 0, 0}) {
		t.Errorf("swapBytes(C64) = %v", got)
	}
}
