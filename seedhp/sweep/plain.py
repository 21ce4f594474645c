"""`seed_strategy=none`: a plain Optuna study, as hydra-optuna-sweeper runs it.

An app without a seed key, or whose seed is not searched, gets what its users had from
hydra-optuna-sweeper: trials asked `n_jobs` at a time and launched as one batch of the app's
launcher, their return values told (one float, or one per direction), `custom_search_space`,
`optimization_results.yaml` with the best trial or the Pareto front. No seed is searched or
set, nothing is recorded in MLflow, and no report is written: there are no seed statistics.
Nothing here imports torch or MLflow.
"""

from __future__ import annotations

import logging
import math
import sys
import traceback
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna
import yaml
from hydra.core.utils import JobReturn, JobStatus
from hydra.plugins.launcher import Launcher
from hydra.types import HydraContext
from omegaconf import DictConfig, ListConfig, OmegaConf
from optuna.trial import Trial, TrialState

from seedhp.errors import ConfigError, exit_on_config_error
from seedhp.job.urls import redact, remember, write_scrubbed
from seedhp.sweep.app import App, stop_on_config_error
from seedhp.sweep.samplers import Choice, pruner_choice, sampler_choice, sampler_of
from seedhp.sweep.space import (
    CustomSpace,
    SearchSpace,
    custom_space,
    end_variants,
    override_of,
    sweep_space,
    value_text,
)
from seedhp.sweep.study_settings import (
    count,
    default_study_name,
    directions,
    failure_rate,
    grid_trials,
    seed_strategy,
    storage_url,
)
from seedhp.sweep.study_storage import tell
from seedhp.sweep.tracked import DEFAULT_OBJECTIVE, TrackedTask, score

log = logging.getLogger("seedhp")


@dataclass(frozen=True)
class PlainSettings:
    name: str
    storage: str | None
    directions: tuple[str, ...]
    why: str  # where the direction came from
    n_trials: int
    n_jobs: int
    max_failure_rate: float
    sampler: Choice
    space: SearchSpace
    objective: str
    custom: CustomSpace | None

    @property
    def counted(self) -> tuple[TrialState, ...]:
        """The trials n_trials counts: finished ones, and failed ones too when every failure is
        tolerated (max_failure_rate=1), so a study whose every trial fails still ends."""
        done = (TrialState.COMPLETE, TrialState.PRUNED)
        return (*done, TrialState.FAIL) if self.max_failure_rate >= 1 else done


def is_plain(app: App, sweeper: Mapping[str, Any], arguments: Sequence[str]) -> bool:
    """Whether this study is a plain one (seed_strategy=none, given or chosen)."""
    if app.own:
        return False
    with exit_on_config_error():
        space = sweep_space(sweeper, arguments, app.seed_key)
        return seed_strategy(sweeper, space, own=False) == "none"


def plain_settings(sweeper: Mapping[str, Any], space: SearchSpace, app: App) -> PlainSettings:
    objective = app.settings.objective or DEFAULT_OBJECTIVE
    dirs, why = directions(sweeper, objective)
    pruner = pruner_choice(sweeper.get("pruner"))
    if pruner.name != "none":
        raise ConfigError(
            "hydra.sweeper.pruner",
            pruner.label,
            "a plain study (seed_strategy=none) launches each trial as one job and hears only "
            "its return value: search the seed (seed_strategy=tuned) to prune per epoch",
        )
    sampler = sampler_choice(sweeper.get("sampler"))
    n_trials = count(sweeper, "n_trials")
    n_trials = grid_trials(sampler, space, n_trials)
    custom = custom_space(sweeper.get("custom_search_space"))
    return PlainSettings(
        name=sweeper.get("study_name") or default_study_name("none", space, ()),
        storage=storage_url(sweeper),
        directions=dirs,
        why=why,
        n_trials=n_trials,
        n_jobs=count(sweeper, "n_jobs"),
        max_failure_rate=failure_rate(sweeper),
        sampler=sampler,
        space=space,
        objective=objective,
        custom=custom,
    )


def plain_sweep(
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
        s = plain_settings(sweeper, space, app)
        for variant in end_variants(space):  # a key the app lacks: one line, before any job
            hydra_context.config_loader.load_sweep_config(config, list(variant))
        study = _open(s)
    assert isinstance(app.task, TrackedTask)
    app.task.plain = True  # the app's own task function: no seed set, no MLflow run
    sweep_dir = Path(str(config.hydra.sweep.dir))
    sweep_dir.mkdir(parents=True, exist_ok=True)
    write_scrubbed(sweep_dir / "multirun.yaml", OmegaConf.to_yaml(config))
    log.info(
        "study %s (seed_strategy=none: a plain Optuna study, no seed searched or set; %s %s, "
        "%s; %s sampler; storage %s; %d trial%s a batch): %d of %d trials done",
        s.name,
        "/".join(s.directions),
        s.objective if len(s.directions) == 1 else "the returned values",
        s.why,
        s.sampler.label,
        redact(s.storage) if s.storage else "in memory",
        s.n_jobs,
        "" if s.n_jobs == 1 else "s",
        _counted(study, s),
        s.n_trials,
    )
    returns: list[JobReturn] = []
    failed = asked = 0
    job_idx = len(study.trials)  # a resumed study's jobs get directories of their own
    first_error = True
    while (left := s.n_trials - _counted(study, s)) > 0:
        trials = [
            study.ask(fixed_distributions=space.distributions())
            for _ in range(min(left, s.n_jobs))
        ]
        try:
            jobs = [_overrides(s, config, trial) for trial in trials]
            batch = list(launcher.launch(jobs, initial_job_idx=job_idx))
        except BaseException:
            for trial in trials:  # asked and never told: failed, not left running
                tell(study, trial, state=TrialState.FAIL)
            raise
        job_idx += len(batch)
        stop_on_config_error(batch)
        returns.extend(batch)
        for trial, ret in zip(trials, batch, strict=True):
            asked += 1
            error = _tell_return(study, s, trial, ret, app)
            if error is not None:
                failed += 1
                job_failed(f"trial {trial.number}", error, first_error)
                first_error = False
        if failed > s.max_failure_rate * max(asked, 5):
            print(
                f"seedhp: stopping: {failed} of the {asked} trials this process ran failed "
                f"(more than hydra.sweeper.max_failure_rate={s.max_failure_rate:g})",
                file=sys.stderr,
                flush=True,
            )
            print(finish(study, s, sweep_dir), flush=True)
            raise SystemExit(1)
    print(finish(study, s, sweep_dir), flush=True)
    return [returns]


def _open(s: PlainSettings) -> optuna.Study:
    sampler = sampler_of(s.sampler, s.space)
    if s.storage is None:
        return optuna.create_study(
            study_name=s.name,
            sampler=sampler,
            directions=list(s.directions),  # type: ignore[arg-type]
        )
    remember([s.storage])
    from seedhp.sweep.study_storage import open_plain

    return open_plain(s.storage, s.name, sampler, s.directions)


def _counted(study: optuna.Study, s: PlainSettings) -> int:
    return len(study.get_trials(deepcopy=False, states=s.counted))


def _overrides(s: PlainSettings, config: DictConfig, trial: Trial) -> list[str]:
    """A trial's job: its sampled values, custom_search_space's, the fixed overrides."""
    if s.custom is not None:
        extend(s.custom, s.space, config, trial)
    return [*(override_of(s.space, k, v) for k, v in trial.params.items()), *s.space.fixed]


def extend(custom: CustomSpace, space: SearchSpace, config: DictConfig, trial: Trial) -> None:
    """custom_search_space's suggestions for this trial; a key that is also fixed is refused."""
    custom(config, trial)
    fixed = {o.split("=", 1)[0].lstrip("~+") for o in space.fixed}
    clash = sorted(k for k in trial.params if k.lstrip("+") in fixed)
    if clash:
        raise ConfigError(
            "hydra.sweeper.custom_search_space",
            ", ".join(clash),
            "suggests a key the command line or hydra.sweeper.params fixes: search it or fix it",
        )


def _tell_return(
    study: optuna.Study, s: PlainSettings, trial: Trial, ret: JobReturn, app: App
) -> BaseException | str | None:
    """Tell a trial its job's outcome; the error when it failed."""
    if ret.status != JobStatus.COMPLETED:
        error = ret._return_value
        tell(study, trial, state=TrialState.FAIL)
        return error if isinstance(error, BaseException) else str(error)
    value = ret._return_value
    if value is None:
        tell(study, trial, state=TrialState.FAIL)
        return "the task returned None: return a float (or one per hydra.sweeper.direction)"
    with exit_on_config_error():  # every job would return the same kind of thing: one line
        values = _values(value, s, app)
    if any(math.isnan(v) for v in values):
        tell(study, trial, state=TrialState.FAIL)
        return f"the task returned {values}: NaN"
    tell(study, trial, values[0] if len(values) == 1 else values)
    shown = " ".join(f"{k}={value_text(v)}" for k, v in trial.params.items())
    log.info(
        "trial %d  %s  %s %s",
        trial.number,
        shown,
        s.objective if len(values) == 1 else "values",
        ", ".join(f"{v:.6g}" for v in values),
    )
    return None


def _values(value: Any, s: PlainSettings, app: App) -> list[float]:
    if len(s.directions) == 1:
        return [score(value, app.settings.objective)]
    if isinstance(value, ListConfig):
        value = list(value)
    if not isinstance(value, (list, tuple)) or any(
        isinstance(v, bool) or not isinstance(v, (int, float)) for v in value
    ):
        raise ConfigError(
            "the task's return value",
            type(value).__name__,
            f"a list or tuple of {len(s.directions)} numbers, one per hydra.sweeper.direction",
        )
    if len(value) != len(s.directions):
        raise ConfigError(
            "hydra.sweeper.direction",
            f"[{','.join(s.directions)}]",
            f"{len(s.directions)} directions, but the task returned {len(value)} values",
        )
    return [float(v) for v in value]


def job_failed(what: str, error: BaseException | str, traceback_too: bool) -> None:
    """A failed job on stderr: one line, and the first failure's traceback above it."""
    if isinstance(error, BaseException):
        if traceback_too and error.__traceback__ is not None:
            sys.stderr.write("".join(traceback.format_exception(error)))
        text = f"{type(error).__name__}: {error}"
    else:
        text = error
    print(f"seedhp: {what} failed: {text}", file=sys.stderr, flush=True)


def finish(study: optuna.Study, s: PlainSettings, sweep_dir: Path) -> str:
    """optimization_results.yaml (hydra-optuna-sweeper's keys: best_params and best_value, or
    solutions for several objectives) and the closing lines."""
    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    failed = len(study.get_trials(deepcopy=False, states=(TrialState.FAIL,)))
    out: dict[str, Any] = {"name": "optuna"}
    lines = [
        "",
        f"Study {s.name}: {len(complete)} trials finished, {failed} failed "
        f"(of n_trials={s.n_trials}), storage {redact(s.storage) if s.storage else 'in memory'}",
    ]
    if complete and len(s.directions) == 1:
        best = study.best_trial
        out.update(best_params=best.params, best_value=best.value, best_trial=best.number)
        lines.append(
            f"Best trial {best.number}: {s.objective} {best.value:.6g}  {_shown(best.params)}"
        )
    elif complete:
        front = sorted(study.best_trials, key=lambda t: t.number)
        out["solutions"] = [
            {"params": t.params, "values": t.values, "trial": t.number} for t in front
        ]
        lines.append(f"Pareto front ({'/'.join(s.directions)}): {len(front)} trials")
        lines += [
            f"  trial {t.number}: values {', '.join(f'{v:.6g}' for v in t.values)}  "
            f"{_shown(t.params)}"
            for t in front
        ]
    out.update(
        study_name=s.name,
        storage=redact(s.storage) if s.storage else None,
        seed_strategy="none",
        direction=list(s.directions) if len(s.directions) > 1 else s.directions[0],
        finished_trials=len(complete),
        failed_trials=failed,
    )
    path = sweep_dir / "optimization_results.yaml"
    write_scrubbed(path, yaml.safe_dump(out, sort_keys=False))
    lines += [
        f"Results: {path}",
        "No seed statistics: seed_strategy=none searches and sets no seed, so seedhp writes "
        "no report; search the seed (e.g. seed='range(0,100)') for one",
    ]
    return "\n".join(lines)


def _shown(params: Mapping[str, Any]) -> str:
    return " ".join(f"{k}={value_text(v)}" for k, v in params.items())
