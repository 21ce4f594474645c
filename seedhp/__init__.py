"""seedhp: the random seed as a hyperparameter.

The public API. Everything else is reached through `python -m seedhp`, the Hydra plugins
(`hydra/sweeper=seedhp`, `seedhp_optuna`; `hydra/launcher=packed`, `seedhp`) and
`seedhp report` / `seedhp reseed`. Importing `seedhp` is light: torch-backed names load on
first use, and `seedhp.optimize` (plain Optuna code, no Hydra) imports neither torch nor Hydra.
"""

from __future__ import annotations

import importlib
import sys
import types
from typing import TYPE_CHECKING, Any

from seedhp.errors import ConfigError
from seedhp.job.hooks import Pruned, SeedRunRef, current_seed_run, report_epoch

if TYPE_CHECKING:
    from seedhp.optuna_api import optimize as optimize
    from seedhp.optuna_api import report as report

__version__ = "0.3.0"
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
    "optimize",
    "report",
    "report_epoch",
]

_LAZY = {
    "ModelFactory": "seedhp.train.models",
    "check_model": "seedhp.train.models",
    "Source": "seedhp.train.data",
    "Splits": "seedhp.train.data",
    "from_parts": "seedhp.train.data",
    "optimize": "seedhp.optuna_api",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'seedhp' has no attribute {name!r}")


class _ReportPackage(types.ModuleType):
    """The package seedhp.report, callable: `seedhp.report(study)` is
    seedhp.optuna_api.report, and `from seedhp.report import build_report` still works."""

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        from seedhp.optuna_api import report

        return report(*args, **kwargs)


class _Seedhp(types.ModuleType):
    """`seedhp.report` names both the report package and the function that writes a report.
    A package's attribute for its subpackage is set by the import system when the subpackage
    is first imported (which would hide a function of that name), so it is a property here:
    the setter receives the subpackage and makes it callable."""

    @property
    def report(self) -> Any:
        return importlib.import_module("seedhp.report")  # imported: the setter has run

    @report.setter
    def report(self, package: types.ModuleType) -> None:
        package.__class__ = _ReportPackage


sys.modules[__name__].__class__ = _Seedhp
