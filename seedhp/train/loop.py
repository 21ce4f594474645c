"""The training loop: K seeds of one configuration trained together as one packed model.

A plain run is K = 1 of this same loop. Seed k's initial weights come from its `init` stream,
its example order from `data`, its augmentation from `augment` and its dropout masks from
`dropout`; since the seeds share no parameter and the loss is the sum of per-seed losses, each
seed's gradient is exactly that of its own loss, and nothing it computes depends on K.
"""

from __future__ import annotations

import functools
import math
import time
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from seedhp.train.data import Part, Splits, augment, steps_per_epoch
from seedhp.train.engines import LoopPack, StackedPack, VmapPack
from seedhp.train.models import build_seeded
from seedhp.train.pack import Pack, Prefolded, clip_grad_norm_per_seed
from seedhp.train.seeds import SeedStreams

SCHEDULES = ("constant", "cosine", "onecycle")
EPOCH_METRICS = ("train_loss", "val_loss", "val_acc", "lr", "epoch_seconds")
FINAL_METRICS = (
    "val_acc",
    "val_loss",
    "best_val_acc",
    "test_acc",
    "test_loss",
    "train_loss",
    "train_seconds",
)


@dataclass(frozen=True)
class Schedule:
    """Learning-rate multiplier per step: linear warm-up, then `name`'s shape."""

    name: str = "cosine"
    warmup: float = 0.0  # fraction of all steps spent warming up linearly from 0

    def factor(self, step: int, total: int) -> float:
        """The multiplier of the base lr at `step` (0-based) of `total` steps.

        constant: 1 after warm-up. cosine: half a cosine from 1 to 0 over the steps after
        warm-up. onecycle: the triangle of Smith's one-cycle as fast-CIFAR training uses it,
        linear from 0 to 1 over the warm-up and linear back to 0 at the end.
        """
        warmup = round(self.warmup * total)
        if step < warmup:
            return (step + 1) / warmup
        if self.name == "constant":
            return 1.0
        rest = max(1, total - warmup)
        progress = min(1.0, (step - warmup) / rest)
        if self.name == "cosine":
            return 0.5 * (1.0 + math.cos(math.pi * progress))
        return 1.0 - progress  # onecycle


@dataclass(frozen=True)
class TrainSettings:
    epochs: int = 20
    batch_size: int = 64
    schedule: Schedule = field(default_factory=Schedule)
    label_smoothing: float = 0.0
    grad_clip: float | None = None  # max L2 norm of each seed's gradient; None: no clipping
    augment: str = "none"
    crop_padding: int = 0
    eval_batch_size: int = 1024
    kernels: str = "auto"  # exact | fast | auto (exact on CPU, fast on CUDA): see seedhp.pack
    engine: str = "layers"  # layers | vmap | none: how a pack is computed (seedhp.train.engines)
    precision: str = "fp32"  # fp32 | bf16 (autocast on the device)
    compile: bool = False  # torch.compile the packed model (dynamo reuses it across packs)


@dataclass
class SeedResult:
    """One seed-run: its per-epoch curves, final scores and status (finished | diverged)."""

    seeds: SeedStreams
    history: dict[str, list[float]]
    final: dict[str, float]
    status: str
    diverged_epoch: int | None = None
    test_predictions: list[int] | None = None
    state: dict[str, Tensor] | None = None  # its parameters and buffers at the end (keep_state)


# (epoch, epochs, this epoch's metrics per seed; None for a seed that has diverged)
EpochCallback = Callable[[int, int, list[dict[str, float] | None]], None]


def train(
    model_factory: Callable[..., torch.nn.Module],
    optimizer_factory: Callable[..., torch.optim.Optimizer],
    data: Splits,
    seeds: Sequence[SeedStreams],
    settings: TrainSettings,
    device: torch.device,
    on_epoch: EpochCallback | None = None,
    keep_predictions: bool = False,
    keep_state: bool = False,
) -> list[SeedResult]:
    """Train one configuration under each of `seeds`, as one pack; one result per seed. With
    the `none` engine the seeds train one after another, each alone. `keep_state`: each
    result holds its seed's final parameters and buffers (the probe compares them)."""
    if settings.engine == "none" and len(seeds) > 1:
        return [
            result
            for k, s in enumerate(seeds)
            for result in train(
                model_factory,
                optimizer_factory,
                data.alone(k),
                [s],
                settings,
                device,
                on_epoch=None if on_epoch is None else _as_seed(on_epoch, k, len(seeds)),
                keep_predictions=keep_predictions,
                keep_state=keep_state,
            )
        ]
    start = time.perf_counter()
    K, B = len(seeds), settings.batch_size
    if any(p.rows is not None and p.rows.shape[1] != K for p in (data.train, data.val, data.test)):
        raise ValueError(f"the data holds the parts of {data.train.rows.shape[1]} seeds, not {K}")  # type: ignore[union-attr]
    model = build_pack(model_factory, data, seeds, settings.kernels, device, settings.engine)
    if settings.engine == "none":  # randomness in its forward draws from the global generator
        torch.manual_seed(seeds[0].dropout)
    forward = torch.compile(model) if settings.compile else model
    autocast = functools.partial(
        torch.autocast, device.type, dtype=torch.bfloat16, enabled=settings.precision == "bf16"
    )
    model.set_dropout_generators([_generator(s.dropout, device) for s in seeds])
    order = [torch.Generator().manual_seed(s.data) for s in seeds]
    batches = Batches(data, model, settings, [_generator(s.augment, device) for s in seeds])
    optimizer = optimizer_factory(model.parameters())
    steps = steps_per_epoch(len(data.train), B)
    total = steps * settings.epochs
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda i: settings.schedule.factor(i, total)
    )
    base_lr = optimizer.param_groups[0]["lr"]

    history: list[dict[str, list[float]]] = [{m: [] for m in EPOCH_METRICS} for _ in seeds]
    alive = torch.ones(K, dtype=torch.bool, device=device)
    diverged_at: list[int | None] = [None] * K
    for epoch in range(1, settings.epochs + 1):
        tic = time.perf_counter()
        lr = base_lr * settings.schedule.factor((epoch - 1) * steps, total)
        model.train()
        perm = torch.stack([torch.randperm(len(data.train), generator=g) for g in order], 1)
        perm = perm.to(device)  # (N, K): column k is seed k's order of its training examples
        perm = data.train.pool_rows(perm)  # ... as rows of x (a pool when seeds' splits differ)
        loss_sum = torch.zeros(K, device=device)
        for i in range(steps):
            idx = perm[i * B : (i + 1) * B]  # (B, K)
            x = batches.train(idx)  # (B, K, *shape), augmented; or Prefolded
            with autocast():
                logits = forward(x)  # (B, K, classes)
            losses = per_seed_loss(logits.float(), data.train.y[idx], settings.label_smoothing)
            optimizer.zero_grad(set_to_none=True)
            losses.sum().backward()  # seeds share no parameter: seed k's grad is its own loss's
            if settings.grad_clip is not None:
                clip_grad_norm_per_seed(model, settings.grad_clip)
            optimizer.step()
            scheduler.step()
            alive &= torch.isfinite(losses)  # stays on the device until the epoch ends
            loss_sum += losses.detach()
        with autocast():
            val_loss, val_acc, _ = evaluate(
                forward, model.K, batches, "val", settings.eval_batch_size
            )
        alive &= torch.isfinite(val_loss)

        # one host sync per epoch
        train_loss = (loss_sum / steps).tolist()
        alive_now, val_loss_l, val_acc_l = alive.tolist(), val_loss.tolist(), val_acc.tolist()
        seconds = time.perf_counter() - tic
        this_epoch: list[dict[str, float] | None] = [None] * K
        for k in range(K):
            if diverged_at[k] is not None:
                continue
            if not alive_now[k]:
                diverged_at[k] = epoch
                continue
            values = (train_loss[k], val_loss_l[k], val_acc_l[k], lr, seconds / K)
            this_epoch[k] = dict(zip(EPOCH_METRICS, values, strict=True))
            for name, value in zip(EPOCH_METRICS, values, strict=True):
                history[k][name].append(value)
        if on_epoch is not None:
            on_epoch(epoch, settings.epochs, this_epoch)
        if not any(alive_now):
            break

    with autocast():
        test_loss, test_acc, predictions = evaluate(
            forward, model.K, batches, "test", settings.eval_batch_size
        )
    seconds = time.perf_counter() - start
    results = []
    for k, s in enumerate(seeds):
        h = history[k]
        diverged = diverged_at[k] is not None
        final = {
            "val_acc": h["val_acc"][-1] if h["val_acc"] and not diverged else math.nan,
            "val_loss": h["val_loss"][-1] if h["val_loss"] and not diverged else math.nan,
            "best_val_acc": max(h["val_acc"], default=math.nan),
            "test_acc": math.nan if diverged else float(test_acc[k]),
            "test_loss": math.nan if diverged else float(test_loss[k]),
            "train_loss": h["train_loss"][-1] if h["train_loss"] and not diverged else math.nan,
            "train_seconds": seconds / K,  # its share of the pack's time
        }
        results.append(
            SeedResult(
                seeds=s,
                history=h,
                final=final,
                status="diverged" if diverged else "finished",
                diverged_epoch=diverged_at[k],
                test_predictions=predictions[:, k].tolist() if keep_predictions else None,
                state=seed_state(model, k) if keep_state else None,
            )
        )
    return results


def seed_state(model: Pack | StackedPack, k: int) -> dict[str, Tensor]:
    """Seed k's parameters and buffers: slice k of each stacked (K, ...) tensor, and the
    pack's shared counters (a batch norm's num_batches_tracked) as they are."""
    return {
        name: (t[k] if t.ndim else t).detach().cpu().clone()
        for name, t in model.state_dict().items()
    }


def build_pack(
    model_factory: Callable[..., torch.nn.Module],
    data: Splits,
    seeds: Sequence[SeedStreams],
    kernels: str,
    device: torch.device,
    engine: str = "layers",
) -> Pack | StackedPack:
    """Each seed's model from its `init` stream, data-dependent initialisation, packed on the
    device by `engine` (seedhp.train.engines); kernels "auto" is exact on CPU and fast on CUDA."""
    models = [build_seeded(model_factory, data.shape, data.num_classes, s.init) for s in seeds]
    init_from_data(models, data)
    if engine == "vmap":
        return VmapPack(models).to(device)
    if engine == "none":
        if len(models) != 1:
            raise ValueError("the none engine trains one seed at a time")
        return LoopPack(models).to(device)
    if kernels == "auto":
        kernels = "fast" if device.type == "cuda" else "exact"
    return Pack(models, kernels).to(device)


def _as_seed(on_epoch: EpochCallback, k: int, K: int) -> EpochCallback:
    """A one-seed training's epoch callback, reported as seed k of a pack of K."""

    def call(epoch: int, epochs: int, values: list[dict[str, float] | None]) -> None:
        on_epoch(epoch, epochs, [values[0] if i == k else None for i in range(K)])

    return call


def init_from_data(models: Sequence[torch.nn.Module], data: Splits, n: int = 5000) -> None:
    """Data-dependent initialisation (airbench's whitening filters): computed from the first n
    images of the training part, which no seed chooses, and copied into every seed's model
    (computed once per training part when the pack's seeds are on different splits)."""
    if getattr(models[0], "init_from_data", None) is None:
        return
    train, done = data.train, dict[bytes, dict[str, Tensor]]()
    for k, m in enumerate(models):
        rows = (
            torch.arange(min(n, len(train)), device=train.x.device)
            if train.rows is None
            else train.rows[:n, k]
        )
        key = rows.cpu().numpy().tobytes()
        if key in done:
            m.load_state_dict(done[key], strict=False)
        else:
            done[key] = m.init_from_data(data.normalize(train.x[rows]))  # type: ignore[operator]


def per_seed_loss(logits: Tensor, y: Tensor, label_smoothing: float = 0.0) -> Tensor:
    """Mean cross-entropy of each seed: logits (B, K, C), labels (B, K) -> (K,)."""
    B, K, C = logits.shape
    ce = F.cross_entropy(
        logits.reshape(B * K, C),
        y.reshape(B * K),
        reduction="none",
        label_smoothing=label_smoothing,
    )
    return ce.view(B, K).t().contiguous().mean(1)  # reduce each seed's own contiguous row


class Batches:
    """How a pack's batches are gathered. Standardised examples (B, K, *shape), augmented; or,
    for a pack that takes Prefolded batches (an MLP on the CPU; no augmentation, not
    compiled), gathered straight into its first layer's operand from pools of each part's
    [standardised, flattened x | 1], made once: the same values either way."""

    def __init__(
        self,
        data: Splits,
        model: torch.nn.Module,
        settings: TrainSettings,
        augment_generators: Sequence[torch.Generator],
    ) -> None:
        self.settings, self.augment_generators = settings, augment_generators
        self.pools: dict[int, Tensor] | None = None
        if (
            isinstance(model, Pack)
            and model.prefolds
            and settings.augment == "none"
            and not settings.compile
        ):
            self.pools, self.data = _prefolded(data), data
        else:
            self.data = _LAST_STANDARDISED.get(data, Splits.standardise)  # the same values

    def train(self, idx: Tensor) -> Tensor | Prefolded:
        """Rows idx (B, K) of the training part's x, seed k's in column k."""
        part = self.data.train
        if self.pools is not None:
            return Prefolded(_rows(self.pools[id(part.x)], idx))
        x = self.data.normalize(part.x[idx])
        s = self.settings
        return augment(x, s.augment, s.crop_padding, self.augment_generators)

    def eval(self, which: str, start: int, stop: int, K: int) -> tuple[Tensor | Prefolded, Tensor]:
        """Examples start..stop of each seed's part `which` (val, test) and their labels (b, K)."""
        part: Part = getattr(self.data, which)
        if part.rows is None:  # every seed on the same examples
            y = part.y[start:stop]
            b = y.shape[0]
            if self.pools is not None:
                pool = self.pools[id(part.x)][start:stop]
                return Prefolded(pool.unsqueeze(0).expand(K, *pool.shape)), y[:, None].expand(b, K)
            x = self.data.normalize(part.x[start:stop])
            return x.unsqueeze(1).expand(b, K, *x.shape[1:]), y[:, None].expand(b, K)
        rows = part.rows[start:stop]  # (b, K): seed k on its own part's examples
        if self.pools is not None:
            return Prefolded(_rows(self.pools[id(part.x)], rows)), part.y[rows]
        return self.data.normalize(part.x[rows]), part.y[rows]


def _rows(pool: Tensor, idx: Tensor) -> Tensor:
    """(N, F) pool, rows idx (B, K) -> (K, B, F), contiguous: block k is column k's rows."""
    K, B = idx.shape[1], idx.shape[0]
    return pool.index_select(0, idx.t().reshape(-1)).view(K, B, -1)


class _Last:
    """What was made from the last Splits (by identity), kept while they live, so that a sweep
    of one-seed packs on the same data makes it once; one entry, so memory stays bounded."""

    def __init__(self) -> None:
        self.ref: weakref.ref[Splits] | None = None
        self.value: Any = None

    def get(self, data: Splits, make: Callable[[Splits], Any]) -> Any:
        if self.ref is None or self.ref() is not data:
            self.ref, self.value = weakref.ref(data), make(data)
        return self.value


_LAST_STANDARDISED, _LAST_PREFOLDED = _Last(), _Last()


def _prefolded(data: Splits) -> dict[int, Tensor]:
    """Each distinct part's x (by id; a pool of rows is shared) prefolded, made once per Splits."""

    def make(d: Splits) -> dict[int, Tensor]:
        xs = {id(p.x): p.x for p in (d.train, d.val, d.test)}
        return {i: _prefold(d, x) for i, x in xs.items()}

    return _LAST_PREFOLDED.get(data, make)


def _prefold(data: Splits, x: Tensor) -> Tensor:
    """x standardised and flattened, with a column of ones: (N, F + 1)."""
    flat = data.normalize(x).flatten(1)
    return torch.cat([flat, flat.new_ones(len(flat), 1)], 1)


@torch.no_grad()
def evaluate(
    model: Callable[[Tensor], Tensor], K: int, batches: Batches, which: str, batch_size: int
) -> tuple[Tensor, Tensor, Tensor]:
    """Each seed on its part `which` (val, test; every seed's the same unless the part has
    rows): mean loss (K,), accuracy (K,), predictions (N, K)."""
    model.eval()  # type: ignore[attr-defined]
    part: Part = getattr(batches.data, which)
    loss_sum = torch.zeros(K, device=part.x.device)
    correct = torch.zeros(K, device=part.x.device)
    predictions = []
    for start in range(0, len(part), batch_size):
        x, y = batches.eval(which, start, start + batch_size, K)
        b = y.shape[0]
        logits = model(x).float()  # type: ignore[arg-type]  # (b, K, C)
        ce = F.cross_entropy(logits.reshape(b * K, -1), y.reshape(b * K), reduction="none")
        loss_sum += ce.view(b, K).t().contiguous().sum(1)
        pred = logits.argmax(-1)  # (b, K)
        correct += (pred == y).t().sum(1)
        predictions.append(pred)
    n = len(part)
    return loss_sum / n, correct / n, torch.cat(predictions).cpu()


def _generator(seed: int, device: torch.device) -> torch.Generator:
    return torch.Generator(device=device).manual_seed(seed)


def objective_value(final: dict[str, float], name: str) -> float:
    """The objective the sweeper sees; a misspelled name lists the metrics that exist."""
    if name not in final:
        raise KeyError(
            f"objective {name!r} is not a metric of this run; metrics: {', '.join(sorted(final))}"
        )
    return float(final[name])
