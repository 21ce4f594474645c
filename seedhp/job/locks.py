"""A lock file beside a local SQLite database, for the moments processes must not overlap."""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path

from seedhp.job.urls import sqlite_file


@contextlib.contextmanager
def sqlite_lock(url: str) -> Iterator[None]:
    """Hold `<db>.lock` exclusively while creating a SQLite store (MLflow's and Optuna's run
    their schema migrations on first use and fail when two processes do it at once); no lock
    for any other kind of URL."""
    db = sqlite_file(url)
    if db is None or read_only(db):  # nobody can create a store there: nothing to order
        yield
        return
    db.parent.mkdir(parents=True, exist_ok=True)
    with open(db.with_name(db.name + ".lock"), "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def read_only(db: Path) -> bool:
    """An existing SQLite store this process cannot write (a read-only file system or file):
    it can be read, and reported on, without a lock."""
    return db.exists() and not (os.access(db, os.W_OK) and os.access(db.parent, os.W_OK))
