package location

import (
	"os"
	"testing"
)

func TestParse(t *testing.T) {
	wd, _ := os.Getwd()
	tests := []struct {
		raw, bucket, key, str string
	}{
		{"/data/train", "file:///?metadata=skip&no_tmp_dir=true", "data/train", "file:///data/train"},
		{"rel/x", "file:///?metadata=skip&no_tmp_dir=true", wd[1:] + "/rel/x", "file://" + wd + "/rel/x"},
		{"file:///data/ckpt/", "file:///?metadata=skip&no_tmp_dir=true", "data/ckpt/", "file:///data/ckpt/"},
		{"s3://bucket/path/to?region=eu-west-1", "s3://bucket?region=eu-west-1", "path/to", "s3://bucket/path/to?region=eu-west-1"},
		{"gs://b/k", "gs://b", "k", "gs://b/k"},
		{"mem://", "mem:", "", "mem:///"},
		// A glob's ? and a name's # or % stay in the path of a file URL.
		{"/runs/model_?.pth", "file:///?metadata=skip&no_tmp_dir=true", "runs/model_?.pth", "file:///runs/model_%3F.pth"},
		{"file:///runs/a%2325%25.pt", "file:///?metadata=skip&no_tmp_dir=true", "runs/a#25%.pt", "file:///runs/a%2325%25.pt"},
	}
	for _, tt := range tests {
		l, err := Parse(tt.raw)
		if err != nil {
			t.Fatalf("%s: %v", tt.raw, err)
		}
		if l.BucketURL != tt.bucket || l.Key != tt.key || l.String() != tt.str {
			t.Errorf("%s: got %q %q %q, want %q %q %q", tt.raw, l.BucketURL, l.Key, l.String(), tt.bucket, tt.key, tt.str)
		}
	}
	for _, tt := range tests { // String gives back the same location
		l, _ := Parse(tt.raw)
		if again, err := Parse(l.String()); err != nil || again != l {
			t.Errorf("%s: Parse(String()) = %+v, %v; want %+v", tt.raw, again, err, l)
		}
	}
	if p, ok := (mustParse(t, "file:///data/out")).LocalPath(); !ok || p != "/data/out" {
		t.Errorf("LocalPath: %q %v", p, ok)
	}
	if _, ok := (mustParse(t, "s3://b/out")).LocalPath(); ok {
		t.Error("LocalPath of s3://: ok")
	}
	if _, err := Parse(""); err == nil {
		t.Error("empty location: no error")
	}
	if got := (Location{BucketURL: "s3://b", Key: "out/"}).Join("job.json").Key; got != "out/job.json" {
		t.Errorf("Join: %q", got)
	}
}

func mustParse(t *testing.T, raw string) Location {
	t.Helper()
	l, err := Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	return l
}
