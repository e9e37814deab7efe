package checkpoint

import (
	"encoding/binary"
	"fmt"
)

// The legacy torch.save format (PyTorch before 1.6, or
// _use_new_zipfile_serialization=False) is a stream of pickles: a magic
// number, the protocol version 1001, a dict of system information, the
// object, with each storage as a persistent id, and the sorted list of
// storage keys; then each storage in that order as its little-endian
// int64 element count and its elements, little-endian.

// legacyMagic is torch.serialization's MAGIC_NUMBER.
const legacyMagic = "0x1950a86a20f9469cfc6c"

// legacyStore holds the storages of a legacy file by key.
type legacyStore struct {
	data map[string][]byte
}

func (l *legacyStore) where(s *storageRef) string { return "storage " + s.key }
func (l *legacyStore) big() bool                  { return false }

func (l *legacyStore) storage(s *storageRef, _ *budget) ([]byte, error) {
	data, ok := l.data[s.key]
	if !ok {
		return nil, fmt.Errorf("storage %s: not in the file's list of storages", s.key)
	}
	es := int64(s.dtype.Size())
	if s.numel > maxElems || s.offset > maxElems || (s.offset+s.numel)*es > int64(len(data)) {
		return nil, fmt.Errorf("storage %s: %d bytes, want %d %s elements from element %d", s.key, len(data), s.numel, s.dtype, s.offset)
	}
	return data[s.offset*es : (s.offset+s.numel)*es : (s.offset+s.numel)*es], nil
}

// openLegacy returns the object of a legacy torch.save stream and the store
// of its storages.
func openLegacy(data []byte) (any, storer, error) {
	at := 0
	next := func(what string) (any, error) {
		v, n, err := unpickle(data[at:])
		if err != nil {
			return nil, fmt.Errorf("legacy torch.save: %s at offset %d: %w", what, at, err)
		}
		at += n
		return v, nil
	}
	magic, err := next("magic number")
	if err != nil {
		return nil, nil, err
	}
	if m, ok := magic.(bigInt); !ok || m.hex != legacyMagic {
		return nil, nil, fmt.Errorf("legacy torch.save: the first pickle is %s, not torch's magic number", describe(magic))
	}
	if v, err := next("protocol version"); err != nil {
		return nil, nil, err
	} else if v != int64(1001) {
		return nil, nil, fmt.Errorf("legacy torch.save: protocol version %v, want 1001", v)
	}
	info, err := next("system information")
	if err != nil {
		return nil, nil, err
	}
	if d, ok := asDict(info); ok {
		if le, ok := d.get("little_endian"); ok && le != true {
			return nil, nil, fmt.Errorf("legacy torch.save: written on a big-endian machine, which is not read")
		}
	}
	top, err := next("object")
	if err != nil {
		return nil, nil, err
	}
	keysV, err := next("storage keys")
	if err != nil {
		return nil, nil, err
	}
	keys, ok := keysV.(*list)
	if !ok {
		return nil, nil, fmt.Errorf("legacy torch.save: storage keys are %s, not a list", describe(keysV))
	}
	// Each storage's element size comes from the persistent ids that name
	// it; a storage no tensor names is skipped by its byte count alone,
	// which needs the element size too, so collect them first.
	sizes := map[string]int{}
	collectStorages(top, sizes, map[any]bool{})
	st := &legacyStore{data: map[string][]byte{}}
	for _, k := range keys.items {
		key, ok := k.(string)
		if !ok {
			return nil, nil, fmt.Errorf("legacy torch.save: storage key %s", describe(k))
		}
		es, ok := sizes[key]
		if !ok {
			return nil, nil, fmt.Errorf("legacy torch.save: storage %s is listed but no tensor names it", key)
		}
		if len(data)-at < 8 {
			return nil, nil, fmt.Errorf("legacy torch.save: storage %s: the file ends early (a truncated file?)", key)
		}
		n := binary.LittleEndian.Uint64(data[at:])
		at += 8
		if n > maxElems || n*uint64(es) > uint64(len(data)-at) {
			return nil, nil, fmt.Errorf("legacy torch.save: storage %s: %d elements of %d bytes run past the end of the file (a truncated file?)", key, n, es)
		}
		end := at + int(n)*es
		st.data[key] = data[at:end:end]
		at = end
	}
	return top, st, nil
}

// collectStorages records the element size of every storage under v,
// visiting each container once (the memo can share one many times).
func collectStorages(v any, sizes map[string]int, seen map[any]bool) {
	switch v.(type) {
	case *dict, *object, *list:
		if seen[v] {
			return
		}
		seen[v] = true
	}
	switch v := v.(type) {
	case *tensorRef:
		sizes[v.storage.key] = v.storage.dtype.Size()
	case *storageRef:
		sizes[v.key] = v.dtype.Size()
	case *dict:
		for _, x := range v.vals {
			collectStorages(x, sizes, seen)
		}
	case *object:
		if v.items != nil {
			collectStorages(v.items, sizes, seen)
		}
		if v.state != nil {
			collectStorages(v.state, sizes, seen)
		}
	case *list:
		for _, x := range v.items {
			collectStorages(x, sizes, seen)
		}
	case tuple:
		for _, x := range v {
			collectStorages(x, sizes, seen)
		}
	}
}
