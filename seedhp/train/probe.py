"""The probe: which pack engine keeps a seed's result independent of its pack, for this model.

Before the first pack of a configuration trains, seed 0 trains for PROBE_BATCHES steps (the
real batch size, batches of the real data) alone and last in packs of 2, 4 and 8, with each
candidate engine in turn, and is evaluated on batches of the real shapes. The sizes are the
same whatever the run's own pack size, so that the choice is the configuration's: a seed run
alone in one process and packed in another trains with the same engine.
Its losses and scores, and its parameters and buffers after the last step, must be the same:
bitwise on the CPU with exact kernels in fp32 (there only `layers` is a candidate: vmap's
batched matrix products on the CPU round differently by a seed's position in the pack, which no
probe of a few positions can rule out), otherwise within PROBE_RTOL (`layers`, then `vmap`).
The first engine that passes is used for every seed of the configuration, alone or packed;
when none passes, `none` trains the seeds one after another, which is always correct.

Why a few steps are enough: a training step is a function of the seed's state (parameters,
buffers, optimizer state) and its batch, computed by kernels chosen by shapes, memory layout
and thread count, not by values. Every step of a run has the shapes of the probe's steps
(training batches are always full; steps_per_epoch), and every evaluation batch the shape of
one the probe evaluates (a full evaluation batch and the short last one of each part). The
second step reads the optimizer state the first wrote, so when seed 0's whole state after it is
bitwise the same alone and packed, each later step starts from the same state and computes the
same thing, epoch after epoch. A divergence that a longer run would show first appears as a
difference in the state after the probe's steps, not in a loss, which can hide it for an epoch
(a gradient clip whose norm rounded differently in a pack changed the weights by 1e-9 at once
and the training loss only in epoch 2). What the probe cannot see is a kernel whose result
depends on the values themselves or on a pack size other than those probed; the test grid in
tests/train/test_invariance.py checks the bundled models at K = 1, 2 and 8 under several
thread counts and instruction sets.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import torch

from seedhp.train.data import Part, Splits
from seedhp.train.loop import SeedResult, TrainSettings, train
from seedhp.train.seeds import derive_seeds

log = logging.getLogger("seedhp")
PROBE_BATCHES = 2  # training steps of the probe, at the configuration's batch size
PROBE_PACKS = (2, 4, 8)  # pack sizes seed 0 is compared in, last in each
PROBE_RTOL = 1e-4  # relative agreement required where bitwise equality is not promised
PROBE_RTOL_BF16 = 2e-2
COMPARED = ("train_loss", "val_loss", "val_acc")
VMAP_NOT_EXACT = (
    "vmap: not used for bit-identical seeds (train.kernels=exact on the CPU): its batched matrix "
    "products round by a seed's position in the pack; train.kernels=fast accepts it within "
    f"rtol {PROBE_RTOL:g}"
)


@dataclass(frozen=True)
class Choice:
    engine: str
    exact: bool  # compared bitwise (CPU, exact kernels, fp32)
    rejected: tuple[str, ...] = ()  # "engine: why", for each engine passed over


def choose_engine(
    model_factory: Callable[..., torch.nn.Module],
    optimizer_factory: Callable[..., torch.optim.Optimizer],
    data: Splits,
    settings: TrainSettings,
    device: torch.device,
) -> Choice:
    """settings.engine when it names one; for `auto`, the first engine the probe accepts."""
    exact = device.type == "cpu" and settings.kernels in ("auto", "exact")
    exact = exact and settings.precision == "fp32"
    if settings.engine != "auto":
        return Choice(settings.engine, exact)
    rejected: list[str] = []
    why = probe("layers", model_factory, optimizer_factory, data, settings, device, exact)
    if why is None:
        return Choice("layers", exact)
    rejected.append(f"layers: {why}")
    if exact:  # a pass at the probe's positions would not promise every position of a pack
        rejected.append(VMAP_NOT_EXACT)
        return Choice("none", exact, tuple(rejected))
    why = probe("vmap", model_factory, optimizer_factory, data, settings, device, exact)
    if why is None:
        return Choice("vmap", exact, tuple(rejected))
    rejected.append(f"vmap: {why}")
    return Choice("none", exact, tuple(rejected))


def probe(
    engine: str,
    model_factory: Callable[..., torch.nn.Module],
    optimizer_factory: Callable[..., torch.optim.Optimizer],
    data: Splits,
    settings: TrainSettings,
    device: torch.device,
    exact: bool,
    packs: Sequence[int] = PROBE_PACKS,
) -> str | None:
    """None when seed 0 gives the same alone and last in packs of each size in `packs` under
    `engine`; otherwise why not, in a few words."""
    small = _probe_data(data, settings)
    short = replace(settings, epochs=1, engine=engine, compile=False)
    s0, *others = (derive_seeds(s) for s in range(max(packs)))
    state = torch.random.get_rng_state()

    def seed0(k: int) -> SeedResult:
        # seed 0 last: where a batched kernel's result depends on the position of a seed's
        # block in memory, it shows at an odd position
        seeds = [*others[: k - 1], s0]
        return train(
            model_factory, optimizer_factory, small, seeds, short, device, keep_state=True
        )[-1]

    try:
        alone, *packed = (seed0(k) for k in (1, *packs))
    except Exception as err:  # cannot pack a layer, randomness under vmap, ...
        text = str(err).strip().splitlines()[0] if str(err).strip() else ""
        return f"{type(err).__name__}: {text}"[:300]
    finally:
        torch.random.set_rng_state(state)
    rtol = 0.0 if exact else (PROBE_RTOL_BF16 if settings.precision == "bf16" else PROBE_RTOL)
    for k, result in zip(packs, packed, strict=True):
        why = _differs(alone, result, rtol, k)
        if why is not None:
            return why
    return None


def _probe_data(data: Splits, settings: TrainSettings) -> Splits:
    """PROBE_BATCHES training batches of the real data, and validation and test parts whose
    evaluation batches have every shape the run's have: a full one where the part has one,
    and the short last one. Seed 0's split when the pack's seeds' splits differ."""
    data = data.alone(0)
    n_train = min(len(data.train), PROBE_BATCHES * settings.batch_size)

    def head(p: Part, n: int) -> Part:
        return Part(p.x[:n], p.y[:n])

    def eval_shapes(p: Part) -> Part:
        b = settings.eval_batch_size
        full = b if len(p) >= b else 0
        return head(p, full + len(p) % b)

    return replace(
        data,
        train=head(data.train, n_train),
        val=eval_shapes(data.val),
        test=eval_shapes(data.test),
    )


def _differs(alone: SeedResult, packed: SeedResult, rtol: float, k: int) -> str | None:
    pairs = [(f"epoch-1 {m}", alone.history[m], packed.history[m]) for m in COMPARED]
    pairs += [(m, [alone.final[m]], [packed.final[m]]) for m in ("test_loss", "test_acc")]
    why = _state_differs(alone.state or {}, packed.state or {}, rtol, k)
    if why is not None:
        return why
    for name, a, b in pairs:
        if len(a) != len(b):
            return f"seed 0's {name} is recorded alone but not in a pack of {k}"
        for x, y in zip(a, b, strict=True):
            same = x == y or (math.isnan(x) and math.isnan(y))
            if not same and not (rtol and math.isclose(x, y, rel_tol=rtol, abs_tol=rtol * 1e-2)):
                how = "bitwise equal" if rtol == 0 else f"within rtol {rtol:g}"
                return f"seed 0's {name} is {x!r} alone and {y!r} in a pack of {k} (not {how})"
    return None


def _state_differs(
    alone: dict[str, torch.Tensor], packed: dict[str, torch.Tensor], rtol: float, k: int
) -> str | None:
    """Where seed 0's parameters and buffers after the probe's steps differ alone and in a
    pack of k: bitwise (rtol 0), else beyond rtol."""
    for name, a in alone.items():
        b = packed[name]
        same = torch.equal(a, b) if rtol == 0 else _close(a, b, rtol)
        if not same:
            how = "bitwise" if rtol == 0 else f"within rtol {rtol:g}"
            diff = (a.double() - b.double()).abs().max().item() if a.is_floating_point() else 1
            return (
                f"seed 0's {name} after {PROBE_BATCHES} steps differs alone and in a pack of "
                f"{k} (not {how}; by up to {diff:.3g})"
            )
    return None


def _close(a: torch.Tensor, b: torch.Tensor, rtol: float) -> bool:
    if not a.is_floating_point():
        return torch.equal(a, b)
    return torch.allclose(a.float(), b.float(), rtol=rtol, atol=rtol * 1e-2, equal_nan=True)
