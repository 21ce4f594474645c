"""`seedhp plan`: how many seeds per configuration a difference needs, from a pilot's runs.

From a pilot sweep or study (its finished seed-runs, fresh-seed re-runs included), for a
difference the user names in the metric's own unit: each configuration's std over its seeds
and the seeds per configuration a two-sided t-test (α = 0.05) needs to find that difference
with 80 % power when the two configurations are trained on different seeds (independent);
and, where the best configuration shares seeds with another, the same from the std of their
paired differences (paired: both trained on the same seeds, as seedhp's averaged studies do).
The functions are seedhp.stats.power's.
"""

from __future__ import annotations

import math
import statistics
import textwrap
from dataclasses import dataclass

from scipy import stats as sps

from seedhp.errors import ConfigError
from seedhp.report.collect import RunSet
from seedhp.report.compute import short_labels
from seedhp.stats.contrast import SeedRun, group
from seedhp.stats.power import ALPHA, POWER, detectable, seeds_needed
from seedhp.stats.summary import maximize


@dataclass(frozen=True)
class Need:
    """One configuration (independent), or the best one against another on shared seeds."""

    label: str
    config_id: str
    n: int  # its finished seeds (paired: the seeds both finished)
    mean: float
    std: float  # of its scores (paired: of the paired differences)
    detectable: float  # the smallest difference its n seeds detect with 80 % power
    seeds: int | None  # seeds for `difference` at 80 % power; None: more than 10,000
    paired: bool = False
    other: str = ""  # paired: the other configuration's label


def needs(rs: RunSet, difference: float, metric: str) -> list[Need]:
    """Independent needs per configuration (best mean first), then paired ones of the best
    configuration against each other one it shares at least 2 seeds with."""
    if not (isinstance(difference, float | int) and math.isfinite(difference) and difference > 0):
        raise ConfigError(
            "--difference",
            difference,
            f"a positive difference in {metric}'s own unit (0.003 for 0.3 accuracy points)",
        )
    scores: dict[str, dict[int, float]] = {}
    labels: dict[str, str] = {}
    for cid, runs in group(rs.runs).selection.items():
        scores[cid] = {r.seed: r.metrics[metric] for r in runs if _ok(r, metric)}
        labels[cid] = runs[0].label
    for cid, runs in group(rs.runs).fresh.items():  # fresh re-runs are seeds of it too
        scores.setdefault(cid, {}).update(
            {r.seed: r.metrics[metric] for r in runs if _ok(r, metric)}
        )
        labels.setdefault(cid, runs[0].label)
    known = {m for r in rs.runs for m in r.metrics}
    if metric not in known:
        raise ConfigError("--metric", metric, f"allowed: {', '.join(sorted(known)) or 'none'}")
    usable = {cid: s for cid, s in scores.items() if len(s) >= 2}
    if not usable:
        raise ConfigError(
            "--run",
            rs.parent_id or "--all",
            f"a pilot needs one configuration with at least 2 finished seeds of {metric}",
        )
    up = (
        rs.maximize
        if metric == rs.objective
        else rs.maximize_test
        if metric == rs.test_metric
        else maximize(metric)
    )
    sign = 1 if up else -1
    order = sorted(usable, key=lambda c: (-sign * statistics.fmean(usable[c].values()), c))
    labels = short_labels({c: labels[c] for c in order})  # what differs between them
    out = [_need(labels[c], c, list(usable[c].values()), difference, False) for c in order]
    best = usable[order[0]]
    for other in order[1:]:
        shared = sorted(set(best) & set(usable[other]))
        if len(shared) >= 2:
            d = [best[s] - usable[other][s] for s in shared]
            out.append(_need(labels[order[0]], order[0], d, difference, True, labels[other]))
    return out


def _need(
    label: str, cid: str, x: list[float], difference: float, paired: bool, other: str = ""
) -> Need:
    std = statistics.stdev(x)
    return Need(
        label=label,
        config_id=cid,
        n=len(x),
        mean=statistics.fmean(x),
        std=std,
        detectable=detectable(std, len(x), paired),
        seeds=seeds_needed(difference, std, paired),
        paired=paired,
        other=other,
    )


def format_needs(rows: list[Need], difference: float, metric: str, source: str) -> str:
    """The plan as the terminal shows it."""
    width = max(13, *(len(_name(r)) for r in rows))
    lines = [
        *textwrap.wrap(
            f"Seeds per configuration to detect a difference of {difference:g} in {metric} "
            f"(two-sided t-test, alpha {ALPHA:g}, {POWER * 100:.0f} % power), from {source}:",
            99,
        ),
        "",
        f"{'configuration':<{width}} {'n':>4} {'std':>9} {'detects now':>12} {'seeds needed':>13}",
    ]
    for r in rows:
        seeds = "> 10,000" if r.seeds is None else str(r.seeds)
        lines.append(
            f"{_name(r):<{width}} {r.n:>4} {r.std:>9.5f} {r.detectable:>12.5f} {seeds:>13}"
        )
    n = min(r.n for r in rows)
    low, high = std_interval_factors(n)
    notes = (
        "std: over the pilot's seeds (paired rows: of the differences on shared seeds). "
        "Detects now: the smallest difference its n seeds find with 80 % power. Seeds needed: "
        "per configuration, each trained on its own seeds (paired rows: both on the same "
        "seeds, as hydra.sweeper.seed_strategy=averaged trains them). A pilot's std is itself "
        f"uncertain: from {n} seeds its 95 % interval (chi-square) spans {low:.2f} to "
        f"{high:.2f} times the value, and the seeds needed scale with its square."
    )
    return "\n".join([*lines, "", *textwrap.wrap(notes, 99)])


def _name(r: Need) -> str:
    return f"{r.label} - {r.other} (paired)" if r.paired else r.label


def std_interval_factors(n: int, confidence: float = 0.95) -> tuple[float, float]:
    """The chi-square interval of a normal sample's std from n values, as factors of s."""
    df = n - 1
    tail = (1 - confidence) / 2
    return (
        math.sqrt(df / float(sps.chi2.ppf(1 - tail, df))),
        math.sqrt(df / float(sps.chi2.ppf(tail, df))),
    )


def _ok(r: SeedRun, metric: str) -> bool:
    v = r.metrics.get(metric)
    return v is not None and math.isfinite(v)
