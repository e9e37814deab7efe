package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"

	"github.com/vogscore/vog/temporalserver"
)

// serverCmd runs the embedded Temporal dev server on its own, for workers
// and submitters in other processes or on other machines of a small setup.
func serverCmd(ctx context.Context, args []string) error {
	fs := newFlags("server", "[flags]")
	port := fs.Int("port", 7233, "frontend gRPC port")
	bind := fs.String("bind", "127.0.0.1", "address to listen on: 0.0.0.0 (or this machine's address) for workers on other machines")
	stateDir := fs.String("state-dir", defaultStateDir(), "directory of the server's SQLite state")
	uiPort := fs.Int("ui-port", 0, "serve Temporal's Web UI on this port (same address as --bind); 0: none")
	if err := parse(fs, args); err != nil {
		return err
	}
	if net.ParseIP(*bind) == nil {
		return usagef("--bind %q: want an IP address, such as 0.0.0.0", *bind)
	}
	if *uiPort < 0 || *uiPort > 65535 || *uiPort == *port {
		return usagef("--ui-port %d: want a free port other than --port", *uiPort)
	}
	srv, err := temporalserver.Start(temporalserver.Options{
		DatabaseFile: filepath.Join(*stateDir, "temporal.sqlite"),
		Port:         *port,
		Bind:         *bind,
		UIPort:       *uiPort,
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "Temporal server on %s:%d (state in %s); stop with Ctrl-C\n", *bind, *port, *stateDir)
	if *uiPort != 0 {
		host := *bind
		if net.ParseIP(host).IsUnspecified() {
			host, _ = os.Hostname()
		}
		fmt.Fprintf(os.Stderr, "Web UI on http://%s/namespaces/%s/workflows\n",
			net.JoinHostPort(host, strconv.Itoa(*uiPort)), temporalserver.Namespace)
	}
	<-ctx.Done()
	return srv.Stop()
}
