package job

import (
	"fmt"
	"strings"
)

// What a job asks the gradient engine to compute: of which input shape,
// which scalar's gradient, in which precision. They belong to the contract
// (job.json names them); package engine computes with the same types.

// Shape is the shape of one input example: channels, height, width.
type Shape struct{ C, H, W int }

// Len returns the number of values in one example.
func (s Shape) Len() int { return s.C * s.H * s.W }

// Pixels returns the number of values in one channel-averaged gradient map.
func (s Shape) Pixels() int { return s.H * s.W }

func (s Shape) String() string { return fmt.Sprintf("%dx%dx%d", s.C, s.H, s.W) }

// Target is the scalar whose input gradient is taken for each example and
// its class p: p's pre-softmax logit (the paper's Eq. 1, the authors'
// ImageNet and CIFAR code), p's softmax probability (the authors' toy,
// bounded), or the cross-entropy loss of p.
type Target int

// Targets, in the order of their values, which are also their codes in
// the engine library's C interface (package engine).
const (
	TargetLogit Target = iota
	TargetProb
	TargetLoss
)

// Targets names the targets, by value.
var Targets = []string{"logit", "prob", "loss"}

func (t Target) String() string {
	if t < 0 || int(t) >= len(Targets) {
		return fmt.Sprintf("Target(%d)", int(t))
	}
	return Targets[t]
}

// ParseTarget returns the target of a name in Targets; "" is the logit.
func ParseTarget(name string) (Target, error) {
	if name == "" {
		return TargetLogit, nil
	}
	for i, n := range Targets {
		if n == name {
			return Target(i), nil
		}
	}
	return 0, fmt.Errorf("--target %q: want one of %s", name, strings.Join(Targets, ", "))
}

// Precisions are the precisions a job may compute in: float32 (the
// default), TF32 matmuls and convolutions (CUDA), bfloat16 weights and
// inputs. The order is the engine's: each one's index is its code in the
// engine library's C interface.
var Precisions = []string{"fp32", "tf32", "bf16"}
