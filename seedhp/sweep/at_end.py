"""The end of a sweep or study: re-run both winners on fresh seeds (report.fresh_seeds), then
write the report into the sweep directory and onto the parent run."""

from __future__ import annotations

import logging
from collections.abc import Collection, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from omegaconf import DictConfig, OmegaConf

from seedhp.errors import ConfigError
from seedhp.job import trust
from seedhp.job.identity import quote
from seedhp.job.reuse import finished_runs, mark_reused
from seedhp.job.settings import TrackingSettings
from seedhp.job.tracking import Tracker
from seedhp.report.collect import collect
from seedhp.report.reseed import plan
from seedhp.sweep.tracked import Target

if TYPE_CHECKING:
    from hydra.plugins.launcher import Launcher

log = logging.getLogger("seedhp")


def reseed(
    tracker: Tracker,
    parent: str,
    settings: Target,
    launcher: Launcher,
    first_job_idx: int,
    named: Collection[str] = (),
) -> int:
    """Launch the fresh-seed runs both winners still lack, nested under `parent` with role
    reseed, in the sweep's own store and experiment; a fresh seed that already has a finished
    run of the winner's configuration in the store is reused. Returns how many were launched.

    A winner's overrides are read from the store: they may name only seedhp's and torch's
    callables and those in `named` (what the user's command line and configuration name:
    seedhp.job.trust)."""
    n = settings.report.fresh_seeds
    if n < 1 or not settings.own:  # another app's fresh-seed re-runs: not yet
        return 0
    jobs, reused = [], []
    for item in plan(collect(tracker, parent), n):
        where = f"the seedhp.overrides tag of configuration {item.config_id} in the store"
        trust.check_overrides(item.overrides, where, sorted(named))
        done = finished_runs(tracker, item.config_id, item.seeds)
        reused += list(done.values())
        jobs += [
            [
                *item.overrides,
                f"seed={seed}",
                *runtime_overrides(settings.tracking),
                f"tracking.label={quote(item.label)}",
                f"tracking.parent_run_id={parent}",
                "tracking.role=reseed",
            ]
            for seed in item.seeds
            if seed not in done
        ]
    mark_reused(tracker, reused, parent, "reseed")
    if jobs or reused:
        log.info(
            "re-running both winners on %d fresh seeds: %d seed-runs (%d reused)",
            n,
            len(jobs),
            len(reused),
        )
    if jobs:
        launcher.launch(jobs, initial_job_idx=first_job_idx)
    return len(jobs)


def named_by_user(config: DictConfig, arguments: Sequence[str]) -> set[str]:
    """The dotted names the sweep's command line and composed configuration hold: callables
    the user named, which configurations read back from the store may run."""
    return trust.named_in([*arguments, OmegaConf.to_yaml(config)])


def runtime_overrides(t: TrackingSettings) -> list[str]:
    """Where a sweep records, as overrides for the jobs it adds (a seed-run's own overrides,
    which re-create its configuration, leave tracking out)."""
    return [
        f"tracking.uri={quote(t.uri)}",
        f"tracking.experiment={quote(t.experiment)}",
        f"tracking.save_predictions={str(t.save_predictions).lower()}",
        *(
            f"++tracking.tags.{k}={quote(v)}"
            for k, v in t.tags.items()
            if not k.startswith("seedhp.")
        ),
    ]


def report(
    tracker: Tracker,
    parent: str,
    settings: Target,
    sweep_dir: Path,
    runs: Sequence[Any] | None = None,
) -> Path | None:
    """The sweep's or study's report; `runs`: its seed-runs, when just read for its summary."""
    if not settings.report.enabled:
        return None
    from seedhp.report import Options, build_report  # matplotlib: only when a report is due

    r = settings.report
    try:
        return build_report(
            tracker,
            parent,
            sweep_dir / "report",
            Options(r.black_swan_k, r.random_state),
            runs=runs,
        )
    except ConfigError as err:  # nothing finished: say so, the sweep itself is done
        log.warning("no report: %s", err)
        return None
