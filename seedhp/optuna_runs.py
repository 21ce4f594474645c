"""A seed-run of seedhp.optimize in MLflow: created and finished in one transaction each on a
SQL store (seedhp.job.tracking's writers), and MLflow's active run while the objective runs, so
its own mlflow.log_* calls land in it."""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from seedhp.job.urls import scrub

if TYPE_CHECKING:
    from mlflow.entities import Run

    from seedhp.job.tracking import Finish, Start, Tracker


def start_run(tracker: Tracker, start: Start, sql: ExperimentRead | None) -> tuple[str, Run]:
    """Create the seed-run: on a SQL store in one transaction (seedhp.job.tracking's, which
    Tracker.start_many takes for two runs or more), elsewhere through MLflow. Returns its id
    and the Run MLflow's fluent API holds as the active run."""
    from mlflow.entities import Run, RunData, RunInfo, RunTag

    from seedhp.job.tracking import _create_in_one_transaction

    if sql is None:
        run_id = tracker.start_run(start.name, start.tags, start.parent_id)
        return run_id, tracker.client.get_run(run_id)
    started = int(time.time() * 1000)
    [(run_id, artifacts)] = _create_in_one_transaction(
        sql, tracker.experiment_id, [start], tracker._tags
    )
    tracker.artifacts[run_id] = artifacts
    tracker.heartbeat.opened(run_id)
    tags = {**tracker._tags(start), "mlflow.runName": scrub(start.name)}
    info = RunInfo(
        run_id=run_id,
        experiment_id=str(tracker.experiment_id),
        user_id="unknown",
        status="RUNNING",
        start_time=started,
        end_time=None,
        lifecycle_stage="active",
        artifact_uri=artifacts,
        run_name=scrub(start.name),
    )
    return run_id, Run(info, RunData(tags=[RunTag(k, v) for k, v in tags.items()]))


class ExperimentRead:
    """MLflow's SQL store as seedhp.job.tracking's one-transaction writer uses it, with the
    experiment read once a study rather than once a seed-run (its artifact location, where
    each run's goes)."""

    def __init__(self, store: Any) -> None:
        self.store = store
        self.ManagedSessionMaker = store.ManagedSessionMaker
        self._experiments: dict[str, Any] = {}

    def get_experiment(self, experiment_id: str) -> Any:
        if experiment_id not in self._experiments:
            self._experiments[experiment_id] = self.store.get_experiment(experiment_id)
        return self._experiments[experiment_id]


def end_run(tracker: Tracker, f: Finish) -> None:
    """The seed-run's last params, metrics and tags and its status: on a SQL store in one
    transaction, else (or when the objective ended the run itself) through MLflow."""
    from dataclasses import replace

    from seedhp.job.tracking import _finish_in_one_transaction
    from seedhp.job.urls import scrubbed

    store = tracker._sql_store()
    if store is not None:
        clean = replace(f, params=scrubbed(f.params), tags=scrubbed(f.tags))
        try:
            _finish_in_one_transaction(store, [clean])
            tracker.heartbeat.closed(f.run_id)
            return
        except RuntimeError:  # not RUNNING any more: the objective called mlflow.end_run()
            pass
    tracker.log(f.run_id, metrics=f.metrics, params=f.params, tags=f.tags)
    tracker.end_run(f.run_id, f.status)


def latest_metrics(tracker: Tracker, run_id: str) -> dict[str, float]:
    """The run's latest value of each metric: what the objective logged itself."""
    store = tracker._sql_store()
    if store is None:
        return dict(tracker.client.get_run(run_id).data.metrics)
    from mlflow.store.tracking.dbmodels.models import SqlLatestMetric
    from sqlalchemy import select

    t = SqlLatestMetric.__table__
    with store.ManagedSessionMaker() as session:
        rows = session.execute(
            select(t.c.key, t.c.value, t.c.is_nan).where(t.c.run_uuid == run_id)
        )
        return {k: math.nan if is_nan else float(v) for k, v, is_nan in rows}


@contextlib.contextmanager
def active(uri: str, run: Run) -> Iterator[None]:
    """The seed-run as MLflow's active run, without the requests mlflow.start_run(run_id=...)
    makes (it reads the run twice and writes its status): the objective's mlflow.log_* calls
    land in it, and mlflow.start_run(nested=True) nests under it. Runs the objective left open
    are ended; the caller records the seed-run's status."""
    import mlflow
    from mlflow.tracking import fluent

    if mlflow.get_tracking_uri() != uri:  # the objective pointed MLflow elsewhere last time
        mlflow.set_tracking_uri(uri)
    stack = fluent._active_run_stack.get()
    depth = len(stack)
    stack.append(fluent.ActiveRun(run))
    try:
        yield
    finally:
        mlflow.set_tracking_uri(uri)
        while len(stack) > depth + 1:
            mlflow.end_run()
        del stack[depth:]
