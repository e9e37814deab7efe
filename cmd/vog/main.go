// Command vog ranks the examples of a dataset by Variance of Gradients.
//
//	vog run     score a dataset and wait for the result
//	vog worker  serve gradient and reduce work for a Temporal server
//	vog server  run the embedded Temporal dev server on its own
//	vog submit  start a job on a Temporal server and print its id
//	vog status  show a job's shards, rate, ETA and errors
//	vog wait    follow a job to its end
//	vog resume  run a job again, computing only what is missing
//	vog eval    AUROC, AUPR and Welch's t-test of each score against a truth file
//	vog report  one HTML page: hardest and easiest examples, error by VoG decile, histograms
//	vog watch   score a training run's checkpoints as they appear, and the run when it ends
//	vog schedule  score each training run under a folder once it has finished
//
// vog --help and vog CMD --help print usage on stdout and exit 0; a usage
// error exits 2 and a failure 1, each with one line on stderr.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	_ "gocloud.dev/blob/azureblob"
	_ "gocloud.dev/blob/fileblob"
	_ "gocloud.dev/blob/gcsblob"
	_ "gocloud.dev/blob/memblob"
	_ "gocloud.dev/blob/s3blob"
)

const usage = `vog ranks every example of a dataset by Variance of Gradients.

Usage:
  vog run    --format FORMAT --dataset URL --checkpoints LIST --out URL [flags]
  vog worker --temporal HOST:PORT [--queue gradient,reduce] [flags]
  vog server [--port 7233] [--state-dir DIR]
  vog submit --temporal HOST:PORT [run flags]     start a job, print its id
  vog status|wait|resume --temporal HOST:PORT JOB
  vog eval --out URL --truth URL [--column NAME]  how well each score separates flagged examples
  vog report --out URL                            write report.html beside the result
  vog watch --run URL --out URL [run flags]       score a training run's checkpoints as they appear
  vog watch --add CKPT|--finish --run URL --out URL
  vog schedule create NAME --every D --runs URL --out-prefix URL [run flags]
  vog schedule list|describe|pause|unpause|trigger|delete [NAME] --temporal HOST:PORT
  vog --version                                   vog's version and its engine's libtorch

Run 'vog COMMAND --help' for a command's flags.
`

var commands = map[string]func(context.Context, []string) error{
	"run":      runCmd,
	"worker":   workerCmd,
	"server":   serverCmd,
	"submit":   submitCmd,
	"status":   statusCmd,
	"wait":     waitCmd,
	"resume":   resumeCmd,
	"eval":     evalCmd,
	"report":   reportCmd,
	"watch":    watchCmd,
	"schedule": scheduleCmd,
}

func main() {
	if len(os.Args) < 2 {
		fmt.Fprint(os.Stderr, usage)
		os.Exit(2)
	}
	name := os.Args[1]
	switch name {
	case "-h", "-help", "--help", "help":
		fmt.Print(usage)
		return
	case "-version", "--version", "version":
		printVersion()
		return
	}
	cmd, ok := commands[name]
	if !ok {
		fmt.Fprintf(os.Stderr, "vog: unknown command %q (see 'vog --help')\n", name)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := cmd(ctx, os.Args[2:])
	stop()
	os.Exit(exitCode(name, err))
}
