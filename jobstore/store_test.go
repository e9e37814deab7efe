package jobstore_test

import (
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	_ "gocloud.dev/blob/azureblob"
	_ "gocloud.dev/blob/fileblob"
	_ "gocloud.dev/blob/gcsblob"
	"gocloud.dev/blob/memblob"
	_ "gocloud.dev/blob/s3blob"

	"github.com/vogscore/vog/jobstore"
	"github.com/vogscore/vog/jobstore/jobstoretest"
)

func TestConformanceMem(t *testing.T) {
	jobstoretest.RunConformance(t, func(t *testing.T) *jobstore.Store {
		return jobstore.New(memblob.OpenBucket(nil), "mem")
	})
}

// TestConformanceFile: a local folder, opened as --out is (atomic create by
// a hard link).
func TestConformanceFile(t *testing.T) {
	jobstoretest.RunConformance(t, func(t *testing.T) *jobstore.Store {
		s, err := jobstore.Create(t.Context(), filepath.Join(t.TempDir(), "new", "out"))
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}

// The object stores: real servers on loopback that scripts/test.sh starts
// (versitygw, fake-gcs-server, Azurite), whose bucket URL is in urlVar (see
// cmd/vog/stores_test.go for the other variables the drivers read).
// Without one the test is skipped, unless requireVar is set.
func TestConformanceS3(t *testing.T)    { testServer(t, "VOG_S3_URL", "VOG_REQUIRE_S3") }
func TestConformanceGCS(t *testing.T)   { testServer(t, "VOG_GCS_URL", "VOG_REQUIRE_GCS") }
func TestConformanceAzure(t *testing.T) { testServer(t, "VOG_AZURE_URL", "VOG_REQUIRE_AZURE") }

var locations atomic.Int64

func testServer(t *testing.T, urlVar, requireVar string) {
	raw := os.Getenv(urlVar)
	if raw == "" {
		if os.Getenv(requireVar) != "" {
			t.Fatalf("%s is set but %s is not", requireVar, urlVar)
		}
		t.Skipf("no server: set %s (scripts/test.sh starts one)", urlVar)
	}
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	// A fresh prefix for each location, so that a server kept between runs
	// still starts empty.
	run := strconv.FormatInt(time.Now().UnixNano(), 36)
	jobstoretest.RunConformance(t, func(t *testing.T) *jobstore.Store {
		k := *u
		k.Path = "/" + strings.ReplaceAll(t.Name(), "/", "-") + "-" + run + "-" + strconv.FormatInt(locations.Add(1), 10)
		s, err := jobstore.Create(t.Context(), k.String())
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}
