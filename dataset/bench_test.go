package dataset_test

import (
	"fmt"
	"path/filepath"
	"testing"

	"github.com/vogscore/vog/dataset"
	"github.com/vogscore/vog/internal/torchvision"
	"github.com/vogscore/vog/job"
)

// BenchmarkPreprocessVsTorchvision measures what a gradient worker does to
// feed the engine against what a PyTorch evaluation loop does, on the same
// files: an ImageFolder of 32 ImageNet-sized JPEGs (500x375, quality 90,
// torchvision.BenchJPEGs) in 4 classes, preprocessed for a ResNet (shorter
// side 256, centre crop 224, ImageNet mean and std). vog: the job's reader
// (dataset.List, then dataset.NewReader with the listing's JPEG decoder, as
// a worker opens it): each file read through storage, decoded and
// preprocessed by Reader.Read. PIL + torchvision:
// torchvision.datasets.ImageFolder with Resize(256), CenterCrop(224),
// ToTensor(), Normalize. In interleaved rounds ($VOG_BENCH_ROUNDS, default
// 5; torchvision.Compare):
//
//   - one core each: vog reads one row per Read call on one goroutine
//     (GOMAXPROCS 1), torchvision indexes the dataset in a process pinned
//     to one CPU with torch.set_num_threads(1); 96 images a round;
//   - every core each: vog reads batches of 32 rows (Read decodes a batch
//     on every CPU), torchvision iterates a DataLoader with a worker
//     process per CPU and batches of 32; 256 images a round.
//
// It reports the medians of both rates and of vog/torchvision (the ratio
// of images per second; per core also by CPU time, fair on a busy
// machine). Each decoded image serves all K checkpoints of a job, so a GPU
// whose engine computes G examples/s needs G / K / vog-img/s/core cores
// (scripts/gpu-check.sh prints it).
func BenchmarkPreprocessVsTorchvision(b *testing.B) {
	py := torchvision.Need(b)
	rounds := torchvision.Rounds(b, 5)
	const (
		nfiles       = 32
		singleImages = 96  // per round, one core
		batchImages  = 256 // per round, all cores (8 batches of 32)
	)
	root := b.TempDir()
	for i, data := range torchvision.BenchJPEGs(nfiles) {
		writeFile(b, filepath.Join(root, fmt.Sprintf("class%d", i%4), fmt.Sprintf("%02d.jpg", i)), data)
	}
	ctx := b.Context()
	spec := job.Dataset{Format: "imagefolder", URL: root, Preprocess: job.Preprocess{
		Resize: 256, Crop: 224, Mean: []float32{0.485, 0.456, 0.406}, Std: []float32{0.229, 0.224, 0.225}}}
	l, err := dataset.List(ctx, spec)
	if err != nil {
		b.Fatal(err)
	}
	rd, err := dataset.NewReader(ctx, spec, l.Shape, l.JPEGDecoder)
	if err != nil {
		b.Fatal(err)
	}
	defer rd.Close()
	b.Logf("vog decodes JPEGs with %s", l.JPEGDecoder)
	tp := torchvision.Start(b, py, torchvision.ImageFolder, batchImages, root)
	n := l.Shape.Len()
	x := make([]float32, n*torchvision.BatchSize)
	bad := make([]error, torchvision.BatchSize)
	single := func(images int) error {
		for i := range images {
			row := l.Rows[i%nfiles : i%nfiles+1]
			if err := rd.Read(ctx, row, x[:n], bad[:1]); err != nil {
				return err
			}
			if bad[0] != nil {
				return bad[0]
			}
		}
		return nil
	}
	batch := func() error {
		rows := make([]job.IndexRow, torchvision.BatchSize)
		for i := 0; i < batchImages; i += len(rows) {
			for j := range rows {
				rows[j] = l.Rows[(i+j)%nfiles]
			}
			if err := rd.Read(ctx, rows, x, bad); err != nil {
				return err
			}
			for _, err := range bad {
				if err != nil {
					return err
				}
			}
		}
		return nil
	}
	torchvision.Compare(b, tp, rounds, singleImages, single, batch)
}
