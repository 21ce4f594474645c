"""Faults of the machine or the store end a command in one line, with its runs closed.

A full disk, a read-only directory or store, a server that refuses the credentials: none is the
user's input nor seedhp's bug, and none is helped by a 100-line traceback through Hydra, MLflow
and SQLAlchemy. At each of seedhp's outer edges (the sweepers, the single run, the `seedhp`
command) `exit_on_fault` turns one into a single line on stderr that names the path or the store
and what to do, and exit status 1. Whatever ends the command (a fault or a bug, whose traceback
is kept), the runs this process still has open are ended first, as interrupted: nothing it
started is left RUNNING for the next command to find, unless the store itself cannot be written
(then the next command marks them, as it marks a killed process's).
"""

from __future__ import annotations

import contextlib
import errno
import os
import sys
import urllib.parse
from collections.abc import Callable, Iterator
from pathlib import Path

from seedhp.job.urls import redact, scrub, sqlite_file

WHERE = "hydra.sweep.dir=... (job directories, reports) or tracking.uri=... (MLflow)"
ADVICE = {
    errno.ENOSPC: f"free space there, or write elsewhere: {WHERE}",
    errno.EDQUOT: f"free space there (the disk quota is full), or write elsewhere: {WHERE}",
    errno.EROFS: f"write elsewhere: {WHERE}",
    errno.EACCES: f"make it writable for this user, or write elsewhere: {WHERE}",
    errno.EPERM: f"make it writable for this user, or write elsewhere: {WHERE}",
    errno.EIO: "the device failed: check it, or write elsewhere",
}
# What SQLite, PostgreSQL, MySQL and an MLflow server say, and what to do about it
REFUSED = "the server refused the credentials: check the user and password"
MLFLOW_REFUSED = (
    "the MLflow server refused the credentials: set MLFLOW_TRACKING_USERNAME and "
    "MLFLOW_TRACKING_PASSWORD (or MLFLOW_TRACKING_TOKEN), or give them in the URI"
)
STORE_FAULTS = (
    ("database or disk is full", "the store's disk is full: free space there"),
    ("attempt to write a readonly database", "the store is read-only: make it writable"),
    ("unable to open database file", "cannot open the store's file: check its directory"),
    ("password authentication failed", f"{REFUSED} (in the URI, PGPASSWORD or ~/.pgpass)"),
    ("access denied for user", f"{REFUSED} (in the URI)"),
    ("error code 401", MLFLOW_REFUSED),
    ("error code 403", MLFLOW_REFUSED),
    ("unauthenticated", MLFLOW_REFUSED),
    ("permission_denied", MLFLOW_REFUSED),
)
STORE_MODULES = ("sqlalchemy", "mlflow", "optuna", "sqlite3", "psycopg2", "psycopg", "pymysql")


class Fault(BaseException):
    """A fault of the machine or the store, on its way to the command's edge: a BaseException,
    so that the handlers that record an Exception as one seed's or one job's failure (seedhp's,
    Hydra's run_job) let it through. Every seed after it would fail the same way."""

    def __init__(self, line: str) -> None:
        super().__init__(line)
        self.line = line


def fault_of(err: BaseException) -> Fault | None:
    """The Fault to raise (from err) when err is a fault of the machine or the store."""
    if isinstance(err, Fault):
        return err
    line = describe(err)
    return None if line is None else Fault(line)


def stopped(err: BaseException) -> bool:
    """Ctrl-C, SIGTERM or a fault: the command was stopped (its runs interrupted), it did not
    fail."""
    return isinstance(err, KeyboardInterrupt) or fault_of(err) is not None


# what ends this process's open runs before it exits (seedhp.job.tracking registers its
# close_open_runs when it is imported; before that no run is open): reason -> runs left open
_CLOSERS: list[Callable[[str], int]] = []


def closes_runs(close: Callable[[str], int]) -> Callable[[str], int]:
    """Register `close(reason) -> runs it could not end`, run by exit_on_fault."""
    if close not in _CLOSERS:
        _CLOSERS.append(close)
    return close


_STORES: dict[str, str] = {}  # key -> URI of each store this process opened


_DIRS: dict[str, Path] = {}  # key -> a directory this process writes to


def opened(key: str, uri: str) -> None:
    """A store this process uses (`tracking.uri`, `hydra.sweeper.storage`): named in the line
    for a fault of it."""
    _STORES[key] = uri
    db = sqlite_file(uri)
    if db is not None:
        _DIRS[key] = db.parent


def writes_to(key: str, path: Path) -> None:
    """A directory this process writes to (`hydra.sweep.dir`): named when a write fails
    without saying where (a full disk fails write(), not open())."""
    _DIRS[key] = path


def _full_or_read_only(code: int) -> str:
    """The directories this process writes to that are full (ENOSPC, EDQUOT: under 1 MiB
    free) or on a read-only file system (EROFS), as 'path (key)'."""
    out = []
    for key, path in _DIRS.items():
        where = next((p for p in (path, *path.parents) if p.exists()), None)
        if where is None:
            continue
        try:
            st = os.statvfs(where)
        except OSError:
            continue
        if code == errno.EROFS:
            bad = bool(st.f_flag & os.ST_RDONLY)
        else:
            bad = st.f_bavail * st.f_frsize < 2**20
        if bad:
            out.append(f"{path} ({key})")
    return ", ".join(out)


def describe(err: BaseException) -> str | None:
    """One line for a fault of the machine or the store; None for anything else."""
    seen: set[int] = set()
    chain: list[BaseException] = []
    e: BaseException | None = err
    while e is not None and id(e) not in seen and len(chain) < 16:
        seen.add(id(e))
        chain.append(e)
        e = e.__cause__ or e.__context__
    for e in chain:
        if isinstance(e, OSError) and e.errno in ADVICE:
            paths = " -> ".join(str(p) for p in (e.filename, e.filename2) if p is not None)
            paths = paths or _full_or_read_only(e.errno)
            where = f"{paths}: " if paths else ""
            return f"{where}{e.strerror or e}: {ADVICE[e.errno]}"
    for e in chain:
        if type(e).__module__.split(".")[0] not in STORE_MODULES:
            continue
        text = str(e).lower()
        for said, advice in STORE_FAULTS:
            if said in text:
                return f"{_store(e)}: {advice} ({_first_line(e)})"
    return None


def _store(e: BaseException) -> str:
    """The store the error came from: the one whose host and port it names (a refused
    connection), else Optuna's when its statement names Optuna's tables, else MLflow's."""
    text = str(e)
    for key, uri in _STORES.items():
        u = urllib.parse.urlparse(uri)
        with contextlib.suppress(ValueError):
            if u.hostname and f'"{u.hostname}", port {u.port or 5432}' in text:
                return f"{key}={redact(uri)}"
    statement = str(getattr(e, "statement", "") or "").lower()
    optuna_tables = ("trial", "studies", "study_", "version_info")
    optuna = any(t in statement for t in optuna_tables)
    for key, uri in _STORES.items():
        if (key != "tracking.uri") == optuna:
            return f"{key}={redact(uri)}"
    return "the store"


def _first_line(e: BaseException) -> str:
    lines = [line.strip() for line in str(e).splitlines() if line.strip()]
    return scrub(f"{type(e).__name__}: {lines[0] if lines else ''}")[:300]


@contextlib.contextmanager
def exit_on_fault() -> Iterator[None]:
    """At an outer edge: a fault is one line and exit status 1; any other error keeps its
    traceback. Either way this process's open runs are ended first."""
    try:
        yield
    except (Exception, Fault) as err:
        line = err.line if isinstance(err, Fault) else describe(err)
        reason = line or _first_line(err)
        left = sum(close(reason) for close in _CLOSERS)
        if line is None:
            raise
        if left:
            line += f"; {left} run(s) are left RUNNING (the store cannot be written): the next "
            line += "command on it marks them interrupted"
        print(f"seedhp: error: {' '.join(scrub(line).split())}", file=sys.stderr, flush=True)
        raise SystemExit(1) from None
