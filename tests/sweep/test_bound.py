"""A sweep's size is known before it is expanded, and a sweep above the bound is refused."""

from __future__ import annotations

import tracemalloc

import pytest
from hydra.core.override_parser.overrides_parser import OverridesParser

from seedhp.errors import ConfigError
from seedhp.sweep.bound import MAX_JOBS, ends, length
from seedhp.sweep.grid import expand
from seedhp.sweep.space import dimension, grid, parse_space, seed_pool

SWEEPS = [
    "x=range(0,10)",
    "x=range(3,40,7)",
    "x=range(10,0,-3)",
    "x=range(5,5)",
    "x=range(0,1,0.1)",
    "x=range(0.5,-1,-0.25)",
    "x=range(0,1,0.3)",
    "x=shuffle(range(0,9))",
    "x=a,b,c",
    "x=choice(1,2)",
]


def parse(text: str):  # type: ignore[no-untyped-def]
    return OverridesParser.create().parse_override(text)


@pytest.mark.parametrize("text", SWEEPS)
def test_a_sweeps_length_and_ends_are_hydras_own(text: str) -> None:
    o = parse(text)
    values = list(o.sweep_iterator())
    assert length(o) == len(values)
    if "range" in text and "shuffle" not in text:
        assert ends(o) == ((values[0], values[-1]) if values else (None, None))


def test_every_path_refuses_a_hundred_million_values_without_taking_them() -> None:
    huge = f"seed=range(0,{100 * MAX_JOBS**2})"  # 10^12: expanding it would never end
    tracemalloc.start()
    for refuse in (
        lambda: expand([parse(huge)]),  # the grid sweeper, on any app
        lambda: parse_space([huge]),  # a study's searched seed
        lambda: seed_pool(f"range(0,{10 * MAX_JOBS})"),  # an averaged study's pool
        lambda: seed_pool(10**12),  # the pool as N
        lambda: expand([parse("seed=range(0,1000)"), parse("lr=range(0.001,1,0.001)")]),
    ):
        with pytest.raises(ConfigError, match="one sweep takes at most 100,000 jobs"):
            refuse()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak < 50_000_000  # nothing was expanded on the way


def test_an_ordered_range_is_a_distribution_however_long_and_a_grid_of_it_is_refused() -> None:
    d = dimension(parse("optimizer.lr=range(0,1000000000)"))  # IntDistribution: not expanded
    assert (d.distribution.low, d.distribution.high) == (0, 999_999_999)  # type: ignore[attr-defined]
    with pytest.raises(ConfigError, match="1,000,000,000 values"):
        grid(parse_space(["optimizer.lr=range(0,1000000000)"]))


def test_a_grid_at_the_bound_is_expanded() -> None:
    assert len(expand([parse(f"seed=range(0,{MAX_JOBS})")])) == MAX_JOBS
