"""A study's MLflow parent run (one per study, found again by every process and resumption),
its results file and its closing lines."""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import optuna
import yaml
from optuna.trial import TrialState

from seedhp.job import record
from seedhp.job.tracking import Tracker, metric
from seedhp.job.urls import redact, write_scrubbed
from seedhp.stats.contrast import TIE_RULE, best_trials
from seedhp.sweep.study_settings import StudySettings, storage_label
from seedhp.sweep.study_storage import FINISHED, count_trials
from seedhp.sweep.tracked import Target

if TYPE_CHECKING:
    from seedhp.sweep.study_context import StudyContext


log = logging.getLogger("seedhp")


PARENT_GRACE_SECONDS = 2.0  # wait for other processes' parent runs before choosing one


def study_parent(tracker: Tracker, study: optuna.Study, s: StudySettings, job: Target) -> str:
    """One MLflow parent run per study, found again by every process and every resumption."""
    mine = f"tags.`seedhp.kind` = 'study' and tags.`seedhp.study` = '{s.name}'"
    # an in-memory study is new in every run: so is its parent run
    found = _earliest(tracker.search(mine)) if s.storage is not None else None
    # where `seedhp report --study` finds the study's runs
    study.set_user_attr("mlflow_tracking_uri", redact(tracker.uri))
    study.set_user_attr("mlflow_experiment", tracker.experiment_name)
    if found is not None:
        tracker.reopen(found)
        study.set_user_attr("mlflow_parent_run_id", found)
        return found
    parent = tracker.start_run(
        f"study {s.name}",
        {
            "seedhp.kind": "study",
            "seedhp.study": s.name,
            "seedhp.strategy": s.strategy,
            "seedhp.storage": storage_label(s.storage),
            "seedhp.sampler": s.sampler,
            "seedhp.pruner": s.pruner,
            "seedhp.objective": s.objective,
            record.TEST_METRIC: job.test_metric,
            "seedhp.direction": s.direction,
        },
        parent_id=job.tracking.parent_run_id,
    )
    # Processes starting together may each have created one, and seen only their own: once
    # every creation is visible all agree on the earliest (start time, then id).
    if s.storage is None:
        return parent
    time.sleep(PARENT_GRACE_SECONDS)
    winner = _earliest(tracker.search(mine)) or parent
    if winner != parent:  # another process created the study's parent at the same moment
        tracker.delete_run(parent)
    study.set_user_attr("mlflow_parent_run_id", winner)  # optuna-dashboard -> MLflow
    return winner


def _earliest(runs: Sequence[Any]) -> str | None:
    if not runs:
        return None
    first = min(runs, key=lambda r: (r.info.start_time, r.info.run_id))
    return str(first.info.run_id)


def results(ctx: StudyContext) -> dict[str, Any]:
    """optimization_results.yaml: what hydra-optuna-sweeper writes, plus the seeds."""
    study, s = ctx.study, ctx.settings
    out: dict[str, Any] = {
        "name": "optuna",
        "study_name": s.name,
        "storage": storage_label(s.storage),
        "seed_strategy": s.strategy,
        "direction": s.direction,
        "objective": s.objective,
        "finished_trials": count_trials(ctx, FINISHED),
        "pruned_trials": count_trials(ctx, (TrialState.PRUNED,)),
    }
    completed = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    if completed:
        best, *tied = best_trials(completed, s.maximize, winner_seed_key(s))
        optuna_best = study.best_trial.number  # Optuna's own pick among ties: storage order
        out.update(
            {
                "best_trial": best.number,
                "best_value": best.value,
                "tied_trials": [t.number for t in tied],
                "tie_rule": TIE_RULE,
                **({"optuna_best_trial": optuna_best} if optuna_best != best.number else {}),
                "best_params": best.params,
                "best_seed_scores": {
                    int(k): v for k, v in best.user_attrs.get("seed_scores", {}).items()
                },
                "best_mlflow_run_ids": best.user_attrs.get("mlflow_run_ids", {}),
            }
        )
    return out


def winner_seed_key(s: StudySettings) -> str | None:
    """The parameter that holds a trial's own seed: a tuned study's seed key."""
    return s.space.seed_key if s.strategy == "tuned" else None


def finish(ctx: StudyContext, status: str) -> str:
    s = ctx.settings
    res = results(ctx)
    path = ctx.sweep_dir / "optimization_results.yaml"
    write_scrubbed(path, yaml.safe_dump(res, sort_keys=False))
    ctx.tracker.log_artifact(ctx.parent, path)
    # named apart from the seed-runs' metrics (their best_val_acc is per epoch)
    metrics = [
        metric("study.finished_trials", res["finished_trials"]),
        metric("study.pruned_trials", res["pruned_trials"]),
    ]
    if "best_value" in res:
        metrics.append(metric(f"study.best_trial_{s.objective}", res["best_value"]))
    ctx.tracker.log(ctx.parent, metrics=metrics)
    done = res["finished_trials"] >= s.n_trials
    ctx.tracker.end_run(ctx.parent, status if status != "FINISHED" or done else "RUNNING")
    lines = [
        "",
        f"Study {s.name}: {res['finished_trials']} of {s.n_trials} trials finished "
        f"({res['pruned_trials']} pruned), storage {storage_label(s.storage)}",
    ]
    if "best_value" in res:
        params = show_params(res["best_params"])
        lines.append(
            f"Best trial {res['best_trial']}: {s.objective} {res['best_value']:.4f}  {params}"
        )
        if res["tied_trials"]:
            lines.append(
                f"  tied with trial(s) {', '.join(map(str, res['tied_trials']))}: {TIE_RULE}"
                + (
                    f" (Optuna's own study.best_trial is trial {res['optuna_best_trial']})"
                    if "optuna_best_trial" in res
                    else ""
                )
            )
        if s.strategy == "averaged":
            lines.append(
                "  per seed: "
                + ", ".join(f"seed {k}: {v:.4f}" for k, v in res["best_seed_scores"].items())
            )
    lines += [
        f"Results: {path}",
        f"MLflow: experiment '{ctx.tracker.experiment_name}', parent run {ctx.parent}",
        f"Browse: make ui, then {ctx.tracker.ui_url()}"
        + (f"  |  make dashboard  (optuna-dashboard {redact(s.storage)})" if s.storage else "")
        if ctx.tracker.uri.startswith("sqlite:")
        else f"Browse: {ctx.tracker.ui_url()}"
        + (f"  |  optuna-dashboard {redact(s.storage)}" if s.storage else ""),
    ]
    return "\n".join(lines)


def show_params(params: Mapping[str, Any]) -> str:
    return " ".join(
        f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in params.items()
    )


def fmt_scores(values: Sequence[float]) -> str:
    return "[" + ", ".join(f"{v:.4f}" for v in values) + "]"
