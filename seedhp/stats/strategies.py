"""The strategy contrast's numbers: what each seed strategy's winner promised and delivered, per
replicate and pooled over replicates, and the paired differences between strategies.

One `Outcome` per (replicate, strategy): the study's winner, chosen by its own rule, with the
validation score it was chosen on (promised) and its configuration's scores on the replicate's
fresh seeds, shared by every strategy of that replicate. Intervals over replicates and over
fresh seeds are Student-t 95 % intervals; differences between strategies are paired by
replicate.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from itertools import combinations
from typing import Any

from scipy import stats as sps

from seedhp.stats.core import t_interval

QUANTITIES = ("promised", "fresh_val", "delivered", "seed_luck", "gap", "optimism", "regret")
DIFFERENCES = ("delivered", "optimism", "seed_luck", "promised", "regret")
ORDER = ("tuned", "averaged", "fixed")  # tuned − averaged, tuned − fixed, averaged − fixed


@dataclass(frozen=True)
class Outcome:
    replicate: int
    strategy: str  # tuned | averaged | fixed
    study: str
    config_id: str
    label: str
    seed: int | None  # the tuned winner's seed; the fixed study's one seed
    promised: float  # the chosen-on validation score (the study's best value)
    seed_runs: int  # the study's seed-runs (its budget spent)
    fresh_seeds: tuple[int, ...]
    fresh_val: tuple[float, ...]  # the winner's configuration on the fresh seeds, seed order
    fresh_test: tuple[float, ...]


@dataclass(frozen=True)
class Row:
    """One (replicate, strategy): an Outcome's numbers."""

    replicate: int
    strategy: str
    study: str
    config_id: str
    label: str
    seed: int | None
    seed_runs: int
    n_fresh: int
    promised: float
    fresh_val: float  # mean over fresh seeds
    delivered: float  # the fresh-seed test mean
    delivered_ci: tuple[float, float]  # over the fresh seeds
    seed_luck: float  # promised − fresh_val
    gap: float  # fresh_val − delivered: the validation-to-test gap
    optimism: float  # promised − delivered = seed_luck + gap
    regret: float  # best delivered in the replicate − delivered (>= 0; higher is worse)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Pooled:
    """One strategy over replicates: each quantity's mean and 95 % CI (Student t, n)."""

    strategy: str
    n: int
    mean: dict[str, float]
    ci: dict[str, tuple[float, float]]

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Difference:
    """a − b of one quantity, paired by replicate."""

    a: str
    b: str
    quantity: str
    n: int  # replicates where both have a number
    mean: float
    ci: tuple[float, float]
    p: float  # paired t-test (ttest_rel), two-sided

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def rows(outcomes: Sequence[Outcome], maximize: bool = True) -> list[Row]:
    """Each outcome's numbers; regret against the best delivered in its replicate."""
    sign = 1 if maximize else -1
    delivered = {(o.replicate, o.strategy): _mean(o.fresh_test) for o in outcomes}
    best: dict[int, float] = {}
    for (r, _), d in delivered.items():
        if not math.isnan(d):
            best[r] = max(best.get(r, -math.inf), sign * d)
    out = []
    for o in sorted(outcomes, key=lambda o: (o.replicate, _rank(o.strategy))):
        d, v = delivered[(o.replicate, o.strategy)], _mean(o.fresh_val)
        out.append(
            Row(
                replicate=o.replicate,
                strategy=o.strategy,
                study=o.study,
                config_id=o.config_id,
                label=o.label,
                seed=o.seed,
                seed_runs=o.seed_runs,
                n_fresh=len(o.fresh_test),
                promised=o.promised,
                fresh_val=v,
                delivered=d,
                delivered_ci=t_interval(o.fresh_test),
                seed_luck=sign * (o.promised - v),
                gap=sign * (v - d),
                optimism=sign * (o.promised - d),
                regret=best.get(o.replicate, math.nan) - sign * d,
            )
        )
    return out


def pooled(table: Sequence[Row]) -> list[Pooled]:
    """Per strategy, every quantity's mean and t-interval over the replicates."""
    out = []
    for strategy in _strategies(table):
        mine = [r for r in table if r.strategy == strategy]
        values = {
            q: [getattr(r, q) for r in mine if not math.isnan(getattr(r, q))] for q in QUANTITIES
        }
        out.append(
            Pooled(
                strategy=strategy,
                n=len(mine),
                mean={q: _mean(v) for q, v in values.items()},
                ci={q: t_interval(v) for q, v in values.items()},
            )
        )
    return out


def differences(table: Sequence[Row]) -> list[Difference]:
    """a − b for every pair of strategies (in ORDER: tuned − averaged, tuned − fixed, ...) and
    quantity, over the replicates where both have a number."""
    by = {(r.replicate, r.strategy): r for r in table}
    replicates = sorted({r.replicate for r in table})
    out = []
    for a, b in combinations(_strategies(table), 2):
        for q in DIFFERENCES:
            pairs = [
                (getattr(by[(k, a)], q), getattr(by[(k, b)], q))
                for k in replicates
                if (k, a) in by and (k, b) in by
            ]
            pairs = [(x, y) for x, y in pairs if not (math.isnan(x) or math.isnan(y))]
            d = [x - y for x, y in pairs]
            p = (
                float(sps.ttest_rel([x for x, _ in pairs], [y for _, y in pairs]).pvalue)
                if len(pairs) > 1 and statistics.pstdev(d) > 0
                else math.nan
            )
            out.append(Difference(a, b, q, len(d), _mean(d), t_interval(d), p))
    return out


@dataclass(frozen=True)
class SeedDifference:
    """a − b of the delivered test score within one replicate, paired by fresh seed."""

    replicate: int
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
    """Within each replicate, each pair of strategies' winners on the shared fresh seeds."""
    out = []
    for k in sorted({o.replicate for o in outcomes}):
        mine = sorted((o for o in outcomes if o.replicate == k), key=lambda o: _rank(o.strategy))
        for a, b in combinations(mine, 2):
            ta = {
                s: v for s, v in zip(a.fresh_seeds, a.fresh_test, strict=True) if not math.isnan(v)
            }
            tb = {
                s: v for s, v in zip(b.fresh_seeds, b.fresh_test, strict=True) if not math.isnan(v)
            }
            shared = sorted(set(ta) & set(tb))
            xa, xb = [ta[s] for s in shared], [tb[s] for s in shared]
            d = [x - y for x, y in zip(xa, xb, strict=True)]
            p = (
                float(sps.ttest_rel(xa, xb).pvalue)
                if len(d) > 1 and statistics.pstdev(d) > 0
                else math.nan
            )
            out.append(
                SeedDifference(
                    k,
                    a.strategy,
                    b.strategy,
                    len(d),
                    _mean(d),
                    t_interval(d),
                    p,
                    a.config_id == b.config_id,
                )
            )
    return out


def answer(
    table: Sequence[Row],
    seed_diffs: Sequence[SeedDifference],
    metric: str,
    maximize: bool = True,
) -> str:
    """One plain sentence (or two) that states the answer with its uncertainty: over
    replicates where there are several, else over the one replicate's fresh seeds."""
    scale, unit = (100.0, " points") if metric.endswith("acc") else (1.0, "")
    sign = 1 if maximize else -1

    def ci(lo: float, hi: float) -> str:
        return f"[{lo * scale:.2f}, {hi * scale:.2f}]"

    def includes_zero(lo: float, hi: float) -> str:
        return (
            "; the interval includes zero: no difference is shown"
            if math.isnan(lo) or lo <= 0 <= hi
            else ""
        )

    runs = sorted({r.seed_runs for r in table})
    budget = f"an equal budget of {runs[0]} seed-runs" if len(runs) == 1 else "their budgets"
    replicates = sorted({r.replicate for r in table})
    if len(replicates) > 1:
        by = {p.strategy: p for p in pooled(table)}
        parts = [
            f"{name} {by[name].mean['optimism'] * scale:+.2f}{unit} {ci(*by[name].ci['optimism'])}"
            for name in _strategies(table)
            if not math.isnan(by[name].mean["optimism"])
        ]
        sentence = (
            f"Promised minus delivered on fresh seeds (optimism; mean over {len(replicates)} "
            f"replicates, 95 % CI): {', '.join(parts)}."
        )
        d = next(
            (
                x
                for x in differences(table)
                if (x.a, x.b, x.quantity) == ("tuned", "averaged", "delivered")
            ),
            None,
        )
        if d is None or math.isnan(d.mean):
            return sentence
        better = "better" if (d.mean < 0) == maximize else "worse"
        return (
            f"{sentence} At {budget}, the configurations seed-averaging chose delivered "
            f"{abs(d.mean) * scale:.2f}{unit} {better} than seed-tuning's (tuned − averaged "
            f"{d.mean * scale:+.2f} {ci(*d.ci)}, paired over {d.n} replicates)"
            f"{includes_zero(*d.ci)}."
        )
    parts = []
    for r in table:
        lo, hi = r.delivered_ci
        bounds = sorted((sign * (r.promised - hi), sign * (r.promised - lo)))
        parts.append(f"{r.strategy} {r.optimism * scale:+.2f}{unit} {ci(*bounds)}")
    sentence = (
        "One replicate, one draw of the protocol: promised minus delivered on its "
        f"{table[0].n_fresh} fresh seeds (95 % CI over the seeds): {', '.join(parts)}."
    )
    sd = next((x for x in seed_diffs if (x.a, x.b) == ("tuned", "averaged")), None)
    if sd is None:
        return sentence
    if sd.same_configuration:
        return f"{sentence} Seed-tuning and seed-averaging chose the same configuration."
    better = "better" if (sd.mean < 0) == maximize else "worse"
    return (
        f"{sentence} At {budget}, seed-averaging's winner delivered "
        f"{abs(sd.mean) * scale:.2f}{unit} {better} than seed-tuning's on the same fresh seeds "
        f"(tuned − averaged {sd.mean * scale:+.2f} {ci(*sd.ci)}, paired by seed)"
        f"{includes_zero(*sd.ci)}."
    )


def _strategies(table: Sequence[Row]) -> list[str]:
    return sorted({r.strategy for r in table}, key=_rank)


def _rank(strategy: str) -> tuple[int, str]:
    return (ORDER.index(strategy) if strategy in ORDER else len(ORDER), strategy)


def _mean(values: Sequence[float]) -> float:
    finite = [v for v in values if not math.isnan(v)]
    return statistics.fmean(finite) if finite else math.nan
