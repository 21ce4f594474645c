"""The sources sweep's cost per seed-run against a plain seed sweep of the same size, through
the real CLI, in one run: `python -m seedhp experiment=sources` (arms x n seed-runs) and
`python -m seedhp -m seed=range(1, 1 + arms x n)` of the same configuration, each in a fresh
directory, alternated `--repeats` times; medians and their ratio.

    python benchmarks/sources_cost.py [--n 10] [--repeats 3] [--sources init,data,...]
        [--out results/x.json] [-- overrides]

The arms that vary `split` (and `all`) give each seed its own validation split; their seeds
still train as one pack (seed k on its own split's rows of one pool). The per-arm training time
shows where the time goes.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from mlflow.tracking import MlflowClient


def timed(command: list[str]) -> tuple[float, dict[str, float]]:
    """Wall seconds of `command` in a fresh directory, and training seconds per source arm."""
    with tempfile.TemporaryDirectory() as tmp:
        tic = time.perf_counter()
        done = subprocess.run(
            command,
            cwd=tmp,
            capture_output=True,
            text=True,
            env={**os.environ, "PYTHONPATH": str(Path.cwd())},
        )
        wall = time.perf_counter() - tic
        if done.returncode != 0:
            sys.exit(done.stderr[-3000:])
        client = MlflowClient(f"sqlite:///{tmp}/outputs/mlflow.db")
        exp = client.get_experiment_by_name("seedhp")
        runs = client.search_runs(
            [exp.experiment_id], "tags.seedhp.status = 'finished'", max_results=10000
        )
    per_arm: dict[str, float] = {}
    for r in runs:
        arm = r.data.tags.get("seedhp.source", "plain")
        per_arm[arm] = per_arm.get(arm, 0.0) + r.data.metrics["train_seconds"]
    return wall, per_arm


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--n", type=int, default=10, help="seeds per arm")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", default="benchmarks/results/sources_cost_digits_mlp.json")
    parser.add_argument(
        "--sources", default="init,data,augment,dropout,split", help="the streams varied"
    )
    parser.add_argument("overrides", nargs="*", help="extra Hydra overrides (after --)")
    args = parser.parse_args()

    given = {o.split("=", 1)[0] for o in args.overrides}
    arms = len(args.sources.split(",")) + 1  # each stream alone, and all
    sources = [
        sys.executable,
        "-m",
        "seedhp",
        "experiment=sources",
        f"hydra.sweeper.n={args.n}",
        f"hydra.sweeper.sources=[{args.sources}]",
    ]
    plain = [
        sys.executable,
        "-m",
        "seedhp",
        "-m",
        f"seed=range(1,{1 + arms * args.n})",
        # the preset's configuration (conf/experiment/sources.yaml) unless the overrides say
        *(o for o in ("model=mlp", "train.epochs=5") if o.split("=")[0] not in given),
    ]
    walls: dict[str, list[float]] = {"sources": [], "plain": []}
    train: dict[str, dict[str, float]] = {}
    for _ in range(args.repeats):  # alternated, so a slow moment of the machine hits both
        for name, command in (("sources", sources), ("plain", plain)):
            wall, per_arm = timed([*command, *args.overrides])
            walls[name].append(wall)
            train[name] = per_arm
    median = {k: statistics.median(v) for k, v in walls.items()}
    result = {
        "benchmark": "sources_cost",
        "command": "python " + " ".join(sys.argv),
        "seed_runs_each": arms * args.n,
        "wall_seconds": walls,
        "median_wall_seconds": median,
        "seconds_per_seed_run": {k: v / (arms * args.n) for k, v in median.items()},
        "ratio_sources_to_plain": median["sources"] / median["plain"],
        "train_seconds_per_arm_last_repeat": train,
        "cpu": platform.processor() or platform.machine(),
        "cores": os.cpu_count(),
        "python": platform.python_version(),
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
