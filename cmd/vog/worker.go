package main

import (
	"context"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/vogscore/vog/worker"
)

func workerCmd(ctx context.Context, args []string) error {
	fs := newFlags("worker", "--temporal HOST:PORT [flags]")
	var (
		tf     temporalFlags
		ef     engineFlags
		queues string
	)
	fs.StringVar(&queues, "queue", "gradient,reduce", "kinds of work to take: gradient, reduce, or both")
	tf.register(fs.FlagSet)
	ef.register(fs.FlagSet)
	if err := parse(fs, args); err != nil {
		return err
	}
	if tf.hostPort == "" {
		return usagef("--temporal: missing (or set TEMPORAL_ADDRESS)")
	}
	ef.cfg.Queues = strings.Split(queues, ",")
	// The engine and its devices first: a missing library or device is
	// reported at once, and the first line says where the models compute.
	devices, err := worker.Devices(ef.cfg)
	if err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "vog worker: %s; connecting to %s\n", workDescription(ef.cfg.Queues, devices), tf.hostPort)
	ef.cfg.Leases = worker.NewLeases()
	tf.leases = ef.cfg.Leases
	c, err := tf.dialPatiently(ctx, 2*time.Minute)
	if err != nil {
		return err
	}
	defer c.Close()
	w, err := worker.Start(c, ef.cfg)
	if err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "vog worker: serving %s work from %s\n", queues, tf.hostPort)
	<-ctx.Done()
	w.Stop()
	return nil
}

// workDescription says what work a worker takes, and where its gradient
// work computes: "gradient work on cpu, reduce work".
func workDescription(queues, devices []string) string {
	var parts []string
	for _, q := range queues {
		if q == worker.QueueGradient && len(devices) > 0 {
			q += " work on " + strings.Join(devices, ",")
		} else {
			q += " work"
		}
		parts = append(parts, q)
	}
	return strings.Join(parts, ", ")
}
