"""The strategy contrast behind `hydra/sweeper=seedhp_strategies` (`experiment=strategies`).

For each replicate, for each seed strategy, one Optuna study over the same search space with
the same budget in seed-runs (an averaged trial of k seeds costs k); each study's winner is
its best trial by the report's rule (seedhp.stats.contrast.TIE_RULE), re-run on the
replicate's fresh seeds, which every strategy of the replicate shares and none of its studies
saw. Then the contrast's numbers (seedhp.stats.strategies) and its page.

Replicate r trains on seeds [r * seed_block, (r + 1) * seed_block): the tuned study searches
them, the averaged study's trials share the first k, the fixed study trains the first. Its
fresh seeds come after every replicate's block. The sampler's seed is `sampler.seed + r`.
Re-running the command resumes: studies continue by name, fresh seed-runs already finished
are reused.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import optuna
from hydra.core.utils import JobReturn
from hydra.plugins.launcher import Launcher
from hydra.types import HydraContext
from omegaconf import DictConfig, OmegaConf

from seedhp import faults
from seedhp.errors import ConfigError, exit_on_config_error
from seedhp.job import record
from seedhp.job.reuse import finished_runs, mark_reused
from seedhp.job.tracking import Tracker
from seedhp.job.urls import redact, write_scrubbed
from seedhp.stats import strategies as numbers
from seedhp.stats.contrast import best_trials
from seedhp.stats.summary import maximize as maximizes
from seedhp.sweep.app import App, stop_on_config_error
from seedhp.sweep.grid import next_job_number
from seedhp.sweep.space import SearchSpace, parse_space
from seedhp.sweep.study import check_space, run_trials, start_study
from seedhp.sweep.study_record import finish, winner_seed_key
from seedhp.sweep.study_settings import STRATEGIES, StudySettings, study_settings
from seedhp.sweep.study_storage import FINISHED, open_study
from seedhp.sweep.tracked import RunContext, Target

if TYPE_CHECKING:
    from mlflow.entities import Run

from seedhp.sweep.space import sweep_space

log = logging.getLogger("seedhp")


@dataclass(frozen=True)
class ContrastSettings:
    name: str
    replicates: int
    strategies: tuple[str, ...]
    budget: int  # seed-runs per study
    seeds_per_trial: int  # averaged: k
    fresh_seeds: int
    seed_block: int  # training seeds per replicate
    storage: str
    space: SearchSpace  # without the seed: the contrast chooses each study's seeds

    def train_seeds(self, r: int) -> range:
        return range(r * self.seed_block, (r + 1) * self.seed_block)

    def fresh(self, r: int) -> list[int]:
        start = self.replicates * self.seed_block + r * self.fresh_seeds
        return list(range(start, start + self.fresh_seeds))


@dataclass(frozen=True)
class Winner:
    replicate: int
    strategy: str
    study: str
    parent: str  # the study's MLflow parent run
    config_id: str
    overrides: tuple[str, ...]  # re-create its configuration, without seed
    seed: int | None
    promised: float
    seed_runs: int


def strategies_sweep(
    hydra_context: HydraContext,
    config: DictConfig,
    launcher: Launcher,
    sweeper: Mapping[str, Any],
    arguments: list[str],
    app: App,
) -> list[Sequence[JobReturn]]:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    with exit_on_config_error():
        if not app.own:
            raise ConfigError(
                "hydra/sweeper",
                "seedhp_strategies",
                "the strategy contrast runs seedhp's own task (python -m seedhp); for another "
                "app run hydra/sweeper=seedhp_optuna once per strategy",
            )
        space = sweep_space(sweeper, arguments, app.seed_key)
        job, _ = check_space(hydra_context, config, space, app)
        s = contrast_settings(sweeper, space, job)
        studies = {
            (r, strategy): _study_settings(s, sweeper, job, r, strategy)
            for r in range(s.replicates)
            for strategy in s.strategies
        }
        open_study(studies[(0, s.strategies[0])])  # an unreachable storage: one line, now
    sweep_dir = Path(str(config.hydra.sweep.dir))
    faults.writes_to("hydra.sweep.dir", sweep_dir)  # named when a write there fails
    sweep_dir.mkdir(parents=True, exist_ok=True)
    write_scrubbed(sweep_dir / "multirun.yaml", OmegaConf.to_yaml(config))
    tracker = Tracker(job.tracking.uri, job.tracking.experiment)
    tracker.reap()
    parent = _contrast_parent(tracker, s, " ".join(arguments))
    nested = replace(job, tracking=replace(job.tracking, parent_run_id=parent))
    log.info(
        "strategy contrast %s: %d replicates x %s, %d seed-runs per study, %d fresh seeds; "
        "storage %s",
        s.name,
        s.replicates,
        ", ".join(s.strategies),
        s.budget,
        s.fresh_seeds,
        redact(s.storage),
    )
    returns: list[JobReturn] = []
    status = "FAILED"
    try:
        outcomes: list[numbers.Outcome] = []
        for r in range(s.replicates):
            winners = []
            for strategy in s.strategies:
                w = _run_study(
                    hydra_context, config, launcher, app, studies[(r, strategy)], nested, r
                )
                if w is not None:
                    winners.append(w)
            outcomes += _fresh(s, tracker, launcher, app, winners, sweep_dir, returns, job)
        status = "FINISHED"
    except BaseException as err:
        if faults.stopped(err):  # Ctrl-C, SIGTERM, a full disk: interrupted, not failed
            status = "KILLED"
        raise
    finally:
        if status != "FINISHED":
            tracker.end_run(parent, status)
    from seedhp.report.strategies import write_contrast  # matplotlib: only at the end

    meta = {
        "name": s.name,
        "parent_run_id": parent,
        "command": " ".join(arguments),
        "storage": redact(s.storage),
        "replicates": s.replicates,
        "strategies": list(s.strategies),
        "budget": s.budget,
        "seeds_per_trial": s.seeds_per_trial,
        "fresh_seeds": s.fresh_seeds,
        "seed_block": s.seed_block,
    }
    page = write_contrast(
        tracker,
        parent,
        meta,
        outcomes,
        job.objective,
        sweep_dir / "contrast",
        maximizes(job.objective),
    )
    tracker.end_run(parent, "FINISHED")
    print(f"Contrast: {page}", flush=True)
    return [returns]


def contrast_settings(
    sweeper: Mapping[str, Any], space: SearchSpace, job: Target
) -> ContrastSettings:
    """Check the contrast's own settings; one ConfigError for bad input."""
    if space.seed is not None or any(o.split("=", 1)[0] == space.seed_key for o in space.fixed):
        raise ConfigError(
            space.seed_key,
            space.seed.source if space.seed else "fixed",
            "the contrast chooses every study's seeds (hydra.sweeper.seed_block); take "
            f"{space.seed_key} out of the command line and params",
        )
    if not space.dimensions:
        raise ConfigError(
            "hydra.sweeper.params",
            "{}",
            "a search space: at least one key=choice(...) or interval(...)",
        )
    strategies = tuple(sweeper.get("strategies") or ())
    bad = [x for x in strategies if x not in STRATEGIES]
    if not strategies or bad or len(set(strategies)) != len(strategies):
        raise ConfigError(
            "hydra.sweeper.strategies",
            list(strategies),
            f"a list of distinct strategies from {', '.join(STRATEGIES)}",
        )
    ints = {}
    for key, low in (
        ("replicates", 1),
        ("budget", 1),
        ("seeds_per_trial", 1),
        ("fresh_seeds", 2),
        ("seed_block", 1),
    ):
        v = sweeper.get(key)
        if isinstance(v, bool) or not isinstance(v, int) or v < low:
            raise ConfigError(f"hydra.sweeper.{key}", v, f"an integer >= {low}")
        ints[key] = v
    k, budget = ints["seeds_per_trial"], ints["budget"]
    if "averaged" in strategies and (k > budget or k > ints["seed_block"]):
        raise ConfigError(
            "hydra.sweeper.seeds_per_trial",
            k,
            f"at most the budget ({budget}) and the seed block ({ints['seed_block']})",
        )
    storage = str(sweeper.get("storage") or f"sqlite:///{job.outputs}/optuna.db")
    name = sweeper.get("name") or _default_name(sweeper, space)
    return ContrastSettings(
        name=str(name),
        replicates=ints["replicates"],
        strategies=strategies,
        budget=budget,
        seeds_per_trial=k,
        fresh_seeds=ints["fresh_seeds"],
        seed_block=ints["seed_block"],
        storage=storage,
        space=space,
    )


def _default_name(sweeper: Mapping[str, Any], space: SearchSpace) -> str:
    """The same command names the same contrast (and its studies), so a re-run resumes."""
    keys = ("budget", "seeds_per_trial", "seed_block", "fresh_seeds", "sampler", "pruner")
    blob = json.dumps(
        [sorted(space.fixed), [repr(d) for d in space.dimensions], [sweeper.get(k) for k in keys]],
        sort_keys=True,
        default=str,
    )
    return f"contrast-{hashlib.sha256(blob.encode()).hexdigest()[:10]}"


def _study_settings(
    s: ContrastSettings, sweeper: Mapping[str, Any], job: Target, r: int, strategy: str
) -> StudySettings:
    """One study of the contrast: the replicate's seeds and sampler seed, the equal budget."""
    seeds = s.train_seeds(r)
    space = s.space
    if strategy == "tuned":
        [seed_dim] = parse_space(
            [f"{s.space.seed_key}=range({seeds.start},{seeds.stop})"]
        ).dimensions
        space = replace(space, dimensions=(*space.dimensions, seed_dim))
    sampler = dict(sweeper.get("sampler") or {"name": "tpe"})
    sampler["seed"] = (sampler.get("seed") or 0) + r
    one = {
        **{
            k: v
            for k, v in sweeper.items()
            if k in ("direction", "heartbeat_seconds", "max_failure_rate")
        },
        "seed_strategy": strategy,
        "sampler": sampler,
        "pruner": dict(sweeper.get("pruner") or {"name": "none"}),
        "n_trials": s.budget // s.seeds_per_trial if strategy == "averaged" else s.budget,
        "seed_pool": f"range({seeds.start},{seeds.stop})",
        "seeds_per_trial": s.seeds_per_trial,
        "aggregate": "mean",
        "storage": s.storage,
        "study_name": f"{s.name}-r{r}-{strategy}",
    }
    return study_settings(one, space, job, seeds.start)


def _contrast_parent(tracker: Tracker, s: ContrastSettings, command: str) -> str:
    """The contrast's MLflow parent run: found again by name when the command is re-run."""
    from seedhp.report.strategies import contrast_parent

    return contrast_parent(
        tracker,
        s.name,
        {
            "seedhp.storage": redact(s.storage),
            "seedhp.command": command,
            "seedhp.replicates": str(s.replicates),
            "seedhp.strategies": ",".join(s.strategies),
            "seedhp.budget": str(s.budget),
        },
    )


def _run_study(
    hydra_context: HydraContext,
    config: DictConfig,
    launcher: Launcher,
    app: App,
    settings: StudySettings,
    job: Target,
    r: int,
) -> Winner | None:
    """Run (or resume) one study to its n_trials; its winner, or None when it stopped on
    failures or finished no trial."""
    sweep_dir = Path(str(config.hydra.sweep.dir))
    ctx = start_study(hydra_context, config, launcher, app, settings, job, sweep_dir, replicate=r)
    ctx.job_offset = next_job_number(sweep_dir)  # each study's job directories apart
    status = "FAILED"
    try:
        if run_trials(ctx):
            status = "FINISHED"
    except BaseException as err:
        if faults.stopped(err):  # Ctrl-C, SIGTERM, a full disk: interrupted, not failed
            status = "KILLED"
        raise
    finally:
        print(finish(ctx, status), flush=True)
    completed = ctx.study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    if status != "FINISHED" or not completed:
        log.warning("study %s: no winner (%s)", settings.name, status.lower())
        return None
    best = best_trials(completed, settings.maximize, winner_seed_key(settings))[0]
    dims = {d.key: d for d in settings.space.dimensions}
    params = {k: v for k, v in best.params.items() if k != settings.space.seed_key}
    seed = best.params.get(settings.space.seed_key) if settings.strategy == "tuned" else None
    spent = sum(
        len(t.user_attrs.get("seed_scores", {}))
        for t in ctx.study.get_trials(deepcopy=False, states=FINISHED)
    )
    return Winner(
        replicate=r,
        strategy=settings.strategy,
        study=settings.name,
        parent=ctx.parent,
        config_id=str(best.user_attrs.get("config_id", "")),
        overrides=(*settings.space.fixed, *(dims[k].override(v) for k, v in params.items())),
        seed=int(seed)
        if seed is not None
        else (settings.seeds[0] if settings.strategy == "fixed" else None),
        promised=math.nan if best.value is None else float(best.value),
        seed_runs=spent,
    )


def _fresh(
    s: ContrastSettings,
    tracker: Tracker,
    launcher: Launcher,
    app: App,
    winners: Sequence[Winner],
    sweep_dir: Path,
    returns: list[JobReturn],
    job: Target,
) -> list[numbers.Outcome]:
    """Each winner's configuration on the replicate's fresh seeds: trained once per
    configuration (winners that coincide share the runs), reused when already finished."""
    if not winners:
        return []
    r = winners[0].replicate
    seeds = s.fresh(r)
    first_for: dict[str, Winner] = {}
    for w in winners:
        first_for.setdefault(w.config_id, w)
    for config_id, w in first_for.items():
        done = finished_runs(tracker, config_id, seeds) if config_id else {}
        todo = [seed for seed in seeds if seed not in done]
        _count_in(tracker, done.values(), w.parent)
        if todo:
            log.info(
                "replicate %d: the %s winner's configuration on %d fresh seeds (%d reused)",
                r,
                w.strategy,
                len(todo),
                len(done),
            )
            context = RunContext(w.parent, "fresh", w.study, None, w.strategy, replicate=r)
            jobs = app.jobs(
                [[*w.overrides, f"{s.space.seed_key}={seed}"] for seed in todo], context
            )
            batch = list(launcher.launch(jobs, next_job_number(sweep_dir)))
            stop_on_config_error(batch)
            returns += batch
    outcomes = []
    test = job.test_metric
    for w in winners:
        found = finished_runs(tracker, w.config_id, seeds) if w.config_id else {}
        _count_in(tracker, found.values(), w.parent)
        ran = [found[seed] for seed in seeds if seed in found]
        outcomes.append(
            numbers.Outcome(
                replicate=r,
                strategy=w.strategy,
                study=w.study,
                config_id=w.config_id,
                label=str(ran[0].data.tags.get(record.LABEL, w.config_id)) if ran else w.config_id,
                seed=w.seed,
                promised=w.promised,
                seed_runs=w.seed_runs,
                fresh_seeds=tuple(int(x.data.tags[record.SEED]) for x in ran),
                fresh_val=tuple(x.data.metrics.get(job.objective, math.nan) for x in ran),
                fresh_test=tuple(x.data.metrics.get(test, math.nan) for x in ran),
            )
        )
    return outcomes


def _count_in(tracker: Tracker, runs: Iterable[Run], parent: str) -> None:
    """Fresh seed-runs another study (or an earlier contrast) trained count in `parent` too."""
    others = [r for r in runs if r.data.tags.get(record.PARENT) != parent]
    if others:
        mark_reused(tracker, others, parent, "fresh")
