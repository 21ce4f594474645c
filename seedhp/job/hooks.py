"""What a sweeper hears from the jobs it launches, while they run.

`Hooks` travel explicitly: the study builds them per trial, hands them to seedhp's launchers
(`launch_with(jobs, idx, hooks)`), which hand `on_epoch` to the training of a one-seed pack
(seedhp.job.run.run_pack) and call `on_job_end` after each job. Only in-process launches hear
jobs as they end; other launchers' returns are replayed after the batch.

Two places cannot take an argument, Hydra's `run_job` (seedhp's one-at-a-time launcher) and the
training loop of another Hydra app: there the launcher installs `on_epoch` for the duration of
the job (`epoch_reports`), and the loop calls `seedhp.report_epoch(epoch, value)`, which raises
`Pruned` when the trial's pruner stops it and does nothing outside a study.

While another app's job runs, `current_seed_run()` says where its seed-run is (store, run id,
the sweep's objective): seedhp.lightning's callback writes there with its own client, whatever
MLflow's global tracking URI is by then.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

Reporter = Callable[[int, float], bool]  # (epoch, value) -> prune now?
_reporter: Reporter | None = None


@dataclass(frozen=True)
class SeedRunRef:
    """The seed-run a job records into."""

    tracking_uri: str
    run_id: str
    objective: str  # the sweep's objective: what the app reports to the pruner
    seed: int


_seed_run: SeedRunRef | None = None


@contextlib.contextmanager
def in_seed_run(ref: SeedRunRef) -> Iterator[None]:
    global _seed_run
    _seed_run = ref
    try:
        yield
    finally:
        _seed_run = None


def current_seed_run() -> SeedRunRef | None:
    """The seed-run of the job running now, or None outside a seedhp sweep (and in seedhp's
    own task, which records itself)."""
    return _seed_run


@dataclass(frozen=True)
class Hooks:
    on_epoch: Reporter | None = None  # (epoch, objective) -> prune now? (one-seed trials)
    on_job_end: Callable[[int, Any], bool] | None = None  # (index, JobReturn) -> go on?


class Pruned(Exception):
    """The trial's pruner stopped this seed-run after an epoch."""


@contextlib.contextmanager
def epoch_reports(reporter: Reporter | None) -> Iterator[None]:
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
