package torch

import "github.com/vogscore/vog/engine"

// ForceStage makes a CPU loader's models stage batches through vog_stage as
// they do on CUDA, so that path is tested without a GPU.
func ForceStage(l engine.Loader) engine.Loader {
	ld := l.(loader)
	ld.stage = true
	return ld
}

// ResolveDeviceWith is resolveDevice: Auto's resolution for a given number
// of CUDA devices, tested without a GPU.
func ResolveDeviceWith(device string, cudaDevices int) string {
	return resolveDevice(device, func() int { return cudaDevices })
}
