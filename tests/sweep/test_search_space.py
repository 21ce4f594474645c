from __future__ import annotations

import pytest
from hydra.core.override_parser.overrides_parser import OverridesParser
from optuna.distributions import CategoricalDistribution as Cat
from optuna.distributions import FloatDistribution as Float
from optuna.distributions import IntDistribution as Int

from seedhp.errors import ConfigError
from seedhp.sweep.space import dimension, grid, merge, parse_space, seed_pool


def dim(line: str):  # type: ignore[no-untyped-def]
    return dimension(OverridesParser.create().parse_override(line))


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        ("model=mlp,cnn", Cat(("mlp", "cnn"))),
        ("optimizer.lr=choice(0.1,0.01)", Cat((0.1, 0.01))),
        ("model.widths=choice([16,32],[32,64])", Cat(("[16,32]", "[32,64]"))),
        ("train.batch_size=range(32,129,32)", Int(32, 128, step=32)),  # 129 excluded
        ("train.epochs=range(1,5)", Int(1, 4)),  # stop excluded, as in Hydra's basic sweeper
        ("train.epochs=range(5)", Int(0, 4)),
        ("a=range(0,10,3)", Int(0, 9, step=3)),
        ("a=range(0.0,1.0,0.25)", Float(0.0, 0.75, step=0.25)),
        ("optimizer.lr=interval(0.01,0.3)", Float(0.01, 0.3)),
        ("train.epochs=int(interval(1,10))", Int(1, 10)),
        ("optimizer.lr=tag(log, interval(0.001,0.1))", Float(0.001, 0.1, log=True)),
        ("a=tag(log, int(interval(1,100)))", Int(1, 100, log=True)),
        ("seed=range(0,1000)", Cat(tuple(range(1000)))),  # seeds: categorical, never an int axis
        ("seed=range(10,20,5)", Cat((10, 15))),
        ("seed=choice(3407,0,42)", Cat((3407, 0, 42))),
        ("seed=1,2", Cat((1, 2))),
    ],
)
def test_override_to_distribution(override: str, expected: object) -> None:
    assert dim(override).distribution == expected


def test_categorical_values_go_back_as_the_override_text() -> None:
    d = dim("model.widths=choice([16,32],[32,64])")
    assert d.override("[32,64]") == "model.widths=[32,64]"
    assert (
        dim("optimizer.lr=interval(0.01,0.3)").override(0.1234567890123)
        == "optimizer.lr=0.1234567890123"
    )
    assert dim("seed=range(0,5)").override(3) == "seed=3"


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("seed=interval(0,10)", "seeds carry no order"),
        ("seed=range(0,0)", "empty"),
        ("seed=choice(1,-2)", "integer >= 0"),
        ("train.epochs=range(3,3)", "excludes stop"),
        ("optimizer.lr=tag(log, interval(0,1))", "a > 0 when log-scaled"),
        ("optimizer.lr=interval(0.3,0.1)", "a < b"),
        ("a=choice(1,1)", "twice"),
    ],
)
def test_bad_search_spaces(override: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        dim(override)


def test_plain_values_are_fixed_and_the_command_line_wins() -> None:
    lines = merge(
        {"optimizer.lr": "interval(0.01,0.1)", "train.epochs": "5"},
        ["train.epochs=3", "seed=range(0,4)"],
    )
    space = parse_space(lines)
    assert space.fixed == ("train.epochs=3",)
    assert [d.key for d in space.dimensions] == ["optimizer.lr", "seed"]
    assert space.seed is not None and space.seed.source == "range(0,4)"


@pytest.mark.parametrize(
    ("spec", "seeds"),
    [
        (3, [0, 1, 2]),
        ([5, 9, 1], [5, 9, 1]),
        ("range(10,13)", [10, 11, 12]),
        ("choice(7,3)", [7, 3]),
        ("4,2", [4, 2]),
    ],
)
def test_seed_pool_forms(spec: object, seeds: list[int]) -> None:
    assert seed_pool(spec) == seeds


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (0, "empty"),
        ("range(0,0)", "empty"),
        ([1.5], "integer >= 0"),
        ([2, 2], "twice"),
        ("interval(0,5)", "range"),
    ],
)
def test_bad_seed_pools(spec: object, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        seed_pool(spec)


def test_grid_of_discrete_dimensions_only() -> None:
    space = parse_space(["seed=range(0,3)", "a=range(0,10,5)", "b=range(0.0,1.0,0.5)", "m=x,y"])
    assert grid(space) == {"seed": [0, 1, 2], "a": [0, 5], "b": [0.0, 0.5], "m": ["x", "y"]}
    with pytest.raises(ConfigError, match="discrete"):
        grid(parse_space(["optimizer.lr=interval(0.1,1)"]))
