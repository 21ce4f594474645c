"""How seedhp's commands end: at once, once their work and clean-ups are done."""

from __future__ import annotations

import atexit
import os
import sys
from collections.abc import Callable
from typing import NoReturn


def run_then_exit(command: Callable[[], object]) -> NoReturn:
    """Run a command-line entry point, then end the process: the atexit handlers run (logging
    flushed and closed, MLflow's and tempfile's clean-ups), stdout and stderr are flushed, and
    the interpreter's own teardown is skipped: tearing down torch, MLflow, SQLAlchemy and
    matplotlib took 1.8 s at the end of every sweep (benchmarks/scale.py's process, measured
    with and without). The exit status is the command's: its return value or SystemExit code;
    any other exception propagates as usual (a traceback, a normal exit). Under a profiler or
    a tracer (cProfile, a debugger), which write their results after the program returns, it
    exits the usual way."""
    try:
        result = command()
        code = result if isinstance(result, int) else 0
    except SystemExit as done:
        code = _status(done.code)
    run_exit_functions = getattr(atexit, "_run_exitfuncs", None)
    watched = sys.getprofile() is not None or sys.gettrace() is not None
    if run_exit_functions is None or watched:  # not CPython, or profiled: the usual way
        raise SystemExit(code)
    run_exit_functions()
    sys.stdout.flush()
    sys.stderr.flush()
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
