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

--memorise is the regime of the paper's memorisation experiment, in which the
model fits its replaced labels: a random subset of 3,000 training images of
classes 0-7 (600 labels replaced, as above), an MLP with two hidden layers of
512 units (about 670,000 parameters, 90 times the CNN's), Adam (lr 1e-3,
falling to 0 along a cosine, batch 32), no augmentation and no weight decay,
80 epochs (about 10 min on one busy core); 16 checkpoints spread evenly over
training (every 5 epochs), four in the first half epoch, and test sets of
2,000 + 500 + 500 images drawn at random. It fails unless the last
checkpoint predicts the given label of at least 95% of the replaced
examples (summary.json: replaced_memorised, and per checkpoint
replaced_memorised_by_checkpoint). With --quick: 300 images, 256 hidden
units, 100 epochs, 4 + 4 checkpoints, 100 + 25 + 25 test images; it
memorises too, in seconds.

--seed N seeds the choice of replaced labels, the subsets, the initial
weights and the order of batches (default 0, the runs docs/paper.md quotes).

Usage: train.py OUTDIR [--quick] [--memorise] [--seed N]
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
MEMORISE_FIT = 0.95  # --memorise: the fraction of replaced labels it must fit


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


class MLP(nn.Module):
    """--memorise's model: two hidden layers of width units, enough to fit
    every training label, replaced or not."""

    def __init__(self, width):
        super().__init__()
        self.fc1 = nn.Linear(28 * 28, width)
        self.fc2 = nn.Linear(width, width)
        self.fc3 = nn.Linear(width, CLASSES)

    def forward(self, x):
        return self.fc3(F.relu(self.fc2(F.relu(self.fc1(x.flatten(1))))))


class Regime:
    """What a run trains: sizes, model and optimiser."""

    def __init__(self, quick, memorise):
        self.memorise = memorise
        if not memorise:
            self.train, self.test, self.unseen, self.inverted = (600, 200, 50, 50) if quick else (None, None, None, 2000)
            self.epochs = 2 if quick else 8
            self.batch = 16 if quick else BATCH
            self.checkpoints = 2 * self.epochs  # every half epoch
            self.model = CNN
            self.optimiser = lambda params: torch.optim.SGD(params, lr=LR, momentum=0.9)
            self.cosine = False
            return
        self.train, self.test, self.unseen, self.inverted = (300, 100, 25, 25) if quick else (3000, 2000, 500, 500)
        self.epochs = 100 if quick else 80
        self.batch = 32
        self.checkpoints = 4 if quick else 16
        width = 256 if quick else 512
        self.model = lambda: MLP(width)
        self.optimiser = lambda params: torch.optim.Adam(params, lr=1e-3)
        # The learning rate falls to 0 along a cosine over training: at a
        # constant rate the share of replaced labels fitted swings by 5-10%
        # from epoch to epoch (0.83-0.96 over epochs 50-60 in a trial run).
        self.cosine = True


def to_input(images):
    return torch.from_numpy(images.astype(np.float32) / 255.0).unsqueeze(1)


@torch.no_grad()
def predict(model, x):
    model.eval()
    return torch.cat([model(x[i:i + 1000]).argmax(1) for i in range(0, len(x), 1000)]).numpy()


def subset(rng, n, k):
    """k of range(n) drawn at random in their order, or all of them for k None."""
    return np.arange(n) if k is None else np.sort(rng.choice(n, k, replace=False))


def main(out, quick, memorise, seed):
    # One thread for the MLP: its matrices are small, and two threads on a
    # busy machine made it ten times slower.
    torch.set_num_threads(1 if memorise else 2)
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    started = time.time()
    os.makedirs(os.path.join(out, "ckpt"), exist_ok=True)
    regime = Regime(quick, memorise)

    x_tr = read_idx(f"{SRC}/train-images-idx3-ubyte.gz")
    y_tr = read_idx(f"{SRC}/train-labels-idx1-ubyte.gz")
    x_te = read_idx(f"{SRC}/t10k-images-idx3-ubyte.gz")
    y_te = read_idx(f"{SRC}/t10k-labels-idx1-ubyte.gz")
    keep = y_tr < CLASSES
    x_tr, y_tr = x_tr[keep], y_tr[keep].astype(np.int64)
    ind, unseen = y_te < CLASSES, y_te >= CLASSES
    x_in, y_in = x_te[ind], y_te[ind]
    x_un, y_un = x_te[unseen], y_te[unseen]
    epochs, n_inv = regime.epochs, regime.inverted
    if memorise:
        # Random subsets (the first images would do for --quick, but not
        # across seeds).
        pick = subset(rng, len(y_tr), regime.train)
        x_tr, y_tr = x_tr[pick], y_tr[pick]
        pick = subset(rng, len(y_in), regime.test)
        x_in, y_in = x_in[pick], y_in[pick]
        pick = subset(rng, len(y_un), regime.unseen)
        x_un, y_un = x_un[pick], y_un[pick]
    elif quick:
        x_tr, y_tr = x_tr[:regime.train], y_tr[:regime.train]
        x_in, y_in, x_un, y_un = x_in[:regime.test], y_in[:regime.test], x_un[:regime.unseen], y_un[:regime.unseen]

    # 20% of the training labels replaced by a different class, uniformly.
    n = len(y_tr)
    replaced = np.zeros(n, dtype=bool)
    replaced[rng.choice(n, int(round(REPLACED * n)), replace=False)] = True
    noisy = y_tr.copy()
    noisy[replaced] = (y_tr[replaced] + rng.integers(1, CLASSES, size=replaced.sum())) % CLASSES
    assert (noisy[replaced] != y_tr[replaced]).all()
    write_set(out, "train", x_tr, noisy)
    write_truth(os.path.join(out, "truth_replaced.csv"), "replaced", replaced)

    # Training: a checkpoint at each of regime.checkpoints equal steps of
    # the whole (every half epoch for the CNN).
    x, y = to_input(x_tr), torch.from_numpy(noisy)
    model = regime.model()
    opt = regime.optimiser(model.parameters())
    batch = regime.batch
    steps = (n + batch - 1) // batch
    total = epochs * steps
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(opt, total) if regime.cosine else None
    save_at = {total * k // regime.checkpoints for k in range(1, regime.checkpoints + 1)}
    # Four more in the first half epoch, at 1/16, 1/8, 1/4 and 1/2 of it
    # (steps 11, 23, 46, 93 for the CNN), in ckpt_first/: the paper's early
    # stage, when the model has not learned most examples yet. Saving them
    # changes nothing in ckpt/.
    first_at = {steps // 2 * k // 16: i for i, k in enumerate((1, 2, 4, 8), 1)}
    os.makedirs(os.path.join(out, "ckpt_first"), exist_ok=True)
    saved, memorised_by_ckpt = 0, []
    for epoch in range(epochs):
        perm = torch.randperm(n)
        model.train()
        for step in range(1, steps + 1):
            idx = perm[(step - 1) * batch:step * batch]
            loss = F.cross_entropy(model(x[idx]), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            if schedule:
                schedule.step()
            if epoch == 0 and step in first_at:
                model.eval()
                torch.jit.trace(model, x[:2]).save(os.path.join(out, "ckpt_first", f"first_{first_at[step]}.pt"))
                model.train()
            if epoch * steps + step in save_at:
                saved += 1
                model.eval()
                torch.jit.trace(model, x[:2]).save(os.path.join(out, "ckpt", f"ckpt_{saved}.pt"))
                fitted = ""
                if memorise:  # how far it has memorised (the CNN's 48,000 would take too long)
                    memorised_by_ckpt.append(round(float((predict(model, x) == noisy)[replaced].mean()), 4))
                    fitted = f", replaced labels fitted {memorised_by_ckpt[-1]:.3f}"
                model.train()
                print(f"epoch {epoch + 1} step {step}: loss {loss.item():.3f} -> ckpt_{saved}.pt{fitted} "
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
        "regime": "memorise" if memorise else "cnn", "seed": seed,
        "train": n, "replaced": int(replaced.sum()), "epochs": epochs, "checkpoints": saved,
        "test": k_in, "unseen": k_un, "inverted": n_inv,
        "test_accuracy": float((~wrong).mean()),
        "train_accuracy_given_labels_clean": float((pred_tr == noisy)[~replaced].mean()),
        "replaced_memorised": float((pred_tr == noisy)[replaced].mean()),
        "replaced_predicted_as_original": float((pred_tr == y_tr)[replaced].mean()),
        "train_seconds": round(trained, 1), "seconds": round(time.time() - started, 1),
    }
    if memorise:
        summary["replaced_memorised_by_checkpoint"] = memorised_by_ckpt
    with open(os.path.join(out, "summary.json"), "w") as f:
        json.dump(summary, f, indent=1)
    print(json.dumps(summary))
    print(f"replaced labels fitted by the last checkpoint: {summary['replaced_memorised']:.4f} "
          f"({int(round(summary['replaced_memorised'] * summary['replaced']))} of {summary['replaced']})", flush=True)
    if memorise and summary["replaced_memorised"] < MEMORISE_FIT:
        sys.exit(f"--memorise: the model fits {summary['replaced_memorised']:.3f} of the replaced labels, "
                 f"under {MEMORISE_FIT}: train longer")


if __name__ == "__main__":
    args, flags, seed = [], set(), 0
    argv = sys.argv[1:]
    while argv:
        a = argv.pop(0)
        if a in ("--quick", "--memorise"):
            flags.add(a)
        elif a == "--seed" and argv and argv[0].isdigit():
            seed = int(argv.pop(0))
        elif a.startswith("-"):
            sys.exit(__doc__)
        else:
            args.append(a)
    if len(args) != 1:
        sys.exit(__doc__)
    main(args[0], "--quick" in flags, "--memorise" in flags, seed)
