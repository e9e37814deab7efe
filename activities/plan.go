package activities

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"

	"go.temporal.io/sdk/activity"

	"github.com/vogscore/vog/checkpoint"
	"github.com/vogscore/vog/dataset"
	"github.com/vogscore/vog/job"
	"github.com/vogscore/vog/jobstore"
	"github.com/vogscore/vog/location"
	"github.com/vogscore/vog/modelzoo"
	"github.com/vogscore/vog/storage"
	"github.com/vogscore/vog/window"
)

// Plan validates a job, resolves and hashes its checkpoints, lists its
// dataset, and writes job.json and the dataset index under --out. Planning
// the same job again is a no-op; an --out that holds another job is
// refused, or with Overwrite emptied first.
//
// Plan is the job's first use of its storage: a store that refuses it (no
// such bucket, credentials refused) fails the job at once rather than
// after --retry-for. Later activities retry such errors, as another worker
// may have other credentials.
func (a *Activities) Plan(ctx context.Context, in job.PlanInput) (job.PlanResult, error) {
	res, err := a.plan(ctx, in)
	if storage.Refused(err) && !errors.Is(err, job.ErrBadJob) {
		host, _ := os.Hostname()
		return res, job.BadJob("%v (the store refuses this, and trying again would not change it: check the URL, "+
			"and the endpoint and credentials of the worker on %s)", err, host)
	}
	return res, err
}

func (a *Activities) plan(ctx context.Context, in job.PlanInput) (job.PlanResult, error) {
	spec := in.Spec.WithDefaults()
	if err := spec.Validate(); err != nil {
		return job.PlanResult{}, job.BadJob("%v", err)
	}
	defer heartbeatWhile(ctx)()
	// --out first: a bucket that is missing or refused is found before
	// the checkpoints are hashed and the dataset listed (minutes at
	// ImageNet's size).
	st, err := jobstore.Create(ctx, spec.Out)
	if err != nil {
		return job.PlanResult{}, err
	}
	defer st.Close()
	if err := st.CheckBucket(ctx); err != nil {
		return job.PlanResult{}, err
	}
	first := &keptRead{}
	model, modelData, err := planModel(ctx, spec, first)
	if err != nil {
		return job.PlanResult{}, err
	}
	res, err := resolveCheckpoints(ctx, spec, modelData, first)
	if err != nil {
		return job.PlanResult{}, err
	}
	ckpts := res.ckpts
	j, listing, err := planJob(ctx, spec, ckpts, model)
	if err != nil {
		return job.PlanResult{}, err
	}
	old, err := st.CreateJob(ctx, j)
	if err != nil {
		return job.PlanResult{}, fmt.Errorf("--out %s: %w", spec.Out, err)
	}
	if old != nil && (old.Fingerprint != j.Fingerprint || old.Verify() != nil) {
		if !in.Overwrite {
			if old.Fingerprint == j.Fingerprint {
				return job.PlanResult{}, job.BadJob("--out %s: %s %v", spec.Out, jobstore.JobKey, old.Verify())
			}
			return job.PlanResult{}, job.BadJob("--out %s holds another job (%s; this one is %s): choose another --out, or give --overwrite to discard its outputs",
				spec.Out, old.Fingerprint, j.Fingerprint)
		}
		if err := removeOutputs(ctx, st); err != nil {
			return job.PlanResult{}, err
		}
		if old, err = st.CreateJob(ctx, j); err != nil || old != nil {
			return job.PlanResult{}, fmt.Errorf("--out %s: another job was planned there while its outputs were removed (%v)", spec.Out, err)
		}
	}
	st.Bind(j)
	if err := writeModel(ctx, st, spec, model, modelData); err != nil {
		return job.PlanResult{}, err
	}
	// The index is written after job.json, and rewritten unless it is this
	// dataset's: a crash between the two, or another job's index, cannot
	// leave a wrong one.
	current, err := st.IndexCurrent(ctx)
	if err != nil {
		return job.PlanResult{}, err
	}
	if !current {
		if err := st.WriteIndex(ctx, listing); err != nil {
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
		Notes:       res.notes,
	}, nil
}

// planModel reads and hashes the job's --model, if it has one, or exports
// the torchvision architecture it names, keeping in first (where not nil)
// the checkpoint it read for the number of classes.
func planModel(ctx context.Context, spec job.Spec, first *keptRead) (*job.Checkpoint, []byte, error) {
	if spec.Classes != 0 && !modelzoo.IsName(spec.Model) {
		return nil, nil, job.BadJob("--classes %d: only with --model torchvision:NAME (a TorchScript model has its own)", spec.Classes)
	}
	if spec.Model == "" {
		return nil, nil, nil
	}
	if modelzoo.IsName(spec.Model) {
		return exportModel(ctx, spec, first)
	}
	data, err := readCheckpoint(ctx, spec.Model)
	if err != nil {
		return nil, nil, fmt.Errorf("--model: %w", err)
	}
	if f := checkpoint.Detect(data); f != checkpoint.TorchScript {
		return nil, nil, job.BadJob("--model %s is a %s: it must be a TorchScript module (torch.jit.script or trace, then save)", spec.Model, f)
	}
	sum := sha256.Sum256(data)
	return &job.Checkpoint{URL: spec.Model, SHA256: hex.EncodeToString(sum[:])}, data, nil
}

// exportModel makes the TorchScript module of the torchvision
// architecture that --model names, with --classes outputs, or as many as
// the first checkpoint's weights have (that checkpoint kept in kept, where
// not nil). It is named by its hash under --out, where Plan writes it
// (writeModel) for the workers to read.
func exportModel(ctx context.Context, spec job.Spec, kept *keptRead) (*job.Checkpoint, []byte, error) {
	arch, err := modelzoo.Arch(spec.Model)
	if err != nil {
		return nil, nil, job.BadJob("%v", err)
	}
	activity.RecordHeartbeat(ctx, "exporting "+spec.Model)
	classes, data := spec.Classes, []byte(nil)
	if classes == 0 {
		if classes, data, err = firstClasses(ctx, spec, arch, kept); err != nil {
			return nil, nil, err
		}
	}
	if data == nil || classes != modelzoo.DefaultClasses {
		if data, err = modelzoo.Export(ctx, modelzoo.Python(), arch, classes); err != nil {
			return nil, nil, job.BadJob("--model %v", err)
		}
	}
	sum := sha256.Sum256(data)
	hash := hex.EncodeToString(sum[:])
	l, err := location.Parse(spec.Out)
	if err != nil {
		return nil, nil, job.BadJob("--out: %v", err)
	}
	url := l.Join(jobstore.ModelKey(hash)).String()
	return &job.Checkpoint{URL: url, SHA256: hash}, data, nil
}

// firstClasses returns the number of classes of the run's first
// checkpoint (kept in kept, where not nil), as the default export of arch,
// which it returns too, reads its weights.
func firstClasses(ctx context.Context, spec job.Spec, arch string, kept *keptRead) (int, []byte, error) {
	data, err := modelzoo.Export(ctx, modelzoo.Python(), arch, modelzoo.DefaultClasses)
	if err != nil {
		return 0, nil, job.BadJob("--model %v", err)
	}
	params, err := checkpoint.ModuleParams(data)
	if err != nil {
		return 0, nil, fmt.Errorf("--model %s: %w", spec.Model, err)
	}
	noneYet := job.BadJob("--model %s: the number of classes comes from the run's first checkpoint, and there is none yet: "+
		"give --classes, or start once one is written", spec.Model)
	if len(spec.Checkpoints) == 0 {
		return 0, nil, noneYet
	}
	first := spec.Checkpoints[0]
	if list, _, err := expandFolder(ctx, first, ""); errors.Is(err, job.ErrBadJob) && len(spec.Checkpoints) == 1 {
		return 0, nil, fmt.Errorf("%w (%v)", noneYet, err)
	} else if err != nil {
		return 0, nil, err
	} else if list != nil {
		first = list[0]
	}
	ck, err := readCheckpoint(ctx, first)
	if err != nil {
		return 0, nil, err
	}
	kept.keep(first, ck)
	classes, err := checkpoint.Classes(first, ck, siblingOf(ctx, first), params, modelzoo.DefaultClasses,
		checkpoint.Options{Prefix: spec.StateDictPrefix, Entry: spec.StateDictEntry})
	if err != nil {
		return 0, nil, job.BadJob("--model %s: checkpoint %v", spec.Model, err)
	}
	return classes, data, nil
}

// writeModel writes an exported --model under --out, unless it is there.
func writeModel(ctx context.Context, st *jobstore.Store, spec job.Spec, model *job.Checkpoint, data []byte) error {
	if model == nil || !modelzoo.IsName(spec.Model) {
		return nil
	}
	if err := st.WriteModel(ctx, model.SHA256, data); err != nil {
		return fmt.Errorf("--out %s: %w", spec.Out, err)
	}
	return nil
}

// planJob lists the dataset of spec and resolves everything about a job
// of the checkpoints ckpts, which it seals.
func planJob(ctx context.Context, spec job.Spec, ckpts []job.Checkpoint, model *job.Checkpoint) (*job.Job, []job.IndexRow, error) {
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

// removeOutputs deletes every object a job writes under --out,
// heartbeating after each.
func removeOutputs(ctx context.Context, st *jobstore.Store) error {
	return st.RemoveOutputs(ctx, func(key string) { activity.RecordHeartbeat(ctx, "removing "+key) })
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
