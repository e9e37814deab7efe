#!/usr/bin/python3
"""Saves K TorchScript checkpoints of a tiny MLP over 1x8x8 inputs (10
classes) for the scale simulation: the weights drift from checkpoint to
checkpoint as in training, so VoG is not zero.

Usage: make_tiny.py OUTDIR K
"""
import os
import sys

import torch
import torch.nn as nn

out, k = sys.argv[1], int(sys.argv[2])
os.makedirs(out, exist_ok=True)
torch.manual_seed(0)
model = nn.Sequential(nn.Flatten(), nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10)).eval()
for t in range(1, k + 1):
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    torch.jit.trace(model, torch.rand(2, 1, 8, 8)).save(os.path.join(out, f"epoch_{t}.pt"))
