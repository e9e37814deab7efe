#!/usr/bin/python3
"""A complete training script whose last line submits its run to vog: a
small CNN on the fixture images (testdata/fmnist/small-*), a state dict
saved each epoch as training scripts save them, the architecture exported
once as TorchScript, then vog_submit.submit. vog's test runs it twice
against a server (the second time, as a rerun of the finished script, it
only submits) and checks that the second submit is a no-op.

Usage: train_and_submit.py RUNDIR OUT  (TEMPORAL_ADDRESS, VOG_BIN set)
"""
import gzip
import os
import struct
import sys

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from vog_submit import submit  # noqa: E402

FIXTURES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "testdata", "fmnist")


def read_idx(path):
    with gzip.open(path, "rb") as f:
        data = f.read()
    ndim = struct.unpack(">i", data[:4])[0] & 0xFF
    dims = struct.unpack(">" + "i" * ndim, data[4:4 + 4 * ndim])
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3, padding=1)
        self.fc = nn.Linear(4 * 14 * 14, 10)

    def forward(self, x):
        return self.fc(F.max_pool2d(F.relu(self.conv(x)), 2).flatten(1))


def main(run, out):
    model = os.path.join(run, "..", "model.pt")
    if not os.path.exists(model):  # a rerun of a finished script only submits
        train(run, model)
    # The last line of the training script:
    print(submit(checkpoints=run, model=model, out=out,
                 dataset=os.path.join(FIXTURES, "small"), format="idx"))


def train(run, model):
    torch.manual_seed(0)
    x = torch.from_numpy(read_idx(os.path.join(FIXTURES, "small-images-idx3-ubyte.gz")).astype(np.float32) / 255).unsqueeze(1)
    y = torch.from_numpy(read_idx(os.path.join(FIXTURES, "small-labels-idx1-ubyte.gz")).astype(np.int64))
    net = Net()
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    os.makedirs(run, exist_ok=True)
    for epoch in range(1, 4):
        for s in range(0, len(x), 32):
            opt.zero_grad()
            F.cross_entropy(net(x[s:s + 32]), y[s:s + 32]).backward()
            opt.step()
        torch.save(net.state_dict(), os.path.join(run, f"epoch_{epoch}.pt"))
    torch.jit.script(net.eval()).save(model)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
