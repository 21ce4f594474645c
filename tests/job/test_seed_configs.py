"""A pack's configuration is resolved once, and per seed where a value depends on the seed."""

from __future__ import annotations

from pathlib import Path

from omegaconf import OmegaConf

from seedhp.job.run import seed_containers
from tests.conftest import compose_config


def test_resolved_once_and_the_seed_set_per_seed(tmp_path: Path) -> None:
    cfg = compose_config(["seed=4"], tmp_path)
    OmegaConf.set_readonly(cfg, True)  # as a launcher may hand it over
    a, b, c = seed_containers(cfg, [7, 8, 9])
    assert [x["seed"] for x in (a, b, c)] == [7, 8, 9]
    assert a["train"] is b["train"]  # shared: resolved once
    assert cfg.seed == 4  # the caller's config keeps its own seed


def test_a_value_that_interpolates_the_seed_is_resolved_per_seed(tmp_path: Path) -> None:
    cfg = compose_config(["seed=4", "+tracking.tags.run_seed=s${seed}"], tmp_path)
    a, b = seed_containers(cfg, [7, 8])
    assert (a["tracking"]["tags"]["run_seed"], b["tracking"]["tags"]["run_seed"]) == ("s7", "s8")
