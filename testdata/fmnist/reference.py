#!/usr/bin/python3
"""Computes, with real PyTorch and NumPy, the values vog's tests compare
with, for the committed Fashion-MNIST fixtures (small-* and ckpt/): run on
the machine of the tests, since floating point differs between CPUs (the
same checkpoints gave VoG 1e-4 apart on two machines).

  reference.json  per example: label, pred (last checkpoint), VoG and
                  class-normalised VoG for --label true and --label
                  predicted; per window (all, early, late) every score
                  column (docs/design.md, "The score", float64 NumPy)
  grads.f32       raw float32 little-endian input gradients, channel-averaged,
                  of the true-label logit: [checkpoint 12][example 8][28*28]
  grads_prob.f32, grads_loss.f32   the same for the softmax probability and
                  the cross-entropy loss (--target prob, loss); reference.json
                  holds VoG and vog_norm of every target under "targets"
  logits.f32      [checkpoint 12][example 8][10]

Usage: /usr/bin/python3 testdata/fmnist/reference.py OUTDIR
"""
import gzip
import json
import os
import struct
import sys

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
CKPT = os.path.join(HERE, "ckpt")
GRAD_EXAMPLES = 8


def read_idx(path):
    with gzip.open(path, "rb") as f:
        data = f.read()
    magic, = struct.unpack(">i", data[:4])
    ndim = magic & 0xFF
    dims = struct.unpack(">" + "i" * ndim, data[4:4 + 4 * ndim])
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def to_input(images):
    return torch.from_numpy(images.astype(np.float32) / 255.0).unsqueeze(1)


# The scalar whose input gradient is taken, per --target: the class's
# logit, its softmax probability, or its cross-entropy loss.
TARGETS = {
    "logit": lambda out, t: out.gather(1, t),
    "prob": lambda out, t: torch.softmax(out, 1).gather(1, t),
    "loss": lambda out, t: -torch.log_softmax(out, 1).gather(1, t),
}


def grads_and_logits(model, x, target, kind="logit"):
    x = x.clone().requires_grad_(True)
    out = model(x)
    g, = torch.autograd.grad(TARGETS[kind](out, target.view(-1, 1)).sum(), x)
    return g.mean(1).detach().numpy().astype(np.float64), out.detach().numpy()


def vog(maps):
    """maps: [K, N, H, W] float64 -> per-example VoG (docs/design.md, "The score")."""
    mu = maps.mean(axis=0)
    sigma = np.sqrt(((maps - mu) ** 2).mean(axis=0))
    return sigma.reshape(sigma.shape[0], -1).mean(axis=1)


def normalise(v, cls):
    out = np.zeros_like(v)
    for c in np.unique(cls):
        m = cls == c
        sd = v[m].std()
        out[m] = 0.0 if sd == 0 else (v[m] - v[m].mean()) / sd
    return out


WINDOWS = {"all": (0, 12), "early": (0, 3), "late": (9, 12)}


def window_scores(maps, logits, labels):
    """Per window (true-label targets): VoG, vog_norm and the other scores,
    written out from their definitions with NumPy. maps: [K, N, H, W],
    logits: [K, N, C] float64."""
    out = {}
    n = labels.shape[0]
    for name, (lo, hi) in WINDOWS.items():
        m, lg = maps[lo:hi], logits[lo:hi]
        v = vog(m)
        z = lg - lg.max(axis=2, keepdims=True)
        p = np.exp(z) / np.exp(z).sum(axis=2, keepdims=True)
        idx = np.arange(n)
        p_label = p[:, idx, labels]                       # [k, N]
        y = lg[:, idx, labels]
        other = lg.copy()
        other[:, idx, labels] = -np.inf
        margin = y - other.max(axis=2)
        correct = (lg.argmax(axis=2) == labels[None, :]) & (margin > 0)
        onehot = np.zeros_like(p[-1])
        onehot[idx, labels] = 1
        gnorm = np.sqrt((m.reshape(hi - lo, n, -1) ** 2).sum(axis=2))  # [k, N]
        out[name] = {
            "vog": v.tolist(),
            "vog_norm": normalise(v, labels).tolist(),
            "loss": (-np.log(p_label[-1])).tolist(),
            "conf_mean": p_label.mean(axis=0).tolist(),
            "conf_std": p_label.std(axis=0).tolist(),
            "margin_mean": margin.mean(axis=0).tolist(),
            "el2n": np.sqrt(((p[-1] - onehot) ** 2).sum(axis=1)).tolist(),
            "forgetting": (correct[:-1] & ~correct[1:]).sum(axis=0).tolist(),
            "grad_norm": gnorm.mean(axis=0).tolist(),
            "correct_last": correct[-1].astype(float).tolist(),
        }
    return out


def write(outdir):
    torch.set_num_threads(2)
    k = len([f for f in os.listdir(CKPT) if f.endswith(".pt")])
    images = read_idx(os.path.join(HERE, "small-images-idx3-ubyte.gz"))
    labels = read_idx(os.path.join(HERE, "small-labels-idx1-ubyte.gz"))
    x = to_input(images)
    y = torch.from_numpy(labels.astype(np.int64))
    models = [torch.jit.load(os.path.join(CKPT, f"ckpt_{i}.pt")).eval() for i in range(1, k + 1)]
    for m in models:
        for p in m.parameters():
            p.requires_grad_(False)
    with torch.no_grad():
        pred = models[-1](x).argmax(1)

    true_maps, pred_maps, logits = [], [], []
    for m in models:
        g, out = grads_and_logits(m, x, y)
        true_maps.append(g)
        logits.append(out)
        pred_maps.append(grads_and_logits(m, x, pred)[0])
    true_maps, pred_maps = np.stack(true_maps), np.stack(pred_maps)
    vog_true, vog_pred = vog(true_maps), vog(pred_maps)
    windows = window_scores(true_maps, np.stack(logits).astype(np.float64), labels.astype(np.int64))
    ref = {
        "checkpoints": [f"ckpt_{i}.pt" for i in range(1, k + 1)],
        "windows": windows,
        "examples": [
            {
                "index": i,
                "label": int(labels[i]),
                "pred": int(pred[i]),
                "vog_true": float(vog_true[i]),
                "vog_norm_true": float(nt),
                "vog_predicted": float(vog_pred[i]),
                "vog_norm_predicted": float(npred),
            }
            for i, (nt, npred) in enumerate(zip(normalise(vog_true, labels), normalise(vog_pred, pred.numpy())))
        ],
    }
    ref["targets"] = {}
    for kind in TARGETS:
        tm = np.stack([grads_and_logits(m, x, y, kind)[0] for m in models])
        pm = np.stack([grads_and_logits(m, x, pred, kind)[0] for m in models])
        vt, vp = vog(tm), vog(pm)
        ref["targets"][kind] = {
            "vog_true": vt.tolist(), "vog_norm_true": normalise(vt, labels).tolist(),
            "vog_predicted": vp.tolist(), "vog_norm_predicted": normalise(vp, pred.numpy()).tolist(),
            "late_vog_true": vog(tm[9:12]).tolist(),
        }
        if kind != "logit":
            tm[:, :GRAD_EXAMPLES].astype("<f4").tofile(os.path.join(outdir, f"grads_{kind}.f32"))
    with open(os.path.join(outdir, "reference.json"), "w") as f:
        json.dump(ref, f, indent=1)
    true_maps[:, :GRAD_EXAMPLES].astype("<f4").tofile(os.path.join(outdir, "grads.f32"))
    np.stack(logits)[:, :GRAD_EXAMPLES].astype("<f4").tofile(os.path.join(outdir, "logits.f32"))


if __name__ == "__main__":
    os.makedirs(sys.argv[1], exist_ok=True)
    write(sys.argv[1])
