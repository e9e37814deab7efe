package score

import "math"

// Logits are what one checkpoint says of one example, from its logits and
// its true label: the quantities behind the standard difficulty scores.
// With no label (label < 0) every value is NaN and Correct is false.
type Logits struct {
	// PLabel is the softmax probability of the label.
	PLabel float64
	// Margin is the label's logit minus the largest other logit.
	Margin float64
	// Loss is the cross-entropy, -log PLabel.
	Loss float64
	// EL2N is the L2 norm of softmax minus the one-hot label.
	EL2N float64
	// Correct is whether the largest logit is the label's.
	Correct bool
}

// FromLogits computes Logits from one example's logits.
func FromLogits(logits []float32, label int) Logits {
	if label < 0 || label >= len(logits) {
		nan := math.NaN()
		return Logits{PLabel: nan, Margin: nan, Loss: nan, EL2N: nan}
	}
	top, other := math.Inf(-1), math.Inf(-1)
	for c, v := range logits {
		top = max(top, float64(v))
		if c != label {
			other = max(other, float64(v))
		}
	}
	var z float64
	for _, v := range logits {
		z += math.Exp(float64(v) - top)
	}
	logZ := top + math.Log(z)
	var el2n float64
	for c, v := range logits {
		p := math.Exp(float64(v) - logZ)
		if c == label {
			p -= 1
		}
		el2n += p * p
	}
	y := float64(logits[label])
	return Logits{
		PLabel:  math.Exp(y - logZ),
		Margin:  y - other,
		Loss:    logZ - y,
		EL2N:    math.Sqrt(el2n),
		Correct: y == top && y > other,
	}
}

// Scores are the difficulty scores of one example over a window of
// checkpoints, besides VoG.
type Scores struct {
	// Loss and EL2N are at the window's last checkpoint.
	Loss, EL2N float64
	// ConfMean and ConfStd are the mean and population std over the window
	// of PLabel (Data Maps' confidence and variability).
	ConfMean, ConfStd float64
	// MarginMean is the mean Margin over the window.
	MarginMean float64
	// Forgetting counts checkpoints where the example went from correct to
	// wrong, between consecutive checkpoints of the window.
	Forgetting int32
	// GradNorm is the mean over the window of the L2 norm of the
	// channel-averaged input gradient of the target logit.
	GradNorm float64
	// CorrectLast is Correct at the window's last checkpoint.
	CorrectLast bool
}

// WindowScores combines per-checkpoint Logits and gradient norms of one
// example over a window (in checkpoint order).
func WindowScores(logits []Logits, gradNorms []float64) Scores {
	var conf, margin Moments
	var s Scores
	for i, l := range logits {
		conf.Add(l.PLabel)
		margin.Add(l.Margin)
		if i > 0 && logits[i-1].Correct && !l.Correct {
			s.Forgetting++
		}
	}
	last := logits[len(logits)-1]
	s.Loss, s.EL2N, s.CorrectLast = last.Loss, last.EL2N, last.Correct
	s.ConfMean, s.ConfStd, s.MarginMean = conf.Mean, conf.Std(), margin.Mean
	var g float64
	for _, v := range gradNorms {
		g += v
	}
	s.GradNorm = g / float64(len(gradNorms))
	return s
}

// L2 returns the Euclidean norm of v.
func L2(v []float32) float64 {
	var s float64
	for _, x := range v {
		s += float64(x) * float64(x)
	}
	return math.Sqrt(s)
}
