"""What needs a CUDA GPU (marked `gpu`; `make test` and `make test-all` leave them out,
benchmarks/gpu.sh runs them): packed fast kernels against one exact seed at a time, bf16
packs, torch.compile, and the command line on the device. Tolerances are the probe's
(seedhp.train.probe): a seed's result may not depend on its pack beyond them."""

from __future__ import annotations

import functools
import math
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from scipy import stats as sps

from seedhp.train.data import Part, load_synthetic, split
from seedhp.train.loop import TrainSettings, train
from seedhp.train.models import CNN, MLP, AirBench, build_seeded
from seedhp.train.pack import Pack
from seedhp.train.probe import PROBE_BATCHES, PROBE_RTOL, PROBE_RTOL_BF16, choose_engine
from seedhp.train.seeds import derive_seeds

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU"),
]
CUDA = torch.device("cuda")
ROOT = Path(__file__).resolve().parents[2]


def _data(channels: int = 3):  # type: ignore[no-untyped-def]
    return split(load_synthetic([channels, 16, 16], 10, 1200, 200), 200, 0).to(CUDA)


@pytest.mark.parametrize(
    "factory",
    [
        functools.partial(MLP, hidden=[64]),
        functools.partial(CNN, widths=[8, 16]),
        functools.partial(AirBench, widths=[8, 16, 16]),
    ],
)
def test_a_packed_forward_with_fast_kernels_is_each_seeds_own(factory) -> None:  # type: ignore[no-untyped-def]
    """Fast kernels (channels-last, grouped convolutions; cuDNN may use TF32 for them): each
    seed's logits are its own model's, within TF32 rounding."""
    shape = (3, 16, 16)
    seeds = [derive_seeds(s) for s in range(4)]
    models = [build_seeded(factory, shape, 10, s.init).to(CUDA).eval() for s in seeds]
    pack = Pack([build_seeded(factory, shape, 10, s.init) for s in seeds], "fast").to(CUDA)
    pack.eval()
    x = torch.randn(8, 4, *shape, device=CUDA)
    with torch.no_grad():
        out = pack(x)
        for k, m in enumerate(models):
            torch.testing.assert_close(out[:, k], m(x[:, k]), rtol=2e-3, atol=2e-3)


def test_fast_packs_train_like_exact_seeds_alone() -> None:
    """16 seeds of a CNN packed with fast kernels against each trained alone with exact
    kernels: after one epoch within rounding, after three the same distribution."""
    data = _data()
    model = functools.partial(CNN, widths=[8, 16])
    opt = functools.partial(torch.optim.SGD, lr=0.05, momentum=0.9)
    seeds = [derive_seeds(s) for s in range(16)]
    exact = TrainSettings(3, 64, kernels="exact")
    alone = [train(model, opt, data, [s], exact, CUDA)[0] for s in seeds]
    packed = train(model, opt, data, seeds, TrainSettings(3, 64, kernels="fast"), CUDA)
    for a, p in zip(alone, packed, strict=True):
        assert math.isclose(
            a.history["train_loss"][0], p.history["train_loss"][0], rel_tol=1e-2
        ), (a.history, p.history)
    va = [r.final["val_acc"] for r in alone]
    vp = [r.final["val_acc"] for r in packed]
    assert sps.ks_2samp(va, vp).pvalue > 0.05 and sps.mannwhitneyu(va, vp).pvalue > 0.05


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_the_probe_packs_on_the_gpu_and_a_seed_trains_the_same_in_any_pack(
    precision: str,
) -> None:
    """With train.engine=auto the probe accepts a packing engine for the CNN on the GPU, in
    fp32 and bf16; with it, seed 0's scores alone and last in a pack of 8 agree within the
    probe's tolerance over the probe's own budget (PROBE_BATCHES steps: a longer run lets
    rounding differences grow, which the probe does not bound)."""
    data = _data()
    model = functools.partial(CNN, widths=[8, 16])
    opt = functools.partial(torch.optim.SGD, lr=0.05, momentum=0.9)
    auto = TrainSettings(1, 64, precision=precision, engine="auto")
    choice = choose_engine(model, opt, data, auto, CUDA)
    assert choice.engine in ("layers", "vmap"), choice.rejected
    chosen = TrainSettings(1, 64, precision=precision, engine=choice.engine)
    short = replace(data, train=_head(data.train, PROBE_BATCHES * 64))
    seeds = [derive_seeds(s) for s in range(8)]
    [alone] = train(model, opt, short, seeds[-1:], chosen, CUDA)
    last = train(model, opt, short, seeds, chosen, CUDA)[-1]
    rtol = PROBE_RTOL_BF16 if precision == "bf16" else PROBE_RTOL
    for metric in ("train_loss", "val_loss"):
        for a, b in zip(alone.history[metric], last.history[metric], strict=True):
            assert math.isclose(a, b, rel_tol=rtol, abs_tol=rtol), (metric, a, b)


def _head(part: Part, n: int) -> Part:
    return Part(part.x[:n], part.y[:n])


def test_bf16_trains_as_well_as_fp32_across_seeds() -> None:
    """bf16 autocast changes each seed's numbers, not what the seeds reach: the final
    validation accuracies of 16 seeds come from the same distribution."""
    data = _data()
    model = functools.partial(MLP, hidden=[128])
    opt = functools.partial(torch.optim.SGD, lr=0.1, momentum=0.9)
    seeds = [derive_seeds(s) for s in range(16)]
    fp32 = train(model, opt, data, seeds, TrainSettings(3, 64), CUDA)
    bf16 = train(model, opt, data, seeds, TrainSettings(3, 64, precision="bf16"), CUDA)
    a = [r.final["val_acc"] for r in fp32]
    b = [r.final["val_acc"] for r in bf16]
    assert all(r.status == "finished" for r in fp32 + bf16)
    assert sps.mannwhitneyu(a, b).pvalue > 0.05, (a, b)


def test_a_compiled_pack_trains_like_the_eager_one() -> None:
    """torch.compile (Inductor) fuses and reorders the packed model's kernels: each seed's
    first-epoch loss within the probe's tolerance of eager mode, and the same scores after."""
    data = _data(channels=1)
    model = functools.partial(MLP, hidden=[64])
    opt = functools.partial(torch.optim.SGD, lr=0.05, momentum=0.9)
    seeds = [derive_seeds(s) for s in range(8)]
    eager = train(model, opt, data, seeds, TrainSettings(2, 64), CUDA)
    compiled = train(model, opt, data, seeds, TrainSettings(2, 64, compile=True), CUDA)
    for e, c in zip(eager, compiled, strict=True):
        assert math.isclose(
            e.history["train_loss"][0], c.history["train_loss"][0], rel_tol=1e-3
        ), (e.history, c.history)
        assert abs(e.final["val_acc"] - c.final["val_acc"]) <= 0.02


def test_a_sweep_on_the_gpu_from_the_command_line(tmp_path: Path) -> None:
    """`python -m seedhp -m seed='range(0,16)' train.device=cuda`: 16 finished seed-runs,
    trained in packs on the device."""
    import sqlite3

    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "seedhp",
            "-m",
            "seed=range(0,16)",
            "model=cnn",
            "train.epochs=2",
            "train.device=cuda",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert done.returncode == 0, done.stderr[-2000:]
    db = sqlite3.connect(tmp_path / "outputs" / "mlflow.db")
    rows = db.execute(
        "select e.value, k.value, count(*) from tags e "
        "join tags k on k.run_uuid = e.run_uuid and k.key = 'seedhp.pack_size' "
        "join tags s on s.run_uuid = e.run_uuid and s.key = 'seedhp.status' "
        "where e.key = 'seedhp.pack_engine' and s.value = 'finished' group by e.value, k.value"
    ).fetchall()
    assert sum(n for _, _, n in rows) == 16, rows
    assert all(engine != "none" and int(k) > 1 for engine, k, _ in rows), rows  # really packed
