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
)

// modelSet is the checkpoints of one job, loaded once per worker and reused
// for every shard. A worker keeps one set: memory is bounded by one job's
// models whatever the number of jobs it serves.
type modelSet struct {
	key    string
	models []*engine.Model
}

func (m *modelSet) close() {
	for _, x := range m.models {
		x.Close()
	}
}

// loadModels returns the job's models, loading them on first use. Each
// checkpoint's bytes are checked against the hash taken at planning, so every
// shard of a job sees the same weights.
func (a *Activities) loadModels(ctx context.Context, job *Job) ([]*engine.Model, error) {
	if a.Loader == nil {
		return nil, errors.New("this worker has no gradient engine: run gradient work on a worker started with one")
	}
	var key strings.Builder
	fmt.Fprint(&key, job.Shape)
	for _, c := range job.Checkpoints {
		key.WriteString(" " + c.SHA256)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.models != nil && a.models.key == key.String() {
		return a.models.models, nil
	}
	if a.models != nil {
		a.models.close()
		a.models = nil
	}
	set := &modelSet{key: key.String()}
	for _, c := range job.Checkpoints {
		activity.RecordHeartbeat(ctx, "loading "+c.URL)
		data, err := readObject(ctx, c.URL)
		if err != nil {
			set.close()
			return nil, err
		}
		if sum := sha256.Sum256(data); hex.EncodeToString(sum[:]) != c.SHA256 {
			set.close()
			return nil, badJob("checkpoint %s changed since the job was planned (sha256 %s, planned %s)", c.URL, hex.EncodeToString(sum[:]), c.SHA256)
		}
		m, err := engine.Load(a.Loader, data, c.URL, job.Shape)
		if err != nil {
			set.close()
			return nil, err
		}
		set.models = append(set.models, m)
		if first := set.models[0]; m.Classes() != first.Classes() {
			set.close()
			return nil, badJob("checkpoints disagree on the number of classes: %s has %d outputs, %s has %d",
				first.Name(), first.Classes(), m.Name(), m.Classes())
		}
	}
	a.models = set
	return set.models, nil
}

type readerEntry struct {
	key    string
	reader dataset.Reader
}

// openReader returns a reader of the job's dataset, reused across shards
// (an IDX dataset is decoded once per worker).
func (a *Activities) openReader(ctx context.Context, job *Job) (dataset.Reader, error) {
	key := fmt.Sprintf("%+v %v", job.Spec.Dataset, job.Shape)
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.reader != nil && a.reader.key == key {
		return a.reader.reader, nil
	}
	if a.reader != nil {
		a.reader.reader.Close()
		a.reader = nil
	}
	r, err := dataset.NewReader(ctx, job.Spec.Dataset, job.Shape)
	if err != nil {
		return nil, fmt.Errorf("--dataset %s: %w", job.Spec.Dataset.URL, err)
	}
	a.reader = &readerEntry{key: key, reader: r}
	return r, nil
}
