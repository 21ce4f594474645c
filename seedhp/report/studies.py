"""`seedhp report --study A --study B ...`: the strategy contrast of studies that already exist.

Each study's winner is its best trial by the report's tie rule (what the study printed as
best); the winners are re-run on one shared set of fresh seeds that none of the studies used
(after the largest seed any of them trained), once per configuration, reusing fresh seed-runs
already finished; then the contrast's page (seedhp.report.strategies) for that one replicate.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import optuna

from seedhp.errors import ConfigError
from seedhp.job import record
from seedhp.job.reuse import finished_runs
from seedhp.job.tracking import Tracker
from seedhp.job.urls import redact
from seedhp.report.collect import collect, study_parent
from seedhp.report.strategies import contrast_parent, write_contrast
from seedhp.stats import strategies as numbers
from seedhp.stats.contrast import FRESH_ROLES, SeedRun, best_trials, fresh_seeds
from seedhp.stats.summary import maximize as maximizes

if TYPE_CHECKING:
    from mlflow.entities import Run

Rerun = Callable[[SeedRun, Sequence[int], str], None]  # (a run of the config, seeds, reseed_of)


@dataclass(frozen=True)
class StudyWinner:
    study: str
    strategy: str
    parent: str
    config_id: str
    seed: int | None
    promised: float
    seed_runs: int
    source: SeedRun  # one of its seed-runs: its config re-creates the configuration
    runs: tuple[SeedRun, ...] = ()  # the best trial's seed-runs: what the study reports
    ties: tuple[str, ...] = ()  # the trials tied with it, after it by the tie rule


def contrast_studies(
    tracker: Tracker, storage: str, names: Sequence[str], n_fresh: int, out: Path, rerun: Rerun
) -> Path:
    if len(set(names)) != len(names):
        raise ConfigError("--study", list(names), "each study once")
    if n_fresh < 2:
        raise ConfigError(
            "--seeds", n_fresh, "an integer >= 2: a mean over fresh seeds, with a CI"
        )
    winners = [_winner(tracker, storage, name) for name in names]
    objectives = {_objective(tracker, w.parent) for w in winners}
    if len(objectives) != 1:
        raise ConfigError(
            "--study",
            list(names),
            f"the studies optimise different objectives: {sorted(objectives)}",
        )
    [objective] = objectives
    sets = [collect(tracker, w.parent, "--study") for w in winners]
    runs = [r for rs in sets for r in rs.runs]
    seeds = fresh_seeds([r for r in runs if r.role not in FRESH_ROLES], n_fresh)
    done: dict[str, dict[int, Run]] = {}
    for w in winners:
        if w.config_id in done:
            continue
        have = finished_runs(tracker, w.config_id, seeds)
        todo = [s for s in seeds if s not in have]
        if todo:
            rerun(w.source, todo, w.parent)
        done[w.config_id] = finished_runs(tracker, w.config_id, seeds)
    test = sets[0].test_metric  # the parent's tag: the app's own name (test/acc)
    labels = _strategy_labels(winners)
    spent = {w.seed_runs for w in winners}
    budget = spent.pop() if len(spent) == 1 else 0  # 0: each study's own budget
    outcomes = []
    for w in winners:
        fresh = done[w.config_id]
        ran = [fresh[s] for s in seeds if s in fresh]
        outcomes.append(
            numbers.Outcome(
                replicate=0,
                strategy=labels[w.study],
                study=w.study,
                config_id=w.config_id,
                label=w.source.label,
                seed=w.seed,
                promised=w.promised,
                seed_runs=w.seed_runs,
                fresh_seeds=tuple(int(r.data.tags[record.SEED]) for r in ran),
                fresh_val=tuple(r.data.metrics.get(objective, math.nan) for r in ran),
                fresh_test=tuple(r.data.metrics.get(test, math.nan) for r in ran),
                reported=_reported(w.runs, test),
                budget=budget,
                ties=w.ties,
            )
        )
    name = "studies " + ", ".join(names)
    key = hashlib.sha256(name.encode()).hexdigest()[:10]
    parent = contrast_parent(tracker, name, {"seedhp.storage": redact(storage)})
    meta = {
        "name": name,
        "parent_run_id": parent,
        "command": "seedhp report "
        + " ".join(f"--study {n}" for n in names)
        + f" --seeds {n_fresh}",
        "storage": redact(storage),
        "replicates": 1,
        "strategies": [labels[w.study] for w in winners],
        "budgets": [w.seed_runs for w in winners],
        "seeds_per_trial": "k",
        "fresh_seeds": n_fresh,
        "seed_block": None,
    }
    page = write_contrast(
        tracker, parent, meta, outcomes, objective, out / f"contrast-{key}", maximizes(objective)
    )
    tracker.end_run(parent, "FINISHED")
    return page


def _winner(tracker: Tracker, storage: str, name: str) -> StudyWinner:
    """The study's best trial by the report's tie rule, and one of its seed-runs."""
    parent = study_parent(storage, name).run_id
    study = optuna.load_study(study_name=name, storage=storage)
    strategy = str(tracker.client.get_run(parent).data.tags.get(record.STRATEGY, "tuned"))
    complete = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    if not complete:
        raise ConfigError("--study", name, "has no completed trial to take a winner from")
    maximize = study.direction == optuna.study.StudyDirection.MAXIMIZE
    best, *tied = best_trials(complete, maximize, "seed" if strategy == "tuned" else None)
    run_ids = list(best.user_attrs.get("mlflow_run_ids", {}).values())
    if not run_ids:
        raise ConfigError("--study", name, f"its best trial {best.number} has no MLflow run")
    runs = [r for r in collect(tracker, parent, "--study").runs if r.run_id in run_ids]
    if not runs:
        raise ConfigError(
            "--study", name, f"the runs of its best trial {best.number} are not in this store"
        )
    finished = study.get_trials(
        deepcopy=False, states=(optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)
    )
    seed = (
        best.params.get("seed")
        if strategy == "tuned"
        else (runs[0].seed if strategy == "fixed" else None)
    )
    return StudyWinner(
        study=name,
        strategy=strategy,
        parent=parent,
        config_id=runs[0].config_id,
        seed=None if seed is None else int(seed),
        promised=float(best.value) if best.value is not None else math.nan,
        seed_runs=sum(len(t.user_attrs.get("seed_scores", {})) for t in finished),
        source=runs[0],
        runs=tuple(runs),
        ties=tuple(f"trial {t.number} ({t.user_attrs.get('config_id', '?')})" for t in tied),
    )


def _reported(runs: Sequence[SeedRun], test: str) -> float:
    """What the study reports: its best trial's test score (the mean over its seeds)."""
    values = [r.metrics[test] for r in runs if not math.isnan(r.metrics.get(test, math.nan))]
    return sum(values) / len(values) if values else math.nan


def _objective(tracker: Tracker, parent: str) -> str:
    return str(tracker.client.get_run(parent).data.tags.get("seedhp.objective", "val_acc"))


def _strategy_labels(winners: Sequence[StudyWinner]) -> dict[str, str]:
    """Each study's column: its strategy, or strategy and name where two share one."""
    counts: dict[str, int] = {}
    for w in winners:
        counts[w.strategy] = counts.get(w.strategy, 0) + 1
    return {
        w.study: w.strategy if counts[w.strategy] == 1 else f"{w.strategy} {w.study}"
        for w in winners
    }
