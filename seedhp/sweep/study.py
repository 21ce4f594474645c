"""Optuna studies with the seed as a hyperparameter: the work behind `hydra/sweeper=seedhp_optuna`.

A study is a loop of `ask -> launch -> tell` until `n_trials` trials of the study have finished
(in any process sharing its storage). What one trial trains depends on the seed strategy:

- tuned: the seed is one more searched dimension; a trial is one seed-run.
- averaged: a trial is one configuration on the first `seeds_per_trial` seeds of a pool every
  trial shares, launched as one batch; each seed's score is reported at its pool position, so a
  pruner (WilcoxonPruner) can stop a configuration that is already worse than the best one.
- fixed: every trial uses the same seed (the baseline Bethard calls risky).

A (configuration, seed) pair that already has a finished seed-run in the study is never trained
again: the trial reuses its score and says so in its user attributes.

This module is the loop; a study's settings, storage and MLflow record are study_settings,
study_storage and study_record.
"""

from __future__ import annotations

import contextlib
import logging
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import optuna
from hydra.core.utils import JobReturn, JobStatus
from hydra.plugins.launcher import Launcher
from hydra.types import HydraContext
from omegaconf import DictConfig, OmegaConf
from optuna.trial import Trial, TrialState

from seedhp import faults, heap
from seedhp.errors import exit_on_config_error
from seedhp.job.hooks import Hooks
from seedhp.job.owner import this_process
from seedhp.job.signals import held_interrupts
from seedhp.job.tracking import Tracker
from seedhp.job.urls import scrub, write_scrubbed
from seedhp.stats.aggregate import aggregate
from seedhp.stats.contrast import best_trials
from seedhp.stats.summary import seed_ignored_line
from seedhp.sweep import at_end
from seedhp.sweep.app import App, stop_on_config_error
from seedhp.sweep.plain import extend, job_failed
from seedhp.sweep.space import SearchSpace, end_variants, override_of, sweep_space
from seedhp.sweep.study_context import StudyContext
from seedhp.sweep.study_record import (
    finish,
    fmt_scores,
    show_params,
    study_parent,
    winner_seed_key,
)
from seedhp.sweep.study_settings import StudySettings, storage_label, study_settings
from seedhp.sweep.study_storage import (
    FINISHED,
    OWNER,
    TrialHeartbeat,
    config_key,
    count_trials,
    fail_stale_trials,
    finished_seed_runs,
    known_config_id,
    open_study,
    retry_lost,
    tell,
)
from seedhp.sweep.tracked import RunContext, Target

log = logging.getLogger("seedhp")


@dataclass
class TrialOutcome:
    """What a trial's seed-runs gave; `scores` by seed, in the order they were reported."""

    scores: dict[int, float] = field(default_factory=dict)
    run_ids: dict[int, str] = field(default_factory=dict)
    reused: list[int] = field(default_factory=list)
    errors: dict[int, str] = field(default_factory=dict)
    pruned: bool = False
    pruned_epoch: int | None = None  # tuned/fixed: the epoch a seed-run was stopped after
    pruned_value: float = math.nan  # ... and the value it reported then
    config_id: str | None = None  # of its seed-runs: where it stands among tied trials


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
        space = sweep_space(sweeper, arguments, app.seed_key)
        job_settings, job_seed = check_space(hydra_context, config, space, app)
        settings = study_settings(sweeper, space, job_settings, job_seed)
    sweep_dir = Path(str(config.hydra.sweep.dir))
    # the storage and the MLflow store are reached before anything is written
    ctx = start_study(hydra_context, config, launcher, app, settings, job_settings, sweep_dir)
    faults.writes_to("hydra.sweep.dir", sweep_dir)  # named when a write there fails
    sweep_dir.mkdir(parents=True, exist_ok=True)
    write_scrubbed(sweep_dir / "multirun.yaml", OmegaConf.to_yaml(config))
    ctx.tracker.reap()
    status, last = "FAILED", False
    try:
        if run_trials(ctx):
            status = "FINISHED"
            last = _ran_the_last_trial(ctx)
            if last:  # once per study, not once per process sharing it
                at_end.reseed(
                    ctx.tracker,
                    ctx.parent,
                    job_settings,
                    launcher,
                    first_job_idx=(len(ctx.study.trials) + 1) * len(settings.seeds),
                    named=at_end.named_by_user(config, arguments),
                )
    except BaseException as err:
        if faults.stopped(err):  # Ctrl-C, SIGTERM, a full disk: interrupted, not failed
            status = "KILLED"
        raise
    finally:
        print(finish(ctx, status), flush=True)
    if status != "FINISHED":
        raise SystemExit(1)  # stopped on failures: the study did not complete
    if last and (path := at_end.report(ctx.tracker, ctx.parent, job_settings, sweep_dir)):
        print(f"Report: {path}", flush=True)
    return [ctx.returns]


def start_study(
    hydra_context: HydraContext,
    config: DictConfig,
    launcher: Launcher,
    app: App,
    settings: StudySettings,
    job: Target,
    sweep_dir: Path,
    replicate: int | None = None,
) -> StudyContext:
    """Open (or resume) the study and its MLflow parent run, nested under
    job.tracking.parent_run_id when there is one (the strategy contrast's)."""
    with exit_on_config_error():
        study = open_study(settings)
        tracker = Tracker(job.tracking.uri, job.tracking.experiment)
    parent = study_parent(tracker, study, settings, job)
    ctx = StudyContext(
        hydra_context,
        config,
        launcher,
        app,
        settings,
        study,
        tracker,
        parent,
        sweep_dir,
        replicate=replicate,
    )
    log.info(
        "study %s (%s, %s %s, %s sampler, %s pruner%s) in %s: %d of %d trials finished",
        settings.name,
        settings.strategy,
        settings.direction,
        settings.objective,
        settings.sampler,
        settings.pruner,
        f", {settings.n_jobs} trials a batch" if settings.n_jobs > 1 else "",
        storage_label(settings.storage),
        count_trials(ctx, FINISHED),
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
    return ctx


def run_trials(ctx: StudyContext) -> bool:
    """Ask, launch and tell until the study has n_trials finished trials (True), or this
    process's trials keep failing (False); n_jobs trials at a time, launched as one batch."""
    batch: list[Trial] = []
    try:
        while batch := _next_batch(ctx):
            run_batch(ctx, batch)
            if _too_many_failures(ctx):
                return False
    except KeyboardInterrupt:  # Ctrl-C, SIGTERM: the trials fail now, not at the next start
        for trial in batch:
            _interrupted(ctx, trial)
        raise
    except (Exception, faults.Fault):  # a full disk, a store gone: the same, where it can be
        for trial in batch:
            with contextlib.suppress(Exception):
                _interrupted(ctx, trial)
        raise
    return True


def _next_batch(ctx: StudyContext) -> list[Trial]:
    """Up to n_jobs trials: the first waits for a place in the budget, the others take one only
    if it is free."""
    first = _next_trial(ctx)
    if first is None:
        return []
    batch = [first]
    try:
        while len(batch) < ctx.settings.n_jobs and (more := _next_trial(ctx, wait=False)):
            batch.append(more)
    except KeyboardInterrupt:
        for trial in batch:
            _interrupted(ctx, trial)
        raise
    return batch


def _interrupted(ctx: StudyContext, trial: Trial) -> None:
    """Fail a trial this process was running when it was interrupted, and queue its
    configuration again: running the command again trains it, reusing the seeds it finished."""
    state = ctx.study.get_trials(deepcopy=False)[trial.number].state
    if state != TrialState.RUNNING:
        return  # told already
    tell(ctx.study, trial, state=TrialState.FAIL)
    log.info("trial %d interrupted: marked failed", trial.number)
    retry_lost(ctx, trial.number)


def _ran_the_last_trial(ctx: StudyContext) -> bool:
    """Whether this process ran the study's highest-numbered finished trial: the one process
    of those sharing a study that writes its report."""
    finished = ctx.study.get_trials(deepcopy=False, states=FINISHED)
    if not finished:
        return False
    last = max(finished, key=lambda t: t.number)
    return last.user_attrs.get(OWNER) == this_process()


def check_space(
    hydra_context: HydraContext, config: DictConfig, space: SearchSpace, app: App
) -> tuple[Target, int]:
    """Compose and check a job at each end of every dimension before any trial runs."""
    first_settings: Target | None = None
    for variant in end_variants(space):
        cfg = hydra_context.config_loader.load_sweep_config(config, variant)
        settings = app.target(cfg)
        first_settings = first_settings or settings
    assert first_settings is not None
    return first_settings, first_settings.seed


def _too_many_failures(ctx: StudyContext) -> bool:
    """Failed trials (errors, divergence) do not count towards n_trials: a study whose trials
    keep failing would never end. Stop once more than max_failure_rate of this process's trials
    (counted as 5 until 5 have run) failed; with max_failure_rate=1 failed trials count towards
    n_trials instead (_counted)."""
    s = ctx.settings
    if ctx.failed > s.max_failure_rate * max(ctx.asked, 5):
        log.error(
            "stopping: %d of the %d trials this process ran failed (more than "
            "hydra.sweeper.max_failure_rate=%g); see the trials' errors",
            ctx.failed,
            ctx.asked,
            s.max_failure_rate,
        )
        return True
    return False


def _counted(ctx: StudyContext) -> int:
    """The trials n_trials counts: finished ones, and failed ones too when every failure is
    tolerated (max_failure_rate=1), so that a study whose every trial fails still ends."""
    n = count_trials(ctx, FINISHED)
    if ctx.settings.max_failure_rate >= 1:
        failed = ctx.study.get_trials(deepcopy=False, states=(TrialState.FAIL,))
        n += sum(1 for t in failed if not t.user_attrs.get("seedhp.surplus"))
    return n


def _next_trial(ctx: StudyContext, wait: bool = True) -> Trial | None:
    """Ask for a trial while fewer than n_trials have finished or are running in the study;
    wait for other processes' trials when the rest of the budget is theirs (`wait`), or
    return None."""
    study, n = ctx.study, ctx.settings.n_trials
    live = (*FINISHED, TrialState.RUNNING)
    while True:
        fail_stale_trials(ctx)
        if _counted(ctx) >= n:
            return None
        if _counted(ctx) + count_trials(ctx, (TrialState.RUNNING,)) >= n:
            if not wait:
                return None
            time.sleep(1.0)  # another process holds the last trials; take over if it dies
            continue
        trial: Trial | None = None
        try:
            with held_interrupts():  # the trial exists once asked: an interrupt must find it
                trial = study.ask(fixed_distributions=ctx.settings.space.distributions())
            trial.set_user_attr(OWNER, this_process())
            if ctx.settings.custom is not None:  # custom_search_space: more suggestions
                with exit_on_config_error():
                    extend(ctx.settings.custom, ctx.settings.space, ctx.config, trial)
            if _counted(ctx) + count_trials(ctx, (TrialState.RUNNING,)) <= n:
                return trial
            # Other processes asked at the same moment: the lowest numbers keep the last places.
            numbers = sorted(t.number for t in study.get_trials(deepcopy=False, states=live))
            if numbers.index(trial.number) < n:
                return trial
            trial.set_user_attr("seedhp.surplus", True)
            tell(study, trial, state=TrialState.FAIL)
        except KeyboardInterrupt:
            if trial is not None:
                _interrupted(ctx, trial)
            raise


@dataclass
class Running:
    """A trial of the batch in progress: its configuration, its seeds, what they gave."""

    trial: Trial
    params: dict[str, Any]
    seeds: list[int]
    outcome: TrialOutcome
    to_train: list[int]
    steps: dict[int, int]  # averaged: each seed's position in the pool, where it is reported

    def record(self, s: StudySettings, seed: int, value: float, run_id: str | None) -> bool:
        """Report one seed's score; True when the trial should stop here. The score is stored
        on the trial at once, so a trial whose process dies keeps the seed-runs it finished."""
        self.outcome.scores[seed] = value
        if run_id:
            self.outcome.run_ids[seed] = run_id
        scores = {str(k): v for k, v in self.outcome.scores.items()}
        self.trial.set_user_attr("seed_scores", scores)
        if s.strategy == "averaged" and not math.isnan(value):
            self.trial.report(value, self.steps[seed])
            return self.trial.should_prune()
        return False


def _start(ctx: StudyContext, trial: Trial) -> Running:
    """A trial's seeds; those the study already finished for its configuration are reused."""
    s = ctx.settings
    params = dict(trial.params)
    seeds = [int(params.pop(_seed_override(s)))] if s.strategy == "tuned" else list(s.seeds)
    key = config_key(s.space.fixed, params, ctx.settings.space)
    trial.set_user_attr("config_key", key)
    known = finished_seed_runs(ctx.study, key)
    steps = {seed: (s.seeds.index(seed) if s.strategy == "averaged" else 0) for seed in seeds}
    r = Running(trial, params, seeds, TrialOutcome(config_id=known_config_id(ctx.study, key)),
                [], steps)  # fmt: skip
    for seed in seeds:
        if seed in known:
            r.outcome.reused.append(seed)
            if r.record(s, seed, *known[seed]):
                r.outcome.pruned = True
                break
        else:
            r.to_train.append(seed)
    if r.outcome.pruned:
        r.to_train = []
    return r


def run_batch(ctx: StudyContext, trials: Sequence[Trial]) -> None:
    """The trials' seed-runs go to the launcher as one batch, then each trial is told."""
    s = ctx.settings
    running = [_start(ctx, trial) for trial in trials]
    beats = [TrialHeartbeat(ctx.study, r.trial, s.heartbeat_seconds) for r in running]
    try:
        if any(r.to_train for r in running):
            _launch_seeds(ctx, running)
    finally:
        for beat in beats:
            beat.stop()
    for r in running:
        _tell(ctx, r.trial, r.params, r.seeds, r.outcome)
    log.info("  %s", _progress(ctx))


def _seed_override(s: StudySettings) -> str:
    """The seed's key as searched: `+seed` when the override adds a key the app lacks."""
    return s.space.seed.key if s.space.seed is not None else s.space.seed_key


def _progress(ctx: StudyContext) -> str:
    """Trials finished of n_trials in the study (every process), and the best value so far."""
    s = ctx.settings
    complete = ctx.study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    done = count_trials(ctx, FINISHED)
    if not complete:
        return f"study {s.name}: {done}/{s.n_trials} trials finished"
    best = best_trials(complete, s.maximize, winner_seed_key(s))[0]
    return (
        f"study {s.name}: {done}/{s.n_trials} trials finished, best {s.objective} "
        f"{best.value:.4f} (trial {best.number})"
    )


def _launch_seeds(ctx: StudyContext, running: Sequence[Running]) -> None:
    """The batch's seed-runs go to the launcher together; after each one finishes its score is
    reported to its trial, and a launcher that supports it (seedhp's) stops a one-trial batch
    when the trial is pruned. In a batch of several trials a pruned trial's remaining seeds
    still train (as for any launcher that reports only after the batch)."""
    s = ctx.settings
    items: list[tuple[list[str], RunContext]] = []
    owners: list[tuple[Running, int]] = []
    for r in running:
        base = [*s.space.fixed, *(override_of(s.space, k, v) for k, v in r.params.items())]
        context = RunContext(
            ctx.parent, "trial", s.name, r.trial.number, s.strategy, replicate=ctx.replicate
        )
        for seed in r.to_train:
            items.append(([*base, f"{_seed_override(s)}={seed}"], context))
            owners.append((r, seed))
    per_trial = len(s.seeds if s.strategy == "averaged" else [0])
    first_idx = ctx.job_offset + running[0].trial.number * per_trial
    if len(running) == 1:
        jobs = ctx.app.jobs([job for job, _ in items], items[0][1])
    else:
        jobs = ctx.app.batch_jobs(items, first_idx)
    alone = len(running) == 1

    def on_job_end(i: int, ret: JobReturn) -> bool:
        r, seed = owners[i]
        if r.outcome.pruned:
            return True  # a pruned trial's other seeds in a batch of several: not reported
        if ret.status == JobStatus.COMPLETED:
            if r.record(s, seed, ctx.app.score(ret), None):
                r.outcome.pruned = True
                return not alone
        else:
            error = ret._return_value
            r.outcome.errors[seed] = f"{type(error).__name__}: {error}"
            job_failed(f"trial {r.trial.number}, seed {seed},", error, not ctx.traceback_shown)
            ctx.traceback_shown = True
        return True

    def on_epoch(epoch: int, value: float) -> bool:  # tuned/fixed, n_jobs=1: one seed-run
        r = running[0]
        r.trial.report(value, epoch)
        r.outcome.pruned = r.trial.should_prune()
        r.outcome.pruned_epoch, r.outcome.pruned_value = epoch, value
        return r.outcome.pruned

    epochs_pruned = s.strategy != "averaged" and s.pruner != "none"
    hooks = Hooks(on_epoch if epochs_pruned and alone else None, on_job_end)
    returns, heard = ctx.app.launch(ctx.launcher, jobs, first_idx, hooks)
    heap.started()  # no-op where the first trial's probe ended start-up already
    stop_on_config_error(returns)
    if not heard:  # reports after the whole batch
        for i, ret in enumerate(returns):
            if not on_job_end(i, ret):
                break
    ctx.returns.extend(returns)
    for r in running:
        mine = f"tags.`seedhp.study` = '{s.name}' and tags.`seedhp.trial` = '{r.trial.number}'"
        for run in ctx.tracker.search(mine):  # this trial's MLflow runs, by seed
            r.outcome.run_ids[int(run.data.tags["seed"])] = run.info.run_id
            r.outcome.config_id = run.data.tags.get("config_id", r.outcome.config_id)


def _tell(
    ctx: StudyContext,
    trial: Trial,
    params: dict[str, Any],
    seeds: list[int],
    outcome: TrialOutcome,
) -> None:
    s = ctx.settings
    ctx.asked += 1
    # seed_scores were stored seed by seed as they came; each attribute is one storage write
    trial.set_user_attr(  # seed -> MLflow run: from optuna-dashboard to MLflow
        "mlflow_run_ids", {str(x): outcome.run_ids[x] for x in seeds if x in outcome.run_ids}
    )
    if outcome.reused:
        trial.set_user_attr("reused_seeds", outcome.reused)
    if outcome.config_id:
        trial.set_user_attr("config_id", outcome.config_id)
    if outcome.errors:
        trial.set_user_attr("errors", {str(k): scrub(v) for k, v in outcome.errors.items()})
    values = [outcome.scores[x] for x in seeds if x in outcome.scores]
    shown = show_params(params)
    reused = f", reused seed-runs of seeds {outcome.reused}" if outcome.reused else ""
    if outcome.errors:
        ctx.failed += 1
        tell(ctx.study, trial, state=TrialState.FAIL)
        log.info(
            "trial %d  %s  FAILED: %s", trial.number, shown, "; ".join(outcome.errors.values())
        )
    elif outcome.pruned:
        tell(ctx.study, trial, state=TrialState.PRUNED)
        if outcome.pruned_epoch is not None:
            log.info(
                "trial %d  %s  pruned after epoch %d (%s %.4f)",
                trial.number,
                shown,
                outcome.pruned_epoch,
                s.objective,
                outcome.pruned_value,
            )
        else:
            log.info(
                "trial %d  %s  pruned after %d of %d seeds (%s %s)%s",
                trial.number,
                shown,
                len(values),
                len(seeds),
                s.objective,
                fmt_scores(values),
                reused,
            )
    else:
        value = aggregate(values, s.aggregate, s.maximize)
        if math.isnan(value):
            trial.set_user_attr("diverged", True)
            ctx.failed += 1
            tell(ctx.study, trial, state=TrialState.FAIL)
            log.info(
                "trial %d  %s  diverged (%s %s)",
                trial.number,
                shown,
                s.objective,
                fmt_scores(values),
            )
            return
        tell(ctx.study, trial, value)
        if len(set(values)) == 1 < len(values) and not ctx.seed_warned:
            ctx.seed_warned = True  # once per study
            log.warning(
                seed_ignored_line(f"trial {trial.number}", len(values), s.objective, value)
            )
        how = (
            f"{s.aggregate} of {len(values)} seeds"
            if s.strategy == "averaged"
            else f"seed {seeds[0]}"
        )
        log.info(
            "trial %d  %s  %s %.4f (%s)%s", trial.number, shown, s.objective, value, how, reused
        )
