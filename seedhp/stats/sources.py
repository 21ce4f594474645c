"""Which source of randomness moves the score: pure numpy/scipy over documented shapes.

One configuration, several arms: each varies one source (a seed stream: init, data, augment,
dropout, split) over seeds with every other stream pinned, and the arm `all` varies every
stream together (Bouthillier et al. 2021; Dodge et al. 2020 for init against data order).

Shapes: an arm's scores `x` is (n,) float, one per seed-run (NaN-free: drop diverged runs
first); `fingerprint` is (n, m) float, every final metric of each run, to tell an arm whose
runs are all identical (a source the configuration does not use: dropout without dropout
layers, augment with data.augment=none). Intervals are 95 %; the bootstrap takes an explicit
`random_state` and gives the same interval for the same one.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import stats as sps

from seedhp.stats.contrast import holm
from seedhp.stats.core import noise_floor

TOGETHER = "all"  # the arm that varies every stream
CONFIDENCE = 0.95
NORMALITY_ALPHA = 0.05  # Shapiro-Wilk p below this: the std's interval is bootstrapped
N_RESAMPLES = 10_000  # bootstrap resamples of the std
CHI2, BOOTSTRAP, IDENTICAL, NONE = "chi-square", "bootstrap", "identical", "none"
SUM_NOTE = (
    "The single-source shares need not add to one: sources interact (two sources varied "
    "together can move the score more, or less, than the sum of each alone), and each share "
    "is itself an estimate from a few seeds, noisy on its own."
)


@dataclass(frozen=True)
class Spread:
    """The mean and standard deviation (ddof=1) of an arm's scores, with a CI of the std."""

    n: int
    mean: float
    std: float
    ci: tuple[float, float]
    method: str  # chi-square | bootstrap | identical (std 0) | none (n < 2)
    shapiro_p: float  # Shapiro-Wilk's p; NaN where not computed (n < 3 or every score equal)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def std_interval(
    x: ArrayLike,
    confidence: float = CONFIDENCE,
    random_state: int = 0,
    n_resamples: int = N_RESAMPLES,
) -> Spread:
    """The std and its CI: the chi-square interval
    [s sqrt((n-1) / chi2(1 - a/2, n-1)), s sqrt((n-1) / chi2(a/2, n-1))], a = 1 - confidence,
    where Shapiro-Wilk does not reject normal scores (p >= NORMALITY_ALPHA; at n = 2, where it
    cannot test, normality is assumed), else the percentile bootstrap of the std over
    `n_resamples` resamples drawn with `random_state`. x: (n,)."""
    v = _array(x)
    n = len(v)
    nan = math.nan
    if n < 2:
        return Spread(n, float(v.mean()) if n else nan, nan, (nan, nan), NONE, nan)
    mean, s = float(v.mean()), float(np.std(v, ddof=1))
    if np.all(v == v[0]):
        return Spread(n, mean, 0.0, (0.0, 0.0), IDENTICAL, nan)
    p = float(sps.shapiro(v).pvalue) if n >= 3 else nan
    if math.isnan(p) or p >= NORMALITY_ALPHA:
        return Spread(n, mean, s, chi2_interval(s, n, confidence), CHI2, p)
    return Spread(
        n, mean, s, bootstrap_interval(v, confidence, random_state, n_resamples), BOOTSTRAP, p
    )


def chi2_interval(std: float, n: int, confidence: float = CONFIDENCE) -> tuple[float, float]:
    """The CI of a normal sample's standard deviation from its sample std over n scores."""
    a, df = 1 - confidence, n - 1
    lo = std * math.sqrt(df / sps.chi2.ppf(1 - a / 2, df))
    hi = std * math.sqrt(df / sps.chi2.ppf(a / 2, df))
    return float(lo), float(hi)


def bootstrap_interval(
    x: ArrayLike,
    confidence: float = CONFIDENCE,
    random_state: int = 0,
    n_resamples: int = N_RESAMPLES,
) -> tuple[float, float]:
    """The percentile bootstrap CI of the std (ddof=1) of x (n,)."""
    v = _array(x)
    rng = np.random.default_rng(random_state)
    stds = v[rng.integers(0, len(v), (n_resamples, len(v)))].std(axis=1, ddof=1)
    a = 1 - confidence
    lo, hi = np.quantile(stds, [a / 2, 1 - a / 2])
    return float(lo), float(hi)


def variance_share(
    x: ArrayLike, together: ArrayLike, confidence: float = CONFIDENCE
) -> tuple[float, tuple[float, float]]:
    """var(x) / var(together) (both ddof=1) and its F interval
    [r / F(1 - a/2; n_x - 1, n_t - 1), r / F(a/2; n_x - 1, n_t - 1)]: the interval of the ratio
    of two variances for independent normal samples. NaN where `together` has no spread."""
    vx, vt = _array(x), _array(together)
    nan = math.nan
    if len(vx) < 2 or len(vt) < 2:
        return nan, (nan, nan)
    var_t = float(np.var(vt, ddof=1))
    if var_t == 0:
        return nan, (nan, nan)
    r = float(np.var(vx, ddof=1)) / var_t
    a, d1, d2 = 1 - confidence, len(vx) - 1, len(vt) - 1
    return r, (float(r / sps.f.ppf(1 - a / 2, d1, d2)), float(r / sps.f.ppf(a / 2, d1, d2)))


def brown_forsythe(*groups: ArrayLike) -> tuple[float, float]:
    """Brown-Forsythe's test of equal spreads (Levene's on |x - median| of each group):
    W = (N - k) / (k - 1) * sum_i n_i (zbar_i - zbar)^2 / sum_ij (z_ij - zbar_i)^2, p from
    F(k - 1, N - k) (scipy.stats.levene(center='median')). (W, p); NaN for fewer than two
    groups, or where no deviation differs from its group's mean (nothing to compare)."""
    zs = [np.abs(g - np.median(g)) for g in map(_array, groups)]
    k, big_n = len(zs), sum(len(z) for z in zs)
    if k < 2 or big_n <= k:
        return math.nan, math.nan
    grand = np.concatenate(zs).mean()
    between = sum(len(z) * (z.mean() - grand) ** 2 for z in zs)
    within = sum(float(((z - z.mean()) ** 2).sum()) for z in zs)
    if within == 0:
        return math.nan, math.nan
    w = (big_n - k) / (k - 1) * float(between) / within
    return float(w), float(sps.f.sf(w, k - 1, big_n - k))


def identical(fingerprint: ArrayLike) -> bool:
    """Whether every run (row) of an arm gave the same final metrics: (n, m), n >= 2."""
    f = np.asarray(fingerprint, dtype=float)
    if f.ndim == 1:
        f = f[:, None]
    return len(f) >= 2 and all(np.array_equal(row, f[0], equal_nan=True) for row in f[1:])


@dataclass(frozen=True)
class Metric:
    """One arm on one metric (the objective, or the test score)."""

    spread: Spread
    share: float  # var(arm) / var(all); NaN without the all arm (or for the all arm: 1)
    share_ci: tuple[float, float]  # its F interval
    noise_floor: float  # sqrt(p(1-p)/n_examples) at the arm's mean; NaN for a non-accuracy


@dataclass(frozen=True)
class Arm:
    source: str  # a stream, or TOGETHER
    n: int
    unused: bool  # every run identical in every metric: the configuration does not use it
    # (for the all arm: it ignores its seed altogether)
    val: Metric
    test: Metric

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Pair:
    """Brown-Forsythe between two single-source arms on one metric, Holm over its family."""

    metric: str  # val | test
    a: str
    b: str
    std_ratio: float  # std(a) / std(b)
    statistic: float
    p: float
    p_holm: float

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Overall:
    """Brown-Forsythe across every single-source arm the configuration uses, on one metric."""

    metric: str
    sources: tuple[str, ...]
    statistic: float
    p: float

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Sources:
    arms: tuple[Arm, ...]
    pairs: tuple[Pair, ...]
    overall: tuple[Overall, ...]
    share_sum: dict[str, float]  # val | test -> the sum of the single-source shares
    unused: tuple[str, ...]  # sources whose arm's runs are all identical

    def as_dict(self) -> dict[str, Any]:
        return {
            "arms": [a.as_dict() for a in self.arms],
            "pairs": [p.as_dict() for p in self.pairs],
            "overall": [o.as_dict() for o in self.overall],
            "share_sum": dict(self.share_sum),
            "share_sum_minus_one": {k: v - 1 for k, v in self.share_sum.items()},
            "unused": list(self.unused),
        }


def analyse(
    val: Mapping[str, ArrayLike],
    test: Mapping[str, ArrayLike],
    fingerprints: Mapping[str, ArrayLike],
    n_val: int | None = None,
    n_test: int | None = None,
    random_state: int = 0,
) -> Sources:
    """Every arm's spread, share of the all arm's variance and noise floor; Brown-Forsythe
    between the single-source arms the configuration uses (pairwise, Holm-adjusted per metric,
    and across them all). val, test: arm -> (n,) scores, in the arms' order; fingerprints:
    arm -> (n, m) final metrics (seedhp.stats.sources module doc); n_val, n_test: the split's
    sizes for the noise floors of accuracies (None: no floor, for a loss)."""
    same = {a for a in val if identical(fingerprints.get(a, np.asarray(val[a])))}
    unused = tuple(a for a in val if a != TOGETHER and a in same)
    arms = []
    for a in val:
        metrics = []
        for scores, n_examples in ((val, n_val), (test, n_test)):
            x = _array(scores[a])
            spread = std_interval(x, random_state=random_state)
            share, ci = (
                variance_share(x, scores[TOGETHER]) if TOGETHER in scores else (math.nan, _NAN2)
            )
            floor = noise_floor(spread.mean, n_examples) if n_examples and len(x) else math.nan
            metrics.append(Metric(spread, share, ci, floor))
        arms.append(Arm(a, len(_array(val[a])), a in same, *metrics))
    used = [a for a in val if a != TOGETHER and a not in unused and len(_array(val[a])) >= 2]
    pairs: list[Pair] = []
    overall: list[Overall] = []
    share_sum = {}
    for name, scores in (("val", val), ("test", test)):
        family = []
        for a, b in itertools.combinations(used, 2):
            xa, xb = _array(scores[a]), _array(scores[b])
            w, p = brown_forsythe(xa, xb)
            sb = float(np.std(xb, ddof=1))
            ratio = float(np.std(xa, ddof=1)) / sb if sb > 0 else math.nan
            family.append((a, b, ratio, w, p))
        adjusted = holm([f[4] for f in family])
        pairs += [Pair(name, *f, q) for f, q in zip(family, adjusted, strict=True)]
        if len(used) >= 2:
            overall.append(Overall(name, tuple(used), *brown_forsythe(*(scores[a] for a in used))))
        singles = [m for arm in arms if arm.source != TOGETHER for m in [_of(arm, name)]]
        share_sum[name] = (
            float(sum(m.share for m in singles)) if TOGETHER in scores and singles else math.nan
        )
    return Sources(tuple(arms), tuple(pairs), tuple(overall), share_sum, unused)


def answer(s: Sources, scale: float = 1.0, unit: str = "") -> str:
    """The page's answer in a sentence or two, on the objective."""
    singles = [a for a in s.arms if a.source != TOGETHER and not a.unused and a.n >= 2]
    parts = []
    if singles:
        top = max(singles, key=lambda a: a.val.spread.std)
        sp = top.val.spread
        parts.append(
            f"Of the sources varied alone, {top.source} moves the objective most: a std of "
            f"{sp.std * scale:.2g}{unit} over {sp.n} seeds"
            + (
                f", a variance {top.val.share:.2g} times that with every source varied"
                if not math.isnan(top.val.share)
                else ""
            )
            + "."
        )
    val_overall = [o for o in s.overall if o.metric == "val"]
    if val_overall:
        o = val_overall[0]
        parts.append(
            f"Their spreads {'differ' if o.p < 0.05 else 'do not differ detectably'} "
            f"(Brown-Forsythe p = {o.p:.2g} across {', '.join(o.sources)})."
        )
    if s.unused:
        parts.append(
            f"Not used by this configuration (every run identical): {', '.join(s.unused)}."
        )
    return " ".join(parts)


def _of(arm: Arm, metric: str) -> Metric:
    return arm.val if metric == "val" else arm.test


def unit(metric: str) -> tuple[float, str]:
    """The page's unit: accuracy points (x 100) for an accuracy, else the metric's own."""
    return (100.0, " points") if metric.endswith("acc") else (1.0, "")


_NAN2 = (math.nan, math.nan)


def _array(x: ArrayLike) -> NDArray[np.float64]:
    v = np.asarray(x, dtype=float).reshape(-1)
    if np.isnan(v).any():
        raise ValueError("scores contain NaN: drop diverged runs before computing statistics")
    return v
