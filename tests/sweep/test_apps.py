"""seedhp's sweepers driving any Hydra app: not seedhp's own task, its own loop and config."""

from __future__ import annotations

import json
import pickle
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from mlflow import MlflowClient
from omegaconf import OmegaConf

from seedhp.errors import ConfigError
from seedhp.job.record import run_name
from seedhp.sweep.tracked import (
    AppSettings,
    RunContext,
    TrackedTask,
    app_config_id,
    app_seed,
    returned_metrics,
)
from tests.conftest import ROOT

EXAMPLE = ROOT / "examples" / "plain_pytorch" / "train.py"

# A Hydra app with its seed under trainer.seed; seed 3 raises, the score is a pure function
# of (seed, lr), and every epoch is logged with the app's own mlflow calls.
APP = """
import hydra, mlflow
from omegaconf import DictConfig

@hydra.main(version_base="1.3", config_path=".", config_name="config")
def main(cfg: DictConfig) -> float:
    seed = cfg.trainer.seed
    if seed == 3:
        raise RuntimeError("seed 3 breaks")
    for epoch in range(1, 4):
        mlflow.log_metric("loss", 1.0 / (epoch + seed), step=epoch)
    return round(0.5 + 0.01 * seed + cfg.lr, 6)

if __name__ == "__main__":
    main()
"""


def _app(tmp_path: Path) -> Path:
    (tmp_path / "config.yaml").write_text("trainer:\n  seed: 0\nlr: 0.1\n")
    (tmp_path / "app.py").write_text(textwrap.dedent(APP))
    return tmp_path / "app.py"


def _run(cwd: Path, *args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *map(str, args)], cwd=cwd, capture_output=True, text=True, timeout=300
    )


def _runs(cwd: Path) -> list:  # type: ignore[type-arg]
    client = MlflowClient(f"sqlite:///{cwd}/outputs/mlflow.db")
    exp = client.get_experiment_by_name("seedhp")
    return client.search_runs([exp.experiment_id])


def test_returned_values_become_metrics_and_the_objective_is_read_by_name() -> None:
    assert returned_metrics(0.5, None) == {"objective": 0.5}
    assert returned_metrics(0.5, "acc") == {"acc": 0.5}
    assert returned_metrics({"acc": 0.9, "loss": 1, "note": "x"}, "acc") == {
        "acc": 0.9,
        "loss": 1.0,
    }
    with pytest.raises(
        ConfigError, match=r"hydra\.sweeper\.objective=null: the task returned a dict"
    ):
        returned_metrics({"acc": 0.9, "loss": 0.1}, None)
    with pytest.raises(ConfigError, match="not among the task's returned values: acc"):
        returned_metrics({"acc": 0.9}, "val_acc")
    with pytest.raises(ConfigError, match="a float, or a dict of floats"):
        returned_metrics("0.9", None)


def test_config_id_ignores_the_seed_key_hydra_and_the_keys_the_user_names() -> None:
    a = {"trainer": {"seed": 1, "lr": 0.1}, "hydra": {"x": 1}}
    b = {"trainer": {"seed": 2, "lr": 0.1}}
    c = {"trainer": {"seed": 1, "lr": 0.2}}
    key = AppSettings(seed_key="trainer.seed")
    assert app_config_id(a, key) == app_config_id(b, key)
    assert app_config_id(a, key) != app_config_id(c, key)
    assert app_config_id(a, AppSettings()) != app_config_id(b, AppSettings())  # seeds differ
    ignored = AppSettings(seed_key="trainer.seed", ignore_keys=("trainer.lr",))
    assert app_config_id(a, ignored) == app_config_id(c, ignored)


def test_the_wrapper_travels_to_other_processes_without_its_in_process_hook() -> None:
    task = TrackedTask(print, AppSettings(), RunContext("p", "trial", "s", 4, "tuned"))
    task.on_end, task.stopped = (lambda seed, value: True), True
    copy = pickle.loads(pickle.dumps(task))
    assert copy.context.trial == 4 and copy.on_end is None and copy.stopped is False
    assert run_name(62, "cnn/digits", 12) == "t12 s62 cnn/digits"


def test_grid_sweep_of_another_app_records_each_job_as_a_seed_run(tmp_path: Path) -> None:
    app = _app(tmp_path)
    done = _run(
        tmp_path,
        app,
        "-m",
        "hydra/sweeper=seedhp",
        "hydra.sweeper.seed_key=trainer.seed",
        "trainer.seed=range(0,4)",
        "lr=0.1,0.2",
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "2 seed-run(s) failed" in done.stdout  # seed 3 of each lr; the others went on
    runs = _runs(tmp_path)
    parents = [r for r in runs if r.data.tags.get("seedhp.kind") == "sweep"]
    seed_runs = [r for r in runs if "config_id" in r.data.tags]
    assert len(parents) == 1 and len(seed_runs) == 8
    for r in seed_runs:
        seed, tags = int(r.data.tags["seed"]), r.data.tags
        assert tags["mlflow.parentRunId"] == parents[0].info.run_id
        assert tags["seedhp.seed_key"] == "trainer.seed"
        assert r.data.params["lr"] in ("0.1", "0.2") and r.data.params["trainer.seed"] == str(seed)
        assert r.info.run_name.startswith(f"s{seed} app")
        if seed == 3:
            assert r.info.status == "FAILED" and "seed 3 breaks" in tags["seedhp.error"]
            continue
        lr = float(r.data.params["lr"])
        assert r.info.status == "FINISHED"
        assert r.data.metrics["objective"] == pytest.approx(0.5 + 0.01 * seed + lr)
        # the app's own mlflow.log_metric calls landed in its seed-run, step by step
        history = MlflowClient(f"sqlite:///{tmp_path}/outputs/mlflow.db").get_metric_history(
            r.info.run_id, "loss"
        )
        assert [m.step for m in history] == [1, 2, 3]
    ids = {(r.data.params["lr"], r.data.tags["config_id"]) for r in seed_runs}
    assert len(ids) == 2 and len({cid for _, cid in ids}) == 2  # one config_id per lr
    # no tracking.* keys are added to another app's jobs: its config is its own
    saved = OmegaConf.load(next(tmp_path.glob("multirun/*/*/0/.hydra/config.yaml")))
    assert set(saved) == {"trainer", "lr"}
    summary = json.loads(next(tmp_path.glob("multirun/*/*/summary.json")).read_text())
    assert [(c["n"], c["n_failed"]) for c in summary["configurations"]] == [(3, 1), (3, 1)]

    again = _run(
        tmp_path,
        app,
        "-m",
        "hydra/sweeper=seedhp",
        "hydra.sweeper.seed_key=trainer.seed",
        "trainer.seed=range(0,3)",
        "lr=0.1,0.2",
    )
    assert again.returncode == 0
    assert "6 already finished in the store are reused" in again.stdout + again.stderr


def test_another_app_asking_for_seedhps_launcher_fails_in_one_line(tmp_path: Path) -> None:
    app = _app(tmp_path)
    done = _run(tmp_path, app, "-m", "hydra/sweeper=seedhp", "hydra.sweeper.seed_key=trainer.seed",
                "hydra/launcher=packed", "trainer.seed=0,1")  # fmt: skip
    assert done.returncode == 2
    [line] = done.stderr.strip().splitlines()
    assert line.startswith("seedhp: error: hydra/launcher=packed: seedhp's launchers")
    assert not (tmp_path / "outputs" / "mlflow.db").exists()


def test_a_seed_key_that_names_nothing_is_one_line() -> None:
    cfg = OmegaConf.create({"trainer": {"seed": 0}, "lr": 0.1})
    assert app_seed(cfg, "trainer.seed") == 0
    with pytest.raises(ConfigError, match=r"hydra\.sweeper\.seed_key=seed: names no key"):
        app_seed(cfg, "seed")
    with pytest.raises(ConfigError, match=r"^trainer\.seed=-1"):
        app_seed(OmegaConf.create({"trainer": {"seed": -1}}), "trainer.seed")


def test_installing_seedhp_leaves_optuna_to_hydra_optuna_sweeper(tmp_path: Path) -> None:
    """Another app asking for hydra/sweeper=optuna without hydra-optuna-sweeper installed
    gets Hydra's "not found"; seedhp's sweeper is seedhp_optuna."""
    app = _app(tmp_path)
    done = _run(tmp_path, app, "-m", "hydra/sweeper=optuna", "trainer.seed=0,1")
    assert done.returncode == 1
    assert "Could not find 'hydra/sweeper/optuna'" in done.stderr
    assert "seedhp_optuna" in done.stderr  # Hydra lists what is available


@pytest.mark.slow
def test_the_plain_pytorch_example_runs_tuned_and_averaged_studies_and_a_report(
    tmp_path: Path,
) -> None:
    """The README's commands for examples/plain_pytorch, end to end."""
    common = [
        "-m",
        "hydra/sweeper=seedhp_optuna",
        "hydra.sweeper.objective=val_acc",
        "hydra.sweeper.storage=sqlite:///outputs/optuna.db",
        "epochs=2",
        "hydra.sweeper.sampler.seed=0",
    ]
    tuned = _run(
        tmp_path,
        EXAMPLE,
        *common,
        "hydra.sweeper.n_trials=4",
        "hydra.sweeper.study_name=tuned",
        "seed=range(0,20)",
        "lr=tag(log, interval(0.001, 0.3))",
    )
    assert tuned.returncode == 0, tuned.stderr[-2000:]
    assert "Study tuned: 4 of 4 trials finished" in tuned.stdout
    averaged = _run(
        tmp_path,
        EXAMPLE,
        *common,
        "hydra.sweeper.n_trials=3",
        "hydra.sweeper.study_name=averaged",
        "hydra.sweeper.seed_strategy=averaged",
        "hydra.sweeper.seeds_per_trial=3",
        "lr=tag(log, interval(0.001, 0.3))",
    )
    assert averaged.returncode == 0, averaged.stderr[-2000:]
    assert "Study averaged: 3 of 3 trials finished" in averaged.stdout
    runs = _runs(tmp_path)
    trial_runs = [r for r in runs if r.data.tags.get("seedhp.role") == "trial"]
    assert sorted(r.data.tags["seedhp.strategy"] for r in trial_runs).count("averaged") == 9
    r = next(r for r in trial_runs if r.data.tags["seedhp.strategy"] == "tuned")
    assert (
        r.info.run_name
        == f"t{r.data.tags['seedhp.trial']} s{r.data.tags['seed']} "
        + (r.data.tags["seedhp.label"])
    )
    assert {"val_acc", "train_loss"} <= set(r.data.metrics)
    report = _run(tmp_path, "-m", "seedhp.report", "--study", "averaged")
    assert report.returncode == 0, report.stderr[-2000:]
    html = next((tmp_path / "outputs").rglob("report.html")).read_text()
    assert "val_acc" in html
    grid = _run(tmp_path, EXAMPLE, "-m", "hydra/sweeper=seedhp", "hydra.sweeper.objective=val_acc",
                "epochs=2", "seed=range(0,3)")  # fmt: skip
    assert grid.returncode == 0, grid.stderr[-2000:]
    assert "val_acc over seeds, per configuration" in grid.stdout
    latest = _run(tmp_path, "-m", "seedhp.report")  # the grid sweep: the latest
    assert latest.returncode == 0, latest.stderr[-2000:]


def test_the_default_store_is_where_the_command_started_wherever_the_job_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """hydra.job.chdir=True (or a launcher's worker elsewhere) moves the job, not the store."""
    import pickle

    from seedhp.sweep.app import app_settings

    monkeypatch.chdir(tmp_path)
    settings = app_settings({})
    (tmp_path / "job").mkdir()
    monkeypatch.chdir(tmp_path / "job")  # what Hydra does before each job with chdir=True
    in_the_job = pickle.loads(pickle.dumps(settings))  # as a worker process receives it
    assert (
        in_the_job.uri() == settings.uri() == f"sqlite:///{tmp_path.resolve()}/outputs/mlflow.db"
    )
