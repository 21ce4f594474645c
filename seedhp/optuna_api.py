"""seedhp without Hydra: the seed as a hyperparameter for plain Optuna and PyTorch code.

    import optuna, seedhp, torch

    def objective(trial: optuna.Trial, seed: int) -> float:
        lr = trial.suggest_float("lr", 1e-4, 0.3, log=True)   # Optuna's own suggest_*
        torch.manual_seed(seed)                                # seedhp seeds nothing itself
        ...
        return val_acc

    study = seedhp.optimize(objective, n_trials=20, strategy="averaged", seeds_per_trial=5,
                            storage="sqlite:///outputs/optuna.db", study_name="mlp")
    seedhp.report(study)

A study is a loop of ask -> seed-runs -> tell until `n_trials` trials of the study have
finished, in every process sharing its storage; its strategies are the Hydra sweeper's
(seedhp.sweep.study):

- tuned: the seed is one more searched parameter, `seed`, categorical over `seeds`; seedhp
  suggests it first, before the objective runs, and passes it in. A trial is one seed-run.
- averaged: a trial is one configuration on the first `seeds_per_trial` seeds of `seeds`, in
  that order, every trial the same seeds; each seed's value is reported at its position in
  the pool (trial.report(value, step=i)), so optuna.pruners.WilcoxonPruner stops a
  configuration already worse than the best between seeds; the trial's value is `aggregate`.
- fixed: every trial runs the first seed of `seeds` (the baseline Bethard calls risky).
- none: objective(trial), no seed and no MLflow record: a plain Optuna study.

Before it calls the objective seedhp asks for the parameters every finished trial of the study
has, in the order the objective suggested them (the seed first), as the Hydra sweeper asks for
its declared space: the objective's own suggest_* calls return them, and seedhp knows the
configuration before it trains, so a (configuration, seed) pair that already has a finished
seed-run, in this study or in the MLflow experiment, is reused, not trained again. The first
trial of a new study teaches it the space.

Every seed is an MLflow seed-run nested under the study's one parent run, with the tags every
seedhp seed-run has (seedhp.job.record) and MLflow's active run while the objective runs: its
own `mlflow.log_metric("val_loss", v, step=epoch)` lands there. `seedhp.report_epoch(epoch,
value)` reports to the trial's pruner (tuned and fixed) and raises seedhp.Pruned when it stops
the trial. Nothing here imports torch or Hydra; MLflow is imported when a study starts.
"""

from __future__ import annotations

import contextlib
import hashlib
import inspect
import json
import numbers
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import optuna

from seedhp.errors import ConfigError
from seedhp.job.values import check_seed
from seedhp.optuna_loop import DEFAULT_METRIC, Objective, Settings, default_store, run
from seedhp.stats import aggregate as aggregates
from seedhp.sweep.samplers import PRUNER_CLASSES, SAMPLER_CLASSES

__all__ = ["optimize", "report"]

STRATEGIES = ("tuned", "averaged", "fixed", "none")


# ----------------------------------------------------------------------------------------------
# The public functions


def optimize(
    objective: Objective,
    *,
    n_trials: int,
    strategy: str = "tuned",
    seeds: Iterable[int] = range(0, 1000),
    seeds_per_trial: int = 5,
    aggregate: str = "mean",
    sampler: optuna.samplers.BaseSampler | None = None,
    sampler_seed: int | None = None,
    pruner: optuna.pruners.BasePruner | None = None,
    direction: str = "maximize",
    storage: str | optuna.storages.BaseStorage | None = None,
    study_name: str | None = None,
    tracking_uri: str | None = None,
    experiment: str = "seedhp",
    objective_key: str | None = None,
    max_failure_rate: float = 0.5,
) -> optuna.Study:
    """Optimise `objective(trial, seed)` with the seed as a hyperparameter; returns the study.

    Args:
        objective: `objective(trial, seed)` returns a float, or a dict of floats with
            `objective_key` naming the one to optimise (all of them become metrics of the
            seed-run). It suggests with Optuna's own `trial.suggest_*`, seeds what it uses
            from `seed` (seedhp seeds no generator), and may log to MLflow: its seed-run is
            the active run. With strategy="none" it is called as `objective(trial)`.
        n_trials: the finished (complete or pruned) trials the study ends with, counted over
            every process and every run of it: calling again with the same `study_name` and
            `storage` tops the study up to n_trials, it does not run n_trials more.
        strategy: "tuned" (the seed searched), "averaged" (the same first `seeds_per_trial`
            seeds for every trial), "fixed" (the first seed only) or "none" (no seed).
        seeds: the seed pool (ints >= 0): tuned searches it, averaged and fixed take its first.
        seeds_per_trial: averaged: seeds per trial.
        aggregate: averaged: a trial's value from its seeds' (mean, median, iqm, min).
        sampler: an Optuna sampler (default TPESampler()).
        sampler_seed: reseed the sampler before each trial from (sampler_seed, trial number),
            as the Hydra sweeper does with hydra.sweeper.sampler.seed: a resumed or shared
            study repeats nothing one process would not (seedhp.sweep.samplers).
        pruner: an Optuna pruner (default none). Averaged trials report each seed's value
            (WilcoxonPruner); tuned and fixed ones what `seedhp.report_epoch` reports.
        direction: "maximize" or "minimize".
        storage: None (in memory, this process's), an Optuna storage URL or object; several
            processes sharing one run trials of one study.
        study_name: default: derived from the objective's name, the strategy and its seeds.
        tracking_uri: the MLflow store (default sqlite:///<cwd>/outputs/mlflow.db).
        experiment: the MLflow experiment.
        objective_key: the returned dict's value to optimise, and the metric's name (default
            "value" for a float return).
        max_failure_rate: stop (RuntimeError) once more than this share of the trials this
            process ran failed (counted as 5 until 5 have run); 1: failed trials count
            towards n_trials instead.

    Bad input is one ConfigError (a ValueError) before any trial. A failing seed-run fails
    its trial, recorded, and the study goes on.

    Example:
        >>> import seedhp
        >>> def objective(trial, seed):
        ...     x = trial.suggest_float("x", -1.0, 1.0)
        ...     return -(x**2) + 0.01 * (seed % 7)
        >>> study = seedhp.optimize(objective, n_trials=4, strategy="averaged",
        ...                         seeds_per_trial=3)  # doctest: +SKIP
        >>> study.best_trial.user_attrs["seed_scores"]  # doctest: +SKIP
        {'0': -0.21, '1': -0.2, '2': -0.19}
    """
    s = _settings(
        objective,
        n_trials,
        strategy,
        seeds,
        seeds_per_trial,
        aggregate,
        sampler,
        pruner,
        direction,
        storage,
        study_name,
        objective_key,
        max_failure_rate,
    )
    if sampler_seed is not None:
        check_seed(sampler_seed, "sampler_seed")
    return run(s, objective, sampler, sampler_seed, pruner, tracking_uri, experiment)


def report(
    study_or_run_id: optuna.Study | str,
    *,
    out_dir: str | Path | None = None,
    tracking_uri: str | None = None,
    storage: str | None = None,
    experiment: str | None = None,
    log_artifacts: bool = True,
) -> Path:
    """Write the seed report of a study or sweep (`seedhp report`'s), return its report.html.

    Args:
        study_or_run_id: an optuna.Study seedhp ran, a study's name (with `storage`), or the
            MLflow parent run id of any seedhp study or sweep.
        out_dir: the report directory (default outputs/reports/<parent run id>).
        tracking_uri: the MLflow store; default: the one the study recorded, else
            sqlite:///<cwd>/outputs/mlflow.db.
        storage: the Optuna storage of a study given by name.
        experiment: the MLflow experiment; default: the study's, else "seedhp".
        log_artifacts: also log the report as the parent run's `report/` artifacts.

    Example:
        >>> study = seedhp.optimize(objective, n_trials=10, strategy="averaged")  # doctest: +SKIP
        >>> seedhp.report(study)  # doctest: +SKIP
        PosixPath('/home/me/outputs/reports/3f2a.../report.html')
    """
    from seedhp.job.tracking import Tracker
    from seedhp.job.trust import safe_run_id
    from seedhp.report import Options, build_report

    key = "study_or_run_id"
    recorded_uri: str | None = None
    recorded_experiment: str | None = None
    if isinstance(study_or_run_id, optuna.Study):
        attrs = study_or_run_id.user_attrs
        parent = attrs.get("mlflow_parent_run_id")
        if not parent:
            raise ConfigError(
                key,
                study_or_run_id.study_name,
                "the study has no MLflow parent run (seedhp.optimize records one unless "
                "strategy='none', which has no seed statistics)",
            )
        recorded_uri, recorded_experiment = (
            attrs.get("mlflow_tracking_uri"),
            attrs.get("mlflow_experiment"),
        )
    elif isinstance(study_or_run_id, str) and storage is not None:
        from seedhp.report.collect import study_parent

        try:
            found = study_parent(str(_storage_url(storage)), study_or_run_id)
        except ConfigError as err:
            raise ConfigError(key, err.value, err.allowed) from None
        parent, recorded_uri, recorded_experiment = (
            found.run_id,
            found.tracking_uri,
            found.experiment,
        )
    elif isinstance(study_or_run_id, str):
        parent = safe_run_id(study_or_run_id, key)
    else:
        raise ConfigError(
            key,
            type(study_or_run_id).__name__,
            "an optuna.Study, a study's name with storage=..., or an MLflow parent run id",
        )
    uri = _study_store(tracking_uri, recorded_uri)
    tracker = Tracker(uri, experiment or recorded_experiment or "seedhp")
    writable = tracker.read_only() is None
    if writable:
        tracker.reap()
    out = Path(out_dir) if out_dir is not None else Path("outputs/reports") / safe_run_id(parent)
    return build_report(
        tracker,
        str(parent),
        out.resolve(),
        Options(),
        log_artifacts=log_artifacts and writable,
        key=key,
    )


def _study_store(given: str | None, recorded: str | None) -> str:
    """tracking_uri, else the store the study recorded (seedhp.report.collect.study_store)."""
    from seedhp.report.collect import study_store

    return study_store(given, recorded, default_store(), "tracking_uri", "give tracking_uri=...")


# ----------------------------------------------------------------------------------------------
# The arguments, checked before anything is opened


def _settings(
    objective: Objective,
    n_trials: Any,
    strategy: Any,
    seeds: Any,
    seeds_per_trial: Any,
    aggregate: Any,
    sampler: Any,
    pruner: Any,
    direction: Any,
    storage: Any,
    study_name: Any,
    objective_key: Any,
    max_failure_rate: Any,
) -> Settings:
    """Every argument checked: one ConfigError (key=value: what is allowed) for bad input."""
    if strategy not in STRATEGIES:
        raise ConfigError("strategy", strategy, f"allowed: {', '.join(STRATEGIES)}")
    if not callable(objective):
        raise ConfigError("objective", type(objective).__name__, "a function of (trial, seed)")
    _check_signature(objective, strategy)
    if isinstance(n_trials, bool) or not isinstance(n_trials, int) or n_trials < 1:
        raise ConfigError("n_trials", n_trials, "an integer >= 1")
    if direction not in ("maximize", "minimize"):
        raise ConfigError("direction", direction, "allowed: maximize, minimize")
    if aggregate not in aggregates.AGGREGATES:
        raise ConfigError("aggregate", aggregate, f"allowed: {', '.join(aggregates.AGGREGATES)}")
    if objective_key is not None and (not isinstance(objective_key, str) or not objective_key):
        raise ConfigError("objective_key", objective_key, "the name of a returned value")
    rate = max_failure_rate
    if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not 0 <= rate <= 1:
        raise ConfigError("max_failure_rate", rate, "a number in [0, 1]")
    if sampler is not None and not isinstance(sampler, optuna.samplers.BaseSampler):
        raise ConfigError(
            "sampler",
            type(sampler).__name__,
            "an Optuna sampler, e.g. optuna.samplers.TPESampler()",
        )
    if pruner is not None and not isinstance(pruner, optuna.pruners.BasePruner):
        raise ConfigError(
            "pruner", type(pruner).__name__, "an Optuna pruner, e.g. optuna.pruners.MedianPruner()"
        )
    pruner_label = _short_name(pruner, PRUNER_CLASSES, "none")
    if pruner_label == "wilcoxon" and strategy != "averaged":
        raise ConfigError(
            "pruner",
            "WilcoxonPruner",
            "it compares a trial's per-seed values with the best trial's: it needs "
            "strategy='averaged'",
        )
    pool = _seed_pool(seeds) if strategy != "none" else ()
    if strategy == "averaged":
        k = seeds_per_trial
        if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= len(pool):
            raise ConfigError(
                "seeds_per_trial", k, f"an integer from 1 to the {len(pool)} seeds of `seeds`"
            )
        pool = pool[:k]
    elif strategy == "fixed":
        pool = pool[:1]
    name = _objective_name(objective)
    if study_name is not None and (not isinstance(study_name, str) or not study_name):
        raise ConfigError("study_name", study_name, "a non-empty string, or None")
    return Settings(
        name=study_name or _default_name(name, strategy, pool),
        storage=_storage_url(storage),
        strategy=strategy,
        seeds=pool,
        aggregate=aggregate,
        direction=direction,
        n_trials=n_trials,
        metric=objective_key or DEFAULT_METRIC,
        objective_key=objective_key,
        max_failure_rate=float(rate),
        objective_name=name,
        objective_code=_objective_code(objective),
        sampler=_short_name(sampler, SAMPLER_CLASSES, "tpe"),
        pruner=pruner_label,
        epochs_pruned=strategy in ("tuned", "fixed") and pruner_label != "none",
    )


def _check_signature(objective: Objective, strategy: str) -> None:
    """seedhp calls objective(trial, seed=...), or objective(trial) for strategy='none'."""
    try:
        signature = inspect.signature(objective)
    except (TypeError, ValueError):  # a builtin or C callable: it is called as it is
        return
    try:
        if strategy == "none":
            signature.bind(None)
        else:
            signature.bind(None, seed=0)
    except TypeError:
        name = getattr(objective, "__qualname__", type(objective).__name__)
        shown = f"{name}({', '.join(signature.parameters)})"
        if strategy == "none":
            raise ConfigError(
                "objective",
                shown,
                "strategy='none' calls objective(trial): give its other parameters defaults",
            ) from None
        raise ConfigError(
            "objective",
            shown,
            f"strategy={strategy!r} calls objective(trial, seed=...): give it a `seed` "
            "parameter (def objective(trial, seed): ...), or use strategy='none'",
        ) from None


def _seed_pool(seeds: Any) -> tuple[int, ...]:
    if isinstance(seeds, (str, bytes)) or not isinstance(seeds, Iterable):
        raise ConfigError("seeds", seeds, "an iterable of seeds (ints >= 0), e.g. range(0, 1000)")
    pool = tuple(  # NumPy's integers too
        int(s) if isinstance(s, numbers.Integral) and not isinstance(s, bool) else s for s in seeds
    )
    if not pool:
        raise ConfigError("seeds", seeds, "the seed pool is empty")
    for s in pool:
        check_seed(s, "seeds")
    if len(set(pool)) != len(pool):
        twice = next(s for s in pool if pool.count(s) > 1)
        raise ConfigError("seeds", seeds, f"the seed pool lists seed {twice} twice")
    return pool


def _short_name(obj: Any, classes: Mapping[str, str], default: str) -> str:
    """A sampler's (pruner's) name as the Hydra sweeper tags it: seedhp's short name (tpe,
    random, median, wilcoxon, ...) or the class's own."""
    if obj is None:
        return default
    cls = type(obj).__name__
    return next((short for short, c in classes.items() if c == cls), cls)


def _objective_name(objective: Objective) -> str:
    """module:qualname; a script run as __main__ is named by its file."""
    module = getattr(objective, "__module__", None) or "?"
    if module == "__main__":
        with contextlib.suppress(TypeError, OSError):
            module = Path(inspect.getfile(objective)).stem
    qualname = getattr(objective, "__qualname__", None) or type(objective).__qualname__
    return f"{module}:{qualname}"


def _objective_code(objective: Objective) -> str:
    """A hash of the objective's source (or, without one, its bytecode and constants), part of
    every config_id: a finished seed-run of an objective since edited is not reused as if it
    were the same configuration. Code the objective calls is not covered (docs/plain-optuna)."""
    target = (
        objective
        if inspect.isfunction(objective) or inspect.ismethod(objective)
        else type(objective)
    )
    try:
        text = inspect.getsource(target)
    except (TypeError, OSError):  # defined at a prompt or in `python -c`: its bytecode
        code = getattr(objective, "__code__", None)
        if code is None:
            return ""
        text = code.co_code.hex() + repr(code.co_consts)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def _default_name(objective: str, strategy: str, seeds: Sequence[int]) -> str:
    """The same call names the same study, so running it again resumes it."""
    blob = json.dumps([objective, strategy, list(seeds) if strategy != "tuned" else []])
    short = objective.rsplit(":", 1)[-1].rsplit(".", 1)[-1]
    return f"seedhp-{short}-{strategy}-{hashlib.sha256(blob.encode()).hexdigest()[:8]}"


def _storage_url(storage: Any) -> str | optuna.storages.BaseStorage | None:
    """None (in memory), a storage URL (a relative SQLite path made absolute, so every process
    names the same file) or an Optuna storage object."""
    if storage is None or isinstance(storage, optuna.storages.BaseStorage):
        return storage
    if not isinstance(storage, str) or not storage:
        raise ConfigError(
            "storage", type(storage).__name__, "None, a URL (sqlite:///optuna.db) or a storage"
        )
    prefix = "sqlite:///"
    if storage.startswith(prefix) and not storage[len(prefix) :].startswith(("/", "~")):
        path = storage[len(prefix) :]
        if path and path != ":memory:":
            storage = f"{prefix}{Path(path).resolve()}"
    return storage
