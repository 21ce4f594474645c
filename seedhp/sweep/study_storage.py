"""A study's Optuna storage: opening it (PostgreSQL create races retried), trial heartbeats,
stale trials of dead processes failed and their configurations queued again, and the seed-runs
a configuration already finished in the study."""

from __future__ import annotations

import datetime
import json
import logging
import threading
import time
import warnings
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import optuna
from optuna.trial import Trial, TrialState

from seedhp import faults
from seedhp.errors import ConfigError
from seedhp.job.locks import sqlite_lock
from seedhp.job.owner import gone
from seedhp.job.urls import check_sqlite, redact, remember, scrub, sqlite_file
from seedhp.sweep.space import SearchSpace, override_of
from seedhp.sweep.study_settings import StudySettings, make_pruner, make_sampler

if TYPE_CHECKING:
    from seedhp.sweep.study_context import StudyContext


log = logging.getLogger("seedhp")
# seedhp records trial heartbeats itself around ask/tell, which Optuna only expects from
# Study.optimize; its stale-trial check is still flagged experimental.
warnings.filterwarnings("ignore", "Heartbeat of storage is supposed to be used with")
warnings.filterwarnings(
    "ignore",
    r".*(heartbeat_interval|grace_period|fail_stale_trials|heartbeat_stale_trial_callback)",
    category=optuna.exceptions.ExperimentalWarning,
)


FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)


OWNER = "seedhp.owner"  # trial user attribute: host:pid:start of the process running it


def open_study(s: StudySettings, attempts: int = 10) -> optuna.Study:
    """Create the study or load it (another process's, or an earlier run of this command).

    Workers that start together on a new database race to create Optuna's tables and the
    study: on SQLite a lock file orders them; on a server database the loser's insert fails
    with a unique-key violation (or its CREATE with "already exists"), and it tries again, then
    finds what the winner created."""
    if s.storage is None:  # in memory: this process's alone, gone when it ends
        return optuna.create_study(
            study_name=s.name,
            sampler=make_sampler(s),
            pruner=make_pruner(s),
            direction=s.direction,  # type: ignore[arg-type]
        )
    remember([s.storage])  # its password is masked in everything this process writes
    faults.opened("hydra.sweeper.storage", s.storage)  # named in the line for a fault of it
    if s.storage.startswith("sqlite:"):
        check_sqlite("hydra.sweeper.storage", s.storage)
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


def open_plain(
    storage: str, name: str, sampler: optuna.samplers.BaseSampler, directions: Sequence[str]
) -> optuna.Study:
    """A plain study's persistent storage (seed_strategy=none), created or loaded."""
    faults.opened("hydra.sweeper.storage", storage)
    if storage.startswith("sqlite:"):
        check_sqlite("hydra.sweeper.storage", storage)
        db = sqlite_file(storage)
        if db is not None:
            db.parent.mkdir(parents=True, exist_ok=True)
    try:
        with sqlite_lock(storage):
            return optuna.create_study(
                study_name=name,
                storage=storage,
                sampler=sampler,
                directions=list(directions),  # type: ignore[arg-type]
                load_if_exists=True,
            )
    except ValueError as err:  # a loaded study with other directions
        raise ConfigError("hydra.sweeper.study_name", name, f"{err}") from None
    except ImportError as err:
        raise ConfigError(
            "hydra.sweeper.storage",
            redact(storage),
            f"its database driver is not installed ({err})",
        ) from None
    except Exception as err:
        raise ConfigError(
            "hydra.sweeper.storage",
            redact(storage),
            f"cannot open this Optuna storage ({_first_line(err)})",
        ) from None


class _Raced(Exception):
    """Another process created the same tables or study at the same moment."""


def _open_study(s: StudySettings) -> optuna.Study:
    from sqlalchemy.exc import IntegrityError, ProgrammingError

    assert s.storage is not None
    url = s.storage
    try:
        db = sqlite_file(url)
        if db is not None:
            db.parent.mkdir(parents=True, exist_ok=True)
        storage = optuna.storages.RDBStorage(
            url,
            heartbeat_interval=s.heartbeat_seconds,
            grace_period=6 * s.heartbeat_seconds,
            heartbeat_stale_trial_callback=lambda _study, trial: _LOST.append(trial.number),
            engine_kwargs={"connect_args": {"timeout": 60}} if url.startswith("sqlite") else {},
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
    except ProgrammingError as err:
        # PostgreSQL: two workers creating Optuna's tables at once; the loser's CREATE TYPE or
        # CREATE TABLE finds the winner's (DuplicateObject, DuplicateTable)
        if "already exists" in str(err):
            raise _Raced() from err
        raise ConfigError(
            "hydra.sweeper.storage",
            redact(url),
            f"cannot open this Optuna storage ({_first_line(err)})",
        ) from None
    except ValueError as err:  # a loaded study with another direction
        raise ConfigError("hydra.sweeper.study_name", s.name, f"{err}") from None
    except ImportError as err:
        raise ConfigError(
            "hydra.sweeper.storage",
            redact(url),
            f"its database driver is not installed ({err}); for PostgreSQL: psycopg[binary]",
        ) from None
    except Exception as err:  # sqlalchemy ArgumentError/OperationalError
        raise ConfigError(
            "hydra.sweeper.storage",
            redact(url),
            f"cannot open this Optuna storage ({_first_line(err)})",
        ) from None


def _first_line(err: BaseException) -> str:
    first = str(err).strip().splitlines()[0] if str(err).strip() else ""
    return f"{type(err).__name__}: {first}"


def tell(study: optuna.Study, trial: Trial | int, *args: Any, **kwargs: Any) -> None:
    """study.tell, tolerating GridSampler's and BruteForceSampler's `study.stop()` when their
    space is exhausted, which raises outside Study.optimize after the trial is stored."""
    try:
        study.tell(trial, *args, **kwargs)
    except RuntimeError as err:
        if "Study.stop" not in str(err):
            raise


def count_trials(ctx: StudyContext, states: Sequence[TrialState]) -> int:
    """Trials of the study in these states. Through the study's cached storage, which keeps
    finished trials in memory and reads only new or running ones from the database (Optuna's
    get_n_trials loads and parses every trial)."""
    return len(ctx.study.get_trials(deepcopy=False, states=tuple(states)))


_LOST: list[int] = []  # trials this process failed as stale (heartbeat_stale_trial_callback)


def fail_stale_trials(ctx: StudyContext) -> None:
    """A trial left RUNNING by a process that is gone is failed, so it neither blocks nor
    counts: at once for a dead process on this host, after the heartbeat's grace period for a
    process elsewhere (Optuna's heartbeat). Its MLflow runs are marked failed and its
    configuration is queued again: the next trial asked for, by any process, re-runs it, reusing
    the seeds it had finished."""
    study = ctx.study
    optuna.storages.fail_stale_trials(study)
    while _LOST:
        retry_lost(ctx, _LOST.pop(0))
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
            tell(study, t.number, state=TrialState.FAIL)
        except optuna.exceptions.UpdateFinishedTrialError:
            continue  # another process sharing the study failed it first, and queued it again
        except ValueError as err:  # the same race, seen by Optuna's own state check first
            if "Cannot tell a" not in str(err):
                raise
            continue
        log.info("trial %d %s: marked failed", t.number, why)
        retry_lost(ctx, t.number)


def retry_lost(ctx: StudyContext, number: int) -> None:
    """A failed trial that never finished: its MLflow runs still open are marked interrupted,
    and its configuration is queued to run again."""
    _interrupt_mlflow_runs(ctx, number)
    lost = ctx.study.get_trials(deepcopy=False)[number]
    if lost.params and not lost.user_attrs.get("seedhp.surplus"):
        ctx.study.enqueue_trial(lost.params, user_attrs={"seedhp.retry_of": number})
        log.info("trial %d's configuration is queued to run again", number)


def _interrupt_mlflow_runs(ctx: StudyContext, trial_number: int) -> None:
    study = ctx.settings.name
    for r in ctx.tracker.search(
        f"tags.`seedhp.study` = '{study}' and tags.`seedhp.trial` = '{trial_number}'"
    ):
        if r.info.status == "RUNNING":
            ctx.tracker.interrupt(
                r.info.run_id, f"trial {trial_number} was lost: its process stopped"
            )


def config_key(fixed: Sequence[str], params: Mapping[str, Any], space: SearchSpace) -> str:
    """A configuration within a study: its fixed overrides and searched values, not its seed
    (scrubbed: it is stored as a trial attribute, and a tracking URI may hold a password)."""
    searched = sorted(override_of(space, k, v) for k, v in params.items() if k != "seed")
    return scrub(json.dumps([sorted(fixed), searched]))


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


def known_config_id(study: optuna.Study, key: str) -> str | None:
    """The config_id an earlier trial of this configuration recorded, if any."""
    for t in study.get_trials(deepcopy=False):
        if t.user_attrs.get("config_key") == key and t.user_attrs.get("config_id"):
            return str(t.user_attrs["config_id"])
    return None


class TrialHeartbeat:
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
