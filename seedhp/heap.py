"""Python's garbage collector in seedhp's own command: no full collections while it starts.

Starting a sweep imports torch, Hydra, MLflow and, with PyTorch's first optimizer step in the
engine probe, torch._dynamo: hundreds of thousands of objects that live until the process ends.
Each full collection walks them all, and their growth is what triggers one: 8 full collections
during the start of a 1,000-seed sweep and 2 during its packs took 1.6 s (timed with
gc.callbacks on this project's 2-core machine).

`python -m seedhp` makes full collections rare from its start (`hold`: the oldest generation
is collected after 1,000 collections of the middle one instead of 10; the young generations are
collected as usual, so garbage is still freed). When start-up is over, `started` collects
everything once, freezes what is left (gc.freeze: later collections never walk it) and puts
Python's thresholds back. Start-up is over after the first engine probe, whose imports come
last, or, in a process that trains nothing itself (its launcher's workers do), once its first
jobs have been launched. Nothing that is garbage when frozen is kept: the freeze follows a full
collection. In a process `python -m seedhp` did not start (seedhp used as a library, another
Hydra app, a launcher's worker started afresh) these calls do nothing.
"""

from __future__ import annotations

import gc

HELD_OLDEST = 1000  # collections of the middle generation before a full one, while starting

_thresholds: tuple[int, int, int] | None = None  # Python's own, while held
_started = False


def hold() -> None:
    """Start-up begins: full collections only rarely until it is over."""
    global _thresholds
    _thresholds = gc.get_threshold()
    # Python's incremental collector (3.14) ignores the third value: the freeze still helps
    gc.set_threshold(_thresholds[0], _thresholds[1], HELD_OLDEST)


def started() -> None:
    """Start-up is over (the first engine probe is done, or the first jobs are launched):
    collect, freeze, thresholds back; once per process."""
    global _started
    if _thresholds is None or _started:
        return
    _started = True
    gc.collect()
    gc.freeze()
    gc.set_threshold(*_thresholds)
