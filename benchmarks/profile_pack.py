"""Where a pack's time goes: torch.profiler over the training of one pack (seedhp.train.train,
the trainer every job uses), summarised by operator and written as JSON.

    python benchmarks/profile_pack.py [--model mlp] [--data digits] [--pack 64] [--epochs 2]
        [--out benchmarks/results/profile_cpu_digits_mlp.json]

The first pack of the same size is trained untimed (allocator, first-call costs); the second
is profiled. The JSON holds the wall time, the share of it inside each of the top operators
(self CPU time, so no time is counted twice) and the share in matrix products, the optimizer
step and the rest, which is where issue 29 looks first.
"""

from __future__ import annotations

import argparse
import functools
import json
import platform
import sys
import time
from pathlib import Path

import torch
from torch.profiler import ProfilerActivity, profile

from seedhp.train import models
from seedhp.train.data import load_digits, load_torchvision, split
from seedhp.train.loop import Schedule, TrainSettings, train
from seedhp.train.seeds import derive_seeds

MATMUL = ("aten::bmm", "aten::mm", "aten::addmm", "aten::baddbmm", "aten::matmul")
OPTIMIZER = ("Optimizer.step", "aten::_foreach", "aten::add_", "aten::mul_", "aten::addcmul_")


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--model", choices=["mlp", "cnn"], default="mlp")
    parser.add_argument("--data", choices=["digits", "fashion_mnist"], default="digits")
    parser.add_argument("--root", default="data")
    parser.add_argument("--pack", type=int, default=64)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--top", type=int, default=15)
    parser.add_argument("--out", default="benchmarks/results/profile_cpu_digits_mlp.json")
    args = parser.parse_args()

    source = (
        load_digits()
        if args.data == "digits"
        else load_torchvision("FashionMNIST", args.root, download=False)
    )
    data = split(source, 288 if args.data == "digits" else 5000, 0)
    factory = (
        functools.partial(models.MLP, hidden=[128])
        if args.model == "mlp"
        else functools.partial(models.CNN, widths=[32, 64])
    )
    optimizer = functools.partial(
        torch.optim.SGD, lr=0.05, momentum=0.9, nesterov=True, weight_decay=5e-4
    )
    settings = TrainSettings(
        epochs=args.epochs, batch_size=args.batch_size, schedule=Schedule("cosine")
    )
    device = torch.device("cpu")

    def pack(first: int) -> None:
        seeds = [derive_seeds(first + k) for k in range(args.pack)]
        train(factory, optimizer, data, seeds, settings, device)

    pack(10_000)  # untimed: first-call costs
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        tic = time.perf_counter()
        pack(0)
        wall = time.perf_counter() - tic
    events = [e for e in prof.key_averages() if e.self_cpu_time_total > 0]
    total = sum(e.self_cpu_time_total for e in events)  # microseconds, over all threads
    top = sorted(events, key=lambda e: e.self_cpu_time_total, reverse=True)[: args.top]

    def share(names: tuple[str, ...]) -> float:
        hit = sum(e.self_cpu_time_total for e in events if e.key.startswith(names))
        return round(hit / total, 4) if total else 0.0

    result = {
        "benchmark": "profile_pack",
        "command": "python " + " ".join(sys.argv),
        "model": args.model,
        "data": args.data,
        "pack_size": args.pack,
        "epochs": args.epochs,
        "batch_size": args.batch_size,
        "wall_seconds": round(wall, 3),
        "seed_runs_per_hour": round(args.pack / wall * 3600, 1),
        "self_cpu_seconds": round(total / 1e6, 3),
        "share_matmul": share(MATMUL),
        "share_optimizer": share(OPTIMIZER),
        "top_operators": [
            {
                "name": e.key,
                "calls": e.count,
                "self_cpu_ms": round(e.self_cpu_time_total / 1e3, 2),
                "share": round(e.self_cpu_time_total / total, 4),
            }
            for e in top
        ],
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "python": platform.python_version(),
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
