"""The loop behind seedhp.optimize (seedhp.optuna_api): ask, run the trial's seeds, tell.

The same steps as the Hydra sweeper's study (seedhp.sweep.study, study_storage, study_record),
for an objective that is a Python callable, without Hydra: the study opened or resumed (its
heartbeats, its stale trials failed and queued again), one MLflow parent run per study, a
seed-run per seed (seedhp.optuna_runs), a (configuration, seed) pair with a finished seed-run
reused, failed seed-runs recorded and the study going on, and at most n_trials finished trials
over every process sharing the study.
"""

from __future__ import annotations

import contextlib
import datetime
import hashlib
import json
import logging
import math
import numbers
import threading
import time
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import optuna
from optuna.distributions import BaseDistribution, CategoricalDistribution
from optuna.storages._heartbeat import BaseHeartbeat
from optuna.study._tell import _tell_with_warning
from optuna.trial import FrozenTrial, Trial, TrialState

from seedhp.errors import ConfigError
from seedhp.job import record
from seedhp.job.hooks import Pruned, SeedRunRef, epoch_reports, in_seed_run
from seedhp.job.identity import config_id
from seedhp.job.locks import sqlite_lock
from seedhp.job.owner import gone, this_process
from seedhp.job.signals import held_interrupts
from seedhp.job.urls import check_sqlite, redact, remember, scrub, sqlite_file
from seedhp.optuna_runs import ExperimentRead, active, end_run, latest_metrics, start_run
from seedhp.stats import aggregate as aggregates
from seedhp.stats.summary import test_metric_of
from seedhp.sweep.samplers import seeded_per_trial

if TYPE_CHECKING:
    from seedhp.job.tracking import Start, Tracker

log = logging.getLogger("seedhp")

DEFAULT_METRIC = "value"  # a float return's metric name, as Optuna calls it
SEED = "seed"  # a tuned trial's seed parameter
HEARTBEAT_SECONDS = 10  # a trial silent for 6x this in the storage is failed by other processes
FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)
OWNER = "seedhp.owner"  # trial user attribute: host:pid:start of the process running it
DONE = ("finished", "diverged")  # seed-runs the same configuration and seed would give again
PARENT_GRACE_SECONDS = 2.0  # a server storage: wait for other processes' parent runs

Objective = Callable[..., Any]  # (trial, seed) -> float | Mapping[str, float]; none: (trial)


@dataclass(frozen=True)
class Settings:
    name: str
    storage: str | optuna.storages.BaseStorage | None
    strategy: str
    seeds: tuple[int, ...]  # tuned: the choices; averaged: each trial's seeds; fixed: one
    aggregate: str
    direction: str
    n_trials: int
    metric: str  # the objective's MLflow metric: objective_key, or "value"
    objective_key: str | None
    max_failure_rate: float
    objective_name: str  # module:qualname, part of every config_id
    objective_code: str  # a hash of its source, part of every config_id (edited: new ids)
    sampler: str
    pruner: str
    epochs_pruned: bool  # tuned/fixed with a pruner: seedhp.report_epoch reports to it

    @property
    def maximize(self) -> bool:
        return self.direction == "maximize"

    @property
    def persistent(self) -> bool:
        return self.storage is not None


def run(
    s: Settings,
    objective: Objective,
    sampler: optuna.samplers.BaseSampler | None,
    sampler_seed: int | None,
    pruner: optuna.pruners.BasePruner | None,
    tracking_uri: str | None,
    experiment: str,
) -> optuna.Study:
    """seedhp.optimize, its arguments checked: open the study (and its MLflow parent run),
    run trials until it has n_trials finished ones, close the parent run."""
    sampler = sampler or optuna.samplers.TPESampler()
    if sampler_seed is not None:
        sampler = seeded_per_trial(sampler, sampler_seed)
    lost: list[int] = []  # trials failed by Optuna's heartbeat check: queued again
    study = _open_study(s, sampler, pruner or optuna.pruners.NopPruner(), lost)
    ctx = _Context(s, study, objective, lost)
    _check_resumed(ctx)
    if s.strategy != "none":
        ctx.tracker = _tracker(tracking_uri, experiment)
        ctx.tracker.reap()  # runs left RUNNING by processes that are gone
        store = ctx.tracker._sql_store()
        ctx.sql = ExperimentRead(store) if store is not None else None
        ctx.parent = _study_parent(ctx)
    counted, _ = _tally(ctx, ctx.trials())
    log.info(
        "study %s (%s, %s %s, %s sampler, %s pruner) in %s: %d of %d trials finished",
        s.name,
        s.strategy,
        s.direction,
        s.metric,
        s.sampler,
        s.pruner,
        storage_label(s.storage),
        counted,
        s.n_trials,
    )
    status = "FAILED"
    try:
        with _tracking_uri(ctx):
            _run_trials(ctx)
        status = "FINISHED"
    except KeyboardInterrupt:
        status = "KILLED"
        raise
    finally:
        if ctx.tracker is not None and ctx.parent is not None:
            if status == "FINISHED":
                _finish(ctx, status)
            else:  # the error on its way out is the one to see
                with contextlib.suppress(Exception):
                    _finish(ctx, status)
    return study


def storage_label(storage: str | optuna.storages.BaseStorage | None) -> str:
    if storage is None:
        return "memory"
    return redact(storage) if isinstance(storage, str) else type(storage).__name__


def default_store() -> str:
    return f"sqlite:///{Path.cwd().resolve()}/outputs/mlflow.db"


# ----------------------------------------------------------------------------------------------
# Opening the study, the store and the parent run


@dataclass
class _Outcome:
    """What a trial's seeds gave: `scores` by seed, in the order they came."""

    scores: dict[int, float] = field(default_factory=dict)
    run_ids: dict[int, str] = field(default_factory=dict)
    reused: list[int] = field(default_factory=list)
    errors: dict[int, str] = field(default_factory=dict)
    called: bool = False  # the objective ran: the trial's parameters are all known
    pruned: bool = False
    pruned_epoch: int | None = None  # tuned/fixed: the epoch a seed-run was stopped after
    pruned_value: float = math.nan


@dataclass
class _Context:
    s: Settings
    study: optuna.Study
    objective: Objective
    lost: list[int]
    tracker: Tracker | None = None
    parent: str | None = None
    asked: int = 0  # trials this process ran
    failed: int = 0  # ... of which failed
    last_error: BaseException | None = None
    traceback_shown: bool = False
    seed_warned: bool = False
    space: dict[str, BaseDistribution] | None = None  # every finished trial's parameters
    spaced: set[int] = field(default_factory=set)  # the trials `space` has seen
    snapshot: list[FrozenTrial] = field(default_factory=list)  # the study's trials, last read
    counted: int = 0  # ... the trials n_trials counts, with this process's own since
    running: int = 0  # ... those running
    others: int = 0  # ... other processes running trials
    seed_distribution: CategoricalDistribution | None = None  # tuned: the seed's, made once
    sql: ExperimentRead | None = None  # the MLflow store, when it is a SQL database
    stale_checked: float = -math.inf  # monotonic time of the last look for stale trials

    def trials(self) -> list[FrozenTrial]:
        """The study's trials, read now (the cached storage reads only those that changed)."""
        self.snapshot = self.study.get_trials(deepcopy=False)
        return self.snapshot


def _open_study(
    s: Settings,
    sampler: optuna.samplers.BaseSampler,
    pruner: optuna.pruners.BasePruner,
    lost: list[int],
    attempts: int = 10,
) -> optuna.Study:
    """Create the study or load it. Workers starting together on a new database race to create
    Optuna's tables and the study: a lock file orders them on SQLite; on a server database
    the loser's insert fails and it tries again, then finds the winner's."""
    kwargs: dict[str, Any] = {
        "study_name": s.name,
        "sampler": sampler,
        "pruner": pruner,
        "direction": s.direction,
    }
    if s.storage is None:
        return optuna.create_study(**kwargs)
    url = s.storage if isinstance(s.storage, str) else ""
    for attempt in range(1, attempts + 1):
        try:
            with sqlite_lock(url), _quiet():
                return optuna.create_study(
                    storage=_rdb(url, lost) if url else s.storage,
                    load_if_exists=True,
                    **kwargs,
                )
        except ConfigError:
            raise
        except ValueError as err:  # a loaded study with the other direction
            raise ConfigError("study_name", s.name, _first_line(err)) from None
        except ImportError as err:
            raise ConfigError(
                "storage", redact(url), f"its database driver is not installed ({err})"
            ) from None
        except Exception as err:
            raced = type(err).__name__ == "IntegrityError" or "already exists" in str(err)
            if not raced or attempt == attempts:
                raise ConfigError(
                    "storage",
                    storage_label(s.storage),
                    f"cannot open this Optuna storage ({_first_line(err)})",
                ) from None
            time.sleep(0.2 * attempt)
    raise AssertionError("unreachable")


def _rdb(url: str, lost: list[int]) -> optuna.storages.RDBStorage:
    remember([url])  # its password is masked in everything this process writes
    if url.startswith("sqlite:"):
        check_sqlite("storage", url)
        db = sqlite_file(url)
        if db is not None:
            db.parent.mkdir(parents=True, exist_ok=True)
    return optuna.storages.RDBStorage(
        url,
        heartbeat_interval=HEARTBEAT_SECONDS,
        grace_period=6 * HEARTBEAT_SECONDS,
        heartbeat_stale_trial_callback=lambda _study, trial: lost.append(trial.number),
        engine_kwargs={"connect_args": {"timeout": 60}} if url.startswith("sqlite") else {},
    )


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """seedhp records trial heartbeats around ask/tell, which Optuna expects only from
    Study.optimize, and its stale-trial check is still flagged experimental: not the user's
    to hear about."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "Heartbeat of storage is supposed to be used with")
        warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
        yield


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return f"{type(err).__name__}: {text.splitlines()[0]}" if text else type(err).__name__


def _check_resumed(ctx: _Context) -> None:
    """A study is run by one strategy on one set of seeds: a resumed one is checked."""
    s, attrs = ctx.s, ctx.study.user_attrs
    seeds = hashlib.sha256(json.dumps(list(s.seeds)).encode()).hexdigest()[:12]
    old = attrs.get("seedhp.strategy")
    if old is not None and old != s.strategy:
        raise ConfigError(
            "strategy",
            s.strategy,
            f"study {s.name!r} in this storage was run with strategy={old!r}: give another "
            "study_name",
        )
    if attrs.get("seedhp.seeds", seeds) != seeds:
        shown = list(s.seeds) if len(s.seeds) <= 8 else f"{len(s.seeds)} seeds"
        raise ConfigError(
            "seeds",
            shown,
            f"study {s.name!r} in this storage was run on other seeds: give another study_name",
        )
    for key, value in (("seedhp.strategy", s.strategy), ("seedhp.seeds", seeds)):
        if key not in attrs:
            ctx.study.set_user_attr(key, value)


def _tracker(uri: str | None, experiment: Any) -> Tracker:
    from seedhp.job.tracking import Tracker

    if not isinstance(experiment, str) or not experiment:
        raise ConfigError("experiment", experiment, "an MLflow experiment's name")
    try:
        return Tracker(uri or default_store(), experiment)
    except ConfigError as err:  # named by the Hydra key: here it is an argument
        key = {"tracking.uri": "tracking_uri", "tracking.experiment": "experiment"}.get(err.key)
        raise ConfigError(key or err.key, err.value, err.allowed) from None


def _study_parent(ctx: _Context) -> str:
    """One MLflow parent run per study, found again by every process and every resumption
    (as the Hydra sweeper's: seedhp.sweep.study_record.study_parent). On SQLite the storage's
    lock file orders processes starting together; elsewhere they wait PARENT_GRACE_SECONDS and
    agree on the earliest parent."""
    s, study, tracker = ctx.s, ctx.study, ctx.tracker
    assert tracker is not None
    study.set_user_attr("mlflow_tracking_uri", redact(tracker.uri))
    study.set_user_attr("mlflow_experiment", tracker.experiment_name)
    mine = f"tags.`{record.KIND}` = 'study' and tags.`{record.STUDY}` = '{s.name}'"
    url = s.storage if isinstance(s.storage, str) else ""
    with sqlite_lock(url):
        found = _earliest(tracker.search(mine)) if s.persistent else None
        if found is not None:
            tracker.reopen(found)
            study.set_user_attr("mlflow_parent_run_id", found)
            return found
        parent = tracker.start_run(
            f"study {s.name}",
            {
                record.KIND: "study",
                record.STUDY: s.name,
                record.STRATEGY: s.strategy,
                "seedhp.storage": storage_label(s.storage),
                "seedhp.sampler": s.sampler,
                "seedhp.pruner": s.pruner,
                "seedhp.objective": s.metric,
                record.TEST_METRIC: test_metric_of(s.metric),
                "seedhp.direction": s.direction,
                record.APP: s.objective_name,
            },
        )
    if s.persistent and not url.startswith("sqlite:"):
        time.sleep(PARENT_GRACE_SECONDS)
        winner = _earliest(tracker.search(mine)) or parent
        if winner != parent:  # another process created the study's parent at the same moment
            tracker.delete_run(parent)
        parent = winner
    study.set_user_attr("mlflow_parent_run_id", parent)  # optuna-dashboard -> MLflow
    return parent


def _earliest(runs: Sequence[Any]) -> str | None:
    if not runs:
        return None
    return str(min(runs, key=lambda r: (r.info.start_time, r.info.run_id)).info.run_id)


@contextlib.contextmanager
def _tracking_uri(ctx: _Context) -> Iterator[None]:
    """MLflow's global tracking URI is the study's store while the study runs (the objective's
    own mlflow.log_* calls go there), and what it was after."""
    if ctx.tracker is None:
        yield
        return
    import mlflow

    previous = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(ctx.tracker.uri)
    try:
        yield
    finally:
        mlflow.set_tracking_uri(previous)


# ----------------------------------------------------------------------------------------------
# The loop: ask, run the trial's seeds, tell


def _run_trials(ctx: _Context) -> None:
    """Trials until the study has n_trials finished ones; RuntimeError once this process's
    trials keep failing."""
    while (trial := _next_trial(ctx)) is not None:
        try:
            if ctx.s.strategy == "none":
                _plain_trial(ctx, trial)
            else:
                _seeded_trial(ctx, trial)
        except ConfigError:  # bad input: every trial would fail the same way
            _fail(ctx, trial, retry=False)
            raise
        except BaseException:  # Ctrl-C, a store gone: failed now, its configuration queued
            with contextlib.suppress(Exception):
                _fail(ctx, trial, retry=True)
            raise
        if _too_many_failures(ctx):
            s = ctx.s
            raise RuntimeError(
                f"study {s.name} stopped: {ctx.failed} of the {ctx.asked} trials this process "
                f"ran failed (more than max_failure_rate={s.max_failure_rate:g}); each failed "
                "trial's errors are in its user attribute 'errors'"
            ) from ctx.last_error


def _next_trial(ctx: _Context) -> Trial | None:
    """A new trial while fewer than n_trials have finished or are running in the study; while
    other processes hold the rest of the budget, wait for them (their trials finish, or fail
    once their heartbeat stops); None when the study is done.

    The study's trials are read once a trial, after the ask: another process may have asked
    at the same moment (the lowest numbers keep the last places). Before it, what the last
    read and this process's own trials since say is enough, but for the last places (as many
    as other processes were running trials), which are read again."""
    study, n = ctx.study, ctx.s.n_trials
    while True:
        _fail_stale_trials(ctx)
        counted, running = ctx.counted, ctx.running
        if counted < n and counted + running >= n - ctx.others:
            counted, running = _tally(ctx, ctx.trials())
        if counted >= n:
            return None
        if counted + running >= n:
            ctx.stale_checked = -math.inf  # waiting: look for dead processes' trials each time
            time.sleep(1.0)
            ctx.trials()
            continue
        trial: Trial | None = None
        try:
            with held_interrupts(), _quiet():  # the trial exists once asked: see it through
                trial = study.ask(fixed_distributions=_ask_space(ctx))
            _set_attrs(study, trial, {OWNER: this_process()}, first_beat=True)
            trials = ctx.trials()
            if sum(_tally(ctx, trials)) <= n:
                return trial
            live = (*FINISHED, TrialState.RUNNING)
            if sorted(t.number for t in trials if t.state in live).index(trial.number) < n:
                return trial
            trial.set_user_attr("seedhp.surplus", True)
            _tell(study, trial, state=TrialState.FAIL)
            ctx.running -= 1
        except KeyboardInterrupt:
            if trial is not None:
                _fail(ctx, trial, retry=True)
            raise


def _tally(ctx: _Context, trials: Sequence[FrozenTrial]) -> tuple[int, int]:
    """(the trials n_trials counts, those running). Counted: finished ones, and failed ones
    too when every failure is tolerated (max_failure_rate=1), so that a study whose every
    trial fails still ends."""
    counted = running = 0
    tolerated = ctx.s.max_failure_rate >= 1
    owners = set()
    for t in trials:
        if t.state in FINISHED:
            counted += 1
        elif t.state == TrialState.RUNNING:
            running += 1
            owners.add(t.user_attrs.get(OWNER))
        elif t.state == TrialState.FAIL and tolerated and not t.user_attrs.get("seedhp.surplus"):
            counted += 1
    ctx.counted, ctx.running = counted, running
    ctx.others = len(owners - {this_process()})
    return counted, running


def _ask_space(ctx: _Context) -> dict[str, BaseDistribution]:
    """What a trial is asked for before the objective runs: a tuned trial's seed first, then
    every parameter each finished trial of the study has, in the order the last one to finish
    suggested them (the objective's order)."""
    for t in ctx.snapshot:
        if t.state in FINISHED:
            _learn(ctx, t.number, t.distributions)
    space: dict[str, BaseDistribution] = {}
    if ctx.s.strategy == "tuned":
        if ctx.seed_distribution is None:
            ctx.seed_distribution = CategoricalDistribution(ctx.s.seeds)
        space[SEED] = ctx.seed_distribution
    space.update({k: d for k, d in (ctx.space or {}).items() if k != SEED})
    return space


def _learn(ctx: _Context, number: int, distributions: Mapping[str, BaseDistribution]) -> None:
    """The space: the parameters every finished trial has, with one distribution each."""
    if number in ctx.spaced:
        return
    ctx.spaced.add(number)
    if ctx.space is None:
        ctx.space = dict(distributions)
        return
    # the seed is always the pool's: its 1000-way comparison is skipped
    ctx.space = {
        k: d
        for k, d in distributions.items()
        if k in ctx.space and (k == SEED or ctx.space[k] is d or ctx.space[k] == d)
    }


def _count(ctx: _Context, states: Sequence[TrialState]) -> int:
    """Through the study's cached storage, which reads only new or running trials."""
    return len(ctx.study.get_trials(deepcopy=False, states=tuple(states)))


def _too_many_failures(ctx: _Context) -> bool:
    s = ctx.s
    return s.max_failure_rate < 1 and ctx.failed > s.max_failure_rate * max(ctx.asked, 5)


def _tell(
    study: optuna.Study,
    trial: Trial | int,
    value: float | None = None,
    state: TrialState | None = None,
) -> None:
    """What study.tell (and Study.optimize) do with a trial's outcome, tolerating
    GridSampler's `study.stop()` once its grid is exhausted, which raises outside
    Study.optimize after the trial is stored."""
    try:  # Study.tell reads the trial back to return it (six queries on a SQL storage)
        _tell_with_warning(study, trial, value_or_values=value, state=state)
    except RuntimeError as err:
        if "Study.stop" not in str(err):
            raise


def _told(ctx: _Context, trial: Trial, state: TrialState) -> None:
    """This process's count of the study's trials, after it told one of its own."""
    ctx.running -= 1
    if state in FINISHED or (state == TrialState.FAIL and ctx.s.max_failure_rate >= 1):
        ctx.counted += 1
    if state in FINISHED:
        _learn(ctx, trial.number, trial.distributions)


def _fail(ctx: _Context, trial: Trial, retry: bool) -> None:
    """Fail a trial this process was running when it stopped; `retry`: queue its
    configuration again, so running the call again runs it, reusing the seeds it finished."""
    if ctx.study.get_trials(deepcopy=False)[trial.number].state != TrialState.RUNNING:
        return  # told already
    _tell(ctx.study, trial, state=TrialState.FAIL)
    _told(ctx, trial, TrialState.FAIL)
    log.info("trial %d stopped: marked failed", trial.number)
    if retry:
        _retry_lost(ctx, trial.number)


def _fail_stale_trials(ctx: _Context) -> None:
    """A trial left RUNNING by a process that is gone is failed, so it neither blocks nor
    counts: at once for a dead process on this host, after the heartbeat's grace period for
    one elsewhere (Optuna's heartbeat). Its open seed-runs are marked interrupted and its
    configuration is queued again: the next trial asked for, by any process, re-runs it,
    reusing the seeds it had finished (seedhp.sweep.study_storage does the same)."""
    study = ctx.study
    if ctx.s.storage is None:
        return  # in memory: no other process
    if time.monotonic() - ctx.stale_checked < HEARTBEAT_SECONDS:
        return  # a trial goes stale in 6 heartbeats: one look per heartbeat is enough
    ctx.stale_checked = time.monotonic()
    with _quiet():
        optuna.storages.fail_stale_trials(study)
    while ctx.lost:
        _retry_lost(ctx, ctx.lost.pop(0))
    grace = 6 * HEARTBEAT_SECONDS
    now = datetime.datetime.now()
    for t in _running(ctx):
        owner = str(t.user_attrs.get(OWNER, ""))
        if owner:
            if not gone(owner):
                continue  # alive, or on another host: Optuna's heartbeat covers those
            why = f"was left running by process {owner}, which is gone"
        else:  # its process died between creating it and recording itself as its owner
            if (now - (t.datetime_start or now)).total_seconds() < grace:
                continue
            why = f"has had no owner and no heartbeat for {grace} s"
        try:
            _tell(study, t.number, state=TrialState.FAIL)
        except optuna.exceptions.UpdateFinishedTrialError:
            continue  # another process sharing the study failed it first
        except ValueError as err:  # the same race, seen by Optuna's own state check first
            if "Cannot tell a" not in str(err):
                raise
            continue
        log.info("trial %d %s: marked failed", t.number, why)
        _retry_lost(ctx, t.number)


def _running(ctx: _Context) -> list[FrozenTrial]:
    return [t for t in ctx.trials() if t.state == TrialState.RUNNING]


def _retry_lost(ctx: _Context, number: int) -> None:
    """A failed trial that never finished: its MLflow runs still open are marked interrupted,
    and its parameters are queued to run again."""
    if ctx.tracker is not None:
        mine = (
            f"tags.`{record.STUDY}` = '{ctx.s.name}' and tags.`{record.TRIAL}` = '{number}' "
            "and attributes.status = 'RUNNING'"
        )
        for r in ctx.tracker.search(mine):
            ctx.tracker.interrupt(r.info.run_id, f"trial {number} was lost: its process stopped")
    lost = ctx.study.get_trials(deepcopy=False)[number]
    if lost.params and not lost.user_attrs.get("seedhp.surplus"):
        ctx.study.enqueue_trial(lost.params, user_attrs={"seedhp.retry_of": number})
        log.info("trial %d's configuration is queued to run again", number)


class _TrialHeartbeat:
    """Records the trial's heartbeat in the storage every heartbeat interval while it runs, so
    another process can tell a live trial from one whose process died elsewhere."""

    def __init__(self, study: optuna.Study, trial: Trial) -> None:
        storage = study._storage
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        interval = storage.get_heartbeat_interval() if isinstance(storage, BaseHeartbeat) else None
        if interval:
            trial_id = trial._trial_id  # its first beat was recorded with its owner

            def beat() -> None:
                while not self._stop.wait(interval):
                    storage.record_heartbeat(trial_id)  # type: ignore[attr-defined]

            self._thread = threading.Thread(target=beat, daemon=True, name="trial-heartbeat")
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()


# ----------------------------------------------------------------------------------------------
# One trial


def _plain_trial(ctx: _Context, trial: Trial) -> None:
    """strategy='none': objective(trial), told as Optuna's study.optimize would."""
    s = ctx.s
    ctx.asked += 1
    beat = _TrialHeartbeat(ctx.study, trial)
    try:
        with epoch_reports(_reporter(trial, _Outcome()) if s.pruner != "none" else None):
            value = _metrics(ctx.objective(trial), s.objective_key)[s.metric]
    except (Pruned, optuna.TrialPruned):
        _tell(ctx.study, trial, state=TrialState.PRUNED)
        _told(ctx, trial, TrialState.PRUNED)
        log.info("trial %d pruned", trial.number)
        return
    except ConfigError:
        raise
    except Exception as err:
        _failed_line(ctx, trial, None, err)
        ctx.failed += 1
        trial.set_user_attr("errors", {"": scrub(_error(err))})
        _tell(ctx.study, trial, state=TrialState.FAIL)
        _told(ctx, trial, TrialState.FAIL)
        return
    finally:
        beat.stop()
    if math.isnan(value):
        ctx.failed += 1
        trial.set_user_attr("diverged", True)
        _tell(ctx.study, trial, state=TrialState.FAIL)
        _told(ctx, trial, TrialState.FAIL)
        return
    _tell(ctx.study, trial, value)
    _told(ctx, trial, TrialState.COMPLETE)
    log.info("trial %d  %s  %s %.4f", trial.number, _shown(trial.params), s.metric, value)


def _seeded_trial(ctx: _Context, trial: Trial) -> None:
    """A trial's seeds, one after another: each one reused or run as a seed-run; an averaged
    trial reports each value at the seed's place in the pool and stops when pruned."""
    s = ctx.s
    seeds = [int(trial.params[SEED])] if s.strategy == "tuned" else list(s.seeds)
    out = _Outcome()
    beat = _TrialHeartbeat(ctx.study, trial)
    try:
        for step, seed in enumerate(seeds):
            value = _seed(ctx, trial, seed, out)
            if value is None:
                break  # failed, or pruned after an epoch
            if s.strategy == "averaged" and not math.isnan(value):
                trial.report(value, step)
                if trial.should_prune():
                    out.pruned = True
                    break
    finally:
        beat.stop()
    _tell_trial(ctx, trial, seeds, out)


def _seed(ctx: _Context, trial: Trial, seed: int, out: _Outcome) -> float | None:
    """One seed of a trial: its value (reused, or from a new seed-run), or None when it
    failed or was pruned."""
    known = _finished(ctx, trial, seed) if (ctx.space is not None or out.called) else None
    if known is not None:
        value, run_id = known
        out.reused.append(seed)
        _record(ctx, trial, out, seed, value, run_id)
        return value
    return _seed_run(ctx, trial, seed, out)


def _params(trial: Trial) -> dict[str, Any]:
    """The trial's configuration: its parameters without the seed."""
    return {k: v for k, v in trial.params.items() if k != SEED}


def _config_id(ctx: _Context, trial: Trial) -> str:
    """The configuration's id (seedhp.job.identity.config_id): the objective's name and the
    trial's parameters without the seed."""
    return config_id(
        {
            "objective": ctx.s.objective_name,
            "code": ctx.s.objective_code,
            "params": _params(trial),
        },
        (),
    )


def _finished(ctx: _Context, trial: Trial, seed: int) -> tuple[float, str | None] | None:
    """(value, run id) of a finished seed-run of this configuration and seed: one the study
    recorded (a pruned or failed trial's finished seeds too), else the MLflow experiment's
    latest, which the study then counts as its own (tag seedhp.reused_by.<parent>)."""
    key, params = str(seed), _params(trial)
    for t in ctx.snapshot:  # read as the trial was asked for
        scores = t.user_attrs.get("seed_scores", {}) if t.state.is_finished() else {}
        if key in scores and {k: v for k, v in t.params.items() if k != SEED} == params:
            run_id = t.user_attrs.get("mlflow_run_ids", {}).get(key)  # unset: it was stopped
            return float(scores[key]), run_id or _latest_run(ctx, trial, seed)
    run_id = _latest_run(ctx, trial, seed)
    if run_id is None:
        return None
    tracker = ctx.tracker
    assert tracker is not None and ctx.parent is not None
    run = tracker.client.get_run(run_id)
    value = run.data.metrics.get(ctx.s.metric)
    if value is None:
        return None  # a run of another objective_key: not this measurement
    if run.data.tags.get(record.PARENT) != ctx.parent:
        from seedhp.job.reuse import mark_reused

        mark_reused(tracker, [run], ctx.parent, "trial")
    return float(value), run_id


def _latest_run(ctx: _Context, trial: Trial, seed: int) -> str | None:
    """The latest finished (or diverged) seed-run of the trial's configuration on `seed` in
    the experiment (two indexed queries on a SQL store)."""
    assert ctx.tracker is not None
    done = [
        p
        for p in ctx.tracker.runs_of(_config_id(ctx, trial), [seed])
        if p.status == "FINISHED" and p.tags.get(record.STATUS) in DONE
    ]
    return max(done, key=lambda p: p.start_time).run_id if done else None


def _set_attrs(
    study: optuna.Study, trial: Trial, attrs: Mapping[str, Any], first_beat: bool = False
) -> None:
    """User attributes of this process's running trial (and its first heartbeat) in one
    transaction where the storage is Optuna's RDBStorage, whose set_user_attr is a transaction
    (a commit: on SQLite a write to disk) per attribute; one by one elsewhere."""
    storage = study._storage
    backend = getattr(storage, "_backend", storage)  # behind Optuna's cache
    write = getattr(backend, "_set_trial_attr_without_commit", None)
    if isinstance(backend, optuna.storages.RDBStorage) and write is not None:
        from optuna.storages._rdb import models
        from optuna.storages._rdb.storage import _create_scoped_session

        with _create_scoped_session(backend.scoped_session) as session:
            for key, value in attrs.items():
                write(session, models.TrialUserAttributeModel, trial._trial_id, key, value)
            if first_beat and backend.heartbeat_interval:
                session.add(models.TrialHeartbeatModel(trial_id=trial._trial_id))
        return
    for key, value in attrs.items():
        trial.set_user_attr(key, value)
    if first_beat and isinstance(storage, BaseHeartbeat) and storage.get_heartbeat_interval():
        storage.record_heartbeat(trial._trial_id)


def _record(
    ctx: _Context, trial: Trial, out: _Outcome, seed: int, value: float, run_id: str | None
) -> None:
    """A seed's value; an averaged trial stores it on the trial at once, so a trial whose
    process dies keeps the seed-runs it finished (the next run of the study reuses them; a
    one-seed trial's is found in the MLflow store)."""
    out.scores[seed] = value
    if run_id:
        out.run_ids[seed] = run_id
    if ctx.s.strategy == "averaged":
        trial.set_user_attr("seed_scores", _scores(out))


def _scores(out: _Outcome) -> dict[str, float]:
    return {str(k): v for k, v in out.scores.items()}


def _reporter(trial: Trial, out: _Outcome) -> Callable[[int, float], bool]:
    """seedhp.report_epoch's reporter inside a tuned or fixed trial: (epoch, value) -> prune?"""

    def on_epoch(epoch: int, value: float) -> bool:
        trial.report(value, epoch)
        out.pruned_epoch, out.pruned_value = epoch, value
        return trial.should_prune()

    return on_epoch


def _seed_run(ctx: _Context, trial: Trial, seed: int, out: _Outcome) -> float | None:
    """objective(trial, seed) as one MLflow seed-run, MLflow's active run while it runs."""
    from seedhp.job.tracking import Finish, metric

    s, tracker = ctx.s, ctx.tracker
    assert tracker is not None and ctx.parent is not None
    known = ctx.space is not None or out.called
    run_id, run = start_run(tracker, _start(ctx, trial, seed, known), ctx.sql)
    out.run_ids[seed] = run_id
    reporter = _reporter(trial, out) if s.epochs_pruned else None
    ref = SeedRunRef(tracker.uri, run_id, s.metric, seed)
    started = time.monotonic()
    try:
        with active(tracker.uri, run), epoch_reports(reporter), in_seed_run(ref):
            returned = ctx.objective(trial, seed=seed)
        out.called = True
        metrics = _metrics(returned, s.objective_key)
    except (Pruned, optuna.TrialPruned) as err:  # the pruner stopped it after an epoch
        out.called = out.pruned = True
        end_run(
            tracker,
            Finish(
                run_id,
                "FINISHED",
                (),
                *_closing(ctx, trial, seed, "pruned", {"seedhp.pruned": str(err) or "pruned"}),
            ),
        )
        return None
    except Exception as err:  # a failing seed-run (ConfigError: bad input, raised on)
        out.called = True
        out.errors[seed] = _error(err)
        ctx.last_error = err
        end_run(
            tracker,
            Finish(
                run_id,
                "FAILED",
                (),
                *_closing(ctx, trial, seed, "failed", {record.ERROR: _error(err)[:5000]}),
            ),
        )
        if isinstance(err, ConfigError):
            raise
        _failed_line(ctx, trial, seed, err)
        return None
    except BaseException:  # Ctrl-C: interrupted, and the study stops
        tracker.interrupt(run_id, "interrupted")
        raise
    seconds = time.monotonic() - started
    value = metrics[s.metric]
    status = "finished" if all(math.isfinite(v) for v in metrics.values()) else "diverged"
    logged = latest_metrics(tracker, run_id)  # by the objective itself, while it ran
    values = [metric(k, v) for k, v in metrics.items() if logged.get(k) != v]
    values.append(metric("job_seconds", seconds))
    end_run(tracker, Finish(run_id, "FINISHED", values, *_closing(ctx, trial, seed, status)))
    _record(ctx, trial, out, seed, value, run_id)
    return value


def _start(ctx: _Context, trial: Trial, seed: int, known: bool) -> Start:
    """The seed-run's first record: its tags; config_id once the configuration is known."""
    from seedhp.job.tracking import Start

    s = ctx.s
    short = s.objective_name.rsplit(":", 1)[-1]
    tags = {
        **record.seed_run_tags(
            seed,
            _config_id(ctx, trial),
            _config_label(ctx, trial),
            "trial",
            str(Path.cwd()),
            _overrides(trial),
            ctx.parent,
        ),
        record.APP: s.objective_name,
        record.STUDY: s.name,
        record.TRIAL: str(trial.number),
        record.STRATEGY: s.strategy,
    }
    if not known:  # the objective suggests the rest: its config_id comes at the end
        del tags[record.CONFIG_ID]
    return Start(record.run_name(seed, short, trial.number), tags, ctx.parent)


def _closing(
    ctx: _Context, trial: Trial, seed: int, status: str, more: Mapping[str, str] | None = None
) -> tuple[dict[str, str], dict[str, str]]:
    """(params, tags) of a seed-run's last record: the trial's parameters, now all known."""
    params = {k: _text(v) for k, v in _params(trial).items()}
    params[SEED] = str(seed)
    tags = {
        record.CONFIG_ID: _config_id(ctx, trial),
        record.LABEL: _config_label(ctx, trial),
        record.OVERRIDES: json.dumps(_overrides(trial)),
        record.STATUS: status,
        **(more or {}),
    }
    return params, tags


def _config_label(ctx: _Context, trial: Trial) -> str:
    """The configuration's name in summaries and reports: `objective lr=0.01 width=32`."""
    short = ctx.s.objective_name.rsplit(":", 1)[-1]
    return " ".join([short, _shown(dict(sorted(_params(trial).items())))]).strip()


def _overrides(trial: Trial) -> list[str]:
    return [f"{k}={_text(v)}" for k, v in sorted(_params(trial).items())]


def _text(value: Any) -> str:
    return repr(value) if isinstance(value, float) else str(value)


def _shown(params: Mapping[str, Any]) -> str:
    return " ".join(
        f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in params.items()
    )


def _error(err: BaseException) -> str:
    return f"{type(err).__name__}: {err}"


def _failed_line(ctx: _Context, trial: Trial, seed: int | None, err: BaseException) -> None:
    """A failing seed-run is a warning; its traceback is shown once per study."""
    where = f"trial {trial.number}" + (f", seed {seed}" if seed is not None else "")
    log.warning(
        "%s failed: %s",
        where,
        scrub(_error(err)),
        exc_info=err if not ctx.traceback_shown else None,
    )
    ctx.traceback_shown = True


class _ReturnedNone(ValueError):
    """The objective returned None: that seed-run failed (as Optuna fails such a trial)."""

    def __init__(self) -> None:
        super().__init__("the objective returned None: return a float, or a dict of floats")


def _metrics(value: Any, objective_key: str | None) -> dict[str, float]:
    """The objective's return value as metrics: a number is the objective's, a mapping gives
    one metric per numeric entry. One ConfigError when the objective cannot be read from it."""
    if value is None:
        raise _ReturnedNone()
    if isinstance(value, Mapping):
        out = {str(k): f for k, v in value.items() if (f := _number(v)) is not None}
        if objective_key is None:
            raise ConfigError(
                "objective_key",
                None,
                f"the objective returned a dict ({', '.join(out) or 'no numbers'}): name the "
                f"value to optimise, e.g. objective_key={next(iter(out), 'val_acc')!r}",
            )
        if objective_key not in out:
            raise ConfigError(
                "objective_key",
                objective_key,
                f"not among the objective's returned values: {', '.join(sorted(out)) or 'none'}",
            )
        return out
    number = _number(value)
    if number is None:
        raise ConfigError(
            "the objective's return value",
            type(value).__name__,
            "a float, or a dict of floats with objective_key naming the one to optimise",
        )
    return {objective_key or DEFAULT_METRIC: number}


def _number(value: Any) -> float | None:
    """A float from a number (a 0-d tensor or array too), None from anything else."""
    if isinstance(value, (bool, str, bytes)):
        return None
    if isinstance(value, numbers.Real) or hasattr(value, "__float__"):
        try:
            return float(value)
        except (TypeError, ValueError):
            return None
    return None


def _tell_trial(ctx: _Context, trial: Trial, seeds: Sequence[int], out: _Outcome) -> None:
    s = ctx.s
    ctx.asked += 1
    values = [out.scores[x] for x in seeds if x in out.scores]
    diverged = (
        not out.errors
        and not out.pruned
        and math.isnan(aggregates.aggregate(values, s.aggregate, s.maximize))
    )
    attrs = {
        "seed_scores": _scores(out),
        # seed -> MLflow run: from optuna-dashboard to MLflow
        "mlflow_run_ids": {str(x): out.run_ids[x] for x in seeds if x in out.run_ids},
        "config_id": _config_id(ctx, trial),
        **({"reused_seeds": out.reused} if out.reused else {}),
        **({"errors": {str(k): scrub(v) for k, v in out.errors.items()}} if out.errors else {}),
        **({"diverged": True} if diverged else {}),
    }
    _set_attrs(ctx.study, trial, attrs)
    shown = _shown(trial.params)
    reused = f", reused seed-runs of seeds {out.reused}" if out.reused else ""
    if out.errors:
        ctx.failed += 1
        _tell(ctx.study, trial, state=TrialState.FAIL)
        _told(ctx, trial, TrialState.FAIL)
        log.info("trial %d  %s  FAILED: %s", trial.number, shown, "; ".join(out.errors.values()))
        return
    if out.pruned:
        _tell(ctx.study, trial, state=TrialState.PRUNED)
        _told(ctx, trial, TrialState.PRUNED)
        how = (
            f"after epoch {out.pruned_epoch}"
            if s.strategy != "averaged"
            else f"after {len(values)} of {len(seeds)} seeds"
        )
        log.info("trial %d  %s  pruned %s%s", trial.number, shown, how, reused)
        return
    value = aggregates.aggregate(values, s.aggregate, s.maximize)
    if diverged:
        ctx.failed += 1
        _tell(ctx.study, trial, state=TrialState.FAIL)
        _told(ctx, trial, TrialState.FAIL)
        log.info("trial %d  %s  diverged (%s %s)", trial.number, shown, s.metric, values)
        return
    _tell(ctx.study, trial, value)
    _told(ctx, trial, TrialState.COMPLETE)
    if len(set(values)) == 1 < len(values) and not ctx.seed_warned:
        ctx.seed_warned = True
        log.warning(
            "trial %d: its %d seed-runs on different seeds all gave %s = %r; the objective "
            "seems to ignore its seed (seedhp.optimize seeds no generator: seed what it uses "
            "from `seed`)",
            trial.number,
            len(values),
            s.metric,
            value,
        )
    how = (
        f"{s.aggregate} of {len(values)} seeds" if s.strategy == "averaged" else f"seed {seeds[0]}"
    )
    log.info("trial %d  %s  %s %.4f (%s)%s", trial.number, shown, s.metric, value, how, reused)


# ----------------------------------------------------------------------------------------------
# The study's end: the parent run's summary


def _finish(ctx: _Context, status: str) -> None:
    """The parent run's summary (finished and pruned trials, the best value by the report's
    tie rule), optimization_results.yaml as its artifact; FINISHED once the study is done."""
    import yaml

    from seedhp.job.tracking import metric
    from seedhp.stats.contrast import TIE_RULE, best_trials

    s, study, tracker = ctx.s, ctx.study, ctx.tracker
    assert tracker is not None and ctx.parent is not None
    finished, pruned = _count(ctx, FINISHED), _count(ctx, (TrialState.PRUNED,))
    results: dict[str, Any] = {
        "study_name": s.name,
        "storage": storage_label(s.storage),
        "seed_strategy": s.strategy,
        "direction": s.direction,
        "objective": s.metric,
        "finished_trials": finished,
        "pruned_trials": pruned,
    }
    metrics = [metric("study.finished_trials", finished), metric("study.pruned_trials", pruned)]
    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    if complete:
        best, *tied = best_trials(complete, s.maximize, SEED if s.strategy == "tuned" else None)
        results.update(
            {
                "best_trial": best.number,
                "best_value": best.value,
                "tied_trials": [t.number for t in tied],
                "tie_rule": TIE_RULE,
                "best_params": best.params,
                "best_seed_scores": {
                    int(k): v for k, v in best.user_attrs.get("seed_scores", {}).items()
                },
                "best_mlflow_run_ids": best.user_attrs.get("mlflow_run_ids", {}),
            }
        )
        metrics.append(metric(f"study.best_trial_{s.metric}", float(best.value or math.nan)))
    tracker.log_text(
        ctx.parent, yaml.safe_dump(results, sort_keys=False), "optimization_results.yaml"
    )
    tracker.log(ctx.parent, metrics=metrics)
    done = finished >= s.n_trials
    tracker.end_run(ctx.parent, status if status != "FINISHED" or done else "RUNNING")
    if "best_value" in results:
        log.info(
            "study %s: %d of %d trials finished (%d pruned); best trial %d: %s %.4f  %s",
            s.name,
            finished,
            s.n_trials,
            pruned,
            results["best_trial"],
            s.metric,
            results["best_value"],
            _shown(results["best_params"]),
        )
