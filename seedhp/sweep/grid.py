"""The grid sweep behind `hydra/sweeper=seedhp`: expand, check everything, launch, summarise.

A sweep is `check -> open parent run -> launch batches -> summarise`. Every configuration of the
sweep is composed and checked (config values, data, device, tracking store) before the first
job trains; a failed job is counted in the summary and never stops the others.
"""

from __future__ import annotations

import fcntl
import itertools
import json
import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import Override
from hydra.core.utils import JobReturn, JobStatus
from hydra.plugins.launcher import Launcher
from hydra.types import HydraContext
from omegaconf import DictConfig, OmegaConf

from seedhp import faults, heap
from seedhp.errors import ConfigError, exit_on_config_error
from seedhp.job import record
from seedhp.job.identity import without_seed
from seedhp.job.reuse import finished_runs, mark_reused, sweep_runs
from seedhp.job.settings import check_seed
from seedhp.job.tracking import Tracker, metric, run_rows
from seedhp.job.urls import redact, write_scrubbed
from seedhp.stats.summary import (
    ConfigSummary,
    format_table,
    latest_per_seed,
    seed_ignored,
    summarize,
)
from seedhp.sweep import at_end
from seedhp.sweep.app import App, stop_on_config_error
from seedhp.sweep.bound import check_grid
from seedhp.sweep.bound import values as bounded_values
from seedhp.sweep.tracked import RunContext, Target

log = logging.getLogger("seedhp")


def expand(overrides: Sequence[Override], seed_key: str = "seed") -> list[list[str]]:
    """The cartesian product of the sweep, as Hydra's basic sweeper forms it; every `seed` value
    is checked, and an empty sweep is an error rather than a silent no-op."""
    check_grid(overrides)  # before anything is expanded
    lists: dict[str, list[str]] = {}
    for o in overrides:
        key = o.get_key_element()
        text = (o.input_line or "").split("=", 1)[-1]  # the value as the user wrote it
        if o.is_sweep_override():
            if not o.is_discrete_sweep():
                raise ConfigError(
                    key,
                    text,
                    "the grid sweeper takes a,b,c lists, choice(...) and range(...); "
                    "intervals need hydra/sweeper=optuna",
                )
            values = bounded_values(o)
            if not values:
                example = f" e.g. {seed_key}='range(0,10)'" if o.key_or_group == seed_key else ""
                raise ConfigError(
                    key, text, f"the sweep is empty: give at least one value;{example}"
                )
            if o.key_or_group == seed_key:
                for v in values:
                    check_seed(v, seed_key)
            lists[key] = [f"{key}={v}" for v in o.sweep_string_iterator()]
        else:
            if o.key_or_group == seed_key:
                check_seed(o.value(), seed_key)
            lists[key] = [f"{key}={o.get_value_element_as_str()}"]
    return [list(job) for job in itertools.product(*lists.values())]


def configurations(
    jobs: Sequence[Sequence[str]], seed_key: str = "seed"
) -> dict[tuple[str, ...], list[str]]:
    """Each configuration's first job: configurations are jobs without their seed override."""
    groups: dict[tuple[str, ...], list[str]] = {}
    for job in jobs:
        groups.setdefault(_key(job, seed_key), list(job))
    return groups


def _key(job: Sequence[str], seed_key: str = "seed") -> tuple[str, ...]:
    return without_seed(job, seed_key)


# (tracker, parent run, the first configuration's settings, sweep directory, the sweep's
# seed-runs, each arm's config_ids): writes the arms' page and says where
ArmsEnd = Callable[[Tracker, str, Target, Path, Sequence[Any], list[list[str]]], None]


@dataclass(frozen=True)
class Arms:
    """Variants of the whole grid (the sources sweep's): each arm's overrides are appended to
    every job, so every (configuration, arm) is a configuration of its own (its own config_id,
    reused and resumed as any other). The parent run is tagged `seedhp.kind` = `kind`, and
    `at_end` writes the sweep's page in place of the seed report when the sweep finished."""

    overrides: Sequence[Sequence[str]]
    kind: str
    at_end: ArmsEnd

    def jobs(self, grid: Sequence[Sequence[str]]) -> list[list[str]]:
        return [[*job, *arm] for arm in self.overrides for job in grid]

    def config_ids(
        self, grid: Sequence[Sequence[str]], checked: dict[tuple[str, ...], str], seed_key: str
    ) -> list[list[str]]:
        """Each arm's config_ids, one per configuration of the grid, in order."""
        return [
            list(dict.fromkeys(checked[_key([*job, *arm], seed_key)] for job in grid))
            for arm in self.overrides
        ]


def grid_sweep(
    hydra_context: HydraContext,
    config: DictConfig,
    launcher: Launcher,
    params: dict[str, str],
    arguments: list[str],
    max_batch_size: int | None,
    app: App,
    with_summary: bool = True,
    reuse: bool = True,
    arms: Arms | None = None,
) -> list[Sequence[JobReturn]]:
    parser = OverridesParser.create(config_loader=hydra_context.config_loader)
    key = app.seed_key
    with exit_on_config_error():
        overrides = parser.parse_overrides([f"{k}={v}" for k, v in params.items()] + arguments)
        grid = expand(overrides, key)
        jobs = arms.jobs(grid) if arms else grid
        groups = configurations(jobs, key)
        checked = [  # seedhp's own task: seedhp.job.run.check, before anything trains
            app.target(hydra_context.config_loader.load_sweep_config(config, job))
            for job in groups.values()
        ]
    settings = checked[0]
    tracker = Tracker(settings.tracking.uri, settings.tracking.experiment)
    tracker.reap()
    done = _finished(tracker, jobs, groups, checked, key) if reuse else {}
    log.info(
        "sweep: %d seed-runs over %d configuration(s), all checked%s",
        len(jobs),
        len(checked),
        f"; {len(done)} already finished in the store are reused "
        f"(hydra.sweeper.reuse=false trains them again), {len(jobs) - len(done)} to train"
        if done
        else "",
    )

    sweep_dir = Path(str(config.hydra.sweep.dir))
    faults.writes_to("hydra.sweep.dir", sweep_dir)  # named when a write there fails
    sweep_dir.mkdir(parents=True, exist_ok=True)
    write_scrubbed(sweep_dir / "multirun.yaml", OmegaConf.to_yaml(config))
    parent = tracker.start_run(
        f"sweep {sweep_dir.name}",
        {
            "seedhp.kind": _kind(settings, arms),
            "seedhp.sweep_dir": str(sweep_dir.resolve()),
            "seedhp.command": " ".join(arguments),
            "seedhp.objective": settings.objective,
            record.TEST_METRIC: settings.test_metric,
            **{k: v for k, v in settings.tracking.tags.items() if k == record.RESEED_OF},
        },
        parent_id=settings.tracking.parent_run_id,
    )
    mark_reused(tracker, list(done.values()), parent, settings.tracking.role)
    todo = [job for i, job in enumerate(jobs) if i not in done]
    context = RunContext(parent, settings.tracking.role, claim=reuse)
    returns: list[Sequence[JobReturn]] = []
    status = "FAILED"
    try:
        batch = max_batch_size or len(todo) or 1
        # a re-run in the same directory adds, never overwrites
        first = next_job_number(sweep_dir, len(todo))
        for start in range(0, len(todo), batch):
            # each job told its parent run and role (seedhp's own task: tracking.* overrides)
            chunk = app.jobs(todo[start : start + batch], context)
            returns.append(launcher.launch(chunk, first + start))
            heap.started()  # no-op where the first pack's probe ended start-up already
            stop_on_config_error(returns[-1])
        if arms is None:  # the arms of one configuration have no winners to re-run
            named = at_end.named_by_user(config, arguments)
            first = next_job_number(sweep_dir, 2 * settings.report.fresh_seeds)  # both winners
            at_end.reseed(tracker, parent, settings, launcher, first, named)
        status = "FINISHED"
    except BaseException as err:
        if faults.stopped(err):  # Ctrl-C, SIGTERM, a full disk: interrupted, not failed
            status = "KILLED"
        raise
    finally:
        failed = [r for rs in returns for r in rs if r.status == JobStatus.FAILED]
        runs = sweep_runs(tracker, parent)  # read once: the summary's and the report's
        summaries = _close_parent(
            tracker, parent, settings, sweep_dir, status, failed, len(done), runs
        )
        if with_summary:
            # an arm that holds a source still may give identical runs: its page says so
            text = _report(
                summaries, settings, tracker, parent, sweep_dir, failed, len(done), arms is None
            )
            print(text, flush=True)
        if status == "FINISHED" and arms is not None:
            ids = {k: t.config_id for k, t in zip(groups, checked, strict=True)}
            arms.at_end(
                tracker, parent, settings, sweep_dir, runs, arms.config_ids(grid, ids, key)
            )
        elif status == "FINISHED":
            report = at_end.report(tracker, parent, settings, sweep_dir, runs)
            if report is not None:
                print(f"Report: {report}", flush=True)
    if failed and not any(s.n for s in summaries):
        first = failed[0]._return_value
        raise SystemExit(
            f"seedhp: every seed-run of this sweep failed ({len(failed)}), the first with "
            f"{type(first).__name__}: {' '.join(str(first).split())[:300]}; each one's error "
            "is in its MLflow run "
            "(tag seedhp.error) and its job log"
        )
    return returns


def _kind(settings: Target, arms: Arms | None) -> str:
    if arms is not None:
        return arms.kind
    return "reseed" if settings.tracking.tags.get(record.RESEED_OF) else "sweep"


def _finished(
    tracker: Tracker,
    jobs: Sequence[Sequence[str]],
    groups: dict[tuple[str, ...], list[str]],
    checked: Sequence[Target],
    seed_key: str = "seed",
) -> dict[int, Any]:
    """Job index -> the finished seed-run it would repeat, for jobs that have one."""
    config_ids = {key: s.config_id for key, s in zip(groups, checked, strict=True)}
    default_seed = {key: s.seed for key, s in zip(groups, checked, strict=True)}
    wanted: dict[tuple[str, ...], dict[int, int]] = {}  # configuration -> seed -> job index
    for i, job in enumerate(jobs):
        key = _key(job, seed_key)
        seeds = [int(o.split("=", 1)[1]) for o in job if o.split("=", 1)[0] == seed_key]
        wanted.setdefault(key, {})[seeds[0] if seeds else default_seed[key]] = i
    done = {}
    for key, by_seed in wanted.items():
        for seed, run in finished_runs(tracker, config_ids[key], by_seed).items():
            done[by_seed[seed]] = run
    return done


def next_job_number(sweep_dir: Path, reserve: int = 0) -> int:
    """One past the highest numbered job directory in the sweep directory (0 in a new one),
    and past the numbers other processes have reserved there; `reserve` more are this
    process's. Two sweeps that share a directory (started in the same second: Hydra's default
    names it by the time) number their jobs apart."""
    sweep_dir.mkdir(parents=True, exist_ok=True)
    with open(sweep_dir / ".jobs.lock", "a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            handle.seek(0)
            text = handle.read().strip()
            numbers = [int(p.name) for p in sweep_dir.iterdir() if p.name.isdigit() and p.is_dir()]
            first = max(max(numbers, default=-1) + 1, int(text) if text.isdigit() else 0)
            if reserve:
                handle.seek(0)
                handle.truncate()
                handle.write(str(first + reserve))
                handle.flush()
            return first
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _close_parent(
    tracker: Tracker,
    parent: str,
    settings: Target,
    sweep_dir: Path,
    status: str,
    failed: list[JobReturn],
    n_reused: int,
    runs: Sequence[Any],
) -> list[ConfigSummary]:
    rows = run_rows(runs, settings.objective, settings.test_metric, parent)
    if settings.tracking.role != "reseed":  # fresh-seed re-runs of its winners: the report's
        rows = [r for r in rows if r["role"] != "reseed"]
    rows, duplicates = latest_per_seed(rows)
    summaries = summarize(rows, settings.objective)
    table = format_table(summaries, settings.objective)
    write_scrubbed(sweep_dir / "summary.txt", table + "\n")
    write_scrubbed(
        sweep_dir / "summary.json",
        json.dumps(
            {
                "objective": settings.objective,
                "parent_run_id": parent,
                "reused_runs": n_reused,
                "ignored_duplicates": [d["run_id"] for d in duplicates],
                "configurations": [_nan_to_none(s.as_dict()) for s in summaries],
            },
            indent=2,
        ),
    )
    tracker.log_artifact(parent, sweep_dir / "summary.txt")
    tracker.log_artifact(parent, sweep_dir / "summary.json")
    metrics = [
        metric("seed_runs", len(rows)),
        metric("failed_runs", len(failed)),
        metric("reused_runs", n_reused),
    ]
    if len(summaries) == 1:  # one configuration: its seed statistics on the parent itself
        s = summaries[0]
        metrics += [
            metric(f"{settings.objective}_{k}", v)
            for k, v in (
                ("mean", s.mean),
                ("std", s.std),
                ("min", s.min),
                ("max", s.max),
                ("gap", s.gap),
                ("median", s.median),
            )
            if not math.isnan(v)
        ]
    tracker.log(parent, metrics=metrics)
    if status == "FINISHED" and rows and all(r["status"] != "finished" for r in rows):
        status = "FAILED"
    tracker.end_run(parent, status)
    return summaries


def _report(
    summaries: list[ConfigSummary],
    settings: Target,
    tracker: Tracker,
    parent: str,
    sweep_dir: Path,
    failed: list[JobReturn],
    n_reused: int,
    warn_ignored: bool = True,
) -> str:
    lines = ["", format_table(summaries, settings.objective)]
    if warn_ignored:
        lines += [f"warning: {w}" for w in seed_ignored(summaries, settings.objective)]
    if n_reused:
        lines.append(
            f"{n_reused} seed-run(s) had finished before and were reused, not trained again "
            "(hydra.sweeper.reuse=false trains them again)"
        )
    if failed:
        lines.append(
            f"{len(failed)} seed-run(s) failed; their errors are in their MLflow runs "
            f"(tag seedhp.error) and job logs under {sweep_dir}"
        )
    uri = redact(settings.tracking.uri)
    lines += [
        f"Sweep directory: {sweep_dir}",
        f"MLflow: experiment '{settings.tracking.experiment}', parent run {parent} "
        f"(its seed-runs are nested under it)",
        f"Browse: make ui   (or: mlflow ui --backend-store-uri {uri}), then {tracker.ui_url()}"
        if uri.startswith("sqlite:")
        else f"Browse: {tracker.ui_url()}",
    ]
    return "\n".join(lines)


def _nan_to_none(row: dict[str, Any]) -> dict[str, Any]:
    """JSON has no NaN: a statistic that does not exist (std of one run) is null."""
    return {k: None if isinstance(v, float) and math.isnan(v) else v for k, v in row.items()}
