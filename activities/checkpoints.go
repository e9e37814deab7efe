package activities

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"path"
	"regexp"
	"slices"
	"sort"
	"strings"

	"go.temporal.io/sdk/activity"
	"gocloud.dev/blob"

	"github.com/vogscore/vog/checkpoint"
	"github.com/vogscore/vog/engine"
	"github.com/vogscore/vog/job"
	"github.com/vogscore/vog/location"
	"github.com/vogscore/vog/shard"
	"github.com/vogscore/vog/storage"
)

// checkpointExts are the files a folder of checkpoints is read for: from
// torch.jit.save or torch.save (.pt, .pth, .pth.tar and .tar as timm and
// PyTorch's tutorials name them, .bin), Lightning (.ckpt) and safetensors.
var checkpointExts = []string{".pt", ".pth", ".pth.tar", ".tar", ".bin", ".ckpt", ".safetensors"}

// hfWeights are the files a Hugging Face Trainer checkpoint-N/ folder holds
// its model's weights in, in order of preference.
var hfWeights = []string{"model.safetensors", "model.safetensors.index.json", "pytorch_model.bin", "pytorch_model.bin.index.json"}

// hasCheckpointExt reports whether a key names a checkpoint file by its
// extension.
func hasCheckpointExt(key string) bool {
	return slices.ContainsFunc(checkpointExts, func(ext string) bool { return strings.HasSuffix(key, ext) })
}

// aliasName matches the names training scripts give a copy of one of a
// run's checkpoints rather than a step of it: torchvision's and timm's
// checkpoint.pth and last.pth.tar, Lightning's last.ckpt and last-v1.ckpt,
// and anything "best".
var aliasName = regexp.MustCompile(`^(checkpoint|last|latest)(-v[0-9]+)?$|best`)

// isAlias reports whether a checkpoint file's name is an alias's.
func isAlias(key string) bool {
	base := strings.ToLower(path.Base(key))
	for _, ext := range checkpointExts {
		if b, ok := strings.CutSuffix(base, ext); ok {
			base = b
			break
		}
	}
	return aliasName.MatchString(base)
}

// resolved is a job's checkpoints as planning found them, with what it
// says about them.
type resolved struct {
	ckpts []job.Checkpoint
	notes []string
}

// resolveCheckpoints expands a single folder or glob into its checkpoints
// in natural order, leaving out aliases, copies and the --model file, and
// hashes every checkpoint. With a model, it finds each state dict's
// weights as loading will, so that a checkpoint that does not fit fails
// the plan, not a shard.
func resolveCheckpoints(ctx context.Context, spec job.Spec, model []byte, kept *keptRead) (resolved, error) {
	var res resolved
	urls := spec.Checkpoints
	expanded := false
	if len(urls) == 1 {
		list, left, err := expandFolder(ctx, urls[0], spec.Model)
		if err != nil {
			return res, err
		}
		if list != nil {
			urls, expanded = list, true
			res.notes = append(res.notes, left...)
		}
	}
	var params []checkpoint.Param
	if model != nil {
		var err error
		if params, err = checkpoint.ModuleParams(model); err != nil {
			return res, job.BadJob("--model %s: %v", spec.Model, err)
		}
	}
	seen := map[string]string{}
	weights := map[string][]string{} // where the weights were -> checkpoints
	var order []string
	for _, u := range urls {
		activity.RecordHeartbeat(ctx, "hashing "+u)
		data, err := kept.read(ctx, u)
		if err != nil {
			return res, err
		}
		sum, err := checkpointHash(ctx, u, data)
		if err != nil {
			return res, err
		}
		if first, ok := seen[sum]; ok && expanded {
			res.notes = append(res.notes, fmt.Sprintf("left out %s: the same bytes as %s", u, first))
			continue
		}
		seen[sum] = u
		if params != nil && checkpoint.Detect(data) != checkpoint.TorchScript {
			f, err := findWeights(ctx, spec, u, data, params)
			if err != nil {
				return res, err
			}
			w := f.String()
			if weights[w] == nil {
				order = append(order, w)
			}
			weights[w] = append(weights[w], u)
		}
		res.ckpts = append(res.ckpts, job.Checkpoint{URL: u, SHA256: sum})
	}
	if len(res.ckpts) == 0 {
		return res, job.BadJob("--checkpoints: none but the --model file")
	}
	if expanded {
		names := make([]string, len(res.ckpts))
		for i, c := range res.ckpts {
			names[i] = path.Base(c.URL)
		}
		res.notes = append([]string{fmt.Sprintf("checkpoints, in training order: %s", strings.Join(names, ", "))}, res.notes...)
	}
	for _, w := range order {
		if len(order) == 1 {
			res.notes = append(res.notes, "weights: "+w+" of every state dict")
		} else {
			res.notes = append(res.notes, fmt.Sprintf("weights: %s of %s", w, strings.Join(weights[w], ", ")))
		}
	}
	return res, nil
}

// findWeights finds the weights of the job's model in checkpoint u.
func findWeights(ctx context.Context, spec job.Spec, u string, data []byte, params []checkpoint.Param) (checkpoint.Found, error) {
	f, err := checkpoint.Find(u, data, siblingOf(ctx, u), params,
		checkpoint.Options{Prefix: spec.StateDictPrefix, Entry: spec.StateDictEntry})
	if err != nil {
		return f, job.BadJob("checkpoint %v", err)
	}
	return f, nil
}

// globChars are the characters that make a --checkpoints path a pattern.
const globChars = "*?["

// expandFolder lists the checkpoints under raw when raw is a folder,
// prefix or glob pattern rather than an object, in natural order: the
// weights of each Hugging Face checkpoint-N/ folder where there are such
// folders, else every file of checkpointExts but aliases (isAlias) and the
// --model file. It returns nil for an object, and says which files it left
// out and why.
func expandFolder(ctx context.Context, raw, model string) (urls, left []string, err error) {
	l, err := location.Parse(raw)
	if err != nil {
		return nil, nil, job.BadJob("--checkpoints: %v", err)
	}
	b, err := storage.Open(ctx, l)
	if err != nil {
		return nil, nil, job.BadJob("--checkpoints: %v", err)
	}
	defer b.Close()
	pattern := ""
	prefix := strings.TrimSuffix(l.Key, "/") + "/"
	if i := strings.IndexAny(l.Key, globChars); i >= 0 {
		if _, err := path.Match(l.Key, ""); err != nil {
			return nil, nil, job.BadJob("--checkpoints %s: a bad pattern: %v", raw, err)
		}
		pattern = l.Key
		prefix = l.Key[:strings.LastIndex(l.Key[:i], "/")+1]
	} else if ok, _ := b.Exists(ctx, l.Key); ok && !strings.HasSuffix(l.Key, "/") {
		return nil, nil, nil
	}
	var modelKey string
	if m, err := location.Parse(model); model != "" && err == nil && m.BucketURL == l.BucketURL {
		modelKey = m.Key
	}
	var files, dirs []string
	// A pattern lists its folder's whole tree only if it spans folders.
	delim := "/"
	if pattern != "" && strings.Contains(pattern[len(prefix):], "/") {
		delim = ""
	}
	err = storage.List(ctx, b, &blob.ListOptions{Prefix: prefix, Delimiter: delim}, func(obj *blob.ListObject) error {
		key := strings.TrimSuffix(obj.Key, "/")
		name := strings.TrimPrefix(obj.Key, prefix)
		if pattern != "" {
			if ok, _ := path.Match(pattern, key); !ok {
				return nil
			}
		}
		switch {
		case obj.IsDir && strings.HasPrefix(path.Base(key), "checkpoint-"):
			dirs = append(dirs, obj.Key)
		case obj.IsDir:
		case key == modelKey:
			left = append(left, fmt.Sprintf("left out %s: the --model file", name))
		case !hasCheckpointExt(key):
			if pattern != "" {
				files = append(files, key) // named by the user's pattern
			}
		case isAlias(key):
			left = append(left, fmt.Sprintf("left out %s: a name training scripts give a copy of the latest or best checkpoint", name))
		default:
			files = append(files, key)
		}
		return nil
	})
	if err != nil {
		return nil, nil, fmt.Errorf("--checkpoints: list %s: %w", raw, err)
	}
	keys := files
	if len(dirs) > 0 {
		for _, f := range files {
			left = append(left, fmt.Sprintf("left out %s: the folder's checkpoint-N/ folders are the run", strings.TrimPrefix(f, prefix)))
		}
		keys = nil
		for _, d := range dirs {
			k, err := hfCheckpoint(ctx, b, d)
			if err != nil {
				return nil, nil, err
			}
			keys = append(keys, k)
		}
	}
	if len(keys) == 0 {
		if pattern != "" {
			return nil, nil, job.BadJob("--checkpoints %s: no file matches the pattern", raw)
		}
		return nil, nil, job.BadJob("--checkpoints %s: no such file, and as a folder no checkpoint-N/ folders and no files of %s in it",
			raw, strings.Join(checkpointExts, ", "))
	}
	sort.Slice(keys, func(i, j int) bool { return shard.NaturalLess(keys[i], keys[j]) })
	urls = make([]string, len(keys))
	for i, k := range keys {
		urls[i] = location.Location{BucketURL: l.BucketURL, Key: k}.String()
	}
	return urls, left, nil
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
		l, err := location.Parse(url)
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

// keptRead is a checkpoint that planning read before hashing (the first,
// for a torchvision model's number of classes), so that hashing does not
// read it again: an ImageNet model's checkpoint is 100 MB or more, and may
// be in object storage.
type keptRead struct {
	url  string
	data []byte
}

// keep keeps data, read from url; on a nil keptRead it does nothing.
func (k *keptRead) keep(url string, data []byte) {
	if k != nil {
		k.url, k.data = url, data
	}
}

// read returns the kept checkpoint if it is url's, once, and otherwise
// reads url.
func (k *keptRead) read(ctx context.Context, url string) ([]byte, error) {
	if k != nil && k.data != nil && k.url == url {
		data := k.data
		k.data = nil
		return data, nil
	}
	return readCheckpoint(ctx, url)
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
	params, err := checkpoint.ModuleParams(model)
	if err != nil {
		return nil, job.BadJob("--model %s: %v", j.Model.URL, err)
	}
	f, err := findWeights(ctx, j.Spec, c.URL, data, params)
	if err != nil {
		return nil, err
	}
	return engine.LoadWeights(loader, model, f.Tensors, c.URL, j.Shape)
}
