package workflows_test

import (
	"testing"

	"github.com/vogscore/vog/dataset"
	"github.com/vogscore/vog/storage"
)

func datasetSpec(prefix string) dataset.Spec { return dataset.Spec{Format: "idx", URL: prefix} }

func mustParse(t *testing.T, raw string) storage.Location {
	t.Helper()
	l, err := storage.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	return l
}
