package jobstore

import (
	"context"
	"errors"
	"fmt"
	"io"

	"gocloud.dev/blob"

	"github.com/vogscore/vog/job"
	"github.com/vogscore/vog/storage"
)

// group returns the header of the partial moments file of checkpoint
// group g of the bound job (job.Job.Groups) over a shard of examples
// examples, and its key.
func (s *Store) group(shard, g, examples int) (storage.MomentsHeader, string, error) {
	j := s.job()
	groups := j.Groups()
	if g < 0 || g >= len(groups) {
		return storage.MomentsHeader{}, "", job.BadJob("group %d of a job of %d checkpoint groups", g, len(groups))
	}
	lo, hi := groups[g][0], groups[g][1]
	gfp := j.GroupFingerprint(lo, hi)
	h := storage.MomentsHeader{Pixels: j.Shape.Pixels(), Examples: examples, Group: g, Checkpoints: hi - lo, Fingerprint: gfp}
	return h, ShardGroupKey(shard, gfp), nil
}

// GroupDone reports whether the partial moments of checkpoint group g of
// shard i are there: a file whose header is of the group's fingerprint. A
// header that does not read is not done (written again); the records are
// checked when OpenGroup reads them.
func (s *Store) GroupDone(ctx context.Context, i, g int) (bool, error) {
	want, key, err := s.group(i, g, 0)
	if err != nil {
		return false, err
	}
	rd, err := storage.NewReader(ctx, s.b, key, 0, -1)
	if storage.IsNotFound(err) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("%s: %w", key, err)
	}
	defer rd.Close()
	mr, err := storage.NewMomentsReader(rd)
	if errors.Is(err, storage.ErrCorruptMoments) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("%s: %w", key, err)
	}
	return mr.Header.Fingerprint == want.Fingerprint, nil
}

// GroupWriter writes the partial moments file of one checkpoint group of a
// shard. The file appears only when Close succeeds; Abort, or a failed
// Close, leaves whatever was there before.
type GroupWriter struct {
	key    string
	cancel context.CancelFunc
	w      *blob.Writer
	mw     *storage.MomentsWriter
	done   bool
}

// NewGroupWriter starts the partial moments file of checkpoint group g of
// shard i, which has examples examples, named by the group's fingerprint.
func (s *Store) NewGroupWriter(ctx context.Context, i, g, examples int) (*GroupWriter, error) {
	h, key, err := s.group(i, g, examples)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	w, err := s.b.NewWriter(ctx, key, &blob.WriterOptions{ContentType: "application/octet-stream"})
	if err != nil {
		cancel()
		return nil, fmt.Errorf("write %s: %w", key, err)
	}
	gw := &GroupWriter{key: key, cancel: cancel, w: w}
	if gw.mw, err = storage.NewMomentsWriter(w, h); err != nil {
		gw.Abort()
		return nil, fmt.Errorf("write %s: %w", key, err)
	}
	return gw, nil
}

// Write appends one example's record, in the shard's order.
func (gw *GroupWriter) Write(rec storage.MomentsRecord) error { return gw.mw.Write(rec) }

// Close writes the checksum and publishes the file; on an error nothing is
// published.
func (gw *GroupWriter) Close() error {
	if gw.done {
		return nil
	}
	if err := gw.mw.Close(); err != nil {
		gw.Abort()
		return fmt.Errorf("write %s: %w", gw.key, err)
	}
	gw.done = true
	defer gw.cancel()
	if err := gw.w.Close(); err != nil {
		return fmt.Errorf("write %s: %w", gw.key, err)
	}
	return nil
}

// Abort abandons the file, unless Close published it.
func (gw *GroupWriter) Abort() {
	if gw.done {
		return
	}
	gw.done = true
	gw.cancel() // abandons the object: nothing half-written is published
	gw.w.Close()
}

// GroupReader reads the partial moments file of one checkpoint group of a
// shard. A file found corrupt is removed, so that running the job again
// recomputes the group, and the error that says so is BadData.
type GroupReader struct {
	ctx    context.Context
	s      *Store
	key    string
	r      *storage.Reader
	mr     *storage.MomentsReader
	Header storage.MomentsHeader
}

// OpenGroup opens the partial moments file of checkpoint group g of shard
// i, checking its header against the shard (examples examples) and the
// group: its fingerprint, pixels and checkpoints.
func (s *Store) OpenGroup(ctx context.Context, i, g, examples int) (*GroupReader, error) {
	want, key, err := s.group(i, g, examples)
	if err != nil {
		return nil, err
	}
	r, err := storage.NewReader(ctx, s.b, key, 0, -1)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", key, err)
	}
	gr := &GroupReader{ctx: ctx, s: s, key: key, r: r}
	gr.mr, err = storage.NewMomentsReader(r)
	if err == nil {
		h := gr.mr.Header
		if h.Examples != want.Examples || h.Pixels != want.Pixels || h.Checkpoints != want.Checkpoints || h.Fingerprint != want.Fingerprint {
			err = fmt.Errorf("%w: header %+v does not fit the shard (group %s)", storage.ErrCorruptMoments, h, want.Fingerprint)
		}
	}
	if err != nil {
		r.Close()
		return nil, gr.Corrupt(err)
	}
	gr.Header = gr.mr.Header
	return gr, nil
}

// Key returns the file's key.
func (gr *GroupReader) Key() string { return gr.key }

// Next reads the next record into rec (MomentsReader.Next); io.EOF after
// the last, once the checksum holds.
func (gr *GroupReader) Next(rec *storage.MomentsRecord) error {
	err := gr.mr.Next(rec)
	if err == nil || err == io.EOF {
		return err
	}
	return gr.Corrupt(err)
}

// End checks that no record is left and the checksum holds.
func (gr *GroupReader) End() error {
	var rec storage.MomentsRecord
	switch err := gr.mr.Next(&rec); err {
	case io.EOF:
		return nil
	case nil:
		return gr.Corrupt(fmt.Errorf("%w: more records than examples", storage.ErrCorruptMoments))
	default:
		return gr.Corrupt(err)
	}
}

// Corrupt returns err about the file. Where err is ErrCorruptMoments (as
// for records that disagree with the shard, which only the caller sees)
// the file is removed first, and the error is BadData: the shard fails,
// and running the job again recomputes the group.
func (gr *GroupReader) Corrupt(err error) error {
	if !errors.Is(err, storage.ErrCorruptMoments) {
		return fmt.Errorf("%s: %w", gr.key, err)
	}
	if derr := gr.s.b.Delete(gr.ctx, gr.key); derr != nil {
		return fmt.Errorf("%s: %v; removing it failed too: %w", gr.key, err, derr)
	}
	return job.BadData("%s: %v: removed; run the job again to recompute it", gr.key, err)
}

// Close closes the file.
func (gr *GroupReader) Close() error { return gr.r.Close() }
