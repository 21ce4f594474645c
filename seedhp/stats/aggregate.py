"""A trial's objective from its seeds' scores (seed-averaged studies)."""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence

AGGREGATES = ("mean", "median", "iqm", "min")


def aggregate(values: Sequence[float], how: str, maximize: bool) -> float:
    """mean | median | iqm (the mean of the middle 50 %, rliable's interquartile mean: with n
    scores, n/4 are dropped from each end, fractional ends weighted) | min (the worst seed: the
    lowest accuracy, or the highest loss when the objective is minimised)."""
    xs = sorted(float(v) for v in values)
    if not xs or any(math.isnan(x) for x in xs):
        return math.nan
    if how == "mean":
        return statistics.fmean(xs)
    if how == "median":
        return statistics.median(xs)
    if how == "min":
        return xs[0] if maximize else xs[-1]
    if how == "iqm":
        return _interquartile_mean(xs)
    raise ValueError(f"aggregate {how!r}; allowed: {', '.join(AGGREGATES)}")


def _interquartile_mean(xs: list[float]) -> float:
    """Mean of the sorted scores between the 25th and 75th percentile of their mass, as
    scipy.stats.trim_mean(xs, 0.25) for n divisible by 4 and weighting the boundary scores
    otherwise."""
    n = len(xs)
    cut = n / 4
    total, weight = 0.0, 0.0
    for i, x in enumerate(xs):
        w = min(i + 1, n - cut) - max(i, cut)  # overlap of [i, i+1) with [cut, n - cut)
        if w > 0:
            total += w * x
            weight += w
    return total / weight
