"""A lock file beside a local SQLite database, for the moments processes must not overlap."""

from __future__ import annotations

import contextlib
import fcntl
from collections.abc import Iterator

from seedhp.job.urls import sqlite_file


@contextlib.contextmanager
def sqlite_lock(url: str) -> Iterator[None]:
    """Hold `<db>.lock` exclusively while creating a SQLite store (MLflow's and Optuna's run
    their schema migrations on first use and fail when two processes do it at once); no lock
    for any other kind of URL."""
    db = sqlite_file(url)
    if db is None:
        yield
        return
    db.parent.mkdir(parents=True, exist_ok=True)
    with open(db.with_name(db.name + ".lock"), "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
