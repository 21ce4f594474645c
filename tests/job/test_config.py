from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from omegaconf import OmegaConf

from seedhp.errors import ConfigError
from seedhp.job.settings import config_id, parse
from tests.conftest import compose_config


def resolved(overrides: list[str], outputs: Path) -> dict[str, Any]:
    cfg = compose_config(overrides, outputs)
    out = OmegaConf.to_container(cfg, resolve=True)
    assert isinstance(out, dict)
    return out  # type: ignore[return-value]


@pytest.mark.parametrize(
    ("override", "key", "allowed"),
    [
        ("seed=-1", "seed", "integer >= 0"),
        ("seed=1.5", "seed", "integer >= 0"),
        ("seed=abc", "seed", "integer >= 0"),
        ("seed=true", "seed", "integer >= 0"),
        ("seeds.init=-3", "seeds.init", "integer >= 0"),
        ("+seeds.weights=1", "seeds.weights", "streams: init, data, augment, dropout, split"),
        ("optimizer.lr=-0.1", "optimizer.lr", "> 0.0"),
        ("optimizer.lr=0", "optimizer.lr", "> 0.0"),
        ("optimizer.weight_decay=-1", "optimizer.weight_decay", ">= 0.0"),
        ("train.epochs=0", "train.epochs", "integer >= 1"),
        ("train.batch_size=0", "train.batch_size", "integer >= 1"),
        ("train.device=tpu", "train.device", "auto, cpu, cuda"),
        ("train.objective=val_accuracy", "train.objective", "metrics: val_acc, val_loss"),
        ("train.label_smoothing=1.0", "train.label_smoothing", "< 1.0"),
        ("schedule.name=linear", "schedule.name", "constant, cosine, onecycle"),
        ("data.val_size=0", "data.val_size", "integer >= 1"),
        ("data.val_size=1.5", "data.val_size", "a fraction in (0, 1)"),
        ("data.augment=mixup", "data.augment", "none, flip, crop, crop_flip"),
        ("model.dropout=1.0", "model.dropout", "< 1.0"),
        ("tracking.role=winner", "tracking.role", "run, trial, reseed, fresh, baseline"),
    ],
)
def test_bad_values_name_key_value_and_what_is_allowed(
    override: str, key: str, allowed: str, outputs: Path
) -> None:
    with pytest.raises(ConfigError) as err:
        parse(resolved([override], outputs))
    message = str(err.value)
    assert message.startswith(f"{key}=") and allowed in message and "\n" not in message


def test_defaults_parse(outputs: Path) -> None:
    s = parse(resolved([], outputs))
    assert s.seed == 0 and s.pinned["split"] == 0 and s.pinned["init"] is None
    assert s.train.epochs == 20 and s.objective == "val_acc"
    assert s.tracking.uri == f"sqlite:///{outputs}/mlflow.db"


def test_config_id_ignores_the_seed_and_runtime_keys_only(outputs: Path) -> None:
    base = config_id(resolved([], outputs))
    for same in (
        ["seed=5"],
        ["seeds.split=0"],  # the default pin, written out
        ["train.device=cpu"],
        ["tracking.experiment=other"],
        ["report.fresh_seeds=20"],
        ["train.eval_batch_size=7"],
    ):
        assert config_id(resolved(same, outputs)) == base, same
    assert config_id(resolved([], outputs / "elsewhere")) == base
    for other in (
        ["optimizer.lr=0.1"],
        ["model=mlp"],
        ["train.epochs=3"],
        ["schedule=constant"],
        ["seeds.split=3"],  # another validation split: another measurement of each seed
        ["seeds.split=null"],
        ["seeds.init=7"],
    ):
        assert config_id(resolved(other, outputs)) != base, other
    assert len(base) == 12
