#!/usr/bin/python3
"""The paper's main experiments on Fashion-MNIST, made for vog
(docs/paper.md).

Trains a small CNN with Debian's PyTorch on the CPU (2 threads) on the real
Fashion-MNIST training images of classes 0-7 (t-shirt ... sneaker), with 20%
of the training labels replaced by a different class drawn at random
(seeded), and saves a TorchScript checkpoint every half epoch: 8 epochs, 16
checkpoints, ckpt/ckpt_1.pt .. ckpt_16.pt, and four in the first half
epoch, ckpt_first/first_1.pt .. first_4.pt. It writes, under OUTDIR:

  train-{images,labels}   the 48,000 training images with the labels the
                          model was trained on (20% replaced)
  test-{images,labels}    the 8,000 test images (t10k) of classes 0-7, true labels
  mixed-{images,labels}   an out-of-distribution set: the 8,000 test images of
                          test-* (index 0-7999), then the 2,000 test images of
                          classes 8 and 9, "bag" and "ankle boot", which the
                          model never saw (8000-9999; labels 8 and 9, outside
                          the model's 8 outputs), then 2,000 test images of
                          classes 0-7 with inverted intensities, 255 - x
                          (10000-11999; their true labels)
  truth_replaced.csv      example_id,replaced: training labels replaced
  truth_misclassified.csv example_id,misclassified: test images the last
                          checkpoint gets wrong
  truth_ood_unseen.csv    example_id,ood: mixed 0-7999 (0) and 8000-9999 (1)
  truth_ood_inverted.csv  example_id,ood: mixed 0-7999 (0) and 10000-11999 (1)
  summary.json            sizes, accuracies, the fraction of replaced labels
                          the last checkpoint has memorised, timings

example_id is the IDX index as text, as vog writes it. --quick makes a tiny
version (600 training images in batches of 16, 2 epochs, 4 + 4 checkpoints,
200 + 50 + 50 test images) for the test that keeps the recipe working (cmd/vog/paper_test.go).

Usage: train.py OUTDIR [--quick]
"""
import gzip
import json
import os
import struct
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

SRC = "/usr/share/datasets/fashion-mnist"
CLASSES = 8          # classes 0-7 in distribution; 8 and 9 held out
REPLACED = 0.2       # fraction of training labels replaced
BATCH, LR = 128, 0.05


def read_idx(path):
    with gzip.open(path, "rb") as f:
        data = f.read()
    magic, = struct.unpack(">i", data[:4])
    ndim = magic & 0xFF
    dims = struct.unpack(">" + "i" * ndim, data[4:4 + 4 * ndim])
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def write_idx(path, arr):
    header = struct.pack(">i", 0x0800 | arr.ndim) + struct.pack(">" + "i" * arr.ndim, *arr.shape)
    with gzip.GzipFile(path, "wb", mtime=0) as f:
        f.write(header + np.ascontiguousarray(arr, dtype=np.uint8).tobytes())


def write_set(out, name, images, labels):
    write_idx(os.path.join(out, f"{name}-images-idx3-ubyte.gz"), images)
    write_idx(os.path.join(out, f"{name}-labels-idx1-ubyte.gz"), labels)


def write_truth(path, column, flags, ids=None):
    ids = range(len(flags)) if ids is None else ids
    with open(path, "w") as f:
        f.write(f"example_id,{column}\n")
        for i, flag in zip(ids, flags):
            f.write(f"{i},{int(bool(flag))}\n")


class CNN(nn.Module):
    """testdata/fmnist/make_fixtures.py's CNN (about 7,600 parameters) with
    8 outputs."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 8, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(8)
        self.conv2 = nn.Conv2d(8, 16, 3, padding=1)
        self.fc = nn.Linear(16 * 7 * 7, CLASSES)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.bn1(self.conv1(x))), 2)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        return self.fc(x.flatten(1))


def to_input(images):
    return torch.from_numpy(images.astype(np.float32) / 255.0).unsqueeze(1)


@torch.no_grad()
def predict(model, x):
    model.eval()
    return torch.cat([model(x[i:i + 1000]).argmax(1) for i in range(0, len(x), 1000)]).numpy()


def main(out, quick):
    torch.set_num_threads(2)
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    started = time.time()
    os.makedirs(os.path.join(out, "ckpt"), exist_ok=True)

    x_tr = read_idx(f"{SRC}/train-images-idx3-ubyte.gz")
    y_tr = read_idx(f"{SRC}/train-labels-idx1-ubyte.gz")
    x_te = read_idx(f"{SRC}/t10k-images-idx3-ubyte.gz")
    y_te = read_idx(f"{SRC}/t10k-labels-idx1-ubyte.gz")
    keep = y_tr < CLASSES
    x_tr, y_tr = x_tr[keep], y_tr[keep].astype(np.int64)
    ind, unseen = y_te < CLASSES, y_te >= CLASSES
    x_in, y_in = x_te[ind], y_te[ind]
    x_un, y_un = x_te[unseen], y_te[unseen]
    epochs, n_inv = 8, 2000
    if quick:
        x_tr, y_tr = x_tr[:600], y_tr[:600]
        x_in, y_in, x_un, y_un = x_in[:200], y_in[:200], x_un[:50], y_un[:50]
        epochs, n_inv = 2, 50

    # 20% of the training labels replaced by a different class, uniformly.
    n = len(y_tr)
    replaced = np.zeros(n, dtype=bool)
    replaced[rng.choice(n, int(round(REPLACED * n)), replace=False)] = True
    noisy = y_tr.copy()
    noisy[replaced] = (y_tr[replaced] + rng.integers(1, CLASSES, size=replaced.sum())) % CLASSES
    assert (noisy[replaced] != y_tr[replaced]).all()
    write_set(out, "train", x_tr, noisy)
    write_truth(os.path.join(out, "truth_replaced.csv"), "replaced", replaced)

    # Training: SGD with momentum, a checkpoint every half epoch.
    x, y = to_input(x_tr), torch.from_numpy(noisy)
    model = CNN()
    opt = torch.optim.SGD(model.parameters(), lr=LR, momentum=0.9)
    batch = 16 if quick else BATCH
    steps = (n + batch - 1) // batch
    save_at = {steps // 2, steps}
    # Four more in the first half epoch, at 1/16, 1/8, 1/4 and 1/2 of it
    # (steps 11, 23, 46, 93), in ckpt_first/: the paper's early stage, when
    # the model has not learned most examples yet. Saving them changes
    # nothing in ckpt/.
    first_at = {steps // 2 * k // 16: i for i, k in enumerate((1, 2, 4, 8), 1)}
    os.makedirs(os.path.join(out, "ckpt_first"), exist_ok=True)
    saved = 0
    for epoch in range(epochs):
        perm = torch.randperm(n)
        model.train()
        for step in range(1, steps + 1):
            idx = perm[(step - 1) * batch:step * batch]
            loss = F.cross_entropy(model(x[idx]), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            if epoch == 0 and step in first_at:
                model.eval()
                torch.jit.trace(model, x[:2]).save(os.path.join(out, "ckpt_first", f"first_{first_at[step]}.pt"))
                model.train()
            if step in save_at:
                saved += 1
                model.eval()
                torch.jit.trace(model, x[:2]).save(os.path.join(out, "ckpt", f"ckpt_{saved}.pt"))
                model.train()
                print(f"epoch {epoch + 1} step {step}: loss {loss.item():.3f} -> ckpt_{saved}.pt "
                      f"({time.time() - started:.0f} s)", flush=True)
    trained = time.time() - started

    # Test sets and what the last checkpoint makes of them.
    write_set(out, "test", x_in, y_in)
    pred_in = predict(model, to_input(x_in))
    wrong = pred_in != y_in
    write_truth(os.path.join(out, "truth_misclassified.csv"), "misclassified", wrong)
    inv_idx = rng.choice(len(x_in), n_inv, replace=False)
    x_inv, y_inv = 255 - x_in[inv_idx], y_in[inv_idx]
    write_set(out, "mixed", np.concatenate([x_in, x_un, x_inv]), np.concatenate([y_in, y_un, y_inv]))
    k_in, k_un = len(x_in), len(x_un)
    write_truth(os.path.join(out, "truth_ood_unseen.csv"), "ood",
                [0] * k_in + [1] * k_un, list(range(k_in + k_un)))
    write_truth(os.path.join(out, "truth_ood_inverted.csv"), "ood",
                [0] * k_in + [1] * n_inv, list(range(k_in)) + list(range(k_in + k_un, k_in + k_un + n_inv)))

    pred_tr = predict(model, x)
    summary = {
        "train": n, "replaced": int(replaced.sum()), "epochs": epochs, "checkpoints": saved,
        "test": k_in, "unseen": k_un, "inverted": n_inv,
        "test_accuracy": float((~wrong).mean()),
        "train_accuracy_given_labels_clean": float((pred_tr == noisy)[~replaced].mean()),
        "replaced_memorised": float((pred_tr == noisy)[replaced].mean()),
        "replaced_predicted_as_original": float((pred_tr == y_tr)[replaced].mean()),
        "train_seconds": round(trained, 1), "seconds": round(time.time() - started, 1),
    }
    with open(os.path.join(out, "summary.json"), "w") as f:
        json.dump(summary, f, indent=1)
    print(json.dumps(summary))


if __name__ == "__main__":
    args = [a for a in sys.argv[1:] if a != "--quick"]
    if len(args) != 1:
        sys.exit(__doc__)
    main(args[0], "--quick" in sys.argv[1:])
