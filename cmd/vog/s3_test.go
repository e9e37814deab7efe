package main_test

import (
	"io"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"gocloud.dev/blob"
	_ "gocloud.dev/blob/s3blob"
)

// s3Bucket returns the S3 test bucket's URL ($VOG_S3_URL, set by
// scripts/test.sh, which runs versitygw on loopback), skipping the test
// where there is none unless VOG_REQUIRE_S3 is set.
func s3Bucket(t *testing.T) *url.URL {
	t.Helper()
	raw := os.Getenv("VOG_S3_URL")
	if raw == "" {
		if os.Getenv("VOG_REQUIRE_S3") != "" {
			t.Fatal("VOG_S3_URL is not set")
		}
		t.Skip("no S3 server: set VOG_S3_URL (scripts/test.sh starts one)")
	}
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func s3Key(u *url.URL, key string) string {
	k := *u
	k.Path = "/" + key
	return k.String()
}

// TestRunS3 reads the dataset and checkpoints from a real S3-compatible
// server and writes the result there; the rows equal a local run's.
func TestRunS3(t *testing.T) {
	u := s3Bucket(t)
	ctx := t.Context()
	b, err := blob.OpenBucket(ctx, u.String())
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	prefix := strings.ReplaceAll(t.Name(), "/", "_") + "/"
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
	for _, c := range ckpts {
		upload(c, "ckpt/"+filepath.Base(c))
	}

	out := s3Key(u, prefix+"out")
	r := runVog(t, "run", "--format", "idx", "--dataset", s3Key(u, prefix+"data/small"),
		"--checkpoints", s3Key(u, prefix+"ckpt"), "--out", out, "--state-dir", t.TempDir(), "--shard-size", "100")
	if r.err != nil {
		t.Fatalf("%v\n%s", r.err, r.stderr)
	}
	local := t.TempDir()
	if r := runVog(t, scoreArgs(t, local, "--shard-size", "100")...); r.err != nil {
		t.Fatalf("%v\n%s", r.err, r.stderr)
	}
	if !slices.Equal(readRows(t, fetchS3(t, u, prefix+"out")), readRows(t, local)) {
		t.Fatal("rows written to S3 differ from a local run's")
	}
}

// fetchS3 copies a job's result under prefix from S3 to a local folder.
func fetchS3(t *testing.T, u *url.URL, prefix string) string {
	t.Helper()
	ctx := t.Context()
	b, err := blob.OpenBucket(ctx, u.String())
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
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
		os.MkdirAll(filepath.Dir(local), 0o755)
		os.WriteFile(local, data, 0o644)
	}
	if _, err := os.Stat(filepath.Join(dir, "_SUCCESS")); err != nil {
		t.Fatalf("no _SUCCESS under %s: %v", prefix, err)
	}
	return dir
}
