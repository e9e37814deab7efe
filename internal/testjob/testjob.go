// Package testjob writes small real inputs for tests: IDX datasets and
// linear-model checkpoints whose VoG is known in closed form.
package testjob

import (
	"encoding/binary"
	"fmt"
	"math"
	"os"
	"path/filepath"

	"github.com/vogscore/vog/engine"
	"github.com/vogscore/vog/engine/linear"
)

// WriteIDX writes <dir>/<name>-images-idx3-ubyte and -labels-idx1-ubyte
// (uncompressed) and returns the prefix to pass as --dataset.
func WriteIDX(dir, name string, h, w int, images [][]byte, labels []byte) (string, error) {
	prefix := filepath.Join(dir, name)
	img := binary.BigEndian.AppendUint32(nil, 0x0803)
	img = binary.BigEndian.AppendUint32(img, uint32(len(images)))
	img = binary.BigEndian.AppendUint32(img, uint32(h))
	img = binary.BigEndian.AppendUint32(img, uint32(w))
	for i, im := range images {
		if len(im) != h*w {
			return "", fmt.Errorf("testjob: image %d has %d pixels, want %d", i, len(im), h*w)
		}
		img = append(img, im...)
	}
	lab := binary.BigEndian.AppendUint32(nil, 0x0801)
	lab = binary.BigEndian.AppendUint32(lab, uint32(len(labels)))
	lab = append(lab, labels...)
	if err := os.WriteFile(prefix+"-images-idx3-ubyte", img, 0o644); err != nil {
		return "", err
	}
	return prefix, os.WriteFile(prefix+"-labels-idx1-ubyte", lab, 0o644)
}

// Dataset returns n images of h x w pixels with labels i % classes; pixel
// values vary with the example so that predictions differ.
func Dataset(n, h, w, classes int) ([][]byte, []byte) {
	images := make([][]byte, n)
	labels := make([]byte, n)
	for i := range images {
		images[i] = make([]byte, h*w)
		for p := range images[i] {
			images[i][p] = byte((i*37 + p*11) % 256)
		}
		labels[i] = byte(i % classes)
	}
	return images, labels
}

// Linear returns k linear checkpoints of the given classes over 1 x h x w
// inputs; weights change from checkpoint to checkpoint.
func Linear(k, classes, h, w int) []linear.Checkpoint {
	out := make([]linear.Checkpoint, k)
	d := h * w
	for t := range out {
		c := linear.Checkpoint{Shape: [3]int{1, h, w}, Weight: make([]float32, classes*d), Bias: make([]float32, classes)}
		for p := range classes {
			for j := range d {
				c.Weight[p*d+j] = float32(math.Sin(float64(1+t*(p+1)+j*(t+2)))) / float32(1+p)
			}
			c.Bias[p] = float32(p) * 0.1
		}
		out[t] = c
	}
	return out
}

// WriteCheckpoints writes checkpoints as <dir>/epoch_<t+1>.pt and returns
// their paths in order.
func WriteCheckpoints(dir string, cs []linear.Checkpoint) ([]string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	var paths []string
	for t, c := range cs {
		p := filepath.Join(dir, fmt.Sprintf("epoch_%d.pt", t+1))
		if err := os.WriteFile(p, c.Marshal(), 0o644); err != nil {
			return nil, err
		}
		paths = append(paths, p)
	}
	return paths, nil
}

// ClassVoG returns the closed-form VoG of an example whose target is class p:
// the gradient of logit p of a linear model is row p of its weight, so VoG is
// the mean over pixels of the population std of that row across checkpoints.
func ClassVoG(cs []linear.Checkpoint, p int) float64 {
	d := len(cs[0].Weight) / len(cs[0].Bias)
	k := float64(len(cs))
	var sum float64
	for j := range d {
		var mu, ss float64
		for _, c := range cs {
			mu += float64(c.Weight[p*d+j])
		}
		mu /= k
		for _, c := range cs {
			x := float64(c.Weight[p*d+j]) - mu
			ss += x * x
		}
		sum += math.Sqrt(ss / k)
	}
	return sum / float64(d)
}

// TargetVoG returns the VoG of an example x (1 x h x w, pixel values as
// the job reads them) whose class is p, for the scalar t of the linear
// checkpoints cs, computed directly: each checkpoint's gradient of t is a
// mix of its weight rows (engine/linear's closed form), then the per-pixel
// population std over checkpoints, averaged over pixels.
func TargetVoG(cs []linear.Checkpoint, x []float64, p int, t engine.Target) float64 {
	d := len(x)
	maps := make([][]float64, len(cs))
	for k, c := range cs {
		classes := len(c.Bias)
		logits := make([]float64, classes)
		for q := range classes {
			logits[q] = float64(float32(float64(c.Bias[q]) + dot(c.Weight[q*d:(q+1)*d], x)))
		}
		coef := make([]float64, classes)
		switch t {
		case engine.TargetLogit:
			coef[p] = 1
		default:
			top := math.Inf(-1)
			for _, v := range logits {
				top = math.Max(top, v)
			}
			var z float64
			for _, v := range logits {
				z += math.Exp(v - top)
			}
			sign := math.Exp(logits[p]-top) / z
			if t == engine.TargetLoss {
				sign = -1
			}
			for q, v := range logits {
				coef[q] = -sign * math.Exp(v-top) / z
			}
			coef[p] += sign
		}
		g := make([]float64, d)
		for q := range classes {
			for j := range g {
				g[j] += coef[q] * float64(c.Weight[q*d+j])
			}
		}
		maps[k] = g
	}
	var sum float64
	for j := range d {
		var mu, ss float64
		for _, g := range maps {
			mu += g[j]
		}
		mu /= float64(len(maps))
		for _, g := range maps {
			ss += (g[j] - mu) * (g[j] - mu)
		}
		sum += math.Sqrt(ss / float64(len(maps)))
	}
	return sum / float64(d)
}

func dot(w []float32, x []float64) float64 {
	var s float64
	for i, v := range w {
		s += float64(v) * x[i]
	}
	return s
}
