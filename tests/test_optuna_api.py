"""seedhp.optimize and seedhp.report: seedhp's studies for plain Optuna code, without Hydra."""

from __future__ import annotations

import importlib.util
import json
import math
import os
import socket
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import optuna
import pytest
import yaml
from mlflow import MlflowClient
from optuna.trial import TrialState

import seedhp
from seedhp.errors import ConfigError
from seedhp.job.owner import this_process
from seedhp.stats.contrast import best_trials
from tests.conftest import ROOT

APPS = ROOT / "tests" / "peer_apps"


@pytest.fixture(autouse=True)
def quiet_optuna() -> None:
    optuna.logging.set_verbosity(optuna.logging.WARNING)


def where(tmp_path: Path, name: str = "s") -> dict[str, Any]:
    """The storage, study name and MLflow store of a study in tmp_path."""
    return {
        "storage": f"sqlite:///{tmp_path}/optuna.db",
        "study_name": name,
        "tracking_uri": f"sqlite:///{tmp_path}/mlflow.db",
    }


def runs(tmp_path: Path) -> list[Any]:
    client = MlflowClient(f"sqlite:///{tmp_path}/mlflow.db")
    exp = client.get_experiment_by_name("seedhp")
    return list(client.search_runs([exp.experiment_id], max_results=5000))


def seed_runs(tmp_path: Path, study: str | None = None) -> list[Any]:
    return [
        r
        for r in runs(tmp_path)
        if "seed" in r.data.tags
        and r.data.tags.get("seedhp.kind") is None
        and (study is None or r.data.tags.get("seedhp.study") == study)
    ]


def quadratic(trial: optuna.Trial, seed: int) -> float:
    """Best at x = 0.3; each seed adds its own small offset."""
    x = trial.suggest_float("x", -1.0, 1.0)
    return -((x - 0.3) ** 2) + 0.001 * (seed % 7)


CALLS: list[tuple[int, int]] = []  # (trial, seed) of each call of `counted`


def counted(trial: optuna.Trial, seed: int) -> float:
    CALLS.append((trial.number, seed))
    return quadratic(trial, seed)


# ----------------------------------------------------------------------------------------------
# Every strategy, end to end


@pytest.mark.parametrize("strategy", ["tuned", "averaged", "fixed"])
def test_every_seeded_strategy_records_each_seed_under_one_parent(
    tmp_path: Path, strategy: str
) -> None:
    study = seedhp.optimize(
        quadratic,
        n_trials=3,
        strategy=strategy,
        seeds=[4, 1, 9, 7],
        seeds_per_trial=2,
        **where(tmp_path),
    )
    complete = study.get_trials(states=(TrialState.COMPLETE,))
    assert len(complete) == 3 and len(study.trials) == 3
    seeds_of = {
        "tuned": lambda t: [t.params["seed"]],
        "averaged": lambda t: [4, 1],  # the pool's first seeds_per_trial, in pool order
        "fixed": lambda t: [4],
    }[strategy]
    for t in complete:
        seeds = seeds_of(t)
        scores = {int(k): v for k, v in t.user_attrs["seed_scores"].items()}
        assert list(scores) == seeds
        x = t.params["x"]
        assert scores == {s: pytest.approx(-((x - 0.3) ** 2) + 0.001 * (s % 7)) for s in seeds}
        assert t.value == pytest.approx(sum(scores.values()) / len(scores))
        if strategy == "tuned":
            assert list(t.params) == ["seed", "x"]  # the seed suggested first
            assert t.params["seed"] in (4, 1, 9, 7)
        else:
            assert list(t.params) == ["x"]
    [parent] = [r for r in runs(tmp_path) if r.data.tags.get("seedhp.kind") == "study"]
    assert study.user_attrs["mlflow_parent_run_id"] == parent.info.run_id
    assert parent.data.tags["seedhp.strategy"] == strategy
    assert parent.data.tags["seedhp.objective"] == "value"
    assert parent.info.status == "FINISHED"
    children = seed_runs(tmp_path)
    assert len(children) == sum(len(t.user_attrs["seed_scores"]) for t in complete)
    by_id = {r.info.run_id: r for r in children}
    for t in complete:
        for seed, run_id in t.user_attrs["mlflow_run_ids"].items():
            r = by_id[run_id]
            tags = r.data.tags
            assert tags["mlflow.parentRunId"] == parent.info.run_id
            assert tags["seed"] == seed
            assert tags["config_id"] == t.user_attrs["config_id"]
            assert tags["seedhp.study"] == "s" and tags["seedhp.trial"] == str(t.number)
            assert tags["seedhp.strategy"] == strategy and tags["seedhp.role"] == "trial"
            assert tags["seedhp.status"] == "finished" and r.info.status == "FINISHED"
            assert r.data.params == {"x": repr(t.params["x"]), "seed": seed}
            assert tags["seedhp.label"] == f"quadratic x={t.params['x']:.4g}"
            assert tags["seedhp.app"] == "tests.test_optuna_api:quadratic"
            assert r.data.metrics["value"] == t.user_attrs["seed_scores"][seed]


def test_strategy_none_is_a_plain_study_without_seeds_or_records(tmp_path: Path) -> None:
    def objective(trial: optuna.Trial) -> float:
        return trial.suggest_float("x", -1.0, 1.0) ** 2

    study = seedhp.optimize(
        objective, n_trials=4, strategy="none", direction="minimize", **where(tmp_path)
    )
    assert [t.state for t in study.trials] == [TrialState.COMPLETE] * 4
    assert all(list(t.params) == ["x"] for t in study.trials)
    assert "mlflow_parent_run_id" not in study.user_attrs
    assert not (tmp_path / "mlflow.db").exists()  # nothing recorded in MLflow


def test_the_objectives_own_mlflow_calls_land_in_its_seed_run(tmp_path: Path) -> None:
    def objective(trial: optuna.Trial, seed: int) -> dict[str, float]:
        lr = trial.suggest_float("lr", 0.01, 0.1, log=True)
        for epoch in range(1, 4):
            mlflow.log_metric("val_loss", 1.0 / (epoch + seed), step=epoch)
        mlflow.set_tag("mine", "yes")
        active = mlflow.active_run()
        assert active is not None and seedhp.current_seed_run() is not None
        assert active.info.run_id == seedhp.current_seed_run().run_id  # type: ignore[union-attr]
        return {"val_acc": 0.5 + lr, "test_acc": 0.4, "note": "not a number"}  # type: ignore[dict-item]

    before = mlflow.get_tracking_uri()
    study = seedhp.optimize(
        objective, n_trials=2, strategy="averaged", seeds_per_trial=2, objective_key="val_acc",
        **where(tmp_path),
    )  # fmt: skip
    assert mlflow.get_tracking_uri() == before and mlflow.active_run() is None
    client = MlflowClient(f"sqlite:///{tmp_path}/mlflow.db")
    for t in study.trials:
        for seed, run_id in t.user_attrs["mlflow_run_ids"].items():
            r = client.get_run(run_id)
            history = client.get_metric_history(run_id, "val_loss")
            assert [(m.step, m.value) for m in history] == [
                (e, 1.0 / (e + int(seed))) for e in range(1, 4)
            ]
            assert r.data.tags["mine"] == "yes"
            assert r.data.metrics["val_acc"] == pytest.approx(0.5 + t.params["lr"])
            assert r.data.metrics["test_acc"] == 0.4 and "note" not in r.data.metrics
    [parent] = [r for r in runs(tmp_path) if r.data.tags.get("seedhp.kind") == "study"]
    assert parent.data.tags["seedhp.objective"] == "val_acc"
    assert parent.data.tags["seedhp.test_metric"] == "test_acc"


# ----------------------------------------------------------------------------------------------
# Pruning


def _enqueued(tmp_path: Path, direction: str, *params: dict[str, Any]) -> None:
    """The study created beforehand with these trials queued: they run first, in order."""
    study = optuna.create_study(
        storage=where(tmp_path)["storage"], study_name="s", direction=direction
    )
    for p in params:
        study.enqueue_trial(p)


def test_wilcoxon_prunes_an_averaged_trial_that_is_clearly_worse(tmp_path: Path) -> None:
    _enqueued(tmp_path, "maximize", {"x": 0.3}, {"x": -0.9})
    study = seedhp.optimize(
        quadratic,
        n_trials=2,
        strategy="averaged",
        seeds=range(10),
        seeds_per_trial=10,
        pruner=optuna.pruners.WilcoxonPruner(p_threshold=0.1),
        **where(tmp_path),
    )
    good, bad = study.trials[:2]
    assert good.state == TrialState.COMPLETE and len(good.user_attrs["seed_scores"]) == 10
    assert bad.state == TrialState.PRUNED
    reported = bad.intermediate_values
    assert 2 <= len(reported) < 10 and list(reported) == list(range(len(reported)))
    assert len(bad.user_attrs["seed_scores"]) == len(reported)  # its other seeds never ran
    assert len(seed_runs(tmp_path)) == 10 + len(reported)


def test_report_epoch_prunes_a_tuned_trial_with_the_median_pruner(tmp_path: Path) -> None:
    def objective(trial: optuna.Trial, seed: int) -> float:
        x = trial.suggest_float("x", -1.0, 1.0)
        for epoch in range(1, 6):
            seedhp.report_epoch(epoch, -abs(x - 0.3) * epoch)
        return -abs(x - 0.3) * 5

    _enqueued(tmp_path, "maximize", {"x": 0.3}, {"x": -0.9})
    study = seedhp.optimize(
        objective,
        n_trials=2,
        strategy="tuned",
        pruner=optuna.pruners.MedianPruner(n_startup_trials=1),
        **where(tmp_path),
    )
    good, bad = study.trials[:2]
    assert good.state == TrialState.COMPLETE and list(good.intermediate_values) == [1, 2, 3, 4, 5]
    assert bad.state == TrialState.PRUNED and list(bad.intermediate_values) == [1]
    [run_id] = bad.user_attrs["mlflow_run_ids"].values()
    r = MlflowClient(where(tmp_path)["tracking_uri"]).get_run(run_id)
    assert r.data.tags["seedhp.status"] == "pruned" and r.info.status == "FINISHED"
    assert r.data.tags["seedhp.pruned"] == "pruned after epoch 1"


# ----------------------------------------------------------------------------------------------
# Resume, reuse, failures


def test_calling_again_tops_the_study_up_and_reuses_an_interrupted_trials_seeds(
    tmp_path: Path,
) -> None:
    calls: list[tuple[int, int]] = []

    def objective(trial: optuna.Trial, seed: int) -> float:
        calls.append((trial.number, seed))
        if calls == [(0, 0), (0, 1), (0, 2), (1, 0), (1, 1), (1, 2)]:
            raise KeyboardInterrupt  # Ctrl-C during trial 1's third seed
        return quadratic(trial, seed)

    args = {"strategy": "averaged", "seeds_per_trial": 3, "sampler_seed": 1, **where(tmp_path)}
    with pytest.raises(KeyboardInterrupt):
        seedhp.optimize(objective, n_trials=3, **args)
    study = seedhp.optimize(objective, n_trials=3, **args)
    states = [t.state for t in study.trials]
    assert states == [TrialState.COMPLETE, TrialState.FAIL, TrialState.COMPLETE, *states[3:]]
    retry = study.trials[2]
    assert retry.params == study.trials[1].params and retry.user_attrs["reused_seeds"] == [0, 1]
    assert calls[6:] == [(2, 2), *calls[7:]]  # only the seed it had not finished
    assert study.trials[1].user_attrs.get("seedhp.retry_of") is None
    assert retry.user_attrs["seedhp.retry_of"] == 1
    assert len(study.get_trials(states=(TrialState.COMPLETE,))) == 3
    again = seedhp.optimize(objective, n_trials=3, **args)  # n_trials counts the study's
    assert len(again.trials) == len(study.trials)
    finished = [r for r in seed_runs(tmp_path) if r.data.tags["seedhp.status"] == "finished"]
    pairs = [(r.data.tags["config_id"], r.data.tags["seed"]) for r in finished]
    assert len(pairs) == len(set(pairs)) == 9  # no (configuration, seed) trained twice
    interrupted = [r for r in seed_runs(tmp_path) if r.data.tags["seedhp.status"] != "finished"]
    assert [(r.data.tags["seedhp.status"], r.info.status) for r in interrupted] == [
        ("interrupted", "KILLED")
    ]


def test_a_second_study_on_the_same_store_reuses_the_finished_seed_runs(tmp_path: Path) -> None:
    args = {
        "n_trials": 3,
        "strategy": "averaged",
        "seeds_per_trial": 2,
        "sampler": optuna.samplers.RandomSampler(),
        "sampler_seed": 5,
        "tracking_uri": where(tmp_path)["tracking_uri"],
    }
    first = seedhp.optimize(counted, storage=f"sqlite:///{tmp_path}/a.db", study_name="a", **args)
    CALLS.clear()
    args["sampler"] = optuna.samplers.RandomSampler()
    second = seedhp.optimize(counted, storage=f"sqlite:///{tmp_path}/b.db", study_name="b", **args)
    assert [t.params for t in second.trials] == [t.params for t in first.trials]
    assert [t.value for t in second.trials] == [t.value for t in first.trials]
    # the first trial teaches the study its space: its first seed runs, everything else is
    # known before it runs (the objective's name and parameters: its config_id)
    assert CALLS == [(0, 0)]
    assert [t.user_attrs.get("reused_seeds") for t in second.trials] == [[1], [0, 1], [0, 1]]
    parent = second.user_attrs["mlflow_parent_run_id"]
    reused = [r for r in runs(tmp_path) if f"seedhp.reused_by.{parent}" in r.data.tags]
    assert len(reused) == 5 and {r.data.tags["seedhp.study"] for r in reused} == {"a"}
    assert [r.data.tags["seedhp.study"] for r in seed_runs(tmp_path, "b")] == ["b"]


def test_a_failing_seed_fails_its_trial_and_the_study_goes_on(tmp_path: Path) -> None:
    def objective(trial: optuna.Trial, seed: int) -> float:
        value = quadratic(trial, seed)
        if trial.number == 1 and seed == 1:
            raise RuntimeError("seed 1 of trial 1 breaks")
        return value

    study = seedhp.optimize(
        objective, n_trials=3, strategy="averaged", seeds_per_trial=3, **where(tmp_path)
    )
    states = [t.state for t in study.trials]
    assert states == [
        TrialState.COMPLETE,
        TrialState.FAIL,
        TrialState.COMPLETE,
        TrialState.COMPLETE,
    ]
    failed = study.trials[1]
    assert failed.user_attrs["errors"] == {"1": "RuntimeError: seed 1 of trial 1 breaks"}
    assert list(failed.user_attrs["seed_scores"]) == ["0"]  # kept: a re-run reuses it
    r = MlflowClient(where(tmp_path)["tracking_uri"]).get_run(
        failed.user_attrs["mlflow_run_ids"]["1"]
    )
    assert r.info.status == "FAILED" and r.data.tags["seedhp.status"] == "failed"
    assert r.data.tags["seedhp.error"] == "RuntimeError: seed 1 of trial 1 breaks"


def test_trials_that_keep_failing_stop_the_study(tmp_path: Path) -> None:
    def objective(trial: optuna.Trial, seed: int) -> float:
        trial.suggest_float("x", 0.0, 1.0)
        raise ValueError("always")

    with pytest.raises(RuntimeError, match=r"study s stopped: 3 of the 3 trials this process ran"):
        seedhp.optimize(objective, n_trials=10, strategy="fixed", **where(tmp_path))
    study = optuna.load_study(study_name="s", storage=where(tmp_path)["storage"])
    assert [t.state for t in study.trials] == [TrialState.FAIL] * 3
    ended = seedhp.optimize(
        objective, n_trials=2, strategy="fixed", max_failure_rate=1, **where(tmp_path, "t")
    )  # failures tolerated: they count towards n_trials, so the study still ends
    assert [t.state for t in ended.trials] == [TrialState.FAIL] * 2


def test_a_trial_left_running_by_a_dead_process_is_failed_and_run_again(tmp_path: Path) -> None:
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    _enqueued(tmp_path, "maximize")
    study = optuna.load_study(study_name="s", storage=where(tmp_path)["storage"])
    lost = study.ask({"x": optuna.distributions.FloatDistribution(-1.0, 1.0)})
    lost.set_user_attr("seedhp.owner", f"{socket.gethostname()}:{dead.pid}:1")
    assert this_process() != lost.user_attrs["seedhp.owner"]
    study = seedhp.optimize(quadratic, n_trials=2, strategy="fixed", **where(tmp_path))
    assert study.trials[0].state == TrialState.FAIL
    assert study.trials[1].params == {"x": lost.params["x"]}  # its configuration, again
    assert study.trials[1].user_attrs["seedhp.retry_of"] == 0


# ----------------------------------------------------------------------------------------------
# Bad input: one line, before any trial


def no_seed(trial: optuna.Trial) -> float:
    return 0.0


@pytest.mark.parametrize(
    ("objective", "args", "line"),
    [
        (
            no_seed,
            {},
            "objective=no_seed(trial): strategy='tuned' calls "
            "objective(trial, seed=...): give it a `seed` parameter (def objective(trial, seed): "
            "...), or use strategy='none'",
        ),
        (
            quadratic,
            {"strategy": "averaged", "seeds": [1, 2], "seeds_per_trial": 3},
            "seeds_per_trial=3: an integer from 1 to the 2 seeds of `seeds`",
        ),
        (quadratic, {"strategy": "best"}, "strategy=best: allowed: tuned, averaged, fixed, none"),
        (quadratic, {"seeds": [0, -1]}, "seeds=-1: a seed must be an integer >= 0"),
        (quadratic, {"seeds": [0, 1.5]}, "seeds=1.5: a seed must be an integer >= 0"),
        (quadratic, {"seeds": []}, "seeds=[]: the seed pool is empty"),
        (quadratic, {"seeds": [3, 3]}, "seeds=[3, 3]: the seed pool lists seed 3 twice"),
        (quadratic, {"n_trials": 0}, "n_trials=0: an integer >= 1"),
        (quadratic, {"direction": "max"}, "direction=max: allowed: maximize, minimize"),
        (
            quadratic,
            {"aggregate": "mode"},
            "aggregate=mode: allowed: mean, median, iqm, min",
        ),
        (
            quadratic,
            {"pruner": optuna.pruners.WilcoxonPruner()},
            "pruner=WilcoxonPruner: it compares a trial's per-seed values with the best "
            "trial's: it needs strategy='averaged'",
        ),
        (
            quadratic,
            {"sampler": "tpe"},
            "sampler=str: an Optuna sampler, e.g. optuna.samplers.TPESampler()",
        ),
        (quadratic, {"sampler_seed": -2}, "sampler_seed=-2: a seed must be an integer >= 0"),
    ],
)
def test_bad_input_is_one_line_before_any_trial(
    tmp_path: Path, objective: Callable[..., float], args: dict[str, Any], line: str
) -> None:
    with pytest.raises(ConfigError) as err:
        seedhp.optimize(objective, **{"n_trials": 2, **where(tmp_path), **args})
    assert str(err.value) == line
    assert not (tmp_path / "optuna.db").exists() and not (tmp_path / "mlflow.db").exists()


def test_a_dict_return_without_objective_key_stops_at_the_first_return(tmp_path: Path) -> None:
    def objective(trial: optuna.Trial, seed: int) -> dict[str, float]:
        return {"val_acc": 0.9, "val_loss": 0.1}

    with pytest.raises(ConfigError) as err:
        seedhp.optimize(objective, n_trials=3, **where(tmp_path))
    assert str(err.value) == (
        "objective_key=None: the objective returned a dict (val_acc, val_loss): name the value "
        "to optimise, e.g. objective_key='val_acc'"
    )
    study = optuna.load_study(study_name="s", storage=where(tmp_path)["storage"])
    assert [t.state for t in study.trials] == [TrialState.FAIL]  # the one trial, not told
    assert "seedhp.retry_of" not in str([t.user_attrs for t in study.trials])
    with pytest.raises(ConfigError, match="not among the objective's returned values: val_acc"):
        seedhp.optimize(
            objective, n_trials=3, objective_key="acc", **where(tmp_path, "t")
        )  # fmt: skip


def test_a_study_resumed_with_another_strategy_or_other_seeds_is_one_line(tmp_path: Path) -> None:
    seedhp.optimize(quadratic, n_trials=1, strategy="fixed", seeds=[3], **where(tmp_path))
    with pytest.raises(ConfigError) as err:
        seedhp.optimize(quadratic, n_trials=2, strategy="tuned", **where(tmp_path))
    assert str(err.value) == (
        "strategy=tuned: study 's' in this storage was run with strategy='fixed': give another "
        "study_name"
    )
    with pytest.raises(
        ConfigError, match=r"^seeds=\[4\]: study 's' in this storage was run on other seeds"
    ):
        seedhp.optimize(quadratic, n_trials=2, strategy="fixed", seeds=[4], **where(tmp_path))
    study = seedhp.optimize(  # NumPy's integers are seeds too
        quadratic, n_trials=2, strategy="fixed", seeds=np.array([3, 5]), **where(tmp_path)
    )
    assert [t.user_attrs["seed_scores"].keys() for t in study.trials] == [{"3": 0}.keys()] * 2


def test_importing_seedhp_and_optimize_imports_neither_torch_hydra_nor_matplotlib() -> None:
    code = (
        "import sys, seedhp; seedhp.optimize; "
        "heavy = [m for m in ('torch', 'hydra', 'matplotlib', 'mlflow') if m in sys.modules]; "
        "assert not heavy, heavy"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


# ----------------------------------------------------------------------------------------------
# The report


def test_report_builds_the_seed_report_of_a_study_from_python(tmp_path: Path) -> None:
    study = seedhp.optimize(
        quadratic, n_trials=3, strategy="averaged", seeds_per_trial=3, **where(tmp_path)
    )
    page = seedhp.report(study, out_dir=tmp_path / "r1")
    assert page == tmp_path / "r1" / "report.html" and page.is_file()
    numbers = json.loads((tmp_path / "r1" / "report.json").read_text())
    assert numbers["kind"] == "study" and numbers["objective"] == "value"
    assert len(numbers["configurations"]) == 3
    assert all(c["objective"]["n"] == 3 for c in numbers["configurations"])
    w = where(tmp_path)
    by_name = seedhp.report("s", storage=w["storage"], out_dir=tmp_path / "r2")
    by_run = seedhp.report(
        study.user_attrs["mlflow_parent_run_id"],
        tracking_uri=w["tracking_uri"],
        out_dir=tmp_path / "r3",
        log_artifacts=False,
    )
    assert by_name.is_file() and by_run.is_file()
    from seedhp.report import build_report  # the package is still importable as it was

    assert callable(build_report)
    with pytest.raises(ConfigError, match="study_or_run_id=nope: no such study in"):
        seedhp.report("nope", storage=w["storage"])


# ----------------------------------------------------------------------------------------------
# The example, and the Hydra path's study


@pytest.mark.slow
def test_the_plain_optuna_example_runs_and_reports(tmp_path: Path) -> None:
    example = ROOT / "examples" / "plain_optuna.py"
    assert len(example.read_text().splitlines()) < 40
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("MLFLOW_TRACKING_URI", None)
    done = subprocess.run(
        [sys.executable, str(example)], cwd=tmp_path, capture_output=True, text=True, env=env
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "Report: " in done.stdout
    study = optuna.load_study(
        study_name="plain-optuna", storage=f"sqlite:///{tmp_path}/outputs/optuna.db"
    )
    assert len(study.get_trials(states=(TrialState.COMPLETE, TrialState.PRUNED))) == 6
    cli = subprocess.run(
        [sys.executable, "-m", "seedhp.report", "--study", "plain-optuna"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env=env,
    )  # `seedhp report` reads the study's seed-runs as any other's
    assert cli.returncode == 0, cli.stderr[-3000:]


def _score() -> Callable[[float, int], float]:
    spec = importlib.util.spec_from_file_location("lr_seed", APPS / "lr_seed.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.score  # type: ignore[no-any-return]


@pytest.mark.slow
@pytest.mark.parametrize("sampler", ["random", "tpe"])
@pytest.mark.parametrize("strategy", ["tuned", "averaged"])
def test_the_same_study_through_hydra_and_through_optimize_gives_the_same_trials(
    tmp_path: Path, strategy: str, sampler: str
) -> None:
    """The same space, strategy, sampler seed and seeds: the same trials (parameters in the
    same order: the seed first), values and winner."""
    n_trials, seeds = 6, ([5, 2, 9] if strategy == "averaged" else list(range(20)))
    searched = ["seed=range(0,20)"] if strategy == "tuned" else []  # listed first: seedhp's order
    hydra = subprocess.run(
        [
            sys.executable,
            "lr_seed.py",
            "-m",
            "hydra/sweeper=seedhp_optuna",
            f"hydra/sweeper/sampler={sampler}",
            "hydra.sweeper.sampler.seed=7",
            *(["hydra.sweeper.sampler.n_startup_trials=3"] if sampler == "tpe" else []),
            f"hydra.sweeper.seed_strategy={strategy}",
            "hydra.sweeper.seed_pool=[5,2,9]",
            "hydra.sweeper.seeds_per_trial=2",
            f"hydra.sweeper.n_trials={n_trials}",
            "hydra.sweeper.direction=maximize",
            f"hydra.sweeper.storage=sqlite:///{tmp_path}/hydra.db",
            "hydra.sweeper.study_name=h",
            f"hydra.sweeper.tracking_uri=sqlite:///{tmp_path}/hydra-mlflow.db",
            f"hydra.sweep.dir={tmp_path / 'sweep'}",
            *searched,
            "lr=tag(log, interval(0.0001, 1.0))",
        ],
        cwd=APPS,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert hydra.returncode == 0, hydra.stderr[-3000:]
    via_hydra = optuna.load_study(study_name="h", storage=f"sqlite:///{tmp_path}/hydra.db")
    score = _score()

    def objective(trial: optuna.Trial, seed: int) -> float:
        return score(trial.suggest_float("lr", 0.0001, 1.0, log=True), seed)

    built = {"random": optuna.samplers.RandomSampler(), "tpe": optuna.samplers.TPESampler(
        n_startup_trials=3)}[sampler]  # fmt: skip
    mine = seedhp.optimize(
        objective,
        n_trials=n_trials,
        strategy=strategy,
        seeds=seeds if strategy == "tuned" else [5, 2, 9],
        seeds_per_trial=2,
        sampler=built,
        sampler_seed=7,
        **where(tmp_path, "p"),
    )

    def trials(study: optuna.Study) -> list[tuple[list[tuple[str, Any]], float | None, Any]]:
        return [
            (list(t.params.items()), t.value, t.user_attrs["seed_scores"]) for t in study.trials
        ]

    assert trials(mine) == trials(via_hydra)
    assert len(mine.trials) == n_trials
    results = yaml.safe_load((tmp_path / "sweep" / "optimization_results.yaml").read_text())
    key = "seed" if strategy == "tuned" else None
    [winner, *_] = best_trials(mine.get_trials(states=(TrialState.COMPLETE,)), True, key)
    assert winner.number == results["best_trial"] and winner.value == results["best_value"]
    assert not math.isnan(winner.value or math.nan)


@pytest.mark.slow
def test_the_overhead_benchmark_writes_its_numbers(tmp_path: Path) -> None:
    out = tmp_path / "overhead.json"
    done = subprocess.run(
        [
            sys.executable,
            str(ROOT / "benchmarks" / "optimize_overhead.py"),
            "--trials",
            "3",
            "--repeats",
            "1",
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert done.returncode == 0, done.stderr[-3000:]
    got = json.loads(out.read_text())
    for kind in ("plain", "seedhp", "seedhp_10_seeds"):
        assert len(got["runs"][kind]) == 1 and got[kind]["steady_ms_per_trial"] > 0
    assert got["plain"]["mlflow_transactions_per_trial"] == 0
    assert got["seedhp"]["mlflow_transactions_per_trial"] > 0  # a seed-run per trial
    assert got["added_ms_per_trial"] == pytest.approx(
        got["seedhp"]["steady_ms_per_trial"] - got["plain"]["steady_ms_per_trial"], abs=0.02
    )


def test_an_edited_objective_does_not_reuse_the_old_ones_runs() -> None:
    # the same name and parameters, another body: another configuration (the source is hashed)
    import seedhp.optuna_api as api

    def f(trial: optuna.Trial, seed: int) -> float:
        return trial.suggest_float("x", 0, 1)

    first = api._objective_code(f)

    def f(trial: optuna.Trial, seed: int) -> float:  # type: ignore[no-redef]
        return trial.suggest_float("x", 0, 1) + 1

    assert first and api._objective_code(f) != first
    assert api._objective_code(lambda trial, seed: 0.0)  # a lambda has one too
