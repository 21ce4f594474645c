"""Python's garbage collector in seedhp's own command: no full collections while it starts.

Starting a sweep imports torch, Hydra, MLflow and, with PyTorch's first optimizer step in the
engine probe, torch._dynamo: hundreds of thousands of objects that live until the process ends.
Each full collection walks them all, and their growth is what triggers one: 8 full collections
during the start of a 1,000-seed sweep and 2 during its packs took 1.6 s (timed with
gc.callbacks on this project's 2-core machine).

`python -m seedhp` makes full collections rare from its start (`hold`: the oldest generation
is collected after 1,000 collections of the middle one instead of 10; the young generations are
collected as usual, so garbage is still freed). After the first engine probe, when start-up's
imports are done, `after_probe` collects everything once, freezes what is left (gc.freeze:
later collections never walk it) and puts Python's thresholds back. Nothing that is garbage when
frozen is kept: the freeze follows a full collection. A process that never probes (one that
only waits for a launcher's workers) keeps the rarer full collections. In any other process
(seedhp used as a library, another Hydra app, a launcher's worker) these calls do nothing.
"""

from __future__ import annotations

import gc

HELD_OLDEST = 1000  # collections of the middle generation before a full one, while starting

_thresholds: tuple[int, int, int] | None = None  # Python's own, while held
_probed = False


def hold() -> None:
    """Start-up begins: full collections only rarely until the first probe is done."""
    global _thresholds
    _thresholds = gc.get_threshold()
    gc.set_threshold(_thresholds[0], _thresholds[1], HELD_OLDEST)


def after_probe() -> None:
    """The first engine probe of the process is done: collect, freeze, thresholds back."""
    global _probed
    if _thresholds is None or _probed:
        return
    _probed = True
    gc.collect()
    gc.freeze()
    gc.set_threshold(*_thresholds)
