"""The parts of a job's settings that any app's sweep needs, light to import (no torch): what
a seed is, where a job records, what a sweep does at its end, a config as MLflow params.
seedhp.job.settings adds seedhp's own task's settings on top."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from seedhp.errors import ConfigError

ROLES = ("run", "trial", "reseed", "fresh", "baseline", "shop")


@dataclass(frozen=True)
class TrackingSettings:
    uri: str  # an MLflow tracking URI, never null here
    experiment: str
    parent_run_id: str | None
    role: str
    save_predictions: bool
    tags: dict[str, str]
    label: str | None = None  # the configuration's name; None: derived from the command line
    claim: bool = False  # look for other processes' runs of a seed first (seedhp.job.claims)


@dataclass(frozen=True)
class ReportSettings:
    """What a sweep or study does at its end (seedhp.report)."""

    enabled: bool = True
    fresh_seeds: int = 0  # re-run both winners on this many fresh seeds first
    black_swan_k: float = 3.0
    random_state: int = 0  # seeds ASO's and the ensembles' resampling


def check_seed(value: Any, key: str = "seed") -> int:
    """A seed is an int >= 0 (not a bool, not a float)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ConfigError(key, value, "a seed must be an integer >= 0")
    return value


def flatten(cfg: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    """{"optimizer.lr": "0.05", ...}: the resolved config as MLflow params."""
    out: dict[str, str] = {}
    for key, value in cfg.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out.update(flatten(value, f"{name}."))
        else:
            out[name] = json.dumps(value) if isinstance(value, (list, tuple)) else str(value)
    return out
