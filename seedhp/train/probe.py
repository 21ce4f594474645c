"""The probe: which pack engine keeps a seed's result independent of its pack, for this model.

Before the first pack of a configuration trains, seed 0 trains for a few steps (the real batch
size, a few batches of the real data) alone, last in a pack of 2 and last in a pack of 4, with
each candidate engine in turn. Its per-epoch losses, validation and test scores must be the same:
bitwise on the CPU with exact kernels in fp32 (there only `layers` is a candidate: vmap's
batched matrix products on the CPU round differently by a seed's position in the pack, which no
probe of a few positions can rule out), otherwise within PROBE_RTOL (`layers`, then `vmap`).
The first engine that passes is used for every seed of the configuration, alone or packed;
when none passes, `none` trains the seeds one after another, which is always correct.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass, replace

import torch

from seedhp.train.data import Part, Splits
from seedhp.train.loop import SeedResult, TrainSettings, train
from seedhp.train.seeds import derive_seeds

log = logging.getLogger("seedhp")
PROBE_BATCHES = 2  # training steps of the probe, at the configuration's batch size
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
) -> str | None:
    """None when seed 0 gives the same alone and last in packs of 2 and 4 under `engine`;
    otherwise why not, in a few words."""
    small = _probe_data(data, settings)
    short = replace(settings, epochs=1, engine=engine, compile=False)
    s0, *others = (derive_seeds(s) for s in range(4))
    state = torch.random.get_rng_state()
    try:
        [alone] = train(model_factory, optimizer_factory, small, [s0], short, device)
        # seed 0 last in a pack of 2 and of 4: where a batched kernel's result depends on the
        # position of a seed's block in memory, it shows at an odd position
        packs = [
            train(model_factory, optimizer_factory, small, [*others[: k - 1], s0], short, device)[
                -1
            ]
            for k in (2, 4)
        ]
    except Exception as err:  # cannot pack a layer, randomness under vmap, ...
        text = str(err).strip().splitlines()[0] if str(err).strip() else ""
        return f"{type(err).__name__}: {text}"[:300]
    finally:
        torch.random.set_rng_state(state)
    rtol = 0.0 if exact else (PROBE_RTOL_BF16 if settings.precision == "bf16" else PROBE_RTOL)
    for k, packed in zip((2, 4), packs, strict=True):
        why = _differs(alone, packed, rtol, k)
        if why is not None:
            return why
    return None


def _probe_data(data: Splits, settings: TrainSettings) -> Splits:
    """A few training batches and one evaluation batch of the real data."""
    n_train = min(len(data.train), PROBE_BATCHES * settings.batch_size)
    n_eval = min(settings.eval_batch_size, 256)

    def head(p: Part, n: int) -> Part:
        return Part(p.x[: min(n, len(p))], p.y[: min(n, len(p))])

    return replace(
        data,
        train=head(data.train, n_train),
        val=head(data.val, n_eval),
        test=head(data.test, n_eval),
    )


def _differs(alone: SeedResult, packed: SeedResult, rtol: float, k: int) -> str | None:
    pairs = [(f"epoch-1 {m}", alone.history[m], packed.history[m]) for m in COMPARED]
    pairs += [(m, [alone.final[m]], [packed.final[m]]) for m in ("test_loss", "test_acc")]
    for name, a, b in pairs:
        if len(a) != len(b):
            return f"seed 0's {name} is recorded alone but not in a pack of {k}"
        for x, y in zip(a, b, strict=True):
            same = x == y or (math.isnan(x) and math.isnan(y))
            if not same and not (rtol and math.isclose(x, y, rel_tol=rtol, abs_tol=rtol * 1e-2)):
                how = "bitwise equal" if rtol == 0 else f"within rtol {rtol:g}"
                return f"seed 0's {name} is {x!r} alone and {y!r} in a pack of {k} (not {how})"
    return None
