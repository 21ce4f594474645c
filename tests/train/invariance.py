"""Seed 0's and seed 1's runs of every bundled model alone and in packs of 2 and 8, as JSON.

`python -m tests.train.invariance THREADS [MODEL ...]` trains each model (small widths, 2
epochs, a partial last batch, dropout where the model has it, per-seed gradient clipping,
AdamW) for K = 1, 2 and 8 with exact kernels on the CPU, under `THREADS` intra-op threads and
whatever the environment sets (ONEDNN_MAX_CPU_ISA, ATEN_CPU_CAPABILITY), and prints one JSON
line per model: the K whose seed-0 or seed-1 record (curves, final scores, and a hash of its
final parameters and buffers) differs bitwise from the smallest pack's, and whether seed 0 and
seed 1 in a pack of 8 whose seeds validate on 8 different splits (seeds.split=null) differ
from each of them alone on its own split.
tests/train/test_invariance.py runs it under a grid of thread counts and instruction sets.
"""

from __future__ import annotations

import functools
import hashlib
import json
import sys
from collections.abc import Callable

import torch

from seedhp.train.data import load_synthetic, split, split_many
from seedhp.train.loop import SeedResult, TrainSettings, train
from seedhp.train.models import CNN, MLP, AirBench, ResNet9, resnet18
from seedhp.train.seeds import derive_seeds

PACKS = (1, 2, 8)
# name -> (model factory, one example's shape, examples); small enough for seconds per model.
# Of the examples 60 validate, the rest train in batches of 32 and a partial last one.
MODELS: dict[str, tuple[Callable[..., torch.nn.Module], list[int], int]] = {
    "mlp": (functools.partial(MLP, hidden=[32], dropout=0.2), [1, 8, 8], 300),
    "cnn": (functools.partial(CNN, widths=[8, 16], dropout=0.1), [1, 8, 8], 300),
    "cnn_odd": (functools.partial(CNN, widths=[6, 10]), [1, 9, 9], 300),  # ceil-mode pools
    "resnet9": (functools.partial(ResNet9, width=4), [3, 8, 8], 300),
    "airbench": (functools.partial(AirBench, widths=[4, 8, 8]), [3, 8, 8], 300),
    "resnet18": (resnet18, [3, 8, 8], 140),  # 11 M parameters a seed: fewer steps
}


def record(r: SeedResult) -> dict[str, object]:
    """Everything a seed-run reports, as exact floats (repr round-trips)."""
    curves = {f"epoch {m}": r.history[m] for m in ("train_loss", "val_loss", "val_acc")}
    final = {f"final {m}": v for m, v in r.final.items() if m != "train_seconds"}
    weights = hashlib.sha256()
    for name, t in (r.state or {}).items():
        weights.update(name.encode() + t.contiguous().numpy().tobytes())
    return {**curves, **final, "status": r.status, "state": weights.hexdigest()}


def check(name: str) -> dict[str, object]:
    model, shape, n = MODELS[name]
    source = load_synthetic(shape, 4, n, 60)
    data = split(source, 60, 0)
    opt = functools.partial(torch.optim.AdamW, lr=3e-3)
    seeds = [derive_seeds(s) for s in range(max(PACKS))]
    settings = TrainSettings(epochs=2, batch_size=32, grad_clip=1.0, kernels="exact")
    cpu = torch.device("cpu")
    runs = {
        k: [record(r) for r in train(model, opt, data, seeds[:k], settings, cpu, keep_state=True)]
        for k in PACKS
    }
    differs = []
    for s in (0, 1):  # each seed in every pack that holds it, against the smallest
        holding = [k for k in PACKS if k > s]
        differs += [
            f"seed {s}: K={k} vs K={holding[0]}"
            for k in holding[1:]
            if runs[k][s] != runs[holding[0]][s]
        ]
    # seed s on split s, in a pack of 8 on splits 0..7, against seed s alone on split s
    mixed = train(
        model, opt, split_many(source, 60, range(8)), seeds, settings, cpu, keep_state=True
    )
    on_1 = train(model, opt, split(source, 60, 1), seeds[1:2], settings, cpu, keep_state=True)
    alone = {0: runs[1][0], 1: record(on_1[0])}
    differs += [
        f"seed {s}: K=8 on 8 splits vs alone" for s in (0, 1) if record(mixed[s]) != alone[s]
    ]
    return {
        "model": name,
        "threads": torch.get_num_threads(),
        "differs": differs,
        "train_loss": {k: runs[k][0]["epoch train_loss"] for k in PACKS},
    }


def main(argv: list[str]) -> None:
    torch.set_num_threads(int(argv[0]))  # OMP_NUM_THREADS above the core count is capped
    for name in argv[1:] or MODELS:
        print(json.dumps(check(name)), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
