package checkpoint

import (
	"archive/zip"
	"bytes"
	"errors"
	"fmt"
	"hash/crc32"
	"strings"
)

// archive is a torch.save zip: <name>/data.pkl holds the pickled object and
// <name>/data/<key> the bytes of each storage. torch writes the records
// uncompressed, so each one is a slice of the input.
type archive struct {
	data      []byte
	prefix    string // "<name>/"
	files     map[string]*zip.File
	bigEndian bool
	storages  map[string][]byte
}

var errTorchScript = errors.New("a TorchScript module (torch.jit.save), not a torch.save checkpoint")

// openArchive reads the zip directory of data and checks the records
// torch.save writes.
func openArchive(data []byte) (*archive, error) {
	zr, err := zip.NewReader(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		return nil, fmt.Errorf("%w (a truncated or damaged file?)", err)
	}
	if len(zr.File) == 0 {
		return nil, fmt.Errorf("zip: no records")
	}
	a := &archive{data: data, files: map[string]*zip.File{}, storages: map[string][]byte{}}
	for _, f := range zr.File {
		a.files[f.Name] = f
	}
	// Like torch, take the archive's name from its first record.
	name, _, ok := strings.Cut(zr.File[0].Name, "/")
	if !ok {
		return nil, fmt.Errorf("zip: first record %q is not in a folder", zr.File[0].Name)
	}
	a.prefix = name + "/"
	if a.files[a.prefix+"constants.pkl"] != nil {
		return nil, errTorchScript
	}
	if a.files[a.prefix+"data.pkl"] == nil {
		return nil, fmt.Errorf("zip: no %sdata.pkl record", a.prefix)
	}
	if f := a.files[a.prefix+"byteorder"]; f != nil {
		b, err := a.record(f.Name)
		if err != nil {
			return nil, err
		}
		switch string(b) {
		case "little":
		case "big":
			a.bigEndian = true
		default:
			return nil, fmt.Errorf("%s: unknown byte order %q", f.Name, b)
		}
	}
	return a, nil
}

// record returns the bytes of the named record, checking its CRC when the
// writer recorded one.
func (a *archive) record(name string) ([]byte, error) {
	f := a.files[name]
	if f == nil {
		return nil, fmt.Errorf("zip: no %s record", name)
	}
	if f.Method != zip.Store {
		return nil, fmt.Errorf("%s: compressed record (method %d); torch.save writes them stored", name, f.Method)
	}
	off, err := f.DataOffset()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	n := f.UncompressedSize64
	if f.CompressedSize64 != n || off < 0 || uint64(off) > uint64(len(a.data)) || n > uint64(len(a.data))-uint64(off) {
		return nil, fmt.Errorf("%s: %d bytes at offset %d run past the %d-byte file", name, n, off, len(a.data))
	}
	b := a.data[off : off+int64(n) : off+int64(n)]
	if f.CRC32 != 0 && crc32.ChecksumIEEE(b) != f.CRC32 {
		return nil, fmt.Errorf("%s: CRC mismatch (a damaged file?)", name)
	}
	return b, nil
}

// storage returns the little-endian bytes of a storage, at least numel
// elements long.
func (a *archive) storage(s *storageRef, b *budget) ([]byte, error) {
	name := a.prefix + "data/" + s.key
	if s.offset != 0 {
		return nil, fmt.Errorf("%s: a storage view, which only the legacy format writes", name)
	}
	data, ok := a.storages[s.key]
	if !ok {
		var err error
		if data, err = a.record(name); err != nil {
			return nil, err
		}
	}
	if want := s.numel * int64(s.dtype.Size()); s.numel > maxElems || int64(len(data)) < want {
		return nil, fmt.Errorf("%s: %d bytes, want %d for %d %s elements", name, len(data), want, s.numel, s.dtype)
	}
	if ok {
		return data, nil
	}
	if a.bigEndian {
		if err := b.take(int64(len(data))); err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		data = swapBytes(data, s.dtype)
	}
	a.storages[s.key] = data
	return data, nil
}

// storer gives the bytes of a pickle's storages.
type storer interface {
	storage(s *storageRef, b *budget) ([]byte, error)
	// where names the storage for error messages.
	where(s *storageRef) string
	big() bool
}

func (a *archive) where(s *storageRef) string { return a.prefix + "data/" + s.key }
func (a *archive) big() bool                  { return a.bigEndian }

// openTorchZip returns the unpickled object of a torch.save zip and the
// store of its storages.
func openTorchZip(data []byte) (any, storer, error) {
	a, err := openArchive(data)
	if err != nil {
		return nil, nil, err
	}
	pkl, err := a.record(a.prefix + "data.pkl")
	if err != nil {
		return nil, nil, err
	}
	top, _, err := unpickle(pkl)
	if err != nil {
		return nil, nil, fmt.Errorf("%sdata.pkl: %w", a.prefix, err)
	}
	return top, a, nil
}

// readTorchZip returns the tensors of a torch.save zip, or of a legacy
// torch.save stream.
func readTorchPickle(data []byte, opts Options, b *budget) ([]Tensor, []string, error) {
	top, st, err := openTorch(data)
	if err != nil {
		return nil, nil, err
	}
	sd, where, err := stateDict(top, opts.Entry)
	if err != nil {
		return nil, nil, err
	}
	return tensorsOf(sd, where, st, opts.Prefix, b, true)
}

// openTorch opens either kind of torch.save file.
func openTorch(data []byte) (any, storer, error) {
	if Detect(data) == TorchLegacy {
		return openLegacy(data)
	}
	return openTorchZip(data)
}

// tensorsOf materialises the tensors of state dict sd under prefix, and
// returns the names of those outside it. strict refuses a value that is
// not a tensor; otherwise such values are passed over.
func tensorsOf(sd *dict, where string, st storer, prefix string, b *budget, strict bool) ([]Tensor, []string, error) {
	var kept []Tensor
	var dropped []string
	for i, k := range sd.keys {
		key, ok := k.(string)
		if !ok {
			if !strict {
				continue
			}
			return nil, nil, fmt.Errorf("key %d%s is %s, not a string", i, where, describe(k))
		}
		t, ok := sd.vals[i].(*tensorRef)
		if !ok {
			if !strict {
				continue
			}
			return nil, nil, fmt.Errorf("key %q%s: value is %s, not a tensor", key, where, describe(sd.vals[i]))
		}
		name, ok := strip(key, prefix)
		if !ok {
			dropped = append(dropped, key)
			continue
		}
		if t.dtype != t.storage.dtype && st.big() {
			return nil, nil, fmt.Errorf("key %q%s: a %s view of a %s storage in a big-endian file", key, where, t.dtype, t.storage.dtype)
		}
		store, err := st.storage(t.storage, b)
		if err != nil {
			return nil, nil, fmt.Errorf("key %q%s: %w", key, where, err)
		}
		v := view{dtype: t.dtype, store: store, offset: t.offset, shape: t.shape, stride: t.stride}
		out, err := v.materialise(b)
		if err != nil {
			return nil, nil, fmt.Errorf("key %q%s (%s): %w", key, where, st.where(t.storage), err)
		}
		kept = append(kept, Tensor{Name: name, DType: t.dtype, Shape: t.shape, Data: out})
	}
	return kept, dropped, nil
}

// stateDict picks the dict of tensors out of a checkpoint's top-level
// object: the named entry, else a "state_dict" entry, else the object
// itself if all its values are tensors. where names the entry for error
// messages, as ` of entry "state_dict"`, or is empty.
func stateDict(top any, entry string) (sd *dict, where string, err error) {
	d, ok := asDict(top)
	if !ok {
		if o, ok := top.(*object); ok {
			return nil, "", fmt.Errorf("the checkpoint is %s, not a dict of tensors (a whole pickled module? save model.state_dict() instead)", describe(o))
		}
		return nil, "", fmt.Errorf("the checkpoint is %s, not a dict of tensors", describe(top))
	}
	pick := func(name string, v any) (*dict, string, error) {
		sd, ok := asDict(v)
		if !ok {
			return nil, "", fmt.Errorf("entry %q is %s, not a dict of tensors", name, describe(v))
		}
		return sd, fmt.Sprintf(" of entry %q", name), nil
	}
	if entry != "" {
		v, ok := d.get(entry)
		if !ok {
			return nil, "", fmt.Errorf("no %q entry; the checkpoint has %s", entry, keyList(d))
		}
		return pick(entry, v)
	}
	if v, ok := d.get("state_dict"); ok {
		return pick("state_dict", v)
	}
	for _, v := range d.vals {
		if _, ok := v.(*tensorRef); !ok {
			return nil, "", fmt.Errorf("no \"state_dict\" entry, and not all entries are tensors; name the entry that holds the weights (the checkpoint has %s)", keyList(d))
		}
	}
	return d, "", nil
}

// keyList lists the first string keys of d for error messages.
func keyList(d *dict) string {
	var names []string
	for _, k := range d.keys {
		if s, ok := k.(string); ok {
			names = append(names, s)
		}
	}
	return someNames(names)
}
