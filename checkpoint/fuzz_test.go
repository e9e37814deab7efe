package checkpoint

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"testing"
)

// The fuzz tests check that no input panics and that memory stays
// proportional to the input. Their seeds are the fixtures and the corpus
// under testdata/fuzz.

// allocLimit bounds the bytes one parse of n input bytes may allocate.
func allocLimit(n int) uint64 { return 16<<20 + 1024*uint64(n) }

// bounded runs parse and fails t if it allocated more than allocLimit.
func bounded(t *testing.T, data []byte, parse func()) {
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	parse()
	runtime.ReadMemStats(&after)
	if got := after.TotalAlloc - before.TotalAlloc; got > allocLimit(len(data)) {
		t.Fatalf("parsing %d bytes allocated %d bytes", len(data), got)
	}
}

func addFixtures(f *testing.F) {
	names, _ := filepath.Glob("testdata/*")
	for _, name := range names {
		if data, err := os.ReadFile(name); err == nil && filepath.Ext(name) != ".py" {
			f.Add(data)
		}
	}
}

func FuzzRead(f *testing.F) {
	addFixtures(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		bounded(t, data, func() {
			for _, opts := range []Options{{}, {Prefix: "model"}, {Entry: "state_dict"}} {
				ts, err := Read(data, opts)
				if err != nil {
					continue
				}
				for _, x := range ts {
					if n, err := numel(x.Shape); err != nil || n*int64(x.DType.Size()) != int64(len(x.Data)) {
						t.Fatalf("%q: %d bytes for %s %v", x.Name, len(x.Data), x.DType, x.Shape)
					}
				}
			}
		})
	})
}

// FuzzFind reads each input as a TorchScript module and as a checkpoint
// whose weights Find looks for (those of the module when it is one).
func FuzzFind(f *testing.F) {
	addFixtures(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		bounded(t, data, func() {
			want, err := ModuleParams(data)
			if err != nil || len(want) == 0 {
				want = []Param{{"weight", []int64{3, 4}}, {"bias", []int64{3}}}
			}
			noSibling := func(string) ([]byte, error) { return nil, os.ErrNotExist }
			if found, err := Find("fuzz", data, noSibling, want, Options{}); err == nil && len(found.Tensors) != len(want) {
				t.Fatalf("found %d tensors for %d parameters", len(found.Tensors), len(want))
			}
			Classes("fuzz", data, noSibling, want, 3, Options{})
		})
	})
}

// FuzzPickle reads each input as the data.pkl of a torch.save zip whose
// storages data/0 to data/19 hold 512 bytes each, so that fuzzed tensor
// views reach the code that materialises them.
func FuzzPickle(f *testing.F) {
	f.Add([]byte("\x80\x02}q\x00(X\x01\x00\x00\x00aq\x01]q\x02h\x02au."))
	f.Add(view1())
	storage := make([]byte, 512)
	for i := range storage {
		storage[i] = byte(i)
	}
	f.Fuzz(func(t *testing.T, pkl []byte) {
		files := []any{"data.pkl", pkl}
		for i := 0; i < 20; i++ {
			files = append(files, fmt.Sprintf("data/%d", i), storage)
		}
		data := torchZip(t, files...)
		bounded(t, data, func() {
			if v, _, err := unpickle(pkl); err == nil {
				describe(v)
			}
			Read(data, Options{})
		})
	})
}

func FuzzSafetensors(f *testing.F) {
	addFixtures(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		bounded(t, data, func() { readSafetensors(data, Options{}) })
	})
}
