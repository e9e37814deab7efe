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
  tvref/model_K.pth           torchvision's classification reference script:
                              {"model", "optimizer", "lr_scheduler", "epoch",
                              "args": argparse.Namespace}, and checkpoint.pth,
                              a copy of the last
  timm/checkpoint-K.pth.tar   timm's CheckpointSaver: "state_dict" beside
                              "state_dict_ema" (other weights), "args", a
                              numpy "metric"; last.pth.tar, model_best.pth.tar
  timm_ema/ckpt_K.pt          the EMA weights as TorchScript checkpoints
  tutorial/epoch_K.tar        PyTorch's tutorial: {"epoch", "model_state_dict",
                              "optimizer_state_dict", "loss"}
  ddp/ckpt_K.pt               a DistributedDataParallel state dict ("module.")
  compiled/ckpt_K.pt          torch.compile's "_orig_mod." keys
  legacy/ckpt_K.pt            the pre-1.6 format (_use_new_zipfile_serialization=False)
  nested/step_K.pt            the weights two entries down, {"state": {"model": ..., "step": K}}
  whole/ckpt_K.pt             torch.save(model): the whole module pickled, class and all
  wholeentry/ckpt_K.pt        {"model": model, "epoch": K}, as some training scripts save it
  resnet/model_K.pth          torchvision's resnet18 with 10 classes, in the
                              reference script's layout, for --model
                              torchvision:resnet18; resnet_ts/model_K.pt the
                              same weights as TorchScript

Usage: /usr/bin/python3 native_checkpoints.py OUTDIR
"""
import argparse
import collections
import json
import os
import struct
import sys

import numpy as np
import shutil
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


class SmallCNN(torch.nn.Module):
    """The fixtures' architecture (make_fixtures.py), for whole-module saves."""

    def __init__(self):
        super().__init__()
        self.conv1 = torch.nn.Conv2d(1, 8, 3, padding=1)
        self.bn1 = torch.nn.BatchNorm2d(8)
        self.conv2 = torch.nn.Conv2d(8, 16, 3, padding=1)
        self.fc = torch.nn.Linear(16 * 7 * 7, 10)


class HyperParameters:  # stands for Lightning's AttributeDict
    def __init__(self, **kw):
        self.__dict__.update(kw)


def main(out):
    for d in ("statedict", "lightning", "safetensors", "hf", "mismatch", "tvref", "timm", "timm_ema",
              "tutorial", "ddp", "compiled", "legacy", "nested", "whole", "wholeentry", "resnet", "resnet_ts"):
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
        opt = {"state": {}, "param_groups": [{"lr": 0.1, "momentum": 0.9, "params": list(range(len(state)))}]}
        args = argparse.Namespace(model="cnn", lr=0.1, epochs=12, data_path="/data/fmnist")
        torch.save({"model": state, "optimizer": opt, "lr_scheduler": {"last_epoch": k, "_step_count": k + 1},
                    "epoch": k, "args": args}, os.path.join(out, "tvref", f"model_{k}.pth"))
        ema = collections.OrderedDict((n, t * 0.5 if t.is_floating_point() else t) for n, t in state.items())
        torch.save({"epoch": k, "arch": "cnn", "state_dict": state, "state_dict_ema": ema, "optimizer": opt,
                    "version": 2, "args": args, "metric": np.float64(80.0 + k)},
                   os.path.join(out, "timm", f"checkpoint-{k}.pth.tar"))
        m.load_state_dict(ema)
        torch.jit.save(m, os.path.join(out, "timm_ema", f"ckpt_{k}.pt"))
        torch.save({"epoch": k, "model_state_dict": state, "optimizer_state_dict": opt, "loss": torch.tensor(0.25 * k)},
                   os.path.join(out, "tutorial", f"epoch_{k}.tar"))
        torch.save(collections.OrderedDict(("module." + n, t) for n, t in state.items()), os.path.join(out, "ddp", f"ckpt_{k}.pt"))
        torch.save(collections.OrderedDict(("_orig_mod." + n, t) for n, t in state.items()), os.path.join(out, "compiled", f"ckpt_{k}.pt"))
        torch.save(state, os.path.join(out, "legacy", f"ckpt_{k}.pt"), _use_new_zipfile_serialization=False)
        torch.save({"state": {"model": state, "step": k}, "meta": {"run": "fmnist"}}, os.path.join(out, "nested", f"step_{k}.pt"))
        net = SmallCNN()
        net.load_state_dict(state)
        torch.save(net, os.path.join(out, "whole", f"ckpt_{k}.pt"))
        torch.save({"model": net, "epoch": k}, os.path.join(out, "wholeentry", f"ckpt_{k}.pt"))
        if k == 12:
            shutil.copy(os.path.join(out, "tvref", f"model_{k}.pth"), os.path.join(out, "tvref", "checkpoint.pth"))
            shutil.copy(os.path.join(out, "timm", f"checkpoint-{k}.pth.tar"), os.path.join(out, "timm", "last.pth.tar"))
        if k == 5:
            shutil.copy(os.path.join(out, "timm", f"checkpoint-{k}.pth.tar"), os.path.join(out, "timm", "model_best.pth.tar"))
        if k == 1:
            renamed = collections.OrderedDict(("features." + n if n.startswith("conv1") else n, t) for n, t in state.items())
            torch.save(renamed, os.path.join(out, "mismatch", "renamed.pt"))
            shape = collections.OrderedDict(state)
            shape["fc.weight"] = torch.zeros(5, shape["fc.weight"].shape[1])
            torch.save(shape, os.path.join(out, "mismatch", "shape.pt"))


def resnet(out):
    """Three checkpoints of torchvision's resnet18 with 10 classes, as the
    reference script saves them, and the same weights as TorchScript."""
    import torchvision
    torch.manual_seed(1)
    m = torchvision.models.resnet18(num_classes=10).eval()
    for k in range(3):
        with torch.no_grad():
            for p in m.parameters():
                p.add_(0.01 * torch.randn_like(p))
        state = collections.OrderedDict((n, t.detach().clone()) for n, t in m.state_dict().items())
        torch.save({"model": state, "optimizer": {"state": {}, "param_groups": []}, "epoch": k,
                    "args": argparse.Namespace(model="resnet18")}, os.path.join(out, "resnet", f"model_{k}.pth"))
        torch.jit.script(m).save(os.path.join(out, "resnet_ts", f"model_{k}.pt"))


if __name__ == "__main__":
    main(sys.argv[1])
    resnet(sys.argv[1])
