"""`python -m seedhp.report [--run ID | --study NAME | --all] ...`: same as `seedhp report`."""

from __future__ import annotations

import sys

from seedhp.report.console import main

if __name__ == "__main__":
    raise SystemExit(main(["report", *sys.argv[1:]]))
