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
  vog run    --format idx|imagefolder --dataset URL --checkpoints LIST --out URL [flags]
  vog worker --temporal HOST:PORT [--queue gradient,reduce] [flags]
  vog server [--port 7233] [--state-dir DIR]
  vog submit --temporal HOST:PORT [run flags]     start a job, print its id
  vog status|wait|resume --temporal HOST:PORT JOB
  vog eval --out URL --truth URL [--column NAME]  how well each score separates flagged examples
  vog report --out URL                            write report.html beside the result

Run 'vog COMMAND -h' for a command's flags.
`

func main() {
	if len(os.Args) < 2 {
		fmt.Fprint(os.Stderr, usage)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var err error
	switch os.Args[1] {
	case "run":
		err = runCmd(ctx, os.Args[2:])
	case "worker":
		err = workerCmd(ctx, os.Args[2:])
	case "server":
		err = serverCmd(ctx, os.Args[2:])
	case "submit":
		err = submitCmd(ctx, os.Args[2:])
	case "status":
		err = statusCmd(ctx, os.Args[2:])
	case "wait":
		err = waitCmd(ctx, os.Args[2:])
	case "resume":
		err = resumeCmd(ctx, os.Args[2:])
	case "eval":
		err = evalCmd(ctx, os.Args[2:])
	case "report":
		err = reportCmd(ctx, os.Args[2:])
	case "-h", "--help", "help":
		fmt.Print(usage)
		return
	default:
		fmt.Fprintf(os.Stderr, "vog: unknown command %q\n\n%s", os.Args[1], usage)
		os.Exit(2)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "vog:", err)
		os.Exit(1)
	}
}
