package job

import (
	"errors"
	"fmt"
	"math"
	"net/url"
	"slices"
	"strings"
)

// Label modes: whose logit's gradient is taken.
const (
	LabelTrue      = "true"
	LabelPredicted = "predicted"
)

// Formats lists the dataset formats vog reads.
var Formats = []string{"idx", "imagefolder", "webdataset", "parquet"}

// Defaults for Spec's zero fields.
const (
	DefaultShardSize = 10000
	DefaultBatchSize = 128
)

// Spec is what a user asks for.
type Spec struct {
	Dataset Dataset `json:"dataset"`
	// Checkpoints is a list of checkpoint URLs in training order, or a single
	// folder/prefix meaning every *.pt in it in natural order.
	Checkpoints []string `json:"checkpoints"`
	// Label is LabelTrue (default) or LabelPredicted.
	Label string `json:"label"`
	// Target is the scalar whose input gradient is taken, one of
	// Targets: "" (the logit, the paper's Eq. 1), "prob" (the
	// softmax probability, as the authors' toy) or "loss" (cross-entropy).
	// It is part of the job: it changes every score of VoG.
	Target string `json:"target,omitempty"`
	// ShardSize is the number of examples per map activity.
	ShardSize int `json:"shard_size"`
	// BatchSize is the number of examples per engine call.
	BatchSize int `json:"batch_size"`
	// Windows names slices of the checkpoints to score separately, as
	// "early=0:3,late=-3:" (window.Parse); empty means one window, all.
	Windows string `json:"windows,omitempty"`
	// CheckpointGroup, when positive and smaller than the number of
	// checkpoints, splits them into groups of this many: a map activity
	// per shard and group writes per-pixel partial moments, and a shard
	// reduce merges them. 0 scores all checkpoints in one pass.
	CheckpointGroup int `json:"checkpoint_group,omitempty"`
	// Precision is one of Precisions; "" means the first, float32,
	// so that float32 jobs keep the fingerprints they had before precisions
	// existed. It is part of the job because it changes the scores: every
	// worker computes a job in its precision.
	Precision string `json:"precision,omitempty"`
	// Model, where set, is a TorchScript module that gives the checkpoints'
	// architecture: Checkpoints may then be state dicts (torch.save,
	// Lightning's .ckpt, safetensors, Hugging Face checkpoint-N/ folders),
	// whose weights replace the module's.
	Model string `json:"model,omitempty"`
	// Classes, with a torchvision Model, is the number of classes it is
	// exported with; 0: the first checkpoint's (vog watch before the run
	// has one needs it).
	Classes int `json:"classes,omitempty"`
	// StateDictPrefix is stripped from the state dicts' keys (Lightning's
	// "model."); keys without it are left out.
	StateDictPrefix string `json:"state_dict_prefix,omitempty"`
	// StateDictEntry names the entry of a torch.save'd dict that holds the
	// weights, where several do (timm's "state_dict_ema" beside
	// "state_dict"); empty lets planning find it (checkpoint.Find).
	StateDictEntry string `json:"state_dict_entry,omitempty"`
	// Out is the URL under which the job's outputs are written.
	Out string `json:"out"`
}

// Dataset says where a dataset is and how to preprocess it.
type Dataset struct {
	// Format is one of Formats.
	Format string `json:"format"`
	URL    string `json:"url"`
	Preprocess
}

// Preprocess is the preprocessing applied to every image, in this order:
// convert to Channels, resize the shorter side to Resize, centre-crop to
// Crop x Crop, scale to [0, 1], subtract Mean and divide by Std per channel.
// Zero values mean: the format's channels (1 for idx, 3 for the others), no
// resize, no crop, no normalisation.
type Preprocess struct {
	Channels int       `json:"channels,omitempty"`
	Resize   int       `json:"resize,omitempty"`
	Crop     int       `json:"crop,omitempty"`
	Mean     []float32 `json:"mean,omitempty"`
	Std      []float32 `json:"std,omitempty"`
	// MaxPixels is the largest image (width x height, before and after the
	// resize) that is decoded; a larger one fails as an example, read from
	// its header, before anything is allocated. 0 means DefaultMaxPixels.
	MaxPixels int `json:"max_pixels,omitempty"`
	// DCTScale, when > 0 with Resize, lets libjpeg-turbo decode a JPEG
	// scaled down in the DCT domain (1/2, 1/4, 1/8) while its shorter side
	// stays at least DCTScale x Resize, as PIL's draft does: faster on large
	// images, not bit-identical to torchvision (preprocess/README.md
	// measures it). 0, the default, decodes at full size.
	DCTScale float64 `json:"dct_scale,omitempty"`
}

// DefaultMaxPixels is the pixel cap when --max-pixels is not given: a
// 10,000 x 10,000 image, 400 MB decoded.
const DefaultMaxPixels = 100_000_000

// MaxPixelCount returns the pixel cap: MaxPixels, or DefaultMaxPixels.
func (p Preprocess) MaxPixelCount() int {
	if p.MaxPixels > 0 {
		return p.MaxPixels
	}
	return DefaultMaxPixels
}

// WithDefaults returns s with zero fields set to their defaults, and the
// default precision spelt "".
func (s Spec) WithDefaults() Spec {
	if s.Label == "" {
		s.Label = LabelTrue
	}
	if s.ShardSize == 0 {
		s.ShardSize = DefaultShardSize
	}
	if s.BatchSize == 0 {
		s.BatchSize = DefaultBatchSize
	}
	if s.Precision == Precisions[0] {
		s.Precision = ""
	}
	if s.Dataset.MaxPixels == DefaultMaxPixels {
		s.Dataset.MaxPixels = 0 // the default keeps fingerprints as they were
	}
	if s.Target == Targets[TargetLogit] {
		s.Target = "" // logit jobs keep the fingerprints they had before targets
	}
	return s
}

// EngineTarget returns the spec's target.
func (s Spec) EngineTarget() Target {
	t, _ := ParseTarget(s.Target) // checked by Validate
	return t
}

// EnginePrecision returns the spec's precision as the engine names it: one
// of Precisions, never "".
func (s Spec) EnginePrecision() string {
	if s.Precision == "" {
		return Precisions[0]
	}
	return s.Precision
}

// Validate names the first bad field of s by its flag.
func (s Spec) Validate() error {
	if err := s.Dataset.Validate(); err != nil {
		return err
	}
	if len(s.Checkpoints) == 0 {
		return errors.New("--checkpoints: missing")
	}
	if s.Label != LabelTrue && s.Label != LabelPredicted {
		return fmt.Errorf("--label %q: want %q or %q", s.Label, LabelTrue, LabelPredicted)
	}
	if _, err := ParseTarget(s.Target); err != nil {
		return err
	}
	if s.ShardSize <= 0 {
		return fmt.Errorf("--shard-size %d: must be positive", s.ShardSize)
	}
	if s.BatchSize <= 0 {
		return fmt.Errorf("--batch-size %d: must be positive", s.BatchSize)
	}
	if s.Precision != "" && !slices.Contains(Precisions, s.Precision) {
		return fmt.Errorf("--precision %q: want %s", s.Precision, strings.Join(Precisions, ", "))
	}
	if s.Classes < 0 {
		return fmt.Errorf("--classes %d: must be positive", s.Classes)
	}
	if s.StateDictPrefix != "" && s.Model == "" {
		return errors.New("--state-dict-prefix: give --model too (the architecture the state dicts fill)")
	}
	if s.StateDictEntry != "" && s.Model == "" {
		return errors.New("--state-dict-entry: give --model too (the architecture the state dicts fill)")
	}
	if s.CheckpointGroup < 0 {
		return fmt.Errorf("--checkpoint-group %d: must not be negative", s.CheckpointGroup)
	}
	if s.CheckpointGroup > 0 && s.Windows != "" {
		return errors.New("--windows with --checkpoint-group: not supported yet; score each window as its own job")
	}
	if s.Out == "" {
		return errors.New("--out: missing")
	}
	if strings.Contains(s.Out, "://") {
		if _, err := url.Parse(s.Out); err != nil {
			return fmt.Errorf("--out: %w", err)
		}
	}
	return nil
}

// Validate reports the first invalid field of d, by its flag name.
func (d Dataset) Validate() error {
	if !slices.Contains(Formats, d.Format) {
		return fmt.Errorf("--format %q: want one of %s", d.Format, strings.Join(Formats, ", "))
	}
	if d.URL == "" {
		return errors.New("--dataset: missing")
	}
	if d.Channels != 0 && d.Channels != 1 && d.Channels != 3 {
		return fmt.Errorf("--channels %d: want 1 or 3", d.Channels)
	}
	if d.Resize < 0 || d.Crop < 0 {
		return fmt.Errorf("--resize %d / --crop %d: must not be negative", d.Resize, d.Crop)
	}
	if d.MaxPixels < 0 {
		return fmt.Errorf("--max-pixels %d: must not be negative", d.MaxPixels)
	}
	if !(d.DCTScale >= 0) || math.IsInf(d.DCTScale, 0) {
		return fmt.Errorf("--dct-scale %v: want 0 (decode at full size) or a factor such as 2", d.DCTScale)
	}
	if d.DCTScale > 0 && d.Resize == 0 {
		return fmt.Errorf("--dct-scale %v needs --resize: it keeps the decoded image at least that factor times the resize", d.DCTScale)
	}
	c := d.ChannelCount()
	if len(d.Mean) != 0 && len(d.Mean) != c {
		return fmt.Errorf("--mean has %d values for %d channels", len(d.Mean), c)
	}
	if len(d.Std) != len(d.Mean) {
		return fmt.Errorf("--std has %d values, --mean %d: give both, one per channel", len(d.Std), len(d.Mean))
	}
	for i, v := range d.Std {
		if v == 0 {
			return fmt.Errorf("--std value %d is 0", i)
		}
	}
	return nil
}

// ChannelCount returns the channels the model takes: Channels, or the
// format's default.
func (d Dataset) ChannelCount() int {
	if d.Channels != 0 {
		return d.Channels
	}
	if d.Format == "idx" {
		return 1
	}
	return 3
}
