"""The launcher's shortcut composition gives exactly the config Hydra composes."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from hydra import initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.types import HydraContext, RunMode
from omegaconf import OmegaConf

from seedhp.sweep.launch import Composer
from tests.conftest import CONF

JOBS = [
    ["seed=0"],
    ["seed=7"],
    ["seed=3", "optimizer.lr=0.0123", "model.widths=[8,16]", "tracking.trial=4"],
    ["seed=5", "optimizer.lr=0.3", "model.widths=[4,4]", "tracking.trial=5"],
    ["seed=5", "optimizer.lr=0.3"],  # another set of keys: a new base
    ["model=mlp", "seed=1", "model.hidden=[3]"],  # a group choice: composed in full
    ["model=mlp", "seed=2", "model.hidden=[5,5]"],
    ["seed=2", "+tracking.tags.owner=me"],  # an addition: composed in full
    ["seed=9", "train.objective=val_loss", "tracking.study=null"],
]


@pytest.fixture
def hydra_context(tmp_path: Path) -> Iterator[tuple[HydraContext, object]]:
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        gh = GlobalHydra.instance()
        assert gh.hydra is not None
        master = gh.hydra.compose_config(
            "config", [f"paths.outputs={tmp_path}"], run_mode=RunMode.MULTIRUN
        )
        yield HydraContext(config_loader=gh.config_loader(), callbacks=None), master  # type: ignore[arg-type]


def test_composer_matches_hydra(hydra_context) -> None:  # type: ignore[no-untyped-def]
    ctx, master = hydra_context
    composer = Composer(ctx, master)
    for job in JOBS:
        ours = composer.compose(job)
        hydras = ctx.config_loader.load_sweep_config(master, job)
        assert OmegaConf.to_container(ours) == OmegaConf.to_container(hydras), job
    assert len(composer.composed) < len(JOBS)  # the shortcut was taken
