package activities

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"

	"go.temporal.io/sdk/activity"

	"github.com/vogscore/vog/dataset"
	"github.com/vogscore/vog/engine"
	"github.com/vogscore/vog/job"
)

// modelSet is the loaded checkpoints of one job, each loaded once per
// worker and reused for every shard. A worker keeps one job's set: memory is
// bounded by one job's models whatever the number of jobs it serves, and by
// the checkpoints its activities use (a group's, with --checkpoint-group).
type modelSet struct {
	key    string
	models map[int]*engine.Model
	// module is the job's --model, where it has one.
	module []byte
}

func (m *modelSet) close() {
	for _, x := range m.models {
		x.Close()
	}
}

// loadModels returns the job's checkpoints of the given indices, loading
// them on first use. Each checkpoint's bytes are checked against the hash
// taken at planning, so every shard of a job sees the same weights.
func (a *Activities) loadModels(ctx context.Context, j *job.Job, indices ...int) ([]*engine.Model, error) {
	if a.Loader == nil {
		return nil, errors.New("this worker has no gradient engine: run gradient work on a worker started with one")
	}
	loader, err := a.loaderFor(j.Spec.EnginePrecision())
	if err != nil {
		return nil, err
	}
	var key strings.Builder
	fmt.Fprint(&key, j.Shape, " ", j.Spec.Precision, " ", j.Spec.StateDictPrefix, " ", j.Spec.StateDictEntry)
	if j.Model != nil {
		key.WriteString(" model " + j.Model.SHA256)
	}
	for _, c := range j.Checkpoints {
		key.WriteString(" " + c.SHA256)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.models == nil || a.models.key != key.String() {
		if a.models != nil {
			a.models.close()
		}
		a.models = &modelSet{key: key.String(), models: map[int]*engine.Model{}}
	}
	set := a.models
	if j.Model != nil && set.module == nil {
		data, err := readCheckpoint(ctx, j.Model.URL)
		if err != nil {
			return nil, err
		}
		if sum := sha256.Sum256(data); hex.EncodeToString(sum[:]) != j.Model.SHA256 {
			return nil, job.BadJob("--model %s changed since the job was planned", j.Model.URL)
		}
		set.module = data
	}
	out := make([]*engine.Model, len(indices))
	for i, idx := range indices {
		m := set.models[idx]
		if m == nil {
			c := j.Checkpoints[idx]
			activity.RecordHeartbeat(ctx, "loading "+c.URL)
			var err error
			if m, err = loadCheckpoint(ctx, j, c, set.module, loader); err != nil {
				return nil, err
			}
			for _, other := range set.models {
				if other.Classes() != m.Classes() {
					m.Close()
					return nil, job.BadJob("checkpoints disagree on the number of classes: %s has %d outputs, %s has %d",
						other.Name(), other.Classes(), m.Name(), m.Classes())
				}
			}
			set.models[idx] = m
		}
		out[i] = m
	}
	return out, nil
}

// loaderFor returns the worker's loader for a job's precision.
func (a *Activities) loaderFor(precision string) (engine.Loader, error) {
	if precision == engine.Precisions[0] { // every Loader's own
		return a.Loader, nil
	}
	pl, ok := a.Loader.(engine.PrecisionLoader)
	if !ok {
		return nil, job.BadJob("--precision %s: this worker's engine computes only in float32", precision)
	}
	l, err := pl.WithPrecision(precision)
	if err != nil {
		// Retried: another worker (with a GPU, say) may compute it.
		return nil, err
	}
	return l, nil
}

type readerEntry struct {
	key    string
	reader dataset.Reader
}

// openReader returns a reader of the job's dataset, reused across shards
// (an IDX dataset is decoded once per worker).
func (a *Activities) openReader(ctx context.Context, j *job.Job) (dataset.Reader, error) {
	key := fmt.Sprintf("%+v %v %s", j.Spec.Dataset, j.Shape, j.JPEGDecoder)
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.reader != nil && a.reader.key == key {
		return a.reader.reader, nil
	}
	if a.reader != nil {
		a.reader.reader.Close()
		a.reader = nil
	}
	r, err := dataset.NewReader(ctx, j.Spec.Dataset, j.Shape, j.JPEGDecoder)
	if err != nil {
		return nil, fmt.Errorf("--dataset %s: %w", j.Spec.Dataset.URL, err)
	}
	a.reader = &readerEntry{key: key, reader: r}
	return r, nil
}
