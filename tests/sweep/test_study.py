"""Optuna studies end to end through `python -m seedhp -m hydra/sweeper=optuna ...`."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import optuna
import pytest
import yaml
from optuna.distributions import CategoricalDistribution
from optuna.trial import TrialState

from tests.conftest import all_runs, cli, cli_env

FAST = ["model=mlp", "model.hidden=[32]", "train.epochs=2"]
OPTUNA = ["-m", "hydra/sweeper=optuna"]


def study_of(outputs: Path, name: str) -> optuna.Study:
    return optuna.load_study(study_name=name, storage=f"sqlite:///{outputs}/optuna.db")


def results_of(outputs: Path) -> dict:  # type: ignore[type-arg]
    [path] = outputs.glob("multirun/*/optimization_results.yaml")
    return yaml.safe_load(path.read_text())  # type: ignore[no-any-return]


def _running(db: Path, study: str, number: int) -> bool:
    """Is trial `number` of `study` RUNNING with its owner recorded, that is, past the moment
    between Optuna creating it and seedhp writing `seedhp.owner` (a kill there leaves an
    ownerless trial, which test_a_trial_whose_process_died_before_it_was_owned_... covers)?
    Read straight from Optuna's tables (cheap)."""
    if not db.exists():
        return False
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=1) as con:
            row = con.execute(
                "SELECT t.state, COUNT(a.trial_user_attribute_id) FROM trials t "
                "JOIN studies s ON s.study_id = t.study_id "
                "LEFT JOIN trial_user_attributes a "
                "ON a.trial_id = t.trial_id AND a.key = 'seedhp.owner' "
                "WHERE s.study_name = ? AND t.number = ? GROUP BY t.trial_id",
                (study, number),
            ).fetchone()
    except sqlite3.Error:
        return False
    return row is not None and row[0] == "RUNNING" and row[1] > 0


def finished_seed_runs(outputs: Path) -> list:  # type: ignore[type-arg]
    return [
        r
        for r in all_runs(outputs)
        if "seed" in r.data.tags and r.data.tags.get("seedhp.status") == "finished"
    ]


def test_tuned_study_searches_the_seed_and_reuses_seed_runs(tmp_path: Path) -> None:
    store = tmp_path / "store"  # its own MLflow store: `seedhp report --study` finds it
    store.mkdir()
    result = cli(
        [
            *OPTUNA,
            "hydra/sweeper/sampler=random",
            "hydra.sweeper.sampler.seed=0",
            "hydra.sweeper.n_trials=6",
            "seed=choice(1,2)",
            "optimizer.lr=choice(0.05,0.1)",
            f"tracking.uri=sqlite:///{store}/mlflow.db",
            *FAST,
        ],
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert "6 of 6 trials finished" in result.stdout
    outputs = tmp_path / "outputs"
    [report] = outputs.glob("multirun/*/report/report.html")  # a study ends with its report
    assert "Report:" in result.stdout and "seed-tuned" in report.read_text()
    res = results_of(outputs)
    study = study_of(outputs, res["study_name"])
    trials = study.get_trials(states=(TrialState.COMPLETE,))
    assert len(trials) == 6 == res["finished_trials"]
    assert all(t.distributions["seed"] == CategoricalDistribution((1, 2)) for t in trials)
    assert {"seed", "optimizer.lr"} == set(res["best_params"])

    # 6 trials over at most 4 (lr, seed) pairs: each pair trained once, the rest reused
    pairs = {(t.params["optimizer.lr"], t.params["seed"]) for t in trials}
    runs = finished_seed_runs(store)
    assert len(runs) == len(pairs) < 6
    assert len({(r.data.tags["config_id"], r.data.tags["seed"]) for r in runs}) == len(runs)
    by_id = {r.info.run_id: r for r in runs}
    reused = [t for t in trials if t.user_attrs.get("reused_seeds")]
    assert len(reused) == 6 - len(pairs)
    for t in trials:  # each trial links to the MLflow run that holds its score
        [run_id] = t.user_attrs["mlflow_run_ids"].values()
        run = by_id[run_id]
        assert run.data.tags["seed"] == str(t.params["seed"])
        assert run.data.params["optimizer.lr"] == str(t.params["optimizer.lr"])
        assert run.data.metrics["val_acc"] == t.value
        assert run.data.tags["seedhp.study"] == study.study_name
        assert (
            run.data.tags["seedhp.strategy"] == "tuned" and run.data.tags["seedhp.role"] == "trial"
        )
    [parent] = [r for r in all_runs(store) if r.data.tags.get("seedhp.kind") == "study"]
    assert all(r.data.tags["mlflow.parentRunId"] == parent.info.run_id for r in runs)
    assert study.user_attrs["mlflow_parent_run_id"] == parent.info.run_id
    # the parent's metrics are named apart from its seed-runs' per-epoch ones
    assert parent.data.metrics["study.best_trial_val_acc"] == study.best_value
    assert not set(parent.data.metrics) & {k for r in runs for k in r.data.metrics}

    # the README's form: the study's name is enough, its store is recorded in the study
    report = subprocess.run(
        [str(Path(sys.executable).parent / "seedhp"), "report", "--study", study.study_name],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env=cli_env(),
    )
    assert report.returncode == 0, report.stderr
    [path] = (outputs / "reports").glob("*/report.json")
    numbers = yaml.safe_load(path.read_text())
    assert numbers["parent_run_id"] == parent.info.run_id
    # one tie rule: the study's best trial is the report's seed-tuned winner (and re-seeded)
    [best] = [t for t in trials if t.number == res["best_trial"]]
    tuned = next(s for s in numbers["selections"] if s["rule"] == "seed-tuned")
    assert (tuned["config_id"], tuned["seed"]) == (
        best.user_attrs["config_id"],
        best.params["seed"],
    )
    assert all(
        t.user_attrs["config_id"]
        == by_id[next(iter(t.user_attrs["mlflow_run_ids"].values()))].data.tags["config_id"]
        for t in trials
    )
    missing = subprocess.run(
        [str(Path(sys.executable).parent / "seedhp"), "report", "--study", "nosuch"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env=cli_env(),
    )
    assert missing.returncode == 2
    assert missing.stderr.startswith("seedhp: error: --study=nosuch: no such study")


def test_averaged_study_prunes_a_planted_bad_configuration(tmp_path: Path) -> None:
    # the grid sampler (seed 1) tries lr=0.1 first, then lr=1e-4, which cannot learn in 2 epochs
    result = cli(
        [
            *OPTUNA,
            "hydra/sweeper/sampler=grid",
            "hydra.sweeper.sampler.seed=1",
            "hydra/sweeper/pruner=wilcoxon",
            "hydra/launcher=seedhp",  # seed by seed: the packed launcher trains all 8 at once
            "hydra.sweeper.seed_strategy=averaged",
            "hydra.sweeper.seed_pool=12",
            "hydra.sweeper.seeds_per_trial=8",
            "hydra.sweeper.n_trials=2",
            "optimizer.lr=choice(0.1,0.0001)",
            *FAST,
        ],
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    outputs = tmp_path / "outputs"
    study = study_of(outputs, results_of(outputs)["study_name"])
    good, bad = study.get_trials()
    assert good.params["optimizer.lr"] == 0.1 and good.state == TrialState.COMPLETE
    assert [int(s) for s in good.user_attrs["seed_scores"]] == list(range(8))
    scores = list(good.user_attrs["seed_scores"].values())
    assert good.value == pytest.approx(sum(scores) / 8)
    assert sorted(good.intermediate_values) == list(range(8))  # step = the seed's pool position

    assert bad.params["optimizer.lr"] == 0.0001 and bad.state == TrialState.PRUNED
    made = bad.user_attrs["seed_scores"]
    assert 2 <= len(made) < 8  # pruned before using all its seeds
    assert "pruned after" in result.stderr + result.stdout
    bad_runs = [r for r in finished_seed_runs(outputs) if r.data.tags["seedhp.trial"] == "1"]
    assert sorted(int(r.data.tags["seed"]) for r in bad_runs) == sorted(int(s) for s in made)


def test_tuned_trials_are_pruned_per_epoch(tmp_path: Path) -> None:
    result = cli(
        [
            *OPTUNA,
            "hydra/sweeper/sampler=grid",
            "hydra.sweeper.sampler.seed=1",
            "hydra/sweeper/pruner=median",
            "hydra.sweeper.pruner.n_startup_trials=1",
            "hydra.sweeper.n_trials=2",
            "seed=choice(0)",
            "optimizer.lr=choice(0.1,0.0001)",
            "model=mlp",
            "train.epochs=4",
        ],
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    outputs = tmp_path / "outputs"
    good, bad = study_of(outputs, results_of(outputs)["study_name"]).get_trials()
    assert good.state == TrialState.COMPLETE and sorted(good.intermediate_values) == [1, 2, 3, 4]
    assert bad.state == TrialState.PRUNED and sorted(bad.intermediate_values) == [1]
    assert "pruned after epoch 1" in result.stderr + result.stdout
    [run] = [r for r in all_runs(outputs) if r.data.tags.get("seedhp.trial") == "1"]
    assert run.data.tags["seedhp.status"] == "pruned" and run.info.status == "KILLED"
    assert run.info.run_name == "t1 s0 mlp/digits"  # what the MLflow UI lists


def test_a_study_whose_trials_keep_failing_stops(tmp_path: Path) -> None:
    result = cli(
        [
            *OPTUNA,
            "hydra.sweeper.n_trials=20",
            "seed=range(0,1000)",
            "optimizer.lr=interval(1e5,1e6)",
            *FAST,
        ],
        cwd=tmp_path,
    )  # every run diverges
    assert result.returncode == 1
    # judged against 5 trials until 5 have run: more than half of 5 failed after 3
    assert "stopping: 3 of the 3 trials this process ran failed" in result.stderr + result.stdout
    trials = study_of(
        tmp_path / "outputs", results_of(tmp_path / "outputs")["study_name"]
    ).get_trials()
    assert [t.state for t in trials] == [TrialState.FAIL] * 3
    assert all(t.user_attrs["diverged"] for t in trials)


@pytest.mark.slow
def test_a_killed_study_resumes_to_exactly_n_trials(tmp_path: Path) -> None:
    args = [
        "-m",
        "hydra/sweeper=optuna",
        "hydra/sweeper/sampler=random",
        "hydra.sweeper.sampler.seed=0",
        "hydra.sweeper.seed_strategy=averaged",
        "hydra.sweeper.seed_pool=3",
        "hydra.sweeper.seeds_per_trial=3",
        "hydra.sweeper.n_trials=4",
        "hydra.sweeper.study_name=killed",
        "optimizer.lr=tag(log, interval(0.01, 0.3))",
        "model=mlp",
        "train.epochs=25",
    ]
    outputs = tmp_path / "outputs"
    first = subprocess.Popen(
        [sys.executable, "-m", "seedhp", *args],
        cwd=tmp_path,
        env=cli_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not _running(outputs / "optuna.db", "killed", 1):
        time.sleep(0.05)  # kill it inside its second trial
    first.send_signal(signal.SIGKILL)
    first.wait()
    assert study_of(outputs, "killed").get_trials()[1].state == TrialState.RUNNING

    again = cli(args, cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert "was left running by process" in again.stderr + again.stdout
    trials = study_of(outputs, "killed").get_trials()
    finished = [t for t in trials if t.state in (TrialState.COMPLETE, TrialState.PRUNED)]
    assert len(finished) == 4
    assert trials[1].state == TrialState.FAIL
    # the lost trial's configuration ran again, reusing the seeds it had finished
    [retry] = [t for t in trials if t.user_attrs.get("seedhp.retry_of") == 1]
    assert retry.params == trials[1].params and retry.state == TrialState.COMPLETE
    runs = finished_seed_runs(outputs)
    pairs = Counter((r.data.tags["config_id"], r.data.tags["seed"]) for r in runs)
    assert max(pairs.values()) == 1  # no (configuration, seed) trained twice
    assert not [r for r in all_runs(outputs) if r.info.status == "RUNNING"]


@pytest.mark.slow
def test_two_processes_share_one_study(tmp_path: Path) -> None:
    args = [
        "-m",
        "hydra/sweeper=optuna",
        "hydra.sweeper.n_trials=8",
        "hydra.sweeper.study_name=shared",
        "seed=range(0,1000)",
        "optimizer.lr=tag(log, interval(0.01, 0.3))",
        "model=mlp",
        "train.epochs=40",
    ]
    # two workers on a 2-core machine: one thread each, or their OpenMP threads thrash
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "seedhp", *args],
            cwd=tmp_path,
            env=cli_env({"OMP_NUM_THREADS": "1"}),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    outs = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    outputs = tmp_path / "outputs"
    trials = study_of(outputs, "shared").get_trials()
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    assert len(complete) == 8
    owners = {t.user_attrs["seedhp.owner"] for t in complete}
    assert len(owners) == 2  # both processes ran trials of the one study
    parents = [r for r in all_runs(outputs) if r.data.tags.get("seedhp.kind") == "study"]
    assert len(parents) == 1
    runs = finished_seed_runs(outputs)
    assert len(runs) == len({(t.params["seed"], t.params["optimizer.lr"]) for t in complete})
    assert all(r.data.tags["mlflow.parentRunId"] == parents[0].info.run_id for r in runs)


@pytest.mark.slow  # 11 s: keeps `make test` under 5 minutes; CI runs it
def test_a_trial_whose_process_died_before_it_was_owned_does_not_stall_the_study(
    tmp_path: Path,
) -> None:
    """A process killed between creating a trial and recording itself as its owner leaves a
    RUNNING trial with no owner and no heartbeat: it is failed after the grace period."""
    outputs = tmp_path / "outputs"
    outputs.mkdir()
    storage = f"sqlite:///{outputs}/optuna.db"
    orphan = optuna.create_study(study_name="orphan", storage=storage, direction="maximize")
    orphan.ask()  # RUNNING, never told, never owned
    result = cli(
        [
            *OPTUNA,
            "hydra.sweeper.study_name=orphan",
            "hydra.sweeper.n_trials=2",
            "hydra.sweeper.heartbeat_seconds=1",  # grace: 6 s
            "seed=choice(0,1,2)",
            "report.enabled=false",
            *FAST,
        ],
        cwd=tmp_path,
        timeout=240,
    )
    assert result.returncode == 0, result.stderr
    assert (
        "has had no owner and no heartbeat for 6 s: marked failed" in result.stdout + result.stderr
    )
    trials = study_of(outputs, "orphan").get_trials()
    assert trials[0].state == TrialState.FAIL
    assert len([t for t in trials if t.state == TrialState.COMPLETE]) == 2


def test_tied_trials_are_broken_by_the_reports_rule_not_storage_order() -> None:
    """Trials 0-3 tie; Optuna's best_trial is trial 0 (storage order). seedhp's is the lowest
    seed, then the smallest config_id: trial 3 (seed 1, config b), then trial 2 (seed 1, c)."""
    from optuna.distributions import IntDistribution

    from seedhp.stats.contrast import best_trials

    study = optuna.create_study(direction="maximize")
    dist = {"seed": IntDistribution(0, 99)}
    for seed, cid, value in [
        (7, "a", 1.0),
        (9, "a", 1.0),
        (1, "c", 1.0),
        (1, "b", 1.0),
        (0, "a", 0.5),
    ]:
        study.add_trial(
            optuna.trial.create_trial(
                params={"seed": seed},
                distributions=dist,
                value=value,
                user_attrs={"config_id": cid},
            )
        )

    done = study.get_trials(states=(TrialState.COMPLETE,))
    assert study.best_trial.number == 0
    assert [t.number for t in best_trials(done, True, "seed")] == [3, 2, 0, 1]
    # no seed of its own (averaged): config_id, then trial number
    assert [t.number for t in best_trials(done, True)] == [0, 1, 3, 2]


def _count(db: Path, study: str, state: str) -> int:
    """How many trials of `study` are in `state`, read straight from Optuna's tables."""
    if not db.exists():
        return 0
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=1) as con:
            row = con.execute(
                "SELECT COUNT(*) FROM trials t JOIN studies s ON s.study_id = t.study_id "
                "WHERE s.study_name = ? AND t.state = ?",
                (study, state),
            ).fetchone()
    except sqlite3.Error:
        return 0
    return int(row[0])


TUNED = ["search=tuned", "train.epochs=1", "report.enabled=false"]  # the preset: sampler seed 0


def _configurations(trials: list) -> list[tuple]:  # type: ignore[type-arg]
    return [tuple(sorted((k, str(v)) for k, v in t.params.items())) for t in trials]


@pytest.mark.slow
def test_a_study_resumed_after_sigterm_draws_new_trials(tmp_path: Path) -> None:
    """The preset fixes the sampler's seed; resumed, the study still explores: 12 finished
    trials are 12 configurations. SIGTERM fails the running trial before the process exits."""
    args = [*TUNED, "hydra.sweeper.n_trials=12", "hydra.sweeper.study_name=resumed"]
    db = tmp_path / "outputs" / "optuna.db"
    first = subprocess.Popen(
        [sys.executable, "-m", "seedhp", *args],
        cwd=tmp_path,
        env=cli_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and not (
        _count(db, "resumed", "COMPLETE") >= 4 and _count(db, "resumed", "RUNNING") == 1
    ):
        time.sleep(0.05)
    first.send_signal(signal.SIGTERM)
    _, err = first.communicate(timeout=120)
    assert first.returncode == 130, err
    trials = study_of(tmp_path / "outputs", "resumed").get_trials()
    assert TrialState.RUNNING not in [t.state for t in trials]  # failed on the way out
    assert TrialState.FAIL in [t.state for t in trials], err

    again = cli(args, cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    trials = study_of(tmp_path / "outputs", "resumed").get_trials()
    finished = [t for t in trials if t.state in (TrialState.COMPLETE, TrialState.PRUNED)]
    assert len(finished) == 12
    assert len(set(_configurations(finished))) == 12


@pytest.mark.slow
def test_two_workers_of_a_seeded_study_draw_what_one_process_would(tmp_path: Path) -> None:
    """8 trials (within TPE's 10 random start-up trials) by two workers at once are, trial by
    trial, what one process draws alone: no repeat a single process would not have."""
    args = [*TUNED, "hydra.sweeper.n_trials=8", "hydra.sweeper.study_name=pair"]
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "seedhp", *args],
            cwd=_dir(tmp_path / "shared"),
            env=cli_env({"OMP_NUM_THREADS": "1"}),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    outs = [p.communicate(timeout=600) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    alone = cli(args, cwd=_dir(tmp_path / "alone"))
    assert alone.returncode == 0, alone.stderr
    shared = study_of(tmp_path / "shared" / "outputs", "pair").get_trials()
    single = study_of(tmp_path / "alone" / "outputs", "pair").get_trials()
    assert len({t.user_attrs["seedhp.owner"] for t in shared}) == 2
    assert _configurations(shared) == _configurations(single)


def _dir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path


def test_n_jobs_launches_that_many_averaged_trials_as_one_batch(tmp_path: Path) -> None:
    """hydra.sweeper.n_jobs=2: two trials asked, their 2 x 3 seed-runs launched together
    (packed), each seed-run recorded under its own trial, each trial told its own seeds."""
    result = cli(
        [
            *OPTUNA,
            "hydra.sweeper.seed_strategy=averaged",
            "hydra.sweeper.seeds_per_trial=3",
            "hydra.sweeper.n_trials=4",
            "hydra.sweeper.n_jobs=2",
            "hydra.sweeper.sampler.seed=0",
            "optimizer.lr=tag(log, interval(0.001, 0.3))",
            *FAST,
        ],
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "2 trials a batch" in result.stdout + result.stderr
    study = study_of(tmp_path / "outputs", results_of(tmp_path / "outputs")["study_name"])
    trials = study.get_trials(states=(TrialState.COMPLETE,))
    assert len(trials) == 4
    runs = [r for r in all_runs(tmp_path / "outputs") if r.data.tags.get("seedhp.role") == "trial"]
    by_trial = Counter(r.data.tags["seedhp.trial"] for r in runs)
    assert by_trial == {str(t.number): 3 for t in trials}
    for t in trials:  # each trial's value: the mean of its own three seed-runs
        mine = [r for r in runs if r.data.tags["seedhp.trial"] == str(t.number)]
        assert {r.data.params["optimizer.lr"] for r in mine} == {repr(t.params["optimizer.lr"])}
        scores = t.user_attrs["seed_scores"]
        assert sorted(scores) == ["0", "1", "2"]
        assert t.value == pytest.approx(sum(scores.values()) / 3)
