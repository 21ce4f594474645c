"""seedhp_optuna as a drop-in for hydra-optuna-sweeper: what the peer's own tests observe of its
sweeper, checked against seedhp's (tests/peer_apps holds apps shaped like the peer's examples,
with only the sweeper renamed). By design, `range(a,b)` excludes b as Hydra's basic sweeper and
Python do (the peer includes it for ordered dimensions); a failed job's exception goes to stderr
at every max_failure_rate."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import optuna
import pytest
import yaml
from hydra.core.plugins import Plugins
from hydra.plugins.sweeper import Sweeper
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)

from seedhp.sweep.space import parse_space

APPS = Path(__file__).resolve().parents[1] / "peer_apps"


def run(script: str, *args: str, cwd: Path = APPS) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, script, "-m", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
    )


def results(sweep_dir: Path) -> dict[str, Any]:
    return yaml.safe_load((sweep_dir / "optimization_results.yaml").read_text())


def test_seedhps_sweeper_is_discovered() -> None:
    names = [f"{c.__module__}.{c.__name__}" for c in Plugins.instance().discover(Sweeper)]
    assert "hydra_plugins.seedhp.optuna_sweeper.OptunaSweeper" in names


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        ("key=choice(1,2)", CategoricalDistribution([1, 2])),
        ("key=choice(true, false)", CategoricalDistribution([True, False])),
        ("key=choice('hello', 'world')", CategoricalDistribution(["hello", "world"])),
        ("key=shuffle(range(1,3))", CategoricalDistribution((1, 2))),
        ("key=shuffle(range(-5,5))", CategoricalDistribution(tuple(range(-5, 5)))),
        ("key=shuffle(choice(a,b,c))", CategoricalDistribution(("a", "b", "c"))),
        ("key=range(1,3)", IntDistribution(1, 2)),  # by design: the end is excluded
        ("key=interval(1, 5)", FloatDistribution(1, 5)),
        ("key=int(interval(1, 5))", IntDistribution(1, 5)),
        ("key=tag(log, interval(1, 5))", FloatDistribution(1, 5, log=True)),
        ("key=tag(log, int(interval(1, 5)))", IntDistribution(1, 5, log=True)),
        ("key=range(0.5, 5.5, step=1)", FloatDistribution(0.5, 4.5, step=1)),  # end excluded
    ],
)
def test_each_override_becomes_the_peers_distribution(
    override: str, expected: BaseDistribution
) -> None:
    [dim] = parse_space([override]).dimensions
    if isinstance(expected, CategoricalDistribution):  # shuffle: a set of choices
        assert isinstance(dim.distribution, CategoricalDistribution)
        assert set(dim.distribution.choices) == set(expected.choices)
        assert len(dim.distribution.choices) == len(expected.choices)
    else:
        assert dim.distribution == expected


def test_fixed_values_and_deletions_are_passed_unchanged() -> None:
    space = parse_space(["key1=choice(1,2)", "key2=5", "key3=range(1,3)", "~z", "~w=10"])
    assert space.distributions() == {
        "key1": CategoricalDistribution([1, 2]),
        "key3": IntDistribution(1, 2),
    }
    assert space.fixed == ("key2=5", "~z", "~w=10")


@pytest.mark.parametrize("with_commandline", [True, False])
def test_the_sphere_example_finds_a_good_point_and_writes_the_peers_results(
    tmp_path: Path, with_commandline: bool
) -> None:
    storage = f"sqlite:///{tmp_path}/test.db"
    args = [
        f"hydra.sweep.dir={tmp_path}",
        "hydra.job.chdir=True",
        "hydra.sweeper.n_trials=20",
        "hydra.sweeper.n_jobs=1",
        f"hydra.sweeper.storage={storage}",
        "hydra.sweeper.study_name=test-optuna-example",
        "hydra/sweeper/sampler=tpe",
        "hydra.sweeper.sampler.seed=123",
        "~z",
    ]
    if with_commandline:
        args += ["x=choice(0, 1, 2)", "y=0"]
    done = run("sphere.py", *args)
    assert done.returncode == 0, done.stderr
    assert "minimize objective, given" in done.stdout  # the direction, said at the start
    returns = results(tmp_path)
    best = optuna.load_study(storage=storage, study_name="test-optuna-example").best_trial
    assert returns["name"] == "optuna"
    assert returns["best_params"]["x"] == best.params["x"]
    assert returns["best_value"] == best.value
    if with_commandline:
        assert "y" not in returns["best_params"] and "y" not in best.params
    else:
        assert returns["best_params"]["y"] == best.params["y"]
    # the peer's threshold: the 95th percentile of TPE's best over 1000 sampler seeds
    assert returns["best_value"] <= 2.27
    assert "No seed statistics" in done.stdout  # and no report is written
    assert not list(tmp_path.glob("**/report*.html"))


def test_a_plain_study_imports_neither_torch_nor_mlflow(tmp_path: Path) -> None:
    done = run(
        "sphere.py",
        f"hydra.sweep.dir={tmp_path}",
        "hydra.sweeper.n_trials=2",
        "+check_imports=true",  # the job raises if they were imported
    )
    assert done.returncode == 0, done.stderr
    assert results(tmp_path)["finished_trials"] == 2


@pytest.mark.slow
@pytest.mark.parametrize("n_trials", [10, 1])
def test_the_grid_sampler_walks_the_grid(tmp_path: Path, n_trials: int) -> None:
    done = run(
        "sphere.py",
        "--config-dir=grid-conf",
        "--config-name=test_grid",
        f"hydra.sweep.dir={tmp_path}",
        f"hydra.sweeper.n_trials={n_trials}",
    )
    assert done.returncode == 0, done.stderr
    r = results(tmp_path)
    p = r["best_params"]
    assert p["x"] in (-1, 1) and p["y"] in (-1, 0) and p["z"] in ("foo", "bar")
    assert r["finished_trials"] == min(n_trials, 8)  # 2 x 2 x 2 points: y's range excludes 1
    if n_trials >= 8:
        assert r["best_value"] == 1 and abs(p["x"]) == 1 and p["y"] == 0


def _dominates(a: list[float], b: list[float]) -> bool:
    return all(x <= y for x, y in zip(a, b, strict=True)) and any(
        x < y for x, y in zip(a, b, strict=True)
    )


@pytest.mark.slow
@pytest.mark.parametrize("with_commandline", [True, False])
def test_two_objectives_give_a_pareto_front(tmp_path: Path, with_commandline: bool) -> None:
    args = [
        f"hydra.sweep.dir={tmp_path}",
        "hydra.job.chdir=True",
        "hydra.sweeper.n_trials=20",
        "hydra/sweeper/sampler=random",
        "hydra.sweeper.sampler.seed=123",
    ]
    if with_commandline:
        args += ["x=range(0, 5)", "y=range(0, 3)"]
    done = run("multi_objective.py", *args)
    assert done.returncode == 0, done.stderr
    front = results(tmp_path)["solutions"]
    assert front and "Pareto front (minimize/minimize)" in done.stdout
    steps = {0} if with_commandline else {0, 0.5}
    for a in front:
        assert a["params"]["x"] % 1 in steps and a["params"]["y"] % 1 in steps
        assert not any(_dominates(b["values"], a["values"]) for b in front)


@pytest.mark.slow
def test_the_nsga_samplers_run_several_objectives(tmp_path: Path) -> None:
    for sampler in ("nsgaii", "nsgaiii", "tpe"):
        done = run(
            "multi_objective.py",
            f"hydra.sweep.dir={tmp_path / sampler}",
            f"hydra/sweeper/sampler={sampler}",
            "hydra.sweeper.n_trials=6",
        )
        assert done.returncode == 0, done.stderr
        assert results(tmp_path / sampler)["solutions"]


@pytest.mark.slow
def test_a_custom_search_space_adds_conditional_and_new_keys(tmp_path: Path) -> None:
    done = run(
        "custom_search_space.py",
        f"hydra.sweep.dir={tmp_path}",
        "hydra.job.chdir=True",
        "hydra.sweeper.n_trials=20",
        "hydra/sweeper/sampler=random",
        "hydra.sweeper.sampler.seed=123",
        "max_z_difference_from_x=0.3",
    )
    assert done.returncode == 0, done.stderr
    best = results(tmp_path)["best_params"]
    assert abs(best["x"] - best["z"]) <= 0.3
    assert 0 <= best["+w"] <= 1


@pytest.mark.parametrize("rate", [0.5, 1.0])
def test_max_failure_rate_bounds_a_study_whose_every_job_fails(
    tmp_path: Path, rate: float
) -> None:
    done = run(
        "sphere.py",
        f"hydra.sweep.dir={tmp_path}",
        "hydra.job.chdir=True",
        "hydra.sweeper.n_trials=20",
        "hydra.sweeper.n_jobs=2",
        "hydra/sweeper/sampler=random",
        "hydra.sweeper.sampler.seed=123",
        f"hydra.sweeper.max_failure_rate={rate}",
        "error=true",
    )
    assert "RuntimeError: cfg.error is True" in done.stderr  # every rate: on stderr
    failed = results(tmp_path)["failed_trials"]
    if rate < 1:  # the peer raises the job's error; seedhp stops with one line, exit 1
        assert done.returncode == 1
        assert "seedhp: stopping:" in done.stderr and failed < 20
    else:  # every failure tolerated: the study ends after n_trials trials of any state
        assert done.returncode == 0, done.stderr
        assert failed == 20


def test_a_removed_sampler_is_one_line_saying_what_to_use(tmp_path: Path) -> None:
    done = run("multi_objective.py", f"hydra.sweep.dir={tmp_path}", "hydra/sweeper/sampler=motpe")
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "seedhp: error: hydra.sweeper.sampler.name=motpe: the motpe sampler was removed in "
        "Optuna 4.0: use hydra/sweeper/sampler=tpe (TPESampler handles several objectives)"
    ]


@pytest.mark.slow
def test_storage_null_is_in_memory_so_a_second_run_trains_again(tmp_path: Path) -> None:
    for x in ("choice(0,1)", "choice(2,3)"):  # the second run: another search space
        done = run(
            "sphere.py", f"hydra.sweep.dir={tmp_path}", "hydra.sweeper.n_trials=3", f"x={x}"
        )
        assert done.returncode == 0, done.stderr
        assert done.stdout.count("Launching 1 jobs locally") == 3
        assert results(tmp_path)["best_params"]["x"] in eval(x.replace("choice", ""))


@pytest.mark.slow
def test_n_jobs_launches_batches_of_n_trials(tmp_path: Path) -> None:
    done = run(
        "sphere.py",
        f"hydra.sweep.dir={tmp_path}",
        "hydra.sweeper.n_trials=8",
        "hydra.sweeper.n_jobs=3",
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.count("Launching 3 jobs locally") == 2
    assert done.stdout.count("Launching 2 jobs locally") == 1
    assert "3 trials a batch" in done.stdout
    assert results(tmp_path)["finished_trials"] == 8


@pytest.mark.slow
def test_a_task_returning_none_fails_its_trial_and_the_study_goes_on(tmp_path: Path) -> None:
    done = run(
        "sphere.py",
        f"hydra.sweep.dir={tmp_path}",
        "hydra.sweeper.n_trials=3",
        "hydra.sweeper.max_failure_rate=1.0",
        "+return_none=true",
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr.count("the task returned None") == 3
    assert results(tmp_path)["failed_trials"] == 3


@pytest.mark.slow
def test_every_listed_sampler_is_installed(tmp_path: Path) -> None:
    for sampler in ("cmaes", "gp", "qmc", "random", "bruteforce"):
        args = ["x=range(-2,2)", "y=choice(0,5)"] if sampler == "bruteforce" else []
        done = run(
            "sphere.py",
            f"hydra.sweep.dir={tmp_path / sampler}",
            f"hydra/sweeper/sampler={sampler}",
            "hydra.sweeper.n_trials=3",
            *args,
        )
        assert done.returncode == 0, f"{sampler}: {done.stderr}"
        assert results(tmp_path / sampler)["finished_trials"] == 3


@pytest.mark.slow
def test_an_lht_hparams_search_config_runs_unchanged_but_for_the_sweeper(tmp_path: Path) -> None:
    """lightning-hydra-template's hparams_search/mnist_optuna.yaml names the peer's class in
    hydra.sweeper._target_ and gives the sampler as _target_ with n_startup_trials."""
    conf = tmp_path / "conf"
    conf.mkdir()
    (conf / "config.yaml").write_text(
        (APPS / "conf" / "config.yaml")
        .read_text()
        .replace(
            "    sampler:\n      seed: 123\n",
            "    _target_: hydra_plugins.hydra_optuna_sweeper.optuna_sweeper.OptunaSweeper\n"
            "    sampler:\n      _target_: optuna.samplers.TPESampler\n      seed: 1234\n"
            "      n_startup_trials: 3\n",
        )
    )
    done = run(
        "sphere.py",
        f"--config-path={conf}",
        f"hydra.sweep.dir={tmp_path / 's'}",
        "hydra.sweeper.n_trials=4",
    )
    assert done.returncode == 0, done.stderr
    assert "names hydra-optuna-sweeper's OptunaSweeper" in done.stdout
    assert results(tmp_path / "s")["finished_trials"] == 4


def test_the_peers_class_without_seedhps_settings_is_one_line(tmp_path: Path) -> None:
    conf = tmp_path / "conf"
    conf.mkdir()
    (conf / "config.yaml").write_text(
        "hydra:\n  sweeper:\n"
        "    _target_: hydra_plugins.hydra_optuna_sweeper.optuna_sweeper.OptunaSweeper\n"
        "x: 1\ny: 1\n"
    )
    done = run("sphere.py", f"--config-path={conf}", f"hydra.sweep.dir={tmp_path / 's'}", "x=1,2")
    assert done.returncode == 2
    [line] = done.stderr.strip().splitlines()
    assert "hydra-optuna-sweeper is not installed" in line
    assert "override /hydra/sweeper: seedhp_optuna" in line


@pytest.mark.parametrize(
    ("args", "line"),
    [
        (
            ["+hydra.sweeper.sampler.n_startup_trial=5"],
            "hydra.sweeper.sampler.n_startup_trial=5: not an argument of TPESampler (it takes: ",
        ),
        (
            ["hydra.sweeper.sampler._target_=optuna.samplers.NoSuchSampler"],
            "hydra.sweeper.sampler._target_=optuna.samplers.NoSuchSampler: not an Optuna "
            "sampler class, e.g. optuna.samplers.TPESampler",
        ),
        (
            ["hydra.sweeper.direction=up"],
            "hydra.sweeper.direction=up: allowed: maximize, minimize, or a list of them",
        ),
        (
            ["hydra.sweeper.direction=[minimize,minimize]"],
            "the task's return value=float: a list or tuple of 2 numbers, one per "
            "hydra.sweeper.direction",
        ),
        (
            ["hydra.sweeper.custom_search_space=nosuch.configure"],
            "hydra.sweeper.custom_search_space=nosuch.configure: cannot be imported "
            "(ModuleNotFoundError: No module named 'nosuch')",
        ),
        (
            ["hydra/sweeper/pruner=median"],
            "hydra.sweeper.pruner=median: a plain study (seed_strategy=none) launches each trial",
        ),
        (
            ["hydra.sweeper.seed_strategy=none", "+seed=range(0,3)"],
            "seed=range(0,3): seed_strategy=none searches no seed",
        ),
        (
            ["hydra.sweeper.n_jobs=0"],
            "hydra.sweeper.n_jobs=0: an integer >= 1",
        ),
    ],
)
def test_bad_input_to_a_peer_app_is_one_line(tmp_path: Path, args: list[str], line: str) -> None:
    done = run("sphere.py", f"hydra.sweep.dir={tmp_path}", "hydra.sweeper.n_trials=2", *args)
    assert done.returncode == 2, done.stdout + done.stderr
    [got] = done.stderr.strip().splitlines()
    assert got.startswith(f"seedhp: error: {line}"), got


@pytest.mark.slow
def test_n_jobs_batches_a_seed_tuned_study_of_another_app(tmp_path: Path) -> None:
    """The seed searched (`+seed`: a key the app lacks): a seed-tuned study, two trials a
    batch, each seed-run in MLflow under its own trial."""
    from mlflow import MlflowClient

    done = run(
        "sphere.py",
        f"hydra.sweep.dir={tmp_path / 's'}",
        f"hydra.sweeper.tracking_uri=sqlite:///{tmp_path}/mlflow.db",
        "hydra.sweeper.n_trials=4",
        "hydra.sweeper.n_jobs=2",
        "+seed=range(0,100)",
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "(tuned, minimize objective, tpe sampler, none pruner, 2 trials a batch)" in (
        done.stdout + done.stderr
    )
    client = MlflowClient(f"sqlite:///{tmp_path}/mlflow.db")
    runs = client.search_runs([e.experiment_id for e in client.search_experiments()])
    trials = {
        r.data.tags["seedhp.trial"]: r for r in runs if r.data.tags.get("seedhp.role") == "trial"
    }
    assert sorted(trials) == ["0", "1", "2", "3"]
    for r in trials.values():  # the job's own x and y, recorded with its own trial
        x, y = float(r.data.params["x"]), float(r.data.params["y"])
        assert r.data.metrics["objective"] == x**2 + y**2


@pytest.mark.slow
def test_a_custom_search_space_in_a_seed_tuned_study(tmp_path: Path) -> None:
    done = run(
        "custom_search_space.py",
        f"hydra.sweep.dir={tmp_path / 's'}",
        f"hydra.sweeper.tracking_uri=sqlite:///{tmp_path}/mlflow.db",
        "hydra.sweeper.n_trials=4",
        "+seed=range(0,10)",
    )
    assert done.returncode == 0, done.stderr[-3000:]
    best = results(tmp_path / "s")["best_params"]
    assert abs(best["x"] - best["z"]) <= 0.5 and 0 <= best["+w"] <= 1 and "+seed" in best
