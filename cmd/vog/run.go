package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime/pprof"
	"strings"
	"text/tabwriter"
	"time"

	vogclient "github.com/vogscore/vog/client"
	"github.com/vogscore/vog/job"
	"github.com/vogscore/vog/jobstore"
	"github.com/vogscore/vog/location"
	"github.com/vogscore/vog/temporalserver"
	"github.com/vogscore/vog/worker"
	"go.temporal.io/sdk/client"
)

// printSubmitted says what a job was submitted with, as the workers will
// read it.
func printSubmitted(w io.Writer, spec job.Spec) {
	fmt.Fprintf(w, "  dataset:     %s (%s)\n", spec.Dataset.URL, spec.Dataset.Format)
	if spec.Model != "" {
		fmt.Fprintf(w, "  model:       %s\n", spec.Model)
	}
	fmt.Fprintf(w, "  checkpoints: %s\n", strings.Join(spec.Checkpoints, ", "))
	fmt.Fprintf(w, "  out:         %s\n", spec.Out)
}

// submitCmd starts a job on a Temporal server and prints its id.
func submitCmd(ctx context.Context, args []string) error {
	j, err := parseJob("submit", args)
	if err != nil {
		return err
	}
	if j.tf.hostPort == "" {
		return usagef("--temporal: missing (or set TEMPORAL_ADDRESS); vog run works without a server")
	}
	c, err := j.tf.dial()
	if err != nil {
		return err
	}
	defer c.Close()
	id, err := vogclient.Submit(ctx, c, j.request())
	if err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "submitted job %s:\n", id)
	printSubmitted(os.Stderr, j.spec)
	fmt.Println(id)
	return nil
}

func runCmd(ctx context.Context, args []string) error {
	j, err := parseJob("run", args)
	if err != nil {
		return err
	}
	if j.cpuProfile != "" {
		f, err := os.Create(j.cpuProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	started := time.Now()
	c, stop, err := j.connect()
	if err != nil {
		return err
	}
	defer stop()
	id, err := vogclient.Submit(ctx, c, j.request())
	if err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "job %s: scoring\n", id)
	printSubmitted(os.Stderr, j.spec)
	res, err := vogclient.Follow(ctx, c, id, os.Stderr, j.every)
	if err != nil {
		return followErr(ctx, id, err, j.interrupted())
	}
	return reportResult(id, res, j.spec.Out, time.Since(started))
}

// interrupted says what becomes of a job when the user stops following
// it: on a server of its own, it stops with this process and the same
// command resumes it; elsewhere it goes on.
func (j *jobFlags) interrupted() string {
	if j.embedded {
		return "the embedded server stops with this process; the same command resumes the job, reusing finished shards"
	}
	return "it goes on; the same command follows it again"
}

// connect dials the Temporal server of --temporal or, by default, starts
// an embedded one with a worker of both queues in this process; stop
// closes what it opened.
func (j *jobFlags) connect() (client.Client, func(), error) {
	tf := &j.tf
	var stops []func()
	stop := func() {
		for i := len(stops) - 1; i >= 0; i-- {
			stops[i]()
		}
	}
	embedded := tf.hostPort == ""
	j.embedded = embedded
	if embedded {
		if err := worker.CheckEngines(j.ef.cfg, j.spec.EnginePrecision()); err != nil {
			return nil, nil, err
		}
		// Embedded default: a dev server in this process, with its state in
		// SQLite so a run can be resumed after a crash, and a local worker.
		srv, err := temporalserver.Start(temporalserver.Options{DatabaseFile: filepath.Join(j.stateDir, "temporal.sqlite"), UIPort: j.uiPort})
		if err != nil {
			return nil, nil, err
		}
		stops = append(stops, func() { srv.Stop() })
		tf.hostPort = srv.HostPort()
		tf.quiet = true // failures reach the user through Follow
		j.ef.cfg.Leases = worker.NewLeases()
		tf.leases = j.ef.cfg.Leases
		fmt.Fprintf(os.Stderr, "embedded Temporal server on %s (state in %s)\n", tf.hostPort, j.stateDir)
		if j.uiPort != 0 {
			fmt.Fprintf(os.Stderr, "Web UI on http://127.0.0.1:%d/namespaces/default/workflows\n", j.uiPort)
		}
	}
	c, err := tf.dial()
	if err != nil {
		stop()
		return nil, nil, err
	}
	stops = append(stops, c.Close)
	if embedded {
		w, err := worker.Start(c, j.ef.cfg)
		if err != nil {
			stop()
			return nil, nil, err
		}
		stops = append(stops, w.Stop)
	}
	return c, stop, nil
}

// reportResult prints a finished job's summary, or a partial job's failed shards
// (as an error).
func reportResult(id string, res job.Result, out string, took time.Duration) error {
	if len(res.Failed) > 0 {
		for _, f := range res.Failed {
			fmt.Fprintf(os.Stderr, "shard %d failed: %s\n", f.Shard, f.Error)
		}
		return fmt.Errorf("job %s is partial: %d of %d shards failed (above); fix the cause and run it again (vog resume %s, or the same command): finished shards are reused",
			id, len(res.Failed), res.Shards, id)
	}
	printSummary(res, out, took)
	return nil
}

func printSummary(res job.Result, out string, took time.Duration) {
	loc, _ := location.Parse(out)
	if path, ok := loc.LocalPath(); ok {
		out = path // a local result by its path, as the user would type it
	}
	fmt.Printf("\nscored %d examples in %d shard(s) (%d reused), wrote %d rows in %s\n",
		res.Examples, res.Shards, res.Reused, res.Rows, took.Round(100*time.Millisecond))
	fmt.Printf("time: plan %.1fs, score %.1fs, reduce %.1fs\n", res.PlanSeconds, res.ScoreSeconds, res.ReduceSeconds)
	fmt.Printf("result: %s (%s/part-*.parquet, %s, %s, %s)\n", out, loc.Join("scores"), jobstore.ClassesKey, jobstore.FailuresKey, jobstore.SuccessKey)
	if res.Failures > 0 {
		fmt.Printf("%d example(s) could not be scored (%s): listed with their reasons in %s\n",
			res.Failures, vogclient.Kinds(res.FailedKinds), loc.Join(jobstore.FailuresKey))
	}
	if len(res.Hardest) == 0 {
		return
	}
	fmt.Println("\nhardest examples (highest VoG within their class):")
	tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "index\texample_id\twindow\tlabel\tpred\tvog\tvog_norm\t")
	for _, r := range res.Hardest {
		fmt.Fprintf(tw, "%d\t%s\t%s\t%d\t%d\t%.4g\t%.3f\t\n", r.Index, r.ExampleID, r.Window, r.Label, r.Pred, r.VoG, r.VoGNorm)
	}
	tw.Flush()
}
