package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/vogscore/vog/job"
	"github.com/vogscore/vog/location"
	"github.com/vogscore/vog/modelzoo"
)

// jobFlags are the flags that describe a job, shared by run and submit.
type jobFlags struct {
	fs          *flags
	spec        job.Spec
	checkpoints string
	tf          temporalFlags
	ef          engineFlags
	stateDir    string
	every       time.Duration
	cpuProfile  string
	heartbeat   time.Duration
	retryFor    time.Duration
	maxBad      float64
	overwrite   bool
	uiPort      int
	embedded    bool // connect started a server in this process
}

func (j *jobFlags) request() job.Request {
	return job.Request{Spec: j.spec, HeartbeatTimeout: j.heartbeat, RetryFor: j.retryFor, MaxBadFraction: j.maxBad, Overwrite: j.overwrite}
}

func parseJob(name string, args []string) (*jobFlags, error) {
	return parseJobWith(name, "--format FORMAT --dataset URL --checkpoints LIST --out URL [flags]", args, nil, nil)
}

// parseJobWith parses the job flags of vog NAME and the command's own,
// which extra registers; fill completes the spec before it is validated.
func parseJobWith(name, synopsis string, args []string, extra func(*flags), fill func(*job.Spec) error) (*jobFlags, error) {
	j := &jobFlags{fs: newFlags(name, synopsis)}
	fs, spec := j.fs, &j.spec
	fs.StringVar(&spec.Dataset.Format, "format", "", "dataset format: idx, imagefolder, webdataset or parquet")
	fs.StringVar(&spec.Dataset.URL, "dataset", "", "dataset URL or path (idx: the prefix of -images-idx3-ubyte[.gz]; imagefolder: the folder of class folders; webdataset: the folder of *.tar shards; parquet: the folder of *.parquet files)")
	fs.StringVar(&j.checkpoints, "checkpoints", "", "comma-separated checkpoint URLs in training order, or one folder or glob of them (natural order, leaving out aliases such as checkpoint.pth, last.*, *best* and byte copies): TorchScript modules, or with --model state dicts (torch.save .pt/.pth/.pth.tar/.tar/.bin, Lightning .ckpt, .safetensors, Hugging Face checkpoint-N/ folders)")
	fs.StringVar(&spec.Model, "model", "", "the architecture that state-dict --checkpoints fill: a TorchScript module (PyTorch 1.13 or earlier for the CPU engine), or torchvision:NAME for a torchvision classification model (exported with Debian's python3-torchvision, with the checkpoints' number of classes)")
	fs.IntVar(&spec.Classes, "classes", 0, "with --model torchvision:NAME, the number of classes to export it with (default: the first checkpoint's; vog watch needs it when the run has no checkpoint yet)")
	fs.StringVar(&spec.StateDictPrefix, "state-dict-prefix", "", "remove this prefix from state-dict keys, keeping only the keys that have it (default: found by matching the keys to --model's: module., model., _orig_mod. or any other)")
	fs.StringVar(&spec.StateDictEntry, "state-dict-entry", "", "the entry of a torch.save'd dict that holds the weights, e.g. state_dict_ema for timm's EMA weights (default: the one whose tensors fit --model, the plain weights where several do)")
	fs.StringVar(&spec.Out, "out", "", "output URL or path")
	fs.StringVar(&spec.Label, "label", job.LabelTrue, "the class whose scalar is differentiated: true (the label) or predicted (by the window's last checkpoint)")
	fs.StringVar(&spec.Target, "target", "logit", "the scalar of that class whose input gradient is taken: logit (pre-softmax, the paper's Eq. 1), prob (softmax probability, as the authors' toy) or loss (cross-entropy)")
	fs.IntVar(&spec.ShardSize, "shard-size", job.DefaultShardSize, "examples per shard")
	fs.IntVar(&spec.BatchSize, "batch-size", job.DefaultBatchSize, "examples per engine call")
	fs.StringVar(&spec.Windows, "windows", "", "windows of checkpoints scored separately, as Python slices: early=0:3,late=-3: (default: all)")
	fs.IntVar(&spec.CheckpointGroup, "checkpoint-group", 0, "map checkpoints in groups of N, writing per-pixel partial moments that a shard reduce merges (default: all in one pass)")
	fs.StringVar(&spec.Precision, "precision", "fp32", "engine precision, part of the job: fp32, tf32 (CUDA matmuls and convolutions) or bf16")
	fs.IntVar(&spec.Dataset.Channels, "channels", 0, "input channels the model takes, 1 or 3 (default: 1 for idx, else 3)")
	fs.IntVar(&spec.Dataset.Resize, "resize", 0, "imagefolder: resize the shorter side to this many pixels")
	fs.IntVar(&spec.Dataset.Crop, "crop", 0, "imagefolder: centre-crop to this square size")
	fs.Float64Var(&spec.Dataset.DCTScale, "dct-scale", 0, "JPEGs: let libjpeg-turbo decode at 1/2, 1/4 or 1/8 size while the shorter side stays at least this factor times --resize (2 keeps every pixel within 6 of 255 levels); 0 decodes at full size, as torchvision does")
	fs.Var((*floatList)(&spec.Dataset.Mean), "mean", "per-channel mean subtracted after scaling to [0,1], e.g. 0.485,0.456,0.406")
	fs.Var((*floatList)(&spec.Dataset.Std), "std", "per-channel std divided by after --mean")
	fs.StringVar(&j.stateDir, "state-dir", defaultStateDir(), "embedded server: directory of its SQLite state")
	fs.IntVar(&j.uiPort, "ui-port", 0, "embedded server: serve Temporal's Web UI on this port of 127.0.0.1 (0: none)")
	fs.DurationVar(&j.every, "progress", 2*time.Second, "interval between progress lines")
	fs.StringVar(&j.cpuProfile, "cpuprofile", "", "write a CPU profile of this process to `file`")
	fs.DurationVar(&j.heartbeat, "heartbeat-timeout", job.DefaultHeartbeatTimeout, "a shard whose worker is silent this long moves to another worker")
	fs.DurationVar(&j.retryFor, "retry-for", job.DefaultRetryFor, "how long failing work is retried (with backoff up to a minute) before its shard or the job fails: outages shorter than this are survived")
	fs.Float64Var(&j.maxBad, "max-bad-fraction", job.DefaultMaxBadFraction, "fraction of the examples that may fail (unreadable, corrupt, too large, a label the model lacks, non-finite gradients) before the job does; they are listed in failures.parquet")
	fs.BoolVar(&j.overwrite, "overwrite", false, "discard the outputs of another job found at --out (those of this same job are always reused)")
	fs.IntVar(&spec.Dataset.MaxPixels, "max-pixels", job.DefaultMaxPixels, "largest image (width x height) decoded; a larger one fails as an example, read from its header")
	j.tf.register(fs.FlagSet)
	j.ef.register(fs.FlagSet)
	if extra != nil {
		extra(fs)
	}
	if err := parse(fs, args); err != nil { // refuses arguments beyond fs.maxArgs
		return nil, err
	}
	if j.checkpoints != "" {
		spec.Checkpoints = strings.Split(j.checkpoints, ",")
	}
	if fill != nil {
		if err := fill(spec); err != nil {
			return nil, err
		}
	}
	if err := absolute(spec); err != nil {
		return nil, usageError{err}
	}
	j.spec = spec.WithDefaults()
	if err := j.spec.Validate(); err != nil {
		return nil, usageError{err}
	}
	return j, nil
}

// absolute names the spec's local paths by absolute file:// URLs, so that
// a path typed in one working directory means the same file to a worker
// started in another (which must still be able to read it: object storage
// or a shared file system).
func absolute(spec *job.Spec) error {
	var err error
	abs := func(flag string, p *string) {
		if err != nil || *p == "" || strings.Contains(*p, "://") {
			return
		}
		var u string
		if u, err = location.Canonical(*p); err != nil {
			err = fmt.Errorf("--%s: %w", flag, err)
			return
		}
		*p = u
	}
	abs("dataset", &spec.Dataset.URL)
	abs("out", &spec.Out)
	if !modelzoo.IsName(spec.Model) {
		abs("model", &spec.Model)
	}
	for i := range spec.Checkpoints {
		abs("checkpoints", &spec.Checkpoints[i])
	}
	return err
}

func defaultStateDir() string {
	if d := os.Getenv("VOG_STATE_DIR"); d != "" {
		return d
	}
	if d := os.Getenv("XDG_STATE_HOME"); d != "" {
		return filepath.Join(d, "vog")
	}
	if home, err := os.UserHomeDir(); err == nil {
		return filepath.Join(home, ".local", "state", "vog")
	}
	return ".vog-state"
}
