package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"runtime/pprof"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/vogscore/vog/activities"
	vogclient "github.com/vogscore/vog/client"
	"github.com/vogscore/vog/storage"
	"github.com/vogscore/vog/temporalserver"
	"github.com/vogscore/vog/worker"
	"github.com/vogscore/vog/workflows"
)

func runCmd(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("vog run", flag.ContinueOnError)
	var (
		spec        activities.JobSpec
		checkpoints string
		tf          temporalFlags
		ef          engineFlags
		stateDir    string
		every       time.Duration
	)
	fs.StringVar(&spec.Dataset.Format, "format", "", "dataset format: idx or imagefolder")
	fs.StringVar(&spec.Dataset.URL, "dataset", "", "dataset URL or path (idx: the prefix of -images-idx3-ubyte[.gz]; imagefolder: the folder)")
	fs.StringVar(&checkpoints, "checkpoints", "", "comma-separated checkpoint URLs in training order, or one folder of *.pt (natural order)")
	fs.StringVar(&spec.Out, "out", "", "output URL or path")
	fs.StringVar(&spec.Label, "label", activities.LabelTrue, "gradient target: true (the label) or predicted (by the last checkpoint)")
	fs.IntVar(&spec.ShardSize, "shard-size", activities.DefaultShardSize, "examples per shard")
	fs.IntVar(&spec.BatchSize, "batch-size", activities.DefaultBatchSize, "examples per engine call")
	fs.IntVar(&spec.Dataset.Channels, "channels", 0, "input channels the model takes, 1 or 3 (default: 1 for idx, 3 for imagefolder)")
	fs.IntVar(&spec.Dataset.Resize, "resize", 0, "imagefolder: resize the shorter side to this many pixels")
	fs.IntVar(&spec.Dataset.Crop, "crop", 0, "imagefolder: centre-crop to this square size")
	fs.Var((*floatList)(&spec.Dataset.Mean), "mean", "per-channel mean subtracted after scaling to [0,1], e.g. 0.485,0.456,0.406")
	fs.Var((*floatList)(&spec.Dataset.Std), "std", "per-channel std divided by after --mean")
	fs.StringVar(&stateDir, "state-dir", defaultStateDir(), "embedded server: directory of its SQLite state")
	fs.DurationVar(&every, "progress", 2*time.Second, "interval between progress lines")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of this process to `file`")
	tf.register(fs)
	ef.register(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	if checkpoints != "" {
		spec.Checkpoints = strings.Split(checkpoints, ",")
	}
	spec = spec.WithDefaults()
	if err := spec.Validate(); err != nil {
		return err
	}
	started := time.Now()

	embedded := tf.hostPort == ""
	if embedded {
		// Embedded default: a dev server in this process, with its state in
		// SQLite so a run can be resumed after a crash, and a local worker.
		srv, err := temporalserver.Start(temporalserver.Options{DatabaseFile: filepath.Join(stateDir, "temporal.sqlite")})
		if err != nil {
			return err
		}
		defer srv.Stop()
		tf.hostPort = srv.HostPort()
		tf.quiet = true // failures reach the user through Follow
		fmt.Fprintf(os.Stderr, "embedded Temporal server on %s (state in %s)\n", tf.hostPort, stateDir)
	}
	c, err := tf.dial()
	if err != nil {
		return err
	}
	defer c.Close()
	if embedded {
		w, err := worker.Start(c, ef.cfg)
		if err != nil {
			return err
		}
		defer w.Stop()
	}

	id, err := vogclient.Submit(ctx, c, workflows.JobInput{Spec: spec})
	if err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "job %s: scoring %s\n", id, spec.Dataset.URL)
	res, err := vogclient.Follow(ctx, c, id, os.Stderr, every)
	if err != nil {
		return fmt.Errorf("job %s failed: %w", id, err)
	}
	printSummary(res, spec.Out, time.Since(started))
	return nil
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

func printSummary(res workflows.JobResult, out string, took time.Duration) {
	loc, _ := storage.Parse(out)
	fmt.Printf("\nscored %d examples in %d shard(s) (%d reused), wrote %d rows in %s\n",
		res.Examples, res.Shards, res.Reused, res.Rows, took.Round(100*time.Millisecond))
	fmt.Printf("time: plan %.1fs, score %.1fs, reduce %.1fs\n", res.PlanSeconds, res.ScoreSeconds, res.ReduceSeconds)
	fmt.Printf("result: %s (%s/part-*.parquet, %s, %s)\n", out, loc.Join("scores"), storage.ClassesKey, storage.SuccessKey)
	if len(res.Hardest) == 0 {
		return
	}
	fmt.Println("\nhardest examples (highest VoG within their class):")
	tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "index\texample_id\tlabel\tpred\tvog\tvog_norm\t")
	for _, r := range res.Hardest {
		fmt.Fprintf(tw, "%d\t%s\t%d\t%d\t%.4g\t%.3f\t\n", r.Index, r.ExampleID, r.Label, r.Pred, r.VoG, r.VoGNorm)
	}
	tw.Flush()
}
