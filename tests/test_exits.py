from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = """
import atexit, logging, sys
from seedhp.exits import run_then_exit
logging.basicConfig(filename=sys.argv[2], level=logging.INFO)
atexit.register(lambda: open(sys.argv[3], "w").write("clean-up ran"))
def command():
    print("buffered, no newline", end="")
    logging.getLogger("x").info("logged")
    {body}
run_then_exit(command)
"""


@pytest.mark.parametrize(
    ("body", "status", "stderr"),
    [
        ("return 3", 3, ""),
        ("return None", 0, ""),
        ("raise SystemExit(2)", 2, ""),
        ("raise SystemExit('seedhp: error: x=1: bad')", 1, "seedhp: error: x=1: bad"),
        ("raise RuntimeError('boom')", 1, "RuntimeError: boom"),
    ],
)
def test_a_command_ends_with_its_status_its_output_and_its_clean_ups(
    body: str, status: int, stderr: str, tmp_path: Path
) -> None:
    script = tmp_path / "cmd.py"
    script.write_text(SCRIPT.replace("{body}", body))
    log, marker = tmp_path / "log.txt", tmp_path / "marker.txt"
    done = subprocess.run(
        [sys.executable, str(script), "x", str(log), str(marker)],
        capture_output=True,
        text=True,
        cwd=Path(__file__).resolve().parents[1],
    )
    assert done.returncode == status
    assert done.stdout == "buffered, no newline"
    assert stderr in done.stderr
    assert "INFO:x:logged" in log.read_text()
    assert marker.read_text() == "clean-up ran"


def test_under_a_profiler_a_command_exits_the_usual_way(tmp_path: Path) -> None:
    """cProfile writes its numbers after the program returns: they are written."""
    script = tmp_path / "cmd.py"
    script.write_text(SCRIPT.replace("{body}", "return 0"))
    out = tmp_path / "prof.out"
    done = subprocess.run(
        [sys.executable, "-m", "cProfile", "-o", str(out), str(script), "x", "log", "marker"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert done.returncode == 0 and out.stat().st_size > 0


def test_a_command_ends_after_its_threads_pools_and_files_as_python_would(tmp_path: Path) -> None:
    """What a user's code may leave behind is finished as at a normal exit: a non-daemon
    thread is waited for, a process pool shut down (no hang), a file never closed flushed, one
    frozen out of the garbage collector's view included."""
    script = tmp_path / "cmd.py"
    script.write_text(
        """
import gc, sys, threading, time
from concurrent.futures import ProcessPoolExecutor
from seedhp.exits import run_then_exit
out = sys.argv[1]
kept = [open(out + "/early.txt", "w")]  # opened at start-up, before seedhp.heap freezes it
kept[0].write("early")
gc.collect()
gc.freeze()
def command():
    pool = ProcessPoolExecutor(1)
    pool.submit(sum, [1, 2]).result()
    kept.append(pool)  # never shut down
    f = open(out + "/unclosed.txt", "w")
    f.write("kept")  # never closed
    kept.append(f)
    def late():
        time.sleep(0.3)
        open(out + "/thread.txt", "w").write("done")
    threading.Thread(target=late).start()
    return 0
run_then_exit(command)
"""
    )
    done = subprocess.run(
        [sys.executable, str(script), str(tmp_path)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "unclosed.txt").read_text() == "kept"
    assert (tmp_path / "early.txt").read_text() == "early"
    assert (tmp_path / "thread.txt").read_text() == "done"
