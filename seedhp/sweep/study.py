"""Optuna studies with the seed as a hyperparameter: the work behind `hydra/sweeper=optuna`.

A study is a loop of `ask -> launch -> tell` until `n_trials` trials of the study have finished
(in any process sharing its storage). What one trial trains depends on the seed strategy:

- tuned: the seed is one more searched dimension; a trial is one seed-run.
- averaged: a trial is one configuration on the first `seeds_per_trial` seeds of a pool every
  trial shares, launched as one batch; each seed's score is reported at its pool position, so a
  pruner (WilcoxonPruner) can stop a configuration that is already worse than the best one.
- fixed: every trial uses the same seed (the baseline Bethard calls risky).

A (configuration, seed) pair that already has a finished seed-run in the study is never trained
again: the trial reuses its score and says so in its user attributes.
"""

from __future__ import annotations

import contextlib
import datetime
import hashlib
import json
import logging
import math
import threading
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import optuna
import yaml
from hydra.core.utils import JobReturn, JobStatus
from hydra.plugins.launcher import Launcher
from hydra.types import HydraContext
from omegaconf import DictConfig, OmegaConf
from optuna.trial import FrozenTrial, Trial, TrialState

from seedhp.errors import ConfigError, exit_on_config_error
from seedhp.job.hooks import epoch_reports
from seedhp.job.locks import sqlite_lock
from seedhp.job.owner import gone, this_process
from seedhp.job.tracking import Tracker, metric
from seedhp.job.urls import redact
from seedhp.stats.aggregate import AGGREGATES, aggregate
from seedhp.stats.summary import maximize
from seedhp.sweep import at_end
from seedhp.sweep.app import App, stop_on_config_error
from seedhp.sweep.space import SearchSpace, grid, merge, parse_space, seed_pool
from seedhp.sweep.tracked import RunContext, Target

log = logging.getLogger("seedhp")
# seedhp records trial heartbeats itself around ask/tell, which Optuna only expects from
# Study.optimize; its stale-trial check is still flagged experimental.
warnings.filterwarnings("ignore", "Heartbeat of storage is supposed to be used with")
warnings.filterwarnings(
    "ignore",
    r".*(heartbeat_interval|grace_period|fail_stale_trials|heartbeat_stale_trial_callback)",
    category=optuna.exceptions.ExperimentalWarning,
)

STRATEGIES = ("tuned", "averaged", "fixed")
SAMPLERS = ("tpe", "random", "gp", "cmaes", "grid", "bruteforce", "qmc")
PRUNERS = ("none", "median", "wilcoxon", "hyperband")
FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)
OWNER = "seedhp.owner"  # trial user attribute: host:pid:start of the process running it
PARENT_GRACE_SECONDS = 2.0  # wait for other processes' parent runs before choosing one


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


@dataclass
class TrialOutcome:
    """What a trial's seed-runs gave; `scores` by seed, in the order they were reported."""

    scores: dict[int, float] = field(default_factory=dict)
    run_ids: dict[int, str] = field(default_factory=dict)
    reused: list[int] = field(default_factory=list)
    errors: dict[int, str] = field(default_factory=dict)
    pruned: bool = False
    pruned_epoch: int | None = None  # tuned/fixed: the epoch a seed-run was stopped after


# ----------------------------------------------------------------------------------------------
# Settings


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


# ----------------------------------------------------------------------------------------------
# Optuna objects


def make_sampler(s: StudySettings) -> optuna.samplers.BaseSampler:
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
    return samplers[s.sampler]()


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


def open_study(s: StudySettings, attempts: int = 10) -> optuna.Study:
    """Create the study or load it (another process's, or an earlier run of this command).

    Workers that start together on a new database race to create Optuna's tables and the
    study: on SQLite a lock file orders them; on a server database the loser's insert fails
    with a unique-key violation, and it tries again, then finds what the winner created."""
    for attempt in range(1, attempts + 1):
        try:
            with sqlite_lock(s.storage):
                return _open_study(s)
        except _Raced as err:
            if attempt == attempts:
                raise ConfigError(
                    "hydra.sweeper.storage",
                    redact(s.storage),
                    f"cannot open this Optuna storage ({_first_line(err.__cause__ or err)})",
                ) from None
            time.sleep(0.2 * attempt)
    raise AssertionError("unreachable")


class _Raced(Exception):
    """Another process created the same tables or study at the same moment."""


def _open_study(s: StudySettings) -> optuna.Study:
    from sqlalchemy.exc import IntegrityError

    try:
        if s.storage.startswith("sqlite:///"):
            Path(s.storage[len("sqlite:///") :]).expanduser().parent.mkdir(
                parents=True, exist_ok=True
            )
        storage = optuna.storages.RDBStorage(
            s.storage,
            heartbeat_interval=s.heartbeat_seconds,
            grace_period=6 * s.heartbeat_seconds,
            heartbeat_stale_trial_callback=lambda _study, trial: _LOST.append(trial.number),
            engine_kwargs={"connect_args": {"timeout": 60}}
            if s.storage.startswith("sqlite")
            else {},
        )
        return optuna.create_study(
            study_name=s.name,
            storage=storage,
            sampler=make_sampler(s),
            pruner=make_pruner(s),
            direction=s.direction,  # type: ignore[arg-type]
            load_if_exists=True,
        )
    except ConfigError:
        raise
    except IntegrityError as err:
        raise _Raced() from err
    except ValueError as err:  # a loaded study with another direction
        raise ConfigError("hydra.sweeper.study_name", s.name, f"{err}") from None
    except ImportError as err:
        raise ConfigError(
            "hydra.sweeper.storage",
            redact(s.storage),
            f"its database driver is not installed ({err}); for PostgreSQL: psycopg[binary]",
        ) from None
    except Exception as err:  # sqlalchemy ArgumentError/OperationalError
        raise ConfigError(
            "hydra.sweeper.storage",
            redact(s.storage),
            f"cannot open this Optuna storage ({_first_line(err)})",
        ) from None


def _first_line(err: BaseException) -> str:
    first = str(err).strip().splitlines()[0] if str(err).strip() else ""
    return f"{type(err).__name__}: {first}"


# ----------------------------------------------------------------------------------------------
# The sweep


@dataclass
class _Context:
    hydra_context: HydraContext
    config: DictConfig
    launcher: Launcher
    app: App
    settings: StudySettings
    study: optuna.Study
    tracker: Tracker
    parent: str
    sweep_dir: Path
    returns: list[JobReturn] = field(default_factory=list)
    asked: int = 0  # trials this process ran
    failed: int = 0  # ... of which failed (an error, or every seed diverged)


def optuna_sweep(
    hydra_context: HydraContext,
    config: DictConfig,
    launcher: Launcher,
    sweeper: Mapping[str, Any],
    arguments: list[str],
    app: App,
) -> list[Sequence[JobReturn]]:
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # seedhp prints a line per trial
    with exit_on_config_error():
        space = parse_space(merge(dict(sweeper.get("params") or {}), arguments), app.seed_key)
        job_settings, job_seed = _check_space(hydra_context, config, space, app)
        settings = study_settings(sweeper, space, job_settings, job_seed)
        study = open_study(settings)
        tracker = Tracker(job_settings.tracking.uri, job_settings.tracking.experiment)
        tracker.reap()
    sweep_dir = Path(str(config.hydra.sweep.dir))
    sweep_dir.mkdir(parents=True, exist_ok=True)
    OmegaConf.save(config, sweep_dir / "multirun.yaml")
    parent = study_parent(tracker, study, settings, job_settings)
    ctx = _Context(
        hydra_context, config, launcher, app, settings, study, tracker, parent, sweep_dir
    )
    log.info(
        "study %s (%s, %s %s, %s sampler, %s pruner) in %s: %d of %d trials finished",
        settings.name,
        settings.strategy,
        settings.direction,
        settings.objective,
        settings.sampler,
        settings.pruner,
        redact(settings.storage),
        _count(ctx, FINISHED),
        settings.n_trials,
    )
    if (
        settings.strategy == "averaged"
        and settings.pruner != "none"
        and hasattr(launcher, "packer")
    ):
        log.info(
            "%s pruner with hydra/launcher=packed: a trial's seeds train as one pack, so pruning "
            "marks a trial but saves no seed-runs; hydra/launcher=seedhp trains them one by one",
            settings.pruner,
        )
    status, last = "FAILED", False
    try:
        while (trial := _next_trial(ctx)) is not None:
            run_trial(ctx, trial)
            if _too_many_failures(ctx):
                break
        else:
            status = "FINISHED"
            last = _ran_the_last_trial(ctx)
            if last:  # once per study, not once per process sharing it
                at_end.reseed(
                    ctx.tracker,
                    ctx.parent,
                    job_settings,
                    launcher,
                    first_job_idx=(len(study.trials) + 1) * len(settings.seeds),
                )
    except KeyboardInterrupt:
        status = "KILLED"
        raise
    finally:
        print(_finish(ctx, status), flush=True)
    if status != "FINISHED":
        raise SystemExit(1)  # stopped on failures: the study did not complete
    if last and (path := at_end.report(ctx.tracker, ctx.parent, job_settings, sweep_dir)):
        print(f"Report: {path}", flush=True)
    return [ctx.returns]


def _ran_the_last_trial(ctx: _Context) -> bool:
    """Whether this process ran the study's highest-numbered finished trial: the one process
    of those sharing a study that writes its report."""
    finished = ctx.study.get_trials(deepcopy=False, states=FINISHED)
    if not finished:
        return False
    last = max(finished, key=lambda t: t.number)
    return last.user_attrs.get(OWNER) == this_process()


def _check_space(
    hydra_context: HydraContext, config: DictConfig, space: SearchSpace, app: App
) -> tuple[Target, int]:
    """Compose and check a job at each end of every dimension before any trial runs."""
    searched = [d for d in space.dimensions if d.key != space.seed_key]
    base = [d.override(_ends(d)[0]) for d in searched]
    variants = [base]
    for i, d in enumerate(searched):
        for value in _ends(d)[1:]:
            variants.append([*base[:i], d.override(value), *base[i + 1 :]])
    first_settings: Target | None = None
    for variant in variants:
        cfg = hydra_context.config_loader.load_sweep_config(config, [*space.fixed, *variant])
        settings = app.target(cfg)
        first_settings = first_settings or settings
    assert first_settings is not None
    return first_settings, first_settings.seed


def _ends(d: Any) -> list[Any]:
    dist = d.distribution
    if isinstance(dist, optuna.distributions.CategoricalDistribution):
        return list(dist.choices)
    return [dist.low, dist.high]


def _too_many_failures(ctx: _Context) -> bool:
    """Failed trials (errors, divergence) do not count towards n_trials: a study whose trials
    keep failing would never end. Stop once more than max_failure_rate of this process's trials
    (5 at least) failed."""
    s = ctx.settings
    if ctx.asked >= 5 and ctx.failed > s.max_failure_rate * ctx.asked:
        log.error(
            "stopping: %d of the %d trials this process ran failed (more than "
            "hydra.sweeper.max_failure_rate=%g); see the trials' errors",
            ctx.failed,
            ctx.asked,
            s.max_failure_rate,
        )
        return True
    return False


def _next_trial(ctx: _Context) -> Trial | None:
    """Ask for a trial while fewer than n_trials have finished or are running in the study;
    wait for other processes' trials when the rest of the budget is theirs."""
    study, n = ctx.study, ctx.settings.n_trials
    live = (*FINISHED, TrialState.RUNNING)
    while True:
        _fail_stale_trials(ctx)
        if _count(ctx, FINISHED) >= n:
            return None
        if _count(ctx, live) >= n:
            time.sleep(1.0)  # another process holds the last trials; take over if it dies
            continue
        trial = study.ask(fixed_distributions=ctx.settings.space.distributions())
        trial.set_user_attr(OWNER, this_process())
        if _count(ctx, live) <= n:
            return trial
        # Other processes asked at the same moment: the lowest numbers keep the last places.
        numbers = sorted(t.number for t in study.get_trials(deepcopy=False, states=live))
        if numbers.index(trial.number) < n:
            return trial
        trial.set_user_attr("seedhp.surplus", True)
        _tell_study(study, trial, state=TrialState.FAIL)


def _tell_study(study: optuna.Study, trial: Trial | int, *args: Any, **kwargs: Any) -> None:
    """study.tell, tolerating GridSampler's and BruteForceSampler's `study.stop()` when their
    space is exhausted, which raises outside Study.optimize after the trial is stored."""
    try:
        study.tell(trial, *args, **kwargs)
    except RuntimeError as err:
        if "Study.stop" not in str(err):
            raise


def _count(ctx: _Context, states: Sequence[TrialState]) -> int:
    """Trials of the study in these states. Through the study's cached storage, which keeps
    finished trials in memory and reads only new or running ones from the database (Optuna's
    get_n_trials loads and parses every trial)."""
    return len(ctx.study.get_trials(deepcopy=False, states=tuple(states)))


_LOST: list[int] = []  # trials this process failed as stale (heartbeat_stale_trial_callback)


def _fail_stale_trials(ctx: _Context) -> None:
    """A trial left RUNNING by a process that is gone is failed, so it neither blocks nor
    counts: at once for a dead process on this host, after the heartbeat's grace period for a
    process elsewhere (Optuna's heartbeat). Its MLflow runs are marked failed and its
    configuration is queued again: the next trial asked for, by any process, re-runs it, reusing
    the seeds it had finished."""
    study = ctx.study
    optuna.storages.fail_stale_trials(study)
    while _LOST:
        _retry_lost(ctx, _LOST.pop(0))
    grace = 6 * ctx.settings.heartbeat_seconds
    now = datetime.datetime.now()
    for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        owner = str(t.user_attrs.get(OWNER, ""))
        if owner:
            if not gone(owner):
                continue  # alive, or on another host: Optuna's heartbeat check covers those
            why = f"was left running by process {owner}, which is gone"
        else:  # its process died between creating it and recording itself as its owner
            started = t.datetime_start or now
            if (now - started).total_seconds() < grace:
                continue
            why = f"has had no owner and no heartbeat for {grace} s"
        try:
            _tell_study(study, t.number, state=TrialState.FAIL)
        except optuna.exceptions.UpdateFinishedTrialError:
            continue  # another process sharing the study failed it first, and queued it again
        log.info("trial %d %s: marked failed", t.number, why)
        _retry_lost(ctx, t.number)


def _retry_lost(ctx: _Context, number: int) -> None:
    _interrupt_mlflow_runs(ctx, number)
    lost = ctx.study.get_trials(deepcopy=False)[number]
    if lost.params and not lost.user_attrs.get("seedhp.surplus"):
        ctx.study.enqueue_trial(lost.params, user_attrs={"seedhp.retry_of": number})
        log.info("trial %d's configuration is queued to run again", number)


def _interrupt_mlflow_runs(ctx: _Context, trial_number: int) -> None:
    study = ctx.settings.name
    for r in ctx.tracker.search(
        f"tags.`seedhp.study` = '{study}' and tags.`seedhp.trial` = '{trial_number}'"
    ):
        if r.info.status == "RUNNING":
            ctx.tracker.interrupt(
                r.info.run_id, f"trial {trial_number} was lost: its process stopped"
            )


# ----------------------------------------------------------------------------------------------
# One trial


def run_trial(ctx: _Context, trial: Trial) -> None:
    s = ctx.settings
    params = dict(trial.params)
    seeds = [int(params.pop(s.space.seed_key))] if s.strategy == "tuned" else list(s.seeds)
    key = config_key(s.space.fixed, params, ctx.settings.space)
    trial.set_user_attr("config_key", key)
    known = finished_seed_runs(ctx.study, key)
    outcome = TrialOutcome()
    steps = {seed: (s.seeds.index(seed) if s.strategy == "averaged" else 0) for seed in seeds}

    def record(seed: int, value: float, run_id: str | None) -> bool:
        """Report one seed's score; True when the trial should stop here. The score is stored
        on the trial at once, so a trial whose process dies keeps the seed-runs it finished."""
        outcome.scores[seed] = value
        if run_id:
            outcome.run_ids[seed] = run_id
        trial.set_user_attr("seed_scores", {str(k): v for k, v in outcome.scores.items()})
        if s.strategy == "averaged" and not math.isnan(value):
            trial.report(value, steps[seed])
            return trial.should_prune()
        return False

    to_train = []
    for seed in seeds:
        if seed in known:
            outcome.reused.append(seed)
            if record(seed, *known[seed]):
                outcome.pruned = True
                break
        else:
            to_train.append(seed)
    heartbeat = _Heartbeat(ctx.study, trial, s.heartbeat_seconds)
    try:
        if to_train and not outcome.pruned:
            _launch_seeds(ctx, trial, params, to_train, outcome, record)
    finally:
        heartbeat.stop()
    _tell(ctx, trial, params, seeds, outcome)


def _launch_seeds(
    ctx: _Context,
    trial: Trial,
    params: dict[str, Any],
    seeds: list[int],
    outcome: TrialOutcome,
    record: Callable[[int, float, str | None], bool],
) -> None:
    """The trial's seed-runs go to the launcher as one batch; after each one finishes its score
    is reported, and a launcher that supports it (seedhp's) stops the batch when pruned."""
    s = ctx.settings
    dims = {d.key: d for d in s.space.dimensions}
    base = [*s.space.fixed, *(dims[k].override(v) for k, v in params.items())]
    context = RunContext(ctx.parent, "trial", s.name, trial.number, s.strategy)
    jobs = ctx.app.jobs([[*base, f"{s.space.seed_key}={seed}"] for seed in seeds], context)

    def on_job_end(i: int, ret: JobReturn) -> bool:
        seed = seeds[i]
        if ret.status == JobStatus.COMPLETED:
            if record(seed, ctx.app.score(ret), None):
                outcome.pruned = True
                return False
        else:
            outcome.errors[seed] = f"{type(ret._return_value).__name__}: {ret._return_value}"
        return True

    def on_epoch(epoch: int, value: float) -> bool:  # tuned/fixed: one seed-run per trial
        trial.report(value, epoch)
        outcome.pruned = trial.should_prune()
        outcome.pruned_epoch = epoch
        return outcome.pruned

    epochs_pruned = s.strategy != "averaged" and s.pruner != "none"
    first_idx = trial.number * len(s.seeds if s.strategy == "averaged" else [0])
    with (
        ctx.app.watch(ctx.launcher, on_job_end, seeds) as supports_hook,
        epoch_reports(on_epoch) if epochs_pruned else contextlib.nullcontext(),
    ):
        returns = list(ctx.launcher.launch(jobs, initial_job_idx=first_idx))
    stop_on_config_error(returns)
    if not supports_hook:  # reports after the whole batch
        for i, ret in enumerate(returns):
            if not on_job_end(i, ret):
                break
    ctx.returns.extend(returns)
    mine = f"tags.`seedhp.study` = '{s.name}' and tags.`seedhp.trial` = '{trial.number}'"
    for run in ctx.tracker.search(mine):  # this trial's MLflow runs, by seed
        outcome.run_ids[int(run.data.tags["seed"])] = run.info.run_id


def _tell(
    ctx: _Context, trial: Trial, params: dict[str, Any], seeds: list[int], outcome: TrialOutcome
) -> None:
    s = ctx.settings
    ctx.asked += 1
    # seed_scores were stored seed by seed as they came; each attribute is one storage write
    trial.set_user_attr(  # seed -> MLflow run: from optuna-dashboard to MLflow
        "mlflow_run_ids", {str(x): outcome.run_ids[x] for x in seeds if x in outcome.run_ids}
    )
    if outcome.reused:
        trial.set_user_attr("reused_seeds", outcome.reused)
    if outcome.errors:
        trial.set_user_attr("errors", {str(k): v for k, v in outcome.errors.items()})
    values = [outcome.scores[x] for x in seeds if x in outcome.scores]
    shown = _show(params)
    reused = f", reused seed-runs of seeds {outcome.reused}" if outcome.reused else ""
    if outcome.errors:
        ctx.failed += 1
        _tell_study(ctx.study, trial, state=TrialState.FAIL)
        log.info(
            "trial %d  %s  FAILED: %s", trial.number, shown, "; ".join(outcome.errors.values())
        )
    elif outcome.pruned:
        _tell_study(ctx.study, trial, state=TrialState.PRUNED)
        if outcome.pruned_epoch is not None:
            log.info(
                "trial %d  %s  pruned after epoch %d (%s %.4f)",
                trial.number,
                shown,
                outcome.pruned_epoch,
                s.objective,
                values[-1],
            )
        else:
            log.info(
                "trial %d  %s  pruned after %d of %d seeds (%s %s)%s",
                trial.number,
                shown,
                len(values),
                len(seeds),
                s.objective,
                _fmt(values),
                reused,
            )
    else:
        value = aggregate(values, s.aggregate, s.maximize)
        if math.isnan(value):
            trial.set_user_attr("diverged", True)
            ctx.failed += 1
            _tell_study(ctx.study, trial, state=TrialState.FAIL)
            log.info(
                "trial %d  %s  diverged (%s %s)", trial.number, shown, s.objective, _fmt(values)
            )
            return
        _tell_study(ctx.study, trial, value)
        how = (
            f"{s.aggregate} of {len(values)} seeds"
            if s.strategy == "averaged"
            else f"seed {seeds[0]}"
        )
        log.info(
            "trial %d  %s  %s %.4f (%s)%s", trial.number, shown, s.objective, value, how, reused
        )


def _show(params: Mapping[str, Any]) -> str:
    return " ".join(
        f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in params.items()
    )


def _fmt(values: Sequence[float]) -> str:
    return "[" + ", ".join(f"{v:.4f}" for v in values) + "]"


def config_key(fixed: Sequence[str], params: Mapping[str, Any], space: SearchSpace) -> str:
    """A configuration within a study: its fixed overrides and searched values, not its seed."""
    dims = {d.key: d for d in space.dimensions}
    searched = sorted(dims[k].override(v) for k, v in params.items() if k != "seed")
    return json.dumps([sorted(fixed), searched])


def finished_seed_runs(study: optuna.Study, key: str) -> dict[int, tuple[float, str | None]]:
    """Seed -> (score, MLflow run id) of every finished seed-run of this configuration in the
    study: of finished trials, pruned ones included, and those a failed trial finished before
    it failed (its process killed, another seed raising)."""
    known: dict[int, tuple[float, str | None]] = {}
    for t in study.get_trials(deepcopy=False, states=(*FINISHED, TrialState.FAIL)):
        if t.user_attrs.get("config_key") != key:
            continue
        runs = t.user_attrs.get("mlflow_run_ids", {})
        for seed, value in t.user_attrs.get("seed_scores", {}).items():
            known.setdefault(int(seed), (float(value), runs.get(seed)))
    return known


class _Heartbeat:
    """Records the trial's heartbeat in the storage while its seed-runs train, so another
    process can tell a live trial from one whose process died elsewhere."""

    def __init__(self, study: optuna.Study, trial: Trial, interval: int) -> None:
        storage = study._storage
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        if hasattr(storage, "record_heartbeat"):
            trial_id = trial._trial_id

            def beat() -> None:
                while not self._stop.is_set():
                    storage.record_heartbeat(trial_id)
                    self._stop.wait(interval)

            self._thread = threading.Thread(target=beat, daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()


# ----------------------------------------------------------------------------------------------
# The study's MLflow parent run and its results


def study_parent(tracker: Tracker, study: optuna.Study, s: StudySettings, job: Target) -> str:
    """One MLflow parent run per study, found again by every process and every resumption."""
    mine = f"tags.`seedhp.kind` = 'study' and tags.`seedhp.study` = '{s.name}'"
    found = _earliest(tracker.search(mine))
    # where `seedhp report --study` finds the study's runs
    study.set_user_attr("mlflow_tracking_uri", redact(tracker.uri))
    study.set_user_attr("mlflow_experiment", tracker.experiment_name)
    if found is not None:
        tracker.reopen(found)
        study.set_user_attr("mlflow_parent_run_id", found)
        return found
    parent = tracker.start_run(
        f"study {s.name}",
        {
            "seedhp.kind": "study",
            "seedhp.study": s.name,
            "seedhp.strategy": s.strategy,
            "seedhp.storage": redact(s.storage),
            "seedhp.sampler": s.sampler,
            "seedhp.pruner": s.pruner,
            "seedhp.objective": s.objective,
            "seedhp.direction": s.direction,
        },
        parent_id=job.tracking.parent_run_id,
    )
    # Processes starting together may each have created one, and seen only their own: once
    # every creation is visible all agree on the earliest (start time, then id).
    time.sleep(PARENT_GRACE_SECONDS)
    winner = _earliest(tracker.search(mine)) or parent
    if winner != parent:  # another process created the study's parent at the same moment
        tracker.delete_run(parent)
    study.set_user_attr("mlflow_parent_run_id", winner)  # optuna-dashboard -> MLflow
    return winner


def _earliest(runs: Sequence[Any]) -> str | None:
    if not runs:
        return None
    first = min(runs, key=lambda r: (r.info.start_time, r.info.run_id))
    return str(first.info.run_id)


def results(ctx: _Context) -> dict[str, Any]:
    """optimization_results.yaml: what hydra-optuna-sweeper writes, plus the seeds."""
    study, s = ctx.study, ctx.settings
    out: dict[str, Any] = {
        "name": "optuna",
        "study_name": s.name,
        "storage": redact(s.storage),
        "seed_strategy": s.strategy,
        "direction": s.direction,
        "objective": s.objective,
        "finished_trials": _count(ctx, FINISHED),
        "pruned_trials": _count(ctx, (TrialState.PRUNED,)),
    }
    completed = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    if completed:
        best: FrozenTrial = study.best_trial
        out.update(
            {
                "best_trial": best.number,
                "best_value": best.value,
                "best_params": best.params,
                "best_seed_scores": {
                    int(k): v for k, v in best.user_attrs.get("seed_scores", {}).items()
                },
                "best_mlflow_run_ids": best.user_attrs.get("mlflow_run_ids", {}),
            }
        )
    return out


def _finish(ctx: _Context, status: str) -> str:
    s = ctx.settings
    res = results(ctx)
    path = ctx.sweep_dir / "optimization_results.yaml"
    path.write_text(yaml.safe_dump(res, sort_keys=False))
    ctx.tracker.log_artifact(ctx.parent, path)
    # named apart from the seed-runs' metrics (their best_val_acc is per epoch)
    metrics = [
        metric("study.finished_trials", res["finished_trials"]),
        metric("study.pruned_trials", res["pruned_trials"]),
    ]
    if "best_value" in res:
        metrics.append(metric(f"study.best_trial_{s.objective}", res["best_value"]))
    ctx.tracker.log(ctx.parent, metrics=metrics)
    done = res["finished_trials"] >= s.n_trials
    ctx.tracker.end_run(ctx.parent, status if status != "FINISHED" or done else "RUNNING")
    lines = [
        "",
        f"Study {s.name}: {res['finished_trials']} of {s.n_trials} trials finished "
        f"({res['pruned_trials']} pruned), storage {redact(s.storage)}",
    ]
    if "best_value" in res:
        params = _show(res["best_params"])
        lines.append(
            f"Best trial {res['best_trial']}: {s.objective} {res['best_value']:.4f}  {params}"
        )
        if s.strategy == "averaged":
            lines.append(
                "  per seed: "
                + ", ".join(f"seed {k}: {v:.4f}" for k, v in res["best_seed_scores"].items())
            )
    lines += [
        f"Results: {path}",
        f"MLflow: experiment '{ctx.tracker.experiment_name}', parent run {ctx.parent}",
        f"Browse: make ui, then {ctx.tracker.ui_url()}  |  make dashboard  "
        f"(optuna-dashboard {redact(s.storage)})"
        if ctx.tracker.uri.startswith("sqlite:")
        else f"Browse: {ctx.tracker.ui_url()}  |  optuna-dashboard {redact(s.storage)}",
    ]
    return "\n".join(lines)
