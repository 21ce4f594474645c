"""The strategy contrast's numbers: what each arm's selection reported, what its configuration
delivered on fresh seeds, and the paired differences between arms, per budget.

One `Outcome` per (replicate, budget, arm): the selected configuration (and seed), the score it
was selected on (promised), the test score the protocol would report (reported: the selected
run's, or the mean over an averaged winner's seeds) and its configuration's scores on the
replicate's fresh seeds, shared by every arm of that replicate. The title's question is the
*inflation*, reported − delivered. Intervals over replicates and over fresh seeds are Student-t
95 % intervals; differences between arms are paired by replicate, each with a paired t p, an
exact sign-flip permutation p, both Holm-adjusted over the page's family, and the replicates
a paired t-test needs for 80 % power.
"""

from __future__ import annotations

import itertools
import math
import statistics
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from itertools import combinations
from typing import Any

import numpy as np
from scipy import stats as sps

from seedhp.stats.contrast import holm
from seedhp.stats.core import t_interval
from seedhp.stats.power import power, seeds_for_effect

# pooled over replicates, per (arm, budget)
QUANTITIES = (
    "reported",
    "delivered",
    "inflation",
    "promised",
    "fresh_val",
    "seed_luck",
    "gap",
    "optimism",
    "z",
    "percentile",
    "regret",
)
# the paired comparisons (each once: regret would repeat delivered with its sign flipped)
DIFFERENCES = ("delivered", "inflation")
SHOPPING = "seed_shopping"
ORDER = ("tuned", "averaged", "fixed", SHOPPING)  # tuned − averaged, tuned − fixed, ...
EXACT_UP_TO = 16  # replicates: the sign-flip p enumerates all 2^n signs up to here


@dataclass(frozen=True)
class Outcome:
    replicate: int
    strategy: str  # tuned | averaged | fixed | seed_shopping (or a study's label)
    study: str
    config_id: str
    label: str
    seed: int | None  # the tuned winner's seed; the fixed study's one seed; the shopped seed
    promised: float  # the selected-on validation score (the study's best value)
    seed_runs: int  # the seed-runs the arm spent (its budget)
    fresh_seeds: tuple[int, ...]
    fresh_val: tuple[float, ...]  # the winner's configuration on the fresh seeds, seed order
    fresh_test: tuple[float, ...]
    reported: float = math.nan  # the test score of what was selected (its run, or seeds' mean)
    budget: int | None = None  # the budget it was selected at (None: the study's own)
    ties: tuple[str, ...] = ()  # the candidates tied with the winner, broken by the tie rule


@dataclass(frozen=True)
class Row:
    """One (replicate, budget, arm): an Outcome's numbers, signed so that higher is better for
    the scores and positive means "overstated" for inflation, seed luck, gap and optimism."""

    replicate: int
    budget: int
    strategy: str
    study: str
    config_id: str
    label: str
    seed: int | None
    seed_runs: int
    n_fresh: int
    promised: float
    reported: float
    fresh_val: float  # mean over fresh seeds
    delivered: float  # the fresh-seed test mean
    delivered_ci: tuple[float, float]  # over the fresh seeds
    inflation: float  # reported − delivered
    seed_luck: float  # promised − fresh_val
    gap: float  # fresh_val − delivered: the validation-to-test gap
    optimism: float  # promised − delivered = seed_luck + gap
    z: float  # (promised − fresh_val) / the fresh validation std
    percentile: float  # promised's place among the fresh validation scores (mid-rank, %)
    regret: float  # best delivered in the (replicate, budget) − delivered (>= 0)
    ties: tuple[str, ...]

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Pooled:
    """One arm at one budget over replicates: each quantity's mean and 95 % CI (Student t)."""

    strategy: str
    budget: int
    n: int
    mean: dict[str, float]
    ci: dict[str, tuple[float, float]]

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Difference:
    """a − b of one quantity at one budget, paired by replicate."""

    a: str
    b: str
    quantity: str
    budget: int
    n: int  # replicates where both have a number
    mean: float
    ci: tuple[float, float]
    p: float  # paired t-test (ttest_rel), two-sided
    p_signflip: float  # exact sign-flip permutation test of the mean, two-sided
    p_holm: float  # p, Holm-adjusted over every Difference of the page
    p_signflip_holm: float
    power: float  # the paired t-test's power at the observed effect (mean / std), n replicates
    n_for_power: int | None  # replicates for 80 % power at the observed effect
    n_for_power_half: int | None  # ... at half of it
    values: tuple[float, ...]  # the per-replicate differences

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def rows(outcomes: Sequence[Outcome], maximize: bool = True) -> list[Row]:
    """Each outcome's numbers; regret against the best delivered in its (replicate, budget)."""
    sign = 1 if maximize else -1

    def budget(o: Outcome) -> int:
        return o.seed_runs if o.budget is None else o.budget

    delivered = {id(o): _mean(o.fresh_test) for o in outcomes}
    best: dict[tuple[int, int], float] = {}
    for o in outcomes:
        d = delivered[id(o)]
        if not math.isnan(d):
            key = (o.replicate, budget(o))
            best[key] = max(best.get(key, -math.inf), sign * d)
    out = []
    for o in sorted(outcomes, key=lambda o: (o.replicate, budget(o), _rank(o.strategy))):
        d, v = delivered[id(o)], _mean(o.fresh_val)
        val = [x for x in o.fresh_val if not math.isnan(x)]
        sd = statistics.stdev(val) if len(val) > 1 else math.nan
        out.append(
            Row(
                replicate=o.replicate,
                budget=budget(o),
                strategy=o.strategy,
                study=o.study,
                config_id=o.config_id,
                label=o.label,
                seed=o.seed,
                seed_runs=o.seed_runs,
                n_fresh=len(o.fresh_test),
                promised=o.promised,
                reported=o.reported,
                fresh_val=v,
                delivered=d,
                delivered_ci=t_interval(o.fresh_test),
                inflation=sign * (o.reported - d),
                seed_luck=sign * (o.promised - v),
                gap=sign * (v - d),
                optimism=sign * (o.promised - d),
                z=sign * (o.promised - v) / sd if sd > 0 else math.nan,
                percentile=percentile(o.promised, val, maximize),
                regret=best.get((o.replicate, budget(o)), math.nan) - sign * d,
                ties=o.ties,
            )
        )
    return out


def percentile(x: float, scores: Sequence[float], maximize: bool = True) -> float:
    """x's place among `scores` in percent (mid-rank: ties count half), 100 = above them all
    in the better direction; NaN without scores."""
    if not scores or math.isnan(x):
        return math.nan
    sign = 1 if maximize else -1
    below = sum(1 for s in scores if sign * s < sign * x)
    equal = sum(1 for s in scores if s == x)
    return 100.0 * (below + 0.5 * equal) / len(scores)


def budgets(table: Sequence[Row]) -> list[int]:
    return sorted({r.budget for r in table})


def pooled(table: Sequence[Row]) -> list[Pooled]:
    """Per (arm, budget), every quantity's mean and t-interval over the replicates."""
    out = []
    for b in budgets(table):
        for strategy in _strategies(table):
            mine = [r for r in table if r.strategy == strategy and r.budget == b]
            if not mine:
                continue
            values = {
                q: [getattr(r, q) for r in mine if not math.isnan(getattr(r, q))]
                for q in QUANTITIES
            }
            out.append(
                Pooled(
                    strategy=strategy,
                    budget=b,
                    n=len(mine),
                    mean={q: _mean(v) for q, v in values.items()},
                    ci={q: t_interval(v) for q, v in values.items()},
                )
            )
    return out


def differences(table: Sequence[Row]) -> list[Difference]:
    """a − b for every pair of arms (in ORDER), quantity and budget, over the replicates where
    both have a number; Holm over all of them. Seed shopping's delivered score is the fixed
    arm's by construction (the same configuration), so its delivered differences are left out:
    they would repeat the fixed arm's."""
    by = {(r.replicate, r.budget, r.strategy): r for r in table}
    replicates = sorted({r.replicate for r in table})
    raw = []
    for b in budgets(table):
        arms = [s for s in _strategies(table) if any((k, b, s) in by for k in replicates)]
        for q in DIFFERENCES:
            for a, c in combinations(arms, 2):
                if q == "delivered" and SHOPPING in (a, c):
                    continue
                pairs = [
                    (getattr(by[(k, b, a)], q), getattr(by[(k, b, c)], q))
                    for k in replicates
                    if (k, b, a) in by and (k, b, c) in by
                ]
                d = [x - y for x, y in pairs if not (math.isnan(x) or math.isnan(y))]
                raw.append((a, c, q, b, d))
    p_t = [paired_t(d) for *_, d in raw]
    p_flip = [sign_flip(d) for *_, d in raw]
    t_holm, flip_holm = holm(p_t), holm(p_flip)
    out = []
    for i, (a, c, q, b, d) in enumerate(raw):
        effect = _effect(d)
        out.append(
            Difference(
                a=a,
                b=c,
                quantity=q,
                budget=b,
                n=len(d),
                mean=_mean(d),
                ci=t_interval(d),
                p=p_t[i],
                p_signflip=p_flip[i],
                p_holm=t_holm[i],
                p_signflip_holm=flip_holm[i],
                power=power(effect, len(d)),
                n_for_power=seeds_for_effect(effect),
                n_for_power_half=seeds_for_effect(effect / 2),
                values=tuple(d),
            )
        )
    return out


def paired_t(d: Sequence[float]) -> float:
    """The two-sided p of a one-sample t-test of the differences' mean against 0 (= a paired
    t-test, scipy's ttest_rel); NaN below 2 differences or when they are all equal."""
    if len(d) < 2 or statistics.pstdev(d) == 0:
        return math.nan
    return float(sps.ttest_1samp(d, 0.0).pvalue)


def sign_flip(d: Sequence[float], draws: int = 2**16, seed: int = 0) -> float:
    """The two-sided p of the exact sign-flip permutation test of the mean of paired
    differences: the share of the 2^n sign patterns whose |mean| reaches the observed one
    (the observed pattern included, so p >= 2^(1-n) where no difference is 0). Enumerated up to
    EXACT_UP_TO differences, else `draws` random patterns (seeded) plus the observed one."""
    x = np.asarray([v for v in d if not math.isnan(v)], dtype=np.float64)
    n = len(x)
    if n == 0 or not np.any(x):
        return math.nan
    observed = abs(x.sum())
    slack = 1e-12 * max(1.0, float(np.abs(x).sum()))
    if n <= EXACT_UP_TO:
        signs = np.array(list(itertools.product((1.0, -1.0), repeat=n)))
        return float(np.mean(np.abs(signs @ x) >= observed - slack))
    rng = np.random.default_rng(seed)
    signs = rng.choice((1.0, -1.0), size=(draws, n))
    hits = int(np.sum(np.abs(signs @ x) >= observed - slack))
    return (hits + 1) / (draws + 1)


def _effect(d: Sequence[float]) -> float:
    if len(d) < 2:
        return math.nan
    sd = statistics.stdev(d)
    return statistics.fmean(d) / sd if sd > 0 else math.nan


@dataclass(frozen=True)
class SeedDifference:
    """a − b of the delivered test score within one replicate, paired by fresh seed."""

    replicate: int
    budget: int
    a: str
    b: str
    n: int  # fresh seeds both winners finished
    mean: float
    ci: tuple[float, float]
    p: float  # paired t-test over the fresh seeds, two-sided
    same_configuration: bool  # both strategies chose it: the difference is 0 by construction

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def seed_differences(outcomes: Sequence[Outcome]) -> list[SeedDifference]:
    """Within each (replicate, budget), each pair of winners on the shared fresh seeds (seed
    shopping left out: its configuration is the fixed arm's)."""
    out = []

    def budget(o: Outcome) -> int:
        return o.seed_runs if o.budget is None else o.budget

    keys = sorted({(o.replicate, budget(o)) for o in outcomes})
    for k, b in keys:
        mine = sorted(
            (o for o in outcomes if (o.replicate, budget(o)) == (k, b) and o.strategy != SHOPPING),
            key=lambda o: _rank(o.strategy),
        )
        for a, c in combinations(mine, 2):
            ta = _by_seed(a)
            tb = _by_seed(c)
            shared = sorted(set(ta) & set(tb))
            xa, xb = [ta[s] for s in shared], [tb[s] for s in shared]
            d = [x - y for x, y in zip(xa, xb, strict=True)]
            out.append(
                SeedDifference(
                    k,
                    b,
                    a.strategy,
                    c.strategy,
                    len(d),
                    _mean(d),
                    t_interval(d),
                    paired_t(d),
                    a.config_id == c.config_id,
                )
            )
    return out


def _by_seed(o: Outcome) -> dict[int, float]:
    return {s: v for s, v in zip(o.fresh_seeds, o.fresh_test, strict=True) if not math.isnan(v)}


def unit(metric: str) -> tuple[float, str]:
    """The page's one unit: accuracy points (x 100) for an accuracy, else the metric's own."""
    return (100.0, " points") if metric.endswith("acc") else (1.0, "")


def answer(
    table: Sequence[Row],
    diffs: Sequence[Difference],
    seed_diffs: Sequence[SeedDifference],
    metric: str,
    maximize: bool = True,
) -> str:
    """The answer in plain sentences, with its uncertainty, one per budget: how far each arm's
    reported score overstated what its configuration delivered on fresh seeds (inflation), what
    it delivered, and tuned − averaged in delivered score; over replicates where there are
    several, else over the one replicate's fresh seeds."""
    scale, unit_name = unit(metric)

    def num(x: float) -> str:
        return f"{x * scale:+.2f}"

    def ci(lo: float, hi: float) -> str:
        return f"[{lo * scale:.2f}, {hi * scale:.2f}]"

    replicates = sorted({r.replicate for r in table})
    sentences = []
    if len(replicates) > 1:
        by = {(p.strategy, p.budget): p for p in pooled(table)}
        for b in budgets(table):
            arms = [s for s in _strategies(table) if (s, b) in by]
            infl = ", ".join(
                f"{s} {num(by[(s, b)].mean['inflation'])} {ci(*by[(s, b)].ci['inflation'])}"
                for s in arms
            )
            deliv = ", ".join(
                f"{s} {by[(s, b)].mean['delivered'] * scale:.2f} {ci(*by[(s, b)].ci['delivered'])}"
                for s in arms
                if s != SHOPPING
            )
            sentence = (
                f"{_at(b)} ({len(replicates)} replicates, mean and 95 % CI, "
                f"{unit_name.strip() or metric}): the reported score overstated what the "
                f"selected configuration delivered on fresh seeds by {infl}; delivered: {deliv}."
            )
            d = next(
                (
                    x
                    for x in diffs
                    if (x.a, x.b, x.quantity, x.budget) == ("tuned", "averaged", "delivered", b)
                ),
                None,
            )
            if d is not None and not math.isnan(d.mean):
                sentence += (
                    f" Tuned − averaged in delivered score: {num(d.mean)} {ci(*d.ci)} "
                    f"(paired t p {p_text(d.p)}, Holm {p_text(d.p_holm)}; exact sign-flip p "
                    f"{p_text(d.p_signflip)})"
                    + (
                        "; the interval includes zero: no difference is shown."
                        if math.isnan(d.ci[0]) or d.ci[0] <= 0 <= d.ci[1]
                        else "."
                    )
                )
            sentences.append(sentence)
        return " ".join(sentences)
    sign = 1 if maximize else -1
    for b in budgets(table):
        mine = [r for r in table if r.budget == b]
        parts = []
        for r in mine:
            lo, hi = r.delivered_ci
            bounds = sorted((sign * (r.reported - hi), sign * (r.reported - lo)))
            parts.append(f"{r.strategy} {num(r.inflation)} {ci(*bounds)}")
        sentence = (
            f"One replicate, one draw of the protocol, {_at(b).lower()}: reported minus "
            f"delivered on its {mine[0].n_fresh} fresh seeds ({unit_name.strip() or metric}, "
            f"95 % CI over the seeds): {', '.join(parts)}."
        )
        sd = next(
            (x for x in seed_diffs if (x.a, x.b, x.budget) == ("tuned", "averaged", b)), None
        )
        if sd is not None:
            if sd.same_configuration:
                sentence += " Seed-tuning and seed-averaging chose the same configuration."
            else:
                sentence += (
                    f" Tuned − averaged in delivered score, paired by fresh seed: "
                    f"{num(sd.mean)} {ci(*sd.ci)}"
                    + (
                        "; the interval includes zero: no difference is shown."
                        if math.isnan(sd.ci[0]) or sd.ci[0] <= 0 <= sd.ci[1]
                        else "."
                    )
                )
        sentences.append(sentence)
    return " ".join(sentences)


def _at(budget: int) -> str:
    return f"At {budget} seed-runs per study" if budget else "At each study's own budget"


def p_text(p: float) -> str:
    """A p-value as the page prints it: three decimals, "< 0.001" below that."""
    if p is None or math.isnan(p):
        return "n/a"
    return "< 0.001" if p < 1e-3 else f"{p:.3f}"


def _strategies(table: Sequence[Row]) -> list[str]:
    return sorted({r.strategy for r in table}, key=_rank)


def _rank(strategy: str) -> tuple[int, str]:
    return (ORDER.index(strategy) if strategy in ORDER else len(ORDER), strategy)


def _mean(values: Sequence[float]) -> float:
    finite = [v for v in values if not math.isnan(v)]
    return statistics.fmean(finite) if finite else math.nan
