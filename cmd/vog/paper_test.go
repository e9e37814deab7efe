package main_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestPaperRecipe runs examples/paper/run.sh, the recipe of docs/paper.md,
// in its tiny version (QUICK=1: train.py --quick trains the CNN on 600
// Fashion-MNIST images for 2 epochs, 4 + 4 checkpoints) end to end: vog run of
// every data set, vog eval against every truth file, and the difficulty
// tool. It checks that each output is there with its windows, counts and
// columns, not what it measures, so that the scripts do not rot; the
// measurements of the full run are in docs/paper.md.
func TestPaperRecipe(t *testing.T) {
	bin := vog(t)
	if err := exec.Command("/usr/bin/python3", "-c", "import torch, numpy").Run(); err != nil {
		if os.Getenv("VOG_REQUIRE_TORCH") != "" {
			t.Fatalf("Debian's python3-torch: %v", err)
		}
		t.Skipf("examples/paper/train.py needs Debian's python3-torch: %v", err)
	}
	if _, err := os.Stat("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz"); err != nil {
		t.Skipf("Fashion-MNIST is not installed: %v", err)
	}
	dir := t.TempDir()
	cmd := exec.Command("../../examples/paper/run.sh", dir)
	cmd.Env = append(os.Environ(), "QUICK=1", "VOG="+bin, "TEMPORAL_ADDRESS=")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("run.sh: %v\n%s", err, out)
	}
	read := func(name string) string {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}

	// The results: four windows of every example, each data set's size.
	for name, n := range map[string]int{"train-logit": 600, "train-prob": 600, "train-logit-pred": 600, "train-prob-pred": 600,
		"test-logit": 200, "mixed-logit-pred": 300, "mixed-prob-pred": 300} {
		perWindow := map[string]int{}
		for _, r := range readRows(t, filepath.Join(dir, name)) {
			perWindow[r.Window]++
		}
		if want := map[string]int{"first": n, "early": n, "late": n, "all": n}; fmt.Sprint(perWindow) != fmt.Sprint(want) {
			t.Errorf("%s: rows per window %v, want %v", name, perWindow, want)
		}
	}

	// Every measurement: per window the flagged count and a row for each
	// score column with AUROC, AUPR and the groups' mean ± std.
	evals := map[string]string{
		"train-logit.replaced": "600 examples, 120 flagged replaced", "train-prob.replaced": "600 examples, 120 flagged replaced",
		"train-logit-pred.replaced": "600 examples, 120 flagged replaced", "train-prob-pred.replaced": "600 examples, 120 flagged replaced",
		"test-logit.misclassified":    "200 examples, ",
		"mixed-logit-pred.ood_unseen": "250 examples, 50 flagged ood", "mixed-logit-pred.ood_inverted": "250 examples, 50 flagged ood",
		"mixed-prob-pred.ood_unseen": "250 examples, 50 flagged ood", "mixed-prob-pred.ood_inverted": "250 examples, 50 flagged ood",
	}
	results := read("results.txt")
	for name, counts := range evals {
		text := read(name + ".eval")
		if !strings.Contains(results, text) {
			t.Errorf("results.txt lacks %s.eval", name)
		}
		for _, w := range []string{"all", "early", "first", "late"} {
			if !strings.Contains(text, "window "+w+": "+counts) {
				t.Errorf("%s.eval: no %q for window %s:\n%s", name, counts, w, text)
			}
		}
		if !strings.Contains(text, "flagged mean ± std") {
			t.Errorf("%s.eval: no group means:\n%s", name, text)
		}
		for _, col := range []string{"vog", "vog_norm", "abs_vog_norm", "loss", "el2n"} {
			// A group with no value of the score (loss of an unseen class) reads "NaN (n=0)".
			group := `(\S+ ± \S+|\S+ \(n=\d+\))`
			row := regexp.MustCompile(`(?m)^\s*` + col + `(\s+([0-9.]+|NaN)){3}\s+` + group + `\s+` + group + `\s+\S+\s+\S+$`)
			if n := len(row.FindAllString(text, -1)); n != 4 {
				t.Errorf("%s.eval: %d rows of %s, want one per window:\n%s", name, n, col, text)
			}
		}
	}
	diff := read("test-logit.difficulty")
	for _, want := range []string{"window first: 200 examples", "window late: 200 examples", "error by decile (1 = lowest)", "abs_vog_norm", "class mean vog against class error (8 classes): Pearson"} {
		if !strings.Contains(diff, want) {
			t.Errorf("test-logit.difficulty lacks %q:\n%s", want, diff)
		}
	}
	t.Logf("\n%s", results)
}
