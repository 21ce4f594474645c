"""Claims: each (configuration, seed) is trained by one process, whoever else sweeps it at once.

A seed-run is its own claim: it is created RUNNING, names its process (seedhp.owner) and is
stamped by that process's heartbeat. Before a pack creates its runs it looks in the store for
runs of its configuration and seeds that are finished (reused: nothing is trained twice) or live
(RUNNING, of a process that still exists, or that stamped its heartbeat within STALE_SECONDS),
and creates runs for the other seeds only. It trains those, then waits for the live ones to
finish and reuses them, or trains them itself when their process is gone.

Looking and creating are one step under the store's lock: a lock file beside an SQLite store
(its processes share one machine), an advisory lock on PostgreSQL and MySQL. An MLflow server
has no lock to take: there a pack looks again after creating its runs and, where another
process created a run of the same pair first (by start time, then run id), deletes its own and
waits for that one; exact while the workers' clocks agree to within the time a run takes to be
created.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import logging
import math
import time
from collections.abc import Collection, Iterator, Mapping
from typing import TYPE_CHECKING

from seedhp.job.owner import gone, this_process
from seedhp.job.record import HEARTBEAT, OWNER, REUSED_BY, STATUS
from seedhp.job.urls import sqlite_file

if TYPE_CHECKING:
    from seedhp.job.tracking import Pair, Tracker

log = logging.getLogger("seedhp")
DONE = ("finished", "diverged")  # results the same configuration and seed would give again
POLL_SECONDS = 2.0  # how often a waiting pack looks at the runs it waits for
WAIT_SECONDS = 24 * 3600.0  # the longest it waits for another process's live run


@contextlib.contextmanager
def store_lock(tracker: Tracker, config_id: str) -> Iterator[bool]:
    """Hold the store's lock for `config_id` while looking and creating; True when there is
    one (SQLite, PostgreSQL, MySQL), False for a store without (an MLflow server)."""
    db = sqlite_file(tracker.uri)
    if db is not None:
        with open(db.with_name(db.name + ".claims"), "a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield True
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)
        return
    store = tracker._sql_store()
    dialect = "" if store is None else store.engine.dialect.name
    if dialect not in ("postgresql", "mysql"):
        yield False
        return
    from sqlalchemy import text

    name = f"seedhp:{tracker.experiment_id}:{config_id}"
    key = int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)
    with store.engine.connect() as conn:
        if dialect == "postgresql":
            conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": key})
        else:
            conn.execute(text("SELECT GET_LOCK(:n, 3600)"), {"n": name[:64]})
        try:
            yield True
        finally:
            if dialect == "postgresql":
                conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": key})
            else:
                conn.execute(text("SELECT RELEASE_LOCK(:n)"), {"n": name[:64]})
            conn.commit()


def taken(
    tracker: Tracker, config_id: str, seeds: Collection[int], mine: Collection[str] = ()
) -> dict[int, Pair]:
    """Seed -> the run that holds it: a finished one (the latest), else a live one of another
    process (the first created). Runs in `mine` are this pack's own and hold nothing against
    it."""
    finished: dict[int, Pair] = {}
    live: dict[int, Pair] = {}
    alive: dict[str, bool] = {}  # owner -> alive, asked once
    for p in sorted(tracker.runs_of(config_id, seeds), key=_order):  # oldest first
        owner = p.tags.get(OWNER, "")
        if p.run_id in mine:
            continue
        if p.status == "FINISHED" and p.tags.get(STATUS) in DONE:
            finished[p.seed] = p
        elif p.status == "RUNNING" and p.seed not in live and owner not in ("", this_process()):
            if owner not in alive:
                alive[owner] = _alive(tracker, owner, p)
            if alive[owner]:
                live[p.seed] = p
    return {**live, **finished}


def beaten(tracker: Tracker, config_id: str, mine: Mapping[int, str]) -> dict[int, Pair]:
    """Without a lock, after creating `mine` (seed -> run id): the seeds another process holds
    with a run finished, or created before this pack's (by start time, then run id)."""
    ours = {p.run_id: p for p in tracker.runs_of(config_id, mine) if p.run_id in mine.values()}
    out = {}
    for seed, p in taken(tracker, config_id, mine, set(mine.values())).items():
        own = ours.get(mine[seed])
        if p.status == "FINISHED" or own is None or _order(p) < _order(own):
            out[seed] = p
    return out


def wait(
    tracker: Tracker,
    config_id: str,
    seeds: Collection[int],
    objective: str,
    parent: str | None,
    role: str,
) -> tuple[dict[int, float], list[int]]:
    """Wait until the runs that hold `seeds` have ended: (seed -> the objective of its
    finished run, which now counts as `parent`'s in `role`; the seeds whose holder ended
    unfinished, for the caller to train). Bounded by WAIT_SECONDS: what is still held then is
    returned with the orphans."""
    values: dict[int, float] = {}
    orphaned: list[int] = []
    waiting = set(seeds)
    deadline, said = time.monotonic() + WAIT_SECONDS, time.monotonic()
    log.info(
        "%d seed(s) of %s are trained or held by another process: waiting to reuse them",
        len(waiting),
        config_id,
    )
    while waiting and time.monotonic() < deadline:
        held = taken(tracker, config_id, waiting)
        for seed in sorted(waiting):
            p = held.get(seed)
            if p is None:  # its process ended without finishing it
                orphaned.append(seed)
            elif p.status == "FINISHED":
                run = tracker.client.get_run(p.run_id)
                values[seed] = float(run.data.metrics.get(objective, math.nan))
                if parent is not None:
                    tracker.log(p.run_id, tags={REUSED_BY + parent: role})
            else:
                continue
            waiting.discard(seed)
        if waiting:
            if time.monotonic() - said > 60:
                log.info(
                    "waiting for %d seed-run(s) of %s that another process is training",
                    len(waiting),
                    config_id,
                )
                said = time.monotonic()
            time.sleep(POLL_SECONDS)
    if values:
        log.info(
            "%d seed-run(s) of %s were trained by another process meanwhile: reused",
            len(values),
            config_id,
        )
    return values, sorted([*orphaned, *waiting])


def _order(p: Pair) -> tuple[int, str]:
    return (p.start_time, p.run_id)


def _alive(tracker: Tracker, owner: str, p: Pair) -> bool:
    """The owner's process exists (this host) or stamped its heartbeat lately (elsewhere)."""
    from seedhp.job.tracking import STALE_SECONDS

    dead = gone(owner)
    if dead is not None:
        return not dead
    stamps = [float(p.tags.get(HEARTBEAT, 0)), p.start_time / 1000]
    for r in tracker.search(f"tags.`{OWNER}` = '{owner}' and attributes.status = 'RUNNING'"):
        stamps += [float(r.data.tags.get(HEARTBEAT, 0)), r.info.start_time / 1000]
    return time.time() - max(stamps) <= STALE_SECONDS
