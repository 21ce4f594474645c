"""A study's settings: the sweeper's `hydra.sweeper.*` checked against the search space
(one ConfigError for bad input), the default study name, the sampler and the pruner."""

from __future__ import annotations

import hashlib
import json
import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import optuna

from seedhp.errors import ConfigError
from seedhp.stats.aggregate import AGGREGATES
from seedhp.stats.summary import maximize
from seedhp.sweep.samplers import (
    PRUNER_CLASSES,
    SAMPLER_CLASSES,
    Choice,
    build,
    pruner_choice,
    sampler_choice,
    sampler_of,
)
from seedhp.sweep.space import CustomSpace, SearchSpace, custom_space, grid, seed_pool
from seedhp.sweep.tracked import Target

if TYPE_CHECKING:
    pass


log = logging.getLogger("seedhp")


STRATEGIES = ("tuned", "averaged", "fixed", "none")


SAMPLERS = tuple(SAMPLER_CLASSES)


PRUNERS = tuple(PRUNER_CLASSES)


@dataclass(frozen=True)
class StudySettings:
    name: str
    storage: str | None  # None: in memory (Optuna's, hydra-optuna-sweeper's storage: null)
    direction: str
    n_trials: int
    strategy: str
    seeds: tuple[int, ...]  # tuned: the seed choices; averaged: each trial's seeds; fixed: one
    aggregate: str
    sampler_choice: Choice
    pruner_choice: Choice
    heartbeat_seconds: int
    max_failure_rate: float
    space: SearchSpace
    objective: str
    n_jobs: int = 1
    custom: CustomSpace | None = None  # custom_search_space: f(cfg, trial)

    @property
    def maximize(self) -> bool:
        return self.direction == "maximize"

    @property
    def sampler(self) -> str:
        return self.sampler_choice.label

    @property
    def pruner(self) -> str:
        return self.pruner_choice.label

    @property
    def sampler_seed(self) -> int | None:
        return self.sampler_choice.seed


def seed_strategy(sweeper: Mapping[str, Any], space: SearchSpace, own: bool) -> str:
    """hydra.sweeper.seed_strategy; null: tuned when the seed is searched, else none for another
    app (a plain Optuna study, as hydra-optuna-sweeper runs it) and tuned for seedhp's own
    (which always trains a seed, and says to search it)."""
    strategy = sweeper.get("seed_strategy")
    if strategy is None:
        return "tuned" if space.seed is not None or own else "none"
    if strategy not in STRATEGIES:
        raise ConfigError(
            "hydra.sweeper.seed_strategy", strategy, f"allowed: {', '.join(STRATEGIES)}"
        )
    if strategy == "none" and own:
        raise ConfigError(
            "hydra.sweeper.seed_strategy",
            strategy,
            "seedhp's own app always trains a seed: use fixed for one seed in every trial",
        )
    if strategy == "none" and space.seed is not None:
        raise ConfigError(
            space.seed_key,
            space.seed.source,
            "seed_strategy=none searches no seed: take it out of the search space, or use "
            "seed_strategy=tuned",
        )
    return str(strategy)


def directions(sweeper: Mapping[str, Any], objective: str) -> tuple[tuple[str, ...], str]:
    """hydra.sweeper.direction as a tuple (a list: several objectives), and where it came from:
    given, or from the objective's name (seedhp.stats.summary.maximize: an unnamed float
    return is minimised, as Optuna and hydra-optuna-sweeper do)."""
    given = sweeper.get("direction")
    if given is None:
        name = "maximize" if maximize(objective) else "minimize"
        why = "from its name" if objective != "objective" else "Optuna's default"
        return (name,), why
    values = list(given) if isinstance(given, (list, tuple)) else [given]
    values = [getattr(v, "name", v) for v in values]  # hydra-optuna-sweeper's Direction enum
    if not values or any(v not in ("maximize", "minimize") for v in values):
        shown = given if not isinstance(given, (list, tuple)) else f"[{','.join(map(str, given))}]"
        raise ConfigError(
            "hydra.sweeper.direction",
            shown,
            "allowed: maximize, minimize, or a list of them (one per returned value)",
        )
    return tuple(values), "given"


def count(sweeper: Mapping[str, Any], key: str, minimum: int = 1) -> int:
    value = sweeper.get(key, minimum)
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigError(f"hydra.sweeper.{key}", value, f"an integer >= {minimum}")
    return value


def failure_rate(sweeper: Mapping[str, Any]) -> float:
    rate = sweeper.get("max_failure_rate", 0.5)
    if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not 0 <= rate <= 1:
        raise ConfigError("hydra.sweeper.max_failure_rate", rate, "a number in [0, 1]")
    return float(rate)


def storage_url(sweeper: Mapping[str, Any]) -> str | None:
    """hydra.sweeper.storage: null is an in-memory study; a relative SQLite path is made
    absolute (against the directory the command started in), so every job and process sharing
    the study names the same file."""
    storage = sweeper.get("storage")
    if storage is None:
        return None
    storage = str(storage)
    prefix = "sqlite:///"
    if storage.startswith(prefix) and not storage[len(prefix) :].startswith("/"):
        path = storage[len(prefix) :]
        if path and path != ":memory:" and not path.startswith("~"):  # ~: refused, said why
            storage = f"{prefix}{Path(path).resolve()}"
    return storage


def grid_trials(sampler: Choice, space: SearchSpace, n_trials: int) -> int:
    """n_trials, at most the points of a grid or brute-force sampler's space (said if fewer)."""
    if sampler.name not in ("grid", "bruteforce"):
        return n_trials
    size = math.prod(len(values) for values in grid(space).values())  # refuses continuous
    if n_trials > size:
        log.info(
            "hydra.sweeper.n_trials=%d is more than the %d points of the %s sampler's "
            "space: the study ends after %d trials",
            n_trials,
            size,
            sampler.name,
            size,
        )
    return min(n_trials, size)


def storage_label(storage: str | None) -> str:
    """A study's storage as printed and tagged: its URL without a password, or "memory"."""
    from seedhp.job.urls import redact

    return redact(storage) if storage else "memory"


def study_settings(
    sweeper: Mapping[str, Any],
    space: SearchSpace,
    job: Target,
    job_seed: int,
    strategy: str | None = None,
) -> StudySettings:
    """Check the sweeper's settings against the search space; one ConfigError for bad input."""
    strategy = strategy or seed_strategy(sweeper, space, job.own)
    sampler, pruner = sampler_choice(sweeper.get("sampler")), pruner_choice(sweeper.get("pruner"))
    (direction, *more), _ = directions(sweeper, job.objective)
    if more:
        raise ConfigError(
            "hydra.sweeper.direction",
            f"[{','.join([direction, *more])}]",
            "several objectives run as a plain Optuna study (seed_strategy=none, the seed not "
            "searched); a seed strategy optimises one objective",
        )
    n_trials = count(sweeper, "n_trials")
    n_jobs = count(sweeper, "n_jobs")
    if n_jobs > 1 and strategy != "averaged" and pruner.name != "none":
        raise ConfigError(
            "hydra.sweeper.n_jobs",
            n_jobs,
            f"the {pruner.label} pruner stops a seed-run between epochs, which needs one trial "
            "at a time (n_jobs=1); to run trials in parallel start several processes on one "
            "study (same storage and study_name)",
        )
    rate = failure_rate(sweeper)
    how = sweeper["aggregate"]
    if how not in AGGREGATES:
        raise ConfigError("hydra.sweeper.aggregate", how, f"allowed: {', '.join(AGGREGATES)}")

    seed_dim = space.seed
    if strategy == "averaged":
        if seed_dim is not None:
            raise ConfigError(
                space.seed_key,
                seed_dim.source,
                "seed_strategy=averaged draws every trial's seeds from "
                f"hydra.sweeper.seed_pool; take {space.seed_key} out of the search space",
            )
        pool = seed_pool(sweeper["seed_pool"])
        k = sweeper["seeds_per_trial"]
        if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= len(pool):
            raise ConfigError(
                "hydra.sweeper.seeds_per_trial",
                k,
                f"an integer from 1 to the {len(pool)} seeds of the seed pool",
            )
        seeds = tuple(pool[:k])
    elif strategy == "tuned":
        if seed_dim is None:  # no seed in the space: search the pool's seeds
            raise ConfigError(
                space.seed_key,
                job_seed,
                "seed_strategy=tuned searches the seed: put it in "
                f"the search space, e.g. {space.seed_key}='range(0,1000)'",
            )
        seeds = tuple(int(s) for s in seed_dim.distribution.choices)  # type: ignore[attr-defined]
    else:
        if seed_dim is not None:
            raise ConfigError(
                space.seed_key,
                seed_dim.source,
                f"seed_strategy=fixed trains every trial on one seed: give {space.seed_key}=<int>",
            )
        seeds = (job_seed,)
    n_trials = grid_trials(sampler, space, n_trials)
    if pruner.name == "wilcoxon" and strategy != "averaged":
        raise ConfigError(
            "hydra.sweeper.pruner",
            pruner.name,
            "wilcoxon compares per-seed scores of a trial: it needs seed_strategy=averaged",
        )
    storage = storage_url(sweeper)
    name = sweeper.get("study_name") or default_study_name(strategy, space, seeds)
    return StudySettings(
        name=name,
        storage=storage,
        direction=direction,
        n_trials=n_trials,
        strategy=strategy,
        seeds=seeds,
        aggregate=how,
        sampler_choice=sampler,
        pruner_choice=pruner,
        heartbeat_seconds=int(sweeper.get("heartbeat_seconds", 10)),
        max_failure_rate=rate,
        space=space,
        objective=job.objective,
        n_jobs=n_jobs,
        custom=custom_space(sweeper.get("custom_search_space")),
    )


def default_study_name(strategy: str, space: SearchSpace, seeds: Sequence[int]) -> str:
    """The same command names the same study, so re-running it resumes the study."""
    blob = json.dumps(
        [
            strategy,
            sorted(space.fixed),
            [repr(d) for d in space.dimensions],
            list(seeds) if strategy != "tuned" else [],
        ],
        sort_keys=True,
    )
    return f"seedhp-{strategy}-{hashlib.sha256(blob.encode()).hexdigest()[:10]}"


def make_sampler(s: StudySettings) -> optuna.samplers.BaseSampler:
    """The study's sampler; with a seed, its random draws for trial n come from (seed, n)
    alone (seeded_per_trial)."""
    return sampler_of(s.sampler_choice, s.space)


def make_pruner(s: StudySettings) -> optuna.pruners.BasePruner:
    return build(s.pruner_choice)
