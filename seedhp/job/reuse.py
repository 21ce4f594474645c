"""Seed-runs already in the store: a (configuration, seed) with a finished seed-run is never
trained again; the sweep that needs it counts that run as its own.

A run that a sweep reuses keeps its place (its own parent, job directory and tags) and gains
the tag `seedhp.reused_by.<parent run id>` = the role it plays there, so the sweep's summary and
report find it beside the sweep's own children.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

from seedhp.job.record import READ_PARAMS, REUSED_BY
from seedhp.job.tracking import Tracker

if TYPE_CHECKING:
    from mlflow.entities import Run

DONE = ("finished", "diverged")  # results the same configuration and seed would give again


def finished_runs(tracker: Tracker, config_id: str, seeds: Iterable[int]) -> dict[int, Run]:
    """Seed -> the latest finished (or diverged) seed-run of `config_id` in the experiment,
    for those of `seeds` that have one."""
    wanted = set(seeds)
    found: dict[int, Run] = {}
    for status in DONE:
        for r in tracker.search(
            f"tags.config_id = '{config_id}' and tags.`seedhp.status` = '{status}'"
        ):
            seed = int(r.data.tags["seed"])
            if seed in wanted and (
                seed not in found or r.info.start_time > found[seed].info.start_time
            ):
                found[seed] = r
    return found


def mark_reused(tracker: Tracker, runs: Sequence[Run], parent: str, role: str) -> None:
    """Tag each run as counted by the sweep or study `parent`, in `role` (run, reseed, ...)."""
    for r in runs:
        tracker.log(r.info.run_id, tags={REUSED_BY + parent: role})


def reused_runs(tracker: Tracker, parent: str) -> list[Run]:
    """The runs `parent` reuses (each with its role in the tag REUSED_BY + parent)."""
    return tracker.search(f"tags.`{REUSED_BY}{parent}` != ''")


def sweep_runs(tracker: Tracker, parent: str) -> list[Run]:
    """A sweep's or study's seed-runs: its children and the runs it reuses, with the params
    seedhp reads back (record.READ_PARAMS; the reused ones with all theirs)."""
    return tracker.children(parent, READ_PARAMS) + reused_runs(tracker, parent)
