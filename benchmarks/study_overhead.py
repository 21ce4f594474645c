"""Per-trial overhead of seedhp's Optuna sweeper on trivial trials (a seed-run that trains one
step of a 2-unit MLP on 64 synthetic examples), by step: ask (and the stale-trial check), tell
and the trial's user attributes, the reuse index, composing the job config, Hydra's run_job,
MLflow (the seed-run's records and the search for them), and the training itself.

    python benchmarks/study_overhead.py [--trials 200] [--sampler random] [--out results/x.json]
        [-- hydra.sweeper.storage=postgresql://... tracking.uri=http://...]

Runs the sweep in this process (as `python -m seedhp -m hydra/sweeper=optuna ...` would) so
each step can be timed; process start-up is reported apart.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import functools
import json
import os
import platform
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from seedhp.job.urls import redact

TIMED = {  # module: functions whose wall time is summed (the bindings the callers use)
    "seedhp.sweep.study": ["_next_trial", "_tell", "finished_seed_runs", "_launch_seeds"],
    "seedhp.sweep.packing": ["_train_pack", "train_pack"],  # hydra/launcher=packed
    "seedhp.sweep.launch": ["run_job"],  # hydra/launcher=seedhp: Hydra's run_job per seed
    "seedhp.job.run": ["check", "train", "train_pack"],  # train_pack: as run() calls it
}
_ACTIVE: list[str] = []  # the timed functions running, innermost last
TIMED_METHODS = {  # (module, class): methods whose wall time is summed
    ("seedhp.sweep.launch", "Composer"): ["compose"],
    ("seedhp.job.tracking", "Tracker"): ["start_many", "finish_many", "log_text"],
}


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--trials", type=int, default=200)
    parser.add_argument("--sampler", default="random")
    parser.add_argument("--out", default="benchmarks/results/study_overhead_random.json")
    parser.add_argument("overrides", nargs="*", help="extra Hydra overrides (after --)")
    args = parser.parse_args()

    tic = time.perf_counter()
    import seedhp.__main__ as entry  # imports torch, hydra, seedhp

    startup = time.perf_counter() - tic
    totals: collections.Counter[str] = collections.Counter()
    calls: collections.Counter[str] = collections.Counter()
    for module_name, names in TIMED.items():
        module = (
            sys.modules[module_name]
            if module_name in sys.modules
            else __import__(module_name, fromlist=["_"])
        )
        for name in names:
            setattr(module, name, _timed(getattr(module, name), name, totals, calls))
    for (module_name, class_name), names in TIMED_METHODS.items():
        cls = getattr(__import__(module_name, fromlist=["_"]), class_name)
        for name in names:
            setattr(cls, name, _timed(getattr(cls, name), name, totals, calls))

    with tempfile.TemporaryDirectory() as tmp:
        os.chdir(tmp)
        sys.argv = [
            entry.__file__,
            "-m",
            "hydra/sweeper=optuna",
            f"hydra/sweeper/sampler={args.sampler}",
            "hydra.sweeper.sampler.seed=0",
            f"hydra.sweeper.n_trials={args.trials}",
            "seed=range(0,1000)",
            "optimizer.lr=tag(log, interval(0.01, 0.3))",
            "data=synthetic",
            "data.source.shape=[4]",
            "data.source.n_train=64",
            "data.source.n_test=16",
            "data.val_size=6",
            "model=mlp",
            "model.hidden=[2]",
            "train.epochs=1",
            "train.batch_size=57",
            *args.overrides,
        ]
        tic = time.perf_counter()
        with contextlib.suppress(SystemExit):
            entry.main()
        wall = time.perf_counter() - tic
    n = args.trials
    per = collections.defaultdict(float, {k: round(1000 * v / n, 2) for k, v in totals.items()})
    mlflow = per["start_many"] + per["finish_many"] + per["log_text"]
    inside = ("check", "train", "start_many", "finish_many", "log_text")
    pack_other = per["train_pack"] - sum(per[f"{k} in train_pack"] for k in inside)
    # one launcher's path runs: the packed one's _train_pack, or Hydra's run_job per seed
    job_dirs = per["_train_pack"] + per["run_job"] - per["train_pack"]
    launch_other = per["_launch_seeds"] - per["_train_pack"] - per["run_job"] - per["compose"]
    result = {
        "benchmark": "study_overhead",
        "command": "python -m seedhp " + " ".join(_redacted(a) for a in sys.argv[1:]),
        "trials": n,
        "sampler": args.sampler,
        "process_startup_seconds": round(startup, 3),
        "sweep_wall_seconds": round(wall, 3),
        "per_trial_wall_ms": round(1000 * wall / n, 2),
        "per_trial_train_ms": per["train"],
        "per_trial_overhead_ms": round(1000 * wall / n - per["train"], 2),
        "per_trial_ms_by_step": {
            "ask (with the stale-trial check)": per["_next_trial"],
            "tell and user attributes": per["_tell"],
            "reuse index (finished seed-runs of the configuration)": per["finished_seed_runs"],
            "compose the job config": per["compose"],
            "job directory, Hydra's callbacks and logging": round(job_dirs, 2),
            "seedhp job checks (the sweeper's per configuration, each pack's)": per["check"],
            "MLflow seed-run (create, config artifact, final batch and status)": round(mlflow, 2),
            "settings, seed streams, the engine probe, the run's records": round(pack_other, 2),
            "MLflow search for the trial's runs, hooks": round(launch_other, 2),
            "training": per["train"],
        },
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
    }
    out = (
        Path(__file__).resolve().parents[1] / args.out
        if not Path(args.out).is_absolute()
        else Path(args.out)
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


def _redacted(override: str) -> str:
    key, sep, value = override.partition("=")
    return key + sep + redact(value) if sep else override


def _timed(
    fn: Callable[..., Any],
    label: str,
    totals: collections.Counter[str],
    calls: collections.Counter[str],
) -> Callable[..., Any]:
    """fn, its wall time summed under `label`, and under "label in outer" too when it runs
    inside another timed function `outer`."""

    @functools.wraps(fn)
    def wrapper(*a: Any, **kw: Any) -> Any:
        outer = _ACTIVE[-1] if _ACTIVE else None
        _ACTIVE.append(label)
        tic = time.perf_counter()
        try:
            return fn(*a, **kw)
        finally:
            _ACTIVE.pop()
            took = time.perf_counter() - tic
            totals[label] += took
            calls[label] += 1
            if outer is not None:
                totals[f"{label} in {outer}"] += took

    return wrapper


if __name__ == "__main__":
    main()
