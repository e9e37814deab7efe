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
// Nothing here depends on how checkpoints or examples were split: partial
// results merge with the same formula that single updates use.
package score
