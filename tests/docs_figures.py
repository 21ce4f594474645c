"""The report's figures in docs/img/, drawn by seedhp's own code on the bundled digits:
`python -m tests.docs_figures docs/img` (`make figures`) runs the sweep that docs/report.md
shows, in a temporary directory, and copies its report's figures under stable names.
tests/test_docs.py runs it into a temporary directory (slow)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# the command docs/report.md shows (its figures are this command's)
SWEEP = [
    "-m",
    "seed=range(0,20)",
    "model=mlp",
    "train.epochs=5",
    "optimizer.lr=0.05,0.2",
    "report.fresh_seeds=10",
    "tracking.save_predictions=true",
]
NAMES = (  # report file -> docs name; {best}: the best configuration's config_id
    ("histogram_{best}.png", "report-histogram.png"),
    ("convergence_{best}.png", "report-convergence.png"),
    ("expected_max.png", "report-expected-max.png"),
    ("selection_contrast.png", "report-selection-contrast.png"),
    ("ensemble_{best}.png", "report-ensemble.png"),
)


def draw(out: Path) -> list[Path]:
    """Run the sweep in a fresh directory and copy its figures into `out`."""
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        done = subprocess.run(
            [sys.executable, "-m", "seedhp", *SWEEP], cwd=tmp, env=env, capture_output=True
        )
        if done.returncode != 0:
            raise SystemExit(done.stderr.decode()[-2000:])
        [report] = Path(tmp).glob("outputs/multirun/*/report")
        best = json.loads((report / "report.json").read_text())["configurations"][0]["config_id"]
        written = []
        for name, target in NAMES:
            shutil.copyfile(report / name.format(best=best), out / target)
            written.append(out / target)
        return written


if __name__ == "__main__":
    for path in draw(Path(sys.argv[1] if len(sys.argv) > 1 else "docs/img")):
        print(path)
