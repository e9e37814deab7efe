package main_test

import (
	"io"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"gocloud.dev/blob"
	_ "gocloud.dev/blob/azureblob"
	_ "gocloud.dev/blob/gcsblob"
	_ "gocloud.dev/blob/s3blob"
)

// store is an object store the end-to-end tests run against: a real server
// on loopback that scripts/test.sh starts, whose bucket URL is in $urlVar.
// Without one the test is skipped, unless $requireVar is set.
type store struct {
	urlVar, requireVar, server string
}

var (
	// S3: versitygw over a temporary folder; the endpoint is in the URL and
	// the keys in AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY.
	s3Store = store{"VOG_S3_URL", "VOG_REQUIRE_S3", "S3"}
	// GCS: fake-gcs-server in memory; gcsblob talks to the server in
	// STORAGE_EMULATOR_HOST without credentials.
	gcsStore = store{"VOG_GCS_URL", "VOG_REQUIRE_GCS", "GCS"}
	// Azure Blob: Azurite in memory; the endpoint is in the URL (protocol=http,
	// domain=127.0.0.1:PORT) and the account and its key in
	// AZURE_STORAGE_ACCOUNT and AZURE_STORAGE_KEY.
	azureStore = store{"VOG_AZURE_URL", "VOG_REQUIRE_AZURE", "Azure Blob"}
)

// bucket returns the store's test bucket URL, skipping the test where there
// is none unless the store is required.
func (s store) bucket(t *testing.T) *url.URL {
	t.Helper()
	raw := os.Getenv(s.urlVar)
	if raw == "" {
		if os.Getenv(s.requireVar) != "" {
			t.Fatalf("%s is set but %s is not", s.requireVar, s.urlVar)
		}
		t.Skipf("no %s server: set %s (scripts/test.sh starts one)", s.server, s.urlVar)
	}
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// s3Bucket returns the S3 test bucket's URL ($VOG_S3_URL).
func s3Bucket(t *testing.T) *url.URL { return s3Store.bucket(t) }

// storeKey returns the URL of key in the bucket u, keeping u's query (the
// driver's options).
func storeKey(u *url.URL, key string) string {
	k := *u
	k.Path = "/" + key
	return k.String()
}

func s3Key(u *url.URL, key string) string { return storeKey(u, key) }

// TestRunS3, TestRunGCS and TestRunAzure read the dataset and checkpoints
// from a real server of each store and write the result there; the rows
// equal a local run's.
func TestRunS3(t *testing.T)    { testRunStore(t, s3Store) }
func TestRunGCS(t *testing.T)   { testRunStore(t, gcsStore) }
func TestRunAzure(t *testing.T) { testRunStore(t, azureStore) }

func testRunStore(t *testing.T, s store) {
	u := s.bucket(t)
	vog(t)
	ctx := t.Context()
	b, err := blob.OpenBucket(ctx, u.String())
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	// A fresh prefix, so that a server kept between runs still sees a new job.
	prefix := t.Name() + "-" + strconv.FormatInt(time.Now().UnixNano(), 36) + "/"
	upload := func(local, key string) {
		data, err := os.ReadFile(local)
		if err != nil {
			t.Fatal(err)
		}
		if err := b.WriteAll(ctx, prefix+key, data, nil); err != nil {
			t.Fatalf("upload %s: %v", key, err)
		}
	}
	upload(filepath.Join(fixtures, "small-images-idx3-ubyte.gz"), "data/small-images-idx3-ubyte.gz")
	upload(filepath.Join(fixtures, "small-labels-idx1-ubyte.gz"), "data/small-labels-idx1-ubyte.gz")
	ckpts, _ := filepath.Glob(filepath.Join(fixtures, "ckpt", "*.pt"))
	if len(ckpts) == 0 {
		t.Fatal("no checkpoints in " + fixtures + "/ckpt")
	}
	for _, c := range ckpts {
		upload(c, "ckpt/"+filepath.Base(c))
	}

	out := storeKey(u, prefix+"out")
	r := runVog(t, "run", "--format", "idx", "--dataset", storeKey(u, prefix+"data/small"),
		"--checkpoints", storeKey(u, prefix+"ckpt"), "--out", out, "--state-dir", t.TempDir(), "--shard-size", "100",
		"--threads", "2") // as scoreArgs: bit-equal rows need equal thread counts
	if r.err != nil {
		t.Fatalf("%v\n%s", r.err, r.stderr)
	}
	local := t.TempDir()
	if r := runVog(t, scoreArgs(t, local, "--shard-size", "100")...); r.err != nil {
		t.Fatalf("%v\n%s", r.err, r.stderr)
	}
	got, want := readRows(t, fetchStore(t, u, prefix+"out")), readRows(t, local)
	if len(want) == 0 {
		t.Fatal("the local run wrote no rows")
	}
	if !slices.Equal(got, want) {
		t.Fatalf("rows written to %s differ from a local run's (%d rows, %d local)", u.Scheme, len(got), len(want))
	}
}

// TestRunStoreRefused: a job whose --out names a bucket that does not
// exist, or that the store refuses these credentials for, fails at once
// with the store's reason and the URL, rather than after --retry-for (10
// minutes by default) of retries that cannot succeed.
func TestRunStoreRefused(t *testing.T) {
	for _, s := range []store{s3Store, gcsStore, azureStore} {
		t.Run(s.server, func(t *testing.T) {
			u := s.bucket(t)
			vog(t)
			missing := *u
			missing.Host = "vog-no-such-bucket"
			refusedRun(t, storeKey(&missing, "out"), nil, "the bucket does not exist")
			if s == s3Store {
				refusedRun(t, storeKey(u, "out"), []string{"AWS_SECRET_ACCESS_KEY=not-the-secret"}, "SignatureDoesNotMatch")
			}
		})
	}
}

// refusedRun runs a job into out with env added, and checks that it fails,
// naming out and the store's reason, want, without a retry.
func refusedRun(t *testing.T, out string, env []string, want string) {
	t.Helper()
	start := time.Now()
	r := runVogEnv(t, env, "run", "--format", "idx", "--dataset", fixtures+"/small", "--checkpoints", fixtures+"/ckpt",
		"--out", out, "--state-dir", t.TempDir(), "--progress", "1s")
	took := time.Since(start).Round(100 * time.Millisecond)
	if r.err == nil {
		t.Fatalf("a job into %s (%q) succeeded", out, env)
	}
	if !strings.Contains(r.stderr, want) || !strings.Contains(r.stderr, out) || strings.Contains(r.stderr, "retrying: ") {
		t.Fatalf("a job into %s (%q) failed after %s without naming %q and the URL, or after retries:\n%s", out, env, took, want, r.stderr)
	}
	lines := strings.Split(strings.TrimSpace(r.stderr), "\n")
	t.Logf("%s (%q): failed in %s: %s", out, env, took, lines[len(lines)-1])
}

// fetchStore copies a job's result under prefix from the bucket u to a
// local folder.
func fetchStore(t *testing.T, u *url.URL, prefix string) string {
	t.Helper()
	ctx := t.Context()
	b, err := blob.OpenBucket(ctx, u.String())
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	return fetchBucket(t, b, prefix)
}

// fetchBucket copies a job's result under prefix from b to a local folder.
func fetchBucket(t *testing.T, b *blob.Bucket, prefix string) string {
	t.Helper()
	ctx := t.Context()
	dir := t.TempDir()
	it := b.List(&blob.ListOptions{Prefix: prefix + "/"})
	for {
		obj, err := it.Next(ctx)
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		data, err := b.ReadAll(ctx, obj.Key)
		if err != nil {
			t.Fatalf("%s: %v", obj.Key, err)
		}
		local := filepath.Join(dir, strings.TrimPrefix(obj.Key, prefix+"/"))
		if err := os.MkdirAll(filepath.Dir(local), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(local, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "_SUCCESS")); err != nil {
		t.Fatalf("no _SUCCESS under %s: %v", prefix, err)
	}
	return dir
}

func fetchS3(t *testing.T, u *url.URL, prefix string) string { return fetchStore(t, u, prefix) }
