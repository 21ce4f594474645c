"""Real faults, where this machine lets the tests mount (root, and mount(2) allowed): a full
tmpfs, a read-only bind mount. Elsewhere tests/test_faults.py injects the same faults."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import all_runs, cli
from tests.report.test_report import seedhp

pytestmark = pytest.mark.slow


def _mount(*args: str) -> bool:
    return subprocess.run(["mount", *args], capture_output=True).returncode == 0


@pytest.fixture
def mounts() -> Iterator[list[Path]]:
    made: list[Path] = []
    yield made
    for path in reversed(made):
        subprocess.run(["umount", str(path)], capture_output=True)


def _tmpfs(path: Path, size: str, mounts: list[Path]) -> None:
    path.mkdir(parents=True, exist_ok=True)
    if not _mount("-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)):
        pytest.skip("this machine does not let the tests mount a tmpfs")
    mounts.append(path)


def _read_only(path: Path, mounts: list[Path]) -> None:
    path.mkdir(parents=True, exist_ok=True)
    if not _mount("--bind", str(path), str(path)):
        pytest.skip("this machine does not let the tests bind-mount")
    mounts.append(path)
    if not _mount("-o", "remount,bind,ro", str(path)):
        pytest.skip("this machine does not let the tests remount read-only")


def _errors(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.strip() and " alive, " not in line]


def test_a_full_sweep_directory_ends_in_one_line_with_every_run_closed(
    tmp_path: Path, mounts: list[Path]
) -> None:
    full = tmp_path / "full"
    _tmpfs(full, "256k", mounts)
    result = cli(
        ["-m", "seed=range(0,32)", "train.epochs=1", f"hydra.sweep.dir={full}/sweep"],
        cwd=tmp_path,
    )
    [line] = _errors(result.stderr)
    assert result.returncode == 1, result.stderr
    assert line.startswith(f"seedhp: error: {full}") and "No space left on device" in line
    runs = all_runs(tmp_path / "outputs")
    assert runs and "RUNNING" not in {r.info.status for r in runs}


def test_read_only_artifacts_end_in_one_line_and_a_read_only_store_is_reported_on(
    tmp_path: Path, mounts: list[Path]
) -> None:
    outputs = tmp_path / "outputs"
    _read_only(outputs / "mlartifacts", mounts)
    result = cli(["-m", "seed=range(0,4)", "train.epochs=1"], cwd=tmp_path)
    [line] = _errors(result.stderr)
    assert result.returncode == 1, result.stderr
    assert line.startswith(f"seedhp: error: {outputs / 'mlartifacts'}")
    assert "Read-only file system" in line
    runs = all_runs(outputs)
    assert runs and {r.info.status for r in runs} == {"KILLED"}

    subprocess.run(["umount", str(outputs / "mlartifacts")], check=True)
    mounts.clear()
    assert cli(["-m", "seed=range(0,4)", "train.epochs=1"], cwd=tmp_path).returncode == 0
    _read_only(outputs, mounts)  # the whole store, read-only: read as it is
    report = seedhp(["report", "--out", "r"], cwd=tmp_path)
    assert report.returncode == 0, report.stderr
    assert report.stderr.strip().endswith("is read-only: the report is not logged on its run")
    assert (tmp_path / "r" / "report.html").exists()
