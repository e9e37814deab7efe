package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"time"

	"go.temporal.io/sdk/client"
	tlog "go.temporal.io/sdk/log"
	"google.golang.org/grpc"

	"github.com/vogscore/vog/temporalserver"
	"github.com/vogscore/vog/worker"
)

// temporalFlags are the flags that reach a Temporal server.
type temporalFlags struct {
	hostPort  string
	namespace string
	// Temporal Cloud or a TLS-secured server: a client certificate and key
	// (mTLS), or an API key (TLS is then on); the CA that signed the
	// server's certificate, and the name in it, where they are not the
	// system's and the address's.
	tlsCert, tlsKey, apiKey string
	tlsCA, tlsServerName    string
	// quiet silences the SDK's logs: vog run reports failures itself.
	quiet bool
	// leases, set for a client that runs workers, watches its heartbeats
	// (worker.Leases).
	leases *worker.Leases
}

func (t *temporalFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&t.hostPort, "temporal", os.Getenv("TEMPORAL_ADDRESS"), "Temporal frontend host:port (default $TEMPORAL_ADDRESS; without one, vog run and vog watch start an embedded server, and vog watch --add|--finish reach it)")
	fs.StringVar(&t.namespace, "namespace", envOr("TEMPORAL_NAMESPACE", temporalserver.Namespace), "Temporal namespace (default $TEMPORAL_NAMESPACE if set)")
	fs.StringVar(&t.tlsCert, "tls-cert", os.Getenv("TEMPORAL_TLS_CERT"), "client certificate file for mTLS (default $TEMPORAL_TLS_CERT)")
	fs.StringVar(&t.tlsKey, "tls-key", os.Getenv("TEMPORAL_TLS_KEY"), "client key file for mTLS (default $TEMPORAL_TLS_KEY)")
	fs.StringVar(&t.tlsCA, "tls-ca", os.Getenv("TEMPORAL_TLS_CA"), "PEM file of the CA that signed the server's certificate, for a private CA; turns TLS on (default $TEMPORAL_TLS_CA)")
	fs.StringVar(&t.tlsServerName, "tls-server-name", os.Getenv("TEMPORAL_TLS_SERVER_NAME"), "the name the server's certificate holds, where it is not the --temporal host (default $TEMPORAL_TLS_SERVER_NAME)")
	t.apiKey = os.Getenv("TEMPORAL_API_KEY")
	fs.Var(secret{&t.apiKey}, "api-key", "API `key`, e.g. for Temporal Cloud (default $TEMPORAL_API_KEY"+setNote("TEMPORAL_API_KEY")+")")
}

// secret is a flag whose value is never printed: usage texts show only
// whether it is set.
type secret struct{ v *string }

func (s secret) String() string { return "" }

func (s secret) Set(v string) error {
	*s.v = v
	return nil
}

// setNote says whether the environment variable key holds a value,
// without printing it.
func setNote(key string) string {
	if os.Getenv(key) != "" {
		return ", which is set"
	}
	return ""
}

// options returns the client options the flags describe; an error is in
// the flags, not the server.
func (t *temporalFlags) options() (client.Options, error) {
	opts := client.Options{
		HostPort:  t.hostPort,
		Namespace: t.namespace,
		Logger:    sdkLogger(t.quiet),
	}
	if t.leases != nil {
		opts.ConnectionOptions.DialOptions = append(opts.ConnectionOptions.DialOptions, grpc.WithChainUnaryInterceptor(t.leases.UnaryInterceptor()))
	}
	if (t.tlsCert == "") != (t.tlsKey == "") {
		return opts, usagef("--tls-cert and --tls-key: give both or neither")
	}
	if t.tlsCert != "" || t.tlsCA != "" || t.tlsServerName != "" {
		opts.ConnectionOptions.TLS = &tls.Config{ServerName: t.tlsServerName}
	}
	if t.tlsCert != "" {
		cert, err := tls.LoadX509KeyPair(t.tlsCert, t.tlsKey)
		if err != nil {
			return opts, usagef("--tls-cert %s, --tls-key %s: %w", t.tlsCert, t.tlsKey, err)
		}
		opts.ConnectionOptions.TLS.Certificates = []tls.Certificate{cert}
	}
	if t.tlsCA != "" {
		pem, err := os.ReadFile(t.tlsCA)
		if err != nil {
			return opts, usagef("--tls-ca: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return opts, usagef("--tls-ca %s: no PEM certificate in it", t.tlsCA)
		}
		opts.ConnectionOptions.TLS.RootCAs = pool
	}
	if t.apiKey != "" {
		opts.Credentials = client.NewAPIKeyStaticCredentials(t.apiKey)
		if opts.ConnectionOptions.TLS == nil {
			opts.ConnectionOptions.TLS = &tls.Config{}
		}
	}
	return opts, nil
}

func (t *temporalFlags) dial() (client.Client, error) {
	opts, err := t.options()
	if err != nil {
		return nil, err
	}
	c, err := client.Dial(opts)
	if err != nil {
		return nil, fmt.Errorf("--temporal %s: %w", t.hostPort, err)
	}
	return c, nil
}

// dialPatiently retries dial until ctx ends or wait has passed: workers
// often start before their server (a cluster coming up, a restart).
func (t *temporalFlags) dialPatiently(ctx context.Context, wait time.Duration) (client.Client, error) {
	deadline := time.Now().Add(wait)
	if _, err := t.options(); err != nil {
		return nil, err // the flags are wrong: waiting will not help
	}
	for delay := 100 * time.Millisecond; ; delay = min(2*delay, 5*time.Second) {
		c, err := t.dial()
		if err == nil || time.Now().After(deadline) {
			return c, err
		}
		fmt.Fprintf(os.Stderr, "waiting for Temporal at %s: %v\n", t.hostPort, err)
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(delay):
		}
	}
}

// engineFlags configure the gradient engine.
type engineFlags struct{ cfg worker.Config }

func (e *engineFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&e.cfg.EngineLib, "engine-lib", "", "path of libvogtorch.so (default $VOG_ENGINE_LIB, beside vog, or ./build)")
	fs.StringVar(&e.cfg.Device, "device", "auto", "device for the models: auto (the first CUDA device where the engine was built against a CUDA torch and one is visible, else the cpu), cpu, cuda or cuda:N")
	fs.BoolVar(&e.cfg.ChannelsLast, "channels-last", false, "store weights and inputs channels-last (NHWC), which tensor-core convolutions prefer")
	fs.Func("devices", "a comma-separated `list` of devices, one gradient worker each (e.g. cuda:0,cuda:1); overrides --device (default: --device alone)", func(v string) error {
		e.cfg.Devices = strings.Split(v, ",")
		return nil
	})
	fs.IntVar(&e.cfg.Threads, "threads", 0, "libtorch threads (default: number of CPUs)")
}

// sdkLogger keeps the Temporal SDK to warnings and errors, or to nothing.
func sdkLogger(quiet bool) tlog.Logger {
	level := slog.LevelWarn
	if quiet {
		level = slog.LevelError + 100
	}
	return tlog.NewStructuredLogger(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level})))
}

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

// floatList parses comma-separated floats, such as --mean 0.485,0.456,0.406.
type floatList []float32

func (f *floatList) String() string {
	var s []string
	for _, v := range *f {
		s = append(s, strconv.FormatFloat(float64(v), 'g', -1, 32))
	}
	return strings.Join(s, ",")
}

func (f *floatList) Set(v string) error {
	*f = nil
	for _, part := range strings.Split(v, ",") {
		x, err := strconv.ParseFloat(strings.TrimSpace(part), 32)
		if err != nil {
			return fmt.Errorf("%q is not a number", part)
		}
		*f = append(*f, float32(x))
	}
	return nil
}
