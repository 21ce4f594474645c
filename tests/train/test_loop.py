from __future__ import annotations

import functools
import math

import pytest
import torch

from seedhp.train.data import load_digits, load_synthetic, split
from seedhp.train.loop import Schedule, TrainSettings, objective_value, train
from seedhp.train.models import MLP, build_seeded
from seedhp.train.seeds import derive_seeds

CPU = torch.device("cpu")
SGD = functools.partial(torch.optim.SGD, lr=0.05, momentum=0.9, nesterov=True)


@pytest.fixture(scope="module")
def digits():  # type: ignore[no-untyped-def]
    return split(load_digits(), 144, derive_seeds(0).split)


def run(digits, seed_streams, epochs=2, lr=0.05, **kw):  # type: ignore[no-untyped-def]
    opt = functools.partial(torch.optim.SGD, lr=lr, momentum=0.9, nesterov=True)
    model = functools.partial(MLP, hidden=[32], dropout=0.2)
    return train(model, opt, digits, seed_streams, TrainSettings(epochs=epochs, **kw), CPU)


@pytest.mark.parametrize(
    ("name", "warmup", "expected"),
    [
        ("constant", 0.0, [1.0, 1.0, 1.0, 1.0]),
        ("constant", 0.5, [0.5, 1.0, 1.0, 1.0]),
        ("cosine", 0.0, [1.0, 0.8535533905932737, 0.5, 0.14644660940672627]),
        ("cosine", 0.5, [0.5, 1.0, 1.0, 0.5]),
        ("onecycle", 0.5, [0.5, 1.0, 1.0, 0.5]),
        ("onecycle", 0.0, [1.0, 0.75, 0.5, 0.25]),
    ],
)
def test_schedule_factors(name: str, warmup: float, expected: list[float]) -> None:
    schedule = Schedule(name, warmup)
    assert [schedule.factor(i, 4) for i in range(4)] == pytest.approx(expected)


def test_seed_zero_trains_like_any_seed_and_seeds_differ(digits) -> None:  # type: ignore[no-untyped-def]
    r0, r1 = run(digits, [derive_seeds(0)])[0], run(digits, [derive_seeds(1)])[0]
    assert r0.status == r1.status == "finished"
    assert r0.final["val_acc"] > 0.8 and r0.final["test_acc"] > 0.8
    assert r0.history["train_loss"] != r1.history["train_loss"]
    assert len(r0.history["val_acc"]) == 2 and set(r0.history) >= {"train_loss", "val_loss", "lr"}


def test_each_stream_moves_only_what_it_owns(digits) -> None:  # type: ignore[no-untyped-def]
    base, other_data, other_init = (
        derive_seeds(3),
        derive_seeds(3, {"data": 9}),
        derive_seeds(3, {"init": 9}),
    )
    shape, n = digits.shape, len(digits.train)
    weights = [
        build_seeded(MLP, shape, 10, s.init).state_dict() for s in (base, other_data, other_init)
    ]
    orders = [
        torch.randperm(n, generator=torch.Generator().manual_seed(s.data))
        for s in (base, other_data, other_init)
    ]
    assert all(
        torch.equal(weights[0][k], weights[1][k]) for k in weights[0]
    )  # data seed: same init
    assert not torch.equal(orders[0], orders[1])  # ... other order
    assert not torch.equal(weights[0]["1.weight"], weights[2]["1.weight"])  # init seed: other init
    assert torch.equal(orders[0], orders[2])  # ... same order
    # and training uses them: every run differs
    h = [
        run(digits, [s], epochs=1)[0].history["train_loss"] for s in (base, other_data, other_init)
    ]
    assert h[0] != h[1] and h[0] != h[2]


def test_same_seed_same_bits(digits) -> None:  # type: ignore[no-untyped-def]
    a, b = run(digits, [derive_seeds(4)])[0], run(digits, [derive_seeds(4)])[0]
    for m in ("train_loss", "val_loss", "val_acc"):
        assert a.history[m] == b.history[m]
    assert a.final["test_loss"] == b.final["test_loss"]


def test_divergence_stops_early_and_is_recorded(digits) -> None:  # type: ignore[no-untyped-def]
    [r] = run(digits, [derive_seeds(0)], epochs=6, lr=1e6)
    assert r.status == "diverged" and r.diverged_epoch is not None and r.diverged_epoch < 6
    assert len(r.history["val_acc"]) == r.diverged_epoch - 1
    assert math.isnan(r.final["val_acc"]) and math.isnan(r.final["test_acc"])


def test_misspelled_objective_lists_the_metrics(digits) -> None:  # type: ignore[no-untyped-def]
    [r] = run(digits, [derive_seeds(0)], epochs=1)
    assert objective_value(r.final, "test_acc") == r.final["test_acc"]
    with pytest.raises(KeyError, match=r"metrics: .*val_acc"):
        objective_value(r.final, "val_accuracy")


@pytest.mark.parametrize(
    ("n_val", "eval_batch", "batches"),
    [(2500, 1024, [1024, 452]), (300, 1024, [300]), (2048, 1024, [1024]), (40, 20, [20])],
)
def test_the_probe_evaluates_every_batch_shape_the_run_evaluates(
    n_val: int, eval_batch: int, batches: list[int]
) -> None:
    from seedhp.train.probe import _probe_data

    data = split(load_synthetic([1, 4, 4], 3, n_val + 100, 10), n_val, 0)
    small = _probe_data(data, TrainSettings(batch_size=16, eval_batch_size=eval_batch))
    n = len(small.val)
    shapes = [min(eval_batch, n - start) for start in range(0, n, eval_batch)]
    assert shapes == batches and len(small.train) == 32
