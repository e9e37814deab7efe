package workflows_test

import (
	"testing"

	"github.com/vogscore/vog/job"
	"github.com/vogscore/vog/location"
)

func datasetSpec(prefix string) job.Dataset { return job.Dataset{Format: "idx", URL: prefix} }

func mustParse(t *testing.T, raw string) location.Location {
	t.Helper()
	l, err := location.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	return l
}
