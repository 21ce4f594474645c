"""A report is there whole or not at all.

A report stopped midway (a full disk, a read-only directory, Ctrl-C) must not leave a page that
looks complete beside tables that are not, nor replace a good report with half of a new one. Its
files are written into a hidden sibling directory, which takes the report's place in one rename
once every file is written; its copy on the MLflow run is uploaded with the page last, so a run
whose upload stopped has no page.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Iterator, Sequence
from pathlib import Path

from seedhp.job.tracking import Tracker


@contextlib.contextmanager
def whole_dir(out: Path) -> Iterator[Path]:
    """Yield the directory to write `out`'s files into; they become `out` when the block ends
    without an error, and are removed when it ends with one (the previous `out` stays)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(f".{out.name}.partial-{os.getpid()}")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir()
    try:
        yield partial
        old = out.with_name(f".{out.name}.old-{os.getpid()}")
        if out.exists():
            os.replace(out, old)
        os.replace(partial, out)
        shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(partial, ignore_errors=True)


def log_page_last(
    tracker: Tracker, run_id: str, local_dir: Path, artifact_path: str, last: Sequence[str]
) -> None:
    """Upload `local_dir` under `artifact_path`, the files named in `last` after the rest."""
    files = sorted(p for p in local_dir.rglob("*") if p.is_file())
    files.sort(key=lambda p: last.index(p.name) if p.name in last else -1)
    for p in files:
        where = p.parent.relative_to(local_dir).as_posix()
        tracker.log_artifact(
            run_id, p, artifact_path if where == "." else f"{artifact_path}/{where}"
        )
