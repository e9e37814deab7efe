#!/usr/bin/python3
"""PIL + torchvision side of vog's BenchmarkPreprocessVsTorchvision
(packages preprocess and dataset), driven by internal/torchvision.

  bench_torchvision.py memory BATCH_IMAGES NCPU FILE...
  bench_torchvision.py imagefolder BATCH_IMAGES NCPU ROOT

memory: the JPEG files are read into memory once, and each image is
decoded from its bytes. imagefolder: torchvision.datasets.ImageFolder(ROOT)
reads each image from its file (PIL's default loader), as a training
script's evaluation loop does.

Then it answers commands on stdin, one a line, with "ok SECONDS
CPU_SECONDS" (wall-clock time, and this process's CPU time: the
DataLoader's workers are other processes):

  ready       start-up done
  single N    preprocess N images (the images in turn) on one core: this
              process pinned to one CPU, torch.set_num_threads(1)
  batch       preprocess BATCH_IMAGES images with a DataLoader of NCPU
              worker processes (batches of 32), the usual way to use
              every core

The transform is ImageNet's evaluation one: Image.open(f).convert("RGB"),
Resize(256), CenterCrop(224), ToTensor(), Normalize(mean, std).
"""

import io
import os
import sys
import time

import torch
import torchvision
import torchvision.transforms as T
from PIL import Image

torch.set_num_threads(1)

mode, batch_images, ncpu = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])

transform = T.Compose(
    [
        T.Resize(256),
        T.CenterCrop(224),
        T.ToTensor(),
        T.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225]),
    ]
)

if mode == "memory":
    datas = []
    for f in sys.argv[4:]:
        with open(f, "rb") as fh:
            datas.append(fh.read())
    count = len(datas)

    def one(i):
        return transform(Image.open(io.BytesIO(datas[i % count])).convert("RGB"))

elif mode == "imagefolder":
    folder = torchvision.datasets.ImageFolder(sys.argv[4], transform=transform)
    count = len(folder)

    def one(i):
        return folder[i % count][0]

else:
    sys.exit(f"bench_torchvision.py: unknown mode {mode!r}")


class Images(torch.utils.data.Dataset):
    def __len__(self):
        return batch_images

    def __getitem__(self, i):
        return one(i)


loader = torch.utils.data.DataLoader(Images(), batch_size=32, num_workers=ncpu, persistent_workers=True)
all_cpus = os.sched_getaffinity(0)
one_cpu = {min(all_cpus)}


def single(n):
    os.sched_setaffinity(0, one_cpu)
    try:
        t0, c0 = time.perf_counter(), time.process_time()
        for i in range(n):
            one(i)
        return time.perf_counter() - t0, time.process_time() - c0
    finally:
        os.sched_setaffinity(0, all_cpus)


def batch():
    # The workers were forked before any pinning; they run one per CPU.
    t0, c0 = time.perf_counter(), time.process_time()
    n = 0
    for x in loader:
        n += x.shape[0]
    assert n == batch_images
    return time.perf_counter() - t0, time.process_time() - c0


for line in sys.stdin:
    cmd = line.split()
    if not cmd:
        continue
    if cmd[0] == "ready":
        sec = (0.0, 0.0)
    elif cmd[0] == "single":
        sec = single(int(cmd[1]))
    elif cmd[0] == "batch":
        sec = batch()
    else:
        print("error unknown command", flush=True)
        continue
    print(f"ok {sec[0]:.6f} {sec[1]:.6f}", flush=True)
