"""A study's sampler and pruner from `hydra.sweeper.sampler` / `hydra.sweeper.pruner`, in
either form a user writes:

- seedhp's short form: `name: tpe` (`hydra/sweeper/sampler=tpe`, `hydra.sweeper.sampler.name=`);
- hydra-optuna-sweeper's and lightning-hydra-template's: `_target_: optuna.samplers.TPESampler`
  with the class's keyword arguments beside it (`seed: 1234`, `n_startup_trials: 10`, ...).

A key whose value is null is left to Optuna's default. A `_target_` that names no Optuna sampler
(pruner), or a keyword the class does not take, is one ConfigError that says what is allowed.
Nothing here imports Optuna until a study is built.
"""

from __future__ import annotations

import hashlib
import importlib
import inspect
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from seedhp.errors import ConfigError

if TYPE_CHECKING:
    import optuna

    from seedhp.sweep.space import SearchSpace

# short name -> Optuna class (module optuna.samplers / optuna.pruners)
SAMPLER_CLASSES = {
    "tpe": "TPESampler",
    "random": "RandomSampler",
    "gp": "GPSampler",
    "cmaes": "CmaEsSampler",
    "grid": "GridSampler",
    "bruteforce": "BruteForceSampler",
    "qmc": "QMCSampler",
    "nsgaii": "NSGAIISampler",
    "nsgaiii": "NSGAIIISampler",
}
PRUNER_CLASSES = {
    "none": "NopPruner",
    "median": "MedianPruner",
    "percentile": "PercentilePruner",
    "wilcoxon": "WilcoxonPruner",
    "hyperband": "HyperbandPruner",
    "successive_halving": "SuccessiveHalvingPruner",
    "threshold": "ThresholdPruner",
    "patient": "PatientPruner",
}
REMOVED = {  # names hydra-optuna-sweeper still lists: what to write instead
    "motpe": "the motpe sampler was removed in Optuna 4.0: use hydra/sweeper/sampler=tpe "
    "(TPESampler handles several objectives)",
}
MULTI_OBJECTIVE = ("tpe", "random", "nsgaii", "nsgaiii", "gp", "grid", "bruteforce", "qmc")
# the keyword arguments the config groups declare (null: Optuna's default), every sampler's in
# every node, so `hydra.sweeper.sampler.name=cmaes hydra.sweeper.sampler.sigma0=0.5` composes
SAMPLER_KEYS = (
    "seed",
    "n_startup_trials",
    "multivariate",
    "group",
    "constant_liar",
    "consider_prior",
    "prior_weight",
    "consider_magic_clip",
    "consider_endpoints",
    "n_ei_candidates",
    "warn_independent_sampling",
    "x0",
    "sigma0",
    "independent_sampler",
    "consider_pruned_trials",
    "use_separable_cma",
    "with_margin",
    "lr_adapt",
    "source_trials",
    "population_size",
    "mutation_prob",
    "crossover_prob",
    "swapping_prob",
    "constraints_func",
    "reference_points",
    "dividing_parameter",
    "deterministic_objective",
    "qmc_type",
    "scramble",
    "warn_asynchronous_seeding",
    "avoid_premature_stop",
)
PRUNER_KEYS = (
    "p_threshold",
    "n_startup_steps",
    "n_startup_trials",
    "n_warmup_steps",
    "interval_steps",
    "n_min_trials",
    "percentile",
    "min_resource",
    "max_resource",
    "reduction_factor",
    "min_early_stopping_rate",
    "bootstrap_count",
    "lower",
    "upper",
    "patience",
    "min_delta",
    "wrapped_pruner",
)
_OWN = ("name", "_target_", "_partial_")


@dataclass(frozen=True)
class Choice:
    """A checked sampler or pruner: its short name ("" for a class seedhp has no name for),
    the class's dotted path, and the keyword arguments given (nulls left out)."""

    name: str
    target: str
    kwargs: dict[str, Any] = field(default_factory=dict)
    kind: str = "sampler"  # or "pruner"

    @property
    def seed(self) -> int | None:
        seed = self.kwargs.get("seed")
        return None if seed is None else int(seed)

    @property
    def label(self) -> str:
        return self.name or self.target.rsplit(".", 1)[-1]


def sampler_choice(conf: Mapping[str, Any] | str | None) -> Choice:
    return _choice(conf, "sampler", "optuna.samplers", SAMPLER_CLASSES, "tpe")


def pruner_choice(conf: Mapping[str, Any] | str | None) -> Choice:
    return _choice(conf, "pruner", "optuna.pruners", PRUNER_CLASSES, "none")


def _choice(
    conf: Mapping[str, Any] | str | None,
    what: str,
    module: str,
    classes: Mapping[str, str],
    default: str,
) -> Choice:
    key = f"hydra.sweeper.{what}"
    where = f"{key}.name"
    if isinstance(conf, str):  # hydra.sweeper.sampler=random: the short name as a value
        conf, where = {"name": conf}, key
    conf = dict(conf or {})
    name, target = conf.get("name"), conf.get("_target_")
    if name is not None:  # the short form wins: it is what a user sets on the command line
        if name in REMOVED:
            raise ConfigError(where, name, REMOVED[name])
        if name not in classes:
            raise ConfigError(
                where,
                name,
                f"allowed: {', '.join(classes)}, chosen with hydra/sweeper/{what}=<name>",
            )
        target = f"{module}.{classes[name]}"
    elif target is None:
        name, target = default, f"{module}.{classes[default]}"
    elif target.endswith("raise_motpe_removed"):  # hydra-optuna-sweeper's motpe node
        raise ConfigError(f"{key}._target_", target, REMOVED["motpe"])
    cls = _class(f"{key}._target_", str(target), what)
    short = next((n for n, c in classes.items() if cls.__name__ == c), "")
    kwargs = {k: v for k, v in conf.items() if k not in _OWN and v is not None}
    takes = [
        p.name
        for p in inspect.signature(cls).parameters.values()
        if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)
    ]
    if short == "grid":
        takes.remove("search_space")  # from the search space (hydra.sweeper.params)
    for k, v in kwargs.items():
        if k not in takes:
            raise ConfigError(
                f"{key}.{k}",
                v,
                f"not an argument of {cls.__name__} (it takes: {', '.join(takes) or 'none'})",
            )
    return Choice(short, f"{module}.{cls.__name__}" if short else str(target), kwargs, what)


def _class(key: str, target: str, kind: str) -> type:
    """The class `target` names, checked to be an Optuna sampler (pruner)."""
    import optuna

    base = optuna.samplers.BaseSampler if kind == "sampler" else optuna.pruners.BasePruner
    path, _, attr = target.rpartition(".")
    try:
        cls = getattr(importlib.import_module(path), attr) if path else None
    except (ImportError, AttributeError, ValueError):
        cls = None
    if not (isinstance(cls, type) and issubclass(cls, base)):
        example = (
            "optuna.samplers.TPESampler" if kind == "sampler" else "optuna.pruners.MedianPruner"
        )
        raise ConfigError(key, target, f"not an Optuna {kind} class, e.g. {example}")
    return cls


def accepts(choice: Choice, keyword: str) -> bool:
    """Whether the chosen class takes `keyword` (TPESampler takes n_startup_trials)."""
    cls = _class(f"hydra.sweeper.{choice.kind}._target_", choice.target, choice.kind)
    return keyword in inspect.signature(cls).parameters


def build(choice: Choice, **extra: Any) -> Any:
    """The Optuna object: `extra` (GridSampler's search_space) beside the given arguments;
    a nested `{_target_: ...}` (an independent sampler, a wrapped pruner) built the same way."""
    cls = _class(f"hydra.sweeper.{choice.kind}._target_", choice.target, choice.kind)
    kwargs = {k: _nested(v) for k, v in choice.kwargs.items()}
    try:
        return cls(**extra, **kwargs)
    except (TypeError, ValueError) as err:
        raise ConfigError(
            f"hydra.sweeper.{choice.kind}",
            choice.label,
            f"{cls.__name__} refused its arguments ({err})",
        ) from None


def _nested(value: Any) -> Any:
    if isinstance(value, Mapping) and "_target_" in value:
        from hydra.utils import instantiate

        return instantiate(dict(value))
    return value


def sampler_of(choice: Choice, space: SearchSpace) -> optuna.samplers.BaseSampler:
    """The study's sampler (GridSampler given the search space's values); with a seed, its
    random draws for trial n come from (seed, n) alone (seeded_per_trial)."""
    from seedhp.sweep.space import grid

    extra = {"search_space": grid(space)} if choice.name == "grid" else {}
    sampler = build(choice, **extra)
    return sampler if choice.seed is None else seeded_per_trial(sampler, choice.seed)


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
    import optuna
    from optuna.samplers._lazy_random_state import LazyRandomState

    found: list[Any] = []
    for value in vars(obj).values():
        if isinstance(value, LazyRandomState):
            found.append(value)
        elif isinstance(value, optuna.samplers.BaseSampler) and depth < 3:
            found += _random_states(value, depth + 1)
    return found
