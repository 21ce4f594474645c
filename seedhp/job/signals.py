"""Steps that must not be cut in two by Ctrl-C or SIGTERM.

Optuna's `study.ask` creates a RUNNING trial in the storage and then samples its parameters
(tens of milliseconds for TPE); an interrupt between the two leaves a trial no code of this
process can see, RUNNING until its heartbeat expires. `held_interrupts` holds SIGINT and
SIGTERM for the length of such a step and raises the KeyboardInterrupt after it, where the
caller can fail the trial it now knows about.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from types import FrameType

HELD = (signal.SIGINT, signal.SIGTERM)


@contextlib.contextmanager
def held_interrupts() -> Iterator[None]:
    """Run the block whole: an interrupt during it is raised when it ends. Outside the main
    thread, where Python cannot set handlers, the block runs as usual."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught: list[int] = []

    def hold(signum: int, frame: FrameType | None) -> None:
        caught.append(signum)

    handlers = {s: signal.signal(s, hold) for s in HELD}
    try:
        yield
    finally:
        for s, handler in handlers.items():
            signal.signal(s, signal.SIG_DFL if handler is None else handler)  # None: set in C
    if caught:
        signal.raise_signal(caught[0])  # now, to the handler the process had
