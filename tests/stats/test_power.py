"""Power and the seeds a difference needs, against statsmodels (a test-only dependency) and a
simulation of the tests themselves."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as sps
from statsmodels.stats.power import TTestIndPower, TTestPower

from seedhp.stats.power import detectable, power, seeds_for_effect, seeds_needed


@pytest.mark.parametrize("effect", [0.2, 0.5, 0.8, 1.2])
@pytest.mark.parametrize("n", [2, 5, 12, 40])
def test_power_is_statsmodels_power(effect: float, n: int) -> None:
    assert power(effect, n, paired=True) == pytest.approx(
        TTestPower().power(effect, nobs=n, alpha=0.05), abs=1e-6
    )
    assert power(effect, n, paired=False) == pytest.approx(
        TTestIndPower().power(effect, nobs1=n, alpha=0.05, ratio=1.0), abs=1e-6
    )


def test_power_agrees_with_a_simulation_of_the_tests() -> None:
    rng = np.random.default_rng(0)
    effect, n = 0.8, 12
    one = rng.normal(effect, 1.0, size=(20_000, n))
    assert power(effect, n) == pytest.approx(
        np.mean(sps.ttest_1samp(one, 0.0, axis=1).pvalue < 0.05), abs=0.01
    )
    a, b = rng.normal(effect, 1.0, size=(20_000, n)), rng.normal(0.0, 1.0, size=(20_000, n))
    assert power(effect, n, paired=False) == pytest.approx(
        np.mean(sps.ttest_ind(a, b, axis=1).pvalue < 0.05), abs=0.01
    )


@pytest.mark.parametrize("paired", [True, False])
@pytest.mark.parametrize("effect", [0.3, 0.8, 2.0])
def test_the_seeds_needed_are_the_first_that_reach_80_percent(effect: float, paired: bool) -> None:
    k = seeds_for_effect(effect, paired)
    assert k is not None and power(effect, k, paired) >= 0.8
    assert k == 2 or power(effect, k - 1, paired) < 0.8
    solver = TTestPower() if paired else TTestIndPower()
    assert k == math.ceil(solver.solve_power(effect, power=0.8, alpha=0.05))
    assert seeds_for_effect(-effect, paired) == k  # two-sided: the sign does not matter


def test_half_the_difference_needs_about_four_times_the_seeds() -> None:
    k, half = seeds_needed(0.006, 0.01), seeds_needed(0.003, 0.01)
    assert k is not None and half is not None and 3.5 * k < half < 4.5 * k
    assert seeds_needed(0.0, 0.01) is None and seeds_needed(1e-6, 0.01) is None  # > 10,000
    assert seeds_needed(0.003, 0.0) is None and seeds_needed(0.003, math.nan) is None


@pytest.mark.parametrize("paired", [True, False])
@pytest.mark.parametrize("n", [3, 10, 50])
def test_the_detectable_difference_is_detected_with_80_percent(n: int, paired: bool) -> None:
    std = 0.004  # accuracy: 0.4 points
    d = detectable(std, n, paired)
    assert power(d / std, n, paired) == pytest.approx(0.8, abs=1e-8)
    expected = (
        TTestPower().solve_power(nobs=n, power=0.8, alpha=0.05)
        if paired
        else TTestIndPower().solve_power(nobs1=n, power=0.8, alpha=0.05)
    )
    assert d / std == pytest.approx(expected, rel=1e-4)
    assert math.isnan(detectable(std, 1)) and math.isnan(detectable(0.0, n))


def test_a_large_effect_has_power_one_not_nan() -> None:
    # scipy's nct.cdf far below a noncentrality of 9.5 is NaN (statsmodels' power is NaN here)
    assert power(1.5, 40) == pytest.approx(1.0) and power(3.0, 200, paired=False) == 1.0
