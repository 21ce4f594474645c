"""What a sweep's seeds say: the seed-tuned vs seed-averaged selection contrast, pairwise
comparisons of configurations, and an audit of the protocol's use of seeds (Bethard 2022).

Pure functions over `SeedRun` records (one per seed-run, as seedhp.report collects them from
MLflow); scores are final metrics, higher is better unless `maximize` is False.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from itertools import combinations
from typing import Any, Protocol, TypeVar

import numpy as np
from scipy import stats as sps

from seedhp.stats import core as stats
from seedhp.stats.power import detectable, power, seeds_needed

T = TypeVar("T", bound="Trial")


@dataclass(frozen=True)
class SeedRun:
    run_id: str
    config_id: str
    label: str
    seed: int
    status: str  # finished | diverged | pruned | failed | interrupted | running
    role: str  # run | trial | reseed | fresh | baseline (reseed, fresh: FRESH_ROLES)
    metrics: dict[str, float]
    strategy: str | None = None  # tuned | averaged | fixed (Optuna studies), None for a grid
    model: str | None = None
    overrides: tuple[str, ...] = ()
    has_predictions: bool = False
    start_time: int = 0  # ms since the epoch: of two runs of one (config, seed), the later wins
    study: str | None = None  # the Optuna study it belongs to, None for a grid sweep
    replicate: int | None = None  # the strategy contrast's replicate
    app_command: tuple[str, str, str] | None = None  # another app's: (dir, script, seed key)


TIE_RULE = (
    "ties on the selection score (equal to 1e-7 of it: accuracies logged in float32 differ "
    "below that) go to the lowest seed, then to the smallest config_id: an order fixed before "
    "any score is seen, and blind to test scores"
)
# Scores closer than this (relative) are equal: a metric computed in float32 (torch's accuracy)
# carries a rounding error of up to 6e-8 of its value, and a mean of such scores over seeds with
# equal correct counts in total can differ from another by that much, while one example of a
# 60,000-example split averaged over 100 seeds moves a mean by 1.7e-7.
TIE_TOLERANCE = 1e-7


# re-runs on seeds the selection never saw: `seedhp reseed` and report.fresh_seeds (reseed),
# the strategy contrast's (fresh)
FRESH_ROLES = ("reseed", "fresh")


def tie_order(config_id: str, seed: int | None = None) -> tuple[int, str]:
    """Where a candidate stands among others tied on the selection score (TIE_RULE), the same
    in the report, in a study's best trial and in re-seeding: the lowest seed first (a
    configuration chosen on its mean has none), then the smallest config_id."""
    return (-1 if seed is None else seed, config_id)


@dataclass(frozen=True)
class Selection:
    """One selection rule's winner, and what it is worth on seeds the selection never saw."""

    rule: str  # seed-tuned | seed-averaged
    config_id: str
    label: str
    seed: int | None  # seed-tuned: the chosen seed
    chosen_on: float  # the validation score the selection saw
    selected_test: float  # the test score of what was selected (the run; the config's mean)
    n_seeds: int  # seeds the selection saw for this configuration
    fresh_n: int
    fresh_seeds: tuple[int, ...]
    fresh_val_mean: float
    fresh_test_mean: float
    fresh_test_ci: tuple[float, float]
    optimism: float  # chosen_on - fresh_test_mean = seed_luck + val_test_gap
    seed_luck: float  # chosen_on - fresh_val_mean: what the choice of seeds added
    val_test_gap: float  # fresh_val_mean - fresh_test_mean, on the same fresh seed-runs
    # 95 % Student-t CIs over the fresh seeds; chosen_on is a fixed number, given the selection
    fresh_val_ci: tuple[float, float] = (math.nan, math.nan)
    optimism_ci: tuple[float, float] = (math.nan, math.nan)
    seed_luck_ci: tuple[float, float] = (math.nan, math.nan)
    val_test_gap_ci: tuple[float, float] = (math.nan, math.nan)  # of the paired differences
    tied_with: tuple[tuple[str, int | None], ...] = ()  # (config_id, seed) tied, passed over

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Comparison:
    a: str  # config_id with the higher mean
    b: str
    metric: str
    n_a: int
    n_b: int
    paired: bool  # on the seeds both finished (n_shared >= 2), else independent samples
    n_shared: int
    difference: float  # mean(a) - mean(b), in the metric's direction of "better"
    ci_low: float  # Student t: of the paired differences, or Welch's for independent samples
    ci_high: float
    t_p: float  # paired t-test (ttest_rel) or Welch's t-test; two-sided
    rank_p: float  # Wilcoxon signed-rank or Mann-Whitney U; two-sided
    t_p_holm: float  # Holm-adjusted over the report's n_comparisons
    rank_p_holm: float
    n_comparisons: int
    p_improvement: float  # P(a > b): same seed when paired, one seed each otherwise; ties 1/2
    aso_eps_min: float  # a over b; < 0.5: a better, < 0.2: confidently
    reversal_rate: float  # share of (shared) seeds on which b scores strictly higher than a
    # the t-test's power (seedhp.stats.power) at the observed difference, with the std of the
    # paired differences (paired) or the two samples' pooled std at their harmonic-mean n
    power: float = math.nan
    seeds_for_power: int | None = None  # seeds (per side) for 80 % power at that difference
    detectable: float = math.nan  # the smallest difference these seeds detect with 80 % power

    @property
    def test(self) -> str:
        return "paired t, Wilcoxon signed-rank" if self.paired else "Welch t, Mann-Whitney U"

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class AuditItem:
    kind: str  # safe | risky
    name: str
    why: str


@dataclass
class Groups:
    """Finished seed-runs by configuration: those the selection saw, and fresh re-runs."""

    selection: dict[str, list[SeedRun]] = field(default_factory=dict)
    fresh: dict[str, list[SeedRun]] = field(default_factory=dict)


def group(runs: Sequence[SeedRun]) -> Groups:
    g = Groups()
    for r in runs:
        if r.status != "finished":
            continue
        (g.fresh if r.role in FRESH_ROLES else g.selection).setdefault(r.config_id, []).append(r)
    for cid, fresh in g.fresh.items():  # a re-run is fresh only on a seed the selection never saw
        seen = {r.seed for r in g.selection.get(cid, [])}
        g.fresh[cid] = [r for r in fresh if r.seed not in seen]
    return g


def select(
    runs: Sequence[SeedRun],
    objective: str,
    test_metric: str,
    maximize: bool,
) -> list[Selection]:
    """The seed-tuned winner (best single (configuration, seed) on the objective) and the
    seed-averaged winner (best configuration by its mean objective over seeds, among those
    with at least 2 finished seeds where any has)."""
    g = group(runs)
    scored = {cid: [r for r in rs if _ok(r, objective)] for cid, rs in g.selection.items()}
    scored = {cid: rs for cid, rs in scored.items() if rs}
    if not scored:
        return []
    sign = 1 if maximize else -1
    [best_run, *tied_runs] = best_of(
        [r for rs in scored.values() for r in rs],
        lambda r: sign * r.metrics[objective],
        lambda r: tie_order(r.config_id, r.seed),
    )
    means = {c: statistics.fmean(r.metrics[objective] for r in rs) for c, rs in scored.items()}
    # a mean over one seed is one seed's luck: averaged over 2 seeds at least, where any has 2
    averaged = [c for c, rs in scored.items() if len({r.seed for r in rs}) >= 2] or list(scored)
    [best_cfg, *tied_cfgs] = best_of(averaged, lambda c: sign * means[c], tie_order)
    tuned_test = best_run.metrics.get(test_metric, math.nan)
    avg = scored[best_cfg]
    return [
        _selection(
            "seed-tuned",
            best_run.config_id,
            best_run.label,
            best_run.seed,
            best_run.metrics[objective],
            tuned_test,
            len(scored[best_run.config_id]),
            g.fresh.get(best_run.config_id, []),
            objective,
            test_metric,
            tuple((r.config_id, r.seed) for r in tied_runs),
        ),
        _selection(
            "seed-averaged",
            best_cfg,
            avg[0].label,
            None,
            means[best_cfg],
            _mean([r.metrics.get(test_metric, math.nan) for r in avg]),
            len(avg),
            g.fresh.get(best_cfg, []),
            objective,
            test_metric,
            tuple((c, None) for c in tied_cfgs),
        ),
    ]


class Trial(Protocol):
    """What the tie rule reads of an Optuna trial (optuna.trial.FrozenTrial)."""

    number: int
    params: dict[str, Any]
    user_attrs: dict[str, Any]

    @property
    def value(self) -> float | None: ...


def best_trials(completed: Sequence[T], maximize: bool, seed_key: str | None = None) -> list[T]:
    """[best, *tied with it]: a study's completed trials with the best value, ordered by
    TIE_RULE: the lowest seed (a tuned trial's, its `seed_key` parameter), then the smallest
    config_id (the trial's user attribute), then the trial number (trials from before seedhp
    recorded a config_id)."""
    sign = 1 if maximize else -1

    def order(t: T) -> tuple[tuple[int, str], int]:
        seed = t.params.get(seed_key) if seed_key else None
        config_id = str(t.user_attrs.get("config_id", "~"))
        return tie_order(config_id, None if seed is None else int(seed)), t.number

    return best_of(completed, lambda t: sign * float(t.value), order)


def best_of(
    candidates: Sequence[Any], score: Callable[[Any], float], order: Callable[[Any], Any]
) -> list[Any]:
    """The candidates with the highest `score` (within TIE_TOLERANCE of it), the winner first by
    `order` (TIE_RULE's tie_order), not by which rounding came out higher: [winner, *tied]."""
    top = max(score(c) for c in candidates)
    slack = TIE_TOLERANCE * max(1.0, abs(top))
    return sorted((c for c in candidates if score(c) >= top - slack), key=order)


def _selection(
    rule: str,
    cid: str,
    label: str,
    seed: int | None,
    chosen: float,
    test: float,
    n: int,
    fresh: list[SeedRun],
    objective: str,
    test_metric: str,
    tied_with: tuple[tuple[str, int | None], ...],
) -> Selection:
    tests = [r.metrics[test_metric] for r in fresh if _ok(r, test_metric)]
    vals = [r.metrics[objective] for r in fresh if _ok(r, objective)]
    both = [r for r in fresh if _ok(r, test_metric) and _ok(r, objective)]
    gaps = [r.metrics[objective] - r.metrics[test_metric] for r in both]
    mean_test, mean_val = _mean(tests), _mean(vals)
    ci = stats.t_interval(tests)
    val_ci = stats.t_interval(vals)
    return Selection(
        rule=rule,
        config_id=cid,
        label=label,
        seed=seed,
        chosen_on=chosen,
        selected_test=test,
        n_seeds=n,
        fresh_n=len(tests),
        fresh_seeds=tuple(sorted(r.seed for r in fresh)),
        fresh_val_mean=mean_val,
        fresh_test_mean=mean_test,
        fresh_test_ci=ci,
        optimism=chosen - mean_test,
        seed_luck=chosen - mean_val,
        val_test_gap=_mean(gaps),
        fresh_val_ci=val_ci,
        optimism_ci=(chosen - ci[1], chosen - ci[0]),
        seed_luck_ci=(chosen - val_ci[1], chosen - val_ci[0]),
        val_test_gap_ci=stats.t_interval(gaps),
        tied_with=tied_with,
    )


def fresh_seeds(runs: Sequence[SeedRun], n: int) -> list[int]:
    """n seeds no run of these ever used: after the largest seed in use."""
    top = max((r.seed for r in runs), default=-1)
    return list(range(top + 1, top + 1 + n))


def compare(
    runs: Sequence[SeedRun],
    metric: str,
    maximize: bool,
    max_configs: int = 6,
    random_state: int = 0,
    chosen_by: str | None = None,
    maximize_chosen_by: bool | None = None,
) -> list[Comparison]:
    """Every pair among the `max_configs` configurations with the best mean `chosen_by` (the
    validation objective; never the compared `metric` itself, unless not given), of those with
    two finished seeds or more, the better one on `metric` first. Configurations that finished
    the same seeds are compared on those seeds, paired; p-values are Holm-adjusted over all
    the pairs."""
    g = group(runs)
    by_seed = {
        cid: {r.seed: r.metrics[metric] for r in rs if _ok(r, metric)}
        for cid, rs in g.selection.items()
    }
    by_seed = {cid: v for cid, v in by_seed.items() if len(v) >= 2}
    key = chosen_by or metric
    up = maximize if maximize_chosen_by is None else maximize_chosen_by
    chosen = {cid: [r.metrics[key] for r in g.selection[cid] if _ok(r, key)] for cid in by_seed}
    ranked = sorted(
        (c for c in by_seed if chosen[c]),
        key=lambda c: (-(1 if up else -1) * statistics.fmean(chosen[c]), c),  # ties: config_id
    )[:max_configs]
    sign = 1 if maximize else -1
    rows = []
    for x, y in combinations(ranked, 2):
        mx, my = statistics.fmean(by_seed[x].values()), statistics.fmean(by_seed[y].values())
        a, b = (x, y) if sign * mx >= sign * my else (y, x)
        rows.append(_pair(a, b, by_seed[a], by_seed[b], metric, sign, random_state))
    t_holm = holm([r["t_p"] for r in rows])
    rank_holm = holm([r["rank_p"] for r in rows])
    return [
        Comparison(**r, t_p_holm=t, rank_p_holm=rk, n_comparisons=len(rows))
        for r, t, rk in zip(rows, t_holm, rank_holm, strict=True)
    ]


def _pair(
    a: str,
    b: str,
    sa: dict[int, float],
    sb: dict[int, float],
    metric: str,
    sign: int,
    random_state: int,
) -> dict[str, Any]:
    shared = sorted(set(sa) & set(sb))
    va = np.array([sign * v for _, v in sorted(sa.items())])
    vb = np.array([sign * v for _, v in sorted(sb.items())])
    paired = len(shared) >= 2
    if paired:
        pa = np.array([sign * sa[s] for s in shared])
        pb = np.array([sign * sb[s] for s in shared])
        d = pa - pb
        diff = float(d.mean())
        lo, hi = stats.t_interval(d) if np.ptp(d) > 0 else (diff, diff)
        t_p = float(sps.ttest_rel(pa, pb).pvalue) if np.ptp(d) > 0 else math.nan
        rank_p = float(sps.wilcoxon(pa, pb).pvalue) if np.any(d != 0) else 1.0
        p_imp = float((np.sum(d > 0) + 0.5 * np.sum(d == 0)) / len(d))
        reversal = float(np.mean(d < 0))
    else:
        diff = float(va.mean() - vb.mean())
        welch = sps.ttest_ind(va, vb, equal_var=False)
        ci = welch.confidence_interval(0.95)
        lo, hi = float(ci.low), float(ci.high)
        t_p = float(welch.pvalue)
        rank_p = float(sps.mannwhitneyu(va, vb, alternative="two-sided").pvalue)
        p_imp = stats.probability_of_improvement(va, vb)
        reversal = stats.reversal_rate(va, vb)
    sd = (
        float(np.std(d, ddof=1))  # of the paired differences
        if paired
        else math.sqrt((va.var(ddof=1) + vb.var(ddof=1)) / 2)  # pooled
    )
    n = len(shared) if paired else _harmonic(len(va), len(vb))
    return {
        "power": power(abs(diff) / sd, n, paired) if sd > 0 else math.nan,
        "seeds_for_power": seeds_needed(diff, sd, paired),
        "detectable": detectable(sd, n, paired),
        "a": a,
        "b": b,
        "metric": metric,
        "n_a": len(va),
        "n_b": len(vb),
        "paired": paired,
        "n_shared": len(shared),
        "difference": diff,
        "ci_low": lo,
        "ci_high": hi,
        "t_p": t_p,
        "rank_p": rank_p,
        "p_improvement": p_imp,
        "aso_eps_min": stats.aso(va, vb, random_state=random_state),
        "reversal_rate": reversal,
    }


def _harmonic(n_a: int, n_b: int) -> int:
    """The equal per-side n with about the power of samples of n_a and n_b (their harmonic
    mean, rounded down)."""
    return int(2 / (1 / n_a + 1 / n_b)) if n_a and n_b else 0


def holm(pvalues: Sequence[float]) -> list[float]:
    """Holm's step-down adjustment (family-wise error) of m p-values; NaN stays NaN."""
    idx = [i for i, p in enumerate(pvalues) if not math.isnan(p)]
    m = len(idx)
    out = [math.nan] * len(pvalues)
    running = 0.0
    for rank, i in enumerate(sorted(idx, key=lambda i: pvalues[i])):
        running = max(running, min(1.0, (m - rank) * pvalues[i]))
        out[i] = running
    return out


def audit(runs: Sequence[SeedRun], objective: str, ensembles: bool) -> list[AuditItem]:
    """What the protocol these runs come from does with seeds (Bethard 2022), each with why:
    each Optuna study by its own strategy, the runs of grid sweeps together."""
    g = group(runs)
    sel = [r for rs in g.selection.values() for r in rs]
    items = []
    on_test = objective.startswith("test")
    if on_test:
        items.append(
            AuditItem(
                "risky",
                "a selection that looked at test scores",
                f"The objective {objective} is a test score: choosing a "
                "configuration or a seed on it leaks the test set into the "
                "choice; choose on validation (train.objective=val_acc).",
            )
        )
    studies: dict[str, list[SeedRun]] = {}
    for r in sel:
        if r.study:
            studies.setdefault(r.study, []).append(r)
    for name, mine in sorted(studies.items()):
        items.append(_study_item(name, mine, objective))
    strategies = {r.strategy for r in sel if r.strategy}
    if "tuned" in strategies and ("averaged" in strategies or "fixed" in strategies):
        items.append(
            AuditItem(
                "risky",
                "a seed-tuned result beside seed-averaged ones",
                "These runs come from a seed-tuned study and from other "
                "strategies: the tuned winner's score includes the luck of its "
                "chosen seed; compare fresh-seed test means (the selection "
                "contrast), not the chosen scores.",
            )
        )
    items += _grid_items([r for r in sel if not r.study], objective, on_test)
    many = [cid for cid, rs in g.selection.items() if len({r.seed for r in rs}) >= 5]
    if many:
        items.append(
            AuditItem(
                "safe",
                "sensitivity analysis",
                f"{len(many)} configuration(s) ran on 5 seeds or more, so the "
                "report shows how far the seed alone moves their scores.",
            )
        )
    if ensembles:
        items.append(
            AuditItem(
                "safe",
                "seed ensembles",
                "Seed-variants' test predictions are combined by vote, using "
                "the seeds instead of picking one.",
            )
        )
    return items


def _study_item(name: str, runs: Sequence[SeedRun], objective: str) -> AuditItem:
    """One Optuna study, read by its strategy."""
    strategy = runs[0].strategy
    seeds = sorted({r.seed for r in runs})
    configs = len({r.config_id for r in runs})
    if strategy == "tuned":
        return AuditItem(
            "safe",
            f"study {name}: the seed searched on validation",
            f"Its {len(runs)} trials search the seed with the other hyperparameters and its "
            f"winner is chosen on {objective}: safe as a selection. Risky if the winning "
            "seed's score is reported as its configuration's: report the configuration's "
            "mean on fresh seeds (the selection contrast) instead.",
        )
    if strategy == "averaged":
        shown = ", ".join(map(str, seeds[:10])) + (" ..." if len(seeds) > 10 else "")
        return AuditItem(
            "safe",
            f"study {name}: configurations compared on shared seeds",
            f"Its {configs} configuration(s) ran on the same seeds ({shown}), so they are "
            "compared on their mean over those seeds, paired seed by seed.",
        )
    if strategy == "fixed":
        return AuditItem(
            "risky",
            f"study {name}: one fixed seed",
            f"Every one of its {configs} configuration(s) trained seed "
            f"{', '.join(map(str, seeds))} only: their differences mix real effects with one "
            "draw of seed luck, and a fixed seed makes a run repeatable, not a result reliable.",
        )
    return AuditItem("safe", f"study {name}", f"strategy {strategy or 'unknown'}")


def _grid_items(sel: Sequence[SeedRun], objective: str, on_test: bool) -> list[AuditItem]:
    """Grid sweeps' runs (no study): one seed for all, only the seed varied, seeds searched."""
    items = []
    seeds_per_config: dict[str, set[int]] = {}
    for r in sel:
        seeds_per_config.setdefault(r.config_id, set()).add(r.seed)
    if len(seeds_per_config) > 1 and len({r.seed for r in sel}) == 1:
        items.append(
            AuditItem(
                "risky",
                "one fixed seed",
                f"Every configuration of the sweep was trained on seed {sel[0].seed} only: "
                "their differences mix real effects with one draw of seed luck, and a fixed "
                "seed makes a run repeatable, not a result reliable.",
            )
        )
    multi = [cid for cid, s in seeds_per_config.items() if len(s) >= 2]
    models = {r.model for r in sel if r.config_id in multi and r.model}
    configs_per_model = {m: {r.config_id for r in sel if r.model == m} for m in models}
    if len(models) >= 2 and all(len(c) == 1 for c in configs_per_model.values()):
        items.append(
            AuditItem(
                "risky",
                "a comparison where only the seed varied",
                f"The models ({', '.join(sorted(models))}) are each run in one "
                "configuration over several seeds: their distributions show "
                "whether these exact settings differ, not whether one model is "
                "better; vary their other hyperparameters too.",
            )
        )
    if multi and not on_test:
        items.append(
            AuditItem(
                "safe",
                "seed searched on validation",
                "The sweep runs configurations over several seeds and both of the report's "
                f"winners are chosen on {objective}; test scores are reported, not chosen on.",
            )
        )
    return items


def _ok(r: SeedRun, metric: str) -> bool:
    v = r.metrics.get(metric)
    return v is not None and not math.isnan(v)


def _mean(values: Sequence[float]) -> float:
    v = [x for x in values if not math.isnan(x)]
    return statistics.fmean(v) if v else math.nan
