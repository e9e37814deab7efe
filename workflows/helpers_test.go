package workflows_test

import (
	"testing"

	"github.com/vogscore/vog/job"
	"github.com/vogscore/vog/storage"
)

func datasetSpec(prefix string) job.Dataset { return job.Dataset{Format: "idx", URL: prefix} }

func mustParse(t *testing.T, raw string) storage.Location {
	t.Helper()
	l, err := storage.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	return l
}
