"""The README's benchmark commands, at toy sizes: each runs and writes the JSON it promises
(their measurements are the README's; nothing here times anything)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow


def _run(args: list[str], cwd: Path = ROOT) -> None:
    done = subprocess.run(
        [sys.executable, *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert done.returncode == 0, done.stderr[-3000:]


def test_scale_measures_each_size_repeats_the_small_ones_and_takes_slopes(
    tmp_path: Path,
) -> None:
    out = tmp_path / "scale.json"
    _run(
        [
            "benchmarks/scale.py",
            "--seeds",
            "6",
            "12",
            "--repeat",
            "3",
            "--repeat-up-to",
            "6",
            "--out",
            str(out),
            "--sweep",
            "model=mlp",
            "train.epochs=1",
        ]
    )
    got = json.loads(out.read_text())
    small, large = got["sizes"]
    assert [len(small["runs"]), len(large["runs"])] == [3, 1]
    ratios = sorted(r["other_over_train"] for r in small["runs"])
    assert small["other_over_train"] == ratios[1]  # the median run
    for size in (small, large):
        assert size["finished"] == size["seeds"]
        assert size["other_seconds"] == pytest.approx(
            size["wall_seconds"] - size["train_seconds"], abs=0.02
        )
        assert size["report_seconds"] > 0
    slope = (large["other_seconds"] - small["other_seconds"]) / 6 * 1000
    assert got["slopes"][0]["other_ms_per_additional_seed"] == pytest.approx(slope, abs=0.01)


def test_sweep_study_and_packing_benchmarks_write_their_json(tmp_path: Path) -> None:
    sweep = ["--seeds", "4", "--out", str(tmp_path / "s.json"), "--", "model=mlp"]
    _run(["benchmarks/sweep_overhead.py", *sweep, "train.epochs=1"])
    assert json.loads((tmp_path / "s.json").read_text())["benchmark"] == "sweep_overhead"
    _run(["benchmarks/study_overhead.py", "--trials", "3", "--out", str(tmp_path / "t.json")])
    assert json.loads((tmp_path / "t.json").read_text())
    _run(
        [
            "benchmarks/packing.py",
            "--model",
            "mlp",
            "--data",
            "digits",
            "--epochs",
            "1",
            "--pack",
            "4",
            "--seeds",
            "4",
            "--alone",
            "2",
            "--device",
            "cpu",
            "--out",
            str(tmp_path / "p.json"),
        ]
    )
    got = json.loads((tmp_path / "p.json").read_text())
    # the machine's limits beside what the pack achieved, at the pack's first layer's shape
    assert got["matmul_fp32_gflops"] > 0 and got["pack_bmm_shape"] == [4, 64, 64, 128]
    peak = got["matmul_fp32_gflops"]
    assert got["fraction_of_matmul_fp32"] == pytest.approx(  # achieved is rounded to 0.1
        got["achieved_gflops"] / peak, abs=0.06 / peak + 1e-4
    )


def test_gpu_script_passes_only_arguments_its_commands_accept(tmp_path: Path) -> None:
    """benchmarks/gpu.sh runs on a lent GPU, rarely: here, with its Python replaced by a shim
    that records each command, every benchmark command it runs must parse (names, choices,
    types: each script is run up to its argparse)."""
    copy = tmp_path / "repo"
    shutil.copytree(
        ROOT / "benchmarks", copy / "benchmarks", ignore=shutil.ignore_patterns("results")
    )
    (copy / "data" / "FashionMNIST" / "raw").mkdir(parents=True)  # so the Picard step runs too
    calls = tmp_path / "calls.jsonl"
    shim = tmp_path / "py"
    shim.write_text(
        "#!/usr/bin/env python3\nimport json, sys\n"
        f"open({str(calls)!r}, 'a').write(json.dumps(sys.argv[1:]) + '\\n')\n"
    )
    shim.chmod(0o755)
    done = subprocess.run(
        ["bash", str(copy / "benchmarks" / "gpu.sh")],
        capture_output=True,
        text=True,
        env={**os.environ, "PY": str(shim)},
    )
    assert done.returncode == 0, done.stderr
    steps = [json.loads(line) for line in calls.read_text().splitlines()]
    assert steps[0][:3] == ["-m", "pytest", "-q"] and "gpu" in steps[0]
    scripts = [s for s in steps if s and s[0].startswith("benchmarks/")]
    assert {Path(s[0]).name for s in scripts} == {"packing.py", "scale.py"}
    for args in scripts:
        check = subprocess.run(
            [sys.executable, "-c", PARSE_ONLY, str(ROOT / args[0]), *args[1:]],
            capture_output=True,
            text=True,
            cwd=ROOT,
        )
        assert check.returncode == 0, (args, check.stderr[-2000:])


# run a script up to its argparse and stop there: exit 0 when its arguments parse, else 2
PARSE_ONLY = """
import argparse, runpy, sys
parse = argparse.ArgumentParser.parse_args
def parse_then_stop(self, args=None, namespace=None):
    parse(self, args, namespace)
    raise SystemExit(0)
argparse.ArgumentParser.parse_args = parse_then_stop
sys.argv = sys.argv[1:]
runpy.run_path(sys.argv[0], run_name="__main__")
"""


def test_the_sources_cost_benchmark_writes_its_ratio(tmp_path: Path) -> None:
    out = tmp_path / "c.json"
    _run(["benchmarks/sources_cost.py", "--n", "2", "--repeats", "1", "--out", str(out)])
    got = json.loads(out.read_text())
    assert got["seed_runs_each"] == 12
    assert got["ratio_sources_to_plain"] == pytest.approx(
        got["median_wall_seconds"]["sources"] / got["median_wall_seconds"]["plain"]
    )
    assert set(got["train_seconds_per_arm_last_repeat"]["sources"]) == {
        "init",
        "data",
        "augment",
        "dropout",
        "split",
        "all",
    }
