from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from scipy import stats as sps

from seedhp.stats import core as stats


def test_describe_worked_by_hand_and_against_scipy() -> None:
    x = [0.90, 0.92, 0.94, 0.96, 0.98]
    d = stats.describe(x)
    assert (d.n, d.min, d.max) == (5, 0.90, 0.98)
    assert d.mean == pytest.approx(0.94) and d.median == pytest.approx(0.94)
    assert d.std == pytest.approx(math.sqrt(0.004 / 4))  # 0.04² + 0.02² + 0 + 0.02² + 0.04²
    assert d.se == pytest.approx(d.std / math.sqrt(5)) and d.gap == pytest.approx(0.08)
    assert (d.q25, d.q75) == pytest.approx((0.92, 0.96))
    assert d.iqm == pytest.approx(sps.trim_mean(x, 0.25))
    assert d.skewness == pytest.approx(0.0, abs=1e-9)  # symmetric
    y = np.random.default_rng(1).exponential(size=40)
    e = stats.describe(y)
    assert e.skewness == pytest.approx(sps.skew(y, bias=False))
    assert e.kurtosis == pytest.approx(sps.kurtosis(y, bias=False))
    assert e.ci_low < y.mean() < e.ci_high
    assert math.isnan(stats.describe([0.5]).std)
    # the CI of a mean is Student's t: by hand, t(0.975, 4) = 2.7764451051977987
    half = 2.7764451051977987 * d.std / math.sqrt(5)
    assert (d.ci_low, d.ci_high) == pytest.approx((0.94 - half, 0.94 + half), rel=1e-12)
    ref = sps.ttest_1samp(x, 0.94).confidence_interval(0.95)
    assert (d.ci_low, d.ci_high) == pytest.approx((ref.low, ref.high), rel=1e-12)


def test_noise_floor() -> None:
    assert stats.noise_floor(0.9, 100) == pytest.approx(0.03)
    assert math.isnan(stats.noise_floor(0.9, 0))


def test_black_swans_outside_robust_fences() -> None:
    x = [0.88, 0.89, 0.90, 0.91, 0.92] * 4 + [0.90, 0.60]  # 22 seeds
    [(i, dist)] = stats.black_swans(x, k=3)
    assert i == 21 and dist < -3
    lo, _, mad = stats.robust_fences(x, k=3)
    # the exact consistency constant 1 / Phi^-1(3/4), not 1.4826
    assert mad == sps.median_abs_deviation(x, scale="normal")
    assert mad == pytest.approx(1.482602218505602 * 0.01, rel=1e-14)
    assert mad != pytest.approx(1.4826 * 0.01, rel=1e-9)
    assert lo == pytest.approx(0.90 - 3 * mad, abs=1e-15)


def test_no_black_swans_below_twenty_seeds() -> None:
    """A symmetric 10-seed sample's extremes sit near median -/+ 3 MAD: not looked for."""
    x = [0.88, 0.89, 0.90, 0.91, 0.92, 0.90, 0.60]
    assert stats.black_swans(x, k=3) == []
    assert [i for i, _ in stats.black_swans(x * 3, k=3)] == [6, 13, 20]  # 21 seeds


def test_epoch_bands_and_rank_agreement() -> None:
    curves = np.array([[0.1, 0.5, 0.9], [0.2, 0.4, 0.8], [0.3, 0.3, 0.7]])  # (3 seeds, 3 epochs)
    bands = stats.epoch_bands(curves)
    assert bands["mean"] == pytest.approx([0.2, 0.4, 0.8]) and bands["max"][0] == 0.3
    rho = stats.rank_agreement(curves)
    assert rho == pytest.approx([-1.0, 1.0, 1.0])  # epoch 1 ranks the seeds the other way round


@pytest.mark.parametrize("replacement", [True, False])
def test_expected_max_against_brute_force(replacement: bool) -> None:
    v = [0.7, 0.9, 0.8, 0.8, 0.6]
    means, sds = stats.expected_max(v, replacement=replacement)
    for n in range(1, len(v) + 1):
        draws = itertools.product(v, repeat=n) if replacement else itertools.combinations(v, n)
        maxima = [max(d) for d in draws]
        assert means[n - 1] == pytest.approx(np.mean(maxima)), n
        assert sds[n - 1] == pytest.approx(np.std(maxima), abs=1e-12), n
    assert means[0] == pytest.approx(np.mean(v))


def test_expected_max_with_replacement_against_monte_carlo() -> None:
    v = np.random.default_rng(0).normal(size=50)
    means, _ = stats.expected_max(v, replacement=True)
    rng = np.random.default_rng(1)
    for n in (3, 10, 30):
        mc = rng.choice(v, size=(100_000, n)).max(1).mean()
        assert means[n - 1] == pytest.approx(mc, abs=0.01)


def test_probability_of_improvement_is_mann_whitney_u_over_nm() -> None:
    a, b = [1, 2, 3, 3], [2, 3, 4]
    # pairs a>b: (3>2)x2 ; ties: (2=2), (3=3)x2 -> (2 + 0.5*3) / 12
    assert stats.probability_of_improvement(a, b) == pytest.approx(3.5 / 12)
    assert stats.probability_of_improvement(a, b) == pytest.approx(
        sps.mannwhitneyu(a, b).statistic / 12
    )
    assert stats.probability_of_improvement(b, b) == 0.5
    assert stats.reversal_rate([5, 6, 7], [1, 2, 3]) == 0.0
    assert stats.reversal_rate(b, b) == 0.5


def test_almost_stochastic_order_on_known_distributions() -> None:
    rng = np.random.default_rng(0)
    a = rng.normal(size=200)
    assert stats.violation_ratio(a + 1, a) == 0.0 and stats.violation_ratio(a, a + 1) == 1.0
    assert stats.violation_ratio(a, a) == 0.5
    assert stats.aso(a + 1, a) == pytest.approx(0.0, abs=0.01)  # A dominates
    assert stats.aso(a, a + 1) == pytest.approx(1.0, abs=0.01)
    same = [stats.violation_ratio(rng.normal(size=2000), rng.normal(size=2000)) for _ in range(20)]
    assert np.mean(same) == pytest.approx(0.5, abs=0.08)  # identical distributions: ~0.5
    # eps_min is an upper bound: for one distribution it sits above 0.5, no claim either way
    assert stats.aso(rng.normal(size=500), rng.normal(size=500)) >= 0.5
    small = stats.aso(rng.normal(0.3, 1, size=300), rng.normal(0, 1, size=300))
    assert small < 0.5  # a shifted distribution is (almost) dominant


def test_ensemble_majority_vote() -> None:
    labels = [0, 1, 2, 0]
    predictions = [[0, 1, 2, 1], [0, 1, 0, 0], [1, 1, 2, 0]]  # each wrong once, never together
    acc = stats.ensemble_accuracy(predictions, labels)
    assert acc[3] == (1.0, 0.0)  # the vote fixes every single-member mistake
    assert acc[1][0] == pytest.approx(0.75)  # each member alone is 3/4 right
    with pytest.raises(ValueError, match="NaN"):
        stats.describe([0.9, float("nan")])
