"""`seedhp plan`'s numbers from hand-made pilot runs: each configuration on its own seeds, and
the best one paired with another on the seeds both finished."""

from __future__ import annotations

import statistics

import pytest

from seedhp.errors import ConfigError
from seedhp.report.collect import RunSet
from seedhp.report.sizing import format_needs, needs, std_interval_factors
from seedhp.stats.contrast import SeedRun
from seedhp.stats.power import detectable, seeds_needed

A = [0.95, 0.96, 0.94, 0.97, 0.95]
B = [0.94, 0.94, 0.93, 0.95, 0.95]


def pilot() -> RunSet:
    runs = [
        SeedRun(f"{cid}{s}", cid, f"mlp lr={lr}", s, "finished", "run", {"val_acc": v})
        for cid, lr, scores in (("aaa", 0.1, A), ("bbb", 0.2, B))
        for s, v in enumerate(scores)
    ]
    runs.append(SeedRun("x", "bbb", "mlp lr=0.2", 9, "diverged", "run", {}))  # not counted
    return RunSet("sweep s", "sweep", "p", "val_acc", "test_acc", runs)


def test_each_configuration_and_the_paired_best_get_their_seeds() -> None:
    a, b, paired = needs(pilot(), 0.01, "val_acc")
    assert (a.label, b.label) == ("lr=0.1", "lr=0.2")  # best mean first, named by what differs
    assert a.n == 5 and a.std == pytest.approx(statistics.stdev(A))
    assert a.seeds == seeds_needed(0.01, statistics.stdev(A), paired=False)
    assert a.detectable == pytest.approx(detectable(statistics.stdev(A), 5, paired=False))
    d = [x - y for x, y in zip(A, B, strict=True)]
    assert paired.paired and paired.other == "lr=0.2" and paired.n == 5
    assert paired.std == pytest.approx(statistics.stdev(d))
    assert paired.seeds == seeds_needed(0.01, statistics.stdev(d), paired=True)
    text = format_needs([a, b, paired], 0.01, "val_acc", "the pilot")
    assert "lr=0.1 - lr=0.2 (paired)" in text and f" {a.seeds}\n" in text


@pytest.mark.parametrize(
    ("difference", "metric", "key"),
    [
        (0.0, "val_acc", "--difference"),
        (float("nan"), "val_acc", "--difference"),
        (0.01, "nope", "--metric"),
    ],
)
def test_bad_plans_are_refused(difference: float, metric: str, key: str) -> None:
    with pytest.raises(ConfigError) as err:
        needs(pilot(), difference, metric)
    assert err.value.key == key


def test_a_pilot_of_one_seed_per_configuration_is_refused() -> None:
    rs = pilot()
    rs.runs = [r for r in rs.runs if r.seed == 0]
    with pytest.raises(ConfigError, match="at least 2 finished seeds"):
        needs(rs, 0.01, "val_acc")


def test_the_std_interval_is_the_chi_square_one() -> None:
    low, high = std_interval_factors(10)
    assert low == pytest.approx(0.688, abs=1e-3) and high == pytest.approx(1.826, abs=1e-3)
