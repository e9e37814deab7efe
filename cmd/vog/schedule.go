package main

import (
	"context"
	"fmt"
	"os"
	"slices"
	"time"

	vogclient "github.com/vogscore/vog/client"
	"github.com/vogscore/vog/job"
)

// scheduleUsage is vog schedule's usage, for vog schedule --help.
const scheduleUsage = `Usage: vog schedule SUBCOMMAND [NAME] [flags]

Schedules score each training run under a folder once it has finished.

  vog schedule create NAME --every D --runs URL --out-prefix URL [job flags]
  vog schedule list --temporal HOST:PORT
  vog schedule describe|pause|unpause|trigger|delete NAME --temporal HOST:PORT

Run 'vog schedule SUBCOMMAND --help' for its flags.
`

// scheduleSubs are vog schedule's subcommands.
var scheduleSubs = []string{"create", "list", "describe", "pause", "unpause", "trigger", "delete"}

// scheduleCmd manages schedules that score each training run once it has
// finished: vog schedule create|list|describe|pause|unpause|trigger|delete.
func scheduleCmd(ctx context.Context, args []string) error {
	if len(args) == 0 {
		return usagef("want a subcommand: create, list, describe, pause, unpause, trigger or delete")
	}
	sub, args := args[0], args[1:]
	switch {
	case sub == "-h" || sub == "-help" || sub == "--help" || sub == "help" && len(args) == 0:
		fmt.Fprint(stdout, scheduleUsage)
		return errHelp
	case sub == "help": // vog schedule help SUB
		return scheduleCmd(ctx, []string{args[0], "--help"})
	case len(sub) > 1 && sub[0] == '-':
		return usagef("%s: the subcommand comes first, as in vog schedule trigger NAME --temporal HOST:PORT", sub)
	case !slices.Contains(scheduleSubs, sub):
		return usagef("unknown subcommand %q: want create, list, describe, pause, unpause, trigger or delete", sub)
	case sub == "create":
		return scheduleCreateCmd(ctx, args)
	}
	synopsis := "NAME --temporal HOST:PORT [flags]"
	if sub == "list" {
		synopsis = "--temporal HOST:PORT [flags]"
	}
	fs := newFlags("schedule "+sub, synopsis)
	fs.maxArgs = 1
	var tf temporalFlags
	tf.register(fs.FlagSet)
	if err := parse(fs, args); err != nil {
		return err
	}
	if want := map[bool]int{true: 0, false: 1}[sub == "list"]; fs.NArg() != want {
		return usagef("vog schedule %s takes %d argument(s), the schedule's NAME", sub, want)
	}
	if tf.hostPort == "" {
		return usagef("--temporal: missing (or set TEMPORAL_ADDRESS): schedules live on a server that stays up, such as vog server")
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
	default: // "delete"
		return vogclient.DeleteSchedule(ctx, c, name)
	}
}

func scheduleCreateCmd(ctx context.Context, args []string) error {
	var scan job.ScanRequest
	var every time.Duration
	var fs *flags
	j, err := parseJobWith("schedule create", "NAME --every D --runs URL --marker FILE --out-prefix URL --format FORMAT --dataset URL [flags]", args, func(f *flags) {
		fs, f.maxArgs = f, 1 // the schedule's NAME
		fs.DurationVar(&every, "every", time.Hour, "how often the runs are scanned")
		fs.StringVar(&scan.Runs, "runs", "", "the folder whose sub-folders are training runs")
		fs.StringVar(&scan.Marker, "marker", "DONE", "the file, in a run's folder, that says it has finished")
		fs.StringVar(&scan.OutPrefix, "out-prefix", "", "each run's scores go to OUT-PREFIX/<run folder name>")
	}, func(s *job.Spec) error {
		if fs.NArg() != 1 || fs.Arg(0) == "" {
			return usagef("NAME: missing: vog schedule create NAME --every D --runs URL --out-prefix URL [job flags]")
		}
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
	name := fs.Arg(0)
	// What the workers read, named where it was typed (absolute).
	scan.Runs, scan.OutPrefix = j.spec.Checkpoints[0], j.spec.Out
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
