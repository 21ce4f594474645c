"""seedhp: the random seed as a hyperparameter.

The public API. Everything else is reached through `python -m seedhp`, the Hydra plugins
(`hydra/sweeper=seedhp`, `seedhp_optuna`; `hydra/launcher=packed`, `seedhp`) and
`seedhp report` / `seedhp reseed`. Importing `seedhp` is light: torch-backed names load on
first use.
"""

from __future__ import annotations

from typing import Any

from seedhp.errors import ConfigError
from seedhp.job.hooks import Pruned, SeedRunRef, current_seed_run, report_epoch

__version__ = "0.1.0"
__all__ = [
    "ConfigError",
    "ModelFactory",
    "Pruned",
    "SeedRunRef",
    "Source",
    "Splits",
    "check_model",
    "current_seed_run",
    "from_parts",
    "report_epoch",
]

_LAZY = {
    "ModelFactory": "seedhp.train.models",
    "check_model": "seedhp.train.models",
    "Source": "seedhp.train.data",
    "Splits": "seedhp.train.data",
    "from_parts": "seedhp.train.data",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'seedhp' has no attribute {name!r}")
