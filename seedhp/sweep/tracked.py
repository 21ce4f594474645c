"""The app a sweeper drives: seedhp's own task, or any Hydra app's task function.

seedhp's sweepers need four things from an app: a checked view of one composed config (its
seed, objective, `config_id` and where it records: `Target`), the overrides that launch a
configuration on a seed, a float score from a job's return value, and a way to hand each job
its place in the sweep (parent run, role, study, trial: `RunContext`).

- seedhp's own task records its seed-runs itself; the context travels as `tracking.*`
  overrides, and the packed launchers may train it.
- Any other app's task function is wrapped in `TrackedTask`: each job becomes an MLflow
  seed-run nested under the sweep's or study's parent run, with seedhp's tags, the job's
  overrides and flattened config as params, every returned value as a metric, and the run
  active while the task executes (the app's own `mlflow.log_metric(..., step=epoch)` calls land
  in it). The sweeper sets the wrapper's `context` before each launch; launchers that run jobs
  in other processes (joblib, submitit) pickle the wrapper with it.
"""

from __future__ import annotations

import contextlib
import math
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from omegaconf import DictConfig, OmegaConf

from seedhp import faults
from seedhp.errors import ConfigError
from seedhp.job import claims, record
from seedhp.job.hooks import Pruned, SeedRunRef, in_seed_run
from seedhp.job.identity import config_id, identity_view, without_seed
from seedhp.job.seeding import seed_globals
from seedhp.job.urls import redact, scrub_files
from seedhp.job.values import ReportSettings, TrackingSettings, check_seed, flatten
from seedhp.stats.summary import maximize, test_metric_of

if TYPE_CHECKING:
    from seedhp.job.settings import Settings

OWN_LAUNCHERS = ("seedhp_launcher.", "packed_launcher.", "packed_submitit_launcher.")
DEFAULT_OBJECTIVE = "objective"  # a task returning one float: its metric's name


@dataclass(frozen=True)
class Target:
    """What a sweeper knows about the app before any job trains (one composed config)."""

    seed: int
    objective: str
    config_id: str
    outputs: Path
    tracking: TrackingSettings
    report: ReportSettings
    own: bool  # seedhp's own task
    test_metric: str = "test_acc"  # the test score its summaries and reports show

    @classmethod
    def of(cls, s: Settings) -> Target:
        return cls(
            s.seed,
            s.objective,
            s.config_id,
            s.outputs,
            s.tracking,
            s.report,
            True,
            test_metric_of(s.objective),
        )


@dataclass(frozen=True)
class RunContext:
    """A job's place in a sweep: recorded as its seed-run's parent and tags."""

    parent_run_id: str | None = None
    role: str = "run"  # run | trial | reseed | fresh | baseline
    study: str | None = None
    trial: int | None = None
    strategy: str | None = None
    label: str | None = None
    replicate: int | None = None  # the strategy contrast's
    claim: bool = False  # a seed another process has trained or is training is reused, not run

    def tags(self) -> dict[str, str]:
        """Its study, trial and strategy (the role and parent go with record.seed_run_tags)."""
        return {
            key: str(value)
            for key, value in (
                (record.STUDY, self.study),
                (record.TRIAL, self.trial),
                (record.STRATEGY, self.strategy),
                (record.REPLICATE, self.replicate),
            )
            if value is not None
        }


def is_own_task(task_function: Callable[..., Any]) -> bool:
    """seedhp's own `python -m seedhp` task (its module is `__main__` when run that way)."""
    code = getattr(task_function, "__code__", None)
    own_file = Path(__file__).resolve().parents[1] / "__main__.py"
    return code is not None and Path(code.co_filename).resolve() == own_file


def check_launcher(config: DictConfig, own: bool) -> None:
    """seedhp's launchers train seedhp's own task only (they compose, pack and record it)."""
    target = str(OmegaConf.select(config, "hydra.launcher._target_", default="") or "")
    if not own and any(name in target for name in OWN_LAUNCHERS):
        choices = OmegaConf.select(config, "hydra.runtime.choices", default=None) or {}
        raise ConfigError(
            "hydra/launcher",
            choices.get("hydra/launcher") or target.rsplit(".", 1)[-1],
            "seedhp's launchers (packed, seedhp, packed_submitit_*) train seedhp's own task "
            "only; for this app use basic (the default), joblib or submitit",
        )


# ----------------------------------------------------------------------------------------------
# Any app: settings, identity, the score of a return value


@dataclass(frozen=True)
class AppSettings:
    """The sweeper's settings for an app that is not seedhp's own."""

    seed_key: str = "seed"
    objective: str | None = None  # the key of a returned dict; None: a float, or a 1-key dict
    tracking_uri: str | None = None  # None: sqlite:///<started_in>/outputs/mlflow.db
    experiment: str | None = None  # None: seedhp
    ignore_keys: tuple[str, ...] = ()  # dotted keys that never change what a seed-run computes
    test_metric: str | None = None  # None: the objective's name with val -> test, if returned
    # where the command was started, fixed when the sweeper is set up: a job that changes its
    # working directory (hydra.job.chdir=True) or runs in another process records in one store
    started_in: str = field(default_factory=lambda: str(Path.cwd().resolve()))
    script: str = field(default_factory=lambda: str(Path(sys.argv[0]).resolve()))  # the app's
    reseed_of: str | None = None  # this sweep re-runs that parent run's winners on fresh seeds

    def uri(self) -> str:
        if self.tracking_uri:
            return self.tracking_uri
        return f"sqlite:///{Path(self.started_in) / 'outputs'}/mlflow.db"


def app_settings(sweeper: Mapping[str, Any]) -> AppSettings:
    key = sweeper.get("seed_key") or "seed"
    if not isinstance(key, str) or not key.replace(".", "").replace("_", "").isalnum():
        raise ConfigError("hydra.sweeper.seed_key", key, "a dotted config key, e.g. trainer.seed")
    objective = sweeper.get("objective")
    if objective is not None and (not isinstance(objective, str) or not objective):
        raise ConfigError("hydra.sweeper.objective", objective, "the name of a returned value")
    return AppSettings(
        key,
        objective,
        sweeper.get("tracking_uri"),
        sweeper.get("experiment"),
        ignore_keys=_ignore_keys(sweeper.get("ignore_keys")),
        test_metric=_name("hydra.sweeper.test_metric", sweeper.get("test_metric")),
        reseed_of=_reseed_of(sweeper.get("reseed_of")),
    )


def _reseed_of(value: Any) -> str | None:
    if value is not None and not (isinstance(value, str) and value.isalnum()):
        raise ConfigError("hydra.sweeper.reseed_of", value, "an MLflow run id (hex digits)")
    return value


def _name(key: str, value: Any) -> str | None:
    if value is not None and (not isinstance(value, str) or not value):
        raise ConfigError(key, value, "the name of a returned or logged metric")
    return value


def _ignore_keys(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str) or not isinstance(value, Sequence):
        value = [value]
    keys = tuple(str(k) for k in value)
    for k in keys:
        if not k or not k.replace(".", "").replace("_", "").replace("-", "").isalnum():
            raise ConfigError(
                "hydra.sweeper.ignore_keys",
                k,
                "a list of dotted config keys, e.g. [trainer.devices]",
            )
    return keys


def app_config_id(container: Mapping[str, Any], s: AppSettings) -> str:
    """Another app's config_id: its identity view (seedhp.job.identity) without its seed key
    and the keys the user names in hydra.sweeper.ignore_keys."""
    return config_id(container, ("hydra", s.seed_key, *s.ignore_keys))


_ABSENT = object()


def app_seed(cfg: DictConfig, seed_key: str) -> int:
    """The job's seed. A seed key whose value is null (LHT's `seed: null`) is seed 0 when the
    sweep gives it none: seedhp seeds the job's generators with it (seedhp.job.seeding)."""
    value = OmegaConf.select(cfg, seed_key, default=_ABSENT)
    if value is _ABSENT:
        raise ConfigError(
            "hydra.sweeper.seed_key",
            seed_key,
            "names no key of this app's config: name the key that holds its seed "
            "(e.g. hydra.sweeper.seed_key=trainer.seed)",
        )
    return 0 if value is None else check_seed(value, seed_key)


def check_ignore_keys(cfg: DictConfig, keys: Sequence[str]) -> None:
    for k in keys:
        if OmegaConf.select(cfg, k, default=_ABSENT, throw_on_resolution_failure=False) is _ABSENT:
            raise ConfigError("hydra.sweeper.ignore_keys", k, "names no key of this app's config")


def app_target(cfg: DictConfig, s: AppSettings) -> Target:
    """Check one composed config of any app: its seed key holds a seed, the store opens."""
    from seedhp.job.tracking import Tracker

    check_ignore_keys(cfg, s.ignore_keys)
    container = identity_view(cfg)
    uri, experiment = s.uri(), s.experiment or "seedhp"
    Tracker(uri, experiment)  # unreachable storage: one line before anything trains
    objective = s.objective or DEFAULT_OBJECTIVE
    return Target(
        seed=app_seed(cfg, s.seed_key),
        objective=objective,
        test_metric=s.test_metric or test_metric_of(objective),
        config_id=app_config_id(container, s),
        outputs=(Path.cwd() / "outputs").resolve(),
        tracking=TrackingSettings(
            uri,
            experiment,
            None,
            "reseed" if s.reseed_of else "run",
            False,
            {record.RESEED_OF: s.reseed_of} if s.reseed_of else {},
        ),
        report=ReportSettings(),
        own=False,
    )


class ReturnedNone(ValueError):
    """The task returned None: that job failed (hydra-optuna-sweeper fails its trial too)."""

    def __init__(self) -> None:
        super().__init__("the task returned None: return a float, or a dict of floats")


def returned_metrics(value: Any, objective: str | None) -> dict[str, float]:
    """A task's return value as metrics: a number is the objective, a mapping gives one metric
    per numeric entry. One ConfigError when the objective cannot be read from it."""
    if OmegaConf.is_config(value):
        value = OmegaConf.to_container(value, resolve=True)
    if value is None:
        raise ReturnedNone()
    if isinstance(value, bool):
        raise ConfigError(
            "the task's return value",
            value,
            "a float, or a dict of floats (hydra.sweeper.objective)",
        )
    if isinstance(value, (int, float)):
        return {objective or DEFAULT_OBJECTIVE: float(value)}
    if isinstance(value, Mapping):
        out = {
            str(k): float(v)
            for k, v in value.items()
            if isinstance(v, (int, float)) and not isinstance(v, bool)
        }
        if objective is None:
            raise ConfigError(
                "hydra.sweeper.objective",
                "null",
                f"the task returned a dict ({', '.join(out) or 'no numbers'}): name the value "
                f"to optimise, e.g. hydra.sweeper.objective={next(iter(out), 'val_acc')}",
            )
        if objective not in out:
            raise ConfigError(
                "hydra.sweeper.objective",
                objective,
                f"not among the task's returned values: {', '.join(sorted(out)) or 'none'}",
            )
        return out
    raise ConfigError(
        "the task's return value",
        type(value).__name__,
        "a float, or a dict of floats (hydra.sweeper.objective)",
    )


def score(value: Any, objective: str | None) -> float:
    return returned_metrics(value, objective)[objective or DEFAULT_OBJECTIVE]


def default_direction(objective: str) -> str:
    return "maximize" if maximize(objective) else "minimize"


# ----------------------------------------------------------------------------------------------
# The wrapper that makes any app's job a tracked seed-run


@dataclass
class TrackedTask:
    """Any app's task function, each call recorded as one MLflow seed-run (see module doc)."""

    task_function: Callable[[DictConfig], Any]
    settings: AppSettings
    context: RunContext = field(default_factory=RunContext)
    # in-process only (not pickled): (job number, its objective or its error) -> go on?
    on_end: Callable[[int, float | BaseException], bool] | None = None
    by_job: dict[int, RunContext] = field(default_factory=dict)  # a batch of several trials
    job_num: int = -1  # the job running now (Hydra's hydra.job.num)
    stopped: bool = False  # on_end said stop: the batch's remaining jobs do not train
    plain: bool = False  # seed_strategy=none: the task function alone, no seed, no MLflow run

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "on_end": None, "stopped": False}

    def __call__(self, cfg: DictConfig) -> Any:
        if self.plain:
            return self.task_function(cfg)
        if self.stopped:
            return None  # the trial was pruned: its remaining seeds are not trained
        from hydra.core.hydra_config import HydraConfig

        from seedhp.job.tracking import Tracker

        s = self.settings
        hc = HydraConfig.get()
        self.job_num = int(hc.job.num)
        self.context = self.by_job.get(self.job_num, self.context)
        hydra_files(hc)
        overrides = [str(o) for o in hc.overrides.task]
        seed = app_seed(cfg, s.seed_key)
        container = identity_view(cfg)
        config_overrides = list(without_seed(overrides, s.seed_key))
        label = self.context.label or " ".join([str(hc.job.name), *sorted(config_overrides)])
        tracker = Tracker(s.uri(), s.experiment or "seedhp")
        cid = app_config_id(container, s)
        lock = claims.store_lock(tracker, cid) if self.context.claim else nullcontext(True)
        with lock as exact:
            if self.context.claim and seed in claims.taken(tracker, cid, [seed]):
                return self._reused(tracker, cid, seed, cfg)
            run_id = self._start(tracker, seed, cid, label, hc, config_overrides)
        if (
            self.context.claim
            and not exact
            and seed in claims.beaten(tracker, cid, {seed: run_id})
        ):
            tracker.delete_run(run_id)
            return self._reused(tracker, cid, seed, cfg)
        return self._run(tracker, run_id, seed, container, overrides, cfg)

    def _reused(self, tracker: Any, cid: str, seed: int, cfg: DictConfig) -> Any:
        """Another process has run or is running this (configuration, seed): its metrics, once
        it has finished (the sweep counts its run as its own); if its process dies first, the
        job runs here after all."""
        name = self.settings.objective or DEFAULT_OBJECTIVE
        parent = self.context.parent_run_id
        values, orphans = claims.wait(tracker, cid, [seed], name, parent, self.context.role)
        if orphans:
            return replace(self, context=replace(self.context, claim=False))(cfg)
        return {name: values[seed]} if self.settings.objective else values[seed]

    def _start(
        self, tracker: Any, seed: int, cid: str, label: str, hc: Any, config_overrides: list[str]
    ) -> str:
        tags = {
            **record.seed_run_tags(
                seed,
                cid,
                label,
                self.context.role,
                str(hc.runtime.output_dir),
                config_overrides,
                self.context.parent_run_id,
            ),
            record.APP: str(hc.job.name),
            record.SEED_KEY: self.settings.seed_key,
            record.APP_SCRIPT: self.settings.script,
            record.APP_DIR: self.settings.started_in,
            **({record.RESEED_OF: self.settings.reseed_of} if self.settings.reseed_of else {}),
            **self.context.tags(),
        }
        return tracker.start_run(
            record.run_name(seed, label, self.context.trial), tags, self.context.parent_run_id
        )

    def _run(
        self,
        tracker: Any,
        run_id: str,
        seed: int,
        container: dict[str, Any],
        overrides: list[str],
        cfg: DictConfig,
    ) -> Any:
        """The task function, recorded as the seed-run `run_id`."""
        from seedhp.job.tracking import metric

        s = self.settings
        params = {
            **{k: redact(v) if "uri" in k else v for k, v in flatten(container).items()},
            "overrides": " ".join(overrides)[:6000],
        }
        tracker.log(run_id, params=params)
        started = time.monotonic()
        try:
            seed_globals(seed)
            ref = SeedRunRef(tracker.uri, run_id, s.objective or DEFAULT_OBJECTIVE, seed)
            with _active_run(tracker.uri, run_id), in_seed_run(ref):
                value = self.task_function(cfg)
            try:
                metrics = returned_metrics(value, s.objective)
            except ConfigError:
                self.stopped = True  # every job would fail the same way: the sweep stops
                raise
        except Pruned as err:  # seedhp.report_epoch: the trial's pruner stopped it
            tracker.log(run_id, tags={"seedhp.status": "pruned", "seedhp.pruned": str(err)})
            tracker.end_run(run_id, "FINISHED")
            raise
        except BaseException as err:
            fault = None if isinstance(err, KeyboardInterrupt) else faults.fault_of(err)
            if fault is not None:  # every job after it would fail the same way: stop the sweep
                with contextlib.suppress(Exception):
                    tracker.interrupt(run_id, fault.line)
                raise fault from err
            interrupted = isinstance(err, KeyboardInterrupt)
            tracker.log(
                run_id,
                tags={
                    "seedhp.status": "interrupted" if interrupted else "failed",
                    "seedhp.error": f"{type(err).__name__}: {err}"[:5000],
                },
            )
            tracker.end_run(run_id, "KILLED" if interrupted else "FAILED")
            if self.on_end is not None and not interrupted and not self.on_end(self.job_num, err):
                self.stopped = True
            raise
        status = "finished" if all(math.isfinite(v) for v in metrics.values()) else "diverged"
        logged = tracker.client.get_run(run_id).data.metrics  # by the app, while it ran
        tracker.log(
            run_id,
            metrics=[
                *(metric(k, v) for k, v in metrics.items() if logged.get(k) != v),
                metric("job_seconds", time.monotonic() - started),
            ],
            tags={"seedhp.status": status},
        )
        tracker.end_run(run_id, "FINISHED")
        objective = metrics[s.objective or DEFAULT_OBJECTIVE]
        if self.on_end is not None and not self.on_end(self.job_num, objective):
            self.stopped = True
        return value


def hydra_files(hc: Any) -> None:
    """The job's .hydra/ files, which Hydra wrote before the job started, scrubbed of the
    passwords this process knows (a storage or tracking URI in hydra.yaml, overrides.yaml)."""
    if hc.output_subdir is not None:
        scrub_files(Path(str(hc.runtime.output_dir)) / str(hc.output_subdir))


@contextlib.contextmanager
def _active_run(uri: str, run_id: str) -> Iterator[None]:
    """The seed-run as MLflow's active run (its fluent API's store set to the run's), so the
    app's own mlflow.log_* calls land in it; the caller sets the run's final status."""
    import mlflow

    previous = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(uri)
    mlflow.start_run(run_id=run_id)
    try:
        yield
    finally:
        # the app may have pointed MLflow elsewhere (a Lightning MLFlowLogger on another
        # store sets the global URI): the run is ended where it lives
        mlflow.set_tracking_uri(uri)
        mlflow.end_run()
        mlflow.set_tracking_uri(previous)
