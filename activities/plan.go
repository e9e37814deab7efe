package activities

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io"

	"go.temporal.io/sdk/activity"

	"github.com/vogscore/vog/dataset"
	"github.com/vogscore/vog/job"
	"github.com/vogscore/vog/storage"
	"github.com/vogscore/vog/window"
)

// Plan validates a job, resolves and hashes its checkpoints, lists its
// dataset, and writes job.json and the dataset index under --out. Planning
// the same job again is a no-op; an --out that holds a different job is
// refused.
func (a *Activities) Plan(ctx context.Context, in job.PlanInput) (job.PlanResult, error) {
	spec := in.Spec.WithDefaults()
	if err := spec.Validate(); err != nil {
		return job.PlanResult{}, job.BadJob("%v", err)
	}
	ckpts, err := resolveCheckpoints(ctx, spec.Checkpoints)
	if err != nil {
		return job.PlanResult{}, err
	}
	windows, err := window.Parse(spec.Windows, len(ckpts))
	if err != nil {
		return job.PlanResult{}, job.BadJob("%v", err)
	}
	activity.RecordHeartbeat(ctx, "listing dataset")
	listing, err := dataset.List(ctx, spec.Dataset)
	if err != nil {
		return job.PlanResult{}, fmt.Errorf("--dataset %s: %w", spec.Dataset.URL, err)
	}
	j := job.Job{
		Spec:        spec,
		Checkpoints: ckpts,
		Shape:       listing.Shape,
		Windows:     windows,
		Examples:    int64(len(listing.Rows)),
		Classes:     listing.Classes,
		IndexSHA256: indexHash(listing.Rows),
		Version:     job.Version,
	}
	j.Shards = j.Layout().Shards()
	if err := j.Seal(); err != nil {
		return job.PlanResult{}, err
	}

	b, err := openOut(ctx, spec.Out)
	if err != nil {
		return job.PlanResult{}, err
	}
	defer b.Close()
	old, err := storage.ReadJobIn(ctx, b)
	if err != nil {
		return job.PlanResult{}, fmt.Errorf("--out %s: %w", spec.Out, err)
	}
	if old != nil && old.Fingerprint != j.Fingerprint {
		return job.PlanResult{}, job.BadJob("--out %s holds a different job (fingerprint %s, this job is %s): choose another --out, or remove it to start over",
			spec.Out, old.Fingerprint, j.Fingerprint)
	}
	indexed, err := storage.Exists(ctx, b, storage.IndexKey)
	if err != nil {
		return job.PlanResult{}, err
	}
	if !indexed {
		if err := storage.WriteParquet(ctx, b, storage.IndexKey, listing.Rows); err != nil {
			return job.PlanResult{}, err
		}
	}
	if old == nil {
		if err := b.WriteAll(ctx, storage.JobKey, j.Encode(), nil); err != nil {
			return job.PlanResult{}, fmt.Errorf("write %s: %w", storage.JobKey, err)
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
