// Package score holds the pure arithmetic of Variance of Gradients: per-pixel
// moments over checkpoints, the parallel (Chan) merge of partial moments, the
// VoG scalar, and class normalisation.
//
// # The score
//
// For checkpoints t = 1..K and an input x, S_t is the channel-averaged gradient
// of the chosen logit with respect to x, an H x W map. Per pixel the moments
// (n, mean, M2) of S_t over t give the population standard deviation
// sqrt(M2/n); VoG is the mean of that over the pixels. Within each class,
// vog_norm = (VoG - mean_c) / std_c with the population std of the class's
// VoG values, and 0 where that std is 0.
//
// Partial moments merge with Chan's formula, which equals a single pass in
// exact arithmetic and to within rounding in floating point; class
// statistics (ClassMoments) are summed exactly, so they do not depend on
// how examples were split at all (docs/design.md, "Class sums").
package score
