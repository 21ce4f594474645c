"""seedhp's own command holds full collections off while it starts, then freezes what start-up
made; anywhere else it leaves the garbage collector alone."""

from __future__ import annotations

import gc
import subprocess
import sys
import weakref
from collections.abc import Iterator
from pathlib import Path

import pytest

from seedhp import heap
from tests.conftest import cli_env


class Node:
    def __init__(self) -> None:
        self.me = self  # a reference cycle: only a collection frees it


@pytest.fixture(autouse=True)
def restored(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    thresholds = gc.get_threshold()
    monkeypatch.setattr(heap, "_thresholds", None)
    monkeypatch.setattr(heap, "_started", False)
    yield
    gc.unfreeze()
    gc.set_threshold(*thresholds)


def test_start_up_holds_full_collections_then_frees_its_garbage_and_freezes_the_rest() -> None:
    own = gc.get_threshold()
    heap.hold()
    if sys.version_info < (3, 14):  # the incremental collector of 3.14 has no third threshold
        assert gc.get_threshold() == (own[0], own[1], heap.HELD_OLDEST)
    assert gc.isenabled()  # the young generations are still collected
    kept, dropped = Node(), Node()
    gone = weakref.ref(dropped)
    del dropped
    frozen = gc.get_freeze_count()
    heap.started()
    assert gone() is None  # garbage at the freeze is collected, not frozen
    assert gc.get_freeze_count() > frozen and gc.get_threshold() == own
    assert gc.is_tracked(kept) and not any(o is kept for o in gc.get_objects())  # frozen
    later = Node()
    heap.started()  # a later configuration's probe: nothing more is frozen
    # (the count itself may fall: a frozen object whose last reference goes is freed)
    assert any(o is later for o in gc.get_objects())


def test_outside_seedhps_command_the_collector_is_left_alone() -> None:
    own = gc.get_threshold()
    fresh = Node()
    heap.started()
    assert gc.get_threshold() == own and any(o is fresh for o in gc.get_objects())


PROBE = """
import atexit, gc, runpy, sys
defaults = gc.get_threshold()
atexit.register(lambda: print("frozen", gc.get_freeze_count(), gc.get_threshold() == defaults))
sys.argv = ["seedhp", *sys.argv[1:]]
runpy.run_module("seedhp", run_name="__main__", alter_sys=True)
"""


def test_python_m_seedhp_freezes_its_start_up_and_ends_with_pythons_thresholds(
    tmp_path: Path,
) -> None:
    done = subprocess.run(
        [sys.executable, "-c", PROBE, "model=mlp", "model.hidden=[8]", "train.epochs=1"],
        cwd=tmp_path,
        env=cli_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    frozen, restored = done.stdout.split("frozen ")[-1].split()
    assert int(frozen) > 10_000 and restored == "True"
