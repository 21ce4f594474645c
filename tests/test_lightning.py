"""seedhp.lightning: Lightning's metrics in the seed-run, its epochs pruned, beside its own
MLflow logger; and examples/lightning_app (shaped like lightning-hydra-template) end to end."""

from __future__ import annotations

import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

pytest.importorskip("lightning")

import lightning as L
import torch
from mlflow import MlflowClient

from seedhp.job.hooks import Pruned, SeedRunRef, epoch_reports, in_seed_run
from seedhp.lightning import SeedhpCallback
from tests.conftest import ROOT, cli_env

EXAMPLE = ROOT / "examples" / "lightning_app"


class Tiny(L.LightningModule):
    def __init__(self) -> None:
        super().__init__()
        self.net = torch.nn.Linear(4, 2)

    def _loss(self, batch: list[torch.Tensor]) -> torch.Tensor:
        return torch.nn.functional.cross_entropy(self.net(batch[0]), batch[1])

    def training_step(self, batch: list[torch.Tensor], idx: int) -> torch.Tensor:
        loss = self._loss(batch)
        self.log("train/loss", loss, on_step=False, on_epoch=True)
        return loss

    def validation_step(self, batch: list[torch.Tensor], idx: int) -> None:
        self.log("val/loss", self._loss(batch))
        self.log("val/acc", 1.0 / (1.0 + self.current_epoch))  # falls: a pruner stops it

    def test_step(self, batch: list[torch.Tensor], idx: int) -> None:
        self.log("test/acc", 0.5)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=0.1)


def _loader() -> torch.utils.data.DataLoader:
    g = torch.Generator().manual_seed(0)
    data = torch.utils.data.TensorDataset(torch.randn(32, 4, generator=g), torch.arange(32) % 2)
    return torch.utils.data.DataLoader(data, batch_size=8)


def _trainer(epochs: int) -> L.Trainer:
    return L.Trainer(max_epochs=epochs, callbacks=[SeedhpCallback()], logger=False,
                     enable_checkpointing=False, enable_progress_bar=False,
                     enable_model_summary=False, accelerator="cpu")  # fmt: skip


def _seed_run(tmp_path: Path) -> tuple[MlflowClient, SeedRunRef]:
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    client = MlflowClient(uri)
    run = client.create_run(client.create_experiment("x"))
    return client, SeedRunRef(uri, run.info.run_id, "val/acc", 0)


def test_every_epoch_metric_lands_in_the_seed_run_at_its_epoch(tmp_path: Path) -> None:
    client, ref = _seed_run(tmp_path)
    heard: list[tuple[int, float]] = []
    with in_seed_run(ref), epoch_reports(lambda e, v: heard.append((e, v)) is not None):
        trainer = _trainer(3)
        trainer.fit(Tiny(), _loader(), _loader())
        trainer.test(Tiny(), _loader())
    steps = {
        name: [(m.step, round(m.value, 6)) for m in client.get_metric_history(ref.run_id, name)]
        for name in ("val/acc", "train/loss", "test/acc")
    }
    assert steps["val/acc"] == [(1, 1.0), (2, 0.5), (3, round(1 / 3, 6))]
    assert [s for s, _ in steps["train/loss"]] == [1, 2, 3]  # each epoch once, at its epoch
    assert steps["test/acc"] == [(3, 0.5)]
    assert heard == [(1, 1.0), (2, 0.5), (3, pytest.approx(1 / 3))]  # the pruner heard val/acc


def test_a_pruned_trial_ends_fit_with_pruned(tmp_path: Path) -> None:
    client, ref = _seed_run(tmp_path)
    pruner = epoch_reports(lambda epoch, value: epoch == 2)
    with in_seed_run(ref), pruner, pytest.raises(Pruned, match="pruned after epoch 2"):
        _trainer(5).fit(Tiny(), _loader(), _loader())
    assert [m.step for m in client.get_metric_history(ref.run_id, "val/acc")] == [1, 2]


def test_outside_a_sweep_the_callback_does_nothing(tmp_path: Path) -> None:
    _trainer(1).fit(Tiny(), _loader(), _loader())  # no seed-run, no reporter: no error


def _example(tmp_path: Path) -> Path:
    app = tmp_path / "app"
    shutil.copytree(EXAMPLE, app, ignore=shutil.ignore_patterns("logs", "outputs"))
    return app


def _run(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "src/train.py", *args], cwd=cwd, capture_output=True,
                          text=True, timeout=600, env=cli_env())  # fmt: skip


@pytest.mark.slow
def test_the_lightning_example_sweeps_studies_and_reseeds(tmp_path: Path) -> None:
    """docs/lightning.md's commands on examples/lightning_app."""
    app = _example(tmp_path)
    done = _run(app, "-m", "hydra/sweeper=seedhp", "seed=range(0,3)", "callbacks=with_seedhp",
                "hydra.job.chdir=True", "logger=mlflow")  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    client = MlflowClient(f"sqlite:///{app}/outputs/mlflow.db")
    runs = [r for r in client.search_runs(["1"]) if "config_id" in r.data.tags]
    assert len(runs) == 3 and len({r.data.tags["config_id"] for r in runs}) == 1
    for r in runs:
        assert [m.step for m in client.get_metric_history(r.info.run_id, "val/acc")] == [
            1,
            2,
            3,
            4,
        ]
        assert "test/acc" in r.data.metrics and "train/loss" in r.data.metrics
    # Lightning's own MLFlowLogger recorded its runs in its own store, beside seedhp's
    own = MlflowClient(f"sqlite:///{app}/logs/mlflow.db")
    assert len(own.search_runs([own.get_experiment_by_name("train").experiment_id])) == 3
    assert "test mean" in done.stdout and "nan" not in done.stdout.split("test mean")[1][:200]

    study = _run(app, "-m", "hydra/sweeper=seedhp_optuna", "hydra/sweeper/pruner=median",
                 "hydra.sweeper.storage=sqlite:///outputs/optuna.db",
                 "hydra.sweeper.pruner.n_startup_trials=1", "hydra.sweeper.n_trials=4",
                 "hydra.sweeper.sampler.seed=0", "seed=range(0,100)",
                 "model.lr=interval(0.001,0.3)", "callbacks=with_seedhp")  # fmt: skip
    assert study.returncode == 0, study.stderr[-3000:]
    assert "(tuned, maximize val/acc," in study.stdout + study.stderr

    # seedhp reseed on another app's study: the command to run, then it is done
    seedhp = [str(Path(sys.executable).parent / "seedhp"), "reseed", "--seeds", "2"]
    said = subprocess.run(seedhp, cwd=app, capture_output=True, text=True, env=cli_env())
    assert said.returncode == 2
    [line] = said.stderr.strip().splitlines()
    assert "is another app's and seedhp runs no command read from the store" in line
    command = line.split("then ask again: cd ", 1)[1].split(" && ", 1)[1]
    rerun = subprocess.run(shlex.split(command), cwd=app, capture_output=True, text=True,
                           env=cli_env(), timeout=600)  # fmt: skip
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    again = subprocess.run(seedhp, cwd=app, capture_output=True, text=True, env=cli_env())
    assert again.returncode == 0, again.stderr[-3000:]
    assert "both winners already have 2 fresh seeds" in again.stdout


@pytest.mark.slow
def test_the_templates_hparams_search_config_runs_with_only_the_sweeper_renamed(
    tmp_path: Path,
) -> None:
    """configs/hparams_search/optuna.yaml is lightning-hydra-template's mnist_optuna.yaml form
    (hydra-optuna-sweeper's class in hydra.sweeper._target_, the sampler by _target_ with
    n_startup_trials, no seed searched): a plain Optuna study, the peer's results file."""
    app = _example(tmp_path)
    done = _run(app, "hparams_search=optuna", f"hydra.sweep.dir={tmp_path / 'search'}",
                "trainer.max_epochs=2")  # fmt: skip
    out = done.stdout + done.stderr
    assert done.returncode == 0, out[-3000:]
    assert "names hydra-optuna-sweeper's OptunaSweeper" in out
    assert "seed_strategy=none" in out and "maximize val/acc, given" in out
    res = yaml.safe_load((tmp_path / "search" / "optimization_results.yaml").read_text())
    assert res["finished_trials"] == 4
    assert set(res["best_params"]) == {"model.lr", "model.hidden"}
    assert 0 < res["best_value"] <= 1
