// Package modelzoo turns an architecture named on the command line, as
// torchvision:resnet50, into the TorchScript module that vog's engine
// loads a state dict into. The module is made by Python with the PyTorch
// and torchvision of the engine's own libtorch (Debian's python3-torch and
// python3-torchvision for the CPU engine), so that its operators are ones
// the engine has; users with torchvision checkpoints then need no arch.pt.
package modelzoo

import (
	"bytes"
	"context"
	_ "embed"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
)

// Prefix starts a model named by its torchvision architecture.
const Prefix = "torchvision:"

// DefaultClasses is the number of classes torchvision's models have unless
// told otherwise (ImageNet-1k's).
const DefaultClasses = 1000

//go:embed export.py
var exportPy []byte

var archName = regexp.MustCompile(`^[a-z][a-z0-9_]*$`)

// IsName reports whether model names an architecture rather than a file.
func IsName(model string) bool { return strings.HasPrefix(model, Prefix) }

// Arch returns the architecture that model names, as "resnet50", checking
// its syntax.
func Arch(model string) (string, error) {
	arch, ok := strings.CutPrefix(model, Prefix)
	if !ok || !archName.MatchString(arch) {
		return "", fmt.Errorf("--model %q: want torchvision:NAME, NAME one of torchvision's classification models (resnet50, vit_b_16, ...)", model)
	}
	return arch, nil
}

// Python returns the Python that exports models: $VOG_PYTHON, else
// Debian's /usr/bin/python3 (whose torch is the CPU engine's libtorch).
func Python() string {
	if p := os.Getenv("VOG_PYTHON"); p != "" {
		return p
	}
	return "/usr/bin/python3"
}

// Export returns the TorchScript module of torchvision architecture arch
// with classes outputs, made by python. The same arguments give the same
// bytes.
func Export(ctx context.Context, python, arch string, classes int) ([]byte, error) {
	if classes <= 0 {
		return nil, fmt.Errorf("torchvision:%s: %d classes", arch, classes)
	}
	dir, err := os.MkdirTemp("", "vog-modelzoo")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	script := filepath.Join(dir, "export.py")
	if err := os.WriteFile(script, exportPy, 0o644); err != nil {
		return nil, err
	}
	out := filepath.Join(dir, "model.pt")
	var stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, python, script, arch, fmt.Sprint(classes), out)
	// Python sets iterate in a random order per process, and TorchScript
	// writes a module's __constants__ in it: fix it, for the same bytes.
	cmd.Env = append(os.Environ(), "PYTHONHASHSEED=0")
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		msg := strings.TrimSpace(stderr.String())
		if i := strings.LastIndex(msg, "\n"); i >= 0 {
			msg = msg[i+1:]
		}
		if strings.Contains(msg, "No module named") || isNotFound(err) {
			return nil, fmt.Errorf("torchvision:%s: exporting it needs Python with the engine's PyTorch and torchvision "+
				"(Debian: apt-get install python3-torchvision; or set $VOG_PYTHON): %s %v", arch, python, firstNonEmpty(msg, err.Error()))
		}
		return nil, fmt.Errorf("torchvision:%s: %s", arch, firstNonEmpty(msg, err.Error()))
	}
	return os.ReadFile(out)
}

func isNotFound(err error) bool {
	var pe *os.PathError
	var ee *exec.Error
	return errors.As(err, &pe) || errors.As(err, &ee)
}

func firstNonEmpty(a, b string) string {
	if a != "" {
		return a
	}
	return b
}
