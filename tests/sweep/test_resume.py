"""Nothing lost, nothing trained twice: a sweep run again resumes, runs of dead processes are
marked KILLED, SIGTERM records a pack as interrupted, each (configuration, seed) counts once."""

from __future__ import annotations

import json
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from seedhp.job.tracking import HEARTBEAT_TAG, OWNER_TAG, STALE_SECONDS, Tracker
from seedhp.report import console
from seedhp.stats.summary import latest_per_seed
from tests.conftest import all_runs, cli, cli_env

SWEEP = ["-m", "model=mlp", "model.hidden=[16]", "report.enabled=false"]


def _start(args: list[str], cwd: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "seedhp", *args],
        cwd=cwd,
        env=cli_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def _seed_states(db: Path) -> dict[str, str]:
    """Seed -> MLflow status, read straight from the store's tables while another process
    writes it (an MLflow client would try to create the store)."""
    if not db.exists():
        return {}
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=1) as con:
            rows = con.execute(
                "SELECT t.value, r.status FROM runs r JOIN tags t ON t.run_uuid = r.run_uuid "
                "WHERE t.key = 'seed'"
            ).fetchall()
    except sqlite3.Error:
        return {}  # not created yet
    return {str(seed): str(status) for seed, status in rows}


def _finished_pairs(outputs: Path) -> Counter[tuple[str, str]]:
    return Counter(
        (r.data.tags["config_id"], r.data.tags["seed"])
        for r in all_runs(outputs)
        if r.data.tags.get("seedhp.status") == "finished"
    )


# about 60 s: it kills a packed sweep twice; `make test-all` runs it
@pytest.mark.slow
def test_a_killed_sweep_run_again_trains_only_what_is_missing(tmp_path: Path) -> None:
    args = [*SWEEP, "seed=range(0,8)", "train.epochs=30", "hydra/launcher=seedhp"]
    first = _start(args, tmp_path)
    assert first.stdout is not None
    jobs = 0
    for line in first.stdout:  # killed once its third seed-run has finished
        jobs += "][INFO] job " in line
        if jobs == 3:
            first.send_signal(signal.SIGKILL)
            break
    first.wait()
    assert first.returncode == -signal.SIGKILL
    outputs = tmp_path / "outputs"
    before = _finished_pairs(outputs)
    assert 3 <= sum(before.values()) < 8

    again = cli(args, cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    log = again.stdout + again.stderr
    assert f"{len(before)} already finished in the store are reused" in log
    assert f"{8 - len(before)} to train" in log
    after = _finished_pairs(outputs)
    assert len(after) == 8 and max(after.values()) == 1  # every seed once, none twice

    runs = all_runs(outputs)
    assert not [r for r in runs if r.info.status == "RUNNING"]  # the dead sweep's parent too
    dead = [r for r in runs if r.info.status == "KILLED"]
    assert dead and all("is gone" in r.data.tags["seedhp.interrupted"] for r in dead)
    summary = json.loads(next(outputs.glob("multirun/*/summary.json"), Path()).read_text())
    if summary["reused_runs"] == 0:  # glob order: take the second sweep's summary
        [summary] = [
            s
            for s in (json.loads(p.read_text()) for p in outputs.glob("multirun/*/summary.json"))
            if s["reused_runs"]
        ]
    [config] = summary["configurations"]
    assert config["n"] == 8 and summary["reused_runs"] == len(before)


@pytest.mark.slow
def test_sigterm_records_the_pack_as_interrupted_and_a_rerun_resumes(tmp_path: Path) -> None:
    args = [*SWEEP, "seed=range(0,6)", "train.epochs=400", "hydra.launcher.pack_size=2"]
    outputs = tmp_path / "outputs"
    first = _start(args, tmp_path)
    deadline = time.monotonic() + 120
    states: dict[str, str] = {}
    while time.monotonic() < deadline and not (  # the first pack finished, the second training
        states.get("0") == states.get("1") == "FINISHED"
        and states.get("2") == states.get("3") == "RUNNING"
    ):
        time.sleep(0.1)
        states = _seed_states(outputs / "mlflow.db")
    training = {s for s, state in states.items() if state == "RUNNING"}
    assert training == {"2", "3"}
    first.send_signal(signal.SIGTERM)
    out, _ = first.communicate(timeout=120)
    assert first.returncode == 130, out
    assert "seedhp: interrupted" in out
    [path] = outputs.glob("multirun/*/summary.json")
    [config] = json.loads(path.read_text())["configurations"]
    assert (config["n"], config["n_interrupted"], config["n_failed"]) == (2, 2, 0)
    assert "interrupted" in out[out.index("val_acc over seeds") :].splitlines()[1]
    runs = all_runs(outputs)
    assert not [r for r in runs if r.info.status == "RUNNING"]
    stopped = {
        r.data.tags["seed"]: r for r in runs if r.info.status == "KILLED" and "seed" in r.data.tags
    }
    assert set(stopped) == {"2", "3"}
    assert {r.data.tags["seedhp.status"] for r in stopped.values()} == {"interrupted"}

    again = cli(args, cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert "2 already finished in the store are reused" in again.stdout + again.stderr
    after = _finished_pairs(outputs)
    assert len(after) == 6 and max(after.values()) == 1


@pytest.mark.slow  # 18 s: keeps `make test` under 5 minutes; CI runs it
def test_reuse_false_trains_again_and_each_seed_counts_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    args = [*SWEEP, "seed=range(0,3)", "train.epochs=2"]
    for extra in ([], ["hydra.sweeper.reuse=false"]):
        result = cli([*args, *extra], cwd=tmp_path)
        assert result.returncode == 0, result.stderr
    outputs = tmp_path / "outputs"
    assert sum(_finished_pairs(outputs).values()) == 6  # retrained on demand
    table = result.stdout[result.stdout.index("val_acc over seeds") :].splitlines()
    assert table[2].split()[1] == "3"
    monkeypatch.chdir(tmp_path)
    assert console.main(["report", "--all", "--out", "all"]) == 0
    numbers = json.loads((tmp_path / "all" / "report.json").read_text())
    [config] = numbers["configurations"]
    assert config["objective"]["n"] == 3 and len(numbers["duplicates"]) == 3
    assert "ignored 3 duplicate run(s)" in (tmp_path / "all" / "report.html").read_text()


def test_runs_of_dead_processes_are_marked_killed_and_live_ones_kept(tmp_path: Path) -> None:
    tracker = Tracker(f"sqlite:///{tmp_path}/mlflow.db", "reap")
    host = socket.gethostname()
    gone = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    owners = {
        "dead here": f"{host}:{int(gone.stdout)}:1",
        "elsewhere, silent": "another-host:1:1",
        "elsewhere, beating": "another-host:2:2",
    }
    now = time.time()
    long_ago = int((now - 2 * STALE_SECONDS) * 1000)  # ms: started before the stale limit
    ids = {
        name: tracker.client.create_run(
            tracker.experiment_id,
            start_time=long_ago,
            tags={"config_id": "c", "seed": "0", OWNER_TAG: owner},
        ).info.run_id
        for name, owner in owners.items()
    }
    tracker.log(ids["elsewhere, beating"], tags={HEARTBEAT_TAG: f"{now:.0f}"})
    tracker.log(ids["elsewhere, silent"], tags={HEARTBEAT_TAG: f"{now - STALE_SECONDS - 60:.0f}"})
    ids["this process"] = tracker.start_run("mine", {"config_id": "c", "seed": "1"})
    # a run that another tool left RUNNING in the experiment: not seedhp's to judge
    foreign = tracker.client.create_run(tracker.experiment_id).info.run_id

    reaped = tracker.reap()
    assert sorted(reaped) == sorted([ids["dead here"], ids["elsewhere, silent"]])
    status = {name: tracker.client.get_run(i).info.status for name, i in ids.items()}
    assert status == {
        "dead here": "KILLED",
        "elsewhere, silent": "KILLED",
        "elsewhere, beating": "RUNNING",
        "this process": "RUNNING",
    }
    why = tracker.client.get_run(ids["elsewhere, silent"]).data.tags["seedhp.interrupted"]
    assert why.startswith("no heartbeat from process another-host:1:1 for")
    assert tracker.client.get_run(foreign).info.status == "RUNNING"


@pytest.mark.parametrize(
    ("runs", "kept", "ignored"),
    [
        # the latest finished run of a (configuration, seed) wins, whatever came after it
        (
            [("a", 0, "finished", 1), ("a", 0, "finished", 3), ("a", 0, "failed", 5)],
            [3],
            [1, 5],
        ),
        ([("a", 0, "interrupted", 1), ("a", 0, "failed", 2)], [2], [1]),  # none finished
        ([("a", 0, "pruned", 4), ("a", 0, "diverged", 2)], [2], [4]),  # a result over a part
        (
            [("a", 0, "finished", 1), ("b", 0, "finished", 1), ("a", 1, "finished", 1)],
            [1, 1, 1],
            [],
        ),
    ],
)
def test_each_configuration_and_seed_counts_once(
    runs: list[tuple[str, int, str, int]], kept: list[int], ignored: list[int]
) -> None:
    records = [{"config_id": c, "seed": s, "status": st, "start_time": t} for c, s, st, t in runs]
    k, i = latest_per_seed(records)
    assert [r["start_time"] for r in k] == kept and [r["start_time"] for r in i] == ignored


def _claims_sweep(cwd: Path, extra: list[str]) -> list[subprocess.Popen[str]]:
    """Two identical grid sweeps on one store, started together."""
    env = cli_env({"OMP_NUM_THREADS": "1"})
    return [
        subprocess.Popen(
            [sys.executable, "-m", "seedhp", *extra],
            cwd=cwd,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for _ in range(2)
    ]


@pytest.mark.parametrize(
    "launcher",
    [
        pytest.param(["hydra.launcher.pack_size=4"], id="packed"),
        pytest.param(["hydra/launcher=seedhp"], id="seed-by-seed", marks=pytest.mark.slow),
    ],
)
def test_two_identical_sweeps_started_together_train_each_pair_once(
    tmp_path: Path, launcher: list[str]
) -> None:
    args = [*SWEEP, "seed=range(0,12)", "train.epochs=3", *launcher]
    procs = _claims_sweep(tmp_path, args)
    outs = [p.communicate(timeout=300)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    outputs = tmp_path / "outputs"
    pairs = _finished_pairs(outputs)
    assert len(pairs) == 12 and set(pairs.values()) == {1}  # each pair trained once
    assert not [r for r in all_runs(outputs) if r.info.status == "RUNNING"]
    # each sweep counts every seed: its own runs and the ones the other trained meanwhile
    parents = [r for r in all_runs(outputs) if r.data.tags.get("seedhp.kind") == "sweep"]
    assert len(parents) == 2 and all(p.data.metrics["seed_runs"] == 12 for p in parents)
    # their job directories do not collide, even in one sweep directory (the same second)
    job_dirs = [r.data.tags["seedhp.job_dir"] for r in all_runs(outputs) if "seed" in r.data.tags]
    assert len(set(job_dirs)) == len(job_dirs) == 12


@pytest.mark.slow
def test_seeds_claimed_by_a_process_that_dies_are_trained_by_the_one_that_waits(
    tmp_path: Path,
) -> None:
    # a CNN pack of six for 30 epochs: long enough to be found training by the second sweep
    args = ["-m", "seed=range(0,6)", "train.epochs=30", "report.enabled=false"]
    db = tmp_path / "outputs" / "mlflow.db"
    first = _start(args, tmp_path)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and list(_seed_states(db).values()).count("RUNNING") < 6:
        time.sleep(0.05)  # the first sweep holds all six seeds
    log = tmp_path / "second.log"
    with open(log, "w") as sink:
        second = subprocess.Popen(
            [sys.executable, "-m", "seedhp", *args],
            cwd=tmp_path,
            env=cli_env(),
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    while time.monotonic() < deadline and "waiting to reuse them" not in log.read_text():
        time.sleep(0.05)  # the second sweep found the six seeds held and waits for them
    assert "waiting to reuse them" in log.read_text()
    first.send_signal(signal.SIGKILL)
    first.wait()
    second.wait(timeout=300)
    assert second.returncode == 0, log.read_text()
    pairs = _finished_pairs(tmp_path / "outputs")
    assert len(pairs) == 6 and set(pairs.values()) == {1}
