"""A study's settings: the sweeper's `hydra.sweeper.*` checked against the search space
(one ConfigError for bad input), the default study name, the sampler and the pruner."""

from __future__ import annotations

import hashlib
import json
import logging
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import optuna

from seedhp.errors import ConfigError
from seedhp.stats.aggregate import AGGREGATES
from seedhp.stats.summary import maximize
from seedhp.sweep.space import SearchSpace, grid, seed_pool
from seedhp.sweep.tracked import Target

if TYPE_CHECKING:
    pass


log = logging.getLogger("seedhp")


STRATEGIES = ("tuned", "averaged", "fixed")


SAMPLERS = ("tpe", "random", "gp", "cmaes", "grid", "bruteforce", "qmc")


PRUNERS = ("none", "median", "wilcoxon", "hyperband")


@dataclass(frozen=True)
class StudySettings:
    name: str
    storage: str
    direction: str
    n_trials: int
    strategy: str
    seeds: tuple[int, ...]  # tuned: the seed choices; averaged: each trial's seeds; fixed: one
    aggregate: str
    sampler: str
    sampler_seed: int | None
    pruner: str
    pruner_options: dict[str, Any]
    heartbeat_seconds: int
    max_failure_rate: float
    space: SearchSpace
    objective: str

    @property
    def maximize(self) -> bool:
        return self.direction == "maximize"


def study_settings(
    sweeper: Mapping[str, Any], space: SearchSpace, job: Target, job_seed: int
) -> StudySettings:
    """Check the sweeper's settings against the search space; one ConfigError for bad input."""
    strategy = sweeper["seed_strategy"]
    if strategy not in STRATEGIES:
        raise ConfigError(
            "hydra.sweeper.seed_strategy", strategy, f"allowed: {', '.join(STRATEGIES)}"
        )
    sampler, pruner = sweeper["sampler"]["name"], sweeper["pruner"]["name"]
    if sampler not in SAMPLERS:
        raise ConfigError("hydra.sweeper.sampler.name", sampler, f"allowed: {', '.join(SAMPLERS)}")
    if pruner not in PRUNERS:
        raise ConfigError("hydra.sweeper.pruner.name", pruner, f"allowed: {', '.join(PRUNERS)}")
    direction = sweeper.get("direction") or ("maximize" if maximize(job.objective) else "minimize")
    if direction not in ("maximize", "minimize"):
        raise ConfigError("hydra.sweeper.direction", direction, "allowed: maximize, minimize")
    n_trials = sweeper["n_trials"]
    if isinstance(n_trials, bool) or not isinstance(n_trials, int) or n_trials < 1:
        raise ConfigError("hydra.sweeper.n_trials", n_trials, "an integer >= 1")
    if sweeper.get("n_jobs", 1) != 1:
        raise ConfigError(
            "hydra.sweeper.n_jobs",
            sweeper["n_jobs"],
            "seedhp runs one trial at a time per process; to run trials in parallel start "
            "several processes on one study (same storage and study_name)",
        )
    rate = sweeper.get("max_failure_rate", 0.5)
    if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not 0 <= rate <= 1:
        raise ConfigError("hydra.sweeper.max_failure_rate", rate, "a number in [0, 1]")
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
    if sampler in ("grid", "bruteforce"):
        size = math.prod(len(values) for values in grid(space).values())  # refuses continuous
        if n_trials > size:
            log.info(
                "hydra.sweeper.n_trials=%d is more than the %d points of the %s sampler's "
                "space: the study ends after %d trials",
                n_trials,
                size,
                sampler,
                size,
            )
            n_trials = size
    if pruner == "wilcoxon" and strategy != "averaged":
        raise ConfigError(
            "hydra.sweeper.pruner",
            pruner,
            "wilcoxon compares per-seed scores of a trial: it needs seed_strategy=averaged",
        )
    storage = sweeper.get("storage") or f"sqlite:///{job.outputs}/optuna.db"
    name = sweeper.get("study_name") or default_study_name(strategy, space, seeds)
    return StudySettings(
        name=name,
        storage=str(storage),
        direction=direction,
        n_trials=n_trials,
        strategy=strategy,
        seeds=seeds,
        aggregate=how,
        sampler=sampler,
        sampler_seed=sweeper["sampler"].get("seed"),
        pruner=pruner,
        pruner_options={k: v for k, v in sweeper["pruner"].items() if k != "name"},
        heartbeat_seconds=int(sweeper.get("heartbeat_seconds", 10)),
        max_failure_rate=float(rate),
        space=space,
        objective=job.objective,
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
    seed = s.sampler_seed
    samplers: dict[str, Callable[[], optuna.samplers.BaseSampler]] = {
        "tpe": lambda: optuna.samplers.TPESampler(seed=seed),
        "random": lambda: optuna.samplers.RandomSampler(seed=seed),
        "gp": lambda: optuna.samplers.GPSampler(seed=seed),
        "cmaes": lambda: optuna.samplers.CmaEsSampler(seed=seed),
        "grid": lambda: optuna.samplers.GridSampler(grid(s.space), seed=seed),
        "bruteforce": lambda: optuna.samplers.BruteForceSampler(seed=seed),
        "qmc": lambda: optuna.samplers.QMCSampler(seed=seed),
    }
    sampler = samplers[s.sampler]()
    return sampler if seed is None else seeded_per_trial(sampler, seed)


def seeded_per_trial(
    sampler: optuna.samplers.BaseSampler, seed: int
) -> optuna.samplers.BaseSampler:
    """`sampler` with every random state it holds (its own, its startup and independent
    samplers') reseeded before each trial from (seed, the trial's number).

    A sampler seeded once draws one sequence from the start of each process: a study resumed
    after an interruption, and each worker of a shared study, would propose the first trials'
    values again (seen: 12 finished trials, 8 distinct). Seeded by trial number, trial n draws
    what it would in one uninterrupted process, whoever runs it and whenever: a fresh study is
    as reproducible as before, and a resumed or shared one repeats nothing a single process
    would not. What a model-based sampler (TPE after its startup trials) proposes still depends
    on the trials finished when it asks."""
    states = _random_states(sampler)
    before = sampler.before_trial

    def before_trial(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        for i, state in enumerate(states):
            digest = hashlib.sha256(f"{seed}:{trial.number}:{i}".encode()).digest()
            state.rng.seed(int.from_bytes(digest[:4], "little"))
        before(study, trial)

    sampler.before_trial = before_trial  # type: ignore[method-assign]
    return sampler


def _random_states(obj: object, depth: int = 0) -> list[Any]:
    """The LazyRandomState instances of a sampler and of the samplers it holds, in a fixed
    order (attribute order)."""
    from optuna.samplers._lazy_random_state import LazyRandomState

    found: list[Any] = []
    for value in vars(obj).values():
        if isinstance(value, LazyRandomState):
            found.append(value)
        elif isinstance(value, optuna.samplers.BaseSampler) and depth < 3:
            found += _random_states(value, depth + 1)
    return found


def make_pruner(s: StudySettings) -> optuna.pruners.BasePruner:
    o = s.pruner_options
    if s.pruner == "median":
        return optuna.pruners.MedianPruner(
            n_startup_trials=o.get("n_startup_trials", 5),
            n_warmup_steps=o.get("n_warmup_steps", 0),
        )
    if s.pruner == "wilcoxon":
        return optuna.pruners.WilcoxonPruner(
            p_threshold=o.get("p_threshold", 0.1), n_startup_steps=o.get("n_startup_steps", 2)
        )
    if s.pruner == "hyperband":
        return optuna.pruners.HyperbandPruner(
            min_resource=o.get("min_resource", 1), reduction_factor=o.get("reduction_factor", 3)
        )
    return optuna.pruners.NopPruner()
