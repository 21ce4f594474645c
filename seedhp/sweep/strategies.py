"""The strategy contrast behind `hydra/sweeper=seedhp_strategies` (`experiment=strategies`).

For each replicate, for each seed strategy, Optuna studies over the same search space with the
same budgets in seed-runs (an averaged trial of k seeds costs k); at each budget a study's
winner is its best trial by the report's rule (seedhp.stats.contrast.TIE_RULE), re-run on the
replicate's fresh seeds, which every arm of the replicate shares and none of its studies saw.
The seed-shopping arm takes the fixed study's winner, re-trains it on k more seeds of the
replicate's block and keeps the best on validation. Then the contrast's numbers
(seedhp.stats.strategies) and its page.

Budgets: with the random sampler (the default) one study per (replicate, strategy) runs to the
largest budget and a smaller budget's winner is the best of its first trials, exactly what a
study of that size would have run (a seeded sampler's trial n draws from (seed, n) alone).
With any other sampler each budget gets its own studies, and a sampler with a random start-up
phase starts with the same share (`startup_share`) of each study's trials.

Replicate r trains on seeds [r * seed_block, (r + 1) * seed_block): the tuned study searches
them, the averaged study's trials share the first k, the fixed study trains the first, seed
shopping the next ones. It validates on its own split (`seeds.split=r`) and, where the data
set's test part is not an official one, tests on its own drawn test part
(`data.draw_test=true`). Its fresh seeds come after every replicate's block; its sampler's
seed is `sampler.seed + r`. Re-running the command resumes: studies continue by name, seed-runs
already finished are reused.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
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
from seedhp.stats.contrast import best_of, best_trials, tie_order
from seedhp.stats.summary import maximize as maximizes
from seedhp.stats.summary import test_metric_of
from seedhp.sweep.app import App, stop_on_config_error
from seedhp.sweep.grid import next_job_number
from seedhp.sweep.samplers import accepts, sampler_choice
from seedhp.sweep.space import SearchSpace, parse_space, sweep_space
from seedhp.sweep.study import check_space, run_trials, start_study
from seedhp.sweep.study_record import finish, winner_seed_key
from seedhp.sweep.study_settings import STRATEGIES, StudySettings, study_settings
from seedhp.sweep.study_storage import FINISHED, open_study
from seedhp.sweep.tracked import RunContext, Target

if TYPE_CHECKING:
    from mlflow.entities import Run

log = logging.getLogger("seedhp")
SHOPPING = numbers.SHOPPING
DRAW_TEST = ("auto", True, False)


@dataclass(frozen=True)
class ContrastSettings:
    name: str
    replicates: int
    strategies: tuple[str, ...]
    budgets: tuple[int, ...]  # seed-runs per study, ascending
    seeds_per_trial: int  # averaged: k
    fresh_seeds: int
    seed_block: int  # training seeds per replicate
    storage: str
    space: SearchSpace  # without the seed: the contrast chooses each study's seeds
    seed_shopping: int = 0  # further seeds the fixed winner is re-trained on (0: no such arm)
    draw_split: bool = True  # replicate r validates on seeds.split=r
    draw_test: bool = False  # ... and tests on a test part drawn by that split
    nested: bool = True  # one study per (replicate, strategy) answers every budget
    startup_share: float = 0.4  # per-budget studies: the sampler's start-up share of trials
    sampler: str = "random"

    def train_seeds(self, r: int) -> range:
        return range(r * self.seed_block, (r + 1) * self.seed_block)

    def fresh(self, r: int) -> list[int]:
        start = self.replicates * self.seed_block + r * self.fresh_seeds
        return list(range(start, start + self.fresh_seeds))

    def shopping_seeds(self, r: int) -> list[int]:
        """The fixed study trains the block's first seed; seed shopping the next k."""
        seeds = self.train_seeds(r)
        return list(seeds[1 : 1 + self.seed_shopping])

    def trials(self, strategy: str, budget: int) -> int:
        return budget // self.seeds_per_trial if strategy == "averaged" else budget

    def data_overrides(self, r: int) -> tuple[str, ...]:
        """What replicate r draws of the data: its validation split, its test part."""
        return (
            *((f"seeds.split={r}",) if self.draw_split else ()),
            *(("++data.draw_test=true",) if self.draw_test else ()),
        )

    def studies(self) -> list[tuple[int, str, int | None]]:
        """(replicate, strategy, budget) of every study; budget None: it answers every budget
        (nested)."""
        budgets: Sequence[int | None] = [None] if self.nested else self.budgets
        return [
            (r, s, b) for r in range(self.replicates) for s in self.strategies for b in budgets
        ]

    @property
    def arms(self) -> tuple[str, ...]:
        return (*self.strategies, *((SHOPPING,) if self.seed_shopping else ()))


@dataclass(frozen=True)
class Winner:
    replicate: int
    budget: int
    strategy: str
    study: str
    parent: str  # the study's MLflow parent run
    config_id: str
    overrides: tuple[str, ...]  # re-create its configuration, without seed
    seed: int | None
    promised: float
    reported: float  # the test score of what was selected
    seed_runs: int
    ties: tuple[str, ...]
    run_ids: dict[int, str]  # the selected trial's seed -> MLflow run


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
        s = contrast_settings(sweeper, space, job, _official_test(hydra_context, config, space))
        drawn = replace(space, fixed=(*space.fixed, *s.data_overrides(0)))
        check_space(hydra_context, config, drawn, app)  # the drawn data, before any training
        studies = {key: _study_settings(s, sweeper, job, *key) for key in s.studies()}
        open_study(next(iter(studies.values())))  # an unreachable storage: one line, now
    sweep_dir = Path(str(config.hydra.sweep.dir))
    faults.writes_to("hydra.sweep.dir", sweep_dir)  # named when a write there fails
    sweep_dir.mkdir(parents=True, exist_ok=True)
    write_scrubbed(sweep_dir / "multirun.yaml", OmegaConf.to_yaml(config))
    tracker = Tracker(job.tracking.uri, job.tracking.experiment)
    tracker.reap()
    parent = _contrast_parent(tracker, s, " ".join(arguments))
    nested = replace(job, tracking=replace(job.tracking, parent_run_id=parent))
    log.info(
        "strategy contrast %s: %d replicates x %s, budgets %s seed-runs per study, %d fresh "
        "seeds; %s sampler; storage %s",
        s.name,
        s.replicates,
        ", ".join(s.arms),
        ", ".join(map(str, s.budgets)),
        s.fresh_seeds,
        s.sampler,
        redact(s.storage),
    )
    returns: list[JobReturn] = []
    status = "FAILED"
    try:
        outcomes: list[numbers.Outcome] = []
        for r in range(s.replicates):
            winners: list[Winner] = []
            for (k, _, b), settings in studies.items():
                if k == r:
                    ran = _run_study(hydra_context, config, launcher, app, settings, nested, r)
                    winners += _winners(s, tracker, settings, ran, r, [b] if b else s.budgets)
            if s.seed_shopping:
                winners += _shop(
                    s, tracker, launcher, app, winners, sweep_dir, returns, job, parent
                )
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
        "strategies": list(s.arms),
        "budgets": list(s.budgets),
        "seeds_per_trial": s.seeds_per_trial,
        "fresh_seeds": s.fresh_seeds,
        "seed_block": s.seed_block,
        "seed_shopping": s.seed_shopping,
        "sampler": s.sampler,
        "nested_budgets": s.nested,
        "startup_share": None if s.nested else s.startup_share,
        "draw_split": s.draw_split,
        "draw_test": s.draw_test,
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
    sweeper: Mapping[str, Any], space: SearchSpace, job: Target, official_test: bool = False
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
    bad = [x for x in strategies if x not in STRATEGIES or x == "none"]
    if not strategies or bad or len(set(strategies)) != len(strategies):
        raise ConfigError(
            "hydra.sweeper.strategies",
            list(strategies),
            "a list of distinct strategies from tuned, averaged, fixed",
        )
    ints = {}
    for key, low in (
        ("replicates", 1),
        ("seeds_per_trial", 1),
        ("fresh_seeds", 2),
        ("seed_block", 1),
        ("seed_shopping", 0),
    ):
        v = sweeper.get(key, 0 if key == "seed_shopping" else None)
        if isinstance(v, bool) or not isinstance(v, int) or v < low:
            raise ConfigError(f"hydra.sweeper.{key}", v, f"an integer >= {low}")
        ints[key] = v
    k, block = ints["seeds_per_trial"], ints["seed_block"]
    budgets = _budgets(sweeper, k if "averaged" in strategies else 1)
    if "averaged" in strategies and k > block:
        raise ConfigError("hydra.sweeper.seeds_per_trial", k, f"at most the seed block ({block})")
    shop = ints["seed_shopping"]
    if shop and "fixed" not in strategies:
        raise ConfigError(
            "hydra.sweeper.seed_shopping",
            shop,
            "0 when hydra.sweeper.strategies has no fixed: the arm re-trains the fixed "
            "study's winner on further seeds",
        )
    if shop + 1 > block:
        raise ConfigError(
            "hydra.sweeper.seed_shopping",
            shop,
            f"at most {block - 1}: the fixed study's seed and these come from the replicate's "
            f"block of {block} seeds (hydra.sweeper.seed_block)",
        )
    draw_split = sweeper.get("draw_split", True)
    if not isinstance(draw_split, bool):
        raise ConfigError("hydra.sweeper.draw_split", draw_split, "true or false")
    if draw_split and any(o.split("=", 1)[0].lstrip("+") == "seeds.split" for o in space.fixed):
        raise ConfigError(
            "seeds.split",
            next(o for o in space.fixed if "seeds.split" in o).split("=", 1)[1],
            "the contrast draws each replicate's split (seeds.split=r); to share one split, "
            "hydra.sweeper.draw_split=false",
        )
    draw_test = sweeper.get("draw_test", "auto")
    if draw_test not in DRAW_TEST or (draw_test is True and not draw_split):
        raise ConfigError(
            "hydra.sweeper.draw_test",
            draw_test,
            "auto, true or false (true needs hydra.sweeper.draw_split=true)",
        )
    if draw_test is True and official_test:
        raise ConfigError(
            "hydra.sweeper.draw_test",
            True,
            "this data set's test part is its official one, which results are compared on: "
            "auto or false (each replicate still draws its validation split)",
        )
    share = sweeper.get("startup_share", 0.4)
    if isinstance(share, bool) or not isinstance(share, (int, float)) or not 0 < share <= 1:
        raise ConfigError("hydra.sweeper.startup_share", share, "a number in (0, 1]")
    sampler = sampler_choice(sweeper.get("sampler") or {"name": "random"})
    storage = str(sweeper.get("storage") or f"sqlite:///{job.outputs}/optuna.db")
    name = sweeper.get("name") or _default_name(sweeper, space)
    return ContrastSettings(
        name=str(name),
        replicates=ints["replicates"],
        strategies=strategies,
        budgets=budgets,
        seeds_per_trial=k,
        fresh_seeds=ints["fresh_seeds"],
        seed_block=block,
        storage=storage,
        space=space,
        seed_shopping=shop,
        draw_split=draw_split,
        draw_test=draw_split and (not official_test if draw_test == "auto" else draw_test),
        nested=sampler.name == "random",
        startup_share=float(share),
        sampler=sampler.label,
    )


def _budgets(sweeper: Mapping[str, Any], k: int) -> tuple[int, ...]:
    """hydra.sweeper.budgets (or one hydra.sweeper.budget): distinct integers >= k, each a
    multiple of the averaged trials' k so that every strategy spends exactly the budget."""
    one = sweeper.get("budget")
    key = "hydra.sweeper.budget" if one is not None else "hydra.sweeper.budgets"
    given = [one] if one is not None else list(sweeper.get("budgets") or [])
    if (
        not given
        or any(isinstance(b, bool) or not isinstance(b, int) or b < 1 for b in given)
        or len(set(given)) != len(given)
    ):
        raise ConfigError(
            key, one if one is not None else given, "distinct integers >= 1 (seed-runs per study)"
        )
    odd = [b for b in given if b % k or b < k]
    if odd:
        raise ConfigError(
            key,
            one if one is not None else given,
            f"multiples of hydra.sweeper.seeds_per_trial ({k}), so an averaged study spends "
            "exactly its budget",
        )
    return tuple(sorted(given))


def _official_test(hydra_context: HydraContext, config: DictConfig, space: SearchSpace) -> bool:
    from seedhp.job.run import official_test

    return official_test(hydra_context.config_loader.load_sweep_config(config, list(space.fixed)))


def _default_name(sweeper: Mapping[str, Any], space: SearchSpace) -> str:
    """The same command names the same contrast (and its studies), so a re-run resumes."""
    keys = (
        "budget",
        "budgets",
        "seeds_per_trial",
        "seed_block",
        "fresh_seeds",
        "sampler",
        "pruner",
        "seed_shopping",
        "draw_split",
        "draw_test",
        "startup_share",
    )
    blob = json.dumps(
        [sorted(space.fixed), [repr(d) for d in space.dimensions], [sweeper.get(k) for k in keys]],
        sort_keys=True,
        default=str,
    )
    return f"contrast-{hashlib.sha256(blob.encode()).hexdigest()[:10]}"


def _study_settings(
    s: ContrastSettings,
    sweeper: Mapping[str, Any],
    job: Target,
    r: int,
    strategy: str,
    budget: int | None,
) -> StudySettings:
    """One study of the contrast: the replicate's seeds, data and sampler seed, the equal
    budget (the largest when its prefixes answer the smaller ones)."""
    seeds = s.train_seeds(r)
    space = replace(s.space, fixed=(*s.space.fixed, *s.data_overrides(r)))
    if strategy == "tuned":
        [seed_dim] = parse_space(
            [f"{s.space.seed_key}=range({seeds.start},{seeds.stop})"]
        ).dimensions
        space = replace(space, dimensions=(*space.dimensions, seed_dim))
    n_trials = s.trials(strategy, budget or s.budgets[-1])
    sampler = {
        k: v
        for k, v in dict(sweeper.get("sampler") or {"name": "random"}).items()
        if v is not None
    }
    sampler["seed"] = (sampler.get("seed") or 0) + r
    if not s.nested and _has_startup(sampler):  # the same share of random start-up trials
        sampler["n_startup_trials"] = max(1, round(s.startup_share * n_trials))
    one = {
        **{
            k: v
            for k, v in sweeper.items()
            if k in ("direction", "heartbeat_seconds", "max_failure_rate", "n_jobs")
        },
        "seed_strategy": strategy,
        "sampler": sampler,
        "pruner": dict(sweeper.get("pruner") or {"name": "none"}),
        "n_trials": n_trials,
        "seed_pool": f"range({seeds.start},{seeds.stop})",
        "seeds_per_trial": s.seeds_per_trial,
        "aggregate": "mean",
        "storage": s.storage,
        "study_name": f"{s.name}-r{r}-{strategy}" + (f"-b{budget}" if budget else ""),
    }
    return study_settings(one, space, job, seeds.start)


def _has_startup(sampler: Mapping[str, Any]) -> bool:
    return accepts(sampler_choice(dict(sampler)), "n_startup_trials")


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
            "seedhp.strategies": ",".join(s.arms),
            "seedhp.budgets": ",".join(map(str, s.budgets)),
        },
    )


@dataclass(frozen=True)
class Ran:
    """A finished study: its parent run and its finished trials in the order they were asked."""

    parent: str
    trials: list[optuna.trial.FrozenTrial]


def _run_study(
    hydra_context: HydraContext,
    config: DictConfig,
    launcher: Launcher,
    app: App,
    settings: StudySettings,
    job: Target,
    r: int,
) -> Ran | None:
    """Run (or resume) one study to its n_trials; None when it stopped on failures."""
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
    if status != "FINISHED":
        log.warning("study %s: no winner (%s)", settings.name, status.lower())
        return None
    trials = ctx.study.get_trials(deepcopy=False, states=FINISHED)
    return Ran(ctx.parent, sorted(trials, key=lambda t: t.number))


def _winners(
    s: ContrastSettings,
    tracker: Tracker,
    settings: StudySettings,
    ran: Ran | None,
    r: int,
    budgets: Sequence[int],
) -> list[Winner]:
    """The study's winner at each budget: the best of its first trials that spend it."""
    if ran is None:
        return []
    out = []
    test = test_metric_of(settings.objective)
    dims = {d.key: d for d in settings.space.dimensions}
    seed_key = settings.space.seed_key
    for b in budgets:
        first = ran.trials[: s.trials(settings.strategy, b)]
        completed = [t for t in first if t.state == optuna.trial.TrialState.COMPLETE]
        if not completed:
            log.warning("study %s: no completed trial within %d seed-runs", settings.name, b)
            continue
        best, *tied = best_trials(completed, settings.maximize, winner_seed_key(settings))
        params = {k: v for k, v in best.params.items() if k != seed_key}
        seed = best.params.get(seed_key) if settings.strategy == "tuned" else None
        run_ids = {int(k): str(v) for k, v in best.user_attrs.get("mlflow_run_ids", {}).items()}
        out.append(
            Winner(
                replicate=r,
                budget=b,
                strategy=settings.strategy,
                study=settings.name,
                parent=ran.parent,
                config_id=str(best.user_attrs.get("config_id", "")),
                overrides=(
                    *settings.space.fixed,
                    *(dims[k].override(v) for k, v in params.items()),
                ),
                seed=int(seed)
                if seed is not None
                else (settings.seeds[0] if settings.strategy == "fixed" else None),
                promised=math.nan if best.value is None else float(best.value),
                reported=_mean_metric(tracker, run_ids.values(), test),
                seed_runs=sum(len(t.user_attrs.get("seed_scores", {})) for t in first),
                ties=tuple(_tie_text(t, seed_key, settings.strategy) for t in tied),
                run_ids=run_ids,
            )
        )
    return out


def _tie_text(t: optuna.trial.FrozenTrial, seed_key: str, strategy: str) -> str:
    seed = t.params.get(seed_key) if strategy == "tuned" else None
    return f"trial {t.number} ({t.user_attrs.get('config_id', '?')}" + (
        f", seed {seed})" if seed is not None else ")"
    )


def _mean_metric(tracker: Tracker, run_ids: Iterable[str], metric: str) -> float:
    values = [tracker.client.get_run(i).data.metrics.get(metric, math.nan) for i in run_ids]
    finite = [v for v in values if not math.isnan(v)]
    return sum(finite) / len(finite) if finite else math.nan


def _shop(
    s: ContrastSettings,
    tracker: Tracker,
    launcher: Launcher,
    app: App,
    winners: Sequence[Winner],
    sweep_dir: Path,
    returns: list[JobReturn],
    job: Target,
    parent: str,
) -> list[Winner]:
    """Seed shopping: each fixed winner's configuration re-trained on the next k seeds of the
    replicate's block (once per configuration, reused when finished), the best of them and the
    study's own seed on validation reported, as a researcher who re-tries seeds would. The
    runs nest under the contrast's parent run: the arm is no study's."""
    fixed = [w for w in winners if w.strategy == "fixed"]
    if not fixed:
        return []
    r = fixed[0].replicate
    seeds = s.shopping_seeds(r)
    objective, test = job.objective, job.test_metric
    out = []
    for w in fixed:
        runs = _train_missing(
            s, tracker, launcher, app, w, seeds, sweep_dir, returns, parent, "shop"
        )
        own = {int(k): tracker.client.get_run(i) for k, i in w.run_ids.items()}
        candidates = [
            (seed, run)
            for seed, run in {**own, **runs}.items()
            if not math.isnan(run.data.metrics.get(objective, math.nan))
        ]
        if not candidates:
            continue
        (seed, run), *tied = best_of(candidates, _scorer(objective), _order(w.config_id))
        out.append(
            replace(
                w,
                strategy=SHOPPING,
                seed=seed,
                promised=float(run.data.metrics[objective]),
                reported=float(run.data.metrics.get(test, math.nan)),
                seed_runs=w.seed_runs + len(seeds),
                ties=tuple(f"seed {x}" for x, _ in tied),
                run_ids={seed: run.info.run_id},
            )
        )
    return out


def _scorer(objective: str) -> Callable[[tuple[int, Run]], float]:
    sign = 1 if maximizes(objective) else -1
    return lambda c: sign * float(c[1].data.metrics[objective])


def _order(config_id: str) -> Callable[[tuple[int, Run]], tuple[int, str]]:
    return lambda c: tie_order(config_id, c[0])


def _train_missing(
    s: ContrastSettings,
    tracker: Tracker,
    launcher: Launcher,
    app: App,
    w: Winner,
    seeds: Sequence[int],
    sweep_dir: Path,
    returns: list[JobReturn],
    parent: str,
    role: str,
) -> dict[int, Run]:
    """Seed -> a finished seed-run of w's configuration for each of `seeds`: those already
    finished reused (counted in `parent`), the others trained now as one batch."""
    done = finished_runs(tracker, w.config_id, seeds) if w.config_id else {}
    todo = [seed for seed in seeds if seed not in done]
    _count_in(tracker, done.values(), parent, role)
    if todo:
        log.info(
            "replicate %d: the %s winner's configuration on %d %s seeds (%d reused)",
            w.replicate,
            w.strategy,
            len(todo),
            "fresh" if role == "fresh" else "further",
            len(done),
        )
        strategy = SHOPPING if role == "shop" else w.strategy
        context = RunContext(parent, role, w.study, None, strategy, replicate=w.replicate)
        jobs = app.jobs([[*w.overrides, f"{s.space.seed_key}={seed}"] for seed in todo], context)
        batch = list(launcher.launch(jobs, next_job_number(sweep_dir)))
        stop_on_config_error(batch)
        returns += batch
    return finished_runs(tracker, w.config_id, seeds) if w.config_id else {}


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
    seeds = s.fresh(winners[0].replicate)
    found: dict[str, dict[int, Run]] = {}
    for w in winners:
        if w.config_id not in found:
            found[w.config_id] = _train_missing(
                s, tracker, launcher, app, w, seeds, sweep_dir, returns, w.parent, "fresh"
            )
        else:
            _count_in(tracker, found[w.config_id].values(), w.parent, "fresh")
    outcomes = []
    test = job.test_metric
    for w in winners:
        runs = found[w.config_id]
        ran = [runs[seed] for seed in seeds if seed in runs]
        outcomes.append(
            numbers.Outcome(
                replicate=w.replicate,
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
                reported=w.reported,
                budget=w.budget,
                ties=w.ties,
            )
        )
    return outcomes


def _count_in(tracker: Tracker, runs: Iterable[Run], parent: str, role: str) -> None:
    """Seed-runs another study (or an earlier contrast) trained count in `parent` too."""
    others = [r for r in runs if r.data.tags.get(record.PARENT) != parent]
    if others:
        mark_reused(tracker, others, parent, role)
