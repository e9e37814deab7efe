package activities

import (
	"context"
	"fmt"
	"runtime"

	"go.temporal.io/sdk/activity"

	"github.com/vogscore/vog/dataset"
	"github.com/vogscore/vog/engine"
	"github.com/vogscore/vog/job"
)

type batch struct {
	rows []job.IndexRow
	in   *engine.Batch
	err  error
}

func (b batch) close() {
	if b.in != nil {
		b.in.Close()
	}
}

// prefetch decodes and stages batches on another goroutine, so that
// decoding the next batch, and copying it to the GPU, overlap computing the
// current one. The receiver closes each batch.
func prefetch(ctx context.Context, j *job.Job, r dataset.Reader, rows []job.IndexRow, stage func([]float32, int) (*engine.Batch, error)) <-chan batch {
	ch := make(chan batch, 1)
	size := j.Spec.BatchSize
	go func() {
		defer close(ch)
		for start := 0; start < len(rows) && ctx.Err() == nil; start += size {
			b := batch{rows: rows[start:min(start+size, len(rows))]}
			x := make([]float32, len(b.rows)*j.Shape.Len())
			if b.err = r.Read(ctx, b.rows, x); b.err != nil {
				b.err = fmt.Errorf("--dataset %s: %w", j.Spec.Dataset.URL, b.err)
			} else {
				b.in, b.err = stage(x, len(b.rows))
			}
			select {
			case ch <- b:
			case <-ctx.Done():
				b.close()
				return
			}
			if b.err != nil {
				return
			}
		}
	}()
	return ch
}

// foldBatches streams rows through s in batches, decoding the next batch
// while the current one computes, and calls done after each batch.
func foldBatches(ctx context.Context, j *job.Job, reader dataset.Reader, rows []job.IndexRow, s *scorer, done func([]job.IndexRow) error) error {
	// libtorch keeps its OpenMP pool and caches per calling thread; letting
	// Go move this goroutine between threads cost 10-20% (docs/benchmarks.md).
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	ctx, cancel := context.WithCancel(ctx)
	batches := prefetch(ctx, j, reader, rows, s.lasts[0].Stage)
	defer func() {
		cancel() // stops the decoder if scoring fails
		for b := range batches {
			b.close() // frees device copies of batches never folded
		}
	}()
	for b := range batches {
		if b.err != nil {
			return b.err
		}
		err := s.fold(ctx, b.rows, b.in)
		b.close()
		if err != nil {
			return err
		}
		if err := done(b.rows); err != nil {
			return err
		}
		activity.RecordHeartbeat(ctx, s.progress(int64(len(rows))))
	}
	return ctx.Err()
}
