#!/usr/bin/python3
"""PyTorch eager baseline for vog's engine benchmarks.

Loads a TorchScript checkpoint and, for every line "ROUND n" on stdin, times
n input-gradient passes exactly as vog's engine computes them (parameters
frozen, torch.autograd.grad of the selected logits with respect to the input,
channel mean), and prints "examples_per_second" for that round. The batch is
seeded random data; the caller interleaves these rounds with its own.

Usage: pytorch_grad.py MODEL.pt BATCH C H W THREADS [DEVICE [PRECISION [FORMAT]]]
PRECISION is fp32 (default), tf32 or bf16, as vog's --precision; FORMAT is
nchw (default) or channels_last, as vog's --channels-last.
"""
import sys
import time

import torch


def main():
    path, batch, c, h, w, threads = sys.argv[1], *map(int, sys.argv[2:7])
    device = torch.device(sys.argv[7] if len(sys.argv) > 7 else "cpu")
    precision = sys.argv[8] if len(sys.argv) > 8 else "fp32"
    torch.set_num_threads(threads)
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = precision == "tf32"
    fmt = torch.channels_last if len(sys.argv) > 9 and sys.argv[9] == "channels_last" else torch.contiguous_format
    dtype = torch.bfloat16 if precision == "bf16" else torch.float32
    model = torch.jit.load(path, map_location=device).eval().to(dtype)
    if fmt == torch.channels_last:
        for p in model.parameters():
            if p.dim() == 4:
                p.data = p.data.contiguous(memory_format=fmt)
    for p in model.parameters():
        p.requires_grad_(False)
    g = torch.Generator().manual_seed(1)
    x = torch.rand(batch, c, h, w, generator=g)
    with torch.no_grad():
        classes = model(x[:1].to(device, dtype)).shape[1]
    target = torch.randint(0, classes, (batch, 1), generator=g).to(device)

    def step():
        # As vog's engine: the batch comes from host memory, the gradient
        # map goes back to it.
        xi = x.to(device).to(dtype).contiguous(memory_format=fmt).requires_grad_(True)
        out = model(xi)
        grad, = torch.autograd.grad(out.gather(1, target).sum(), xi)
        return grad.mean(1).float().cpu()

    step()  # warm up
    print("READY", classes, flush=True)
    for line in sys.stdin:
        n = int(line.split()[1])
        t0 = time.perf_counter()
        for _ in range(n):
            step()
        dt = time.perf_counter() - t0
        print(f"{n * batch / dt:.3f}", flush=True)


if __name__ == "__main__":
    main()
