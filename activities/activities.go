// Package activities holds vog's side effects as Temporal activities: plan a
// job, score shards on a gradient worker, merge class statistics, normalise
// and write the result. Each takes one input struct and returns one result
// struct of package job, carrying keys and counts, never tensors. Errors
// are classified once, by Interceptor, into the kinds that decide retries.
package activities

import (
	"context"
	"fmt"
	"sync"

	"gocloud.dev/blob"

	"github.com/vogscore/vog/engine"
	"github.com/vogscore/vog/job"
	"github.com/vogscore/vog/location"
	"github.com/vogscore/vog/storage"
	"github.com/vogscore/vog/window"
)

// Activities holds the dependencies of vog's activities. Workflows call its
// methods through a nil *Activities; workers register a real one.
type Activities struct {
	// Loader loads checkpoints on this worker's device. Only gradient
	// workers need one.
	Loader engine.Loader

	mu     sync.Mutex
	jobs   map[job.Ref]*job.Job
	models *modelSet
	reader *readerEntry
}

// openOut opens a job's output location as a directory.
func openOut(ctx context.Context, out string) (*blob.Bucket, error) {
	l, err := location.Parse(out)
	if err != nil {
		return nil, job.BadJob("--out: %v", err)
	}
	return storage.CreatePrefix(ctx, l)
}

// openJob reads job ref and opens its output location.
func (a *Activities) openJob(ctx context.Context, ref job.Ref) (*job.Job, *blob.Bucket, error) {
	j, err := a.loadJob(ctx, ref)
	if err != nil {
		return nil, nil, err
	}
	out, err := openOut(ctx, ref.Out)
	return j, out, err
}

// loadJob reads and caches the job.json of ref, checking its fingerprint.
func (a *Activities) loadJob(ctx context.Context, ref job.Ref) (*job.Job, error) {
	a.mu.Lock()
	j := a.jobs[ref]
	a.mu.Unlock()
	if j != nil {
		return j, nil
	}
	b, err := openOut(ctx, ref.Out)
	if err != nil {
		return nil, err
	}
	defer b.Close()
	key := storage.JobKey
	if ref.Watch > 0 {
		key = storage.WatchKey
	}
	j, err = storage.ReadJobKey(ctx, b, key)
	if err != nil {
		return nil, err
	}
	if j == nil {
		return nil, job.BadJob("%s: no %s: the job was not planned there, or its outputs were removed", ref.Out, key)
	}
	if j.Fingerprint != ref.Fingerprint {
		return nil, job.BadJob("%s/%s is job %s, not %s: another job replaced it", ref.Out, key, j.Fingerprint, ref.Fingerprint)
	}
	if ref.Watch == 0 { // a watch's job grows under its first fingerprint
		if err := j.Verify(); err != nil {
			return nil, fmt.Errorf("%s/%s: %w", ref.Out, key, err)
		}
	}
	if ref.Watch > 0 {
		if len(j.Checkpoints) < ref.Watch {
			return nil, fmt.Errorf("%s/%s holds %d checkpoints, not yet %d", ref.Out, key, len(j.Checkpoints), ref.Watch)
		}
		j.Checkpoints = j.Checkpoints[:ref.Watch]
		j.Windows = []window.Window{{Name: window.All, Lo: 0, Hi: ref.Watch}}
	}
	a.mu.Lock()
	if a.jobs == nil {
		a.jobs = map[job.Ref]*job.Job{}
	}
	a.jobs[ref] = j
	a.mu.Unlock()
	return j, nil
}
