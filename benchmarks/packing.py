"""Seed-runs per hour: seeds trained in packs of K vs one at a time (the K = 1 loop), in one
process, on the same data and settings, through seedhp.train.train (the trainer every job uses).

    python benchmarks/packing.py --model mlp --out benchmarks/results/packing_cpu_mlp.json
    python benchmarks/packing.py --model cnn --kernels fast --pack 8 ...
    python benchmarks/packing.py --data fashion_mnist --model mlp --epochs 2 ...  # make data
    # GPU (CIFAR-10's shape, synthetic data, 10 epochs):
    python benchmarks/packing.py --data synthetic --shape 3 32 32 --n-train 50000 \\
        --model resnet9 --epochs 10 --batch-size 512 --precision bf16 --pack auto --device cuda ...

Training only: no Hydra, no MLflow (benchmarks/sweep_overhead.py measures those). The K = 1 loop
trains `--alone` seeds, the packed run `--seeds` seeds (in packs of `--pack`); each is timed
after a warm-up pack of its own size (first-call costs: allocator, cuDNN autotuning, compile).
Achieved TFLOP/s counts one training step's FLOPs with torch.utils.flop_counter (forward and
backward, K = 1) times the steps, plus the evaluation forwards. The same run measures the
machine's limits: a square fp32 (and bf16) matmul, and torch.bmm at the pack's first Linear
(K, batch, in) @ (K, in, out); the JSON gives achieved GFLOP/s as a fraction of each.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import math
import os
import platform
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch

from examples import own_model
from seedhp.sweep.packing import CPU_PACK, GPU_PACK
from seedhp.train import models
from seedhp.train.data import (
    Splits,
    load_digits,
    load_synthetic,
    load_torchvision,
    split,
    steps_per_epoch,
)
from seedhp.train.loop import Schedule, TrainSettings, build_pack, per_seed_loss, train
from seedhp.train.optim import sgd_scaled_vectors
from seedhp.train.seeds import derive_seeds

BF16_PEAK_TFLOPS = {"H100": 989.0, "H200": 989.0, "A100": 312.0}  # dense, SXM data sheets

TORCHVISION = {"mnist": "MNIST", "fashion_mnist": "FashionMNIST"}
MODELS: dict[str, Any] = {
    "mlp": functools.partial(models.MLP, hidden=[128]),
    "mlp64": functools.partial(models.MLP, hidden=[64]),  # experiment=picard's 784-64-10
    # user modules the layers engine cannot pack (examples/own_model.py)
    "mlp_layernorm": functools.partial(own_model.LayerNormMLP, hidden=128),
    "cnn_groupnorm": functools.partial(own_model.GroupNormCNN, widths=[32, 64]),
    "cnn": functools.partial(models.CNN, widths=[32, 64]),
    "resnet9": functools.partial(models.ResNet9, width=64),
    "airbench": functools.partial(models.AirBench, widths=[64, 256, 256]),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--model", choices=sorted(MODELS), default="mlp")
    parser.add_argument(
        "--data", choices=["digits", "mnist", "fashion_mnist", "synthetic"], default="digits"
    )
    parser.add_argument("--root", default="data", help="MNIST / Fashion-MNIST (make data)")
    parser.add_argument("--shape", type=int, nargs="+", default=[3, 32, 32])
    parser.add_argument("--n-train", type=int, default=50000)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--pack", default="32", help="an int, or auto (largest that fits)")
    parser.add_argument("--seeds", type=int, default=64, help="seeds trained packed")
    parser.add_argument("--alone", type=int, default=8, help="seeds trained one at a time")
    parser.add_argument("--kernels", default="auto")
    parser.add_argument(
        "--engine", choices=["layers", "vmap", "none"], default="layers", help="of the packs"
    )
    parser.add_argument(
        "--alone-engine",
        choices=["layers", "vmap", "none"],
        help="of the one-at-a-time seeds (default: layers for layers, else none)",
    )
    parser.add_argument("--precision", default="fp32")
    parser.add_argument("--compile", action="store_true")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--out", required=True)
    args = parser.parse_args()

    device = torch.device(args.device)
    data = _data(args).to(device)
    factory = MODELS[args.model]
    if args.model == "airbench":  # airbench's recipe (conf/experiment/airbench.yaml)
        optimizer = functools.partial(
            sgd_scaled_vectors, lr=1.5, momentum=0.85, weight_decay=0.00133
        )
        schedule, smoothing = Schedule("onecycle", 0.23), 0.2
    else:
        optimizer = functools.partial(
            torch.optim.SGD, lr=0.05, momentum=0.9, nesterov=True, weight_decay=5e-4
        )
        schedule, smoothing = Schedule("cosine"), 0.0
    image = len(data.shape) == 3 and args.data == "synthetic"
    settings = TrainSettings(
        epochs=args.epochs,
        batch_size=args.batch_size,
        schedule=schedule,
        label_smoothing=smoothing,
        augment="crop_flip" if image else "none",
        crop_padding=2 if image else 0,
        kernels=args.kernels,
        precision=args.precision,
        compile=args.compile,
    )
    packed_settings = replace(settings, engine=args.engine)
    alone_engine = args.alone_engine or ("layers" if args.engine == "layers" else "none")
    alone_settings = replace(settings, engine=alone_engine)
    pack = _pack_size(args.pack, factory, data, optimizer, packed_settings, device)

    def seed_runs_per_hour(n: int, k: int) -> tuple[float, list[float]]:
        settings = alone_settings if k == 1 else packed_settings
        train(
            factory,
            optimizer,
            data,
            [derive_seeds(10_000 + i) for i in range(k)],
            settings,
            device,
        )
        _sync(device)
        tic, scores = time.perf_counter(), []
        for start in range(0, n, k):
            seeds = [derive_seeds(s) for s in range(start, min(n, start + k))]
            scores += [
                r.final["val_acc"]
                for r in train(factory, optimizer, data, seeds, settings, device)
            ]
        _sync(device)
        return n / (time.perf_counter() - tic) * 3600, scores

    alone_rate, alone_scores = seed_runs_per_hour(args.alone, 1) if args.alone else (math.nan, [])
    packed_rate, packed_scores = seed_runs_per_hour(args.seeds, pack)
    flops = _flops_per_seed_run(factory, data, packed_settings, device)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else _cpu_name()
    peak = next((v for k, v in BF16_PEAK_TFLOPS.items() if k in name), None)
    achieved = packed_rate / 3600 * flops / 1e12
    # the machine's own limits, measured in this run: a large matmul, and a batched matmul at
    # the pack's first layer (what a packed Linear computes)
    mm_fp32 = matmul_gflops(device, torch.float32)
    mm_bf16 = matmul_gflops(device, torch.bfloat16)
    first = _first_linear(factory, data)
    pack_bmm = (
        bmm_gflops(device, pack, args.batch_size, *first, dtype=torch.float32) if first else None
    )
    achieved_gflops = achieved * 1e3
    result = {
        "benchmark": "packing",
        "command": "python " + " ".join(__import__("sys").argv),
        "model": args.model,
        "data": f"synthetic {args.n_train}x{args.shape}"
        if args.data == "synthetic"
        else args.data,
        "train_examples": len(data.train),
        "epochs": args.epochs,
        "batch_size": args.batch_size,
        "kernels": args.kernels,
        "engine_packed": args.engine,
        "engine_alone": alone_engine,
        "precision": args.precision,
        "compile": args.compile,
        "pack_size": pack,
        "seed_runs_alone": args.alone,
        "seed_runs_packed": args.seeds,
        "seed_runs_per_hour_alone": round(alone_rate, 1),
        "seed_runs_per_hour_packed": round(packed_rate, 1),
        "speedup": round(packed_rate / alone_rate, 2) if args.alone else None,
        "val_acc_mean_alone": _mean(alone_scores),
        "val_acc_mean_packed": _mean(packed_scores),
        "gflop_per_seed_run": round(flops / 1e9, 2),
        "achieved_tflops": round(achieved, 3),
        "bf16_peak_tflops": peak,
        "fraction_of_bf16_peak": round(achieved / peak, 4) if peak else None,
        "achieved_gflops": round(achieved_gflops, 1),
        "matmul_fp32_gflops": round(mm_fp32, 1),
        "matmul_bf16_gflops": round(mm_bf16, 1) if mm_bf16 else None,
        "fraction_of_matmul_fp32": round(achieved_gflops / mm_fp32, 4),
        "pack_bmm_shape": [pack, args.batch_size, *first] if first else None,
        "pack_bmm_gflops": round(pack_bmm, 1) if pack_bmm else None,
        "fraction_of_pack_bmm": round(achieved_gflops / pack_bmm, 4) if pack_bmm else None,
        "device": name,
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "python": platform.python_version(),
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


def _data(args: argparse.Namespace) -> Splits:
    if args.data == "digits":
        return split(load_digits(), 288, 0)
    if args.data in TORCHVISION:  # the genuine files (make data), 5,000 validation images
        return split(load_torchvision(TORCHVISION[args.data], args.root), 5000, 0)
    source = load_synthetic(args.shape, 10, args.n_train, 10_000)
    return split(source, max(1, round(0.02 * args.n_train)), 0)


def _pack_size(
    pack: str,
    factory: Any,
    data: Splits,
    optimizer: Any,
    settings: TrainSettings,
    device: torch.device,
) -> int:
    """An int, or auto as the packed launcher chooses it: on a GPU, halved from GPU_PACK until
    a training step fits."""
    if pack != "auto":
        return int(pack)
    if device.type != "cuda":
        return CPU_PACK
    k = GPU_PACK
    while k > 1:
        try:
            _one_step(factory, data, optimizer, settings, device, k)
            return k
        except torch.OutOfMemoryError:
            torch.cuda.empty_cache()
            k //= 2
    return 1


def _one_step(
    factory: Any,
    data: Splits,
    optimizer: Any,
    settings: TrainSettings,
    device: torch.device,
    k: int,
) -> None:
    seeds = [derive_seeds(s) for s in range(k)]
    pack = build_pack(factory, data, seeds, settings.kernels, device, settings.engine)
    opt = optimizer(pack.parameters())
    idx = torch.arange(settings.batch_size, device=device)[:, None].expand(-1, k)
    x = data.normalize(data.train.x[idx])
    with torch.autocast(device.type, torch.bfloat16, enabled=settings.precision == "bf16"):
        logits = pack(x)
    per_seed_loss(logits.float(), data.train.y[idx]).sum().backward()
    opt.step()


def _flops_per_seed_run(
    factory: Any, data: Splits, settings: TrainSettings, device: torch.device
) -> float:
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with counter:
        _one_step(factory, data, functools.partial(torch.optim.SGD, lr=0.0), settings, device, 1)
    per_step = counter.get_total_flops()
    steps = steps_per_epoch(len(data.train), settings.batch_size) * settings.epochs
    forward_per_example = per_step / settings.batch_size / 3  # backward ~ 2x forward
    evals = (len(data.val) * settings.epochs + len(data.test)) * forward_per_example
    return per_step * steps + evals


def matmul_gflops(device: torch.device, dtype: torch.dtype, repeats: int = 7) -> float:
    """The median GFLOP/s of a square matmul large enough to reach the device's peak (2048 on
    a CPU, 8192 on a GPU), over `repeats` timings; 0.0 where the dtype is not supported."""
    n = 8192 if device.type == "cuda" else 2048
    try:
        a = torch.randn(n, n, device=device).to(dtype)
        b = torch.randn(n, n, device=device).to(dtype)
        torch.mm(a, b)
    except RuntimeError:
        return 0.0
    return _median_gflops(lambda: torch.mm(a, b), 2 * n**3, device, repeats)


def bmm_gflops(
    device: torch.device,
    k: int,
    batch: int,
    n_in: int,
    n_out: int,
    dtype: torch.dtype = torch.float32,
    repeats: int = 7,
) -> float:
    """The median GFLOP/s of torch.bmm at a pack's first layer: (K, B, in) @ (K, in, out)."""
    x = torch.randn(k, batch, n_in, device=device, dtype=dtype)
    w = torch.randn(k, n_in, n_out, device=device, dtype=dtype)
    return _median_gflops(lambda: torch.bmm(x, w), 2 * k * batch * n_in * n_out, device, repeats)


def _median_gflops(op: Any, flop: int, device: torch.device, repeats: int) -> float:
    op()
    _sync(device)
    calls = 1
    while True:  # enough calls for about 0.2 s per timing (bounded: at most 2**16 calls)
        tic = time.perf_counter()
        for _ in range(calls):
            op()
        _sync(device)
        if time.perf_counter() - tic > 0.2 or calls >= 2**16:
            break
        calls *= 2
    rates = []
    for _ in range(repeats):
        tic = time.perf_counter()
        for _ in range(calls):
            op()
        _sync(device)
        rates.append(flop * calls / (time.perf_counter() - tic) / 1e9)
    return sorted(rates)[len(rates) // 2]


def _first_linear(factory: Any, data: Splits) -> tuple[int, int] | None:
    """(in, out) features of the model's first layer when it is a Linear (an MLP), else None."""
    model = models.ModelFactory(factory, "benchmark")(data.shape, data.num_classes)
    first = next(m for m in model.modules() if isinstance(m, torch.nn.Linear | torch.nn.Conv2d))
    return (first.in_features, first.out_features) if isinstance(first, torch.nn.Linear) else None


def _cpu_name() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return f"{line.split(':', 1)[1].strip()} ({os.cpu_count()} cores)"
    return platform.machine()


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _mean(xs: list[float]) -> float | None:
    finite = [x for x in xs if math.isfinite(x)]
    return round(sum(finite) / len(finite), 4) if finite else None


if __name__ == "__main__":
    main()
