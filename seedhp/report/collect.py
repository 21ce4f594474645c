"""Seed-runs out of MLflow: a sweep's or study's parent run (and the fresh-seed runs that
re-evaluate it), a study found by name in its Optuna storage, or a whole experiment."""

from __future__ import annotations

import json
import math
import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from seedhp.errors import ConfigError
from seedhp.job import record
from seedhp.job.record import PARENT as PARENT_TAG
from seedhp.job.record import read_seed_run, role
from seedhp.job.reuse import reused_runs, sweep_runs
from seedhp.job.tracking import Tracker
from seedhp.job.urls import MASK, redact
from seedhp.stats.contrast import SeedRun
from seedhp.stats.summary import latest_per_seed, maximize, test_metric_of

EPOCH_CURVES = ("val_acc", "val_loss", "train_loss")  # objectives with a per-epoch curve


@dataclass
class RunSet:
    """Everything a report is computed from."""

    title: str
    kind: str  # sweep | study | experiment
    parent_id: str | None
    objective: str
    test_metric: str
    runs: list[SeedRun]
    sampler: str | None = None  # a study's sampler: random draws make expected-max exact
    split_sizes: dict[str, dict[str, int]] = field(default_factory=dict)  # config -> n_val, n_test
    command: str = ""
    duplicates: list[SeedRun] = field(default_factory=list)  # (config, seed) counted already
    tracking_uri: str = ""  # the store it came from, passwords redacted
    experiment: str = "seedhp"
    own_app: bool = True  # seedhp's own task: its final-only objectives have val_acc's curve
    direction: str | None = None  # the study's own (tag seedhp.direction), over the name's

    @property
    def maximize(self) -> bool:
        """Higher is better: as the study was told (direction), else from the name."""
        if self.direction in ("maximize", "minimize"):
            return self.direction == "maximize"
        return maximize(self.objective)

    @property
    def maximize_test(self) -> bool:
        """The test metric's direction: the objective's when it is the objective's test
        counterpart (val_acc -> test_acc, or a study's own metric), else from its name."""
        if self.direction in ("maximize", "minimize") and (
            self.test_metric in (self.objective, test_metric_of(self.objective))
        ):
            return self.maximize
        return maximize(self.test_metric)

    @property
    def curve_metric(self) -> str:
        """Another app's objective is the curve (logged per epoch by the app, or by
        seedhp.lightning); seedhp's own final-only metrics show val_acc's."""
        own_final = self.own_app and self.objective not in EPOCH_CURVES
        return "val_acc" if own_final else self.objective


def collect(
    tracker: Tracker,
    parent_id: str | None = None,
    key: str = "--run",
    runs: Sequence[Any] | None = None,
) -> RunSet:
    """The seed-runs of one sweep or study (parent_id: its children, the runs it reuses and the
    fresh-seed runs that re-evaluate it), or of the whole experiment. Each (configuration,
    seed) counts once: the latest finished run; the others are listed in `duplicates`.
    `key` names the argument that chose the parent, for the error when there is no such run.
    `runs`: the parent's children and reused runs, when the caller has just read them."""
    if parent_id is None:
        parent, roles = None, [(r, role(r)) for r in tracker.search("tags.config_id != ''")]
    else:
        try:
            parent = tracker.client.get_run(parent_id)
        except Exception:
            raise ConfigError(key, parent_id, "no such MLflow run in this store") from None
        mine = sweep_runs(tracker, parent_id) if runs is None else runs
        roles = [(r, role(r, parent_id)) for r in mine]
        for r in tracker.search(f"tags.`seedhp.reseed_of` = '{parent_id}'"):
            if "config_id" in r.data.tags:
                roles.append((r, "reseed"))
            elif r.data.tags.get("seedhp.kind") == "reseed":  # a `seedhp reseed` sweep
                roles += [(x, "reseed") for x in reused_runs(tracker, r.info.run_id)]
    unique: dict[str, tuple[Any, str]] = {}
    for r, rl in roles:
        if "config_id" in r.data.tags and "seed" in r.data.tags:
            unique.setdefault(r.info.run_id, (r, rl))
    seed_runs = [r for r, _ in unique.values()]
    tags = parent.data.tags if parent is not None else {}
    objective = tags.get("seedhp.objective") or _objective_of(seed_runs)
    test_metric = tags.get(record.TEST_METRIC) or test_metric_of(objective)
    kind = tags.get("seedhp.kind", "experiment")
    title = tags.get("mlflow.runName", f"experiment {tracker.experiment_name}")
    kept, duplicates = latest_per_seed([read_seed_run(r, rl) for r, rl in unique.values()])
    return RunSet(
        title=title,
        kind=kind,
        parent_id=parent_id,
        objective=objective,
        test_metric=test_metric,
        runs=kept,
        sampler=tags.get("seedhp.sampler"),
        split_sizes=_split_sizes(seed_runs),
        command=tags.get("seedhp.command", ""),
        duplicates=duplicates,
        tracking_uri=redact(tracker.uri),
        experiment=tracker.experiment_name,
        own_app=not seed_runs or any("train.objective" in r.data.params for r in seed_runs),
        direction=tags.get("seedhp.direction"),
    )


@dataclass(frozen=True)
class StudySource:
    """Where an Optuna study's seed-runs are: its MLflow parent run, store and experiment."""

    run_id: str
    tracking_uri: str | None
    experiment: str | None


def study_store(
    given: str | None, recorded: str | None, default: str, key: str, advice: str
) -> str:
    """A study's MLflow store: `given`, else the one the study recorded, else `default`. A
    study records its store without the password (seedhp.job.urls): the URI it stands for is
    MLFLOW_TRACKING_URI's, or must be given (ConfigError on `key`, saying `advice`)."""
    if given or not recorded:
        return given or default
    if MASK not in recorded:
        return recorded
    env = os.environ.get("MLFLOW_TRACKING_URI", "")
    if env and redact(env) == recorded:
        return env
    raise ConfigError(
        key, recorded, f"the study records its MLflow store without the password: {advice}"
    )


def study_parent(storage: str, study_name: str) -> StudySource:
    """The MLflow parent run of an Optuna study, and the store it is in, from the study's user
    attributes (seedhp's optuna sweeper records them)."""
    import optuna

    try:
        study = optuna.load_study(study_name=study_name, storage=storage)
    except KeyError:
        raise ConfigError("--study", study_name, f"no such study in {redact(storage)}") from None
    attrs = study.user_attrs
    parent = attrs.get("mlflow_parent_run_id")
    if not parent:
        raise ConfigError(
            "--study",
            study_name,
            "the study has no MLflow parent run (not run by seedhp's optuna sweeper)",
        )
    uri = attrs.get("mlflow_tracking_uri")  # without its password: seedhp.job.urls
    return StudySource(str(parent), uri and str(uri), attrs.get("mlflow_experiment"))


def latest_parent(tracker: Tracker) -> str:
    """The most recent sweep, study or sources parent run of the experiment."""
    parents = [  # one search per kind: MLflow's filter has no IN for tags
        r
        for kind in ("sweep", "study", "sources")
        for r in tracker.search(f"tags.`seedhp.kind` = '{kind}'")
    ]
    if not parents:
        raise ConfigError(
            "tracking.experiment",
            tracker.experiment_name,
            "has no seedhp sweep or study yet: run python -m seedhp -m ... first",
        )
    return str(max(parents, key=lambda r: r.info.start_time).info.run_id)


def curves(tracker: Tracker, runs: Sequence[SeedRun], metric: str) -> dict[str, list[float]]:
    """Per-epoch values of `metric` for each finished run (the last value logged at a step)."""
    out = {}
    finished = [r.run_id for r in runs if r.status == "finished"]
    for run_id, logged in tracker.histories(finished, metric).items():
        by_step: dict[int, float] = {}
        for m in sorted(logged, key=lambda m: (m.step, m.timestamp)):
            by_step[m.step] = m.value
        out[run_id] = [by_step[s] for s in sorted(by_step)]
    return out


def predictions(
    tracker: Tracker, runs: Sequence[SeedRun]
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Test-set predictions and labels of the finished runs that kept them."""
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        for r in runs:
            if r.status == "finished" and r.has_predictions:
                path = tracker.client.download_artifacts(r.run_id, "test_predictions.json", tmp)
                blob = json.loads(Path(path).read_text())
                out[r.run_id] = (np.asarray(blob["predictions"]), np.asarray(blob["labels"]))
    return out


def _objective_of(runs: Sequence[Any]) -> str:
    for r in runs:
        value = r.data.params.get("train.objective")
        if value:
            return str(value)
    return "val_acc"


def _split_sizes(runs: Sequence[Any]) -> dict[str, dict[str, int]]:
    out: dict[str, dict[str, int]] = {}
    for r in runs:
        p = r.data.params
        if "split.n_test" in p and r.data.tags["config_id"] not in out:
            out[r.data.tags["config_id"]] = {
                "n_val": int(p["split.n_val"]),
                "n_test": int(p["split.n_test"]),
            }
    return out


def is_finite(value: float | None) -> bool:
    return value is not None and not math.isnan(value)


__all__ = [
    "PARENT_TAG",
    "RunSet",
    "StudySource",
    "collect",
    "curves",
    "latest_parent",
    "predictions",
    "study_parent",
]
