package activities

import (
	"context"
	"fmt"
	"runtime"

	"github.com/vogscore/vog/dataset"
	"github.com/vogscore/vog/engine"
	"github.com/vogscore/vog/job"
	"github.com/vogscore/vog/shard"
)

type batch struct {
	rows []job.IndexRow
	in   *engine.Batch
	bad  []error // per example: why it could not be read, or nil
	err  error
}

func (b batch) close() {
	if b.in != nil {
		b.in.Close()
	}
}

// prefetch decodes and stages the batches of shard r, whose index rows are
// rows, on another goroutine, so that decoding the next batch, and copying
// it to the GPU, overlap computing the current one. The receiver closes
// each batch.
func prefetch(ctx context.Context, j *job.Job, r dataset.Reader, sh shard.Range, rows []job.IndexRow, stage func([]float32, int) (*engine.Batch, error)) <-chan batch {
	ch := make(chan batch, 1)
	go func() {
		defer close(ch)
		for _, br := range j.Layout().Batches(sh) {
			if ctx.Err() != nil {
				return
			}
			b := batch{rows: rows[br.Start-sh.Start : br.End-sh.Start]}
			x := make([]float32, len(b.rows)*j.Shape.Len())
			b.bad = make([]error, len(b.rows))
			if b.err = r.Read(ctx, b.rows, x, b.bad); b.err != nil {
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

// foldBatches streams the examples of shard sh, whose index rows are rows,
// through s in the job's batches, decoding the next batch while the current
// one computes, and calls done after each batch.
func foldBatches(ctx context.Context, j *job.Job, reader dataset.Reader, sh shard.Range, rows []job.IndexRow, s *scorer, done func([]job.IndexRow) error) error {
	s.total = int64(len(rows))
	// libtorch keeps its OpenMP pool and caches per calling thread; letting
	// Go move this goroutine between threads cost 10-20% (docs/benchmarks.md).
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	ctx, cancel := context.WithCancel(ctx)
	batches := prefetch(ctx, j, reader, sh, rows, s.lasts[0].Stage)
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
		err := s.fold(ctx, b.rows, b.in, b.bad)
		b.close()
		if err != nil {
			return err
		}
		if err := done(b.rows); err != nil {
			return err
		}
		s.beats.set(s.progress())
	}
	return ctx.Err()
}
