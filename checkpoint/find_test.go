package checkpoint

import (
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestModuleParams: a TorchScript module's parameters and buffers, as its
// state_dict() names them, read without running it.
func TestModuleParams(t *testing.T) {
	ps, err := ModuleParams(fixture(t, "scripted.pt"))
	if err != nil {
		t.Fatal(err)
	}
	want := []Param{{"weight", []int64{3, 4}}, {"bias", []int64{3}}}
	if !slices.EqualFunc(ps, want, func(a, b Param) bool { return a.Name == b.Name && slices.Equal(a.Shape, b.Shape) }) {
		t.Fatalf("got %v, want %v", ps, want)
	}
	if _, err := ModuleParams(fixture(t, "state_dict.pt")); err == nil || !strings.Contains(err.Error(), "not a TorchScript module") {
		t.Errorf("a state dict as a module: %v", err)
	}
}

// TestFind: the weights of scripted.pt (a Linear, "weight" and "bias")
// are found in each fixture under the prefix that makes them fit, with no
// prefix given: "fc." in a plain state dict and the legacy format,
// "model.fc." in the Lightning checkpoint (where "loss_fn.weight" has
// another shape and so does not fit), none in a whole pickled module.
func TestFind(t *testing.T) {
	want, err := ModuleParams(fixture(t, "scripted.pt"))
	if err != nil {
		t.Fatal(err)
	}
	var fc []Tensor
	for _, w := range expected(t, "cnn") {
		if name, ok := strings.CutPrefix(w.Name, "fc."); ok {
			w.Name = name
			fc = append(fc, w)
		}
	}
	for _, c := range []struct{ file, entry, prefix string }{
		{"state_dict.pt", "", "fc."},
		{"legacy.pt", "", "fc."},
		{"lightning.ckpt", "state_dict", "model.fc."},
		{"model.safetensors", "", "fc."},
		{"model.safetensors.index.json", "", "fc."},
		{"module.pt", "", ""}, // torch.save(model.fc): the whole module
	} {
		path := filepath.Join("testdata", c.file)
		f, err := Find(path, fixture(t, c.file), func(name string) ([]byte, error) { return fixture(t, name), nil }, want, Options{})
		if err != nil {
			t.Errorf("%s: %v", c.file, err)
			continue
		}
		if f.Entry != c.entry || f.Prefix != c.prefix {
			t.Errorf("%s: found %s, want entry %q prefix %q", c.file, f, c.entry, c.prefix)
		}
		same(t, c.file, f.Tensors, fc)
	}
}

// TestFindErrors: what does not fit is named, with the entries the file
// has and the flags that would choose otherwise.
func TestFindErrors(t *testing.T) {
	want := []Param{{"weight", []int64{5, 4}}, {"bias", []int64{5}}}
	_, err := Find("lightning.ckpt", fixture(t, "lightning.ckpt"), nil, want, Options{})
	for _, s := range []string{"lightning.ckpt", `"state_dict" (`, "is [3 4] in the file, [5 4] in the model", "--state-dict-entry", "--state-dict-prefix"} {
		if err == nil || !strings.Contains(err.Error(), s) {
			t.Errorf("want %q in %v", s, err)
		}
	}
	_, err = Find("lightning.ckpt", fixture(t, "lightning.ckpt"), nil, want, Options{Entry: "model_ema"})
	if err == nil || !strings.Contains(err.Error(), `no entry "model_ema"`) || !strings.Contains(err.Error(), `"state_dict"`) {
		t.Errorf("a missing entry: %v", err)
	}
}

// TestChoose: of several fitting state dicts, averaged weights give way to
// the plain ones; two plain ones of equal rank are ambiguous.
func TestChoose(t *testing.T) {
	c := func(entry string) fit { return fit{c: &candidate{entry: entry}} }
	for _, tc := range []struct {
		fits []string
		want string // "" for an error
	}{
		{[]string{"state_dict", "state_dict_ema"}, "state_dict"},
		{[]string{"model_ema", "model"}, "model"},
		{[]string{"", "state_dict"}, ""},
		{[]string{"swa_model", "net"}, "net"},
		{[]string{"weights_a", "weights_b"}, "!"},
		{[]string{"ema"}, "ema"},
	} {
		var fits []fit
		for _, e := range tc.fits {
			fits = append(fits, c(e))
		}
		got, err := choose(fits)
		switch {
		case tc.want == "!" && err == nil:
			t.Errorf("%v: chose %q, want an error", tc.fits, got.c.entry)
		case tc.want != "!" && (err != nil || got.c.entry != tc.want):
			t.Errorf("%v: chose %v (%v), want %q", tc.fits, got.c, err, tc.want)
		}
	}
}
