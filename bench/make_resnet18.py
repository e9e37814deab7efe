#!/usr/bin/python3
"""Saves a TorchScript ResNet-18 for 32x32 inputs (CIFAR-sized, 10 classes,
random weights: speed does not depend on them) for the engine benchmark.

Usage: make_resnet18.py OUT.pt
"""
import sys

import torch
import torchvision

torch.manual_seed(0)
model = torchvision.models.resnet18(num_classes=10).eval()
torch.jit.trace(model, torch.rand(2, 3, 32, 32)).save(sys.argv[1])
