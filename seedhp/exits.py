"""How seedhp's commands end: at once, once their work and clean-ups are done."""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import gc
import io
import os
import sys
import threading
from collections.abc import Callable
from typing import NoReturn


def run_then_exit(command: Callable[[], object]) -> NoReturn:
    """Run a command-line entry point, then end the process doing what the interpreter's own
    exit does first, in its order: wait for non-daemon threads and run threading's exit hooks
    (concurrent.futures pools), run the atexit handlers (logging flushed and closed, MLflow's,
    multiprocessing's and tempfile's clean-ups); then flush every Python file still open and
    C's stdio; then `os._exit` with the command's status. What is skipped is the teardown of
    every module and object: 1.8 s for torch, MLflow, SQLAlchemy and matplotlib at the end of
    every sweep (benchmarks/scale.py's process, measured with and without).

    The status is the command's: its return value or SystemExit code; any other exception
    propagates as usual (a traceback, a normal exit). Under a profiler or a tracer (cProfile,
    coverage, a debugger), which write their results after the program returns, and outside
    CPython, it exits the usual way."""
    try:
        result = command()
        code = result if isinstance(result, int) else 0
    except SystemExit as done:
        code = _status(done.code)
    shutdown = getattr(threading, "_shutdown", None)
    run_exit_functions = getattr(atexit, "_run_exitfuncs", None)
    watched = sys.getprofile() is not None or sys.gettrace() is not None
    if shutdown is None or run_exit_functions is None or watched:
        raise SystemExit(code)
    shutdown()
    run_exit_functions()
    _flush_everything()
    os._exit(code)


def _status(code: object) -> int:
    """What Python's own exit makes of a SystemExit code: None 0, an int itself, anything else
    printed on stderr and 1."""
    if code is None:
        return 0
    if isinstance(code, int):
        return code
    print(code, file=sys.stderr)
    return 1


def _flush_everything() -> None:
    """Flush what finalisation would: Python file objects still open (a user's callback that
    never closed its file), stdout and stderr, and C's stdio buffers. A closed pipe (`| head`)
    is not an error here, as it is not at a normal exit."""
    gc.unfreeze()  # seedhp.heap froze start-up's objects, and get_objects leaves frozen ones out
    objects = gc.get_objects()
    kinds = {t for t in {type(o) for o in objects} if issubclass(t, io.IOBase)}  # no __class__
    files = [o for o in objects if type(o) in kinds]  # each type asked once: 0.07 s, not 0.16
    del objects
    for f in [*files, sys.stdout, sys.stderr]:
        with contextlib.suppress(Exception):  # a broken pipe, a detached buffer: nothing to save
            if not f.closed and f.writable():
                f.flush()
    with contextlib.suppress(Exception):  # no C library to ask (not POSIX)
        ctypes.CDLL(None).fflush(None)
