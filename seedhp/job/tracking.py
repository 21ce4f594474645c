"""MLflow tracking through MlflowClient: no fluent API, so no active run leaks between jobs.

One MLflow run per seed-run, nested under its sweep's or study's parent run. Logging is
batched: a seed-run costs a handful of requests (create, params + config, metrics, end), not one
per value.
"""

from __future__ import annotations

import logging
import os
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from seedhp import faults
from seedhp.errors import ConfigError
from seedhp.job.locks import read_only, sqlite_lock
from seedhp.job.new_store import copy_empty_store
from seedhp.job.owner import gone, this_process
from seedhp.job.record import (
    CONFIG_ID,
    HEARTBEAT,
    OWNER,
    PARENT,
    SEED,
    STATUS,
    is_seed_run,
    read_seed_run,
    role,
)
from seedhp.job.urls import check_sqlite, redact, remember, scrub, scrubbed, sqlite_file

if TYPE_CHECKING:
    from mlflow.entities import Metric, Run
    from mlflow.tracking import MlflowClient

# MLflow prints "View run ... at: <url>" on stdout for every run that ends on an HTTP server:
# one line per seed-run in a 10,000-seed sweep. Set it to false to have them.
os.environ.setdefault("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")
log = logging.getLogger("seedhp")
PARENT_TAG, OWNER_TAG, HEARTBEAT_TAG = PARENT, OWNER, HEARTBEAT
SEED_TAG, CONFIG_TAG, STATUS_TAG = SEED, CONFIG_ID, STATUS
# MLflow 3's UI opens an experiment of this kind on its training-runs table, not on the GenAI
# overview (traces); the UI's own "experiment type" setting writes the same tag
KIND_TAG, KIND = "mlflow.experimentKind", "custom_model_development"
UI_VIEW = "workflowType=machine_learning"  # 3.17's UI: its "Model training" view, not GenAI
HEARTBEAT_SECONDS = 30.0  # a process with open runs stamps one of them this often
STALE_SECONDS = 300.0  # a RUNNING run of another host with no stamp for this long is KILLED
_MAX_PARAMS, _MAX_TAGS, _MAX_ITEMS = 100, 100, 1000  # MLflow's log_batch limits


def metric(key: str, value: float, step: int = 0, timestamp_ms: int | None = None) -> Metric:
    from mlflow.entities import Metric

    return Metric(key, float(value), timestamp_ms or int(time.time() * 1000), step)


@dataclass(frozen=True)
class Start:
    """A run to create."""

    name: str
    tags: Mapping[str, str]
    parent_id: str | None = None


@dataclass(frozen=True)
class Pair:
    """A run of one (configuration, seed), as a claim reads it (Tracker.runs_of)."""

    run_id: str
    seed: int
    status: str  # MLflow's: RUNNING | FINISHED
    tags: Mapping[str, str]  # its seed, owner, heartbeat and seedhp.status tags
    start_time: int  # ms


@dataclass(frozen=True)
class Finish:
    """A run's last record: what is still to log, and its final status."""

    run_id: str
    status: str  # FINISHED | FAILED | KILLED
    metrics: Sequence[Metric] = ()
    params: Mapping[str, str] | None = None
    tags: Mapping[str, str] | None = None


class Tracker:
    """An MLflow store and experiment, reached once per process per URI."""

    def __init__(self, uri: str, experiment: str) -> None:
        self.uri, self.experiment_name = uri, experiment
        # MLflow logs each failed database write with its traceback, then raises it: seedhp
        # reports the error it raises (in one line, for a full disk or a read-only store)
        logging.getLogger("mlflow.store.db.utils").setLevel(logging.CRITICAL)
        remember([uri])  # its password is masked in everything this process writes
        faults.opened("tracking.uri", uri)  # named in the line for a fault of it
        if uri.startswith("sqlite:"):  # before the lock file is made beside it
            check_sqlite("tracking.uri", uri)
        with sqlite_lock(uri):
            self.client = _client(uri)
            self.experiment_id = _experiment_id(self.client, uri, experiment)
        self.heartbeat = _heartbeat(uri)
        self.artifacts: dict[str, str] = {}  # run id -> artifact URI, for the runs it started

    def start_run(
        self,
        name: str,
        tags: Mapping[str, str],
        parent_id: str | None = None,
        params: Mapping[str, str] | None = None,
    ) -> str:
        all_tags = self._tags(Start(name, tags, parent_id))
        run = self.client.create_run(self.experiment_id, run_name=scrub(name), tags=all_tags)
        run_id = str(run.info.run_id)
        self.artifacts[run_id] = str(run.info.artifact_uri)
        self.heartbeat.opened(run_id)
        if params:
            self.log(run_id, params=params)
        return run_id

    def log(
        self,
        run_id: str,
        metrics: Sequence[Metric] = (),
        params: Mapping[str, str] | None = None,
        tags: Mapping[str, str] | None = None,
    ) -> None:
        """Everything in as few log_batch requests as MLflow's per-request limits allow; values
        scrubbed of passwords (seedhp.job.urls)."""
        from mlflow.entities import Param, RunTag

        ps = [Param(k, v[:6000]) for k, v in scrubbed(params).items()]
        ts = [RunTag(k, v[:8000]) for k, v in scrubbed(tags).items()]
        ms = list(metrics)
        while ps or ts or ms:
            p, ps = ps[:_MAX_PARAMS], ps[_MAX_PARAMS:]
            t, ts = ts[:_MAX_TAGS], ts[_MAX_TAGS:]
            room = _MAX_ITEMS - len(p) - len(t)
            m, ms = ms[:room], ms[room:]
            self.client.log_batch(run_id, metrics=m, params=p, tags=t)

    def log_text(self, run_id: str, text: str, path: str) -> None:
        """A text artifact. Into a local artifact store (file:, beside a SQLite store) it is
        written straight to the run's artifact directory, as MLflow's log_text would put it,
        without the request that looks the run up first; elsewhere through MLflow. Scrubbed of
        passwords (a run's config.yaml holds its tracking URI)."""
        text = scrub(text)
        where = self.artifacts.get(run_id, "")
        if where.startswith("file:"):
            target = Path(urllib.request.url2pathname(urllib.parse.urlparse(where).path)) / path
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text, encoding="utf-8")
            return
        self.client.log_text(run_id, text, path)

    def log_artifact(
        self, run_id: str, local_path: str | Path, artifact_path: str | None = None
    ) -> None:
        self.client.log_artifact(run_id, str(local_path), artifact_path)

    def log_artifacts(self, run_id: str, local_dir: str | Path, artifact_path: str) -> None:
        self.client.log_artifacts(run_id, str(local_dir), artifact_path)

    def start_many(self, items: Sequence[Start]) -> list[str]:
        """Create many runs at once (a pack's): on a SQL store in one transaction, the rows
        MLflow's create_run writes for each; elsewhere one by one. Returns their run ids."""
        store = self._sql_store()
        if store is None or len(items) < 2:
            return [self.start_run(s.name, s.tags, s.parent_id) for s in items]
        made = _create_in_one_transaction(store, self.experiment_id, items, self._tags)
        for run_id, artifact_uri in made:
            self.artifacts[run_id] = artifact_uri
            self.heartbeat.opened(run_id)
        return [run_id for run_id, _ in made]

    def histories(self, run_ids: Sequence[str], key: str) -> dict[str, list[Metric]]:
        """Every logged value of metric `key` for each run: on a SQL store in one query per
        500 runs, elsewhere one request per run."""
        store = self._sql_store()
        if store is None:
            return {r: list(self.client.get_metric_history(r, key)) for r in run_ids}
        from mlflow.entities import Metric
        from mlflow.store.tracking.dbmodels.models import SqlMetric
        from sqlalchemy import select

        out: dict[str, list[Metric]] = {r: [] for r in run_ids}
        with store.ManagedSessionMaker() as session:
            for start in range(0, len(run_ids), 500):
                chunk = run_ids[start : start + 500]
                query: Any = select(
                    SqlMetric.run_uuid,
                    SqlMetric.value,
                    SqlMetric.timestamp,
                    SqlMetric.step,
                    SqlMetric.is_nan,
                ).where(SqlMetric.key == key, SqlMetric.run_uuid.in_(chunk))
                for run_id, value, timestamp, step, is_nan in session.execute(query):
                    v = float("nan") if is_nan else float(value)
                    out[run_id].append(Metric(key, v, int(timestamp), int(step)))
        return out

    def _tags(self, s: Start) -> dict[str, str]:
        return {
            **scrubbed(s.tags),
            OWNER_TAG: this_process(),
            **({PARENT_TAG: s.parent_id} if s.parent_id else {}),
        }

    def finish_many(self, items: Sequence[Finish]) -> None:
        """End many runs at once, each with its last params, metrics and tags: on a SQL store
        (SQLite, PostgreSQL) in one transaction, what MLflow's log_batch and set_terminated
        would write in five sessions per run (the same rows: params, metric history, latest
        metrics, tags, status and end time); elsewhere (an MLflow server) run by run."""
        store = self._sql_store()
        if store is None or len(items) < 2:
            for f in items:
                self.log(f.run_id, metrics=f.metrics, params=f.params, tags=f.tags)
                self.end_run(f.run_id, f.status)
            return
        clean = [
            replace(
                f,
                params=None if f.params is None else scrubbed(f.params),
                tags=None if f.tags is None else scrubbed(f.tags),
            )
            for f in items
        ]
        _finish_in_one_transaction(store, clean)
        for f in items:
            self.heartbeat.closed(f.run_id)

    def _sql_store(self) -> Any:
        from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

        store = self.client._tracking_client.store
        return store if isinstance(store, SqlAlchemyStore) else None

    def end_run(self, run_id: str, status: str) -> None:
        """status: FINISHED | FAILED | KILLED."""
        self.client.set_terminated(run_id, status)
        self.heartbeat.closed(run_id)

    def reopen(self, run_id: str) -> None:
        """Mark a parent run RUNNING again, owned by this process (a resumed or shared study)."""
        self.client.update_run(run_id, status="RUNNING")
        self.log(run_id, tags={OWNER_TAG: this_process()})
        self.heartbeat.opened(run_id)

    def delete_run(self, run_id: str) -> None:
        """Set aside (soft-delete: `mlflow gc` erases it) a run that was never finished."""
        self.client.delete_run(run_id)
        self.heartbeat.closed(run_id)

    def read_only(self) -> str | None:
        """The path of this store, or of its artifacts, that this process cannot write (a
        local store on a read-only file system, or another user's); None when it can, or
        when the store is a server's."""
        db = sqlite_file(self.uri)
        if db is not None and read_only(db):
            return str(db)
        location = self.client.get_experiment(self.experiment_id).artifact_location
        if str(location).startswith("file:") or "://" not in str(location):
            root = Path(urllib.request.url2pathname(urllib.parse.urlparse(location).path))
            here = next((p for p in (root, *root.parents) if p.exists()), None)
            if here is not None and not os.access(here, os.W_OK):
                return str(here)
        return None

    def is_open(self, run_id: str) -> bool:
        """Started by this process and not ended yet."""
        return run_id in self.heartbeat.open

    def interrupt(self, run_id: str, reason: str) -> None:
        """End a run that its process could not finish: KILLED, with why in its tags."""
        self.log(run_id, tags={"seedhp.status": "interrupted", "seedhp.interrupted": reason})
        self.end_run(run_id, "KILLED")

    def reap(self) -> list[str]:
        """Mark the runs of this experiment that were left RUNNING by a process that is gone
        as KILLED (seedhp.status=interrupted, seedhp.interrupted says why): on this host when
        the process no longer exists, elsewhere after STALE_SECONDS without a heartbeat.
        Returns the runs marked. Runs seedhp did not create (no owner tag) are left alone."""
        by_owner: dict[str, list[Run]] = {}
        for r in self.search("attributes.status = 'RUNNING'"):
            if OWNER_TAG in r.data.tags:
                by_owner.setdefault(r.data.tags[OWNER_TAG], []).append(r)
        now, reaped = time.time(), []
        for owner, runs in by_owner.items():
            dead = gone(owner)
            if dead is None:  # another host: only its heartbeat can tell
                last = max(
                    max(float(r.data.tags.get(HEARTBEAT_TAG, 0)), r.info.start_time / 1000)
                    for r in runs
                )
                if now - last <= STALE_SECONDS:
                    continue
                reason = f"no heartbeat from process {owner} for {now - last:.0f} s"
            elif dead:
                reason = f"its process {owner} is gone"
            else:
                continue
            for r in runs:
                self.interrupt(r.info.run_id, reason)
                reaped.append(r.info.run_id)
        if reaped:
            log.info(
                "%d run(s) left RUNNING by processes that are gone: marked KILLED", len(reaped)
            )
        return reaped

    def children(self, parent_id: str, params: Collection[str] | None = None) -> list[Run]:
        """Every active run nested under `parent_id`, in search_runs' order (newest first): on
        a SQL store read in four queries without the ORM (what search_runs returns, but for
        the runs' dataset inputs and model outputs, which seedhp never logs), elsewhere through
        search_runs. `params`: on a SQL store only the params of these keys are read (None:
        all of them; 10,000 seed-runs have some 600,000)."""
        store = self._sql_store()
        if store is None:
            return self.search(f"tags.`{PARENT_TAG}` = '{parent_id}'")
        return _children_in_one_session(store, self.experiment_id, parent_id, params)

    def runs_of(self, config_id: str, seeds: Collection[int]) -> list[Pair]:
        """The active runs of `config_id` on `seeds` (RUNNING or FINISHED), with the tags a claim
        is read from: on a SQL store in two indexed queries, elsewhere through search_runs."""
        wanted = {str(s) for s in seeds}
        keys = (SEED_TAG, OWNER_TAG, HEARTBEAT_TAG, STATUS_TAG)
        store = self._sql_store()
        if store is None:
            return [
                Pair(
                    r.info.run_id,
                    int(r.data.tags[SEED_TAG]),
                    r.info.status,
                    {k: r.data.tags[k] for k in keys if k in r.data.tags},
                    int(r.info.start_time or 0),
                )
                for r in self.search(f"tags.config_id = '{config_id}'")
                if r.data.tags.get(SEED_TAG) in wanted and r.info.status in ("RUNNING", "FINISHED")
            ]
        from mlflow.store.tracking.dbmodels.models import SqlRun, SqlTag
        from sqlalchemy import select

        run_t, tag_t = SqlRun.__table__, SqlTag.__table__
        with store.ManagedSessionMaker() as session:
            found = {
                run_id: (status, start)
                for run_id, status, start in session.execute(
                    select(run_t.c.run_uuid, run_t.c.status, run_t.c.start_time)
                    .join(tag_t, tag_t.c.run_uuid == run_t.c.run_uuid)
                    .where(
                        tag_t.c.key == CONFIG_TAG,
                        tag_t.c.value == config_id,
                        run_t.c.experiment_id == int(self.experiment_id),
                        run_t.c.lifecycle_stage == "active",
                        run_t.c.status.in_(("RUNNING", "FINISHED")),
                    )
                )
            }
            tags: dict[str, dict[str, str]] = {r: {} for r in found}
            ids = list(found)
            for start in range(0, len(ids), 500):
                for run_id, key, value in session.execute(
                    select(tag_t.c.run_uuid, tag_t.c.key, tag_t.c.value).where(
                        tag_t.c.run_uuid.in_(ids[start : start + 500]), tag_t.c.key.in_(keys)
                    )
                ):
                    tags[run_id][key] = value
        return [
            Pair(run_id, int(tags[run_id][SEED_TAG]), status, tags[run_id], int(start or 0))
            for run_id, (status, start) in found.items()
            if tags[run_id].get(SEED_TAG) in wanted
        ]

    def search(self, filter_string: str) -> list[Run]:
        """Every run of the experiment that matches an MLflow filter string, all pages."""
        runs: list[Run] = []
        token = None
        while True:
            page = self.client.search_runs(
                [self.experiment_id],
                filter_string=filter_string,
                max_results=1000,
                page_token=token,
            )
            runs.extend(page)
            token = page.token
            if not token:
                return runs

    def run_url_hint(self, run_id: str) -> str:
        return f"experiment {self.experiment_id}, run {run_id}"

    def ui_url(self) -> str:
        """The experiment's runs in the MLflow UI: `make ui`'s address for a local store, the
        server's own otherwise. MLflow 3.17's UI opens an experiment on its GenAI overview
        (traces) unless the address asks for the model-training view."""
        base = self.uri if self.uri.startswith("http") else "http://127.0.0.1:5000"
        return f"{redact(base).rstrip('/')}/#/experiments/{self.experiment_id}?{UI_VIEW}"


class _Heartbeat:
    """Stamps HEARTBEAT_TAG on the oldest run this process has open, every HEARTBEAT_SECONDS,
    so that a process on another host can tell a live run from one whose process died. One
    request per interval per store, however many runs are open (a pack of 256 seeds costs what
    one seed does)."""

    def __init__(self, client: MlflowClient) -> None:
        self.client = client
        self.open: dict[str, None] = {}  # run ids in the order they were opened
        self.lock = threading.Lock()
        self.thread: threading.Thread | None = None

    def opened(self, run_id: str) -> None:
        with self.lock:
            self.open[run_id] = None
            if self.thread is None:
                self.thread = threading.Thread(target=self._beat, daemon=True, name="heartbeat")
                self.thread.start()

    def closed(self, run_id: str) -> None:
        with self.lock:
            self.open.pop(run_id, None)

    def _beat(self) -> None:
        while True:
            time.sleep(HEARTBEAT_SECONDS)
            with self.lock:
                oldest = next(iter(self.open), None)
            if oldest is not None:
                try:
                    self.client.set_tag(oldest, HEARTBEAT_TAG, f"{time.time():.0f}")
                except Exception as err:  # a store that hiccups must not end the process
                    log.debug("heartbeat not recorded: %s", err)


_HEARTBEATS: dict[str, _Heartbeat] = {}  # per store: the runs this process has open


def _heartbeat(uri: str) -> _Heartbeat:
    if uri not in _HEARTBEATS:
        _HEARTBEATS[uri] = _Heartbeat(_client(uri))
    return _HEARTBEATS[uri]


@faults.closes_runs  # exit_on_fault ends this process's runs before it exits
def close_open_runs(reason: str) -> int:
    """End every run this process still has open, in every store, as interrupted (KILLED,
    `seedhp.interrupted` = reason): what a process does before it exits on a fault, so that
    nothing it started is left RUNNING for the next command to find. Returns how many could
    not be ended (their store cannot be written: the next command on it marks them)."""
    left = 0
    for beat in list(_HEARTBEATS.values()):
        with beat.lock:
            run_ids = list(beat.open)
        for run_id in reversed(run_ids):  # seed-runs before the parent that holds them
            try:
                beat.client.set_tag(run_id, "seedhp.status", "interrupted")
                beat.client.set_tag(run_id, "seedhp.interrupted", scrub(reason)[:4000])
                beat.client.set_terminated(run_id, "KILLED")
                beat.closed(run_id)
            except Exception as err:  # the store itself is what failed
                log.debug("run %s not closed: %s", run_id, err)
                left += 1
    return left


def check_reachable(uri: str) -> None:
    """Fail fast, in one line, on a tracking URI that cannot work; before any training."""
    if uri.startswith(("http://", "https://")):
        try:
            urllib.request.urlopen(_health_request(uri), timeout=5).close()
        except (urllib.error.URLError, OSError, ValueError) as err:
            reason = getattr(err, "reason", err)
            raise ConfigError(
                "tracking.uri",
                redact(uri),
                f"no MLflow tracking server answers there ({reason}); start one "
                "with `mlflow server` or fix the URL",
            ) from None
    elif uri.startswith("sqlite:"):
        check_sqlite("tracking.uri", uri)
        db = sqlite_file(uri)
        if db is not None:
            db.parent.mkdir(parents=True, exist_ok=True)


def _health_request(uri: str) -> urllib.request.Request:
    """GET <server>/health, with the URL's user info as HTTP basic authentication, as MLflow's
    client (requests) sends it: urllib would take `user:pw@host` for a host and port."""
    import base64

    parts = urllib.parse.urlsplit(uri)
    netloc = parts.hostname or ""
    if ":" in netloc:  # an IPv6 address
        netloc = f"[{netloc}]"
    if parts.port is not None:
        netloc += f":{parts.port}"
    url = urllib.parse.urlunsplit(
        (parts.scheme, netloc, parts.path.rstrip("/") + "/health", "", "")
    )
    request = urllib.request.Request(url)
    if parts.username is not None:
        user = urllib.parse.unquote(parts.username)
        password = urllib.parse.unquote(parts.password or "")
        token = base64.b64encode(f"{user}:{password}".encode()).decode()
        request.add_header("Authorization", f"Basic {token}")
    return request


@lru_cache(maxsize=8)
def _client(uri: str) -> MlflowClient:
    check_reachable(uri)
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")  # no bars in logs
    from mlflow.tracking import MlflowClient

    for name in ("alembic", "mlflow"):  # after import: mlflow sets its loggers up on import
        logging.getLogger(name).setLevel(logging.WARNING)
    copy_empty_store(uri)
    try:
        return MlflowClient(tracking_uri=uri)
    except Exception as err:  # unknown scheme, missing database driver, unreadable store
        raise ConfigError(
            "tracking.uri", redact(uri), f"cannot use this MLflow store ({_first_line(err)})"
        ) from None


@lru_cache(maxsize=32)
def _experiment_id(client: MlflowClient, uri: str, name: str) -> str:
    try:
        found = client.get_experiment_by_name(name)
        if found is not None:
            if found.lifecycle_stage == "deleted":
                raise ConfigError(
                    "tracking.experiment",
                    name,
                    "that experiment is deleted in the store; restore it or pick another name",
                )
            if KIND_TAG not in found.tags:  # made by another tool, or an older seedhp
                client.set_experiment_tag(found.experiment_id, KIND_TAG, KIND)
            return str(found.experiment_id)
        location = None
        db = sqlite_file(uri)
        if db is not None:  # keep artifacts beside the database, not in CWD
            location = (db.resolve().parent / "mlartifacts").as_uri()
        try:
            return str(
                client.create_experiment(name, artifact_location=location, tags={KIND_TAG: KIND})
            )
        except Exception:  # another worker created it since we looked: use theirs
            made = client.get_experiment_by_name(name)
            if made is None or made.lifecycle_stage == "deleted":
                raise
            return str(made.experiment_id)
    except ConfigError:
        raise
    except Exception as err:  # MlflowException, SQLAlchemy errors: a store we cannot use
        raise ConfigError(
            "tracking.uri", redact(uri), f"cannot use this MLflow store ({_first_line(err)})"
        ) from None


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return f"{type(err).__name__}: {text.splitlines()[0]}" if text else type(err).__name__


def run_rows(
    runs: Iterable[Run], objective: str, test_metric: str, parent: str | None = None
) -> list[dict[str, Any]]:
    """Seed-runs as the records seedhp.stats.summary needs (seedhp.job.record reads them); a
    run that the sweep `parent` reuses plays the role that sweep gave it."""
    rows = []
    for r in runs:
        if not is_seed_run(r):
            continue
        run = read_seed_run(r, role(r, parent))
        rows.append(
            {
                "run_id": run.run_id,
                "config_id": run.config_id,
                "seed": run.seed,
                "status": run.status,
                "value": run.metrics.get(objective, float("nan")),
                "test": run.metrics.get(test_metric, float("nan")),
                "label": run.label,
                "role": run.role,
                "start_time": r.info.start_time,
            }
        )
    return rows


def _finish_in_one_transaction(store: Any, items: Sequence[Finish]) -> None:
    """Tracker.finish_many on MLflow's SqlAlchemyStore: the rows its log_batch and
    update_run_info write (params, metric history, latest metrics, tags, status and end time),
    for every run, in one session, new rows as multi-row inserts."""
    from mlflow.store.tracking.dbmodels.models import (
        SqlLatestMetric,
        SqlMetric,
        SqlParam,
        SqlRun,
        SqlTag,
    )
    from sqlalchemy import bindparam, insert, select, update

    ids = [f.run_id for f in items]
    end = int(time.time() * 1000)
    with store.ManagedSessionMaker(read_only=False) as session:
        state = {
            r.run_uuid: (r.status, r.lifecycle_stage)
            for r in session.execute(
                select(SqlRun.run_uuid, SqlRun.status, SqlRun.lifecycle_stage).where(
                    SqlRun.run_uuid.in_(ids)
                )
            )
        }
        latest = {
            (m.run_uuid, m.key): (m.step, m.timestamp, m.value)
            for m in session.execute(
                select(
                    SqlLatestMetric.run_uuid,
                    SqlLatestMetric.key,
                    SqlLatestMetric.step,
                    SqlLatestMetric.timestamp,
                    SqlLatestMetric.value,
                ).where(SqlLatestMetric.run_uuid.in_(ids))
            )
        }
        tagged = set(
            session.execute(select(SqlTag.run_uuid, SqlTag.key).where(SqlTag.run_uuid.in_(ids)))
        )
        have = set(
            session.execute(
                select(SqlParam.run_uuid, SqlParam.key).where(SqlParam.run_uuid.in_(ids))
            )
        )
        params, metrics, tags, tag_updates = [], [], [], []
        newest: dict[tuple[str, str], dict[str, Any]] = {}
        for f in items:
            if state.get(f.run_id) != ("RUNNING", "active"):
                raise RuntimeError(f"run {f.run_id} is not an active, running run")
            params += [
                {"run_uuid": f.run_id, "key": k, "value": str(v)[:6000]}
                for k, v in (f.params or {}).items()
                if (f.run_id, k) not in have
            ]
            seen = set()
            for m in f.metrics:
                if (m.key, m.timestamp, m.step, m.value) in seen:
                    continue
                seen.add((m.key, m.timestamp, m.step, m.value))
                is_nan, value = store.sanitize_metric_value(m.value)
                row = {
                    "run_uuid": f.run_id,
                    "key": m.key,
                    "value": value,
                    "timestamp": m.timestamp,
                    "step": m.step,
                    "is_nan": is_nan,
                }
                metrics.append(row)
                key = (f.run_id, m.key)
                top = newest.get(key)
                old = latest.get(key)
                mine = (m.step, m.timestamp, value)
                if (old is None or mine > old) and (
                    top is None or mine > (top["step"], top["timestamp"], top["value"])
                ):
                    newest[key] = row
            for k, v in (f.tags or {}).items():
                row = {"run_uuid": f.run_id, "key": k, "value": str(v)[:8000]}
                (tag_updates if (f.run_id, k) in tagged else tags).append(row)
        news = [row for key, row in newest.items() if key not in latest]
        olds = [_renamed(row, "b_") for key, row in newest.items() if key in latest]
        for model, rows in (
            (SqlParam, params),
            (SqlMetric, metrics),
            (SqlTag, tags),
            (SqlLatestMetric, news),
        ):
            if rows:
                session.execute(insert(model.__table__), rows)
        latest_t, tag_t, run_t = SqlLatestMetric.__table__, SqlTag.__table__, SqlRun.__table__
        if olds:
            session.execute(
                update(latest_t)
                .where(latest_t.c.run_uuid == bindparam("b_run_uuid"))
                .where(latest_t.c.key == bindparam("b_key"))
                .values(
                    {c: bindparam(f"b_{c}") for c in ("value", "timestamp", "step", "is_nan")}
                ),
                olds,
            )
        if tag_updates:
            session.execute(
                update(tag_t)
                .where(tag_t.c.run_uuid == bindparam("b_run_uuid"))
                .where(tag_t.c.key == bindparam("b_key"))
                .values(value=bindparam("b_value")),
                [_renamed(row, "b_") for row in tag_updates],
            )
        session.execute(
            update(run_t)
            .where(run_t.c.run_uuid == bindparam("b_run_uuid"))
            .values(status=bindparam("b_status"), end_time=end),
            [{"b_run_uuid": f.run_id, "b_status": f.status} for f in items],
        )


def _renamed(row: Mapping[str, Any], prefix: str) -> dict[str, Any]:
    """A row's values under bind names that differ from its columns' (SQLAlchemy reserves a
    column's own name in an UPDATE's SET for the new value)."""
    return {prefix + k: v for k, v in row.items()}


def _children_in_one_session(
    store: Any, experiment_id: str, parent_id: str, keys: Collection[str] | None
) -> list[Run]:
    """Tracker.children on MLflow's SqlAlchemyStore: the runs, their tags, latest metrics and
    params, as the Run entities search_runs builds from the same rows."""
    from mlflow.entities import Metric, Param, RunData, RunInfo, RunTag
    from mlflow.entities import Run as MlflowRun
    from mlflow.store.tracking.dbmodels.models import SqlLatestMetric, SqlParam, SqlRun, SqlTag
    from sqlalchemy import select

    run_t, tag_t = SqlRun.__table__, SqlTag.__table__
    latest_t, param_t = SqlLatestMetric.__table__, SqlParam.__table__
    mine = (
        select(tag_t.c.run_uuid)
        .join(run_t, run_t.c.run_uuid == tag_t.c.run_uuid)
        .where(
            tag_t.c.key == PARENT_TAG,
            tag_t.c.value == parent_id,
            run_t.c.experiment_id == int(experiment_id),
            run_t.c.lifecycle_stage == "active",
        )
    )
    tags: dict[str, list[RunTag]] = {}
    metrics: dict[str, list[Metric]] = {}
    params: dict[str, list[Param]] = {}
    with store.ManagedSessionMaker() as session:
        runs = session.execute(
            select(run_t)
            .where(run_t.c.run_uuid.in_(mine))
            .order_by(run_t.c.start_time.desc(), run_t.c.run_uuid)
        ).all()
        query: Any = select(tag_t.c.run_uuid, tag_t.c.key, tag_t.c.value)
        for run_id, key, value in session.execute(query.where(tag_t.c.run_uuid.in_(mine))):
            tags.setdefault(run_id, []).append(RunTag(key, value))
        query = select(
            latest_t.c.run_uuid,
            latest_t.c.key,
            latest_t.c.value,
            latest_t.c.timestamp,
            latest_t.c.step,
            latest_t.c.is_nan,
        ).where(latest_t.c.run_uuid.in_(mine))
        for run_id, key, value, timestamp, step, is_nan in session.execute(query):
            v = float("nan") if is_nan else value
            metrics.setdefault(run_id, []).append(Metric(key, v, timestamp, step))
        query = select(param_t.c.run_uuid, param_t.c.key, param_t.c.value)
        query = query.where(param_t.c.run_uuid.in_(mine))
        if keys is not None:
            query = query.where(param_t.c.key.in_(list(keys)))
        for run_id, key, value in session.execute(query):
            params.setdefault(run_id, []).append(Param(key, value))
    out = []
    for r in runs:
        own = tags.get(r.run_uuid, [])
        name = r.name or next((t.value for t in own if t.key == "mlflow.runName"), r.name)
        info = RunInfo(
            run_id=r.run_uuid,
            run_name=name,
            experiment_id=str(r.experiment_id),
            user_id=r.user_id,
            status=r.status,
            start_time=r.start_time,
            end_time=r.end_time,
            lifecycle_stage=r.lifecycle_stage,
            artifact_uri=r.artifact_uri,
        )
        data = RunData(
            metrics=metrics.get(r.run_uuid, []), params=params.get(r.run_uuid, []), tags=own
        )
        out.append(MlflowRun(info, data))
    return out


def _create_in_one_transaction(
    store: Any,
    experiment_id: str,
    items: Sequence[Start],
    tags_of: Callable[[Start], dict[str, str]],
) -> list[tuple[str, str]]:
    """Tracker.start_many on MLflow's SqlAlchemyStore: the run and tag rows its create_run
    writes, for every run, in one session (multi-row inserts). Returns (run id, artifact
    URI) per run."""
    import uuid

    from mlflow.store.tracking.dbmodels.models import SqlRun, SqlTag
    from mlflow.utils.uri import append_to_uri_path
    from sqlalchemy import insert

    experiment = store.get_experiment(experiment_id)
    if experiment.lifecycle_stage != "active":
        raise RuntimeError(f"experiment {experiment_id} is not active")
    now = int(time.time() * 1000)
    made, runs, tags = [], [], []
    for s in items:
        run_id = uuid.uuid4().hex
        artifact_uri = str(append_to_uri_path(experiment.artifact_location, run_id, "artifacts"))
        name = scrub(s.name)
        mine = {**tags_of(s), "mlflow.runName": name}
        runs.append(
            {
                "run_uuid": run_id,
                "name": name,
                "source_type": "UNKNOWN",
                "source_name": "",
                "entry_point_name": "",
                "user_id": mine.get("mlflow.user", "unknown"),
                "status": "RUNNING",
                "start_time": now,
                "end_time": None,
                "deleted_time": None,
                "source_version": "",
                "lifecycle_stage": "active",
                "artifact_uri": artifact_uri,
                "experiment_id": int(experiment_id),
            }
        )
        tags += [{"run_uuid": run_id, "key": k, "value": str(v)[:8000]} for k, v in mine.items()]
        made.append((run_id, artifact_uri))
    with store.ManagedSessionMaker(read_only=False) as session:
        session.execute(insert(SqlRun.__table__), runs)
        session.execute(insert(SqlTag.__table__), tags)
    return made
