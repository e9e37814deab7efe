package main

import (
	"context"
	"fmt"
	"os"
	"time"

	"go.temporal.io/sdk/client"

	vogclient "github.com/vogscore/vog/client"
)

// jobCmd parses the flags of a command about one job, vog status|wait|resume
// JOB, and dials the server; the caller closes the client.
func jobCmd(name string, args []string) (client.Client, string, time.Duration, error) {
	c, id, every, _, err := jobCmdWait(name, args)
	return c, id, every, err
}

// jobCmdWait is jobCmd, also returning --server-wait.
func jobCmdWait(name string, args []string) (client.Client, string, time.Duration, time.Duration, error) {
	fs := newFlags(name, "JOB --temporal HOST:PORT [flags]")
	fs.maxArgs = 1
	var tf temporalFlags
	every := fs.Duration("progress", 5*time.Second, "interval between progress lines")
	wait := fs.Duration("server-wait", 5*time.Minute, "how long to wait for a Temporal server that does not answer (restarting, say) before giving up; the job itself goes on")
	tf.register(fs.FlagSet)
	if err := parse(fs, args); err != nil {
		return nil, "", 0, 0, err
	}
	if fs.NArg() != 1 {
		return nil, "", 0, 0, usagef("want one JOB (its id, as vog submit printed it), have %d arguments", fs.NArg())
	}
	if tf.hostPort == "" {
		return nil, "", 0, 0, usagef("--temporal: missing (or set TEMPORAL_ADDRESS)")
	}
	// The server may be restarting: wait for it rather than fail.
	c, err := tf.dialPatiently(context.Background(), *wait)
	if err != nil {
		return nil, "", 0, 0, err
	}
	return c, fs.Arg(0), *every, *wait, nil
}

func statusCmd(ctx context.Context, args []string) error {
	c, id, _, serverWait, err := jobCmdWait("status", args)
	if err != nil {
		return err
	}
	defer c.Close()
	// A server that does not answer says nothing of the job: wait for it.
	deadline := time.Now().Add(serverWait)
	for {
		st, err := vogclient.Describe(ctx, c, id)
		if err == nil {
			fmt.Print(st)
			return nil
		}
		if vogclient.Final(err) || time.Now().After(deadline) || ctx.Err() != nil {
			return err
		}
		fmt.Fprintf(os.Stderr, "waiting for the Temporal server: %v\n", err)
		time.Sleep(2 * time.Second)
	}
}

func waitCmd(ctx context.Context, args []string) error {
	c, id, every, err := jobCmd("wait", args)
	if err != nil {
		return err
	}
	defer c.Close()
	return follow(ctx, c, id, every)
}

// follow waits for job id with progress lines, then reports its result.
func follow(ctx context.Context, c client.Client, id string, every time.Duration) error {
	started := time.Now()
	fmt.Fprintf(os.Stderr, "job %s: waiting for it to finish (an interrupt stops the waiting, not the job)\n", id)
	res, err := vogclient.Follow(ctx, c, id, os.Stderr, every)
	if err != nil {
		return followErr(ctx, id, err, "it goes on: vog wait "+id+" follows it again")
	}
	return reportResult(id, res, res.Ref.Out, jobTime(c, id, started))
}

// followErr is the error of following job id: the job's failure, or, when
// the user interrupted the wait (ctx done), that the job was not followed
// to its end, and what becomes of it.
func followErr(ctx context.Context, id string, err error, after string) error {
	if ctx.Err() != nil {
		return fmt.Errorf("stopped waiting for job %s (%v); %s", id, context.Cause(ctx), after)
	}
	return fmt.Errorf("job %s failed: %w", id, err)
}

// jobTime is how long job id ran, by the server's clock (vog wait may
// attach to a job near its end); the time since started where the server
// does not say.
func jobTime(c client.Client, id string, started time.Time) time.Duration {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	d, err := c.DescribeWorkflowExecution(ctx, id, "")
	if err != nil {
		return time.Since(started)
	}
	info := d.GetWorkflowExecutionInfo()
	if info.GetStartTime() == nil || info.GetCloseTime() == nil {
		return time.Since(started)
	}
	return info.GetCloseTime().AsTime().Sub(info.GetStartTime().AsTime())
}

func resumeCmd(ctx context.Context, args []string) error {
	c, id, every, err := jobCmd("resume", args)
	if err != nil {
		return err
	}
	defer c.Close()
	in, err := vogclient.Input(ctx, c, id)
	if err != nil {
		return err
	}
	if _, err := vogclient.Submit(ctx, c, in); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "job %s resumed: finished shards are reused\n", id)
	return follow(ctx, c, id, every)
}
