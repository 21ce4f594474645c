"""Hydra override strings -> an Optuna search space, in hydra-optuna-sweeper's syntax.

    choice(a,b,c) / a,b,c       -> CategoricalDistribution
    range(start,stop[,step])    -> IntDistribution (FloatDistribution if a bound is a float),
                                   stop excluded as in Hydra's basic sweeper and Python
    shuffle(range(...)), shuffle(choice(...))
                                -> CategoricalDistribution over the values, as in
                                   hydra-optuna-sweeper (in the order written: the same command
                                   names the same study)
    interval(a,b)               -> FloatDistribution;  int(interval(a,b)) -> IntDistribution
    tag(log, interval(a,b))     -> the same, log-scaled
    a plain value               -> a fixed override, passed to every trial unchanged

`seed` carries no order: `seed=range(0,1000)` or `seed=choice(...)` is a CategoricalDistribution
over those seeds ("choose among these 1000"), never an integer axis, and `interval` is refused.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import ChoiceSweep, IntervalSweep, Override, RangeSweep
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)

from seedhp.errors import ConfigError
from seedhp.job.identity import quote
from seedhp.job.values import check_seed
from seedhp.sweep.bound import check, ends
from seedhp.sweep.bound import values as bounded_values

_PRIMITIVE = (bool, int, float, str, type(None))
CustomSpace = Callable[[Any, Any], None]  # custom_search_space: f(cfg, trial)


@dataclass(frozen=True)
class Dimension:
    """One searched config key; categorical choices keep the override text of each value."""

    key: str
    distribution: BaseDistribution
    texts: tuple[str, ...] = ()
    source: str = ""  # the search space as written, e.g. range(0,1000)

    def override(self, value: Any) -> str:
        """The `key=value` override that puts a sampled value into a job's config."""
        if isinstance(self.distribution, CategoricalDistribution):
            return f"{self.key}={self.texts[self.distribution.choices.index(value)]}"
        return f"{self.key}={value!r}" if isinstance(value, float) else f"{self.key}={value}"


@dataclass(frozen=True)
class SearchSpace:
    dimensions: tuple[Dimension, ...]
    fixed: tuple[str, ...]  # overrides every job gets unchanged
    seed_key: str = "seed"  # the config key that holds the seed

    @property
    def seed(self) -> Dimension | None:
        # `+seed=range(...)`: a seed key the app's config lacks, added by the override
        return next((d for d in self.dimensions if d.key.lstrip("+") == self.seed_key), None)

    def distributions(self) -> dict[str, BaseDistribution]:
        return {d.key: d.distribution for d in self.dimensions}


def override_of(space: SearchSpace, key: str, value: Any) -> str:
    """The override of one sampled value: its dimension's, or, for a parameter a
    custom_search_space function suggested (`z`, `+w`), `key=value` as Hydra reads it."""
    for d in space.dimensions:
        if d.key == key:
            return d.override(value)
    return f"{key}={value_text(value)}"


def value_text(value: Any) -> str:
    """A sampled value as Hydra reads it back: strings quoted, floats exactly."""
    if isinstance(value, str):
        return quote(value)
    return repr(value) if isinstance(value, float) else str(value)


def merge(params: dict[str, str], arguments: Sequence[str]) -> list[str]:
    """`hydra.sweeper.params` and command-line overrides; the command line wins per key."""
    by_key = {k: f"{k}={v}" for k, v in params.items()}
    for arg in arguments:
        by_key[arg.split("=", 1)[0]] = arg
    return list(by_key.values())


def sweep_space(
    sweeper: Mapping[str, Any], arguments: Sequence[str], seed_key: str
) -> SearchSpace:
    """A sweep's search space: hydra.sweeper.params and the command line (which wins)."""
    return parse_space(merge(dict(sweeper.get("params") or {}), arguments), seed_key)


def parse_space(overrides: Sequence[str], seed_key: str = "seed") -> SearchSpace:
    parser = OverridesParser.create()
    dims: list[Dimension] = []
    fixed: list[str] = []
    for line in overrides:
        o = parser.parse_override(line)
        if o.is_sweep_override():
            dims.append(dimension(o, seed_key))
        else:
            if o.key_or_group == seed_key:
                check_seed(o.value(), seed_key)
            fixed.append(line)
    return SearchSpace(tuple(dims), tuple(fixed), seed_key)


def dimension(o: Override, seed_key: str = "seed") -> Dimension:
    """The Optuna distribution of one sweep override."""
    key, sweep = o.get_key_element(), o.value()
    text = (o.input_line or "").split("=", 1)[-1]
    is_seed = o.key_or_group == seed_key
    shuffled = isinstance(sweep, (ChoiceSweep, RangeSweep)) and sweep.shuffle
    if shuffled:  # a set of values to choose among; their order is the one written
        sweep.shuffle = False  # type: ignore[union-attr]
    if isinstance(sweep, ChoiceSweep) or (isinstance(sweep, RangeSweep) and (is_seed or shuffled)):
        values: list[Any] = bounded_values(o)  # each one a choice: bounded
        texts = tuple(o.sweep_string_iterator())
        if not values:
            raise ConfigError(key, text, "the search space is empty: give at least one value")
        if is_seed:
            for v in values:
                check_seed(v, seed_key)
        choices = tuple(
            v if isinstance(v, _PRIMITIVE) else t for v, t in zip(values, texts, strict=True)
        )
        if len(set(choices)) != len(choices):
            raise ConfigError(key, text, "a choice lists the same value twice")
        return Dimension(key, CategoricalDistribution(choices), texts, text)
    if isinstance(sweep, RangeSweep):  # an ordered dimension: its ends, however long
        first, last = ends(o)
        if first is None:
            raise ConfigError(key, text, "the range is empty: range(start,stop) excludes stop")
        step = sweep.step
        if all(isinstance(v, int) for v in (sweep.start, sweep.stop, step)):
            return Dimension(
                key, IntDistribution(int(first), int(last), step=int(step)), source=text
            )
        return Dimension(
            key,
            FloatDistribution(float(first), float(last), step=float(step)),
            source=text,
        )
    if isinstance(sweep, IntervalSweep):
        if is_seed:
            raise ConfigError(
                key,
                text,
                "seeds carry no order: search them with range(a,b) or "
                "choice(...), not an interval",
            )
        log = "log" in sweep.tags
        lo, hi = sweep.start, sweep.end
        if lo is None or hi is None or lo >= hi or (log and lo <= 0):
            raise ConfigError(key, text, "an interval(a,b) with a < b (and a > 0 when log-scaled)")
        if isinstance(lo, int) and isinstance(hi, int):
            return Dimension(key, IntDistribution(lo, hi, log=log), source=text)
        return Dimension(key, FloatDistribution(float(lo), float(hi), log=log), source=text)
    raise ConfigError(key, text, "not a search space: use choice, range, interval or a value")


def end_variants(space: SearchSpace) -> list[list[str]]:
    """Overrides that put each searched dimension (not the seed) at each of its ends, the others
    at their first: composing each one finds a key or value the app refuses, before any job."""
    searched = [d for d in space.dimensions if d.key != space.seed_key]
    base = [d.override(_ends(d)[0]) for d in searched]
    variants = [[*space.fixed, *base]]
    for i, d in enumerate(searched):
        for value in _ends(d)[1:]:
            variants.append([*space.fixed, *base[:i], d.override(value), *base[i + 1 :]])
    return variants


def _ends(d: Dimension) -> list[Any]:
    dist = d.distribution
    if isinstance(dist, CategoricalDistribution):
        return list(dist.choices)
    return [dist.low, dist.high]  # type: ignore[attr-defined]


def custom_space(path: Any) -> CustomSpace | None:
    """hydra.sweeper.custom_search_space: the dotted path of f(cfg, trial), as in
    hydra-optuna-sweeper (the app's script, found beside it: `my-script.configure`)."""
    if not path:
        return None
    from hydra.utils import get_method

    try:
        return get_method(str(path))
    except Exception as err:
        cause = err.__cause__ or err
        raise ConfigError(
            "hydra.sweeper.custom_search_space",
            path,
            f"cannot be imported ({type(cause).__name__}: {str(cause).splitlines()[0]}); give "
            "module.function, the module importable from the app's directory",
        ) from None


def seed_pool(spec: Any) -> list[int]:
    """`hydra.sweeper.seed_pool` -> distinct seeds: an int N (seeds 0..N-1), a list of ints, or
    a string range(a,b) / choice(...) / a,b,c (Hydra refuses sweep syntax in hydra.* overrides
    on the command line, so there N or [a,b,c] are the forms to use)."""
    if isinstance(spec, int) and not isinstance(spec, bool):
        if spec < 1:
            raise ConfigError("hydra.sweeper.seed_pool", spec, "the seed pool is empty")
        check("hydra.sweeper.seed_pool", str(spec), spec, "seeds")
        return list(range(spec))
    if isinstance(spec, (list, tuple)):
        text = "[" + ",".join(str(v) for v in spec) + "]"
    else:
        text = str(spec)
    o = OverridesParser.create().parse_override(f"seed={text}")
    values: list[Any]
    if o.is_sweep_override():
        if not o.is_discrete_sweep():
            raise ConfigError("hydra.sweeper.seed_pool", text, "seeds: range(a,b) or choice(...)")
        values = bounded_values(o)
    else:
        value = o.value()
        values = list(value) if isinstance(value, list) else [value]
    if not values:
        raise ConfigError("hydra.sweeper.seed_pool", text, "the seed pool is empty")
    seeds = [check_seed(v, "hydra.sweeper.seed_pool") for v in values]
    if len(set(seeds)) != len(seeds):
        raise ConfigError("hydra.sweeper.seed_pool", text, "the seed pool lists a seed twice")
    return seeds


def grid(space: SearchSpace) -> dict[str, list[Any]]:
    """Every value of every dimension, for GridSampler; continuous dimensions are refused."""
    out: dict[str, list[Any]] = {}
    for d in space.dimensions:
        dist = d.distribution
        if isinstance(dist, CategoricalDistribution):
            out[d.key] = list(dist.choices)
        elif isinstance(dist, IntDistribution) and not dist.log:
            n = len(range(dist.low, dist.high + 1, dist.step))
            check(d.key, d.source or str(dist), n, "values")
            out[d.key] = list(range(dist.low, dist.high + 1, dist.step))
        elif isinstance(dist, FloatDistribution) and dist.step is not None:
            n = round((dist.high - dist.low) / dist.step)
            check(d.key, d.source or str(dist), n + 1, "values")
            out[d.key] = [dist.low + i * dist.step for i in range(n + 1)]
        else:
            raise ConfigError(
                d.key,
                dist,
                "grid and bruteforce samplers need discrete dimensions: choice(...) or range(...)",
            )
    return out
