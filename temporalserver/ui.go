package temporalserver

import (
	"fmt"
	"net"
	"strconv"
	"time"

	uiserver "github.com/temporalio/ui-server/v2/server"
	uiconfig "github.com/temporalio/ui-server/v2/server/config"
	uioptions "github.com/temporalio/ui-server/v2/server/server_options"
)

// checkUIPort fails with an error, rather than an exit, when the Web UI's
// port is taken: ui-server's Start exits the process on any listen error.
// (Another process could still take the port in between.)
func checkUIPort(addr string) error {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("temporalserver: Web UI port: %w", err)
	}
	return l.Close()
}

// startUI serves Temporal's Web UI (the ui-server module, its assets
// embedded) on bind:port for the frontend at frontend, and returns once it
// accepts connections.
func startUI(bind string, port int, frontend string) (*uiserver.Server, error) {
	addr := net.JoinHostPort(bind, strconv.Itoa(port))
	if err := checkUIPort(addr); err != nil {
		return nil, err
	}
	ui := uiserver.NewServer(uioptions.WithConfigProvider(&uiconfig.Config{
		Host:                bind,
		Port:                port,
		TemporalGRPCAddress: frontend,
		EnableUI:            true,
		DefaultNamespace:    Namespace,
		// Plain HTTP: a Secure CSRF cookie would not reach the server from
		// another machine's browser, and every write action would fail.
		CORS:             uiconfig.CORS{CookieInsecure: true},
		DisableNewsFetch: true,
		HideLogs:         true,
	}))
	// Start blocks until Stop; it returns nil then.
	go ui.Start()
	addr = net.JoinHostPort(dialable(bind), strconv.Itoa(port))
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return ui, nil
		}
		if time.Now().After(deadline) {
			ui.Stop()
			return nil, fmt.Errorf("temporalserver: Web UI on %s: %w", addr, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// dialable returns an address to reach a listener bound to bind: loopback
// for the unspecified address.
func dialable(bind string) string {
	if ip := net.ParseIP(bind); ip == nil || ip.IsUnspecified() {
		return "127.0.0.1"
	}
	return bind
}
