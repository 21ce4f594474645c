"""The strategy contrast's numbers, worked by hand and checked against scipy."""

from __future__ import annotations

import itertools
import math
from dataclasses import replace

import numpy as np
import pytest
from scipy import stats as sps

from seedhp.stats.contrast import holm
from seedhp.stats.strategies import (
    Outcome,
    answer,
    differences,
    p_text,
    percentile,
    pooled,
    rows,
    seed_differences,
    sign_flip,
)


def outcome(
    r: int,
    strategy: str,
    promised: float,
    val: list[float],
    test: list[float],
    reported: float = math.nan,
    budget: int | None = None,
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
        reported=reported,
        budget=budget,
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
    outs = [replace(o, reported=o.promised - 0.03) for o in OUTCOMES]
    table = rows(outs)
    text = answer(table, differences(table), seed_differences(outs), "test_acc")
    # inflation = reported - delivered: tuned 0.96-0.935, 0.97-0.94, 0.95-0.93 -> +2.50 points
    assert text.startswith("At 6 seed-runs per study (3 replicates")
    assert "by tuned +2.50 " in text and "averaged -1.50 " in text
    assert "delivered: tuned 93.50 " in text and "averaged 94.83 " in text
    assert "Tuned − averaged in delivered score: -1.33 " in text
    assert "includes zero" not in text  # the paired CI excludes zero here
    noisy = [
        *outs,
        outcome(3, "tuned", 0.99, [0.96], [0.99], 0.98),
        outcome(3, "averaged", 0.96, [0.95], [0.90], 0.9),
    ]
    t = rows(noisy)
    assert "includes zero" in answer(t, differences(t), seed_differences(noisy), "test_acc")


def test_one_replicate_is_answered_over_its_fresh_seeds_paired_by_seed() -> None:
    one = [o for o in OUTCOMES if o.replicate == 0]
    [d] = seed_differences(one)
    assert (d.a, d.b, d.n) == ("tuned", "averaged", 2)
    assert d.mean == pytest.approx(-0.015)  # (0.93 - 0.95 + 0.94 - 0.95) / 2
    ci = sps.ttest_rel([0.93, 0.94], [0.95, 0.95]).confidence_interval(0.95)
    assert d.ci == pytest.approx((ci.low, ci.high))
    text = answer(rows(one), [], [d], "test_acc")
    assert text.startswith("One replicate, one draw of the protocol")
    assert "paired by fresh seed: -1.50 " in text
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


def test_reported_inflation_z_and_percentile() -> None:
    o = outcome(0, "tuned", 0.97, [0.95, 0.96, 0.97, 0.98], [0.93, 0.94, 0.95, 0.96], 0.955)
    [r] = rows([o])
    assert r.reported == 0.955 and r.inflation == pytest.approx(0.955 - 0.945)
    assert r.z == pytest.approx((0.97 - 0.965) / np.std([0.95, 0.96, 0.97, 0.98], ddof=1))
    assert r.percentile == pytest.approx(100 * (2 + 0.5) / 4)  # two below, one equal
    assert percentile(0.1, [0.2, 0.3], maximize=False) == 100.0  # a loss: lower is better


def test_budgets_are_apart_and_shopping_repeats_no_delivered_row() -> None:
    outs = [
        outcome(k, s, 0.9, [0.9, 0.91], [t + k / 100, t + 0.01], 0.9, budget=b)
        for k in range(4)
        for b in (4, 8)
        for s, t in (("tuned", 0.80), ("averaged", 0.82), ("fixed", 0.81), ("seed_shopping", 0.81))
    ]
    diffs = differences(rows(outs))
    keys = [(d.budget, d.a, d.b, d.quantity) for d in diffs]
    assert len(keys) == len(set(keys)) == 2 * (3 + 6)  # per budget: 3 delivered, 6 inflation
    assert not any(d.quantity == "delivered" and "seed_shopping" in (d.a, d.b) for d in diffs)
    assert not any(d.quantity == "regret" for d in diffs)
    assert {p.budget for p in pooled(rows(outs))} == {4, 8}
    # Holm over the page's family, for both tests
    assert [d.p_holm for d in diffs] == pytest.approx(holm([d.p for d in diffs]), nan_ok=True)
    flips = holm([d.p_signflip for d in diffs])
    assert [d.p_signflip_holm for d in diffs] == pytest.approx(flips, nan_ok=True)


def test_the_exact_sign_flip_p_enumerates_every_sign_pattern() -> None:
    d = [0.3, 0.1, 0.2, 0.4, 0.25]  # all positive: only the all-+ and all-- patterns reach it
    assert sign_flip(d) == pytest.approx(2 / 32)
    x = [0.3, -0.1, 0.2, 0.05]
    hits = sum(
        abs(sum(s * v for s, v in zip(signs, x, strict=True))) >= abs(sum(x)) - 1e-12
        for signs in itertools.product((1, -1), repeat=4)
    )
    assert sign_flip(x) == pytest.approx(hits / 16)
    many = list(np.random.default_rng(1).normal(0.5, 1, 20))  # sampled above EXACT_UP_TO
    assert 0 < sign_flip(many) < 0.2 and math.isnan(sign_flip([0.0, 0.0]))


def test_p_values_below_a_thousandth_are_printed_so() -> None:
    assert p_text(0.0004) == "< 0.001" and p_text(0.0412) == "0.041" and p_text(math.nan) == "n/a"
