#!/usr/bin/python3
"""Writes the fixtures of the checkpoint package's tests.

Run it with Debian's python3 and python3-torch (1.13); it writes next to
itself:

    apt-get install -y python3-torch python3-numpy
    /usr/bin/python3 checkpoint/testdata/make_fixtures.py

It writes small checkpoints in each format the package reads or refuses,
expected.json with the exact bytes of every tensor the Go tests compare, and
seeds for the fuzz tests under fuzz/. There is no safetensors package here,
so the safetensors files are written by hand; the format is an 8-byte
little-endian header length, a JSON header, and the tensors' bytes.
"""

import argparse
import base64
import collections
import enum
import json
import os
import struct

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

torch.manual_seed(0)


class TinyCNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.bn = nn.BatchNorm2d(4)
        self.fc = nn.Linear(4, 3)

    def forward(self, x):
        x = F.relu(self.bn(self.conv(x)))
        return self.fc(x.mean((2, 3)))


class LitModel(nn.Module):
    """Stands in for a LightningModule: the network under "model." and a
    loss whose class weights are a buffer under "loss_fn."."""

    def __init__(self):
        super().__init__()
        self.model = TinyCNN()
        self.loss_fn = nn.CrossEntropyLoss(weight=torch.tensor([1.0, 2.0, 0.5]))


class Tagged(torch.Tensor):
    """A tensor subclass, as some libraries keep in their state dicts."""


class HParams:
    """A user's own configuration class: pickled by reference to __main__."""

    def __init__(self, lr, widths):
        self.lr = lr
        self.widths = widths


class Stage(enum.Enum):
    FIT = "fit"


class AttributeDict(dict):
    """Like Lightning's AttributeDict: a dict subclass with attributes."""

    def __getattr__(self, key):
        return self[key]


# DTYPE names the safetensors dtype of each torch dtype.
DTYPE = {
    torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16",
    torch.float64: "F64", torch.int64: "I64", torch.int32: "I32",
    torch.int16: "I16", torch.int8: "I8", torch.uint8: "U8",
    torch.bool: "BOOL",
}


def raw(t):
    """The little-endian, row-major bytes of t."""
    t = t.detach().contiguous()
    if t.dtype == torch.bfloat16:
        t = t.view(torch.int16)
    return t.numpy().tobytes()


def expected(tensors):
    return [
        {"name": k, "dtype": DTYPE[v.dtype], "shape": list(v.shape),
         "data": base64.b64encode(raw(v)).decode()}
        for k, v in sorted(tensors.items())
    ]


def safetensors(tensors, metadata=None):
    """The bytes of a safetensors file of tensors."""
    header, blobs, off = {}, [], 0
    if metadata:
        header["__metadata__"] = metadata
    for k, v in sorted(tensors.items()):
        b = raw(v)
        header[k] = {"dtype": DTYPE[v.dtype], "shape": list(v.shape),
                     "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    return struct.pack("<Q", len(h)) + h + b"".join(blobs)


def save_safetensors(path, tensors, metadata=None):
    with open(path, "wb") as f:
        f.write(safetensors(tensors, metadata))


def go_seed(path, data):
    """Writes data as a Go fuzz corpus entry."""
    out = []
    for c in data:
        ch = chr(c)
        if 32 <= c < 127 and ch not in '"\\':
            out.append(ch)
        else:
            out.append("\\x%02x" % c)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write('go test fuzz v1\n[]byte("%s")\n' % "".join(out))


def main():
    want = {}

    # A trained-looking CNN state dict: one training step so the BatchNorm
    # running statistics and num_batches_tracked (int64) have moved.
    lit = LitModel()
    opt = torch.optim.Adam(lit.parameters(), lr=1e-3)
    x = torch.randn(2, 3, 5, 5)
    loss = lit.loss_fn(lit.model(x), torch.tensor([0, 2]))
    loss.backward()
    opt.step()
    sd = lit.model.state_dict()
    torch.save(sd, "state_dict.pt")
    want["cnn"] = expected(sd)

    # Views: a transpose, a strided slice with an offset, a scalar, an
    # expanded (stride 0) tensor, and two entries sharing one storage. A
    # plain dict, not an OrderedDict.
    base = torch.arange(12, dtype=torch.float32).reshape(3, 4)
    shared = torch.arange(10, dtype=torch.int64)
    views = {
        "base": base,
        "transposed": base.t(),
        "slice": base[1:, ::2],
        "scalar": torch.tensor(2.5, dtype=torch.float64),
        "expanded": torch.tensor([1, 2, 3], dtype=torch.int32).expand(2, 3),
        "shared_a": shared[:4],
        "shared_b": shared[6:].view(2, 2),
    }
    assert views["shared_a"].storage().data_ptr() == views["shared_b"].storage().data_ptr()
    torch.save(views, "views.pt")
    want["views"] = expected(views)

    # Pickle protocol 4, a Parameter, and a tensor subclass with a Python
    # attribute (which torch pickles through _rebuild_from_type_v2).
    attr = torch.tensor([[5, 6]], dtype=torch.int16).as_subclass(Tagged)
    attr.note = "kept by pickle, dropped by the reader"
    extra = {"param": nn.Parameter(torch.tensor([0.5, -0.5])), "attr": attr}
    torch.save(extra, "proto4.pt", pickle_protocol=4)
    want["proto4"] = expected(extra)

    # One tensor of each dtype, saved both ways.
    dtypes = {
        "f16": torch.tensor([1.0, -2.5, 65504.0], dtype=torch.float16),
        "bf16": torch.tensor([[1.0, -2.5], [3.0e38, 1e-3]], dtype=torch.bfloat16),
        "f64": torch.tensor([3.141592653589793], dtype=torch.float64),
        "i32": torch.tensor([-7, 7], dtype=torch.int32),
        "i16": torch.tensor([-300], dtype=torch.int16),
        "i8": torch.tensor([-128, 127], dtype=torch.int8),
        "u8": torch.tensor([0, 255], dtype=torch.uint8),
        "bool": torch.tensor([True, False, True]),
    }
    torch.save(collections.OrderedDict(sorted(dtypes.items())), "dtypes.pt")
    save_safetensors("dtypes.safetensors", dtypes)
    want["dtypes"] = expected(dtypes)

    # A Lightning-style checkpoint: weights under "state_dict" with the
    # "model." prefix beside the loss's buffer, and entries whose classes the
    # reader does not know.
    hp = AttributeDict(
        cfg=HParams(lr=1e-3, widths=(4, 8)),
        args=argparse.Namespace(batch_size=2, data="cifar10"),
        stage=Stage.FIT,
        momentum=np.float64(0.9),
        tags={"a", "b"},
        blob=b"\x00\x01bytes",
    )
    torch.save({
        "epoch": 3,
        "global_step": 120,
        "pytorch-lightning_version": "2.1.0",
        "state_dict": lit.state_dict(),
        "optimizer_states": [opt.state_dict()],
        "lr_schedulers": [],
        "hyper_parameters": hp,
        "callbacks": {
            "ModelCheckpoint{'monitor': 'val_loss', 'mode': 'min'}": {
                "best_model_score": torch.tensor(0.25),
                "best_model_path": "/ckpt/epoch=3.ckpt",
                "kth_value": float("inf"),
            },
        },
    }, "lightning.ckpt")
    want["loss_fn"] = expected({"weight": lit.loss_fn.weight})

    # A custom training script's dict without "state_dict".
    torch.save({"epoch": 3, "model_state_dict": sd,
                "optimizer_state_dict": opt.state_dict()}, "custom.pt")

    # The same weights as safetensors, whole and in two shards.
    save_safetensors("model.safetensors", sd, {"format": "pt"})
    names = sorted(sd)
    shards = {"model-00001-of-00002.safetensors": names[:3],
              "model-00002-of-00002.safetensors": names[3:]}
    for f, ks in shards.items():
        save_safetensors(f, {k: sd[k] for k in ks}, {"format": "pt"})
    with open("model.safetensors.index.json", "w") as f:
        json.dump({"metadata": {"total_size": sum(len(raw(v)) for v in sd.values())},
                   "weight_map": {k: f for f, ks in shards.items() for k in ks}},
                  f, indent=2, sort_keys=True)

    # Files the reader refuses: the legacy (pre-1.6) format, a whole pickled
    # module, and a TorchScript module.
    small = {"fc.weight": sd["fc.weight"], "fc.bias": sd["fc.bias"]}
    torch.save(small, "legacy.pt", _use_new_zipfile_serialization=False)
    torch.save(lit.model.fc, "module.pt")
    torch.jit.save(torch.jit.script(lit.model.fc), "scripted.pt")

    with open("expected.json", "w") as f:
        json.dump(want, f, indent=1, sort_keys=True)

    # Fuzz seeds: small inputs of each parser.
    import io
    b = io.BytesIO()
    torch.save({"w": torch.tensor([[1.0, 2.0]]).t(), "n": torch.tensor(3)}, b)
    go_seed("fuzz/FuzzRead/torch_zip", b.getvalue())
    st = safetensors({"w": torch.tensor([1.0, 2.0], dtype=torch.float16)}, {"k": "v"})
    go_seed("fuzz/FuzzRead/safetensors", st)
    go_seed("fuzz/FuzzSafetensors/small", st)
    with open("legacy.pt", "rb") as f:
        go_seed("fuzz/FuzzRead/legacy", f.read()[:64])
    import zipfile
    with zipfile.ZipFile("lightning.ckpt") as z:
        pkl = z.read("lightning/data.pkl")
    go_seed("fuzz/FuzzPickle/lightning", pkl)
    with zipfile.ZipFile(io.BytesIO(b.getvalue())) as z:
        go_seed("fuzz/FuzzPickle/views", z.read("archive/data.pkl"))


if __name__ == "__main__":
    os.chdir(os.path.dirname(os.path.abspath(__file__)))
    main()
