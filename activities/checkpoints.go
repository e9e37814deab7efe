package activities

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"path"
	"slices"
	"sort"
	"strings"

	"go.temporal.io/sdk/activity"
	"gocloud.dev/blob"

	"github.com/vogscore/vog/checkpoint"
	"github.com/vogscore/vog/engine"
	"github.com/vogscore/vog/job"
	"github.com/vogscore/vog/shard"
	"github.com/vogscore/vog/storage"
)

// checkpointExts are the files a folder of checkpoints is read for: from
// torch.jit.save or torch.save (.pt, .pth, .bin), Lightning (.ckpt) and
// safetensors.
var checkpointExts = []string{".pt", ".pth", ".bin", ".ckpt", ".safetensors"}

// hfWeights are the files a Hugging Face Trainer checkpoint-N/ folder holds
// its model's weights in, in order of preference.
var hfWeights = []string{"model.safetensors", "model.safetensors.index.json", "pytorch_model.bin", "pytorch_model.bin.index.json"}

// resolveCheckpoints expands a single folder into its checkpoints in
// natural order, leaves out the --model file, and hashes every checkpoint.
func resolveCheckpoints(ctx context.Context, list []string, model string) ([]job.Checkpoint, error) {
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
	if model != "" {
		m, err := storage.Parse(model)
		if err == nil {
			urls = slices.DeleteFunc(slices.Clone(urls), func(u string) bool {
				l, err := storage.Parse(u)
				return err == nil && l == m
			})
		}
	}
	out := make([]job.Checkpoint, len(urls))
	for i, u := range urls {
		activity.RecordHeartbeat(ctx, "hashing "+u)
		data, err := readCheckpoint(ctx, u)
		if err != nil {
			return nil, err
		}
		sum, err := checkpointHash(ctx, u, data)
		if err != nil {
			return nil, err
		}
		out[i] = job.Checkpoint{URL: u, SHA256: sum}
	}
	if len(out) == 0 {
		return nil, job.BadJob("--checkpoints: none but the --model file")
	}
	return out, nil
}

// expandFolder lists the checkpoints under raw when raw is a folder or
// prefix rather than an object, in natural order: the weights of each
// Hugging Face checkpoint-N/ folder where there are such folders, else
// every file of checkpointExts. It returns nil for an object.
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
	var files, dirs []string
	it := b.List(&blob.ListOptions{Prefix: prefix, Delimiter: "/"})
	for {
		obj, err := it.Next(ctx)
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("--checkpoints: list %s: %w", raw, err)
		}
		switch {
		case obj.IsDir && strings.HasPrefix(path.Base(obj.Key), "checkpoint-"):
			dirs = append(dirs, obj.Key)
		case !obj.IsDir && slices.Contains(checkpointExts, path.Ext(obj.Key)):
			files = append(files, obj.Key)
		}
	}
	keys := files
	if len(dirs) > 0 {
		keys = nil
		for _, d := range dirs {
			k, err := hfCheckpoint(ctx, b, d)
			if err != nil {
				return nil, err
			}
			keys = append(keys, k)
		}
	}
	if len(keys) == 0 {
		return nil, job.BadJob("--checkpoints %s: no such file, and as a folder no checkpoint-N/ folders and no files of %s in it",
			raw, strings.Join(checkpointExts, ", "))
	}
	sort.Slice(keys, func(i, j int) bool { return shard.NaturalLess(keys[i], keys[j]) })
	urls := make([]string, len(keys))
	for i, k := range keys {
		urls[i] = storage.Location{BucketURL: l.BucketURL, Key: k}.String()
	}
	return urls, nil
}

// hfCheckpoint returns the key of the weights in a Trainer checkpoint-N/
// folder.
func hfCheckpoint(ctx context.Context, b *blob.Bucket, dir string) (string, error) {
	for _, name := range hfWeights {
		if ok, err := storage.Exists(ctx, b, dir+name); err != nil || ok {
			return dir + name, err
		}
	}
	return "", job.BadJob("--checkpoints: %s holds none of %s", dir, strings.Join(hfWeights, ", "))
}

// checkpointHash hashes a checkpoint's bytes, data, and for a shard index
// the bytes of its shards too: the job's fingerprint covers the weights.
func checkpointHash(ctx context.Context, url string, data []byte) (string, error) {
	h := sha256.New()
	h.Write(data)
	if checkpoint.Detect(data) == checkpoint.ShardIndex {
		files, err := checkpoint.IndexShards(data)
		if err != nil {
			return "", job.BadJob("%s: %v", url, err)
		}
		for _, f := range files {
			shard, err := siblingOf(ctx, url)(f)
			if err != nil {
				return "", err
			}
			h.Write(shard)
		}
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// siblingOf returns a reader of the files beside url.
func siblingOf(ctx context.Context, url string) func(string) ([]byte, error) {
	return func(name string) ([]byte, error) {
		l, err := storage.Parse(url)
		if err != nil {
			return nil, job.BadJob("%v", err)
		}
		l.Key = path.Join(path.Dir(l.Key), name)
		return readCheckpoint(ctx, l.String())
	}
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

// loadCheckpoint loads checkpoint c of job j through loader: a TorchScript
// module as it is, or a state dict (torch.save, Lightning, safetensors)
// into the job's --model.
func loadCheckpoint(ctx context.Context, j *job.Job, c job.Checkpoint, model []byte, loader engine.Loader) (*engine.Model, error) {
	data, err := readCheckpoint(ctx, c.URL)
	if err != nil {
		return nil, err
	}
	sum, err := checkpointHash(ctx, c.URL, data)
	if err != nil {
		return nil, err
	}
	if sum != c.SHA256 {
		return nil, job.BadJob("checkpoint %s changed since the job was planned (sha256 %s, planned %s)", c.URL, sum, c.SHA256)
	}
	format := checkpoint.Detect(data)
	if format == checkpoint.TorchScript || (format == checkpoint.Unknown && model == nil) {
		return engine.Load(loader, data, c.URL, j.Shape)
	}
	if model == nil {
		return nil, job.BadJob("checkpoint %s is a %s, not a TorchScript module: give --model, a TorchScript export of the architecture, to load its weights into", c.URL, format)
	}
	weights, err := checkpoint.ReadFrom(c.URL, data, siblingOf(ctx, c.URL), checkpoint.Options{Prefix: j.Spec.StateDictPrefix})
	if err != nil {
		return nil, job.BadJob("checkpoint %s: %v", c.URL, err)
	}
	return engine.LoadWeights(loader, model, weights, c.URL, j.Shape)
}
