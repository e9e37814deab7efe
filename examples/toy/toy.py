#!/usr/bin/python3
"""The paper's toy experiment (Agarwal et al., section 3), made for vog.

Two isotropic Gaussian clusters in the plane; an MLP with one hidden layer of
10 units trained for 15 epochs with SGD; a TorchScript checkpoint after each
epoch. Points are stored as 1x2 "images" in IDX files (coordinates quantised
to bytes, scaled to [0, 1] as vog does), so vog scores them like any data
set. distance.csv holds each point's distance to the decision boundary of the
last checkpoint, found by bisection along the segment to the nearest point
of the other class's prediction, with VoG computed here independently: of
the label's pre-softmax logit (what vog computes, DESIGN section 2), and for
comparison of the label's softmax probability.

Usage: toy.py OUTDIR
"""
import gzip
import os
import struct
import sys

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

N, EPOCHS = 500, 15


def write_idx(path, arr):
    header = struct.pack(">i", 0x0800 | arr.ndim) + struct.pack(">" + "i" * arr.ndim, *arr.shape)
    with gzip.GzipFile(path, "wb", mtime=0) as f:
        f.write(header + arr.astype(np.uint8).tobytes())


def main(out):
    os.makedirs(os.path.join(out, "ckpt"), exist_ok=True)
    rng = np.random.default_rng(0)
    torch.manual_seed(0)
    centres = np.array([[0.35, 0.35], [0.65, 0.65]])
    pts = np.concatenate([rng.normal(c, 0.12, size=(N, 2)) for c in centres])
    labels = np.repeat([0, 1], N)
    q = np.clip(np.round(pts * 255), 0, 255).astype(np.uint8)
    write_idx(os.path.join(out, "toy-images-idx3-ubyte.gz"), q.reshape(-1, 1, 2))
    write_idx(os.path.join(out, "toy-labels-idx1-ubyte.gz"), labels)

    x = torch.from_numpy(q.astype(np.float32) / 255).view(-1, 1, 1, 2)
    y = torch.from_numpy(labels.astype(np.int64))
    model = nn.Sequential(nn.Flatten(), nn.Linear(2, 10), nn.ReLU(), nn.Linear(10, 2))
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    for epoch in range(1, EPOCHS + 1):
        perm = torch.randperm(len(x))
        for s in range(0, len(x), 32):
            idx = perm[s:s + 32]
            loss = F.cross_entropy(model(x[idx]), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
        torch.jit.trace(model.eval(), x[:2]).save(os.path.join(out, "ckpt", f"epoch_{epoch}.pt"))
        model.train()

    # Reference VoG, computed here from the checkpoints (DESIGN section 2:
    # gradient of the label's pre-softmax logit), and for comparison the same
    # with the gradient of the label's softmax probability.
    def vog_of(head):
        maps = []
        for epoch in range(1, EPOCHS + 1):
            m = torch.jit.load(os.path.join(out, "ckpt", f"epoch_{epoch}.pt")).eval()
            xi = x.clone().requires_grad_(True)
            o = head(m(xi))
            g, = torch.autograd.grad(o.gather(1, y.view(-1, 1)).sum(), xi)
            maps.append(g.view(len(x), -1).double().numpy())
        maps = np.stack(maps)
        return np.sqrt(((maps - maps.mean(0)) ** 2).mean(0)).mean(1)
    vog_logit = vog_of(lambda o: o)
    vog_softmax = vog_of(lambda o: torch.softmax(o, 1))

    # Distance to the last checkpoint's boundary: bisect each point's segment
    # to the nearest point predicted as the other class (on a fine grid).
    model.eval()
    f = lambda p: (model(torch.as_tensor(p, dtype=torch.float32).view(-1, 1, 1, 2)).detach().numpy() @ [-1, 1])
    g = np.stack(np.meshgrid(np.linspace(-0.2, 1.2, 400), np.linspace(-0.2, 1.2, 400)), -1).reshape(-1, 2)
    side_g = f(g) > 0
    xs = q.astype(np.float64) / 255
    side = f(xs) > 0
    dist = np.empty(len(xs))
    for i, p in enumerate(xs):
        other = g[side_g != side[i]]
        if len(other) == 0:
            dist[i] = np.inf
            continue
        o = other[np.argmin(((other - p) ** 2).sum(1))]
        lo, hi = 0.0, 1.0
        for _ in range(40):
            mid = (lo + hi) / 2
            if (f((p + mid * (o - p))[None])[0] > 0) == side[i]:
                lo = mid
            else:
                hi = mid
        dist[i] = lo * np.sqrt(((o - p) ** 2).sum())
    with open(os.path.join(out, "distance.csv"), "w") as fh:
        fh.write("example_id,distance,label,vog,vog_softmax\n")
        for i, d in enumerate(dist):
            fh.write(f"{i},{d:.6f},{labels[i]},{vog_logit[i]:.9g},{vog_softmax[i]:.9g}\n")
    print(f"wrote {len(xs)} points, {EPOCHS} checkpoints, distances to {out}")


if __name__ == "__main__":
    main(sys.argv[1])
