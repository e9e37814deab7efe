package checkpoint

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The fixtures under testdata are written by testdata/make_fixtures.py with
// PyTorch; expected.json holds the exact bytes of their tensors.

func fixture(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// expected returns the tensors of one set in expected.json.
func expected(t *testing.T, set string) []Tensor {
	t.Helper()
	var all map[string][]struct {
		Name  string
		DType string
		Shape []int64
		Data  []byte
	}
	if err := json.Unmarshal(fixture(t, "expected.json"), &all); err != nil {
		t.Fatal(err)
	}
	var out []Tensor
	for _, e := range all[set] {
		out = append(out, Tensor{Name: e.Name, DType: safetensorsDType(e.DType), Shape: e.Shape, Data: e.Data})
	}
	if len(out) == 0 {
		t.Fatalf("no set %q in expected.json", set)
	}
	return out
}

// same fails t unless got and want hold the same tensors in the same order.
func same(t *testing.T, what string, got, want []Tensor) {
	t.Helper()
	if len(got) != len(want) {
		var names []string
		for _, g := range got {
			names = append(names, g.Name)
		}
		t.Fatalf("%s: %d tensors %v, want %d", what, len(got), names, len(want))
	}
	for i, g := range got {
		w := want[i]
		if g.Name != w.Name || g.DType != w.DType || !equalShape(g.Shape, w.Shape) || !bytes.Equal(g.Data, w.Data) {
			t.Errorf("%s: tensor %d is %s %s %v % x,\nwant %s %s %v % x", what, i,
				g.Name, g.DType, g.Shape, g.Data, w.Name, w.DType, w.Shape, w.Data)
		}
		if g.Numel()*int64(g.DType.Size()) != int64(len(g.Data)) {
			t.Errorf("%s: %s has %d bytes for shape %v", what, g.Name, len(g.Data), g.Shape)
		}
	}
}

func equalShape(a, b []int64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func readFixture(t *testing.T, name string, opts Options) []Tensor {
	t.Helper()
	ts, err := ReadFile(filepath.Join("testdata", name), opts)
	if err != nil {
		t.Fatal(err)
	}
	return ts
}

// TestFormatsAgree: the CNN's weights read the same, to the byte, from a
// torch.save state dict, a Lightning checkpoint, and safetensors files
// whole and sharded.
func TestFormatsAgree(t *testing.T) {
	want := expected(t, "cnn")
	same(t, "state_dict.pt", readFixture(t, "state_dict.pt", Options{}), want)
	same(t, "lightning.ckpt", readFixture(t, "lightning.ckpt", Options{Prefix: "model."}), want)
	same(t, "lightning.ckpt, prefix without dot", readFixture(t, "lightning.ckpt", Options{Prefix: "model"}), want)
	same(t, "model.safetensors", readFixture(t, "model.safetensors", Options{}), want)
	same(t, "sharded", readFixture(t, "model.safetensors.index.json", Options{}), want)
	var fc []Tensor
	for _, w := range want {
		if strings.HasPrefix(w.Name, "fc.") {
			fc = append(fc, w)
		}
	}
	same(t, "legacy.pt", readFixture(t, "legacy.pt", Options{}), fc)

	for _, ts := range [][]Tensor{readFixture(t, "state_dict.pt", Options{}), readFixture(t, "model.safetensors", Options{})} {
		n := ts[1]
		if n.Name != "bn.num_batches_tracked" || n.DType != I64 || len(n.Shape) != 0 || n.Data[0] != 1 {
			t.Errorf("num_batches_tracked read as %+v", n)
		}
	}
}

func TestDetect(t *testing.T) {
	for name, want := range map[string]Format{
		"state_dict.pt": TorchZip, "lightning.ckpt": TorchZip, "model.safetensors": Safetensors,
		"model.safetensors.index.json": ShardIndex, "legacy.pt": TorchLegacy,
		"scripted.pt": TorchScript, "make_fixtures.py": Unknown,
	} {
		if got := Detect(fixture(t, name)); got != want {
			t.Errorf("Detect(%s) = %s, want %s", name, got, want)
		}
	}
}

// TestViews: transposed, sliced, scalar, expanded and storage-sharing
// tensors come out contiguous with the values PyTorch shows.
func TestViews(t *testing.T) {
	same(t, "views.pt", readFixture(t, "views.pt", Options{}), expected(t, "views"))
}

func TestDTypes(t *testing.T) {
	want := expected(t, "dtypes")
	same(t, "dtypes.pt", readFixture(t, "dtypes.pt", Options{}), want)
	same(t, "dtypes.safetensors", readFixture(t, "dtypes.safetensors", Options{}), want)
}

// TestProtocol4: pickle protocol 4, a Parameter and a tensor subclass.
func TestProtocol4(t *testing.T) {
	same(t, "proto4.pt", readFixture(t, "proto4.pt", Options{}), expected(t, "proto4"))
}

// TestLightning: the prefix picks one submodule's weights out of a
// Lightning checkpoint whose other entries hold classes the reader does not
// know.
func TestLightning(t *testing.T) {
	same(t, "loss_fn", readFixture(t, "lightning.ckpt", Options{Prefix: "loss_fn."}), expected(t, "loss_fn"))

	all := readFixture(t, "lightning.ckpt", Options{})
	if len(all) != len(expected(t, "cnn"))+1 || all[0].Name != "loss_fn.weight" || all[1].Name != "model.bn.bias" {
		t.Errorf("without a prefix: %d tensors, first %q, %q", len(all), all[0].Name, all[1].Name)
	}

	_, err := Read(fixture(t, "lightning.ckpt"), Options{Prefix: "net."})
	wantErr(t, err, `no tensor name starts with prefix "net."`, `"model.conv.weight"`)
}

// TestEntry: a custom training script's dict names the entry that holds
// the weights.
func TestEntry(t *testing.T) {
	data := fixture(t, "custom.pt")
	_, err := Read(data, Options{})
	wantErr(t, err, `no "state_dict" entry`, `"model_state_dict"`)

	ts, err := Read(data, Options{Entry: "model_state_dict"})
	if err != nil {
		t.Fatal(err)
	}
	same(t, "custom.pt", ts, expected(t, "cnn"))

	_, err = Read(data, Options{Entry: "optimizer_state_dict"})
	wantErr(t, err, `key "state" of entry "optimizer_state_dict": value is a dict, not a tensor`)
	_, err = Read(data, Options{Entry: "epoch"})
	wantErr(t, err, `entry "epoch" is an int, not a dict of tensors`)
	_, err = Read(data, Options{Entry: "weights"})
	wantErr(t, err, `no "weights" entry`, `"epoch", "model_state_dict"`)
	_, err = Read(fixture(t, "lightning.ckpt"), Options{Entry: "optimizer_states"})
	wantErr(t, err, `entry "optimizer_states" is a list`)
	_, err = Read(fixture(t, "lightning.ckpt"), Options{Entry: "hyper_parameters"})
	wantErr(t, err, `key "cfg" of entry "hyper_parameters": value is an object of __main__.HParams, not a tensor`)
}

func wantErr(t *testing.T, err error, parts ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error, want one with %q", parts)
	}
	for _, p := range parts {
		if !strings.Contains(err.Error(), p) {
			t.Errorf("error %q lacks %q", err, p)
		}
	}
}

// TestRefused: files in formats the reader does not read say what they are.
func TestRefused(t *testing.T) {
	for name, parts := range map[string][]string{
		"module.pt":                    {"an object of torch.nn.modules.linear.Linear", "save model.state_dict()"},
		"scripted.pt":                  {"TorchScript module"},
		"model.safetensors.index.json": {"ReadFile"},
		"make_fixtures.py":             {"unknown checkpoint format"},
	} {
		_, err := Read(fixture(t, name), Options{})
		wantErr(t, err, parts...)
	}
}

// TestTruncated: every cut of a checkpoint is an error, never a panic.
func TestTruncated(t *testing.T) {
	for _, name := range []string{"state_dict.pt", "lightning.ckpt", "model.safetensors"} {
		data := fixture(t, name)
		for n := 0; n < len(data); n += 1 + n/50 {
			if _, err := Read(data[:n], Options{}); err == nil {
				t.Errorf("%s cut to %d bytes read without error", name, n)
			}
		}
	}
	data := fixture(t, "state_dict.pt")
	_, err := Read(data[:len(data)-100], Options{})
	wantErr(t, err, "zip: not a valid zip file (a truncated or damaged file?)")
	data = fixture(t, "model.safetensors")
	_, err = Read(data[:len(data)-1], Options{})
	wantErr(t, err, "safetensors: header: ", "data_offsets", "lie outside")
}

// TestShardIndex: an index must name shards beside it, holding the
// tensors it places there.
func TestShardIndex(t *testing.T) {
	dir := t.TempDir()
	for _, f := range []string{"model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"} {
		if err := os.WriteFile(filepath.Join(dir, f), fixture(t, f), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	index := func(body string) string {
		p := filepath.Join(dir, "model.safetensors.index.json")
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	_, err := ReadFile(index(`{"weight_map": {"bn.bias": "model-00002-of-00002.safetensors"}}`), Options{})
	wantErr(t, err, "model-00002-of-00002.safetensors", `no tensor "bn.bias"`)
	_, err = ReadFile(index(`{"weight_map": {"bn.bias": "../model.safetensors"}}`), Options{})
	wantErr(t, err, `shard "../model.safetensors" is not a file name`)
	_, err = ReadFile(index(`{"weight_map": {"bn.bias": "missing.safetensors"}}`), Options{})
	wantErr(t, err, "missing.safetensors")

	ts, err := ReadFile(index(`{"weight_map": {"bn.bias": "model-00001-of-00002.safetensors"}}`), Options{Prefix: "bn"})
	if err != nil {
		t.Fatal(err)
	}
	if len(ts) != 3 || ts[0].Name != "bias" {
		t.Errorf("prefix over shards: %d tensors, first %q", len(ts), ts[0].Name)
	}
}
