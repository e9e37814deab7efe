// Package headless runs headless Chromium for the tests of pages vog
// writes or serves.
package headless

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"syscall"
	"testing"
)

// Chromium runs chromium --headless with args, and returns what it wrote
// to stdout and stderr. The test is skipped when chromium is missing,
// unless VOG_REQUIRE_CHROMIUM is set.
//
// Chromium's helper processes can outlive the browser for a moment and
// write into its profile, so the profile is not under the test's TempDir
// (whose removal would then fail the test), and the browser runs in a
// process group of its own that is killed whole once it exits.
func Chromium(t testing.TB, ctx context.Context, args ...string) (stdout, stderr string) {
	t.Helper()
	chromium, err := exec.LookPath("chromium")
	if err != nil {
		if os.Getenv("VOG_REQUIRE_CHROMIUM") != "" {
			t.Fatal("chromium is not installed")
		}
		t.Skip("chromium is not installed: apt-get install chromium")
	}
	profile, err := os.MkdirTemp("", "vog-chromium-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(profile) })
	cmd := exec.CommandContext(ctx, chromium, append([]string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
		"--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--disable-breakpad", "--user-data-dir=" + profile}, args...)...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	var out, errs bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errs
	err = cmd.Start()
	if err == nil {
		err = cmd.Wait()
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) // its helpers too
	}
	if err != nil {
		t.Fatalf("chromium: %v\n%s", err, errs.String())
	}
	return out.String(), errs.String()
}
