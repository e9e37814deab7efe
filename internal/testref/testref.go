// Package testref gives tests the PyTorch reference values of the
// Fashion-MNIST fixtures in testdata/fmnist, computed on this machine by
// testdata/fmnist/reference.py with Debian's python3-torch: floating point
// differs between CPUs (the committed checkpoints gave VoG 1e-4 apart on
// two machines), so references made elsewhere cannot be compared with
// vog's results at the engine's own precision.
package testref

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"

	"github.com/vogscore/vog/internal/short"
)

// Fixtures is the fixtures' folder relative to the repository's root.
const Fixtures = "testdata/fmnist"

var (
	once sync.Once
	dir  string
	err  error
)

// Root returns the repository's root, found from the working directory.
func Root() (string, error) {
	wd, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for d := wd; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, Fixtures, "reference.py")); err == nil {
			return d, nil
		}
		if filepath.Dir(d) == d {
			return "", errors.New("testref: no " + Fixtures + " above " + wd)
		}
	}
}

// Dir returns the folder holding reference.json, grads.f32 and logits.f32,
// computing them once per test process. Without Debian's PyTorch
// ($VOG_PYTHON, default /usr/bin/python3) the test is skipped, unless
// VOG_REQUIRE_TORCH is set.
func Dir(t testing.TB) string {
	t.Helper()
	short.Skip(t, "Python and PyTorch")
	once.Do(func() {
		var root string
		if root, err = Root(); err != nil {
			return
		}
		python := os.Getenv("VOG_PYTHON")
		if python == "" {
			python = "/usr/bin/python3"
		}
		if _, err = exec.LookPath(python); err != nil {
			return
		}
		// Computed once per machine and fixtures: test processes of other
		// packages reuse it (it takes half a minute).
		var sum string
		if sum, err = fixturesHash(root); err != nil {
			return
		}
		dir = filepath.Join(os.TempDir(), "vog-reference-"+sum)
		if _, serr := os.Stat(filepath.Join(dir, "done")); serr == nil {
			return
		}
		tmp, terr := os.MkdirTemp("", "vog-reference")
		if err = terr; err != nil {
			return
		}
		cmd := exec.Command(python, filepath.Join(root, Fixtures, "reference.py"), tmp)
		if out, cerr := cmd.CombinedOutput(); cerr != nil {
			err = errors.New("testref: reference.py: " + cerr.Error() + "\n" + string(out))
			return
		}
		if err = os.WriteFile(filepath.Join(tmp, "done"), nil, 0o644); err != nil {
			return
		}
		if rerr := os.Rename(tmp, dir); rerr != nil {
			os.RemoveAll(tmp) // another process got there first
		}
	})
	if err != nil {
		if os.Getenv("VOG_REQUIRE_TORCH") == "" {
			t.Skip(err)
		}
		t.Fatal(err)
	}
	return dir
}

// JSON decodes reference.json into v.
func JSON(t testing.TB, v any) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(Dir(t), "reference.json"))
	if err == nil {
		err = json.Unmarshal(data, v)
	}
	if err != nil {
		t.Fatal(err)
	}
}

// F32 reads a raw little-endian float32 reference file.
func F32(t testing.TB, name string) []float32 {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(Dir(t), name))
	if err != nil {
		t.Fatal(err)
	}
	out := make([]float32, len(b)/4)
	for i := range out {
		out[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
	}
	return out
}

// Python runs one of the fixtures' scripts (testdata/fmnist/NAME) with
// Debian's PyTorch, skipping the test where there is none, unless
// VOG_REQUIRE_TORCH is set.
func Python(t testing.TB, name string, args ...string) {
	t.Helper()
	short.Skip(t, "Python and PyTorch")
	root, err := Root()
	if err != nil {
		t.Fatal(err)
	}
	python := os.Getenv("VOG_PYTHON")
	if python == "" {
		python = "/usr/bin/python3"
	}
	if _, err := exec.LookPath(python); err != nil {
		if os.Getenv("VOG_REQUIRE_TORCH") == "" {
			t.Skip(err)
		}
		t.Fatal(err)
	}
	out, err := exec.Command(python, append([]string{filepath.Join(root, Fixtures, name)}, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", name, err, out)
	}
}

// fixturesHash hashes what the references are computed from: the script,
// the checkpoints and the images.
func fixturesHash(root string) (string, error) {
	h := sha256.New()
	files, err := filepath.Glob(filepath.Join(root, Fixtures, "ckpt", "*.pt"))
	if err != nil {
		return "", err
	}
	files = append(files, filepath.Join(root, Fixtures, "reference.py"),
		filepath.Join(root, Fixtures, "small-images-idx3-ubyte.gz"), filepath.Join(root, Fixtures, "small-labels-idx1-ubyte.gz"))
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			return "", err
		}
		h.Write(data)
	}
	return hex.EncodeToString(h.Sum(nil)[:8]), nil
}
