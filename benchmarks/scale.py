"""Orchestration at scale: the digits MLP seed sweep of issue 16 at 100, 1,000 and 10,000 seeds
through the real CLI, then `seedhp report` over its runs.

    python benchmarks/scale.py [--seeds 100 1000 10000] [--repeat 3] [--repeat-up-to 1000]
                               [--out benchmarks/results/scale_cpu.json]

Sizes up to --repeat-up-to seeds are measured --repeat times in a row (the shared machine's
noise moves training time by a quarter from run to run) and reported by their median run (by
the ratio of everything else to training); larger sizes once. For each run: the sweep's wall
time (process start to exit, its report included), the summed `train_seconds` of its
seed-runs (the time inside training), everything else (`other`), and the time of
`seedhp report --run <its parent>` in a fresh process. Then the slope of `other` per
additional seed-run between consecutive sizes. Targets (issue 16): other <= train at 1,000
seeds; slope <= 10 ms per seed-run; 10,000 seeds within 10 minutes; the report within 60 s.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from itertools import pairwise
from pathlib import Path

from mlflow.tracking import MlflowClient

ROOT = Path(__file__).resolve().parents[1]
SWEEP = ["model=mlp", "train.epochs=5"]


def measure(n: int, sweep: list[str]) -> dict[str, float | int]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    with tempfile.TemporaryDirectory() as tmp:
        tic = time.perf_counter()
        done = subprocess.run(
            [sys.executable, "-m", "seedhp", "-m", f"seed=range(0,{n})", *sweep],
            cwd=tmp,
            capture_output=True,
            text=True,
            env=env,
        )
        wall = time.perf_counter() - tic
        if done.returncode != 0:
            sys.exit(done.stderr[-3000:])
        client = MlflowClient(f"sqlite:///{tmp}/outputs/mlflow.db")
        exp = client.get_experiment_by_name("seedhp")
        assert exp is not None
        runs, token = [], None
        while True:
            page = client.search_runs(
                [exp.experiment_id],
                "tags.`seedhp.status` = 'finished'",
                max_results=1000,
                page_token=token,
            )
            runs += page
            token = page.token
            if not token:
                break
        parent = next(iter(runs)).data.tags["mlflow.parentRunId"]
        tic = time.perf_counter()
        report = subprocess.run(
            [str(Path(sys.executable).parent / "seedhp"), "report", "--run", parent],
            cwd=tmp,
            capture_output=True,
            text=True,
            env=env,
        )
        report_wall = time.perf_counter() - tic
        if report.returncode != 0:
            sys.exit(report.stderr[-3000:])
    train = sum(r.data.metrics["train_seconds"] for r in runs)
    return {
        "seeds": n,
        "finished": len(runs),
        "wall_seconds": round(wall, 2),
        "train_seconds": round(train, 2),
        "other_seconds": round(wall - train, 2),
        "other_over_train": round((wall - train) / train, 3),
        "other_ms_per_seed": round(1000 * (wall - train) / n, 1),
        "report_seconds": round(report_wall, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[100, 1000, 10000])
    parser.add_argument("--repeat", type=int, default=3, help="runs per size (median kept)")
    parser.add_argument("--repeat-up-to", type=int, default=1000, help="largest size repeated")
    parser.add_argument("--out", default="benchmarks/results/scale_cpu.json")
    parser.add_argument("--sweep", nargs="*", default=SWEEP, help="the sweep's overrides")
    args = parser.parse_args()
    sizes = []
    for n in args.seeds:
        runs = []
        for _ in range(args.repeat if n <= args.repeat_up_to else 1):
            runs.append(measure(n, args.sweep))
            print(json.dumps(runs[-1]), flush=True)
        by_ratio = sorted(runs, key=lambda r: r["other_over_train"])
        sizes.append({**by_ratio[(len(runs) - 1) // 2], "runs": runs})
    slopes = [
        {
            "from": a["seeds"],
            "to": b["seeds"],
            "other_ms_per_additional_seed": round(
                1000 * (b["other_seconds"] - a["other_seconds"]) / (b["seeds"] - a["seeds"]), 2
            ),
        }
        for a, b in pairwise(sizes)
    ]
    result = {
        "benchmark": "scale",
        "command": "python -m seedhp -m seed='range(0,N)' " + " ".join(args.sweep),
        "sizes": sizes,
        "slopes": slopes,
        "targets": {
            "other_over_train_at_1000": 1.0,
            "slope_ms": 10,
            "wall_seconds_at_10000": 600,
            "report_seconds": 60,
        },
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
    }
    Path(args.out).write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(slopes))


if __name__ == "__main__":
    main()
