package activities

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"path"
	"sort"
	"strings"

	"go.temporal.io/sdk/activity"
	"gocloud.dev/blob"

	"github.com/vogscore/vog/job"
	"github.com/vogscore/vog/shard"
	"github.com/vogscore/vog/storage"
)

// resolveCheckpoints expands a single folder into its *.pt files in natural
// order and hashes every checkpoint.
func resolveCheckpoints(ctx context.Context, list []string) ([]job.Checkpoint, error) {
	urls := list
	if len(list) == 1 {
		expanded, err := expandFolder(ctx, list[0])
		if err != nil {
			return nil, err
		}
		if expanded != nil {
			urls = expanded
		}
	}
	out := make([]job.Checkpoint, len(urls))
	for i, u := range urls {
		activity.RecordHeartbeat(ctx, "hashing "+u)
		sum, err := hashObject(ctx, u)
		if err != nil {
			return nil, err
		}
		out[i] = job.Checkpoint{URL: u, SHA256: sum}
	}
	return out, nil
}

// expandFolder lists the *.pt files under raw when raw is a folder or
// prefix rather than an object; it returns nil for an object.
func expandFolder(ctx context.Context, raw string) ([]string, error) {
	l, err := storage.Parse(raw)
	if err != nil {
		return nil, job.BadJob("--checkpoints: %v", err)
	}
	b, err := storage.Open(ctx, l)
	if err != nil {
		return nil, job.BadJob("--checkpoints: %v", err)
	}
	defer b.Close()
	if ok, _ := b.Exists(ctx, l.Key); ok && !strings.HasSuffix(l.Key, "/") {
		return nil, nil
	}
	prefix := strings.TrimSuffix(l.Key, "/") + "/"
	var keys []string
	it := b.List(&blob.ListOptions{Prefix: prefix, Delimiter: "/"})
	for {
		obj, err := it.Next(ctx)
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("--checkpoints: list %s: %w", raw, err)
		}
		if !obj.IsDir && path.Ext(obj.Key) == ".pt" {
			keys = append(keys, obj.Key)
		}
	}
	if len(keys) == 0 {
		return nil, job.BadJob("--checkpoints %s: no such file, and no *.pt files in it as a folder", raw)
	}
	sort.Slice(keys, func(i, j int) bool { return shard.NaturalLess(keys[i], keys[j]) })
	urls := make([]string, len(keys))
	for i, k := range keys {
		urls[i] = storage.Location{BucketURL: l.BucketURL, Key: k}.String()
	}
	return urls, nil
}

func hashObject(ctx context.Context, raw string) (string, error) {
	data, err := readCheckpoint(ctx, raw)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:]), nil
}

// readCheckpoint reads a checkpoint named by URL or path; a missing one is
// bad input.
func readCheckpoint(ctx context.Context, raw string) ([]byte, error) {
	data, err := storage.ReadObject(ctx, raw)
	if storage.IsNotFound(err) {
		return nil, job.BadJob("%s: no such file", raw)
	}
	return data, err
}
