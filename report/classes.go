package report

import (
	"fmt"
	"slices"
	"strings"
)

// FashionMNIST names Fashion-MNIST's ten classes in label order.
var FashionMNIST = []string{"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"}

// CIFAR10 names CIFAR-10's ten classes in label order.
var CIFAR10 = []string{"airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"}

// BuiltinClasses are the class lists vog report's --classes takes by name.
var BuiltinClasses = map[string][]string{
	"fashion-mnist": FashionMNIST,
	"cifar10":       CIFAR10,
}

// ParseClasses reads a classes file: one name per line, line i naming
// class i. Surrounding spaces and a CR are trimmed; blank lines at the end
// are ignored, and a blank line before a name is an error (it would shift
// every later name by one class).
func ParseClasses(data []byte) ([]string, error) {
	lines := strings.Split(string(data), "\n")
	for i := range lines {
		lines[i] = strings.TrimSpace(lines[i])
	}
	for len(lines) > 0 && lines[len(lines)-1] == "" {
		lines = lines[:len(lines)-1]
	}
	if len(lines) == 0 {
		return nil, fmt.Errorf("no class names: want one name per line, class 0 first")
	}
	for i, l := range lines {
		if l == "" {
			return nil, fmt.Errorf("line %d is empty: want one name per line, class 0 first, none left out", i+1)
		}
	}
	return lines, nil
}

// fashionMNISTStarts are the first labels of Fashion-MNIST's training and
// test sets, in the files' order (train-labels-idx1-ubyte, t10k-labels-idx1-ubyte).
var fashionMNISTStarts = [][]int32{
	{9, 0, 0, 3, 0, 2, 7, 2, 5, 5, 0, 9, 5, 5, 7, 9, 1, 0, 6, 4, 3, 1, 4, 8, 4, 3, 0, 2, 4, 4, 5, 3},
	{9, 2, 1, 1, 6, 1, 4, 6, 5, 7, 4, 5, 7, 3, 4, 1, 2, 4, 8, 0, 2, 5, 7, 9, 1, 4, 6, 0, 9, 3, 8, 8},
}

// MinDetectLabels is the fewest leading labels IsFashionMNIST compares: 16
// labels of 10 classes agree by chance once in 10^16.
const MinDetectLabels = 16

// DetectLabels is the number of leading labels IsFashionMNIST looks at.
const DetectLabels = 32

// IsFashionMNIST reports whether a dataset whose first labels are first
// (up to DetectLabels of them, in the dataset's order) is Fashion-MNIST's
// training or test set, or a subset of one that keeps its beginning: its
// labels start as one of theirs does. A dataset of fewer than
// MinDetectLabels examples is never recognised.
func IsFashionMNIST(first []int32) bool {
	first = first[:min(len(first), DetectLabels)]
	if len(first) < MinDetectLabels {
		return false
	}
	for _, start := range fashionMNISTStarts {
		if slices.Equal(first, start[:len(first)]) {
			return true
		}
	}
	return false
}
