package main

import (
	"context"
	"fmt"
	"os"
	"slices"
	"time"

	vogclient "github.com/vogscore/vog/client"
	"github.com/vogscore/vog/internal/bytesize"
	"github.com/vogscore/vog/job"
	"github.com/vogscore/vog/location"
	"github.com/vogscore/vog/temporalserver"
)

// watchCmd scores a training run while it trains: vog watch --run URL
// --out URL [job flags]; vog watch --add CKPT|--finish --run URL --out URL
// talks to a running watch.
func watchCmd(ctx context.Context, args []string) error {
	if slices.ContainsFunc(args, func(a string) bool {
		return a == "-add" || a == "--add" || a == "-finish" || a == "--finish" ||
			len(a) > 6 && (a[:6] == "--add=" || a[:5] == "-add=")
	}) {
		return watchControlCmd(ctx, args)
	}
	var req job.WatchRequest
	maxState := bytesize.Flag(job.DefaultMaxWatchState)
	j, err := parseJobWith("watch", "--run URL --out URL --format FORMAT --dataset URL [flags]", args, func(fs *flags) {
		fs.StringVar(&req.Run, "run", "", "the training run's folder: each new checkpoint file in it (or Hugging Face checkpoint-N/ folder) is scored as it appears")
		fs.StringVar(&req.Marker, "marker", "DONE", "the file, in --run, whose appearance says the run has finished: then the run is scored")
		fs.DurationVar(&req.Poll, "poll", job.DefaultWatchPoll, "how often --run is listed for new checkpoints")
		fs.Var(&maxState, "max-state", "the most storage (a `SIZE`: 500GB, 2TiB; 0: no bound) the watch's state may take under --out, "+
			"all checkpoints together, 8 bytes per pixel per example per checkpoint: a watch whose one checkpoint takes more is refused "+
			"before anything is scored, and a checkpoint that would take the total over is refused")
	}, func(s *job.Spec) error {
		if req.Run == "" {
			return usagef("--run: missing")
		}
		if s.Windows != "" {
			return usagef("--windows: vog watch folds each checkpoint in as it comes, one window of all; score windows with vog run once the run ends")
		}
		s.Checkpoints, s.CheckpointGroup = []string{req.Run}, 1
		return nil
	})
	if err != nil {
		return err
	}
	if req.Run, err = location.Canonical(req.Run); err != nil {
		return usagef("--run: %v", err)
	}
	if req.MaxState = int64(maxState); req.MaxState == 0 {
		req.MaxState = -1 // no bound
	}
	req.Job = j.request()
	if req.Job.Spec.Out, err = location.Canonical(req.Job.Spec.Out); err != nil {
		return usagef("--out: %v", err)
	}
	started := time.Now()
	c, stop, err := j.connect()
	if err != nil {
		return err
	}
	defer stop()
	id, err := vogclient.StartWatch(ctx, c, req)
	if err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "watch %s: scoring each new checkpoint of %s; %s there ends the run (vog watch --add CKPT announces one)\n", id, req.Run, req.Marker)
	printSubmitted(os.Stderr, req.Job.Spec)
	res, err := vogclient.FollowWatch(ctx, c, id, os.Stderr, j.every)
	if err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("stopped waiting for watch %s (%v); %s", id, context.Cause(ctx), j.interrupted())
		}
		return fmt.Errorf("watch %s failed: %w", id, err)
	}
	return reportResult(id, res, req.Job.Spec.Out, time.Since(started))
}

// watchControlCmd announces a checkpoint to a running watch, or ends it.
func watchControlCmd(ctx context.Context, args []string) error {
	fs := newFlags("watch", "--add CKPT|--finish --run URL --out URL [flags]")
	var tf temporalFlags
	run := fs.String("run", "", "the watched run's folder, as vog watch was given it")
	out := fs.String("out", "", "the watch's --out")
	add := fs.String("add", "", "the checkpoint to announce")
	finish := fs.Bool("finish", false, "end the watch: score the checkpoints folded so far")
	stateDir := fs.String("state-dir", defaultStateDir(), "without --temporal: the state directory of the vog watch process whose embedded server to reach")
	tf.register(fs.FlagSet)
	if err := parse(fs, args); err != nil {
		return err
	}
	if *run == "" || *out == "" || (*add == "") == !*finish {
		return usagef("give --run and --out of the watch, and one of --add CKPT and --finish")
	}
	if tf.hostPort == "" {
		hp, ok := temporalserver.Holder(*stateDir)
		if !ok {
			return usagef("--temporal: missing, and no vog process serves --state-dir %s", *stateDir)
		}
		tf.hostPort = hp
	}
	r, err := location.Canonical(*run)
	if err != nil {
		return usagef("--run: %v", err)
	}
	o, err := location.Canonical(*out)
	if err != nil {
		return usagef("--out: %v", err)
	}
	id, err := vogclient.WatchID(r, o)
	if err != nil {
		return err
	}
	c, err := tf.dial()
	if err != nil {
		return err
	}
	defer c.Close()
	if *finish {
		if err := vogclient.FinishWatch(ctx, c, id); err != nil {
			return err
		}
		fmt.Printf("watch %s: finishing; its run is being scored\n", id)
		return nil
	}
	ckpt, err := location.Canonical(*add)
	if err != nil {
		return usagef("--add: %v", err)
	}
	if err := vogclient.AddCheckpoint(ctx, c, id, ckpt); err != nil {
		return fmt.Errorf("%s refused: %w", ckpt, err)
	}
	fmt.Printf("watch %s: %s accepted; it is being folded in\n", id, ckpt)
	return nil
}
