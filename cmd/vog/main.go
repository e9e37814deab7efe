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
	"slices"
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

Flags may come before or after a command's arguments. Run 'vog COMMAND --help'
(or 'vog help COMMAND') for a command's flags.
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

// s3Attempts is how many times the S3 client tries a request (its own
// default is 3), unless $AWS_MAX_ATTEMPTS says: under load S3 answers 503
// SlowDown, and connections reset; with 3 tries a job of a few thousand
// requests failed one now and then, and an activity retried for it
// recomputes a whole shard (docs/reliability.md).
const s3Attempts = "10"

func main() {
	if os.Getenv("AWS_MAX_ATTEMPTS") == "" {
		os.Setenv("AWS_MAX_ATTEMPTS", s3Attempts)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := vogMain(ctx, os.Args[1:])
	stop()
	os.Exit(code)
}

// vogMain runs the command args name and returns the exit status.
func vogMain(ctx context.Context, args []string) int {
	name, err := dispatch(ctx, args)
	return exitCode(name, err)
}

// dispatch runs the command args name and returns its error and the name
// its messages go by: the command, "schedule SUB", or "" for vog itself.
func dispatch(ctx context.Context, args []string) (string, error) {
	if len(args) == 0 {
		fmt.Fprint(os.Stderr, usage)
		return "", usagef("want a command")
	}
	name := args[0]
	switch name {
	case "-h", "-help", "--help", "help":
		if len(args) > 1 && (commands[args[1]] != nil || args[1] == "version") { // vog help CMD [SUB]: vog CMD [SUB] --help
			return dispatch(ctx, append(slices.Clone(args[1:]), "--help"))
		}
		fmt.Fprint(stdout, usage)
		return "", errHelp
	case "-version", "--version", "version":
		if len(args) > 1 && slices.Contains([]string{"-h", "-help", "--help"}, args[1]) {
			fmt.Fprintln(stdout, "Usage: vog version\n\nPrints vog's version, its scoring code's version and its engine's libtorch.")
			return "", errHelp
		}
		printVersion()
		return "", nil
	}
	cmd, ok := commands[name]
	if !ok {
		return "", usagef("unknown command %q", name)
	}
	err := cmd(ctx, args[1:])
	if name == "schedule" && len(args) > 1 && slices.Contains(scheduleSubs, args[1]) {
		name += " " + args[1] // its errors point to vog schedule SUB --help
	}
	return name, err
}
