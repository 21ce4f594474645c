"""The strategy contrast's numbers, worked by hand and checked against scipy."""

from __future__ import annotations

import math

import pytest
from scipy import stats as sps

from seedhp.stats.strategies import (
    Outcome,
    answer,
    differences,
    pooled,
    rows,
    seed_differences,
)


def outcome(
    r: int, strategy: str, promised: float, val: list[float], test: list[float]
) -> Outcome:
    return Outcome(
        replicate=r,
        strategy=strategy,
        study=f"s-r{r}-{strategy}",
        config_id=f"{strategy}{r}",
        label="cfg",
        seed=None,
        promised=promised,
        seed_runs=6,
        fresh_seeds=tuple(range(len(test))),
        fresh_val=tuple(val),
        fresh_test=tuple(test),
    )


# tuned promises more and delivers less than averaged in every replicate
OUTCOMES = [
    outcome(0, "tuned", 0.99, [0.95, 0.96], [0.93, 0.94]),  # delivered 0.935
    outcome(0, "averaged", 0.96, [0.96, 0.96], [0.95, 0.95]),  # 0.95
    outcome(1, "averaged", 0.97, [0.96, 0.97], [0.94, 0.96]),  # 0.95
    outcome(1, "tuned", 1.00, [0.96, 0.96], [0.94, 0.94]),  # 0.94
    outcome(2, "tuned", 0.98, [0.95, 0.95], [0.92, 0.94]),  # 0.93
    outcome(2, "averaged", 0.96, [0.95, 0.95], [0.945, 0.945]),  # 0.945
]


def test_each_replicates_numbers() -> None:
    table = rows(OUTCOMES)
    assert [(r.replicate, r.strategy) for r in table] == [
        (k, s) for k in range(3) for s in ("tuned", "averaged")
    ]
    t0 = table[0]
    assert t0.delivered == pytest.approx(0.935) and t0.fresh_val == pytest.approx(0.955)
    assert t0.seed_luck == pytest.approx(0.99 - 0.955)
    assert t0.gap == pytest.approx(0.955 - 0.935)
    assert t0.optimism == pytest.approx(t0.seed_luck + t0.gap)
    assert t0.regret == pytest.approx(0.95 - 0.935) and table[1].regret == 0
    ci = sps.ttest_1samp([0.93, 0.94], 0).confidence_interval(0.95)
    assert t0.delivered_ci == pytest.approx((ci.low, ci.high))


def test_pooled_over_replicates_with_t_intervals() -> None:
    tuned = next(p for p in pooled(rows(OUTCOMES)) if p.strategy == "tuned")
    optimism = [0.99 - 0.935, 1.00 - 0.94, 0.98 - 0.93]
    assert tuned.n == 3 and tuned.mean["optimism"] == pytest.approx(sum(optimism) / 3)
    ci = sps.ttest_1samp(optimism, 0).confidence_interval(0.95)
    assert tuned.ci["optimism"] == pytest.approx((ci.low, ci.high))


def test_differences_are_paired_by_replicate() -> None:
    diffs = {(d.a, d.b, d.quantity): d for d in differences(rows(OUTCOMES))}
    d = diffs[("tuned", "averaged", "delivered")]
    tuned, averaged = [0.935, 0.94, 0.93], [0.95, 0.95, 0.945]
    assert d.n == 3 and d.mean == pytest.approx(-0.0133333, abs=1e-6)
    assert d.p == pytest.approx(sps.ttest_rel(tuned, averaged).pvalue)
    ci = sps.ttest_rel(tuned, averaged).confidence_interval(0.95)
    assert d.ci == pytest.approx((ci.low, ci.high))


def test_the_answer_states_the_numbers_and_whether_the_interval_includes_zero() -> None:
    table = rows(OUTCOMES)
    text = answer(table, seed_differences(OUTCOMES), "test_acc")
    assert "tuned +5.50 points" in text and "averaged +1.50 points" in text  # 0.055, 0.015
    assert "At an equal budget of 6 seed-runs" in text
    assert "seed-averaging chose delivered 1.33 points better" in text
    assert "includes zero" not in text  # the paired CI excludes zero here
    noisy = [
        *OUTCOMES,
        outcome(3, "tuned", 0.99, [0.96], [0.99]),
        outcome(3, "averaged", 0.96, [0.95], [0.90]),
    ]
    assert "includes zero" in answer(rows(noisy), seed_differences(noisy), "test_acc")


def test_one_replicate_is_answered_over_its_fresh_seeds_paired_by_seed() -> None:
    one = [o for o in OUTCOMES if o.replicate == 0]
    [d] = seed_differences(one)
    assert (d.a, d.b, d.n) == ("tuned", "averaged", 2)
    assert d.mean == pytest.approx(-0.015)  # (0.93 - 0.95 + 0.94 - 0.95) / 2
    ci = sps.ttest_rel([0.93, 0.94], [0.95, 0.95]).confidence_interval(0.95)
    assert d.ci == pytest.approx((ci.low, ci.high))
    text = answer(rows(one), [d], "test_acc")
    assert text.startswith("One replicate, one draw of the protocol")
    assert "seed-averaging's winner delivered 1.50 points better" in text
    assert "includes zero" in text  # two seeds: a wide interval


def test_a_loss_is_minimised() -> None:
    outs = [
        outcome(0, "tuned", 0.10, [0.15], [0.20]),
        outcome(0, "averaged", 0.14, [0.15], [0.16]),
    ]
    tuned, averaged = rows(outs, maximize=False)
    assert tuned.optimism == pytest.approx(0.10) and averaged.optimism == pytest.approx(0.02)
    assert averaged.regret == 0 and tuned.regret == pytest.approx(0.04)
    assert math.isnan(pooled([tuned])[0].ci["optimism"][0])  # one replicate: no interval
