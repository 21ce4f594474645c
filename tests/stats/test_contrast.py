from __future__ import annotations

import math

import pytest
from scipy import stats as sps

from seedhp.stats.contrast import SeedRun, audit, compare, fresh_seeds, holm, select


def run(
    cid: str,
    seed: int,
    val: float,
    test: float,
    role: str = "run",
    status: str = "finished",
    model: str = "cnn",
    strategy: str | None = None,
    study: str | None = None,
) -> SeedRun:
    return SeedRun(
        run_id=f"{cid}{seed}{role}",
        config_id=cid,
        label=f"cfg {cid}",
        seed=seed,
        status=status,
        role=role,
        metrics={"val_acc": val, "test_acc": test},
        model=model,
        strategy=strategy,
        study=study,
    )


RUNS = [
    run("A", 0, 0.90, 0.89),
    run("A", 1, 0.91, 0.90),
    run("A", 2, 0.92, 0.91),
    run("A", 3, 0.99, 0.93),
    run("B", 0, 0.94, 0.93),
    run("B", 1, 0.94, 0.94),
    run("B", 2, 0.95, 0.94),
    run("B", 3, 0.95, 0.95),
    run("A", 4, math.nan, math.nan, status="diverged"),
    # fresh seeds: A on 10, 11; B on 10, 11; a "fresh" run on seed 2 of A is no fresh seed
    run("A", 10, 0.91, 0.90, "reseed"),
    run("A", 11, 0.92, 0.91, "reseed"),
    run("A", 2, 0.5, 0.5, "reseed"),
    run("B", 10, 0.95, 0.94, "reseed"),
    run("B", 11, 0.94, 0.95, "reseed"),
]


def test_seed_tuned_and_seed_averaged_winners_and_their_optimism() -> None:
    tuned, averaged = select(RUNS, "val_acc", "test_acc", maximize=True)
    assert (tuned.rule, tuned.config_id, tuned.seed) == ("seed-tuned", "A", 3)
    assert tuned.chosen_on == 0.99 and tuned.selected_test == 0.93 and tuned.n_seeds == 4
    assert tuned.fresh_seeds == (10, 11) and tuned.fresh_n == 2
    assert tuned.fresh_test_mean == pytest.approx(0.905)
    assert tuned.optimism == pytest.approx(0.99 - 0.905)
    assert tuned.seed_luck == pytest.approx(0.99 - 0.915)
    assert (averaged.rule, averaged.config_id, averaged.seed) == ("seed-averaged", "B", None)
    assert averaged.chosen_on == pytest.approx(0.945)
    assert averaged.selected_test == pytest.approx(0.94)
    assert averaged.optimism == pytest.approx(0.945 - 0.945)
    assert averaged.optimism < tuned.optimism
    assert fresh_seeds(RUNS, 3) == [12, 13, 14]


def test_optimism_is_seed_luck_plus_the_validation_to_test_gap_each_with_a_t_interval() -> None:
    tuned, _ = select(RUNS, "val_acc", "test_acc", maximize=True)
    # A's fresh seeds 10, 11: val 0.91, 0.92; test 0.90, 0.91; chosen on 0.99
    t = sps.t.ppf(0.975, 1)
    assert tuned.val_test_gap == pytest.approx(0.01)
    assert tuned.optimism == pytest.approx(tuned.seed_luck + tuned.val_test_gap)
    half = t * 0.005  # (0.91, 0.92): std 0.00707, se 0.005
    assert tuned.seed_luck_ci == pytest.approx((0.99 - 0.915 - half, 0.99 - 0.915 + half))
    assert tuned.optimism_ci == pytest.approx((0.99 - 0.905 - half, 0.99 - 0.905 + half))
    assert tuned.val_test_gap_ci == pytest.approx((0.01, 0.01))  # the same gap on both seeds
    ci = sps.ttest_1samp([0.91, 0.92], 0).confidence_interval(0.95)
    assert tuned.fresh_val_ci == pytest.approx((ci.low, ci.high))


def test_ties_go_to_the_lowest_seed_then_the_smallest_config_id_and_are_listed() -> None:
    """The rule looks at no test score: the tied runs' test scores are in the opposite order."""
    runs = [
        run("C", 9, 1.0, 0.99),
        run("B", 68, 1.0, 0.999),
        run("A", 9, 1.0, 0.98),
        run("A", 1, 0.9, 0.9),
        run("C", 1, 0.9, 0.9),
        run("B", 1, 0.8, 0.8),
        run("B", 2, 1.0, 1.0),
    ]
    for order in (runs, runs[::-1]):
        tuned, averaged = select(order, "val_acc", "test_acc", maximize=True)
        assert (tuned.config_id, tuned.seed) == ("B", 2)
        assert tuned.tied_with == (("A", 9), ("C", 9), ("B", 68))
        # means: A 0.95, C 0.95, B 0.9333: A and C tie, A has the smaller config_id
        assert averaged.config_id == "A" and averaged.tied_with == (("C", None),)


def test_means_equal_in_counts_tie_whatever_float32_rounding_says() -> None:
    """800 + 817 and 801 + 816 correct of 864 on two seeds: the same mean in counts; as
    float32 accuracies (torch's) their means differ in the 8th decimal, and the rule, not the
    rounding, picks the winner. One example more is not a tie."""
    import numpy as np

    def acc(correct: int) -> float:
        return float(np.float32(correct) / np.float32(864))

    runs = [
        run("B", 0, acc(800), 0.9),
        run("B", 1, acc(817), 0.9),
        run("A", 0, acc(801), 0.8),
        run("A", 1, acc(816), 0.8),
    ]
    a = (acc(801) + acc(816)) / 2
    b = (acc(800) + acc(817)) / 2
    assert a != b  # the rounding differs ...
    for order in (runs, runs[::-1]):
        _, averaged = select(order, "val_acc", "test_acc", maximize=True)
        assert averaged.config_id == "A" and averaged.tied_with == (("B", None),)
    more = [*runs[:3], run("A", 1, acc(817), 0.8)]  # A: one example more
    _, averaged = select(more, "val_acc", "test_acc", maximize=True)
    assert averaged.config_id == "A" and averaged.tied_with == ()


def test_the_seed_averaged_winner_is_averaged_over_two_seeds_at_least() -> None:
    """Pooled studies: a configuration a tuned trial ran on one lucky seed is no average."""
    runs = [run("L", 7, 0.999, 0.9), run("A", 0, 0.95, 0.95), run("A", 1, 0.96, 0.95)]
    tuned, averaged = select(runs, "val_acc", "test_acc", maximize=True)
    assert tuned.config_id == "L" and averaged.config_id == "A"
    _, alone = select(runs[:1], "val_acc", "test_acc", maximize=True)
    assert alone.config_id == "L"  # nothing has two seeds: the one there is


def test_without_fresh_seeds_the_optimism_is_unknown() -> None:
    tuned, _ = select([r for r in RUNS if r.role != "reseed"], "val_acc", "test_acc", True)
    assert tuned.fresh_n == 0 and math.isnan(tuned.optimism)


def test_losses_are_minimised() -> None:
    runs = [
        SeedRun("a0", "A", "A", 0, "finished", "run", {"val_loss": 0.3, "test_loss": 0.3}),
        SeedRun("b0", "B", "B", 0, "finished", "run", {"val_loss": 0.2, "test_loss": 0.2}),
    ]
    tuned, averaged = select(runs, "val_loss", "test_loss", maximize=False)
    assert tuned.config_id == averaged.config_id == "B"


def test_same_seeds_are_compared_paired_against_scipy() -> None:
    """A and B both finished seeds 0-3: paired t, Wilcoxon signed-rank, the paired difference's
    t-interval, P(A>B) and the reversal rate over shared seeds."""
    [c] = compare(RUNS, "test_acc", maximize=True, chosen_by="val_acc")
    b = [0.93, 0.94, 0.94, 0.95]  # seeds 0..3: B is better
    a = [0.89, 0.90, 0.91, 0.93]
    assert (c.a, c.b, c.n_a, c.n_b, c.paired, c.n_shared) == ("B", "A", 4, 4, True, 4)
    d = [x - y for x, y in zip(b, a, strict=True)]
    assert c.difference == pytest.approx(sum(d) / 4)
    assert c.t_p == pytest.approx(sps.ttest_rel(b, a).pvalue)
    assert c.rank_p == pytest.approx(sps.wilcoxon(b, a).pvalue)
    ci = sps.ttest_rel(b, a).confidence_interval(0.95)
    assert (c.ci_low, c.ci_high) == pytest.approx((ci.low, ci.high))
    assert c.p_improvement == 1.0 and c.reversal_rate == 0.0  # B above A on every shared seed
    assert (c.t_p_holm, c.n_comparisons) == (pytest.approx(c.t_p), 1)  # one comparison


def test_different_seeds_are_compared_unpaired_against_scipy() -> None:
    a = [0.89, 0.90, 0.91, 0.93]
    b = [0.93, 0.94, 0.94, 0.95]
    runs = [run("A", 20 + i, 0.90, x) for i, x in enumerate(a)]
    runs += [run("B", i, 0.95, x) for i, x in enumerate(b)]
    [c] = compare(runs, "test_acc", maximize=True, chosen_by="val_acc")
    assert (c.a, c.b, c.paired, c.n_shared) == ("B", "A", False, 0)
    welch = sps.ttest_ind(b, a, equal_var=False)
    assert c.t_p == pytest.approx(welch.pvalue)
    assert (c.ci_low, c.ci_high) == pytest.approx(tuple(welch.confidence_interval(0.95)))
    assert c.rank_p == pytest.approx(sps.mannwhitneyu(b, a).pvalue)
    assert c.p_improvement == pytest.approx(sps.mannwhitneyu(b, a).statistic / 16)


def test_holm_by_hand_and_configurations_chosen_on_validation() -> None:
    assert holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    kept, dropped = holm([0.5, math.nan])  # a p-value that does not exist is not counted
    assert kept == 0.5 and math.isnan(dropped)
    # C has the best test mean but the worst validation mean: with max_configs=2 it is left out
    runs = [r for r in RUNS if r.role == "run"]
    runs += [run("C", s, 0.80, 0.99) for s in range(4)]
    [c] = compare(runs, "test_acc", maximize=True, max_configs=2, chosen_by="val_acc")
    assert {c.a, c.b} == {"A", "B"}
    three = compare(runs, "test_acc", maximize=True, chosen_by="val_acc")
    assert [x.n_comparisons for x in three] == [3, 3, 3]
    assert [x.t_p_holm for x in three] == pytest.approx(holm([x.t_p for x in three]))


def names(items) -> dict[str, str]:  # type: ignore[no-untyped-def]
    return {i.name: i.kind for i in items}


def test_audit_names_safe_and_risky_uses() -> None:
    assert names(audit(RUNS, "val_acc", ensembles=True)) == {
        "seed searched on validation": "safe",
        "seed ensembles": "safe",
    }
    many = [run("A", s, 0.9, 0.9) for s in range(5)]
    assert names(audit(many, "val_acc", False))["sensitivity analysis"] == "safe"
    assert (
        names(audit(RUNS, "test_acc", False))["a selection that looked at test scores"] == "risky"
    )
    one_seed = [run("A", 7, 0.9, 0.9), run("B", 7, 0.8, 0.8)]
    assert names(audit(one_seed, "val_acc", False)) == {"one fixed seed": "risky"}
    mixed = [
        run("A", 0, 0.9, 0.9, strategy="tuned"),
        run("B", 1, 0.9, 0.9, strategy="averaged"),
        run("B", 2, 0.9, 0.9, strategy="averaged"),
    ]
    assert (
        names(audit(mixed, "val_acc", False))["a seed-tuned result beside seed-averaged ones"]
        == "risky"
    )
    models = [run("A", s, 0.9, 0.9, model="cnn") for s in range(3)] + [
        run("B", s, 0.9, 0.9, model="mlp") for s in range(3)
    ]
    assert (
        names(audit(models, "val_acc", False))["a comparison where only the seed varied"]
        == "risky"
    )
    for item in audit(models, "val_acc", False):
        assert item.why.endswith(".") and len(item.why) > 40  # one sentence of why


def test_audit_reads_each_study_by_its_own_strategy() -> None:
    """Pooled (seedhp report --all), each study is described as what it is."""
    runs = [
        *(
            run(c, s, 0.9, 0.9, "trial", strategy="tuned", study="t")
            for c, s in [("A", 5), ("B", 9)]
        ),
        *(
            run(c, s, 0.9, 0.9, "trial", strategy="averaged", study="a")
            for c in "AC"
            for s in (0, 1, 2)
        ),
        *(run(c, 0, 0.9, 0.9, "trial", strategy="fixed", study="f") for c in "ABD"),
    ]
    items = {i.name: i for i in audit(runs, "val_acc", False)}
    assert items["study t: the seed searched on validation"].kind == "safe"
    assert (
        "Risky if the winning seed's score is reported"
        in items["study t: the seed searched on validation"].why
    )
    assert items["study a: configurations compared on shared seeds"].kind == "safe"
    assert "(0, 1, 2)" in items["study a: configurations compared on shared seeds"].why
    assert items["study f: one fixed seed"].kind == "risky"
    assert "one fixed seed" not in items  # no claim that every configuration used one seed
    alone = {i.name for i in audit([r for r in runs if r.study == "t"], "val_acc", False)}
    assert alone == {"study t: the seed searched on validation"}  # a tuned study is not "nothing"


def test_comparisons_do_not_depend_on_the_order_runs_come_from_the_store() -> None:
    """ASO resamples: its inputs are ordered by seed, so a store's row order changes nothing."""
    runs = [r for r in RUNS if r.role == "run"] + [run("C", s, 0.93, 0.92) for s in range(4)]
    shuffled = runs[::-1][3:] + runs[::-1][:3]
    assert compare(runs, "test_acc", True, chosen_by="val_acc") == compare(
        shuffled, "test_acc", True, chosen_by="val_acc"
    )
