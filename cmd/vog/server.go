package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/vogscore/vog/temporalserver"
)

// serverCmd runs the embedded Temporal dev server on its own, for workers
// and submitters in other processes or on other machines of a small setup.
func serverCmd(ctx context.Context, args []string) error {
	fs := newFlags("server", "[flags]")
	port := fs.Int("port", 7233, "frontend gRPC port on 127.0.0.1")
	stateDir := fs.String("state-dir", defaultStateDir(), "directory of the server's SQLite state")
	if err := parse(fs, args); err != nil {
		return err
	}
	srv, err := temporalserver.Start(temporalserver.Options{
		DatabaseFile: filepath.Join(*stateDir, "temporal.sqlite"),
		Port:         *port,
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "Temporal server on %s (state in %s); stop with Ctrl-C\n", srv.HostPort(), *stateDir)
	<-ctx.Done()
	return srv.Stop()
}
