#!/usr/bin/env python3
"""PyTorch CPU training throughput of LV-UNet, the yardstick for the bundled trainer (issue 17).

The same step `lvunet-edge train` takes, in PyTorch: forward in training mode (BN batch statistics,
LeakyReLU slope λ mid-ramp), 0.5 * BCE-with-logits + (1 - soft Dice), backward, Adam with weight decay
1e-4, at batch 8, 256x256, on random normalised input and random masks, after warm-up steps. Prints
one JSON line: images per second over the measured steps (median step time) and per CPU second.

  python3 tools/torch-reference/bench_train.py [--threads 2] [--steps 6] [--warmup 2] [--batch 8] [--size 256]

bench/train.ts runs it between its own rounds when python3 and torch are installed (Debian
python3-torch), so both figures come from one `npm run bench` on the same machine load.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from lvunet_torch import LVUNet, torchvision  # noqa: E402
from train_recipe import bce_dice_loss  # noqa: E402  (the recipe's own loss, not a copy)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument('--threads', type=int, default=2)
    ap.add_argument('--steps', type=int, default=6)
    ap.add_argument('--warmup', type=int, default=2)
    ap.add_argument('--batch', type=int, default=8)
    ap.add_argument('--size', type=int, default=256)
    ap.add_argument('--lambda', dest='lam', type=float, default=0.5)
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model = LVUNet()
    model.set_lambda(args.lam)
    model.train()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, weight_decay=1e-4)
    x = torch.randn(args.batch, 3, args.size, args.size)
    y = (torch.rand(args.batch, 1, args.size, args.size) > 0.7).float()

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        loss = bce_dice_loss(model(x), y)
        loss.backward()
        opt.step()

    for _ in range(args.warmup):
        step()
    times = []
    cpu0 = time.process_time()
    wall0 = time.perf_counter()
    for _ in range(args.steps):
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    wall = time.perf_counter() - wall0
    cpu = time.process_time() - cpu0
    median = statistics.median(times)
    print(json.dumps({
        'framework': f'PyTorch {torch.__version__}',
        'torchvision': getattr(torchvision, '__version__', None),
        'threads': torch.get_num_threads(),
        'batch': args.batch,
        'size': args.size,
        'steps': args.steps,
        'warmup': args.warmup,
        'stepSeconds': times,
        'medianStepSeconds': median,
        'imagesPerSecond': args.batch / median,
        'imagesPerCpuSecond': args.batch * args.steps / cpu if cpu > 0 else None,
        'wallSeconds': wall,
    }))


if __name__ == '__main__':
    main()
