"""What seedhp.optimize adds per trial to a plain Optuna study.optimize, on a trivial objective
(one float parameter, no work), everything in SQLite: the plain study on an Optuna SQLite
storage; seedhp.optimize(strategy="tuned") on an Optuna SQLite storage and an MLflow SQLite
store (one seed-run per trial, nested under the study's parent run).

    .venv/bin/python benchmarks/optimize_overhead.py [--trials 50] [--repeats 5]
        [--out benchmarks/results/optimize_overhead.json]

Each repeat runs both, one after the other, on fresh databases, after one untimed warm-up of
each (imports, the first MLflow store). Per trial: the steady state, from the trials' own
completion times ((last - first) / (n - 1): ask, objective, records and tell of one trial), and
the whole call divided by n (start-up and the study's end included); medians over repeats.
Also counted: SQL transactions per trial, per database, which do not depend on how busy the
machine is. The target (issue 28): at most 30 ms per trial added.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
TARGET_MS = 30.0


def objective(trial: Any, seed: int) -> float:
    return float(trial.suggest_float("x", 0.0, 1.0))


def plain_objective(trial: Any) -> float:
    return float(trial.suggest_float("x", 0.0, 1.0))


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--trials", type=int, default=50)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--out", default="benchmarks/results/optimize_overhead.json")
    args = parser.parse_args()

    import optuna
    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    import seedhp

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    commits: collections.Counter[str] = collections.Counter()

    @event.listens_for(Engine, "commit")
    def _count(conn: Any) -> None:  # every transaction's commit, reads' too, by database
        commits[Path(str(conn.engine.url.database)).stem] += 1

    def plain(tmp: Path, name: str, n: int) -> optuna.Study:
        study = optuna.create_study(
            storage=f"sqlite:///{tmp}/{name}.db", study_name=name, direction="maximize"
        )
        study.optimize(plain_objective, n_trials=n)
        return study

    def mine(seeds: int) -> Any:
        def run(tmp: Path, name: str, n: int) -> optuna.Study:
            return seedhp.optimize(
                objective,
                n_trials=n,
                strategy="tuned",
                seeds=range(seeds),
                storage=f"sqlite:///{tmp}/{name}.db",
                study_name=name,
                tracking_uri=f"sqlite:///{tmp}/{name}-mlflow.db",
            )

        return run

    # seedhp: the default pool (1000 seeds); seedhp_10_seeds: what a 1000-way categorical
    # parameter costs Optuna itself (the Hydra sweeper's tuned studies pay it too)
    runners = {"plain": plain, "seedhp": mine(1000), "seedhp_10_seeds": mine(10)}
    runs: dict[str, list[dict[str, float]]] = {k: [] for k in runners}
    with tempfile.TemporaryDirectory() as tmp_dir:
        tmp = Path(tmp_dir)
        os.chdir(tmp)  # the default MLflow store and report paths stay in the temporary dir
        for kind, run in runners.items():
            run(tmp, f"warm-{kind}", 3)
        for i in range(args.repeats):
            for kind, run in runners.items():
                name = f"{kind}-{i}"
                commits.clear()
                tic, cpu = time.perf_counter(), time.process_time()
                study = run(tmp, name, args.trials)
                wall, cpu = time.perf_counter() - tic, time.process_time() - cpu
                runs[kind].append(_measure(study, wall, cpu, args.trials, commits, name))
    per = {k: _medians(v) for k, v in runs.items()}

    def added(kind: str, key: str) -> float:
        return round(per[kind][key] - per["plain"][key], 2)

    result = {
        "benchmark": "optimize_overhead",
        "command": "python benchmarks/optimize_overhead.py "
        f"--trials {args.trials} --repeats {args.repeats}",
        "trials": args.trials,
        "repeats": args.repeats,
        "plain": {"what": "optuna.Study.optimize, Optuna SQLite storage", **per["plain"]},
        "seedhp": {
            "what": "seedhp.optimize(strategy='tuned', seeds=range(1000)), Optuna SQLite "
            "storage, MLflow SQLite store",
            **per["seedhp"],
        },
        "seedhp_10_seeds": {"what": "the same, seeds=range(10)", **per["seedhp_10_seeds"]},
        "added_ms_per_trial": added("seedhp", "steady_ms_per_trial"),
        "added_ms_per_trial_whole_call": added("seedhp", "wall_ms_per_trial"),
        "added_cpu_ms_per_trial": added("seedhp", "cpu_ms_per_trial"),
        "added_ms_per_trial_10_seeds": added("seedhp_10_seeds", "steady_ms_per_trial"),
        "added_cpu_ms_per_trial_10_seeds": added("seedhp_10_seeds", "cpu_ms_per_trial"),
        "target_ms_per_trial": TARGET_MS,
        "runs": runs,
        "machine": {
            "cpus": os.cpu_count(),
            "load_average_1min": round(os.getloadavg()[0], 2),
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
        "versions": _versions(),
    }
    out = Path(args.out) if Path(args.out).is_absolute() else ROOT / args.out
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({k: v for k, v in result.items() if k != "runs"}, indent=2))


def _measure(
    study: Any, wall: float, cpu: float, n: int, commits: collections.Counter[str], name: str
) -> dict[str, float]:
    done = sorted(t.datetime_complete for t in study.trials if t.datetime_complete)
    steady = (done[-1] - done[0]).total_seconds() / (len(done) - 1) if len(done) > 1 else wall
    return {
        "steady_ms_per_trial": round(1000 * steady, 2),
        "wall_ms_per_trial": round(1000 * wall / n, 2),
        "cpu_ms_per_trial": round(1000 * cpu / n, 2),  # this process's, every thread's
        "optuna_transactions_per_trial": round(commits[name] / n, 2),
        "mlflow_transactions_per_trial": round(commits[f"{name}-mlflow"] / n, 2),
    }


def _medians(runs: list[dict[str, float]]) -> dict[str, float]:
    return {k: round(statistics.median(r[k] for r in runs), 2) for k in runs[0]}


def _versions() -> dict[str, str]:
    from importlib.metadata import version

    return {p: version(p) for p in ("seedhp", "optuna", "mlflow", "sqlalchemy")} | {
        "sqlite": __import__("sqlite3").sqlite_version
    }


if __name__ == "__main__":
    sys.exit(main())
