package main_test

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestPaperRecipe runs examples/paper/run.sh, the recipe of docs/paper.md,
// in its tiny versions end to end: QUICK=1 (train.py --quick trains the CNN
// on 600 Fashion-MNIST images for 2 epochs, 4 + 4 checkpoints) and QUICK=1
// MEMORISE=1 (an MLP on 300 images trained until it fits its replaced
// labels), each with vog run of every data set, vog eval against every truth
// file and the difficulty tool; then examples/paper/table on the memorising
// run. It checks that each output is there with its windows, counts and
// columns, and that the memorising model fits at least 95% of its replaced
// labels, not what the scores measure, so that the scripts do not rot; the
// measurements of the full runs are in docs/paper.md.
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
	// Sizes: train, test, unseen and inverted images.
	for _, c := range []struct {
		name                          string
		env                           []string
		train, test, unseen, inverted int
	}{
		{"cnn", []string{"QUICK=1"}, 600, 200, 50, 50},
		{"memorise", []string{"QUICK=1", "MEMORISE=1"}, 300, 100, 25, 25},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			cmd := exec.Command("../../examples/paper/run.sh", dir)
			cmd.Env = append(append(os.Environ(), c.env...), "VOG="+bin, "TEMPORAL_ADDRESS=")
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("run.sh: %v\n%s", err, out)
			}
			checkPaperRun(t, dir, c.train, c.test, c.unseen, c.inverted)
			if c.name != "memorise" {
				return
			}
			var summary struct{ Replaced_memorised float64 }
			if err := json.Unmarshal([]byte(readFile(t, dir, "summary.json")), &summary); err != nil || summary.Replaced_memorised < 0.95 {
				t.Errorf("summary.json: replaced labels memorised %v (%v), want at least 0.95", summary.Replaced_memorised, err)
			}
			table := exec.Command("go", "run", "../../examples/paper/table", "--memorise", dir+","+dir)
			out, err := table.CombinedOutput()
			if err != nil {
				t.Fatalf("table: %v\n%s", err, out)
			}
			for _, want := range []string{"| score | flags | replaced, memorised (late) |", "| conf_mean | low |", "| vog (prob) | high |", "runs per column:"} {
				if !strings.Contains(string(out), want) {
					t.Errorf("table lacks %q:\n%s", want, out)
				}
			}
			t.Logf("\n%s", out)
		})
	}
}

func readFile(t *testing.T, dir, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// checkPaperRun checks the outputs of one run.sh in dir: every result with
// its four windows of every example, every vog eval with its counts and
// rows, the difficulty tool's output.
func checkPaperRun(t *testing.T, dir string, train, test, unseen, inverted int) {
	read := func(name string) string { return readFile(t, dir, name) }

	// The results: four windows of every example, each data set's size.
	mixed := test + unseen + inverted
	for name, n := range map[string]int{"train-logit": train, "train-prob": train, "train-logit-pred": train, "train-prob-pred": train,
		"test-logit": test, "test-prob": test, "mixed-logit-pred": mixed, "mixed-prob-pred": mixed} {
		perWindow := map[string]int{}
		for _, r := range readRows(t, filepath.Join(dir, name)) {
			perWindow[r.Window]++
		}
		if want := map[string]int{"first": n, "early": n, "late": n, "all": n}; fmt.Sprint(perWindow) != fmt.Sprint(want) {
			t.Errorf("%s: rows per window %v, want %v", name, perWindow, want)
		}
	}

	// Every measurement: per window the flagged count and a row for each
	// score column with the end that flags, AUROC, AUPR and the groups'
	// mean ± std.
	replaced := fmt.Sprintf("%d examples, %d flagged replaced", train, train/5)
	unseenOOD := fmt.Sprintf("%d examples, %d flagged ood", test+unseen, unseen)
	invertedOOD := fmt.Sprintf("%d examples, %d flagged ood", test+inverted, inverted)
	evals := map[string]string{
		"train-logit.replaced": replaced, "train-prob.replaced": replaced,
		"train-logit-pred.replaced": replaced, "train-prob-pred.replaced": replaced,
		"test-logit.misclassified":    fmt.Sprintf("%d examples, ", test),
		"test-prob.misclassified":     fmt.Sprintf("%d examples, ", test),
		"mixed-logit-pred.ood_unseen": unseenOOD, "mixed-logit-pred.ood_inverted": invertedOOD,
		"mixed-prob-pred.ood_unseen": unseenOOD, "mixed-prob-pred.ood_inverted": invertedOOD,
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
		for _, col := range []string{"vog", "vog_norm", "abs_vog_norm", "loss", "el2n", "conf_mean"} {
			// A group with no value of the score (loss of an unseen class) reads "NaN (n=0)".
			group := `(\S+ ± \S+|\S+ \(n=\d+\))`
			row := regexp.MustCompile(`(?m)^\s*` + col + `\s+(high|low)(\s+([0-9.]+|NaN)){3}\s+` + group + `\s+` + group + `\s+\S+\s+\S+$`)
			if n := len(row.FindAllString(text, -1)); n != 4 {
				t.Errorf("%s.eval: %d rows of %s, want one per window:\n%s", name, n, col, text)
			}
		}
	}
	diff := read("test-logit.difficulty")
	for _, want := range []string{fmt.Sprintf("window first: %d examples", test), fmt.Sprintf("window late: %d examples", test),
		"error by decile (1 = lowest)", "abs_vog_norm", "class mean vog against class error (8 classes): Pearson"} {
		if !strings.Contains(diff, want) {
			t.Errorf("test-logit.difficulty lacks %q:\n%s", want, diff)
		}
	}
	t.Logf("\n%s", results)
}
