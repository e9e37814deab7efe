package checkpoint

import (
	"encoding/binary"
	"fmt"
	"math"
	"math/big"
	"strconv"
)

// This file holds a small unpickler for what torch.save writes. It never
// imports or calls anything: the globals it knows (torch's tensor rebuild
// functions, storage classes and dtypes, collections.OrderedDict) become
// values of the types below, and every other global, with whatever is
// called on it or built from it, becomes an opaque *object. Every value is
// made from bytes of the input, so memory stays proportional to its size.

// The unpickled values are nil (None), bool, int64, float64, string, []byte,
// tuple, *list, *dict, global, *object, *storageRef, *tensorRef and bigInt.
type (
	tuple  []any
	list   struct{ items []any }
	global struct{ module, name string }
	bigInt struct{ hex string } // an int beyond int64, as "0x..." (torch's legacy magic number)

	// dict keeps insertion order, as Python's dicts do. String keys are
	// indexed so that a repeated key replaces its value.
	dict struct {
		keys, vals []any
		index      map[string]int
	}

	// object is an instance of a class the unpickler does not know, or the
	// result of calling something it does not know. items holds what
	// SETITEMS put in it, as for a dict subclass.
	object struct {
		class string
		items *dict
		state any // what BUILD gave it: a module's attributes in TorchScript
	}

	// storageRef is a torch storage named by a persistent id: the record
	// data/<key> of the archive, holding numel elements of dtype.
	storageRef struct {
		key    string
		dtype  DType
		numel  int64
		offset int64 // elements into the stored storage: a legacy view
	}

	// tensorRef is a tensor rebuilt by torch._utils._rebuild_tensor_v2: a
	// view of a storage.
	tensorRef struct {
		storage *storageRef
		dtype   DType
		offset  int64
		shape   []int64
		stride  []int64
	}
)

func (d *dict) set(k, v any) {
	if s, ok := k.(string); ok {
		if i, ok := d.index[s]; ok {
			d.vals[i] = v
			return
		}
		if d.index == nil {
			d.index = map[string]int{}
		}
		d.index[s] = len(d.keys)
	}
	d.keys = append(d.keys, k)
	d.vals = append(d.vals, v)
}

func (d *dict) get(k string) (any, bool) {
	i, ok := d.index[k]
	if !ok {
		return nil, false
	}
	return d.vals[i], true
}

// describe names the kind of a value for error messages.
func describe(v any) string {
	switch v := v.(type) {
	case nil:
		return "None"
	case bool:
		return "a bool"
	case int64, bigInt:
		return "an int"
	case float64:
		return "a float"
	case string:
		return "a string"
	case []byte:
		return "bytes"
	case tuple:
		return "a tuple"
	case *list:
		return "a list"
	case *dict:
		return "a dict"
	case global:
		return v.module + "." + v.name
	case *object:
		return "an object of " + v.class
	case *storageRef:
		return "a storage"
	case *tensorRef:
		return "a tensor"
	}
	return fmt.Sprintf("%T", v)
}

// storageTypes maps torch's storage classes to their element types.
var storageTypes = map[string]DType{
	"FloatStorage": F32, "DoubleStorage": F64, "HalfStorage": F16,
	"BFloat16Storage": BF16, "LongStorage": I64, "IntStorage": I32,
	"ShortStorage": I16, "CharStorage": I8, "ByteStorage": U8,
	"BoolStorage": Bool, "ComplexFloatStorage": C64,
	"ComplexDoubleStorage": C128, "UntypedStorage": U8,
	"Float8_e4m3fnStorage": F8E4M3, "Float8_e5m2Storage": F8E5M2,
}

// torchDTypes maps the names of torch dtypes, as torch.float32 pickles, to
// element types.
var torchDTypes = map[string]DType{
	"float32": F32, "float": F32, "float64": F64, "double": F64,
	"float16": F16, "half": F16, "bfloat16": BF16, "int64": I64,
	"long": I64, "int32": I32, "int": I32, "int16": I16, "short": I16,
	"int8": I8, "uint8": U8, "bool": Bool, "uint16": U16, "uint32": U32,
	"uint64": U64, "complex64": C64, "cfloat": C64, "complex128": C128,
	"cdouble": C128, "float8_e4m3fn": F8E4M3, "float8_e5m2": F8E5M2,
}

// unpickler holds the state of one run over a pickle.
type unpickler struct {
	data  []byte
	pos   int
	stack []any
	marks []int
	memo  map[uint32]any
}

// unpickle returns the object that data, a pickle of protocol 2 to 5,
// describes, and the length of the pickle, which ends at its STOP.
func unpickle(data []byte) (any, int, error) {
	u := &unpickler{data: data, memo: map[uint32]any{}}
	for {
		at := u.pos
		op, err := u.byte()
		if err != nil {
			return nil, 0, err
		}
		done, err := u.step(op)
		if err != nil {
			return nil, 0, fmt.Errorf("pickle opcode 0x%02x at offset %d: %w", op, at, err)
		}
		if done {
			v, err := u.pop()
			return v, u.pos, err
		}
	}
}

var errTruncated = fmt.Errorf("pickle ends early")

func (u *unpickler) bytes(n uint64) ([]byte, error) {
	if n > uint64(len(u.data)-u.pos) {
		return nil, errTruncated
	}
	b := u.data[u.pos : u.pos+int(n) : u.pos+int(n)]
	u.pos += int(n)
	return b, nil
}

func (u *unpickler) byte() (byte, error) {
	b, err := u.bytes(1)
	if err != nil {
		return 0, err
	}
	return b[0], nil
}

// uint reads an n-byte little-endian unsigned integer.
func (u *unpickler) uint(n int) (uint64, error) {
	b, err := u.bytes(uint64(n))
	if err != nil {
		return 0, err
	}
	var v uint64
	for i := n - 1; i >= 0; i-- {
		v = v<<8 | uint64(b[i])
	}
	return v, nil
}

// sized reads an n-byte length and then that many bytes.
func (u *unpickler) sized(n int) ([]byte, error) {
	l, err := u.uint(n)
	if err != nil {
		return nil, err
	}
	return u.bytes(l)
}

func (u *unpickler) line() (string, error) {
	for i := u.pos; i < len(u.data); i++ {
		if u.data[i] == '\n' {
			s := string(u.data[u.pos:i])
			u.pos = i + 1
			return s, nil
		}
	}
	return "", errTruncated
}

func (u *unpickler) push(v any) { u.stack = append(u.stack, v) }

func (u *unpickler) pop() (any, error) {
	if len(u.stack) == 0 || (len(u.marks) > 0 && len(u.stack) == u.marks[len(u.marks)-1]) {
		return nil, fmt.Errorf("stack underflow")
	}
	v := u.stack[len(u.stack)-1]
	u.stack = u.stack[:len(u.stack)-1]
	return v, nil
}

func (u *unpickler) top() (any, error) {
	v, err := u.pop()
	if err == nil {
		u.push(v)
	}
	return v, err
}

// popMark removes and returns the items above the latest mark.
func (u *unpickler) popMark() ([]any, error) {
	if len(u.marks) == 0 {
		return nil, fmt.Errorf("no mark")
	}
	m := u.marks[len(u.marks)-1]
	u.marks = u.marks[:len(u.marks)-1]
	items := append([]any(nil), u.stack[m:]...)
	u.stack = u.stack[:m]
	return items, nil
}

// step runs one opcode and reports whether it was STOP.
func (u *unpickler) step(op byte) (bool, error) {
	switch op {
	case 0x80: // PROTO
		v, err := u.byte()
		if err == nil && v > 5 {
			err = fmt.Errorf("pickle protocol %d", v)
		}
		return false, err
	case 0x95: // FRAME
		_, err := u.uint(8)
		return false, err
	case '.': // STOP
		return true, nil
	case 'N':
		u.push(nil)
	case 0x88:
		u.push(true)
	case 0x89:
		u.push(false)
	case 'J': // BININT
		v, err := u.uint(4)
		u.push(int64(int32(uint32(v))))
		return false, err
	case 'K': // BININT1
		v, err := u.uint(1)
		u.push(int64(v))
		return false, err
	case 'M': // BININT2
		v, err := u.uint(2)
		u.push(int64(v))
		return false, err
	case 0x8a: // LONG1
		b, err := u.sized(1)
		u.push(long(b))
		return false, err
	case 0x8b: // LONG4
		b, err := u.sized(4)
		u.push(long(b))
		return false, err
	case 'I': // INT, as protocol 0 and 1 write True, False and ints
		s, err := u.line()
		if err != nil {
			return false, err
		}
		switch s {
		case "00":
			u.push(false)
		case "01":
			u.push(true)
		default:
			v, err := strconv.ParseInt(s, 10, 64)
			if err != nil {
				return false, fmt.Errorf("INT %q", s)
			}
			u.push(v)
		}
	case 'G': // BINFLOAT
		b, err := u.bytes(8)
		if err != nil {
			return false, err
		}
		u.push(math.Float64frombits(binary.BigEndian.Uint64(b)))
	case 'X', 'T': // BINUNICODE, BINSTRING
		b, err := u.sized(4)
		u.push(string(b))
		return false, err
	case 0x8c, 'U': // SHORT_BINUNICODE, SHORT_BINSTRING
		b, err := u.sized(1)
		u.push(string(b))
		return false, err
	case 0x8d: // BINUNICODE8
		b, err := u.sized(8)
		u.push(string(b))
		return false, err
	case 'B': // BINBYTES
		b, err := u.sized(4)
		u.push(b)
		return false, err
	case 'C': // SHORT_BINBYTES
		b, err := u.sized(1)
		u.push(b)
		return false, err
	case 0x8e, 0x96: // BINBYTES8, BYTEARRAY8
		b, err := u.sized(8)
		u.push(b)
		return false, err
	case '(': // MARK
		u.marks = append(u.marks, len(u.stack))
	case '0': // POP
		_, err := u.pop()
		return false, err
	case '1': // POP_MARK
		_, err := u.popMark()
		return false, err
	case '2': // DUP
		v, err := u.top()
		u.push(v)
		return false, err
	case ')':
		u.push(tuple{})
	case 't': // TUPLE
		items, err := u.popMark()
		u.push(tuple(items))
		return false, err
	case 0x85, 0x86, 0x87: // TUPLE1, TUPLE2, TUPLE3
		n := int(op - 0x84)
		if len(u.stack) < n || (len(u.marks) > 0 && len(u.stack)-n < u.marks[len(u.marks)-1]) {
			return false, fmt.Errorf("stack underflow")
		}
		t := append(tuple(nil), u.stack[len(u.stack)-n:]...)
		u.stack = u.stack[:len(u.stack)-n]
		u.push(t)
	case ']':
		u.push(&list{})
	case 'l': // LIST
		items, err := u.popMark()
		u.push(&list{items: items})
		return false, err
	case 'a': // APPEND
		v, err := u.pop()
		if err != nil {
			return false, err
		}
		return false, u.extend([]any{v})
	case 'e': // APPENDS
		items, err := u.popMark()
		if err != nil {
			return false, err
		}
		return false, u.extend(items)
	case '}':
		u.push(&dict{})
	case 'd': // DICT
		items, err := u.popMark()
		if err != nil {
			return false, err
		}
		d := &dict{}
		u.push(d)
		return false, setItems(d, items)
	case 's': // SETITEM
		v, err := u.pop()
		if err != nil {
			return false, err
		}
		k, err := u.pop()
		if err != nil {
			return false, err
		}
		target, err := u.top()
		if err != nil {
			return false, err
		}
		return false, setItems(target, []any{k, v})
	case 'u': // SETITEMS
		items, err := u.popMark()
		if err != nil {
			return false, err
		}
		target, err := u.top()
		if err != nil {
			return false, err
		}
		return false, setItems(target, items)
	case 0x8f: // EMPTY_SET
		u.push(&object{class: "builtins.set"})
	case 0x90: // ADDITEMS: a set's items are of no use here
		if _, err := u.popMark(); err != nil {
			return false, err
		}
		_, err := u.top()
		return false, err
	case 0x91: // FROZENSET
		_, err := u.popMark()
		u.push(&object{class: "builtins.frozenset"})
		return false, err
	case 'q': // BINPUT
		i, err := u.uint(1)
		if err != nil {
			return false, err
		}
		return false, u.put(uint32(i))
	case 'r': // LONG_BINPUT
		i, err := u.uint(4)
		if err != nil {
			return false, err
		}
		return false, u.put(uint32(i))
	case 0x94: // MEMOIZE
		return false, u.put(uint32(len(u.memo)))
	case 'h', 'j': // BINGET, LONG_BINGET
		n := 1
		if op == 'j' {
			n = 4
		}
		i, err := u.uint(n)
		if err != nil {
			return false, err
		}
		v, ok := u.memo[uint32(i)]
		if !ok {
			return false, fmt.Errorf("memo entry %d is not set", i)
		}
		u.push(v)
	case 'c': // GLOBAL
		module, err := u.line()
		if err != nil {
			return false, err
		}
		name, err := u.line()
		u.push(global{module, name})
		return false, err
	case 0x93: // STACK_GLOBAL
		name, err := u.pop()
		if err != nil {
			return false, err
		}
		module, err := u.pop()
		if err != nil {
			return false, err
		}
		m, ok1 := module.(string)
		n, ok2 := name.(string)
		if !ok1 || !ok2 {
			return false, fmt.Errorf("STACK_GLOBAL of %s and %s", describe(module), describe(name))
		}
		u.push(global{m, n})
	case 'R': // REDUCE
		args, err := u.pop()
		if err != nil {
			return false, err
		}
		fn, err := u.pop()
		if err != nil {
			return false, err
		}
		v, err := call(fn, args, true)
		u.push(v)
		return false, err
	case 0x81: // NEWOBJ
		if _, err := u.pop(); err != nil {
			return false, err
		}
		cls, err := u.pop()
		u.push(instance(cls))
		return false, err
	case 0x92: // NEWOBJ_EX
		if _, err := u.pop(); err != nil {
			return false, err
		}
		if _, err := u.pop(); err != nil {
			return false, err
		}
		cls, err := u.pop()
		u.push(instance(cls))
		return false, err
	case 'b': // BUILD: an object keeps its state, for TorchScript modules
		state, err := u.pop()
		if err != nil {
			return false, err
		}
		target, err := u.top()
		if o, ok := target.(*object); ok && o.state == nil {
			o.state = state
		}
		return false, err
	case 'Q': // BINPERSID
		pid, err := u.pop()
		if err != nil {
			return false, err
		}
		v, err := persistent(pid)
		u.push(v)
		return false, err
	default:
		return false, fmt.Errorf("unsupported opcode")
	}
	return false, nil
}

func (u *unpickler) put(i uint32) error {
	v, err := u.top()
	u.memo[i] = v
	return err
}

// extend appends items to the list on top of the stack.
func (u *unpickler) extend(items []any) error {
	target, err := u.top()
	if err != nil {
		return err
	}
	switch t := target.(type) {
	case *list:
		t.items = append(t.items, items...)
	case *object:
	default:
		return fmt.Errorf("append to %s", describe(target))
	}
	return nil
}

// setItems sets alternating keys and values on a dict, or on an opaque
// object (a dict subclass).
func setItems(target any, items []any) error {
	if len(items)%2 != 0 {
		return fmt.Errorf("odd number of dict items")
	}
	d, ok := target.(*dict)
	if o, isObj := target.(*object); isObj {
		if o.items == nil {
			o.items = &dict{}
		}
		d, ok = o.items, true
	}
	if !ok {
		return fmt.Errorf("set items on %s", describe(target))
	}
	for i := 0; i < len(items); i += 2 {
		d.set(items[i], items[i+1])
	}
	return nil
}

// asDict returns v as a dict if it is one or holds dict items.
func asDict(v any) (*dict, bool) {
	switch v := v.(type) {
	case *dict:
		return v, true
	case *object:
		return v.items, v.items != nil
	}
	return nil, false
}

// long decodes a little-endian two's complement integer.
func long(b []byte) any {
	if len(b) > 8 {
		if len(b) > 64 || b[len(b)-1]&0x80 != 0 {
			return bigInt{} // too large or negative: no use here
		}
		be := make([]byte, len(b))
		for i, x := range b {
			be[len(b)-1-i] = x
		}
		return bigInt{hex: "0x" + new(big.Int).SetBytes(be).Text(16)}
	}
	var v int64
	for i := len(b) - 1; i >= 0; i-- {
		v = v<<8 | int64(b[i])
	}
	if n := len(b); n > 0 && n < 8 && b[n-1]&0x80 != 0 {
		v -= 1 << (8 * n)
	}
	return v
}

// instance returns what NEWOBJ makes of cls.
func instance(cls any) any {
	if g, ok := cls.(global); ok {
		if g.module == "collections" && g.name == "OrderedDict" {
			return &dict{}
		}
		return &object{class: g.module + "." + g.name}
	}
	return &object{class: describe(cls)}
}

// call returns what REDUCE makes of fn(*args): tensors for torch's rebuild
// functions, a dict for OrderedDict, and an opaque object for the rest.
// nested allows one level of _rebuild_from_type_v2.
func call(fn, args any, nested bool) (any, error) {
	g, ok := fn.(global)
	if !ok {
		return &object{class: "result of " + describe(fn)}, nil
	}
	a, ok := args.(tuple)
	if !ok {
		return nil, fmt.Errorf("%s called with %s, not a tuple", describe(g), describe(args))
	}
	switch g.module + "." + g.name {
	case "torch._utils._rebuild_tensor", "torch._utils._rebuild_tensor_v2":
		return rebuildTensor(a, Invalid)
	case "torch._utils._rebuild_tensor_v3":
		if len(a) < 7 {
			return nil, fmt.Errorf("_rebuild_tensor_v3 with %d arguments", len(a))
		}
		dt, ok := a[6].(global)
		if !ok || dt.module != "torch" || torchDTypes[dt.name] == Invalid {
			return nil, fmt.Errorf("_rebuild_tensor_v3 with dtype %s", describe(a[6]))
		}
		return rebuildTensor(a, torchDTypes[dt.name])
	case "torch._utils._rebuild_parameter", "torch._utils._rebuild_parameter_with_state":
		if len(a) == 0 {
			return nil, fmt.Errorf("%s with no arguments", describe(g))
		}
		return a[0], nil
	case "torch._tensor._rebuild_from_type_v2":
		// (func, type, args, state): a tensor subclass or a tensor with
		// Python attributes; rebuild the tensor and drop the rest.
		if len(a) >= 3 && nested {
			return call(a[0], a[2], false)
		}
	case "collections.OrderedDict":
		d := &dict{}
		if len(a) > 0 {
			pairs, ok := a[0].(*list)
			if !ok {
				return nil, fmt.Errorf("OrderedDict of %s", describe(a[0]))
			}
			for _, p := range pairs.items {
				kv, ok := p.(tuple)
				if !ok || len(kv) != 2 {
					return nil, fmt.Errorf("OrderedDict item %s", describe(p))
				}
				d.set(kv[0], kv[1])
			}
		}
		return d, nil
	}
	return &object{class: g.module + "." + g.name}, nil
}

// rebuildTensor reads the arguments of _rebuild_tensor_v2: storage, offset,
// size and stride. dtype overrides the storage's element type if valid.
func rebuildTensor(a tuple, dtype DType) (any, error) {
	if len(a) < 4 {
		return nil, fmt.Errorf("_rebuild_tensor with %d arguments", len(a))
	}
	s, ok := a[0].(*storageRef)
	if !ok {
		return nil, fmt.Errorf("_rebuild_tensor of %s, not a storage", describe(a[0]))
	}
	offset, ok := a[1].(int64)
	if !ok {
		return nil, fmt.Errorf("_rebuild_tensor with offset %s", describe(a[1]))
	}
	shape, err := ints(a[2])
	if err != nil {
		return nil, fmt.Errorf("_rebuild_tensor size: %w", err)
	}
	stride, err := ints(a[3])
	if err != nil {
		return nil, fmt.Errorf("_rebuild_tensor stride: %w", err)
	}
	if dtype == Invalid {
		dtype = s.dtype
	}
	return &tensorRef{storage: s, dtype: dtype, offset: offset, shape: shape, stride: stride}, nil
}

func ints(v any) ([]int64, error) {
	t, ok := v.(tuple)
	if !ok {
		return nil, fmt.Errorf("%s, not a tuple", describe(v))
	}
	out := make([]int64, len(t))
	for i, x := range t {
		if out[i], ok = x.(int64); !ok {
			return nil, fmt.Errorf("element %d is %s", i, describe(x))
		}
	}
	return out, nil
}

// persistent resolves a persistent id. torch.save writes storages as
// ('storage', storage class, key, location, numel), and its legacy format
// adds a sixth field, a view of the storage as (view key, offset, numel)
// or None; anything else becomes an opaque object.
func persistent(pid any) (any, error) {
	t, ok := pid.(tuple)
	if !ok || len(t) == 0 || t[0] != "storage" {
		return &object{class: "persistent id"}, nil
	}
	if len(t) != 5 && len(t) != 6 {
		return nil, fmt.Errorf("storage persistent id with %d fields, want 5 or 6", len(t))
	}
	cls, ok := t[1].(global)
	dtype := storageTypes[cls.name]
	if !ok || cls.module != "torch" || dtype == Invalid {
		return nil, fmt.Errorf("storage of unsupported type %s", describe(t[1]))
	}
	key, ok := t[2].(string)
	if !ok {
		return nil, fmt.Errorf("storage key %s", describe(t[2]))
	}
	n, ok := t[4].(int64)
	if !ok || n < 0 {
		return nil, fmt.Errorf("storage %s size %v", key, t[4])
	}
	s := &storageRef{key: key, dtype: dtype, numel: n}
	if len(t) == 6 && t[5] != nil {
		v, ok := t[5].(tuple)
		if !ok || len(v) != 3 {
			return nil, fmt.Errorf("storage %s view %s", key, describe(t[5]))
		}
		off, ok1 := v[1].(int64)
		vn, ok2 := v[2].(int64)
		if !ok1 || !ok2 || off < 0 || vn < 0 || off > n || vn > n-off {
			return nil, fmt.Errorf("storage %s: view %v of a %d-element storage", key, v, n)
		}
		s.offset, s.numel = off, vn
	}
	return s, nil
}
