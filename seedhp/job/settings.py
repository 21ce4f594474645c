"""Validate a resolved config (a plain mapping) into typed settings, before any training.

Every check raises ConfigError, whose message is one line naming the key, the value and what is
allowed. `config_id` identifies a configuration across seeds, processes and studies.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from seedhp.errors import ConfigError
from seedhp.job.identity import config_id
from seedhp.job.values import (  # noqa: F401 (re-exported: seedhp.job.settings names them)
    ROLES,
    ReportSettings,
    TrackingSettings,
    check_seed,
    flatten,
)
from seedhp.train.data import AUGMENTS
from seedhp.train.engines import ENGINES
from seedhp.train.loop import FINAL_METRICS, SCHEDULES, Schedule, TrainSettings
from seedhp.train.pack import KERNELS
from seedhp.train.seeds import STREAMS

DEVICES = ("auto", "cpu", "cuda")


@dataclass(frozen=True)
class Settings:
    """What one job needs besides the objects Hydra instantiates (model, optimizer, data)."""

    seed: int
    pinned: dict[str, int | None]
    train: TrainSettings
    device: str
    objective: str
    deterministic: bool
    val_size: int | float  # validation examples (int) or fraction (float) of the train part
    draw_test: bool  # data.draw_test: the split stream draws the test part too
    tracking: TrackingSettings
    outputs: Path
    config_id: str
    report: ReportSettings = field(default_factory=ReportSettings)


def parse(cfg: Mapping[str, Any]) -> Settings:
    """Check a resolved config and return its settings; raises ConfigError on bad input."""
    seed = check_seed(cfg.get("seed"))
    pinned = _seed_pins(cfg.get("seeds") or {})
    train_cfg: Mapping[str, Any] = cfg["train"]
    epochs = _int(train_cfg, "train.epochs", minimum=1)
    batch_size = _int(train_cfg, "train.batch_size", minimum=1)
    device = train_cfg.get("device")
    if device not in DEVICES:
        raise ConfigError("train.device", device, f"allowed: {', '.join(DEVICES)}")
    objective = train_cfg.get("objective")
    if objective not in FINAL_METRICS:
        raise ConfigError(
            "train.objective", objective, f"not a metric; metrics: {', '.join(FINAL_METRICS)}"
        )
    smoothing = _number(train_cfg, "train.label_smoothing", 0.0, 1.0, hi_open=True)
    kernels = train_cfg.get("kernels", "auto")
    if kernels not in ("auto", *KERNELS):
        raise ConfigError("train.kernels", kernels, "allowed: auto, exact, fast")
    engine = train_cfg.get("pack_engine", "auto")
    if engine not in ("auto", *ENGINES):
        raise ConfigError("train.pack_engine", engine, f"allowed: auto, {', '.join(ENGINES)}")
    precision = train_cfg.get("precision", "fp32")
    if precision not in ("fp32", "bf16"):
        raise ConfigError("train.precision", precision, "allowed: fp32, bf16")
    clip = train_cfg.get("grad_clip")
    if clip is not None:
        clip = _number(train_cfg, "train.grad_clip", 0.0, None, lo_open=True)

    opt: Mapping[str, Any] = cfg["optimizer"]
    _number(opt, "optimizer.lr", 0.0, None, lo_open=True)
    if "weight_decay" in opt:
        _number(opt, "optimizer.weight_decay", 0.0, None)
    if "momentum" in opt:
        _number(opt, "optimizer.momentum", 0.0, 1.0, hi_open=True)
    sched: Mapping[str, Any] = cfg["schedule"]
    if sched.get("name") not in SCHEDULES:
        raise ConfigError("schedule.name", sched.get("name"), f"allowed: {', '.join(SCHEDULES)}")
    warmup = _number(sched, "schedule.warmup", 0.0, 1.0, hi_open=True)
    if "dropout" in cfg["model"]:
        _number(cfg["model"], "model.dropout", 0.0, 1.0, hi_open=True)

    data: Mapping[str, Any] = cfg["data"]
    val_size = data.get("val_size")
    if not (
        (isinstance(val_size, int) and not isinstance(val_size, bool) and val_size >= 1)
        or (isinstance(val_size, float) and 0.0 < val_size < 1.0)
    ):
        raise ConfigError(
            "data.val_size", val_size, "an integer >= 1 (examples), or a fraction in (0, 1)"
        )
    draw_test = data.get("draw_test", False)
    if not isinstance(draw_test, bool):
        raise ConfigError(
            "data.draw_test", draw_test, "true or false (draw the test part by the split stream)"
        )
    augment = data.get("augment", "none")
    if augment not in AUGMENTS:
        raise ConfigError("data.augment", augment, f"allowed: {', '.join(AUGMENTS)}")
    padding = _int(data, "data.crop_padding", minimum=0) if "crop_padding" in data else 0

    outputs = Path(str(cfg["paths"]["outputs"])).expanduser().resolve()
    tracking = _tracking(cfg.get("tracking") or {}, outputs)
    settings = TrainSettings(
        epochs=epochs,
        batch_size=batch_size,
        schedule=Schedule(str(sched["name"]), warmup),
        label_smoothing=smoothing,
        grad_clip=clip,
        augment=str(augment),
        crop_padding=padding,
        eval_batch_size=_int(train_cfg, "train.eval_batch_size", minimum=1),
        kernels=str(kernels),
        precision=str(precision),
        compile=bool(train_cfg.get("compile", False)),
        engine=str(engine),
    )
    return Settings(
        seed=seed,
        pinned=pinned,
        train=settings,
        device=str(device),
        objective=str(objective),
        deterministic=bool(train_cfg.get("deterministic", False)),
        val_size=val_size,
        draw_test=draw_test,
        tracking=tracking,
        outputs=outputs,
        config_id=config_id(cfg),
        report=_report(cfg.get("report") or {}),
    )


def resolve_device(name: str) -> torch.device:
    """auto -> cuda when a GPU is visible, else cpu; cuda without a GPU is bad input."""
    available = torch.cuda.is_available()
    if name == "cuda" and not available:
        raise ConfigError(
            "train.device", name, "no CUDA GPU is visible to torch; allowed here: auto, cpu"
        )
    return torch.device("cuda" if name == "cuda" or (name == "auto" and available) else "cpu")


def default_tracking_uri(outputs: Path) -> str:
    return f"sqlite:///{outputs}/mlflow.db"


def _tracking(t: Mapping[str, Any], outputs: Path) -> TrackingSettings:
    uri = t.get("uri") or default_tracking_uri(outputs)
    experiment = t.get("experiment")
    if not isinstance(experiment, str) or not experiment.strip():
        raise ConfigError("tracking.experiment", experiment, "a non-empty experiment name")
    role = t.get("role", "run")
    if role not in ROLES:
        raise ConfigError("tracking.role", role, f"allowed: {', '.join(ROLES)}")
    tags = {str(k): str(v) for k, v in (t.get("tags") or {}).items()}
    for key in ("study", "trial", "strategy", "replicate", "source", "reseed_of"):  # sweepers
        if t.get(key) is not None:
            tags[f"seedhp.{key}"] = str(t[key])
    label = t.get("label")
    return TrackingSettings(
        label=None if label is None else str(label),
        uri=str(uri),
        experiment=experiment,
        role=str(role),
        parent_run_id=t.get("parent_run_id") or None,
        save_predictions=bool(t.get("save_predictions", False)),
        tags=tags,
        claim=bool(t.get("claim", False)),
    )


def _report(r: Mapping[str, Any]) -> ReportSettings:
    if not r:
        return ReportSettings()
    return ReportSettings(
        enabled=bool(r.get("enabled", True)),
        fresh_seeds=_int(r, "report.fresh_seeds", minimum=0),
        black_swan_k=_number(r, "report.black_swan_k", 0.0, None, lo_open=True),
        random_state=_int(r, "report.random_state", minimum=0),
    )


def _seed_pins(seeds: Mapping[str, Any]) -> dict[str, int | None]:
    unknown = sorted(set(seeds) - set(STREAMS))
    if unknown:
        raise ConfigError(
            f"seeds.{unknown[0]}",
            seeds[unknown[0]],
            f"not a seed stream; streams: {', '.join(STREAMS)}",
        )
    return {
        s: None if seeds.get(s) is None else check_seed(seeds[s], f"seeds.{s}") for s in STREAMS
    }


def _int(node: Mapping[str, Any], key: str, minimum: int) -> int:
    value = node.get(key.rsplit(".", 1)[-1])
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigError(key, value, f"an integer >= {minimum}")
    return value


def _number(
    node: Mapping[str, Any],
    key: str,
    lo: float,
    hi: float | None,
    lo_open: bool = False,
    hi_open: bool = False,
) -> float:
    value = node.get(key.rsplit(".", 1)[-1])
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and value == value
    if ok:
        x = float(value)  # type: ignore[arg-type]
        above = x > lo if lo_open else x >= lo
        below = hi is None or (x < hi if hi_open else x <= hi)
        ok = above and below
    if not ok:
        lo_s = f"> {lo}" if lo_open else f">= {lo}"
        hi_s = "" if hi is None else (f" and < {hi}" if hi_open else f" and <= {hi}")
        raise ConfigError(key, value, f"a number {lo_s}{hi_s}")
    return float(value)  # type: ignore[arg-type]
