#!/usr/bin/python3
"""Makes vog's Fashion-MNIST fixtures with real PyTorch (Debian python3-torch).

Trains a small CNN on the real Fashion-MNIST training set and saves
TorchScript checkpoints ckpt_1.pt .. ckpt_12.pt (every quarter epoch for 3
epochs; the names need natural ordering: ckpt_10 comes after ckpt_9). Then
writes, for the first 256 test images, a small IDX dataset (small-*).
reference.py computes the values tests compare vog with, on the machine
that runs them (floating point differs between CPUs).

Run from the repository root:  /usr/bin/python3 testdata/fmnist/make_fixtures.py
"""
import gzip
import json
import os
import struct

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

SRC = "/usr/share/datasets/fashion-mnist"
HERE = os.path.dirname(os.path.abspath(__file__))
CKPT = os.path.join(HERE, "ckpt")
SMALL = 256


def read_idx(path):
    with gzip.open(path, "rb") as f:
        data = f.read()
    magic, = struct.unpack(">i", data[:4])
    ndim = magic & 0xFF
    dims = struct.unpack(">" + "i" * ndim, data[4:4 + 4 * ndim])
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def write_idx(path, arr):
    header = struct.pack(">i", 0x0800 | arr.ndim) + struct.pack(">" + "i" * arr.ndim, *arr.shape)
    # mtime=0 keeps the gzip bytes reproducible.
    with gzip.GzipFile(path, "wb", mtime=0) as f:
        f.write(header + arr.astype(np.uint8).tobytes())


class SmallCNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 8, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(8)
        self.conv2 = nn.Conv2d(8, 16, 3, padding=1)
        self.fc = nn.Linear(16 * 7 * 7, 10)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.bn1(self.conv1(x))), 2)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        return self.fc(x.flatten(1))


def to_input(images):
    return torch.from_numpy(images.astype(np.float32) / 255.0).unsqueeze(1)


def train():
    torch.manual_seed(0)
    np.random.seed(0)
    x = to_input(read_idx(f"{SRC}/train-images-idx3-ubyte.gz"))
    y = torch.from_numpy(read_idx(f"{SRC}/train-labels-idx1-ubyte.gz").astype(np.int64))
    model = SmallCNN()
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    os.makedirs(CKPT, exist_ok=True)
    batch, saved = 128, 0
    steps = (len(x) + batch - 1) // batch
    save_at = {steps * q // 4 for q in range(1, 5)}  # after each quarter epoch
    for epoch in range(3):
        perm = torch.randperm(len(x))
        model.train()
        for step in range(1, steps + 1):
            idx = perm[(step - 1) * batch:step * batch]
            loss = F.cross_entropy(model(x[idx]), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            if step in save_at:
                saved += 1
                model.eval()
                torch.jit.trace(model, x[:2]).save(os.path.join(CKPT, f"ckpt_{saved}.pt"))
                model.train()
                print(f"epoch {epoch} step {step}: loss {loss.item():.3f} -> ckpt_{saved}.pt", flush=True)
    return saved


def main():
    torch.set_num_threads(2)
    k = len([f for f in os.listdir(CKPT) if f.endswith(".pt")]) if os.path.isdir(CKPT) else 0
    if k != 12:
        k = train()
    images = read_idx(f"{SRC}/t10k-images-idx3-ubyte.gz")[:SMALL]
    labels = read_idx(f"{SRC}/t10k-labels-idx1-ubyte.gz")[:SMALL]
    write_idx(os.path.join(HERE, "small-images-idx3-ubyte.gz"), images)
    write_idx(os.path.join(HERE, "small-labels-idx1-ubyte.gz"), labels)
    print(f"wrote fixtures for {SMALL} examples and {k} checkpoints")


if __name__ == "__main__":
    main()
