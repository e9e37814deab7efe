package main

import (
	"context"
	"fmt"
	"os"
	"time"

	vogclient "github.com/vogscore/vog/client"
	"github.com/vogscore/vog/job"
)

// scheduleCmd manages schedules that score each training run once it has
// finished: vog schedule create|list|describe|pause|unpause|trigger|delete.
func scheduleCmd(ctx context.Context, args []string) error {
	if len(args) == 0 {
		return usagef("want a subcommand: create, list, describe, pause, unpause, trigger or delete")
	}
	sub, args := args[0], args[1:]
	if sub == "create" {
		return scheduleCreateCmd(ctx, args)
	}
	fs := newFlags("schedule "+sub, "--temporal HOST:PORT [NAME]")
	var tf temporalFlags
	tf.register(fs.FlagSet)
	if err := parse(fs, args); err != nil {
		return err
	}
	if tf.hostPort == "" {
		return usagef("--temporal: missing (or set TEMPORAL_ADDRESS): schedules live on a server that stays up, such as vog server")
	}
	if want := map[bool]int{true: 0, false: 1}[sub == "list"]; fs.NArg() != want {
		return usagef("vog schedule %s takes %d argument(s), the schedule's NAME", sub, want)
	}
	c, err := tf.dial()
	if err != nil {
		return err
	}
	defer c.Close()
	name := fs.Arg(0)
	switch sub {
	case "list":
		return vogclient.ListSchedules(ctx, c, os.Stdout)
	case "describe":
		return vogclient.DescribeSchedule(ctx, c, name, os.Stdout)
	case "pause", "unpause":
		return vogclient.PauseSchedule(ctx, c, name, sub == "pause")
	case "trigger":
		return vogclient.TriggerSchedule(ctx, c, name)
	case "delete":
		return vogclient.DeleteSchedule(ctx, c, name)
	}
	return usagef("unknown subcommand %q: want create, list, describe, pause, unpause, trigger or delete", sub)
}

func scheduleCreateCmd(ctx context.Context, args []string) error {
	if len(args) == 0 || args[0] == "" || args[0][0] == '-' {
		return usagef("vog schedule create NAME --every D --runs URL --marker FILE --out-prefix URL [job flags]")
	}
	name := args[0]
	var scan job.ScanRequest
	var every time.Duration
	j, err := parseJobWith("schedule create", "NAME --every D --runs URL --marker FILE --out-prefix URL --format FORMAT --dataset URL [flags]", args[1:], func(fs *flags) {
		fs.DurationVar(&every, "every", time.Hour, "how often the runs are scanned")
		fs.StringVar(&scan.Runs, "runs", "", "the folder whose sub-folders are training runs")
		fs.StringVar(&scan.Marker, "marker", "DONE", "the file, in a run's folder, that says it has finished")
		fs.StringVar(&scan.OutPrefix, "out-prefix", "", "each run's scores go to OUT-PREFIX/<run folder name>")
	}, func(s *job.Spec) error {
		if scan.Runs == "" || scan.OutPrefix == "" {
			return usagef("--runs and --out-prefix: both needed")
		}
		if every <= 0 {
			return usagef("--every %s: must be positive", every)
		}
		s.Checkpoints, s.Out = []string{scan.Runs}, scan.OutPrefix // each run's, at each scan
		return nil
	})
	if err != nil {
		return err
	}
	if j.tf.hostPort == "" {
		return usagef("--temporal: missing (or set TEMPORAL_ADDRESS): schedules live on a server that stays up, such as vog server")
	}
	scan.Job = j.request()
	c, err := j.tf.dial()
	if err != nil {
		return err
	}
	defer c.Close()
	if err := vogclient.CreateSchedule(ctx, c, name, every, scan); err != nil {
		return err
	}
	fmt.Printf("schedule %s: every %s, each run under %s with %s is scored into %s/<run>\n", name, every, scan.Runs, scan.Marker, scan.OutPrefix)
	return nil
}
