from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, open_dict

ROOT = Path(__file__).resolve().parents[1]
CONF = ROOT / "conf"


def compose_config(overrides: Sequence[str], outputs: Path) -> DictConfig:
    """The job config `python -m seedhp <overrides>` would run, outputs under `outputs`, with
    Hydra's runtime view of it set as a single run would have it."""
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose(
            "config", overrides=[f"paths.outputs={outputs}", *overrides], return_hydra_config=True
        )
    with open_dict(cfg):
        cfg.hydra.runtime.output_dir = str(outputs / "run")
        cfg.hydra.job.num = 0
    HydraConfig.instance().set_config(cfg)
    return cfg


def cli(
    args: Sequence[str], cwd: Path, env: dict[str, str] | None = None, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    """`python -m seedhp ARGS` in `cwd`, as a user runs it (tests/ importable for test models)."""
    return subprocess.run(
        [sys.executable, "-m", "seedhp", *args],
        cwd=cwd,
        text=True,
        capture_output=True,
        timeout=timeout,
        env=cli_env(env),
    )


def cli_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HYDRA_FULL_ERROR": "0", **(extra or {})}
    env.pop("MLFLOW_TRACKING_URI", None)
    return env


def mlflow_client(outputs: Path):  # type: ignore[no-untyped-def]
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri=f"sqlite:///{outputs}/mlflow.db")


def all_runs(outputs: Path, experiment: str = "seedhp") -> list:  # type: ignore[type-arg]
    if not (outputs / "mlflow.db").exists():
        return []  # no store: nothing recorded (and no store created just to look)
    client = mlflow_client(outputs)
    exp = client.get_experiment_by_name(experiment)
    return [] if exp is None else list(client.search_runs([exp.experiment_id], max_results=5000))


@pytest.fixture(autouse=True, scope="session")
def cache_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The tests' own cache (seedhp.job.new_store's empty MLflow store), not the user's; the
    commands the tests start inherit it."""
    cache = tmp_path_factory.mktemp("cache")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("XDG_CACHE_HOME", str(cache))
        yield cache


@pytest.fixture
def outputs(tmp_path: Path) -> Iterator[Path]:
    out = tmp_path / "outputs"
    out.mkdir()
    yield out
