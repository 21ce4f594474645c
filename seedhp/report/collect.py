"""Seed-runs out of MLflow: a sweep's or study's parent run (and the fresh-seed runs that
re-evaluate it), a study found by name in its Optuna storage, or a whole experiment."""

from __future__ import annotations

import json
import math
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from seedhp.contrast import SeedRun
from seedhp.errors import ConfigError
from seedhp.summary import maximize
from seedhp.tracking import PARENT_TAG, Tracker

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

    @property
    def maximize(self) -> bool:
        return maximize(self.objective)

    @property
    def curve_metric(self) -> str:
        return self.objective if self.objective in EPOCH_CURVES else "val_acc"


def collect(tracker: Tracker, parent_id: str | None = None) -> RunSet:
    """The seed-runs of one sweep or study (parent_id), or of the whole experiment."""
    if parent_id is None:
        parent, runs = None, tracker.search("tags.config_id != ''")
    else:
        try:
            parent = tracker.client.get_run(parent_id)
        except Exception:
            raise ConfigError("--run", parent_id, "no such MLflow run in this store") from None
        runs = tracker.children(parent_id) + tracker.search(
            f"tags.`seedhp.reseed_of` = '{parent_id}'"
        )
    seed_runs = [r for r in runs if "config_id" in r.data.tags and "seed" in r.data.tags]
    tags = parent.data.tags if parent is not None else {}
    objective = tags.get("seedhp.objective") or _objective_of(seed_runs)
    test_metric = "test_loss" if objective.endswith("loss") else "test_acc"
    kind = tags.get("seedhp.kind", "experiment")
    title = tags.get("mlflow.runName", f"experiment {tracker.experiment_name}")
    return RunSet(
        title=title,
        kind=kind,
        parent_id=parent_id,
        objective=objective,
        test_metric=test_metric,
        runs=[_seed_run(r) for r in seed_runs],
        sampler=tags.get("seedhp.sampler"),
        split_sizes=_split_sizes(seed_runs),
        command=tags.get("seedhp.command", ""),
    )


def study_parent(storage: str, study_name: str) -> str:
    """The MLflow parent run of an Optuna study, from the study's user attributes."""
    import optuna

    try:
        study = optuna.load_study(study_name=study_name, storage=storage)
    except KeyError:
        raise ConfigError("--study", study_name, f"no such study in {storage}") from None
    parent = study.user_attrs.get("mlflow_parent_run_id")
    if not parent:
        raise ConfigError(
            "--study",
            study_name,
            "the study has no MLflow parent run (not run by seedhp's optuna sweeper)",
        )
    return str(parent)


def latest_parent(tracker: Tracker) -> str:
    """The most recent sweep or study parent run of the experiment."""
    parents = tracker.search("tags.`seedhp.kind` IN ('sweep', 'study')")
    if not parents:
        raise ConfigError(
            "tracking.experiment",
            tracker.experiment_name,
            "has no seedhp sweep or study yet: run python -m seedhp -m ... first",
        )
    return str(max(parents, key=lambda r: r.info.start_time).info.run_id)


def curves(tracker: Tracker, runs: Sequence[SeedRun], metric: str) -> dict[str, list[float]]:
    """Per-epoch values of `metric` for each finished run (one MLflow request per run)."""
    out = {}
    for r in runs:
        if r.status == "finished":
            history = sorted(
                tracker.client.get_metric_history(r.run_id, metric),
                key=lambda m: (m.step, m.timestamp),
            )
            by_step: dict[int, float] = {}
            for m in history:
                by_step[m.step] = m.value
            out[r.run_id] = [by_step[s] for s in sorted(by_step)]
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


def _seed_run(r: Any) -> SeedRun:
    tags = r.data.tags
    status = tags.get("seedhp.status") or ("failed" if r.info.status == "FAILED" else "running")
    try:
        overrides = tuple(json.loads(tags.get("seedhp.overrides", "[]")))
    except ValueError:
        overrides = ()
    return SeedRun(
        run_id=r.info.run_id,
        config_id=tags["config_id"],
        label=tags.get("seedhp.label", tags["config_id"]),
        seed=int(tags["seed"]),
        status=status,
        role=tags.get("seedhp.role", "run"),
        metrics={k: float(v) for k, v in r.data.metrics.items()},
        strategy=tags.get("seedhp.strategy"),
        model=tags.get("seedhp.model"),
        overrides=overrides,
        has_predictions="seedhp.predictions" in tags,
    )


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
    "collect",
    "curves",
    "latest_parent",
    "predictions",
    "study_parent",
]
