"""Every model option with every data option: composes, checks and trains one step."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from seedhp.errors import ConfigError
from seedhp.job.run import check, run
from seedhp.sweep.launch import job_info
from tests.conftest import all_runs, compose_config
from tests.datafiles import write_cifar10, write_mnist

MODELS = ["mlp", "cnn", "resnet9", "resnet18", "airbench"]
DATA = ["digits", "mnist", "fashion_mnist", "cifar10", "synthetic"]


@pytest.fixture(scope="module")
def data_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("data")
    write_mnist(root, 40, 10, "MNIST")
    write_mnist(root, 40, 10, "FashionMNIST")
    write_cifar10(root, per_batch=8, n_test=10)
    return root


def one_step(model: str, data: str, root: Path, outputs: Path) -> list[str]:
    """Overrides for one epoch of exactly one optimizer step on small inputs."""
    batch = {"digits": 1150, "synthetic": 180, "mnist": 36, "fashion_mnist": 36, "cifar10": 36}[
        data
    ]
    extra = {
        "synthetic": ["data.source.n_train=200", "data.source.n_test=20", "data.val_size=20"],
        "cifar10": ["data.source.verify=false", "data.val_size=4"],
        "mnist": ["data.source.verify=false", "data.val_size=4"],
        "fashion_mnist": ["data.source.verify=false", "data.val_size=4"],
    }.get(data, [])
    width = {
        "resnet9": ["model.width=8"],
        "cnn": ["model.widths=[8,16]"],
        "airbench": ["model.widths=[8,16,16]"],
    }.get(model, [])
    return [
        f"model={model}",
        f"data={data}",
        f"paths.data={root}",
        "train.epochs=1",
        f"train.batch_size={batch}",
        *extra,
        *width,
    ]


@pytest.mark.slow  # the whole model x data grid: `make test-all`
@pytest.mark.parametrize("data", DATA)
@pytest.mark.parametrize("model", MODELS)
def test_model_trains_on_data(model: str, data: str, data_root: Path, outputs: Path) -> None:
    cfg = compose_config(one_step(model, data, data_root, outputs), outputs)
    check(cfg)
    value = run(cfg, job_info(cfg))  # what Hydra knows of the job, as __main__ passes it
    assert math.isfinite(value) and 0.0 <= value <= 1.0
    [mlflow_run] = all_runs(outputs)
    assert mlflow_run.info.status == "FINISHED"
    assert (
        mlflow_run.data.tags["seedhp.model"] == model
        and mlflow_run.data.tags["seedhp.data"] == data
    )


def test_image_models_refuse_flat_data(outputs: Path) -> None:
    cfg = compose_config(["model=cnn", "data=synthetic", "data.source.shape=[12]"], outputs)
    with pytest.raises(ConfigError, match="needs image data"):
        check(cfg)


@pytest.mark.parametrize("big", [False, True])
def test_a_model_is_checked_for_real_when_small_and_on_the_meta_device_when_big(
    big: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A model over META_CHECK_BYTES is run on the meta device only (nothing allocated); a
    smaller one on the CPU. Either way logits of the wrong shape are refused in one line."""
    import torch
    from torch import nn

    from seedhp.train import models

    monkeypatch.setattr(models, "META_CHECK_BYTES", 0 if big else 64 * 2**20)
    devices: list[str] = []

    def build(shape: tuple[int, ...], num_classes: int) -> nn.Module:
        layer = nn.Linear(math.prod(shape), num_classes + 1)  # one logit too many
        devices.append(layer.weight.device.type)
        return nn.Sequential(nn.Flatten(), layer)

    with pytest.raises(
        ConfigError, match=r"returns \(2, 11\).*expected logits of shape \(2, 10\)"
    ):
        models.check_model(models.ModelFactory(build, "my.Model"), (1, 8, 8), 10)
    assert devices == (["meta"] if big else ["meta", "cpu"])

    def fits(shape: tuple[int, ...], num_classes: int) -> nn.Module:
        return nn.Flatten()  # (2, 1, 2, 5) -> (2, 10): no parameters, right shape

    models.check_model(models.ModelFactory(fits, "ok"), (1, 2, 5), 10)
    assert torch.zeros(1).device.type == "cpu"  # the meta device is not left set


def test_a_model_the_cpu_cannot_run_is_checked_on_the_meta_device_and_lazy_ones_there_first(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A small model whose op has no CPU kernel (a CUDA-only op) passes on the meta device; a
    lazy model (size unknown until called) is run on the meta device first, never built on the
    CPU; a model that runs nowhere is refused with the CPU's error."""
    from torch import nn

    from seedhp.train import models

    class CudaOnly(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            if x.device.type == "cpu":
                raise NotImplementedError(
                    "Could not run 'my::op' with arguments from the 'CPU' backend"
                )
            return x.flatten(1)[:, :10]

    models.check_model(
        models.ModelFactory(lambda shape, num_classes: CudaOnly(), "c"), (1, 8, 8), 10
    )

    devices: list[str] = []

    def lazy(shape: tuple[int, ...], num_classes: int) -> nn.Module:
        devices.append(torch.empty(0).device.type)
        return nn.Sequential(nn.Flatten(), nn.LazyLinear(num_classes))

    models.check_model(models.ModelFactory(lazy, "lazy"), (1, 8, 8), 10)
    assert devices == ["meta"]

    class Broken(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            raise ValueError("shapes do not line up" if x.device.type == "cpu" else "meta says no")

    with pytest.raises(ConfigError, match="raised ValueError: shapes do not line up"):
        models.check_model(
            models.ModelFactory(lambda shape, num_classes: Broken(), "b"), (1, 8, 8), 10
        )
