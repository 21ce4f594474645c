"""MLflow tracking through MlflowClient: no fluent API, so no active run leaks between jobs.

One MLflow run per seed-run, nested under its sweep's or study's parent run. Logging is
batched: a seed-run costs a handful of requests (create, params + config, metrics, end), not one
per value.
"""

from __future__ import annotations

import logging
import os
import time
import urllib.error
import urllib.request
from collections.abc import Iterable, Mapping, Sequence
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from seedhp.errors import ConfigError
from seedhp.locks import sqlite_lock
from seedhp.urls import redact

if TYPE_CHECKING:
    from mlflow.entities import Metric, Run
    from mlflow.tracking import MlflowClient

# MLflow prints "View run ... at: <url>" on stdout for every run that ends on an HTTP server:
# one line per seed-run in a 10,000-seed sweep. Set it to false to have them.
os.environ.setdefault("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")
PARENT_TAG = "mlflow.parentRunId"
_MAX_PARAMS, _MAX_TAGS, _MAX_ITEMS = 100, 100, 1000  # MLflow's log_batch limits


def metric(key: str, value: float, step: int = 0, timestamp_ms: int | None = None) -> Metric:
    from mlflow.entities import Metric

    return Metric(key, float(value), timestamp_ms or int(time.time() * 1000), step)


class Tracker:
    """An MLflow store and experiment, reached once per process per URI."""

    def __init__(self, uri: str, experiment: str) -> None:
        self.uri, self.experiment_name = uri, experiment
        with sqlite_lock(uri):
            self.client = _client(uri)
            self.experiment_id = _experiment_id(self.client, uri, experiment)

    def start_run(
        self,
        name: str,
        tags: Mapping[str, str],
        parent_id: str | None = None,
        params: Mapping[str, str] | None = None,
    ) -> str:
        all_tags = {**tags, **({PARENT_TAG: parent_id} if parent_id else {})}
        run = self.client.create_run(self.experiment_id, run_name=name, tags=dict(all_tags))
        run_id = run.info.run_id
        if params:
            self.log(run_id, params=params)
        return str(run_id)

    def log(
        self,
        run_id: str,
        metrics: Sequence[Metric] = (),
        params: Mapping[str, str] | None = None,
        tags: Mapping[str, str] | None = None,
    ) -> None:
        """Everything in as few log_batch requests as MLflow's per-request limits allow."""
        from mlflow.entities import Param, RunTag

        ps = [Param(k, str(v)[:6000]) for k, v in (params or {}).items()]
        ts = [RunTag(k, str(v)[:8000]) for k, v in (tags or {}).items()]
        ms = list(metrics)
        while ps or ts or ms:
            p, ps = ps[:_MAX_PARAMS], ps[_MAX_PARAMS:]
            t, ts = ts[:_MAX_TAGS], ts[_MAX_TAGS:]
            room = _MAX_ITEMS - len(p) - len(t)
            m, ms = ms[:room], ms[room:]
            self.client.log_batch(run_id, metrics=m, params=p, tags=t)

    def log_text(self, run_id: str, text: str, path: str) -> None:
        self.client.log_text(run_id, text, path)

    def log_artifact(
        self, run_id: str, local_path: str | Path, artifact_path: str | None = None
    ) -> None:
        self.client.log_artifact(run_id, str(local_path), artifact_path)

    def log_artifacts(self, run_id: str, local_dir: str | Path, artifact_path: str) -> None:
        self.client.log_artifacts(run_id, str(local_dir), artifact_path)

    def end_run(self, run_id: str, status: str) -> None:
        """status: FINISHED | FAILED | KILLED."""
        self.client.set_terminated(run_id, status)

    def children(self, parent_id: str) -> list[Run]:
        """Every run nested under `parent_id`, all pages."""
        return self.search(f"tags.`{PARENT_TAG}` = '{parent_id}'")

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


def check_reachable(uri: str) -> None:
    """Fail fast, in one line, on a tracking URI that cannot work; before any training."""
    if uri.startswith(("http://", "https://")):
        try:
            urllib.request.urlopen(uri.rstrip("/") + "/health", timeout=5).close()
        except (urllib.error.URLError, OSError, ValueError) as err:
            reason = getattr(err, "reason", err)
            raise ConfigError(
                "tracking.uri",
                redact(uri),
                f"no MLflow tracking server answers there ({reason}); start one "
                "with `mlflow server` or fix the URL",
            ) from None
    elif uri.startswith("sqlite:"):
        if not uri.startswith("sqlite:///") or uri == "sqlite:///":
            raise ConfigError(
                "tracking.uri",
                redact(uri),
                "an SQLite URI is sqlite:///relative/path.db or sqlite:////abs/path.db",
            )
        Path(uri[len("sqlite:///") :]).expanduser().parent.mkdir(parents=True, exist_ok=True)


@lru_cache(maxsize=8)
def _client(uri: str) -> MlflowClient:
    check_reachable(uri)
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")  # no bars in logs
    from mlflow.tracking import MlflowClient

    for name in ("alembic", "mlflow"):  # after import: mlflow sets its loggers up on import
        logging.getLogger(name).setLevel(logging.WARNING)
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
            return str(found.experiment_id)
        location = None
        if uri.startswith("sqlite:///"):  # keep artifacts beside the database, not in CWD
            db = Path(uri[len("sqlite:///") :]).expanduser().resolve()
            location = (db.parent / "mlartifacts").as_uri()
        return str(client.create_experiment(name, artifact_location=location))
    except ConfigError:
        raise
    except Exception as err:  # MlflowException, SQLAlchemy errors: a store we cannot use
        raise ConfigError(
            "tracking.uri", redact(uri), f"cannot use this MLflow store ({_first_line(err)})"
        ) from None


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return f"{type(err).__name__}: {text.splitlines()[0]}" if text else type(err).__name__


def run_rows(runs: Iterable[Run], objective: str) -> list[dict[str, Any]]:
    """Flatten MLflow runs into the records seedhp.summary needs."""
    rows = []
    for r in runs:
        tags, metrics = r.data.tags, r.data.metrics
        if "config_id" not in tags or "seed" not in tags:
            continue
        rows.append(
            {
                "run_id": r.info.run_id,
                "config_id": tags["config_id"],
                "seed": int(tags["seed"]),
                "status": tags.get(
                    "seedhp.status", "failed" if r.info.status == "FAILED" else "running"
                ),
                "value": metrics.get(objective, float("nan")),
                "test_acc": metrics.get("test_acc", float("nan")),
                "label": tags.get("seedhp.label", tags["config_id"]),
                "role": tags.get("seedhp.role", "run"),
            }
        )
    return rows
