"""The end of a sweep or study: re-run both winners on fresh seeds (report.fresh_seeds), then
write the report into the sweep directory and onto the parent run."""

from __future__ import annotations

import logging
from pathlib import Path

from hydra.plugins.launcher import Launcher

from seedhp.config import Settings
from seedhp.errors import ConfigError
from seedhp.report.collect import collect
from seedhp.report.reseed import plan
from seedhp.tracking import Tracker

log = logging.getLogger("seedhp")


def reseed(
    tracker: Tracker, parent: str, settings: Settings, launcher: Launcher, first_job_idx: int
) -> int:
    """Launch the fresh-seed runs both winners still lack, nested under `parent` with role
    reseed; returns how many were launched."""
    n = settings.report.fresh_seeds
    if n < 1:
        return 0
    jobs = [
        [
            *item.overrides,
            f"seed={seed}",
            f"tracking.parent_run_id={parent}",
            "tracking.role=reseed",
        ]
        for item in plan(collect(tracker, parent), n)
        for seed in item.seeds
    ]
    if jobs:
        log.info("re-running both winners on %d fresh seeds: %d seed-runs", n, len(jobs))
        launcher.launch(jobs, initial_job_idx=first_job_idx)
    return len(jobs)


def report(tracker: Tracker, parent: str, settings: Settings, sweep_dir: Path) -> Path | None:
    if not settings.report.enabled:
        return None
    from seedhp.report import Options, build_report  # matplotlib: only when a report is due

    r = settings.report
    try:
        return build_report(
            tracker,
            parent,
            sweep_dir / "report",
            Options(r.black_swan_k, r.bootstrap, r.random_state),
        )
    except ConfigError as err:  # nothing finished: say so, the sweep itself is done
        log.warning("no report: %s", err)
        return None
