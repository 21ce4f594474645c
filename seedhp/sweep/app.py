"""The app behind a sweep, as the sweepers see it (seedhp.sweep.tracked has the pieces).

`prepare` runs in a sweeper's `setup`: it tells seedhp's own task from any other app's, wraps
the other app's task function so each job is a tracked seed-run, and refuses seedhp's launchers
for it. The sweepers then only ever ask the `App`: check a composed config, form the jobs of a
batch in their sweep context, watch each job's score as it finishes, read a score.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from hydra.core.utils import JobReturn, JobStatus
from hydra.plugins.launcher import Launcher
from omegaconf import DictConfig, OmegaConf

from seedhp.errors import ConfigError, exit_on_config_error
from seedhp.job.hooks import Hooks, epoch_reports
from seedhp.job.identity import quote
from seedhp.sweep.tracked import (
    AppSettings,
    RunContext,
    Target,
    TrackedTask,
    app_settings,
    app_target,
    check_launcher,
    is_own_task,
    score,
)

log = logging.getLogger("seedhp")

OnJobEnd = Callable[[int, JobReturn], bool]  # (index in the batch, its return) -> go on?


@dataclass
class App:
    task: Callable[[DictConfig], Any]  # what the launcher runs
    own: bool
    settings: AppSettings

    @property
    def seed_key(self) -> str:
        return self.settings.seed_key

    def target(self, cfg: DictConfig) -> Target:
        """Everything about one composed config that can be wrong before training."""
        if self.own:
            from seedhp.job.run import check

            return Target.of(check(cfg)[0])
        return app_target(cfg, self.settings)

    def jobs(self, batch: Sequence[Sequence[str]], context: RunContext) -> list[list[str]]:
        """The batch's overrides, each job told its place in the sweep: seedhp's own task
        through `tracking.*` overrides, any other app through its wrapper."""
        if self.own:
            return [[*job, *tracking_overrides(context)] for job in batch]
        assert isinstance(self.task, TrackedTask)
        self.task.context = context
        self.task.by_job = {}
        self.task.stopped = False
        return [list(job) for job in batch]

    def batch_jobs(
        self, items: Sequence[tuple[Sequence[str], RunContext]], first_idx: int
    ) -> list[list[str]]:
        """Jobs of several trials in one batch, each with its own context (another app's
        wrapper finds its job's by the job's number, first_idx + its position)."""
        if self.own:
            return [[*job, *tracking_overrides(c)] for job, c in items]
        assert isinstance(self.task, TrackedTask)
        self.task.by_job = {first_idx + i: c for i, (_, c) in enumerate(items)}
        self.task.context = items[0][1] if items else RunContext()
        self.task.stopped = False
        return [list(job) for job, _ in items]

    def launch(
        self,
        launcher: Launcher,
        jobs: Sequence[Sequence[str]],
        first_idx: int,
        hooks: Hooks,
    ) -> tuple[list[JobReturn], bool]:
        """Launch the jobs; True when `hooks` heard each job as it ended (seedhp's launchers,
        through launch_with; Hydra's basic launcher for any app, through the wrapper it runs),
        False when the caller must replay the returns after the batch."""
        if self.own and hasattr(launcher, "launch_with"):
            return list(launcher.launch_with(jobs, first_idx, hooks)), True
        if self.own or not _in_process(launcher):
            return list(launcher.launch(jobs, first_idx)), False
        assert isinstance(self.task, TrackedTask)
        on_job_end = hooks.on_job_end

        def on_end(job_num: int, value: float | BaseException) -> bool:
            return on_job_end is None or on_job_end(job_num - first_idx, _ended(value))

        self.task.on_end = on_end
        try:
            with epoch_reports(hooks.on_epoch):  # the app's loop calls seedhp.report_epoch
                return list(launcher.launch(jobs, first_idx)), True
        finally:
            self.task.on_end = None

    def score(self, ret: JobReturn) -> float:
        """A finished job's objective. The objective named wrongly is bad input: the sweep
        stops with one line, rather than fail every trial the same way."""
        if self.own:
            return float(ret.return_value)
        with exit_on_config_error():
            return score(ret.return_value, self.settings.objective)


def stop_on_config_error(returns: Sequence[JobReturn]) -> None:
    """A job that failed on bad input (another app's return value without the objective the
    sweeper was told to read) ends the sweep with that one line."""
    for ret in returns:
        if ret.status == JobStatus.FAILED and isinstance(ret._return_value, ConfigError):
            with exit_on_config_error():
                raise ret._return_value


def prepare(
    task_function: Callable[[DictConfig], Any], config: DictConfig, sweeper: Mapping[str, Any]
) -> App:
    with exit_on_config_error():
        own = is_own_task(task_function)
        settings = app_settings(sweeper)
        if own:
            _own_settings(settings)
        check_launcher(config, own)
    if own:
        return App(task_function, True, settings)
    settings = replace(settings, objective=settings.objective or optimized_metric(config))
    return App(TrackedTask(task_function, settings), False, settings)


def peer_named(sweeper: Mapping[str, Any], peer_class: str) -> None:
    """hydra.sweeper._target_ named hydra-optuna-sweeper's class, which is not installed: with
    seedhp_optuna's settings composed (`override /hydra/sweeper: seedhp_optuna`), seedhp's
    sweeper runs the study and says so; without them, one line says what to write."""
    if "seed_strategy" not in sweeper:
        with exit_on_config_error():
            raise ConfigError(
                "hydra.sweeper._target_",
                peer_class,
                "hydra-optuna-sweeper is not installed (it needs optuna<3); seedhp's sweeper "
                "reads the same settings: put `override /hydra/sweeper: seedhp_optuna` in the "
                "defaults list",
            )
    log.info(
        "hydra.sweeper._target_ names hydra-optuna-sweeper's OptunaSweeper, which is not "
        "installed: seedhp's sweeper (seedhp_optuna) runs this study"
    )


def optimized_metric(config: DictConfig) -> str | None:
    """lightning-hydra-template's convention: the app's `optimized_metric` names what its task
    returns (a float read from its metric dict), unless hydra.sweeper.objective says otherwise."""
    value = OmegaConf.select(config, "optimized_metric", default=None)
    return value if isinstance(value, str) and value else None


def _own_settings(s: AppSettings) -> None:
    """seedhp's own app names these in its own config: say where."""
    for key, value, instead in (
        ("seed_key", s.seed_key if s.seed_key != "seed" else None, "seed"),
        ("objective", s.objective, "train.objective"),
        ("tracking_uri", s.tracking_uri, "tracking.uri"),
        ("experiment", s.experiment, "tracking.experiment"),
        (
            "ignore_keys",
            list(s.ignore_keys) or None,
            "its own runtime keys",
        ),
        ("test_metric", s.test_metric, "test_acc"),
        ("reseed_of", s.reseed_of, "tracking.reseed_of"),
    ):
        if value is not None:
            raise ConfigError(
                f"hydra.sweeper.{key}", value, f"for other apps; seedhp's own app uses {instead}"
            )


def tracking_overrides(c: RunContext) -> list[str]:
    out = [f"tracking.role={c.role}"]
    if c.parent_run_id:
        out.append(f"tracking.parent_run_id={c.parent_run_id}")
    for key, value in (
        ("study", c.study),
        ("trial", c.trial),
        ("strategy", c.strategy),
        ("replicate", c.replicate),
    ):
        if value is not None:
            out.append(f"tracking.{key}={value}")
    if c.label:
        out.append(f"tracking.label={quote(c.label)}")
    if c.claim:
        out.append("++tracking.claim=true")  # ++: configs stored before the key existed
    return out


def _in_process(launcher: Launcher) -> bool:
    """Hydra's basic launcher runs each job in this process, one after another."""
    return type(launcher).__name__ == "BasicLauncher"


def _ended(value: float | BaseException) -> JobReturn:
    ret = JobReturn()
    ret.status = JobStatus.FAILED if isinstance(value, BaseException) else JobStatus.COMPLETED
    ret._return_value = value
    return ret


def returned(ret: JobReturn) -> Any:
    """A job's return value, or None for a job skipped after its trial was pruned."""
    return ret._return_value if ret.status == JobStatus.COMPLETED else None
