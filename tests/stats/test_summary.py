from __future__ import annotations

import math
import statistics

from seedhp.stats.summary import format_table, maximize, summarize


def rec(cid: str, seed: int, value: float, status: str = "finished", test: float = 0.5) -> dict:
    return {
        "config_id": cid,
        "seed": seed,
        "status": status,
        "value": value,
        "test": test,
        "label": f"cfg {cid}",
    }


def test_summary_worked_by_hand() -> None:
    rows = [
        rec("a", 0, 0.90),
        rec("a", 1, 0.94),
        rec("a", 2, 0.92, test=0.7),
        rec("a", 3, math.nan, "diverged"),
        rec("a", 4, math.nan, "failed"),
        rec("b", 0, 0.80),
    ]
    a, b = summarize(rows, "val_acc")
    assert (a.config_id, a.n, a.n_diverged, a.n_failed) == ("a", 3, 1, 1)
    assert math.isclose(a.mean, 0.92) and math.isclose(a.median, 0.92)
    assert math.isclose(a.std, 0.02)  # sample std of 0.90, 0.94, 0.92
    assert (a.min, a.max) == (0.90, 0.94) and math.isclose(a.gap, 0.04)
    assert (a.best_seed, a.worst_seed) == (1, 0)
    assert math.isclose(a.test_mean, statistics.fmean([0.5, 0.5, 0.7]))
    assert b.n == 1 and math.isnan(b.std) and b.best_seed == b.worst_seed == 0


def test_losses_are_minimised_and_ties_go_to_the_lower_seed() -> None:
    assert maximize("val_acc") and not maximize("val_loss")
    [s] = summarize([rec("a", 7, 0.3), rec("a", 2, 0.1), rec("a", 5, 0.1)], "val_loss")
    assert s.best_seed == 2 and s.worst_seed == 7


def test_table_has_one_row_per_configuration() -> None:
    table = format_table(summarize([rec("a", 0, 0.9), rec("b", 0, 0.8)], "val_acc"), "val_acc")
    assert table.count("\n") == 3 and "cfg b" in table
