from __future__ import annotations

import pytest

from seedhp.errors import ConfigError
from seedhp.sweep.preflight import preflight
from tests.conftest import CONF


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["model=foo"], "model=foo: allowed: airbench, cnn, custom, mlp, resnet18, resnet9"),
        (
            ["data=mnist,cifar", "seed=1"],
            "data=cifar: allowed: cifar10, custom, digits, fashion_mnist",
        ),
        (["train.epoch=5"], "train.epoch=5: no such key; did you mean train.epochs?"),
        (
            ["model=mlp", "model.hiddn=[3]"],
            "model.hiddn=[3]: no such key; did you mean model.hidden?",
        ),
        (["seed=range(0,3)", "optimizer.momentun=0.5,0.9"], "optimizer.momentun=0.5: no such key"),
    ],
)
def test_unknown_keys_and_options_in_one_line(overrides: list[str], message: str) -> None:
    with pytest.raises(ConfigError) as err:
        preflight(overrides, CONF)
    assert str(err.value).startswith(message)


@pytest.mark.parametrize(
    "overrides",
    [
        [],
        ["model=mlp", "model.hidden=[3]"],
        ["+seeds.extra=1"],
        ["seed=range(0,0)"],
        ["hydra/sweeper=basic"],
        ["~model.dropout"],
        ["optimizer.lr=interval(0.01,0.1)"],
    ],
)
def test_valid_or_not_its_business(overrides: list[str]) -> None:
    preflight(overrides, CONF)  # left to Hydra's and seedhp's own checks
