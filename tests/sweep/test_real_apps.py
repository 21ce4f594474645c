"""seedhp's sweepers on an app shaped like lightning-hydra-template, without its code.

The app has what makes real apps differ from seedhp's own: `${hydra:runtime.output_dir}` and
`${hydra:runtime.cwd}` interpolated into its paths, its trainer and a checkpoint callback;
`seed: null` and `if cfg.get("seed")`, which skips seed 0; `optimized_metric` naming the float
it returns from a metric dict; Lightning's `val/acc` and `test/acc` names; `${now:...}` run
directories; and, in these tests, `hydra.job.chdir=True`. Its score is drawn from torch's
global generator, so a seed that does not take effect shows.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from mlflow import MlflowClient

from tests.conftest import cli_env

CONFIG = """
seed: null
optimized_metric: val/acc
lr: 0.1
epochs: 3
constant_seed: false  # the app seeds torch with 42 itself: its seed never matters
fail: false  # every job raises
paths:
  root_dir: ${oc.env:PROJECT_ROOT,.}
  output_dir: ${hydra:runtime.output_dir}
  log_dir: ${paths.root_dir}/logs
  work_dir: ${hydra:runtime.cwd}
trainer:
  default_root_dir: ${paths.output_dir}
  max_epochs: ${epochs}
callbacks:
  model_checkpoint:
    dirpath: ${paths.output_dir}/checkpoints
    monitor: ${optimized_metric}
hydra:
  run:
    dir: ${paths.log_dir}/runs/${now:%Y-%m-%d}_${now:%H-%M-%S}
  sweep:
    dir: ${paths.log_dir}/multiruns/${now:%Y-%m-%d}_${now:%H-%M-%S-%f}
    subdir: ${hydra.job.num}
"""

APP = """
import random

import hydra, mlflow, torch
from omegaconf import DictConfig

import seedhp


@hydra.main(version_base="1.3", config_path="configs", config_name="train")
def main(cfg: DictConfig) -> float:
    if cfg.fail:
        raise RuntimeError("the data is not there")
    if cfg.get("seed"):  # the template's line: seed 0 is never seeded by the app
        random.seed(cfg.seed)
        torch.manual_seed(cfg.seed)
    if cfg.constant_seed:
        torch.manual_seed(42)
    acc = 0.8 + 0.1 * cfg.lr
    for epoch in range(1, cfg.trainer.max_epochs + 1):
        acc += 0.01 * float(torch.rand(()))
        mlflow.log_metric("val/acc", acc, step=epoch)
        seedhp.report_epoch(epoch, acc)
    test = acc - 0.01 * float(torch.rand(()))
    mlflow.log_metric("test/acc", test)
    metrics = {"val/acc": acc, "test/acc": test, "val/loss": 1.0 - acc}
    return metrics[cfg.optimized_metric]


if __name__ == "__main__":
    main()
"""


@pytest.fixture
def app(tmp_path: Path) -> Path:
    (tmp_path / "configs").mkdir()
    (tmp_path / "configs" / "train.yaml").write_text(CONFIG)
    (tmp_path / "train.py").write_text(textwrap.dedent(APP))
    return tmp_path


def _run(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "train.py", "-m", "hydra.job.chdir=True", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
        env=cli_env(),
    )


def _seed_runs(cwd: Path) -> list:  # type: ignore[type-arg]
    client = MlflowClient(f"sqlite:///{cwd}/outputs/mlflow.db")
    exp = client.get_experiment_by_name("seedhp")
    return [r for r in client.search_runs([exp.experiment_id]) if "config_id" in r.data.tags]


def _summary(cwd: Path) -> dict:  # type: ignore[type-arg]
    [path] = sorted(cwd.glob("logs/multiruns/*/summary.json"))[-1:]
    return json.loads(path.read_text())


# about 20 s; `make test-all` runs it (the bad-input table covers this app in `make test`)
@pytest.mark.slow
def test_a_grid_groups_resumes_and_seeds_an_lht_shaped_app(app: Path) -> None:
    done = _run(app, "hydra/sweeper=seedhp", "seed=range(0,3)")
    assert done.returncode == 0, done.stderr[-3000:]
    # one configuration of 3 seeds, in the store where the command started (chdir=True)
    [config] = _summary(app)["configurations"]
    assert config["n"] == 3 and config["std"] > 0
    # the objective has the app's name, and test/acc fills the test column
    assert _summary(app)["objective"] == "val/acc"
    runs = _seed_runs(app)
    assert config["test_mean"] == pytest.approx(sum(r.data.metrics["test/acc"] for r in runs) / 3)
    assert {r.data.tags["config_id"] for r in runs} == {config["config_id"]}
    assert not list(app.glob("logs/multiruns/*/*/outputs/mlflow.db"))  # no store per job
    # the runtime paths are kept as written in the params, not one job's directory
    assert runs[0].data.params["callbacks.model_checkpoint.dirpath"] == (
        "${paths.output_dir}/checkpoints"
    )

    # the pre-flight computes the id the jobs recorded: nothing is trained again
    again = _run(app, "hydra/sweeper=seedhp", "seed=range(0,4)")
    assert again.returncode == 0, again.stderr[-3000:]
    assert "3 already finished in the store are reused" in again.stdout + again.stderr
    assert len(_seed_runs(app)) == 4
    assert "ignore its seed" not in again.stdout + again.stderr


@pytest.mark.slow
def test_seed_0_which_the_app_skips_is_seeded_by_seedhp(app: Path) -> None:
    for _ in range(2):
        done = _run(app, "hydra/sweeper=seedhp", "seed=0", "hydra.sweeper.reuse=false")
        assert done.returncode == 0, done.stderr[-3000:]
    zeros = [r.data.metrics["val/acc"] for r in _seed_runs(app)]
    assert len(zeros) == 2 and zeros[0] == zeros[1]


@pytest.mark.slow
def test_ignore_keys_leave_a_key_out_of_the_configuration(app: Path) -> None:
    done = _run(app, "hydra/sweeper=seedhp", "seed=0,1", "epochs=2,3",
                "hydra.sweeper.ignore_keys=[epochs,trainer.max_epochs]")  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    assert len({r.data.tags["config_id"] for r in _seed_runs(app)}) == 1


@pytest.mark.slow
def test_an_app_that_ignores_its_seed_is_told_so_in_one_line(app: Path) -> None:
    done = _run(app, "hydra/sweeper=seedhp", "seed=1,2,3", "constant_seed=true")
    assert done.returncode == 0, done.stderr[-3000:]
    lines = [line for line in done.stdout.splitlines() if "seems to ignore its seed" in line]
    assert len(lines) == 1 and lines[0].startswith("warning: configuration ")
    assert "its 3 seed-runs on different seeds all gave val/acc" in lines[0]


@pytest.mark.slow
def test_a_grid_whose_every_seed_run_failed_exits_non_zero(app: Path) -> None:
    done = _run(app, "hydra/sweeper=seedhp", "seed=0,1", "fail=true")
    assert done.returncode == 1
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("seedhp: every seed-run of this sweep failed (2), the first with ")
    assert "RuntimeError: the data is not there" in last


@pytest.mark.slow
def test_tuned_studies_prune_per_epoch_and_resume(app: Path) -> None:
    study = ["hydra/sweeper=seedhp_optuna", "hydra/sweeper/pruner=median",
             "hydra.sweeper.storage=sqlite:///outputs/optuna.db",  # persistent: it resumes
             "hydra.sweeper.pruner.n_startup_trials=1", "hydra.sweeper.sampler.seed=1",
             "seed=range(0,100)", "lr=interval(0.001,0.3)"]  # fmt: skip
    done = _run(app, *study, "hydra.sweeper.n_trials=6")
    out = done.stdout + done.stderr
    assert done.returncode == 0, out[-3000:]
    assert "(tuned, maximize val/acc," in out  # the direction, from the name, said first
    assert "pruned after epoch" in out and "IndexError" not in out
    resumed = _run(app, *study, "hydra.sweeper.n_trials=9")
    out = resumed.stdout + resumed.stderr
    assert resumed.returncode == 0, out[-3000:]
    assert ": 6 of 9 trials finished" in out and "9 of 9 trials finished" in out
    pruned = [r for r in _seed_runs(app) if r.data.tags.get("seedhp.status") == "pruned"]
    assert pruned and all(r.info.status == "FINISHED" for r in pruned)


@pytest.mark.slow
def test_an_averaged_study_minimises_a_loss_named_by_optimized_metric(app: Path) -> None:
    done = _run(app, "hydra/sweeper=seedhp_optuna", "hydra.sweeper.seed_strategy=averaged",
                "hydra.sweeper.seeds_per_trial=3", "hydra/sweeper/pruner=wilcoxon",
                "hydra.sweeper.n_trials=3", "lr=interval(0.001,0.3)",
                "optimized_metric=val/loss")  # fmt: skip
    out = done.stdout + done.stderr
    assert done.returncode == 0, out[-3000:]
    assert "(averaged, minimize val/loss," in out
    runs = _seed_runs(app)
    by_config: dict[str, set[str]] = {}
    for r in runs:
        by_config.setdefault(r.data.tags["config_id"], set()).add(r.data.tags["seed"])
    assert len(by_config) == 3 and all(seeds == {"0", "1", "2"} for seeds in by_config.values())


# Another app's bad input: one line on stderr, exit 2, before anything trains.
BAD = {
    "ignore_keys naming nothing": (
        ["hydra.sweeper.ignore_keys=[trainer.nope]"],
        "hydra.sweeper.ignore_keys=trainer.nope: names no key of this app's config",
    ),
    "ignore_keys not a key": (
        ["hydra.sweeper.ignore_keys=['a b']"],
        "hydra.sweeper.ignore_keys=a b: a list of dotted config keys",
    ),
    "a seed key naming nothing": (
        ["hydra.sweeper.seed_key=trainer.seed"],
        "hydra.sweeper.seed_key=trainer.seed: names no key of this app's config",
    ),
    "reseed_of not a run id": (
        ["hydra.sweeper.reseed_of='x/y'"],
        "hydra.sweeper.reseed_of=x/y: an MLflow run id",
    ),
}


def test_another_apps_bad_input_is_one_line(app: Path) -> None:
    procs = {
        name: subprocess.Popen(
            [sys.executable, "train.py", "-m", "hydra/sweeper=seedhp", "seed=0,1", *args],
            cwd=app,
            text=True,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=cli_env(),
        )
        for name, (args, _) in BAD.items()
    }
    for name, p in procs.items():
        _, err = p.communicate(timeout=300)
        lines = err.strip().splitlines()
        assert p.returncode == 2, (name, err)
        assert len(lines) == 1 and lines[0].startswith(f"seedhp: error: {BAD[name][1]}"), err
    assert not (app / "outputs" / "mlflow.db").exists() or _seed_runs(app) == []
