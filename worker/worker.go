// Package worker runs vog's Temporal workers: it opens the gradient engine,
// registers the workflow and activities, and polls the gradient and reduce
// task queues.
package worker

import (
	"fmt"
	"runtime"
	"time"

	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/interceptor"
	sdkworker "go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/vogscore/vog/activities"
	"github.com/vogscore/vog/engine"
	"github.com/vogscore/vog/engine/torch"
	"github.com/vogscore/vog/job"
	"github.com/vogscore/vog/workflows"
)

// Queue kinds a worker can serve.
const (
	QueueGradient = "gradient"
	QueueReduce   = "reduce"
)

// Config configures workers. Zero values mean defaults.
type Config struct {
	// Queues lists the kinds of work to take: QueueGradient, QueueReduce;
	// empty means both.
	Queues []string
	// EngineLib is the path of libvogtorch.so; empty searches for it
	// (torch.Find).
	EngineLib string
	// Device is "auto" (the default, also ""): the first CUDA device where
	// the engine library was built against a CUDA torch and one is
	// visible, else the CPU; or "cpu", "cuda" or "cuda:N".
	Device string
	// ChannelsLast stores weights and inputs NHWC (--channels-last).
	ChannelsLast bool
	// Devices, when set, overrides Device: one gradient worker per device,
	// each scoring one shard at a time on its device with its own models.
	// "auto" may be one of them.
	Devices []string
	// Threads is libtorch's thread count; 0 means the number of CPUs.
	Threads int
	// Loader overrides the engine (tests use engine/linear).
	Loader engine.Loader
	// Leases, where set, stops activities whose attempts the server no
	// longer holds for this worker (Leases); the client must be dialed
	// with its UnaryInterceptor.
	Leases *Leases
}

func (c Config) serves(q string) bool {
	if len(c.Queues) == 0 {
		return true
	}
	for _, x := range c.Queues {
		if x == q {
			return true
		}
	}
	return false
}

// Validate names the first bad field by its flag.
func (c Config) Validate() error {
	for _, q := range c.Queues {
		if q != QueueGradient && q != QueueReduce {
			return fmt.Errorf("--queue %q: want %q or %q", q, QueueGradient, QueueReduce)
		}
	}
	if c.Threads < 0 {
		return fmt.Errorf("--threads %d: must not be negative", c.Threads)
	}
	return nil
}

// Workers are started Temporal workers.
type Workers struct {
	ws      []sdkworker.Worker
	devices []string
}

// Devices returns the devices the gradient workers compute on, "auto"
// resolved: empty where they serve no gradient work, or where
// Config.Loader stands in for the engine.
func (w *Workers) Devices() []string { return w.devices }

// Start starts workers on c for the configured queues.
func Start(c client.Client, cfg Config) (*Workers, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	acts := &activities.Activities{Loader: cfg.Loader}
	// Every activity's errors are classified in one place.
	interceptors := []interceptor.WorkerInterceptor{&activities.Interceptor{}}
	if cfg.Leases != nil {
		// Outermost: the classifier sees the context it stopped.
		interceptors = append([]interceptor.WorkerInterceptor{&leaseInterceptor{l: cfg.Leases}}, interceptors...)
	}
	w := &Workers{}
	if cfg.serves(QueueGradient) {
		loaders, devices, err := engines(cfg)
		if err != nil {
			return nil, err
		}
		w.devices = devices
		for _, l := range loaders {
			ga := &activities.Activities{Loader: l}
			// One shard at a time per device: the engine uses every
			// thread, and each device has its own worker and models.
			gw := sdkworker.New(c, job.GradientQueue, sdkworker.Options{
				MaxConcurrentActivityExecutionSize: 1,
				BuildID:                            job.Version, // else the SDK hashes the 200 MB binary
				Interceptors:                       interceptors,
				// Heartbeats carry progress: send them often enough for a
				// live rate and ETA, not every batch.
				MaxHeartbeatThrottleInterval:     5 * time.Second,
				DefaultHeartbeatThrottleInterval: 5 * time.Second,
			})
			gw.RegisterActivity(ga)
			w.ws = append(w.ws, gw)
		}
	}
	if cfg.serves(QueueReduce) {
		rw := sdkworker.New(c, job.ReduceQueue, sdkworker.Options{
			MaxConcurrentActivityExecutionSize: runtime.NumCPU(),
			BuildID:                            job.Version,
			Interceptors:                       interceptors,
		})
		rw.RegisterWorkflowWithOptions(workflows.ScoreJob, workflow.RegisterOptions{Name: job.ScoreJobWorkflow})
		rw.RegisterWorkflowWithOptions(workflows.ScoreShards, workflow.RegisterOptions{Name: job.ScoreShardsWorkflow})
		rw.RegisterWorkflowWithOptions(workflows.WatchRun, workflow.RegisterOptions{Name: job.WatchWorkflow})
		rw.RegisterWorkflowWithOptions(workflows.ScanRuns, workflow.RegisterOptions{Name: job.ScanWorkflow})
		rw.RegisterActivity(acts)
		w.ws = append(w.ws, rw)
	}
	for i, x := range w.ws {
		if err := x.Start(); err != nil {
			for _, y := range w.ws[:i] {
				y.Stop()
			}
			return nil, fmt.Errorf("worker: %w", err)
		}
	}
	return w, nil
}

// engines returns one loader per device of a gradient worker, and the
// devices, "auto" resolved.
func engines(cfg Config) ([]engine.Loader, []string, error) {
	if cfg.Loader != nil {
		return []engine.Loader{cfg.Loader}, nil, nil
	}
	var loaders []engine.Loader
	var devices []string
	for _, dev := range configDevices(cfg) {
		one := cfg
		one.Device = dev
		l, err := OpenEngine(one)
		if err != nil {
			return nil, nil, err
		}
		loaders = append(loaders, l)
		devices = append(devices, resolved(l, dev))
	}
	return loaders, devices, nil
}

// configDevices returns cfg's devices as given: Devices, else Device.
func configDevices(cfg Config) []string {
	if len(cfg.Devices) > 0 {
		return cfg.Devices
	}
	return []string{cfg.Device}
}

// resolved returns the device loader l, opened for dev, computes on.
func resolved(l engine.Loader, dev string) string {
	if d, ok := l.(interface{ Device() string }); ok {
		return d.Device()
	}
	return dev
}

// Devices returns the devices the gradient workers of cfg compute on, with
// "auto" resolved (which opens the engine library, and checks that each
// device is there): one per Config.Devices, else Config.Device. It is
// empty where cfg serves no gradient work, or where Config.Loader stands in
// for the engine.
func Devices(cfg Config) ([]string, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if !cfg.serves(QueueGradient) || cfg.Loader != nil {
		return nil, nil
	}
	lib, err := library(cfg, 0)
	if err != nil {
		return nil, err
	}
	var devices []string
	for _, dev := range configDevices(cfg) {
		d, err := device(lib, dev)
		if err != nil {
			return nil, err
		}
		devices = append(devices, d)
	}
	return devices, nil
}

// device resolves and checks dev ("" is auto) on lib.
func device(lib *torch.Library, dev string) (string, error) {
	if dev == "" {
		dev = torch.Auto
	}
	dev = lib.ResolveDevice(dev)
	return dev, lib.CheckDevice(dev)
}

// CheckEngines opens the engine on each of cfg's devices and checks that
// each computes in precision (one of engine.Precisions), so that a missing
// library or device, or a precision it lacks, is reported before anything
// starts.
func CheckEngines(cfg Config, precision string) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	loaders, _, err := engines(cfg)
	if err != nil || precision == engine.Precisions[0] {
		return err
	}
	for _, l := range loaders {
		pl, ok := l.(engine.PrecisionLoader)
		if !ok {
			return fmt.Errorf("--precision %s: this engine computes only in float32", precision)
		}
		if _, err := pl.WithPrecision(precision); err != nil {
			return err
		}
	}
	return nil
}

// Stop stops the workers, waiting for running activities to return.
func (w *Workers) Stop() {
	for _, x := range w.ws {
		x.Stop()
	}
}

// OpenEngine opens the libtorch engine for cfg's device ("auto"
// resolved) and threads.
func OpenEngine(cfg Config) (engine.Loader, error) {
	threads := cfg.Threads
	if threads == 0 {
		threads = runtime.NumCPU()
	}
	lib, err := library(cfg, threads)
	if err != nil {
		return nil, err
	}
	dev, err := device(lib, cfg.Device)
	if err != nil {
		return nil, err
	}
	return lib.Loader(torch.Options{Device: dev, ChannelsLast: cfg.ChannelsLast})
}

// library opens cfg's engine library, setting libtorch's threads where
// threads > 0.
func library(cfg Config, threads int) (*torch.Library, error) {
	path := cfg.EngineLib
	if path == "" {
		var err error
		if path, err = torch.Find(); err != nil {
			return nil, err
		}
	}
	return torch.Open(path, threads)
}
