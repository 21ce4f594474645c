"""Per-epoch scores from a training seed-run to the Optuna trial that launched it
(`seedhp.report_epoch`, also for the loop of any Hydra app under `hydra/sweeper=seedhp_optuna`).

Only within one process: seedhp's in-process launcher runs the job where the sweeper holds the
trial. The sweeper installs a reporter around a trial's launch; a seed-run reports its objective
after every epoch, and stops with `Pruned` when the trial's pruner says so.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

Reporter = Callable[[int, float], bool]  # (epoch, value) -> prune now?
_reporter: Reporter | None = None


class Pruned(Exception):
    """The trial's pruner stopped this seed-run after an epoch."""


@contextlib.contextmanager
def epoch_reports(reporter: Reporter) -> Iterator[None]:
    global _reporter
    _reporter = reporter
    try:
        yield
    finally:
        _reporter = None


def report_epoch(epoch: int, value: float) -> None:
    """Raise Pruned when a reporter is installed and its pruner stops the trial here."""
    if _reporter is not None and _reporter(epoch, value):
        raise Pruned(f"pruned after epoch {epoch}")
