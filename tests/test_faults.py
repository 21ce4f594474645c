"""Faults of the machine or the store end a command in one line, with its runs closed; what
seedhp writes is there whole or not at all. The faults are injected (an OSError where the disk
would fill); tests/test_faults_mounted.py makes them real where the machine lets it mount."""

from __future__ import annotations

import errno
import os
from pathlib import Path
from types import SimpleNamespace

import optuna
import pytest
from sqlalchemy.exc import OperationalError

from seedhp import faults
from seedhp.__main__ import entry
from seedhp.job import run as job_run
from seedhp.job.urls import write_scrubbed
from seedhp.report.whole import whole_dir
from tests.conftest import all_runs

FULL = "/data/full-disk/mlflow.db"


@pytest.fixture(autouse=True)
def own_stores(monkeypatch: pytest.MonkeyPatch) -> None:
    """The stores and directories each test names, not those of the tests before it."""
    monkeypatch.setattr(faults, "_STORES", {})
    monkeypatch.setattr(faults, "_DIRS", {})


def test_a_full_disk_is_one_line_naming_the_path_and_what_to_do() -> None:
    err = OSError(errno.ENOSPC, "No space left on device", FULL)
    line = faults.describe(RuntimeError("while logging")) or ""
    assert line == ""  # not a fault: a bug keeps its traceback
    try:
        try:
            raise err
        except OSError as inner:
            raise RuntimeError("while logging") from inner
    except RuntimeError as outer:
        line = faults.describe(outer) or ""
    assert line.startswith(f"{FULL}: No space left on device: free space there")
    assert "hydra.sweep.dir=" in line and "tracking.uri=" in line


def test_a_write_that_says_no_path_names_the_full_directory(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    faults.writes_to("hydra.sweep.dir", tmp_path / "sweep")
    full = SimpleNamespace(f_bavail=0, f_frsize=4096, f_flag=os.ST_RDONLY)
    monkeypatch.setattr(faults.os, "statvfs", lambda path: full)
    line = faults.describe(OSError(errno.ENOSPC, "No space left on device")) or ""
    assert f"{tmp_path / 'sweep'} (hydra.sweep.dir): No space left on device" in line
    line = faults.describe(OSError(errno.EROFS, "Read-only file system")) or ""
    assert (
        f"{tmp_path / 'sweep'} (hydra.sweep.dir): Read-only file system: write elsewhere" in line
    )


def test_store_faults_name_the_store_without_its_password() -> None:
    faults.opened("tracking.uri", "sqlite:////data/mlflow.db")
    faults.opened("--storage", "postgresql://alice:hunter2@db.example:5433/optuna")
    full = OperationalError("INSERT INTO tags", {}, Exception("database or disk is full"))
    assert (faults.describe(full) or "").startswith(
        "tracking.uri=sqlite:////data/mlflow.db: the store's disk is full: free space there"
    )
    refused = OperationalError(
        None,
        {},
        Exception(
            'connection to server at "db.example", port 5433 failed: FATAL:  password '
            'authentication failed for user "alice"'
        ),
    )
    line = faults.describe(refused) or ""
    assert line.startswith("--storage=postgresql://alice:***@db.example:5433/optuna: the server")
    assert "check the user and password" in line and "hunter2" not in line
    for not_a_fault in (
        FileNotFoundError(errno.ENOENT, "No such file", "x"),
        ValueError("database or disk is full"),  # the words, not from a store
    ):
        assert faults.describe(not_a_fault) is None


def test_a_file_or_a_report_stopped_midway_leaves_the_one_before(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    summary = tmp_path / "summary.txt"
    write_scrubbed(summary, "the whole summary\n")
    real = Path.write_text

    def half_then_full(self: Path, text: str, **kwargs: object) -> int:
        real(self, text[:3])
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(Path, "write_text", half_then_full)
    with pytest.raises(OSError):
        write_scrubbed(summary, "a new summary that does not fit\n")
    monkeypatch.undo()
    assert summary.read_text() == "the whole summary\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["summary.txt"]  # no partial file

    report = tmp_path / "report"
    with whole_dir(report) as partial:
        (partial / "report.html").write_text("first")
    with pytest.raises(OSError), whole_dir(report) as partial:
        (partial / "figure.png").write_text("half")
        raise OSError(errno.ENOSPC, "No space left on device")
    assert [p.name for p in report.iterdir()] == ["report.html"]
    assert (report / "report.html").read_text() == "first"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report", "summary.txt"]


def _full_disk(*args: object, **kwargs: object) -> None:
    raise OSError(errno.ENOSPC, "No space left on device", FULL)


def _one_line(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err
    lines = [
        line for line in err.splitlines() if line.strip() and not line.startswith("seedhp: 0/")
    ]
    assert len(lines) == 1 and lines[0].startswith("seedhp: error: "), err
    return lines[0]


@pytest.mark.parametrize("sweep", ["grid", "study"])
def test_a_fault_in_training_ends_the_command_in_one_line_with_its_runs_closed(
    sweep: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Every seed after a full disk would fail the same way: the command stops (exit 1) in one
    line, its seed-runs and parent interrupted (not failed, not RUNNING), the trial failed and
    queued; run again, it trains what was interrupted."""
    monkeypatch.chdir(tmp_path)
    args = {
        "grid": ["-m", "seed=range(0,4)", "train.epochs=1"],
        "study": ["-m", "hydra/sweeper=optuna", "seed=range(0,10)", "hydra.sweeper.n_trials=2"],
    }[sweep] + ["train.epochs=1", "report.enabled=false"]
    monkeypatch.setattr(job_run, "train", _full_disk)
    with pytest.raises(SystemExit) as exit_:
        entry(args)
    assert exit_.value.code == 1
    line = _one_line(capsys)
    assert line.startswith(f"seedhp: error: {FULL}: No space left on device: free space there")
    runs = all_runs(tmp_path / "outputs")
    assert runs and {r.info.status for r in runs} == {"KILLED"}
    seed_runs = [r for r in runs if "seed" in r.data.tags]
    assert seed_runs and all(r.data.tags["seedhp.status"] == "interrupted" for r in seed_runs)
    assert all("No space left on device" in r.data.tags["seedhp.interrupted"] for r in seed_runs)
    if sweep == "study":
        [study] = optuna.get_all_study_summaries(f"sqlite:///{tmp_path}/outputs/optuna.db")
        trials = optuna.load_study(
            study_name=study.study_name, storage=f"sqlite:///{tmp_path}/outputs/optuna.db"
        ).get_trials()
        assert [t.state.name for t in trials] == ["FAIL", "WAITING"]  # failed, queued again

    monkeypatch.undo()
    monkeypatch.chdir(tmp_path)
    entry(args)  # returns: the command succeeded
    finished = {
        (r.data.tags["config_id"], r.data.tags["seed"])
        for r in all_runs(tmp_path / "outputs")
        if "seed" in r.data.tags and r.info.status == "FINISHED"
    }
    interrupted = {(r.data.tags["config_id"], r.data.tags["seed"]) for r in seed_runs}
    assert interrupted <= finished  # what the fault interrupted is trained now
    assert len(finished) == 4 or sweep == "study"
