"""Exports a torchvision classification model as TorchScript, for vog's
--model torchvision:NAME. Run with the PyTorch and torchvision of the
engine's libtorch (Debian's python3-torch and python3-torchvision), so that
the engine loads what it writes.

Usage: python3 export.py NAME NUM_CLASSES OUT
Writes OUT; prints nothing on success. The weights are random (seeded, so
the file's bytes are the same on every run): the checkpoints replace them.
"""
import sys

import torch
import torchvision


def main(name, classes, out):
    models = torchvision.models
    if name not in models.list_models(module=models):
        sys.exit(f"torchvision {torchvision.__version__} has no classification model {name!r}; "
                 f"it has {', '.join(sorted(models.list_models(module=models)))}")
    torch.manual_seed(0)
    kw = {"num_classes": classes}
    if name.startswith(("inception", "googlenet")):
        # Their auxiliary classifiers exist only in training; the weights
        # of checkpoints trained with them still hold them, so keep them.
        kw["aux_logits"] = True
        kw["init_weights"] = False
    m = models.get_model(name, **kw).eval()
    try:
        s = torch.jit.script(m)
    except Exception as e:  # a model scripting cannot take: trace it
        print(f"export.py: torch.jit.script failed ({e}); tracing", file=sys.stderr)
        size = 299 if name.startswith("inception") else 224
        s = torch.jit.trace(m, torch.zeros(1, 3, size, size))
    s.save(out)


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), sys.argv[3])
