"""The bound on a sweep: how many values one override may take and how many jobs a grid may have.

A sweep is expanded into lists before anything runs (Hydra's basic sweeper does the same), so
`seed='range(0,100000000)'` would build a hundred million job descriptions, gigabytes, before a
word is printed. Its size is known without expanding it: a range's length is arithmetic. Above
MAX_JOBS, seedhp refuses the sweep in one line and says how to split it; below, it expands.
"""

from __future__ import annotations

import decimal
import math
from collections.abc import Sequence
from typing import Any

from hydra.core.override_parser.types import ChoiceSweep, Override, RangeSweep

from seedhp.errors import ConfigError

MAX_JOBS = 100_000  # jobs in one grid sweep, values in one override: 20 times Picard's scan


def length(o: Override) -> int:
    """How many values a discrete sweep override takes, without taking them."""
    sweep = o.value()
    if isinstance(sweep, RangeSweep):
        start, stop, step = _numbers(sweep)
        if isinstance(start, int) and isinstance(stop, int) and isinstance(step, int):
            return len(range(start, stop, step)) if step != 0 else 0
        lo, hi, by = (decimal.Decimal(v) for v in (start, stop, step))  # as Hydra counts
        return max(0, math.ceil((hi - lo) / by)) if by != 0 else 0
    if isinstance(sweep, ChoiceSweep):
        return len(sweep.list)
    return len(list(o.sweep_iterator()))  # glob: the config group's options


def values(o: Override) -> list[Any]:
    """The values of a discrete sweep override; ConfigError above MAX_JOBS."""
    check(o.get_key_element(), _text(o), length(o), "values")
    return list(o.sweep_iterator())


def ends(o: Override) -> tuple[Any, Any]:
    """The first and last values of a range, without taking the others (None: empty)."""
    sweep = o.value()
    assert isinstance(sweep, RangeSweep)
    n = length(o)
    if n == 0:
        return None, None
    start, _, step = _numbers(sweep)
    r = sweep.range()
    if isinstance(r, range):
        return r[0], r[-1]
    last = decimal.Decimal(start) + (n - 1) * decimal.Decimal(step)
    return float(start), float(last)


def check_grid(overrides: Sequence[Override]) -> None:
    """Refuse a grid whose cartesian product has more than MAX_JOBS jobs, before expanding."""
    swept = [o for o in overrides if o.is_sweep_override() and o.is_discrete_sweep()]
    for o in swept:
        check(o.get_key_element(), _text(o), length(o), "values")
    if len(swept) > 1:
        keys = " x ".join(o.get_key_element() for o in swept)
        sizes = " x ".join(str(length(o)) for o in swept)
        check(keys, sizes, math.prod(length(o) for o in swept), "jobs")


def check(key: str, text: str, n: int, what: str) -> None:
    """Refuse a sweep of n values or jobs above MAX_JOBS, in one line."""
    if n > MAX_JOBS:
        raise ConfigError(
            key,
            text,
            f"{n:,} {what}: one sweep takes at most {MAX_JOBS:,} jobs; run it as several "
            f"(e.g. seed='range(0,{MAX_JOBS})', then seed='range({MAX_JOBS},{2 * MAX_JOBS})')",
        )


def _numbers(sweep: RangeSweep) -> tuple[int | float, int | float, int | float]:
    assert sweep.start is not None and sweep.stop is not None  # the grammar requires both
    return sweep.start, sweep.stop, 1 if sweep.step is None else sweep.step


def _text(o: Override) -> str:
    return (o.input_line or "").split("=", 1)[-1]
