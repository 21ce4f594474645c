"""The seed report: every sweep and study ends with one; `python -m seedhp.report` (or
`seedhp report`) writes one for any sweep, study or experiment in an MLflow store.

A report directory holds report.html (self-contained), the figures as PNG, report.json (every
number) and CSV tables; it is also logged as the parent run's `report/` artifacts.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from seedhp.job.tracking import Tracker
from seedhp.report.compute import Options

__all__ = ["Options", "build_report"]


def build_report(
    tracker: Tracker,
    parent_id: str | None,
    out_dir: Path,
    options: Options | None = None,
    log_artifacts: bool = True,
    key: str = "--run",
    runs: Sequence[Any] | None = None,
) -> Path:
    """Write the report of one sweep or study (parent_id) or of the whole experiment (None);
    returns the path of its report.html. (matplotlib is imported only now.) `key` names the
    argument that chose the parent, for errors."""
    from seedhp.report.build import build_report as build

    return build(tracker, parent_id, out_dir, options, log_artifacts, key, runs)
