package activities

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io"

	"go.temporal.io/sdk/activity"
	"gocloud.dev/blob"

	"github.com/vogscore/vog/checkpoint"
	"github.com/vogscore/vog/dataset"
	"github.com/vogscore/vog/job"
	"github.com/vogscore/vog/storage"
	"github.com/vogscore/vog/window"
)

// Plan validates a job, resolves and hashes its checkpoints, lists its
// dataset, and writes job.json and the dataset index under --out. Planning
// the same job again is a no-op; an --out that holds another job is
// refused, or with Overwrite emptied first.
func (a *Activities) Plan(ctx context.Context, in job.PlanInput) (job.PlanResult, error) {
	spec := in.Spec.WithDefaults()
	if err := spec.Validate(); err != nil {
		return job.PlanResult{}, job.BadJob("%v", err)
	}
	defer heartbeatWhile(ctx)()
	ckpts, err := resolveCheckpoints(ctx, spec.Checkpoints, spec.Model)
	if err != nil {
		return job.PlanResult{}, err
	}
	j, listing, err := planJob(ctx, spec, ckpts)
	if err != nil {
		return job.PlanResult{}, err
	}
	b, err := openOut(ctx, spec.Out)
	if err != nil {
		return job.PlanResult{}, err
	}
	defer b.Close()
	old, err := storage.CreateJob(ctx, spec.Out, j)
	if err != nil {
		return job.PlanResult{}, fmt.Errorf("--out %s: %w", spec.Out, err)
	}
	if old != nil && (old.Fingerprint != j.Fingerprint || old.Verify() != nil) {
		if !in.Overwrite {
			if old.Fingerprint == j.Fingerprint {
				return job.PlanResult{}, job.BadJob("--out %s: %s %v", spec.Out, storage.JobKey, old.Verify())
			}
			return job.PlanResult{}, job.BadJob("--out %s holds another job (%s; this one is %s): choose another --out, or give --overwrite to discard its outputs",
				spec.Out, old.Fingerprint, j.Fingerprint)
		}
		if err := removeOutputs(ctx, b); err != nil {
			return job.PlanResult{}, err
		}
		if old, err = storage.CreateJob(ctx, spec.Out, j); err != nil || old != nil {
			return job.PlanResult{}, fmt.Errorf("--out %s: another job was planned there while its outputs were removed (%v)", spec.Out, err)
		}
	}
	// The index is written after job.json, and rewritten unless it is this
	// dataset's: a crash between the two, or another job's index, cannot
	// leave a wrong one.
	_, meta, err := storage.ParquetInfo(ctx, b, storage.IndexKey)
	if err != nil && !storage.IsNotFound(err) {
		return job.PlanResult{}, err
	}
	if meta[storage.IndexMeta] != j.IndexSHA256 {
		meta := storage.Meta{storage.IndexMeta: j.IndexSHA256, storage.FingerprintMeta: j.Fingerprint}
		if err := storage.WriteParquet(ctx, b, storage.IndexKey, listing, meta); err != nil {
			return job.PlanResult{}, err
		}
	}
	return job.PlanResult{
		Ref:         j.Ref(),
		Examples:    j.Examples,
		Shards:      j.Shards,
		ShardSize:   j.Layout().Shard,
		Checkpoints: len(ckpts),
		Groups:      len(j.Groups()),
	}, nil
}

// planJob lists the dataset of spec and resolves everything about a job
// of the checkpoints ckpts, which it seals.
func planJob(ctx context.Context, spec job.Spec, ckpts []job.Checkpoint) (*job.Job, []job.IndexRow, error) {
	var model *job.Checkpoint
	if spec.Model != "" {
		data, err := readCheckpoint(ctx, spec.Model)
		if err != nil {
			return nil, nil, fmt.Errorf("--model: %w", err)
		}
		if f := checkpoint.Detect(data); f != checkpoint.TorchScript {
			return nil, nil, job.BadJob("--model %s is a %s: it must be a TorchScript module (torch.jit.script or trace, then save)", spec.Model, f)
		}
		sum := sha256.Sum256(data)
		model = &job.Checkpoint{URL: spec.Model, SHA256: hex.EncodeToString(sum[:])}
	}
	windows, err := window.Parse(spec.Windows, max(len(ckpts), 1))
	if err != nil {
		return nil, nil, job.BadJob("%v", err)
	}
	listing, err := dataset.List(ctx, spec.Dataset)
	if err != nil {
		return nil, nil, fmt.Errorf("--dataset %s: %w", spec.Dataset.URL, err)
	}
	j := &job.Job{
		Spec:        spec,
		Checkpoints: ckpts,
		Model:       model,
		Shape:       listing.Shape,
		Windows:     windows,
		Examples:    int64(len(listing.Rows)),
		Classes:     listing.Classes,
		IndexSHA256: indexHash(listing.Rows),
		JPEGDecoder: listing.JPEGDecoder,
		Version:     job.Version,
	}
	j.Shards = j.Layout().Shards()
	if err := j.Seal(); err != nil {
		return nil, nil, err
	}
	return j, listing.Rows, nil
}

// removeOutputs deletes every object a job writes under --out.
func removeOutputs(ctx context.Context, b *blob.Bucket) error {
	for _, prefix := range []string{storage.JobKey, storage.WatchKey, storage.ClassesKey, storage.FailuresKey, storage.SuccessKey, storage.ReportKey, "shards/", "scores/"} {
		it := b.List(&blob.ListOptions{Prefix: prefix})
		for {
			obj, err := it.Next(ctx)
			if err == io.EOF {
				break
			}
			if err != nil {
				return fmt.Errorf("remove the old outputs: %w", err)
			}
			if err := b.Delete(ctx, obj.Key); err != nil && !storage.IsNotFound(err) {
				return fmt.Errorf("remove the old outputs: %s: %w", obj.Key, err)
			}
			activity.RecordHeartbeat(ctx, "removing "+obj.Key)
		}
	}
	return nil
}

func indexHash(rows []job.IndexRow) string {
	h := sha256.New()
	var buf [28]byte
	for _, r := range rows {
		binary.LittleEndian.PutUint64(buf[:8], uint64(r.Index))
		binary.LittleEndian.PutUint32(buf[8:], uint32(r.Label))
		binary.LittleEndian.PutUint64(buf[12:], uint64(r.Offset))
		binary.LittleEndian.PutUint64(buf[20:], uint64(r.Size))
		h.Write(buf[:])
		io.WriteString(h, r.ExampleID)
		h.Write([]byte{0})
		io.WriteString(h, r.Source)
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil))
}
