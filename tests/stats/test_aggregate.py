from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import trim_mean

from seedhp.stats.aggregate import aggregate
from seedhp.stats.core import describe


def test_by_hand() -> None:
    xs = [0.90, 0.96, 0.92, 0.94]
    assert aggregate(xs, "mean", True) == pytest.approx(0.93)
    assert aggregate(xs, "median", True) == pytest.approx(0.93)
    assert aggregate(xs, "iqm", True) == pytest.approx(0.93)  # mean of 0.92, 0.94
    assert aggregate(xs, "min", True) == 0.90  # the worst seed of an accuracy
    assert aggregate([0.3, 0.1, 0.2], "min", False) == 0.3  # ... and of a loss
    assert math.isnan(aggregate([0.9, math.nan], "mean", True))


@pytest.mark.parametrize("n", [4, 8, 12, 20, 100])
def test_iqm_matches_scipy_trim_mean(n: int) -> None:
    xs = np.random.default_rng(n).normal(size=n)
    assert aggregate(list(xs), "iqm", True) == pytest.approx(trim_mean(xs, 0.25))


def test_one_iqm_for_studies_and_reports_when_n_is_not_divisible_by_four() -> None:
    # rliable's and scipy's: int(5 / 4) = 1 score cut from each end, the middle 3 averaged
    # (the study aggregate used to weight the boundary scores: 0.915 here, the report 0.91667)
    xs = [0.90, 0.90, 0.90, 0.95, 0.99]
    assert aggregate(xs, "iqm", True) == pytest.approx((0.90 + 0.90 + 0.95) / 3)
    assert aggregate(xs, "iqm", True) == describe(xs).iqm
    assert aggregate([1, 2, 3, 4, 5], "iqm", True) == 3.0
