"""Scale-out end to end: workers sharing a study on PostgreSQL and an MLflow tracking server
(both started by scripts/services.sh, as `make services` does), and the submitit launchers.

Needs PostgreSQL's server binaries (Debian's `postgresql` package; .ci/run installs it);
skipped, with the reason, where they are missing.
"""

from __future__ import annotations

import glob
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from tests.conftest import ROOT, all_runs, cli, cli_env
from tests.report.test_report import seedhp

pytestmark = pytest.mark.slow  # servers, several processes, kills: `make test-all`


def _dir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def services() -> Iterator[dict[str, str]]:
    if not (shutil.which("pg_ctl") or glob.glob("/usr/lib/postgresql/*/bin/pg_ctl")):
        pytest.skip("PostgreSQL's server is not installed (Debian: apt-get install postgresql)")
    # directly under /tmp: run as root, PostgreSQL runs as the postgres user, which cannot
    # enter pytest's private temporary directories
    base = Path(tempfile.mkdtemp(prefix="seedhp-services-"))
    base.chmod(0o755)
    pg, ml = _free_port(), _free_port()
    env = {
        "SEEDHP_SERVICES_DIR": str(base / "s"),
        "SEEDHP_PG_PORT": str(pg),
        "SEEDHP_MLFLOW_PORT": str(ml),
        "SEEDHP_PG_PASSWORD": "s3cret-pw",
        "SEEDHP_MLFLOW": str(Path(sys.executable).parent / "mlflow"),
    }
    script = str(ROOT / "scripts" / "services.sh")
    started = subprocess.run(
        [script, "start"], env=cli_env(env), capture_output=True, text=True, timeout=300
    )
    assert started.returncode == 0, started.stdout + started.stderr
    try:
        yield {
            "storage": f"postgresql://seedhp:s3cret-pw@127.0.0.1:{pg}/optuna",
            "tracking": f"http://127.0.0.1:{ml}",
        }
    finally:
        subprocess.run([script, "stop"], env=cli_env(env), capture_output=True, timeout=120)
        shutil.rmtree(base, ignore_errors=True)


def _server_runs(tracking: str) -> list:  # type: ignore[type-arg]
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=tracking)
    exp = client.get_experiment_by_name("seedhp")
    return [] if exp is None else list(client.search_runs([exp.experiment_id], max_results=5000))


def _training(tracking: str, pid: int, trial: int | None = None) -> list[str]:
    """Trial numbers of the MLflow seed-runs that process `pid` has RUNNING (filtered on the
    server: one cheap request)."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=tracking)
    exp = client.get_experiment_by_name("seedhp")
    if exp is None:
        return []
    found = client.search_runs(
        [exp.experiment_id],
        f"attributes.status = 'RUNNING' and tags.`seedhp.owner` LIKE '%:{pid}:%'",
    )
    trials = [str(r.data.tags.get("seedhp.trial")) for r in found if "seed" in r.data.tags]
    return [t for t in trials if trial is None or t == str(trial)]


def _mid_trial(storage: str, tracking: str, pid: int) -> int | None:
    """The trial (number >= 2) that process `pid` is running with its seed-runs created and
    none finished, if it is in that state now."""
    study = optuna.load_study(study_name="shared-pg", storage=storage)
    for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        if (
            f":{pid}:" in str(t.user_attrs.get("seedhp.owner", ""))
            and not t.user_attrs.get("seed_scores")
            and t.number >= 2
            and _training(tracking, pid, t.number)
        ):
            return t.number
    return None


def test_three_workers_share_a_study_and_survive_a_killed_one(
    services: dict[str, str], tmp_path: Path
) -> None:
    storage, tracking = services["storage"], services["tracking"]
    args = [
        "-m",
        "hydra/sweeper=optuna",
        "hydra/sweeper/sampler=random",
        f"hydra.sweeper.storage={storage}",
        "hydra.sweeper.seed_strategy=averaged",
        "hydra.sweeper.seed_pool=4",
        "hydra.sweeper.seeds_per_trial=2",
        "hydra.sweeper.n_trials=30",
        "hydra.sweeper.study_name=shared-pg",
        "optimizer.lr=tag(log, interval(0.01, 0.3))",
        f"tracking.uri={tracking}",
        "model=mlp",
        "model.hidden=[16]",
        "train.epochs=6",
        "report.enabled=false",
    ]
    workers = [
        subprocess.Popen(
            [sys.executable, "-m", "seedhp", *args],
            cwd=_dir(tmp_path / f"w{i}"),
            env=cli_env({"OMP_NUM_THREADS": "1"}),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for i in range(3)
    ]
    victim = workers[0]
    deadline, killed_trial = time.monotonic() + 180, None
    while killed_trial is None and time.monotonic() < deadline:
        time.sleep(0.05)
        if not _training(tracking, victim.pid):
            continue
        # freeze it, then look again: killed only in a state seen while it could not move on
        victim.send_signal(signal.SIGSTOP)
        killed_trial = _mid_trial(storage, tracking, victim.pid)
        victim.send_signal(signal.SIGKILL if killed_trial is not None else signal.SIGCONT)
    assert killed_trial is not None, "the worker never started a trial"
    victim.wait()
    outs = [w.communicate(timeout=400)[0] for w in workers[1:]]
    assert [w.returncode for w in workers[1:]] == [0, 0], "\n\n".join(outs)

    study = optuna.load_study(study_name="shared-pg", storage=storage)
    trials = study.get_trials()
    finished = [t for t in trials if t.state in (TrialState.COMPLETE, TrialState.PRUNED)]
    assert len(finished) == 30
    assert trials[killed_trial].state == TrialState.FAIL
    [retry] = [t for t in trials if t.user_attrs.get("seedhp.retry_of") == killed_trial]
    assert retry.params == trials[killed_trial].params and retry.state == TrialState.COMPLETE

    runs = _server_runs(tracking)
    assert not [r for r in runs if r.info.status == "RUNNING"]
    by_id = {r.info.run_id: r for r in runs}
    seed_runs = [r for r in runs if r.data.tags.get("seedhp.status") == "finished"]
    pairs = Counter((r.data.tags["config_id"], r.data.tags["seed"]) for r in seed_runs)
    assert max(pairs.values()) == 1  # no (configuration, seed) trained twice
    parent = study.user_attrs["mlflow_parent_run_id"]
    for t in finished:
        ids = t.user_attrs["mlflow_run_ids"]
        assert sorted(int(s) for s in ids) == [0, 1]
        for run_id in ids.values():
            run = by_id[run_id]
            assert run.info.status == "FINISHED"
            assert run.data.tags["mlflow.parentRunId"] == parent
    owners = {t.user_attrs["seedhp.owner"] for t in finished}
    assert len(owners) >= 2  # shared by the surviving workers
    killed_runs = [r for r in runs if r.data.tags.get("seedhp.trial") == str(killed_trial)]
    assert killed_runs and all(r.info.status == "KILLED" for r in killed_runs)
    assert all(r.data.tags["seedhp.status"] == "interrupted" for r in killed_runs)
    everything = "\n".join(outs)
    assert "s3cret-pw" not in everything  # the password never printed
    assert all("s3cret-pw" not in str(r.data.params) + str(r.data.tags) for r in runs)


def test_bad_database_urls_fail_in_one_line(services: dict[str, str], tmp_path: Path) -> None:
    port = services["storage"].rsplit(":", 1)[1].split("/")[0]
    base = ["-m", "hydra/sweeper=optuna", "hydra.sweeper.n_trials=1", "seed=choice(0,1)"]
    cases = {
        "wrong password": (
            f"hydra.sweeper.storage=postgresql://seedhp:nope@127.0.0.1:{port}/optuna",
            "password authentication failed",
        ),
        "unreachable": (
            f"hydra.sweeper.storage=postgresql://seedhp:nope@127.0.0.1:{_free_port()}/optuna",
            "Connection refused",
        ),
        "missing driver": (
            "hydra.sweeper.storage=mysql://u:nope@127.0.0.1/db",
            "database driver is not installed",
        ),
        "unreachable server": (
            f"tracking.uri=http://127.0.0.1:{_free_port()}",
            "no MLflow tracking server answers there",
        ),
    }
    for name, (override, reason) in cases.items():
        result = cli([*base, override], cwd=tmp_path)
        lines = result.stderr.strip().splitlines()
        assert result.returncode != 0 and len(lines) == 1, (name, result.stderr)
        assert reason in lines[0] and "nope" not in lines[0], (name, lines[0])
        assert not (tmp_path / "outputs" / "multirun").exists()  # nothing trained
    # the report of a study, with a wrong password: one line that says what to check
    wrong = f"postgresql://seedhp:nope@127.0.0.1:{port}/optuna"
    result = seedhp(["report", "--study", "any", "--storage", wrong], cwd=tmp_path)
    [line] = result.stderr.strip().splitlines()
    assert result.returncode == 1 and "nope" not in line, result.stderr
    assert line.startswith(f"seedhp: error: --storage=postgresql://seedhp:***@127.0.0.1:{port}")
    assert "the server refused the credentials: check the user and password" in line


def test_submitit_local_runs_a_study_and_a_packed_sweep(tmp_path: Path) -> None:
    study = cli(
        [
            "-m",
            "hydra/sweeper=optuna",
            "hydra/launcher=submitit_local",
            "hydra.sweeper.seed_strategy=averaged",
            "hydra.sweeper.seed_pool=2",
            "hydra.sweeper.seeds_per_trial=2",
            "hydra.sweeper.n_trials=2",
            "optimizer.lr=interval(0.01,0.1)",
            "model=mlp",
            "train.epochs=1",
            "report.enabled=false",
        ],
        cwd=_dir(tmp_path / "a"),
    )
    assert study.returncode == 0, study.stdout + study.stderr
    runs = all_runs(tmp_path / "a" / "outputs")
    finished = [r for r in runs if r.data.tags.get("seedhp.status") == "finished"]
    assert len(finished) == 4 and {r.data.tags["seedhp.pack_size"] for r in finished} == {"1"}

    packed = cli(
        [
            "-m",
            "hydra/launcher=packed_submitit_local",
            "hydra.launcher.pack_size=3",
            "seed=range(0,5)",
            "optimizer.lr=0.05,0.1",
            "model=mlp",
            "train.epochs=1",
            "report.enabled=false",
        ],
        cwd=_dir(tmp_path / "b"),
    )
    assert packed.returncode == 0, packed.stdout + packed.stderr
    runs = all_runs(tmp_path / "b" / "outputs")
    finished = [r for r in runs if r.data.tags.get("seedhp.status") == "finished"]
    assert len(finished) == 10
    assert Counter(r.data.tags["seedhp.pack_size"] for r in finished) == {"3": 6, "2": 4}
    sweep = next((tmp_path / "b" / "outputs" / "multirun").iterdir())
    assert sorted(int(p.name) for p in sweep.iterdir() if p.name.isdigit()) == list(range(10))
    assert len(list(sweep.glob(".submitit/*"))) >= 4  # one submitit task per pack


@pytest.mark.skipif(shutil.which("sbatch") is not None, reason="this machine has SLURM")
def test_slurm_launchers_without_slurm_fail_in_one_line(tmp_path: Path) -> None:
    for launcher in ("submitit_slurm", "packed_submitit_slurm"):
        result = cli(["-m", f"hydra/launcher={launcher}", "seed=0,1"], cwd=tmp_path)
        lines = result.stderr.strip().splitlines()
        assert result.returncode == 2 and len(lines) == 1, result.stderr
        assert lines[0].startswith(f"seedhp: error: hydra/launcher={launcher}: no SLURM")


def test_no_password_is_written_with_database_and_server_uris(
    services: dict[str, str], tmp_path: Path
) -> None:
    """A study on PostgreSQL recording to an MLflow server with `http://user:pw@` and to
    PostgreSQL by a database URL: no file, run, artifact, study attribute or printed line
    holds a password (tests/job/test_secrets.py: the query-string form)."""
    from mlflow.tracking import MlflowClient

    from tests.job.test_secrets import leaks

    storage = services["storage"]
    planted = ("s3cret-pw", "Http-PLANTED-77")
    trackings = [
        services["tracking"].replace("http://", f"http://alice:{planted[1]}@"),
        storage.rsplit("/", 1)[0] + "/mlflow",
    ]
    for i, tracking in enumerate(trackings):
        cwd = _dir(tmp_path / str(i))
        done = cli(
            [
                "-m",
                "hydra/sweeper=optuna",
                "hydra.sweeper.n_trials=2",
                f"hydra.sweeper.study_name=secrets{i}",
                f"hydra.sweeper.storage={storage}",
                f"tracking.uri={tracking}",
                f"tracking.experiment=secrets{i}",
                "seed=range(0,10)",
                "model=mlp",
                "model.hidden=[8]",
                "train.epochs=1",
            ],
            cwd=cwd,
        )
        assert done.returncode == 0, done.stdout + done.stderr
        report = subprocess.run(
            [
                str(Path(sys.executable).parent / "seedhp"),
                "report",
                f"--study=secrets{i}",
                f"--storage={storage}",
                f"--tracking-uri={tracking}",
            ],
            cwd=cwd,
            capture_output=True,
            text=True,
            env=cli_env(),
        )
        assert report.returncode == 0, report.stderr
        client = MlflowClient(tracking_uri=tracking)
        exp = client.get_experiment_by_name(f"secrets{i}")
        assert exp is not None
        stored = []
        for r in client.search_runs([exp.experiment_id], max_results=1000):
            stored.append(str(r.data.params) + str(r.data.tags) + r.info.artifact_uri)
            client.download_artifacts(
                r.info.run_id, "", str(_dir(cwd / "fetched" / r.info.run_id))
            )
        study = optuna.load_study(study_name=f"secrets{i}", storage=storage)
        kept = study._storage  # every attribute Optuna holds, its system ones too
        stored.append(str(study.user_attrs) + str(kept.get_study_system_attrs(study._study_id)))
        stored += [
            str(t.user_attrs) + str(kept.get_trial_system_attrs(t._trial_id))
            for t in study.get_trials()
        ]
        printed = [done.stdout, done.stderr, report.stdout, report.stderr]
        assert leaks(cwd, printed + stored, planted) == [], i
