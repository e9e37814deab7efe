#!/usr/bin/python3
"""Wraps a TorchScript checkpoint so that it returns a tuple (logits,
features), as Hugging Face models traced with torchscript=True do: vog
takes the first element as the logits.

Usage: /usr/bin/python3 tuple_model.py IN.pt OUT.pt
"""
import sys

import torch


class Tuple(torch.nn.Module):
    def __init__(self, base):
        super().__init__()
        self.base = base

    def forward(self, x):
        logits = self.base(x)
        return logits, x.flatten(1).mean(1)


if __name__ == "__main__":
    torch.jit.script(Tuple(torch.jit.load(sys.argv[1]).eval())).save(sys.argv[2])
