"""`python -m seedhp.report [--run ID | --study NAME | --all] ...`: same as `seedhp report`."""

from __future__ import annotations

import sys

from seedhp.exits import run_then_exit
from seedhp.report.console import main

if __name__ == "__main__":
    run_then_exit(lambda: main(["report", *sys.argv[1:]]))
