"""A 100-seed digits sweep through the real CLI: wall time per seed-run, split into training
(the time inside seedhp.train.train, from MLflow's `train_seconds`) and everything else
(process start-up and imports, Hydra composition and job directories, MLflow, data loading).

    python benchmarks/sweep_overhead.py [--seeds 100] [--out results/x.json] [-- overrides...]

Target (issue 2): everything else <= 10 % of the wall time.
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
from pathlib import Path

from mlflow.tracking import MlflowClient


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=100)
    parser.add_argument("--out", default="benchmarks/results/sweep_overhead_cnn_packed.json")
    parser.add_argument("overrides", nargs="*", help="extra Hydra overrides (after --)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        command = [
            sys.executable,
            "-m",
            "seedhp",
            "-m",
            f"seed=range(0,{args.seeds})",
            *args.overrides,
        ]
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
            sys.exit(done.stderr)
        client = MlflowClient(f"sqlite:///{tmp}/outputs/mlflow.db")
        exp = client.get_experiment_by_name("seedhp")
        runs = client.search_runs(
            [exp.experiment_id], "tags.seedhp.status = 'finished'", max_results=10000
        )
    train = sum(r.data.metrics["train_seconds"] for r in runs)
    n = len(runs)
    result = {
        "benchmark": "sweep_overhead",
        "command": f"python -m seedhp -m seed='range(0,{args.seeds})' {' '.join(args.overrides)}",
        "seed_runs": n,
        "wall_seconds": round(wall, 3),
        "train_seconds": round(train, 3),
        "other_seconds": round(wall - train, 3),
        "per_seed_run_wall_ms": round(1000 * wall / n, 1),
        "per_seed_run_train_ms": round(1000 * train / n, 1),
        "per_seed_run_other_ms": round(1000 * (wall - train) / n, 1),
        "other_fraction": round((wall - train) / wall, 4),
        "target_other_fraction": 0.10,
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
    }
    import torch

    result["machine"]["torch"] = torch.__version__
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
