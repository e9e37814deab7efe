// Package activities holds vog's side effects as Temporal activities: plan a
// job, score shards on a gradient worker, merge class statistics, normalise
// and write the result. Each takes one input struct and returns one result
// struct of package job, carrying keys and counts, never tensors. Errors
// are classified once, by Interceptor, into the kinds that decide retries.
package activities

import (
	"context"
	"sync"

	"github.com/vogscore/vog/engine"
	"github.com/vogscore/vog/job"
	"github.com/vogscore/vog/jobstore"
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

// openJob opens the output location of job ref and binds its job, read
// once per worker (jobstore.Store.Load checks it) and cached.
func (a *Activities) openJob(ctx context.Context, ref job.Ref) (*jobstore.Store, error) {
	st, err := jobstore.Create(ctx, ref.Out)
	if err != nil {
		return nil, err
	}
	a.mu.Lock()
	j := a.jobs[ref]
	a.mu.Unlock()
	if j != nil {
		st.Bind(j)
		return st, nil
	}
	if j, err = st.Load(ctx, ref); err != nil {
		st.Close()
		return nil, err
	}
	a.mu.Lock()
	if a.jobs == nil {
		a.jobs = map[job.Ref]*job.Job{}
	}
	a.jobs[ref] = j
	a.mu.Unlock()
	return st, nil
}
