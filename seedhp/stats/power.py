"""Power of the t-tests seedhp reports, and the seeds a difference needs (Colas et al. 2018).

Two designs, both two-sided at level `alpha`, both exact through the noncentral t:

- *paired* (a one-sample t-test on the differences of n pairs: two configurations on the
  same seeds, or two strategies on the same replicates): effect = mean / std of the
  differences, df = n − 1, noncentrality effect·√n;
- *independent* (two samples of n each, pooled-variance t, Student's test; Welch's test,
  which the report runs when seeds are not shared, has about the same power at equal n and
  equal spread): effect = difference / the common std, df = 2n − 2, noncentrality
  effect·√(n/2).

`detectable` is the smallest difference n seeds detect with the target power, `seeds_needed`
the fewest n that reach it for a given difference; both take the std in the difference's own
unit and return values in it. Cross-checked in tests against statsmodels' TTestPower and
TTestIndPower.
"""

from __future__ import annotations

import math

from scipy import optimize
from scipy import stats as sps

ALPHA = 0.05
POWER = 0.8
MOST = 10_000  # seeds (or replicates): more than this is "more than 10,000"


def power(effect: float, n: int, paired: bool = True, alpha: float = ALPHA) -> float:
    """The probability that the t-test rejects at `alpha` when the standardised effect is
    `effect` (|mean| / std), with n pairs (paired) or n seeds on each side (independent)."""
    if n < 2 or math.isnan(effect):
        return math.nan
    df, nc = (n - 1, effect * math.sqrt(n)) if paired else (2 * n - 2, effect * math.sqrt(n / 2))
    crit = float(sps.t.ppf(1 - alpha / 2, df))
    # P(T > crit) + P(T < -crit); the lower tail as P(-T > crit), -T ~ nct(df, -nc), because
    # scipy's nct.cdf far below a large noncentrality returns NaN where sf returns 0
    return float(sps.nct.sf(crit, df, nc) + sps.nct.sf(crit, df, -nc))


def seeds_for_effect(
    effect: float,
    paired: bool = True,
    target: float = POWER,
    alpha: float = ALPHA,
    most: int = MOST,
) -> int | None:
    """The fewest n (>= 2) whose test reaches `target` power at `effect`; None when there is
    no effect (0 or NaN) or more than `most` would be needed."""
    effect = abs(effect)
    if math.isnan(effect) or effect == 0:
        return None
    lo, hi = 2, 2
    while power(effect, hi, paired, alpha) < target:  # doubling: bounded by `most`
        if hi >= most:
            return None
        lo, hi = hi, min(most, hi * 2)
    while lo < hi:  # power grows with n: bisect to the first n that reaches it
        mid = (lo + hi) // 2
        if power(effect, mid, paired, alpha) >= target:
            hi = mid
        else:
            lo = mid + 1
    return hi


def seeds_needed(
    difference: float,
    std: float,
    paired: bool = True,
    target: float = POWER,
    alpha: float = ALPHA,
    most: int = MOST,
) -> int | None:
    """Seeds (pairs, or seeds per side) to detect `difference` with `target` power, given the
    std of the paired differences (paired) or of one configuration's scores (independent)."""
    if not std > 0:  # a std of 0 (or NaN) says nothing about the seeds a difference needs
        return None
    return seeds_for_effect(difference / std, paired, target, alpha, most)


def detectable(
    std: float, n: int, paired: bool = True, target: float = POWER, alpha: float = ALPHA
) -> float:
    """The smallest difference n seeds detect with `target` power: effect·std, where the
    effect solves power(effect, n) = target. NaN below 2 seeds or without a spread."""
    if n < 2 or not std > 0:
        return math.nan
    hi = 1.0
    while power(hi, n, paired, alpha) < target:  # bounded: power -> 1 as the effect grows
        hi *= 2
    effect = optimize.brentq(lambda e: power(e, n, paired, alpha) - target, 0.0, hi, xtol=1e-10)
    return float(effect) * std
