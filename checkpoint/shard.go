package checkpoint

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// ReadFile reads the checkpoint at path, as Read does. A shard index such
// as model.safetensors.index.json or pytorch_model.bin.index.json is read
// with the shards it names, which must lie in the same folder: the result
// is every tensor of every shard, and each name in the index's weight_map
// must be in the shard it names.
func ReadFile(path string, opts Options) ([]Tensor, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return ReadFrom(path, data, func(file string) ([]byte, error) {
		return os.ReadFile(filepath.Join(filepath.Dir(path), file))
	}, opts)
}

// ReadFrom reads the checkpoint named path whose bytes are data, as
// ReadFile does, where the shards an index names are read by sibling, which
// returns the file of that name beside path (on any storage).
func ReadFrom(path string, data []byte, sibling func(file string) ([]byte, error), opts Options) ([]Tensor, error) {
	if Detect(data) != ShardIndex {
		ts, err := Read(data, opts)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		return ts, nil
	}
	var index struct {
		WeightMap map[string]string `json:"weight_map"`
	}
	if err := json.Unmarshal(data, &index); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if len(index.WeightMap) == 0 {
		return nil, fmt.Errorf("%s: empty weight_map", path)
	}
	shards := map[string][]string{}
	for name, file := range index.WeightMap {
		if file == "" || strings.ContainsAny(file, `/\`) || file == "." || file == ".." {
			return nil, fmt.Errorf("%s: %q: shard %q is not a file name in the index's folder", path, name, file)
		}
		shards[file] = append(shards[file], name)
	}
	files := make([]string, 0, len(shards))
	for f := range shards {
		files = append(files, f)
	}
	sort.Strings(files)
	var kept []Tensor
	var dropped []string
	for _, f := range files {
		p := f
		data, err := sibling(f)
		if err != nil {
			return nil, err
		}
		// Read the whole shard, to check it against the index by full name.
		ts, _, err := read(data, Options{Entry: opts.Entry})
		if err != nil {
			return nil, fmt.Errorf("%s: %w", p, err)
		}
		have := map[string]bool{}
		for _, t := range ts {
			have[t.Name] = true
			if name, ok := strip(t.Name, withDot(opts.Prefix)); ok {
				t.Name = name
				kept = append(kept, t)
			} else {
				dropped = append(dropped, t.Name)
			}
		}
		for _, name := range shards[f] {
			if !have[name] {
				return nil, fmt.Errorf("%s: no tensor %q, which %s places there", p, name, filepath.Base(path))
			}
		}
	}
	ts, err := finish(kept, dropped, opts)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return ts, nil
}

// IndexShards returns the files a shard index names, sorted, each once.
func IndexShards(data []byte) ([]string, error) {
	var index struct {
		WeightMap map[string]string `json:"weight_map"`
	}
	if err := json.Unmarshal(data, &index); err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	var files []string
	for _, f := range index.WeightMap {
		if !seen[f] {
			seen[f] = true
			files = append(files, f)
		}
	}
	sort.Strings(files)
	return files, nil
}
