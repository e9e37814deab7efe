#!/usr/bin/python3
"""Saves the weights of the fixtures' TorchScript checkpoints as training
runs save them, for vog's test that every format gives the same rows:

  statedict/ckpt_K.pt         torch.save(model.state_dict())
  lightning/ckpt_K.ckpt       a PyTorch Lightning checkpoint's layout: the
                              weights under "state_dict" with the prefix
                              "model.", beside epoch, optimizer states and
                              hyper-parameters of classes vog never loads
  safetensors/ckpt_K.safetensors
  hf/checkpoint-K00/model.safetensors  a Hugging Face Trainer output folder,
                              with the optimizer and trainer state beside
  mismatch/renamed.pt, mismatch/shape.pt  state dicts that do not fit

Usage: /usr/bin/python3 native_checkpoints.py OUTDIR
"""
import argparse
import collections
import json
import os
import struct
import sys

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
DTYPES = {torch.float32: "F32", torch.int64: "I64"}


def save_safetensors(state, path):
    header, blobs, offset = {"__metadata__": {"format": "pt"}}, [], 0
    for name, t in state.items():
        data = t.contiguous().numpy().tobytes()
        header[name] = {"dtype": DTYPES[t.dtype], "shape": list(t.shape), "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    head = json.dumps(header).encode()
    head += b" " * (-len(head) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(head)) + head + b"".join(blobs))


class HyperParameters:  # stands for Lightning's AttributeDict
    def __init__(self, **kw):
        self.__dict__.update(kw)


def main(out):
    for d in ("statedict", "lightning", "safetensors", "hf", "mismatch"):
        os.makedirs(os.path.join(out, d), exist_ok=True)
    for k in range(1, 13):
        m = torch.jit.load(os.path.join(HERE, "ckpt", f"ckpt_{k}.pt"))
        state = collections.OrderedDict((n, t.detach().clone()) for n, t in m.state_dict().items())
        torch.save(state, os.path.join(out, "statedict", f"ckpt_{k}.pt"))
        torch.save({
            "epoch": k, "global_step": 100 * k, "pytorch-lightning_version": "2.1.0",
            "state_dict": collections.OrderedDict(("model." + n, t) for n, t in state.items()),
            "optimizer_states": [{"state": {}, "param_groups": [{"lr": 0.1, "params": list(range(len(state)))}]}],
            "lr_schedulers": [],
            "hyper_parameters": HyperParameters(lr=0.1, args=argparse.Namespace(batch_size=64)),
        }, os.path.join(out, "lightning", f"ckpt_{k}.ckpt"))
        save_safetensors(state, os.path.join(out, "safetensors", f"ckpt_{k}.safetensors"))
        hf = os.path.join(out, "hf", f"checkpoint-{100 * k}")
        os.makedirs(hf, exist_ok=True)
        save_safetensors(state, os.path.join(hf, "model.safetensors"))
        torch.save({"state": {}}, os.path.join(hf, "optimizer.pt"))
        with open(os.path.join(hf, "trainer_state.json"), "w") as f:
            json.dump({"global_step": 100 * k}, f)
        if k == 1:
            renamed = collections.OrderedDict(("features." + n if n.startswith("conv1") else n, t) for n, t in state.items())
            torch.save(renamed, os.path.join(out, "mismatch", "renamed.pt"))
            shape = collections.OrderedDict(state)
            shape["fc.weight"] = torch.zeros(5, shape["fc.weight"].shape[1])
            torch.save(shape, os.path.join(out, "mismatch", "shape.pt"))


if __name__ == "__main__":
    main(sys.argv[1])
