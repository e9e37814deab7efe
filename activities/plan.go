package activities

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"path"
	"sort"
	"strings"

	"go.temporal.io/sdk/activity"
	"gocloud.dev/blob"
	"gocloud.dev/gcerrors"

	"github.com/vogscore/vog/dataset"
	"github.com/vogscore/vog/shard"
	"github.com/vogscore/vog/storage"
	"github.com/vogscore/vog/window"
)

// Plan validates a job, resolves and hashes its checkpoints, lists its
// dataset, and writes job.json and the dataset index under --out. Planning
// the same job again is a no-op; an --out that holds a different job is
// refused.
func (a *Activities) Plan(ctx context.Context, in PlanInput) (PlanResult, error) {
	res, err := a.plan(ctx, in)
	return res, classify(err)
}

func (a *Activities) plan(ctx context.Context, in PlanInput) (PlanResult, error) {
	spec := in.Spec.WithDefaults()
	if err := spec.Validate(); err != nil {
		return PlanResult{}, badJob("%v", err)
	}
	ckpts, err := resolveCheckpoints(ctx, spec.Checkpoints)
	if err != nil {
		return PlanResult{}, err
	}
	windows, err := window.Parse(spec.Windows, len(ckpts))
	if err != nil {
		return PlanResult{}, badJob("%v", err)
	}
	activity.RecordHeartbeat(ctx, "listing dataset")
	listing, err := dataset.List(ctx, spec.Dataset)
	if err != nil {
		return PlanResult{}, fmt.Errorf("--dataset %s: %w", spec.Dataset.URL, err)
	}
	job := Job{
		Spec:        spec,
		Checkpoints: ckpts,
		Shape:       listing.Shape,
		Windows:     windows,
		Examples:    int64(len(listing.Rows)),
		Shards:      shard.Count(int64(len(listing.Rows)), spec.ShardSize),
		Classes:     listing.Classes,
		IndexSHA256: indexHash(listing.Rows),
		Version:     Version,
	}
	fp := job
	fp.Spec.Out = "" // the same job written elsewhere is the same job
	if job.Fingerprint, err = shard.Fingerprint(fp); err != nil {
		return PlanResult{}, err
	}

	b, err := openOut(ctx, spec.Out)
	if err != nil {
		return PlanResult{}, err
	}
	defer b.Close()
	old, err := readJob(ctx, b)
	if err != nil {
		return PlanResult{}, fmt.Errorf("--out %s: %w", spec.Out, err)
	}
	if old != nil && old.Fingerprint != job.Fingerprint {
		return PlanResult{}, badJob("--out %s holds a different job (fingerprint %s, this job is %s): choose another --out, or remove it to start over",
			spec.Out, old.Fingerprint, job.Fingerprint)
	}
	indexed, err := storage.Exists(ctx, b, storage.IndexKey)
	if err != nil {
		return PlanResult{}, err
	}
	if !indexed {
		if err := storage.WriteParquet(ctx, b, storage.IndexKey, listing.Rows); err != nil {
			return PlanResult{}, err
		}
	}
	if old == nil {
		data, _ := json.MarshalIndent(job, "", "  ")
		if err := b.WriteAll(ctx, storage.JobKey, append(data, '\n'), nil); err != nil {
			return PlanResult{}, fmt.Errorf("write %s: %w", storage.JobKey, err)
		}
	}
	return PlanResult{
		Ref:         JobRef{Out: spec.Out, Fingerprint: job.Fingerprint},
		Examples:    job.Examples,
		Shards:      job.Shards,
		ShardSize:   spec.ShardSize,
		Checkpoints: len(ckpts),
		Groups:      len(job.Groups()),
	}, nil
}

// resolveCheckpoints expands a single folder into its *.pt files in natural
// order and hashes every checkpoint.
func resolveCheckpoints(ctx context.Context, list []string) ([]Checkpoint, error) {
	urls := list
	if len(list) == 1 {
		expanded, err := expandFolder(ctx, list[0])
		if err != nil {
			return nil, err
		}
		if expanded != nil {
			urls = expanded
		}
	}
	out := make([]Checkpoint, len(urls))
	for i, u := range urls {
		activity.RecordHeartbeat(ctx, "hashing "+u)
		sum, err := hashObject(ctx, u)
		if err != nil {
			return nil, err
		}
		out[i] = Checkpoint{URL: u, SHA256: sum}
	}
	return out, nil
}

// expandFolder lists the *.pt files under raw when raw is a folder or
// prefix rather than an object; it returns nil for an object.
func expandFolder(ctx context.Context, raw string) ([]string, error) {
	l, err := storage.Parse(raw)
	if err != nil {
		return nil, badJob("--checkpoints: %v", err)
	}
	b, err := storage.Open(ctx, l)
	if err != nil {
		return nil, badJob("--checkpoints: %v", err)
	}
	defer b.Close()
	if ok, _ := b.Exists(ctx, l.Key); ok && !strings.HasSuffix(l.Key, "/") {
		return nil, nil
	}
	prefix := strings.TrimSuffix(l.Key, "/") + "/"
	var keys []string
	it := b.List(&blob.ListOptions{Prefix: prefix, Delimiter: "/"})
	for {
		obj, err := it.Next(ctx)
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("--checkpoints: list %s: %w", raw, err)
		}
		if !obj.IsDir && path.Ext(obj.Key) == ".pt" {
			keys = append(keys, obj.Key)
		}
	}
	if len(keys) == 0 {
		return nil, badJob("--checkpoints %s: no such file, and no *.pt files in it as a folder", raw)
	}
	sort.Slice(keys, func(i, j int) bool { return shard.NaturalLess(keys[i], keys[j]) })
	urls := make([]string, len(keys))
	for i, k := range keys {
		urls[i] = storage.Location{BucketURL: l.BucketURL, Key: k}.String()
	}
	return urls, nil
}

func hashObject(ctx context.Context, raw string) (string, error) {
	data, err := readObject(ctx, raw)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:]), nil
}

// readObject reads a whole object named by URL; a missing object is bad input.
func readObject(ctx context.Context, raw string) ([]byte, error) {
	l, err := storage.Parse(raw)
	if err != nil {
		return nil, badJob("%v", err)
	}
	b, err := storage.Open(ctx, l)
	if err != nil {
		return nil, err
	}
	defer b.Close()
	data, err := b.ReadAll(ctx, l.Key)
	if gcerrors.Code(err) == gcerrors.NotFound {
		return nil, badJob("%s: no such file", raw)
	}
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", raw, err)
	}
	return data, nil
}

func indexHash(rows []storage.IndexRow) string {
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
