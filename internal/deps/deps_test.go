// Package deps holds the test that keeps the contracts' dependencies as
// the design says (docs/design.md, "Packages"): the job contract is a leaf
// that any program may link, the client links no storage, the measures
// of vog eval and vog report open nothing themselves, and storage formats
// know no job.
package deps

import (
	"os/exec"
	"strings"
	"testing"
)

// TestLeaves lists each package's dependencies with go list -deps and
// fails on any it must not link.
func TestLeaves(t *testing.T) {
	for _, c := range []struct {
		pkg       string
		forbidden []string
	}{
		// The contract: no engine, no checkpoint reader, no storage, no
		// dataset readers, no Temporal SDK.
		{"github.com/vogscore/vog/job", []string{
			"github.com/vogscore/vog/engine", "github.com/vogscore/vog/checkpoint", "github.com/vogscore/vog/storage",
			"github.com/vogscore/vog/jobstore", "github.com/vogscore/vog/dataset", "go.temporal.io/sdk", "gocloud.dev",
			"github.com/parquet-go/parquet-go"}},
		// The client submits and follows jobs: no Parquet, no blob driver,
		// no engine.
		{"github.com/vogscore/vog/client", []string{
			"github.com/vogscore/vog/storage", "github.com/vogscore/vog/jobstore", "github.com/vogscore/vog/engine",
			"github.com/vogscore/vog/checkpoint", "github.com/parquet-go/parquet-go", "gocloud.dev/blob"}},
		// vog eval's and vog report's measures read only what they are
		// given: package main opens the storage.
		{"github.com/vogscore/vog/evaluate", []string{
			"github.com/vogscore/vog/storage", "github.com/vogscore/vog/jobstore", "gocloud.dev", "github.com/parquet-go/parquet-go", "go.temporal.io/sdk"}},
		{"github.com/vogscore/vog/report", []string{
			"github.com/vogscore/vog/storage", "github.com/vogscore/vog/jobstore", "gocloud.dev", "github.com/parquet-go/parquet-go", "go.temporal.io/sdk"}},
		// The job store is storage, not orchestration: no Temporal SDK (its
		// callers log and heartbeat), no engine. Storage itself knows
		// formats, not jobs.
		{"github.com/vogscore/vog/jobstore", []string{
			"go.temporal.io/sdk", "github.com/vogscore/vog/engine", "github.com/vogscore/vog/activities"}},
		{"github.com/vogscore/vog/storage", []string{"github.com/vogscore/vog/job", "go.temporal.io/sdk"}},
		// URLs are syntax only.
		{"github.com/vogscore/vog/location", []string{"gocloud.dev", "github.com/vogscore/vog/"}},
	} {
		out, err := exec.Command("go", "list", "-deps", c.pkg).Output()
		if err != nil {
			t.Fatalf("go list -deps %s: %v", c.pkg, err)
		}
		for _, dep := range strings.Fields(string(out)) {
			if dep == c.pkg {
				continue
			}
			for _, f := range c.forbidden {
				if dep == f || strings.HasPrefix(dep, strings.TrimSuffix(f, "/")+"/") {
					t.Errorf("%s links %s", c.pkg, dep)
				}
			}
		}
	}
}
