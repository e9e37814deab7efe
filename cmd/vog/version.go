package main

import (
	"fmt"
	"runtime"
	"runtime/debug"

	"github.com/vogscore/vog/engine/torch"
	"github.com/vogscore/vog/job"
)

// printVersion prints vog's version, the scoring code's version (part of
// every job's fingerprint), and the engine library's libtorch.
func printVersion() {
	version, rev := "(devel)", ""
	if bi, ok := debug.ReadBuildInfo(); ok {
		if bi.Main.Version != "" {
			version = bi.Main.Version
		}
		var modified bool
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				rev = s.Value
			case "vcs.modified":
				modified = s.Value == "true"
			}
		}
		if len(rev) > 12 {
			rev = rev[:12]
		}
		if rev != "" && modified {
			rev += "+changes"
		}
	}
	fmt.Printf("vog %s", version)
	if rev != "" {
		fmt.Printf(" (commit %s)", rev)
	}
	fmt.Printf(", scoring %s, %s\n", job.Version, runtime.Version())
	path, err := torch.Find()
	if err != nil {
		fmt.Printf("engine: %v\n", err)
		return
	}
	lib, err := torch.Open(path, 0)
	if err != nil {
		fmt.Printf("engine: %v\n", err)
		return
	}
	fmt.Printf("engine: %s (libtorch %s, %d CUDA device(s))\n", path, lib.TorchVersion(), lib.CUDADevices())
}
