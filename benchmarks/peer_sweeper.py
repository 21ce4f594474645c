"""seedhp_optuna against hydra-optuna-sweeper on the peer's sphere example (20 trials, a trivial
task): wall and CPU time of the whole command, medians of runs taken in turns in one session.

The peer needs optuna<3, so it lives in a virtual environment of its own (.venv-peer, made here
on first use from PyPI, outside the project's dependencies). Both run the same app file with the
same settings (TPE, sampler seed 123, storage null, n_jobs 1); only `hydra/sweeper` differs.

    .venv/bin/python benchmarks/peer_sweeper.py [--runs 5]

writes benchmarks/results/peer_sweeper.json. The target (issue 25): seedhp's CPU time at most 2x
the peer's.
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PEER_VENV = ROOT / ".venv-peer"
PEER_PACKAGES = ["hydra-optuna-sweeper==1.2.0", "optuna<3", "hydra-core==1.3.8", "sqlalchemy<2"]
APP = ROOT / "tests" / "peer_apps" / "sphere.py"
CONFIG = ROOT / "tests" / "peer_apps" / "conf" / "config.yaml"


def peer_python() -> Path:
    python = PEER_VENV / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(PEER_VENV)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", *PEER_PACKAGES], check=True)
    return python


def app_copy(where: Path, sweeper: str) -> Path:
    """The sphere app with its config naming `sweeper` (the peer's is `optuna`)."""
    (where / "conf").mkdir(parents=True)
    (where / "sphere.py").write_text(APP.read_text())
    (where / "conf" / "config.yaml").write_text(
        CONFIG.read_text()
        .replace("    max_failure_rate: 0.0\n", "")  # a key hydra-optuna-sweeper 1.2.0 lacks
        .replace("override hydra/sweeper: seedhp_optuna", f"override hydra/sweeper: {sweeper}")
    )
    return where / "sphere.py"


def timed(python: Path, script: Path, sweep_dir: Path) -> tuple[float, float]:
    """Wall and CPU seconds (user + system, the command and its children) of one sweep."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(
        [str(python), str(script), "-m", f"hydra.sweep.dir={sweep_dir}"],
        cwd=script.parent,
        capture_output=True,
        text=True,
    )
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise SystemExit(f"{python} {script}: exit {done.returncode}\n{done.stderr[-2000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def version(python: Path, package: str) -> str:
    out = subprocess.run(
        [str(python), "-c", f"import importlib.metadata as m; print(m.version({package!r}))"],
        capture_output=True,
        text=True,
    )
    return out.stdout.strip()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/peer_sweeper.json")
    args = parser.parse_args()
    sides = {"peer": (peer_python(), "optuna"), "seedhp": (Path(sys.executable), "seedhp_optuna")}
    with tempfile.TemporaryDirectory() as tmp:
        scripts = {k: app_copy(Path(tmp) / k, sweeper) for k, (_, sweeper) in sides.items()}
        samples: dict[str, list[tuple[float, float]]] = {k: [] for k in sides}
        for i in range(args.runs):  # in turns, so both see the same machine
            for k, (python, _) in sides.items():
                samples[k].append(timed(python, scripts[k], Path(tmp) / f"{k}-sweep-{i}"))
    result: dict[str, object] = {
        "command": "python tests/peer_apps/sphere.py -m (20 trials, TPE seed 123, storage null)",
        "runs": args.runs,
        "machine": {
            "cpu": platform.processor() or platform.machine(),
            "python": platform.python_version(),
        },
        "versions": {
            "peer": {p: version(sides["peer"][0], p) for p in ("hydra-optuna-sweeper", "optuna")},
            "seedhp": {p: version(sides["seedhp"][0], p) for p in ("seedhp", "optuna")},
        },
    }
    for k, runs in samples.items():
        result[k] = {
            "wall_s": [round(w, 3) for w, _ in runs],
            "cpu_s": [round(c, 3) for _, c in runs],
            "wall_median_s": round(statistics.median(w for w, _ in runs), 3),
            "cpu_median_s": round(statistics.median(c for _, c in runs), 3),
        }
    peer, ours = result["peer"], result["seedhp"]
    assert isinstance(peer, dict) and isinstance(ours, dict)
    result["cpu_ratio"] = round(ours["cpu_median_s"] / peer["cpu_median_s"], 2)
    result["wall_ratio"] = round(ours["wall_median_s"] / peer["wall_median_s"], 2)
    result["target"] = "seedhp's CPU time at most 2x the peer's"
    result["met"] = result["cpu_ratio"] <= 2.0
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
