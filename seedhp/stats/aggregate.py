"""A trial's objective from its seeds' scores (seed-averaged studies)."""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence

AGGREGATES = ("mean", "median", "iqm", "min")


def aggregate(values: Sequence[float], how: str, maximize: bool) -> float:
    """mean | median | iqm (the interquartile mean: scipy.stats.trim_mean(x, 0.25), as rliable
    and seedhp's report) | min (the worst seed: the lowest accuracy, or the highest loss when
    the objective is minimised)."""
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
    """scipy.stats.trim_mean(xs, 0.25), as rliable and the report: int(n / 4) scores are cut
    from each end (n = 10: the middle 6 of 10), the rest averaged. One IQM for studies and
    reports."""
    from scipy.stats import trim_mean  # here: a sweep that never averages does not load SciPy

    return float(trim_mean(xs, 0.25))
