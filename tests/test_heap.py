"""seedhp's own command holds full collections off while it starts, then freezes what start-up
made; anywhere else it leaves the garbage collector alone."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest

from seedhp import heap


class Node:
    def __init__(self) -> None:
        self.me = self  # a reference cycle: only a collection frees it


@pytest.fixture(autouse=True)
def restored(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    thresholds = gc.get_threshold()
    monkeypatch.setattr(heap, "_thresholds", None)
    monkeypatch.setattr(heap, "_probed", False)
    yield
    gc.unfreeze()
    gc.set_threshold(*thresholds)


def test_start_up_holds_full_collections_then_frees_its_garbage_and_freezes_the_rest() -> None:
    own = gc.get_threshold()
    heap.hold()
    assert gc.get_threshold() == (own[0], own[1], heap.HELD_OLDEST)
    assert gc.isenabled()  # the young generations are still collected
    kept, dropped = Node(), Node()
    gone = weakref.ref(dropped)
    del dropped
    frozen = gc.get_freeze_count()
    heap.after_probe()
    assert gone() is None  # garbage at the freeze is collected, not frozen
    assert gc.get_freeze_count() > frozen and gc.get_threshold() == own
    assert gc.is_tracked(kept) and not any(o is kept for o in gc.get_objects())  # frozen
    count = gc.get_freeze_count()
    heap.after_probe()  # a later configuration's probe: nothing more
    assert gc.get_freeze_count() == count


def test_outside_seedhps_command_the_collector_is_left_alone() -> None:
    own = gc.get_threshold()
    frozen = gc.get_freeze_count()
    heap.after_probe()
    assert gc.get_threshold() == own and gc.get_freeze_count() == frozen
