"""Which process owns a run or a trial, and whether that process is still alive.

An owner is `host:pid:start`, where `start` is the process's start time in clock ticks since
boot (Linux, /proc/<pid>/stat), so a pid the kernel has handed to a new process is not mistaken
for the old one. Where /proc is missing, `start` is empty and the pid alone is checked.
"""

from __future__ import annotations

import os
import socket
from functools import lru_cache


def _start_ticks(pid: int) -> str:
    """Field 22 of /proc/<pid>/stat: when the process started, in clock ticks since boot."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            stat = f.read()
    except OSError:
        return ""
    # the command name (field 2) may hold spaces and parentheses: split after its last ')'
    return stat.rsplit(")", 1)[-1].split()[19]


@lru_cache(maxsize=1)
def _this(pid: int) -> str:
    return f"{socket.gethostname()}:{pid}:{_start_ticks(pid)}"


def this_process() -> str:
    """This process, as an owner string (computed once per process; a fork gets its own)."""
    return _this(os.getpid())


def gone(owner: str) -> bool | None:
    """True when `owner` ran on this host and its process no longer exists; False when it is
    alive; None when it ran on another host (or is not an owner string), which only a
    heartbeat can tell."""
    host, _, rest = owner.partition(":")
    pid_text, _, start = rest.partition(":")
    if host != socket.gethostname() or not pid_text.isdigit():
        return None
    pid = int(pid_text)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # alive, someone else's
        pass
    return bool(start) and _start_ticks(pid) not in ("", start)
