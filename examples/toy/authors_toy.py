#!/usr/bin/python3
"""The authors' toy experiment (Agarwal et al., Fig. 1), as their
toy_script.py runs it, made for vog.

github.com/chirag126/VOG, toy_script.py: scikit-learn's make_blobs(500
points, 3 blobs, std 2) with numpy's seed 212, the first 450 for training;
blob 0 is class 0 and blobs 1 and 2 are class 1. A two-layer network with
no activation (Linear(2, 10), Linear(10, 2): a linear model), weights drawn
from N(0, 1) after torch.manual_seed(0) for each layer, biases 0, trained
full-batch with SGD (lr 0.001) on the cross-entropy for 15 epochs; the
gradients are taken after every step, so there is a checkpoint after each.

make_blobs is reproduced with numpy as scikit-learn draws it (no PyPI
here): centres uniform in [-10, 10)^2, then each blob's points normal
around its centre, then a shuffle, all from numpy's global generator.

Points are 1x2 "images" in IDX files: coordinates quantised to bytes over
[-20, 20] (a step of 0.16, for blobs of std 2), which vog maps back with
--mean 0.5 --std 0.025; the model is trained on those same coordinates.

distance.csv holds each training point's distance to the last checkpoint's
decision boundary (a line: the model is linear) and, for each --target and
window, VoG computed here with autograd, for the test to compare with.
boundary.txt holds the line, normalised as the authors' script writes
theirs (0.2471 x + y - 0.0124 = 0).

Usage: authors_toy.py OUTDIR
"""
import gzip
import os
import struct
import sys

import numpy as np
import torch

N, TRAIN, EPOCHS, RANGE = 500, 450, 15, 20.0
WINDOWS = {"early": (0, 5), "middle": (5, 10), "late": (10, 15), "all": (0, 15)}
TARGETS = {
    "logit": lambda out, t: out.gather(1, t),
    "prob": lambda out, t: torch.softmax(out, 1).gather(1, t),
    "loss": lambda out, t: -torch.log_softmax(out, 1).gather(1, t),
}


def make_blobs(n, centers=3, std=2.0, box=(-10.0, 10.0)):
    """scikit-learn's make_blobs(n_samples=n, n_features=2, cluster_std=std,
    shuffle=True) on numpy's global RandomState."""
    gen = np.random.mtrand._rand
    c = gen.uniform(box[0], box[1], size=(centers, 2))
    per = [n // centers] * centers
    for i in range(n % centers):
        per[i] += 1
    x = np.concatenate([gen.normal(loc=c[i], scale=std, size=(k, 2)) for i, k in enumerate(per)])
    y = np.concatenate([[i] * k for i, k in enumerate(per)])
    idx = np.arange(n)
    gen.shuffle(idx)
    return x[idx], y[idx]


class Feedforward(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = torch.nn.Linear(2, 10)
        self.fc2 = torch.nn.Linear(10, 2)

    def forward(self, x):
        return self.fc2(self.fc1(x.flatten(1)))  # no activation, as theirs


def write_idx(path, arr):
    header = struct.pack(">i", 0x0800 | arr.ndim) + struct.pack(">" + "i" * arr.ndim, *arr.shape)
    with gzip.GzipFile(path, "wb", mtime=0) as f:
        f.write(header + arr.astype(np.uint8).tobytes())


def main(out):
    os.makedirs(os.path.join(out, "ckpt"), exist_ok=True)
    np.random.seed(212)
    pts, blob = make_blobs(N)
    pts, blob = pts[:TRAIN], blob[:TRAIN]
    labels = (blob != 0).astype(np.int64)  # blobs 1 and 2 are class 1
    q = np.clip(np.round((pts + RANGE) / (2 * RANGE) * 255), 0, 255).astype(np.uint8)
    write_idx(os.path.join(out, "toy-images-idx3-ubyte.gz"), q.reshape(-1, 1, 2))
    write_idx(os.path.join(out, "toy-labels-idx1-ubyte.gz"), labels)
    # What vog feeds the model: (byte/255 - 0.5) / 0.025, in float32.
    x = ((torch.from_numpy(q).float() / 255 - 0.5) / 0.025).view(-1, 1, 1, 2)
    y = torch.from_numpy(labels)

    model = Feedforward()
    for layer in (model.fc1, model.fc2):
        torch.manual_seed(0)
        layer.weight.data.normal_(0.0, 1)
        layer.bias.data.fill_(0)
    opt = torch.optim.SGD(model.parameters(), lr=0.001)
    for epoch in range(1, EPOCHS + 1):
        model.train()
        opt.zero_grad()
        torch.nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
        torch.jit.trace(model.eval(), x[:2]).save(os.path.join(out, "ckpt", f"epoch_{epoch}.pt"))

    # VoG of every target and window, from the checkpoints, with autograd.
    models = [torch.jit.load(os.path.join(out, "ckpt", f"epoch_{e}.pt")).eval() for e in range(1, EPOCHS + 1)]
    ref = {}
    for kind, scalar in TARGETS.items():
        maps = []
        for m in models:
            xi = x.clone().requires_grad_(True)
            g, = torch.autograd.grad(scalar(m(xi), y.view(-1, 1)).sum(), xi)
            maps.append(g.view(len(x), -1).double().numpy())
        maps = np.stack(maps)
        for name, (lo, hi) in WINDOWS.items():
            w = maps[lo:hi]
            ref[f"{kind}_{name}"] = np.sqrt(((w - w.mean(0)) ** 2).mean(0)).mean(1)

    # The last checkpoint's boundary: logit 1 - logit 0 = a.x + c = 0.
    w1, b1 = model.fc1.weight.detach().double().numpy(), model.fc1.bias.detach().double().numpy()
    w2, b2 = model.fc2.weight.detach().double().numpy(), model.fc2.bias.detach().double().numpy()
    d = w2[1] - w2[0]
    a, c = d @ w1, d @ b1 + b2[1] - b2[0]
    xs = x.view(-1, 2).double().numpy()
    dist = np.abs(xs @ a + c) / np.linalg.norm(a)
    with open(os.path.join(out, "boundary.txt"), "w") as f:
        f.write(f"{a[0] / a[1]:.4f} x + y + {c / a[1]:.4f} = 0\n")
    cols = sorted(ref)
    with open(os.path.join(out, "distance.csv"), "w") as f:
        f.write("example_id,distance,label," + ",".join(cols) + "\n")
        for i in range(len(xs)):
            f.write(f"{i},{dist[i]:.9g},{labels[i]}," + ",".join(f"{ref[k][i]:.9g}" for k in cols) + "\n")
    acc = ((xs @ a + c > 0).astype(int) == labels).mean()
    print(f"wrote {len(xs)} points, {EPOCHS} checkpoints; boundary {a[0] / a[1]:.4f} x + y + {c / a[1]:.4f} = 0; accuracy {acc:.3f}")


if __name__ == "__main__":
    main(sys.argv[1])
