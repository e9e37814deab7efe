// Package temporalserver runs a single-process Temporal dev server (frontend,
// history, matching and worker services) on loopback with SQLite persistence,
// so that `vog run` needs no service installed by hand.
//
// It is imported only by cmd/vog: building the server takes minutes, and no
// other package should pay for it.
package temporalserver

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	uiserver "github.com/temporalio/ui-server/v2/server"
	"go.temporal.io/server/common/authorization"
	"go.temporal.io/server/common/cluster"
	"go.temporal.io/server/common/config"
	"go.temporal.io/server/common/dynamicconfig"
	"go.temporal.io/server/common/log"
	"go.temporal.io/server/common/membership/static"
	sqliteplugin "go.temporal.io/server/common/persistence/sql/sqlplugin/sqlite"
	"go.temporal.io/server/common/primitives"
	"go.temporal.io/server/schema/sqlite"
	"go.temporal.io/server/temporal"
)

// Namespace is the namespace the server creates and vog uses.
const Namespace = "default"

// Server is a running embedded Temporal server.
type Server struct {
	srv      temporal.Server
	ui       *uiserver.Server
	hostPort string
	lock     *os.File
}

// Options configures Start. The zero value of each field means its default.
type Options struct {
	// DatabaseFile is the SQLite file holding workflow state; it survives
	// restarts. Empty keeps state in memory.
	DatabaseFile string
	// Port is the frontend gRPC port; 0 picks a free one.
	Port int
	// Bind is the address the frontend listens on: "" is 127.0.0.1 (this
	// machine only); 0.0.0.0 or a machine's address lets workers on other
	// machines reach it. The other services stay on 127.0.0.1.
	Bind string
	// UIPort, when not 0, serves Temporal's Web UI for this server on
	// http://Bind:UIPort (Bind's default too).
	UIPort int
	// Logger receives the server's logs; nil discards them.
	Logger log.Logger
	// SuggestContinueAsNew is the history length, in events, from which
	// the server tells a workflow it should continue as new
	// (limit.historyCount.suggestContinueAsNew); 0 is Temporal's 4096.
	// Tests lower it to reach WatchRun's branch for it in seconds.
	SuggestContinueAsNew int
}

// ErrBusy is returned by Start when another process's server holds the
// state directory.
var ErrBusy = errors.New("temporalserver: state directory in use")

// Start starts a server and returns once its frontend accepts connections.
// A server with a DatabaseFile holds a lock on its directory until Stop: a
// second server on the same state fails with ErrBusy, naming the first.
func Start(opts Options) (_ *Server, err error) {
	const ip = "127.0.0.1"
	ports, err := freePorts(ip, 5)
	if err != nil {
		return nil, err
	}
	if opts.Port != 0 {
		ports[0] = opts.Port
	}
	hostPort := fmt.Sprintf("%s:%d", ip, ports[0])
	bind := opts.Bind
	if bind == "" {
		bind = ip
	}
	var lock *os.File
	if opts.DatabaseFile != "" {
		if lock, err = lockState(filepath.Dir(opts.DatabaseFile), hostPort); err != nil {
			return nil, err
		}
		defer func() {
			if err != nil {
				lock.Close()
			}
		}()
	}
	logger := opts.Logger
	if logger == nil {
		logger = log.NewNoopLogger()
	}

	sqlConf := &config.SQL{
		PluginName:   sqliteplugin.PluginName,
		DatabaseName: opts.DatabaseFile,
		// No leading underscore: with one the pragmas are ignored and the
		// server runs 8x slower (docs/design.md, "Measured facts").
		ConnectAttributes: map[string]string{"mode": "rwc", "journal_mode": "wal", "synchronous": "normal"},
	}
	if opts.DatabaseFile == "" {
		sqlConf.DatabaseName = fmt.Sprintf("vog-%d", ports[0])
		sqlConf.ConnectAttributes = map[string]string{"mode": "memory", "cache": "shared"}
	} else {
		if err := os.MkdirAll(filepath.Dir(opts.DatabaseFile), 0o755); err != nil {
			return nil, fmt.Errorf("temporalserver: state directory: %w", err)
		}
		if _, err := os.Stat(opts.DatabaseFile); os.IsNotExist(err) {
			if err := sqlite.SetupSchema(sqlConf); err != nil {
				return nil, fmt.Errorf("temporalserver: set up schema in %s: %w", opts.DatabaseFile, err)
			}
		}
	}
	ns, err := sqlite.NewNamespaceConfig("active", Namespace, false, nil)
	if err != nil {
		return nil, fmt.Errorf("temporalserver: namespace: %w", err)
	}
	if err := sqlite.CreateNamespaces(sqlConf, ns); err != nil {
		return nil, fmt.Errorf("temporalserver: create namespace: %w", err)
	}

	service := func(port int) config.Service {
		return config.Service{RPC: config.RPC{GRPCPort: port, BindOnIP: ip}}
	}
	frontend := service(ports[0])
	frontend.RPC.HTTPPort = ports[4]
	frontend.RPC.BindOnIP = bind
	conf := &config.Config{
		Global: config.Global{Membership: config.Membership{MaxJoinDuration: 30 * time.Second, BroadcastAddress: ip}},
		Persistence: config.Persistence{
			DefaultStore:     "sqlite",
			VisibilityStore:  "sqlite",
			NumHistoryShards: 1,
			DataStores:       map[string]config.DataStore{"sqlite": {SQL: sqlConf}},
		},
		ClusterMetadata: &cluster.Config{
			FailoverVersionIncrement: 10,
			MasterClusterName:        "active",
			CurrentClusterName:       "active",
			ClusterInformation: map[string]cluster.ClusterInformation{
				"active": {Enabled: true, InitialFailoverVersion: 1, RPCAddress: hostPort},
			},
		},
		DCRedirectionPolicy: config.DCRedirectionPolicy{Policy: "noop"},
		Services: map[string]config.Service{
			"frontend": frontend,
			"history":  service(ports[1]),
			"matching": service(ports[2]),
			"worker":   service(ports[3]),
		},
		Archival: config.Archival{
			History:    config.HistoryArchival{State: "disabled"},
			Visibility: config.VisibilityArchival{State: "disabled"},
		},
		NamespaceDefaults: config.NamespaceDefaults{Archival: config.ArchivalNamespaceDefaults{
			History:    config.HistoryArchivalNamespaceDefaults{State: "disabled"},
			Visibility: config.VisibilityArchivalNamespaceDefaults{State: "disabled"},
		}},
		PublicClient: config.PublicClient{HostPort: hostPort},
	}
	authorizer, err := authorization.GetAuthorizerFromConfig(&conf.Global.Authorization)
	if err != nil {
		return nil, fmt.Errorf("temporalserver: authorizer: %w", err)
	}
	claimMapper, err := authorization.GetClaimMapperFromConfig(&conf.Global.Authorization, logger)
	if err != nil {
		return nil, fmt.Errorf("temporalserver: claim mapper: %w", err)
	}
	dyn := dynamicconfig.StaticClient{
		dynamicconfig.FrontendMaxNamespaceVisibilityRPSPerInstance.Key(): 100,
	}
	if opts.SuggestContinueAsNew > 0 {
		dyn[dynamicconfig.HistoryCountSuggestContinueAsNew.Key()] = opts.SuggestContinueAsNew
	}
	srv, err := temporal.NewServer(
		temporal.WithConfig(conf),
		temporal.ForServices(temporal.DefaultServices),
		temporal.WithLogger(logger),
		temporal.WithAuthorizer(authorizer),
		temporal.WithClaimMapper(func(*config.Config) authorization.ClaimMapper { return claimMapper }),
		temporal.WithDynamicConfigClient(dyn),
		// Static membership: with ringpop, a restart on a persisted database
		// waits about 45 s for the previous process's members to expire.
		temporal.WithStaticHosts(map[primitives.ServiceName]static.Hosts{
			primitives.FrontendService: static.SingleLocalHost(hostPort),
			primitives.HistoryService:  static.SingleLocalHost(fmt.Sprintf("%s:%d", ip, ports[1])),
			primitives.MatchingService: static.SingleLocalHost(fmt.Sprintf("%s:%d", ip, ports[2])),
			primitives.WorkerService:   static.SingleLocalHost(fmt.Sprintf("%s:%d", ip, ports[3])),
		}),
	)
	if err != nil {
		return nil, fmt.Errorf("temporalserver: %w", err)
	}
	if err := srv.Start(); err != nil {
		return nil, fmt.Errorf("temporalserver: start: %w", err)
	}
	s := &Server{srv: srv, hostPort: hostPort, lock: lock}
	if opts.UIPort != 0 {
		frontendAddr := net.JoinHostPort(dialable(bind), strconv.Itoa(ports[0]))
		if s.ui, err = startUI(bind, opts.UIPort, frontendAddr); err != nil {
			srv.Stop()
			return nil, err
		}
	}
	return s, nil
}

// Holder returns the address of the server that holds the state directory
// dir, where a running process holds it.
func Holder(dir string) (hostPort string, ok bool) {
	path := filepath.Join(dir, "lock")
	f, err := os.Open(path)
	if err != nil {
		return "", false
	}
	defer f.Close()
	if syscall.Flock(int(f.Fd()), syscall.LOCK_SH|syscall.LOCK_NB) == nil {
		return "", false // nobody holds it
	}
	data, _ := os.ReadFile(path)
	_, rest, found := strings.Cut(string(data), "server on ")
	hostPort, _, _ = strings.Cut(rest, ")")
	return hostPort, found && hostPort != ""
}

// lockState takes the lock of a state directory, writing who holds it.
func lockState(dir, hostPort string) (*os.File, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("temporalserver: state directory: %w", err)
	}
	path := filepath.Join(dir, "lock")
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("temporalserver: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		holder, _ := os.ReadFile(path)
		f.Close()
		return nil, fmt.Errorf("%w: %s is used by %s; wait for it, give another --state-dir, or send work to that server with --temporal",
			ErrBusy, dir, strings.TrimSpace(string(holder)))
	}
	f.Truncate(0)
	fmt.Fprintf(f, "vog (pid %d, server on %s)\n", os.Getpid(), hostPort)
	return f, nil
}

// HostPort returns the frontend address for clients and workers.
func (s *Server) HostPort() string { return s.hostPort }

// Stop stops the server (and its Web UI) and releases its state directory.
func (s *Server) Stop() error {
	if s.ui != nil {
		s.ui.Stop()
		s.ui = nil
	}
	err := s.srv.Stop()
	if s.lock != nil {
		s.lock.Close() // releases the lock
		s.lock = nil
	}
	return err
}

// freePorts reserves n distinct free TCP ports on ip.
func freePorts(ip string, n int) ([]int, error) {
	var ports []int
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	for range n {
		l, err := net.Listen("tcp", ip+":0")
		if err != nil {
			return nil, fmt.Errorf("temporalserver: find a free port: %w", err)
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}
