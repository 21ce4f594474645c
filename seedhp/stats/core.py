"""Statistics of scores over seeds: pure numpy functions over documented array shapes.

Shapes: `x`, `a`, `b` are (n,) float arrays of one score per seed-run (NaN-free: drop diverged
runs first); `curves` is (n_seeds, n_epochs); `predictions` is (n_members, n_examples) of class
indices with `labels` (n_examples,). Randomised estimators take an explicit `random_state` and
give the same answer for the same one.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import asdict, dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import special, stats

QUANTILES = (0.05, 0.25, 0.75, 0.95)


@dataclass(frozen=True)
class Description:
    n: int
    mean: float
    std: float  # sample standard deviation (ddof=1)
    se: float  # standard error of the mean: std / sqrt(n)
    min: float
    max: float
    gap: float  # max - min
    median: float
    iqm: float  # interquartile mean: scipy.stats.trim_mean(x, 0.25)
    q05: float  # quantiles by numpy's default (linear) method
    q25: float
    q75: float
    q95: float
    skewness: float  # adjusted Fisher-Pearson (scipy.stats.skew, bias=False)
    kurtosis: float  # excess kurtosis, bias-corrected (scipy.stats.kurtosis, bias=False)
    ci_low: float  # 95 % CI of the mean, Student t: mean -/+ t(0.975, n - 1) * se
    ci_high: float

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


def describe(x: ArrayLike) -> Description:
    """Summary of one configuration's scores over seeds; undefined values are NaN (std of one
    score, skewness of fewer than 3, kurtosis of fewer than 4)."""
    v = _array(x)
    n = len(v)
    if n == 0:
        nan = math.nan
        return Description(0, *([nan] * 16))
    q = np.quantile(v, QUANTILES)
    std = float(np.std(v, ddof=1)) if n > 1 else math.nan
    lo, hi = t_interval(v)
    return Description(
        n=n,
        mean=float(v.mean()),
        std=std,
        se=std / math.sqrt(n) if n > 1 else math.nan,
        min=float(v.min()),
        max=float(v.max()),
        gap=float(v.max() - v.min()),
        median=float(np.median(v)),
        iqm=float(stats.trim_mean(v, 0.25)),
        q05=float(q[0]),
        q25=float(q[1]),
        q75=float(q[2]),
        q95=float(q[3]),
        skewness=float(stats.skew(v, bias=False)) if n > 2 and std > 0 else math.nan,
        kurtosis=float(stats.kurtosis(v, bias=False)) if n > 3 and std > 0 else math.nan,
        ci_low=lo,
        ci_high=hi,
    )


def t_interval(x: ArrayLike, confidence: float = 0.95) -> tuple[float, float]:
    """Student-t CI of the mean: mean -/+ t((1 + confidence) / 2, n - 1) * std / sqrt(n)
    (scipy.stats.t.interval). At n = 10 seeds it covers its level; a percentile bootstrap of
    the mean covers about 90 % there."""
    v = _array(x)
    n = len(v)
    if n < 2:
        return (math.nan, math.nan)
    se = float(np.std(v, ddof=1)) / math.sqrt(n)
    if se == 0:
        return (float(v.mean()), float(v.mean()))
    lo, hi = stats.t.interval(confidence, n - 1, loc=float(v.mean()), scale=se)
    return float(lo), float(hi)


def noise_floor(accuracy: float, n_test: int) -> float:
    """The binomial standard error sqrt(p(1-p)/n) of an accuracy measured on n test examples:
    the spread a finite test set alone gives, beside the seed standard deviation."""
    if n_test <= 0 or not 0 <= accuracy <= 1:
        return math.nan
    return math.sqrt(accuracy * (1 - accuracy) / n_test)


MIN_SEEDS_FOR_BLACK_SWANS = 20  # below this, median -/+ 3 MAD flags ordinary extremes


def robust_fences(x: ArrayLike, k: float = 3.0) -> tuple[float, float, float]:
    """(low, high, mad): median -/+ k * MAD, the MAD scaled by the exact consistency constant
    1 / Phi^-1(3/4) = 1.482602218505602 (scipy.stats.median_abs_deviation(scale="normal")) so
    it estimates the standard deviation of normal scores."""
    v = _array(x)
    med = float(np.median(v))
    mad = float(stats.median_abs_deviation(v, scale="normal"))
    return med - k * mad, med + k * mad, mad


def black_swans(x: ArrayLike, k: float = 3.0) -> list[tuple[int, float]]:
    """Indices of scores outside the robust fences, with their distance from the median in
    MADs (signed), for a sample of at least MIN_SEEDS_FOR_BLACK_SWANS scores (in 10-seed draws
    of a symmetric sample a quarter flag one; none below that). With a MAD of 0 every score off
    the median is an outlier."""
    v = _array(x)
    if len(v) < MIN_SEEDS_FOR_BLACK_SWANS:
        return []
    med = float(np.median(v))
    lo, hi, mad = robust_fences(v, k)
    out = []
    for i, s in enumerate(v):
        if s < lo or s > hi:
            out.append((i, (s - med) / mad if mad > 0 else math.copysign(math.inf, s - med)))
    return out


def epoch_bands(curves: ArrayLike) -> dict[str, NDArray[np.float64]]:
    """Per-epoch mean, std (ddof=1), min and max over seeds: curves (n_seeds, n_epochs)."""
    c = np.asarray(curves, dtype=float)
    return {
        "mean": c.mean(0),
        "std": c.std(0, ddof=1) if len(c) > 1 else np.zeros(c.shape[1]),
        "min": c.min(0),
        "max": c.max(0),
    }


def rank_agreement(curves: ArrayLike) -> NDArray[np.float64]:
    """Spearman's rho between each epoch's ranking of the seeds and the final epoch's:
    curves (n_seeds, n_epochs) -> (n_epochs,); NaN where an epoch's scores are all tied."""
    c = np.asarray(curves, dtype=float)
    final = c[:, -1]
    out = np.full(c.shape[1], math.nan)
    for e in range(c.shape[1]):
        if np.ptp(c[:, e]) > 0 and np.ptp(final) > 0:
            out[e] = stats.spearmanr(c[:, e], final).statistic
    return out


def expected_max(
    x: ArrayLike, replacement: bool = True
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Dodge et al. 2019's expected best validation score of n draws, for n = 1..N: with the
    N scores sorted, P(max = v_(i)) = F(v_(i)) - F(v_(i-1)) with F(v_(i)) = (i/N)^n (with
    replacement) or C(i,n)/C(N,n) (without, 0 where i < n); returns (means, sds), both (N,).
    O(N^2): 10,000 scores take about a second."""
    v = np.sort(_array(x))
    N = len(v)
    log_share = np.log(np.arange(1, N + 1) / N)  # log(i/N)
    log_fact = special.gammaln(np.arange(N + 1) + 1.0)  # log k! for k = 0..N
    means, sds = np.empty(N), np.empty(N)
    for n in range(1, N + 1):
        if replacement:
            F, w = np.exp(n * log_share), v
        else:  # C(i,n)/C(N,n) for i = n..N: log i! - log (i-n)! - log N! + log (N-n)!
            F = np.exp(log_fact[n:] - log_fact[: N - n + 1] - log_fact[N] + log_fact[N - n])
            w = v[n - 1 :]
        p = np.diff(F, prepend=0.0)
        means[n - 1] = mean = float(p @ w)
        sds[n - 1] = math.sqrt(max(float(p @ (w - mean) ** 2), 0.0))
    return means, sds


def probability_of_improvement(a: ArrayLike, b: ArrayLike) -> float:
    """P(A > B) for one score of each drawn independently, ties counting 1/2 (rliable's
    definition: the Mann-Whitney U of A against B over n_a * n_b)."""
    va, vb = _array(a), _array(b)
    greater = (va[:, None] > vb[None, :]).sum()
    ties = (va[:, None] == vb[None, :]).sum()
    return float((greater + 0.5 * ties) / (len(va) * len(vb)))


def violation_ratio(a: ArrayLike, b: ArrayLike, dt: float = 0.005) -> float:
    """Dror et al. 2019's epsilon_W2(A, B): the share of the squared 2-Wasserstein distance
    between the score distributions in which A is worse than B (their empirical quantile
    functions on a grid of step dt). 0: A dominates; 1: B dominates; 0.5 when they coincide."""
    t = np.arange(dt, 1.0, dt)
    qa = np.quantile(_array(a), t, method="inverted_cdf")
    qb = np.quantile(_array(b), t, method="inverted_cdf")
    sq = (qb - qa) ** 2
    total = sq.sum()
    return 0.5 if total == 0 else float(sq[qa < qb].sum() / total)


def aso(
    a: ArrayLike,
    b: ArrayLike,
    confidence: float = 0.95,
    n_resamples: int = 1000,
    dt: float = 0.005,
    random_state: int = 0,
) -> float:
    """epsilon_min of almost stochastic order (Dror et al. 2019), written from the paper:
    clip(eps - sigma * Phi^-1(1 - confidence) / c, 0, 1), with c = sqrt(nm / (n + m)) and sigma
    the bootstrap std of c * (eps_b - eps). A one-sided upper bound on the violation ratio:
    < 0.5 means A is better, 0 full stochastic dominance (0.2 is the recommended threshold).
    For two samples of one distribution eps averages 0.5 but varies widely (a bootstrap std of
    about 0.24 at any n, measured), so eps_min lies well above 0.5: no claim either way."""
    va, vb = _array(a), _array(b)
    n, m = len(va), len(vb)
    eps = violation_ratio(va, vb, dt)
    rng = np.random.default_rng(random_state)
    c = math.sqrt(n * m / (n + m))
    reps = np.array(
        [
            violation_ratio(va[rng.integers(0, n, n)], vb[rng.integers(0, m, m)], dt)
            for _ in range(n_resamples)
        ]
    )
    sigma = float(np.std(c * (reps - eps)))
    return float(np.clip(eps - sigma * stats.norm.ppf(1 - confidence) / c, 0.0, 1.0))


def reversal_rate(a: ArrayLike, b: ArrayLike) -> float:
    """The chance that one seed of A against one seed of B ranks them the opposite way to their
    means (ties count 1/2): how often a single-seed comparison gets the order wrong."""
    poi = probability_of_improvement(a, b)
    return 1 - poi if np.mean(_array(a)) >= np.mean(_array(b)) else poi


def ensemble_accuracy(
    predictions: ArrayLike,
    labels: ArrayLike,
    sizes: list[int] | None = None,
    n_draws: int = 50,
    random_state: int = 0,
) -> dict[int, tuple[float, float]]:
    """Majority-vote accuracy of seed ensembles: for each size m, the mean and std over the
    m-member subsets (all of them when there are at most `n_draws`, else `n_draws` random ones)
    of the accuracy of their vote (ties to the lower class).
    predictions (n_members, n_examples) int; labels (n_examples,)."""
    p = np.asarray(predictions, dtype=np.int64)
    y = np.asarray(labels, dtype=np.int64)
    k, n_classes = p.shape[0], int(max(p.max(), y.max())) + 1
    rng = np.random.default_rng(random_state)
    out = {}
    for m in sizes or list(range(1, k + 1)):
        accs = []
        if math.comb(k, m) <= n_draws:  # few subsets: all of them, exactly
            subsets = [list(c) for c in itertools.combinations(range(k), m)]
        else:
            subsets = [list(rng.choice(k, size=m, replace=False)) for _ in range(n_draws)]
        for subset in subsets:
            members = p[subset]  # (m, n_examples)
            votes = np.zeros((n_classes, p.shape[1]), dtype=np.int64)
            for row in members:
                votes[row, np.arange(p.shape[1])] += 1
            accs.append(float((votes.argmax(0) == y).mean()))
        out[m] = (float(np.mean(accs)), float(np.std(accs)))
    return out


def _array(x: ArrayLike) -> NDArray[np.float64]:
    v = np.asarray(x, dtype=float).reshape(-1)
    if np.isnan(v).any():
        raise ValueError("scores contain NaN: drop diverged runs before computing statistics")
    return v
