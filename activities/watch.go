package activities

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path"
	"strings"

	"gocloud.dev/blob"

	"github.com/vogscore/vog/job"
	"github.com/vogscore/vog/jobstore"
	"github.com/vogscore/vog/location"
	"github.com/vogscore/vog/storage"
	"github.com/vogscore/vog/window"
)

// PlanWatch plans vog watch's job: the dataset and everything but the
// checkpoints, which AddCheckpoint adds one by one, in watch.json under
// --out. Its fingerprint covers all of it but the checkpoints; planning the
// same watch again returns it with the checkpoints it holds.
func (a *Activities) PlanWatch(ctx context.Context, in job.WatchPlanInput) (job.WatchPlan, error) {
	spec := in.Spec.WithDefaults()
	if err := spec.Validate(); err != nil {
		return job.WatchPlan{}, job.BadJob("%v", err)
	}
	if spec.Label == job.LabelPredicted {
		return job.WatchPlan{}, job.BadJob("vog watch: --label predicted needs the run's last checkpoint before any can be folded; score the run with vog run once it ends")
	}
	defer heartbeatWhile(ctx)()
	model, modelData, err := planModel(ctx, spec, nil)
	if err != nil {
		return job.WatchPlan{}, err
	}
	j, rows, err := planJob(ctx, spec, nil, model)
	if err != nil {
		return job.WatchPlan{}, err
	}
	// The state each checkpoint will take is known now, before anything is
	// written or scored.
	state := watchState(j)
	if in.MaxState > 0 && state.PerCheckpoint > in.MaxState {
		return job.WatchPlan{}, state.TooLarge(in.MaxState)
	}
	st, err := jobstore.Create(ctx, spec.Out)
	if err != nil {
		return job.WatchPlan{}, err
	}
	defer st.Close()
	if err := writeModel(ctx, st, spec, model, modelData); err != nil {
		return job.WatchPlan{}, err
	}
	old, err := st.ReadWatch(ctx)
	if err != nil {
		return job.WatchPlan{}, err
	}
	if old != nil && old.Fingerprint == j.Fingerprint {
		return job.WatchPlan{Ref: job.Ref{Out: spec.Out, Fingerprint: j.Fingerprint, Watch: len(old.Checkpoints)}, Shards: j.Shards, State: state}, nil
	}
	if old != nil && !in.Overwrite {
		return job.WatchPlan{}, job.BadJob("--out %s holds another watch (%s; this one is %s): choose another --out, or give --overwrite", spec.Out, old.Fingerprint, j.Fingerprint)
	}
	if done, err := st.ReadJob(ctx); err != nil || done != nil {
		if err == nil {
			err = job.BadJob("--out %s holds a job already (%s): choose another --out, or give --overwrite", spec.Out, done.Fingerprint)
			if in.Overwrite {
				err = removeOutputs(ctx, st)
			}
		}
		if err != nil {
			return job.WatchPlan{}, err
		}
	}
	st.Bind(j)
	if err := st.WriteIndex(ctx, rows); err != nil {
		return job.WatchPlan{}, err
	}
	if err := st.WriteWatch(ctx, j); err != nil {
		return job.WatchPlan{}, err
	}
	return job.WatchPlan{Ref: job.Ref{Out: spec.Out, Fingerprint: j.Fingerprint}, Shards: j.Shards, State: state}, nil
}

// watchState is the storage each checkpoint of watch j takes: a partial
// moments file of one checkpoint per shard.
func watchState(j *job.Job) job.WatchStateSize {
	p := j.Shape.Pixels()
	return job.WatchStateSize{Examples: j.Examples, Pixels: p,
		PerCheckpoint: storage.MomentsBytes(j.Examples, p, 1) + int64(max(j.Shards-1, 0))*storage.MomentsBytes(0, p, 1)}
}

// CheckCheckpoint loads a checkpoint as the watch's job would (through its
// --model where it has one) and checks that it fits: readable, of the
// job's input shape, and with as many outputs as the checkpoints before
// it. It returns the checkpoint's outputs. It runs on a gradient worker.
func (a *Activities) CheckCheckpoint(ctx context.Context, in job.AddCheckpointInput) (int, error) {
	defer heartbeatWhile(ctx)()
	if a.Loader == nil {
		return 0, fmt.Errorf("this worker has no gradient engine")
	}
	j, err := watchJob(ctx, in.Ref)
	if err != nil {
		return 0, err
	}
	data, err := readCheckpoint(ctx, in.Checkpoint)
	if err != nil {
		return 0, err
	}
	sum, err := checkpointHash(ctx, in.Checkpoint, data)
	if err != nil {
		return 0, err
	}
	var module []byte
	if j.Model != nil {
		if module, err = readCheckpoint(ctx, j.Model.URL); err != nil {
			return 0, err
		}
	}
	loader, err := a.loaderFor(j.Spec.EnginePrecision())
	if err != nil {
		return 0, err
	}
	m, err := loadCheckpoint(ctx, j, job.Checkpoint{URL: in.Checkpoint, SHA256: sum}, module, loader)
	if err != nil {
		return 0, err
	}
	defer m.Close()
	if j.Outputs > 0 && m.Classes() != j.Outputs {
		return 0, job.BadJob("checkpoint %s has %d outputs, the run's checkpoints %d", in.Checkpoint, m.Classes(), j.Outputs)
	}
	return m.Classes(), nil
}

// watchJob reads the watch's job as it is, with every checkpoint added.
func watchJob(ctx context.Context, ref job.Ref) (*job.Job, error) {
	st, err := jobstore.Open(ctx, ref.Out)
	if err != nil {
		return nil, err
	}
	defer st.Close()
	return st.Watch(ctx, ref.Fingerprint)
}

// AddCheckpoint adds a checkpoint, checked by CheckCheckpoint, to the
// watch's job, and returns its index and the Ref of the job with it.
// Adding one already there returns it as it is. Only the watch's workflow
// adds, one at a time.
func (a *Activities) AddCheckpoint(ctx context.Context, in job.AddCheckpointInput) (job.AddCheckpointResult, error) {
	defer heartbeatWhile(ctx)()
	j, err := watchJob(ctx, in.Ref)
	if err != nil {
		return job.AddCheckpointResult{}, err
	}
	ref := job.Ref{Out: in.Ref.Out, Fingerprint: in.Ref.Fingerprint}
	for i, c := range j.Checkpoints {
		if c.URL == in.Checkpoint {
			ref.Watch = i + 1
			return job.AddCheckpointResult{Index: i, Ref: ref}, nil
		}
	}
	data, err := readCheckpoint(ctx, in.Checkpoint)
	if err != nil {
		return job.AddCheckpointResult{}, err
	}
	sum, err := checkpointHash(ctx, in.Checkpoint, data)
	if err != nil {
		return job.AddCheckpointResult{}, err
	}
	j.Checkpoints = append(j.Checkpoints, job.Checkpoint{URL: in.Checkpoint, SHA256: sum})
	if j.Outputs == 0 {
		j.Outputs = in.Outputs
	}
	j.Windows = []window.Window{{Name: window.All, Lo: 0, Hi: len(j.Checkpoints)}}
	st, err := jobstore.Create(ctx, in.Ref.Out)
	if err != nil {
		return job.AddCheckpointResult{}, err
	}
	defer st.Close()
	if err := st.WriteWatch(ctx, j); err != nil {
		return job.AddCheckpointResult{}, err
	}
	ref.Watch = len(j.Checkpoints)
	return job.AddCheckpointResult{Index: len(j.Checkpoints) - 1, Ref: ref}, nil
}

// ListRun lists a training run's checkpoints, in natural order (none yet
// is no error), and whether its marker file is there.
func (a *Activities) ListRun(ctx context.Context, in job.ListRunInput) (job.ListRunResult, error) {
	defer heartbeatWhile(ctx)()
	var res job.ListRunResult
	urls, _, err := expandFolder(ctx, in.Run, in.Exclude)
	if err != nil && !errors.Is(err, job.ErrBadJob) { // none yet is no error
		return res, err
	}
	ex, _ := location.Parse(in.Exclude)
	for _, u := range urls {
		if l, err := location.Parse(u); in.Exclude == "" || err != nil || l != ex {
			res.Checkpoints = append(res.Checkpoints, u)
		}
	}
	if in.Marker != "" {
		res.Finished, err = objectExists(ctx, joinURL(in.Run, in.Marker))
	}
	return res, err
}

// ListRuns lists the training runs, folders directly under in.Runs, with
// their state: finished (marker there) and not yet scored, done (a
// complete result at their out), or still training.
func (a *Activities) ListRuns(ctx context.Context, in job.ListRunsInput) (job.ListRunsResult, error) {
	defer heartbeatWhile(ctx)()
	var res job.ListRunsResult
	l, err := location.Parse(in.Runs)
	if err != nil {
		return res, job.BadJob("--runs: %v", err)
	}
	b, err := storage.Open(ctx, l)
	if err != nil {
		return res, err
	}
	defer b.Close()
	prefix := strings.TrimSuffix(l.Key, "/") + "/"
	it := b.List(&blob.ListOptions{Prefix: prefix, Delimiter: "/"})
	for {
		obj, err := it.Next(ctx)
		if err == io.EOF {
			break
		}
		if err != nil {
			return res, fmt.Errorf("--runs: list %s: %w", in.Runs, err)
		}
		if !obj.IsDir {
			continue
		}
		name := path.Base(obj.Key)
		run := job.RunFolder{Name: name, URL: location.Location{BucketURL: l.BucketURL, Key: obj.Key}.String(), Out: joinURL(in.OutPrefix, name)}
		finished, err := objectExists(ctx, joinURL(run.URL, in.Marker))
		if err != nil {
			return res, err
		}
		done, err := jobstore.Finished(ctx, run.Out)
		switch {
		case err != nil:
			return res, err
		case done:
			res.Done = append(res.Done, run)
		case finished:
			res.Todo = append(res.Todo, run)
		default:
			res.Waiting = append(res.Waiting, run)
		}
	}
	return res, nil
}

// joinURL names file name under the folder URL or path dir.
func joinURL(dir, name string) string {
	l, err := location.Parse(dir)
	if err != nil {
		return strings.TrimSuffix(dir, "/") + "/" + name
	}
	return l.Join(name).String()
}

func objectExists(ctx context.Context, raw string) (bool, error) {
	l, err := location.Parse(raw)
	if err != nil {
		return false, job.BadJob("%v", err)
	}
	b, err := storage.Open(ctx, l)
	if err != nil {
		return false, err
	}
	defer b.Close()
	return storage.Exists(ctx, b, l.Key)
}
