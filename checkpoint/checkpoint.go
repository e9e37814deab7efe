// Package checkpoint reads the named tensors of a model checkpoint: a
// state dict saved by torch.save (PyTorch 1.6 and later, the zip format),
// the "state_dict" entry of a PyTorch Lightning .ckpt, or a safetensors
// file, whole or sharded.
//
// It is pure Go and never runs anything a file names: it unpickles only the
// values torch.save writes for tensors, dicts and plain data, and keeps any
// other class as an opaque placeholder. Every allocation is bounded by the
// size of the input, so a damaged or hostile file gives an error.
package checkpoint

import (
	"bytes"
	"fmt"
	"sort"
	"strings"
)

// Format is the kind of a checkpoint file.
type Format int

// The formats that Detect tells apart. Read reads TorchZip and
// Safetensors, ReadFile also ShardIndex; the others it refuses.
const (
	Unknown     Format = iota
	TorchZip           // torch.save of PyTorch 1.6 or later: a zip with data.pkl
	TorchLegacy        // torch.save before PyTorch 1.6: a bare pickle stream
	TorchScript        // torch.jit.save: a zip with code/ and constants.pkl
	Safetensors        // Hugging Face safetensors
	ShardIndex         // a *.index.json naming the shards of a checkpoint
)

func (f Format) String() string {
	switch f {
	case TorchZip:
		return "torch.save zip"
	case TorchLegacy:
		return "legacy torch.save"
	case TorchScript:
		return "TorchScript"
	case Safetensors:
		return "safetensors"
	case ShardIndex:
		return "shard index"
	}
	return "unknown format"
}

// Detect tells the format of a checkpoint from its content.
func Detect(data []byte) Format {
	switch {
	case bytes.HasPrefix(data, []byte("PK\x03\x04")) || bytes.HasPrefix(data, []byte("PK\x05\x06")):
		if _, err := openArchive(data); err == errTorchScript {
			return TorchScript
		}
		return TorchZip
	case isSafetensors(data):
		return Safetensors
	case len(data) > 1 && data[0] == 0x80 && data[1] <= 5:
		return TorchLegacy
	case bytes.HasPrefix(bytes.TrimLeft(data, " \t\r\n"), []byte("{")) && bytes.Contains(data, []byte(`"weight_map"`)):
		return ShardIndex
	}
	return Unknown
}

// Options says which tensors of a checkpoint to read.
type Options struct {
	// Prefix, if set, keeps only the tensors whose names start with it and
	// strips it from their names: "model." turns "model.conv.weight" into
	// "conv.weight". A trailing dot is implied. Tensors outside the prefix
	// are left out, since a Lightning module's state dict also holds the
	// weights of its other submodules (losses, metrics, EMA copies); a
	// prefix that no name has is an error.
	Prefix string

	// Entry names the entry of a torch.save'd dict that holds the state
	// dict, as in {"epoch": 3, "model_state_dict": ...}. If empty, a
	// "state_dict" entry (as in a Lightning checkpoint) is used if there is
	// one, else the dict itself, whose values must then all be tensors.
	// Safetensors files ignore it.
	Entry string
}

// Read returns the tensors of a torch.save zip or a safetensors file,
// sorted by name.
func Read(data []byte, opts Options) ([]Tensor, error) {
	kept, dropped, err := read(data, opts)
	if err != nil {
		return nil, err
	}
	return finish(kept, dropped, opts)
}

// read returns the tensors of data under the prefix, unsorted, and the
// names of those it left out.
func read(data []byte, opts Options) ([]Tensor, []string, error) {
	opts.Prefix = withDot(opts.Prefix)
	switch f := Detect(data); f {
	case TorchZip, TorchLegacy:
		return readTorchPickle(data, opts, &budget{left: 4 * int64(len(data))})
	case Safetensors:
		return readSafetensors(data, opts)
	case TorchScript:
		return nil, nil, errTorchScript
	case ShardIndex:
		return nil, nil, fmt.Errorf("a shard index (*.index.json): read it with ReadFile so that its shards are found")
	default:
		return nil, nil, fmt.Errorf("unknown checkpoint format: neither a torch.save zip nor a safetensors file")
	}
}

// finish sorts the tensors and checks that the prefix matched something.
func finish(kept []Tensor, dropped []string, opts Options) ([]Tensor, error) {
	if len(kept) == 0 && len(dropped) > 0 {
		return nil, fmt.Errorf("no tensor name starts with prefix %q; the names are %s", opts.Prefix, someNames(dropped))
	}
	sort.Slice(kept, func(i, j int) bool { return kept[i].Name < kept[j].Name })
	for i := 1; i < len(kept); i++ {
		if kept[i].Name == kept[i-1].Name {
			return nil, fmt.Errorf("tensor %q appears twice", kept[i].Name)
		}
	}
	return kept, nil
}

// withDot returns prefix with the trailing dot it implies.
func withDot(prefix string) string {
	if prefix != "" && !strings.HasSuffix(prefix, ".") {
		return prefix + "."
	}
	return prefix
}

// strip returns name without prefix, and whether name is under prefix.
func strip(name, prefix string) (string, bool) {
	rest, ok := strings.CutPrefix(name, prefix)
	return rest, ok && rest != ""
}

// someNames quotes the first few names for an error message.
func someNames(names []string) string {
	const n = 5
	if len(names) == 0 {
		return "none"
	}
	q := make([]string, 0, n)
	for _, s := range names[:min(n, len(names))] {
		q = append(q, fmt.Sprintf("%q", s))
	}
	if len(names) <= n {
		return strings.Join(q, ", ")
	}
	return fmt.Sprintf("%s and %d more", strings.Join(q, ", "), len(names)-n)
}
