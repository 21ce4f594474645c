"""End to end through `python -m seedhp`, as a user runs it."""

from __future__ import annotations

import functools
import json
import subprocess
import sys
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from seedhp.__main__ import entry
from seedhp.train.models import build_seeded
from seedhp.train.seeds import derive_seeds
from tests.conftest import ROOT, all_runs, cli, cli_env, mlflow_client
from tests.flaky import FlakyMLP

OPT = ["-m", "hydra/sweeper=optuna"]
AVG = [*OPT, "hydra.sweeper.seed_strategy=averaged"]
BAD_INPUTS = {
    "unknown option": (
        ["model=foo"],
        "model=foo: allowed: airbench, cnn, custom, mlp, resnet18, resnet9",
    ),
    "unknown key": (["train.epoch=5"], "train.epoch=5: no such key; did you mean train.epochs?"),
    "negative seed": (["seed=-1"], "seed=-1: a seed must be an integer >= 0"),
    "non-integer seed": (["seed=1.5"], "seed=1.5: a seed must be an integer >= 0"),
    "empty seed range": (["-m", "seed=range(0,0)"], "seed=range(0,0): the sweep is empty"),
    "bad seed in a sweep": (["-m", "seed=3,-2"], "seed=-2: a seed must be an integer >= 0"),
    "negative lr": (["optimizer.lr=-0.1"], "optimizer.lr=-0.1: a number > 0.0"),
    "zero lr in a sweep": (
        ["-m", "seed=range(0,3)", "optimizer.lr=0"],
        "optimizer.lr=0: a number > 0.0",
    ),
    "zero epochs": (["train.epochs=0"], "train.epochs=0: an integer >= 1"),
    "batch too large": (["train.batch_size=5000"], "train.batch_size=5000: must be <= the 1150"),
    "unknown device": (["train.device=tpu"], "train.device=tpu: allowed: auto, cpu, cuda"),
    "cuda without gpu": (["train.device=cuda"], "train.device=cuda: no CUDA GPU"),
    "misspelled objective": (
        ["train.objective=val_accuracy"],
        "train.objective=val_accuracy: not a metric",
    ),
    "missing data set": (["data=mnist", "paths.data=nodata"], "data.root="),
    "unreachable tracking": (
        ["tracking.uri=http://127.0.0.1:9"],
        "tracking.uri=http://127.0.0.1:9: no MLflow",
    ),
    "tracking store under ~": (
        ['tracking.uri="sqlite:///~/runs/mlflow.db"'],
        "tracking.uri=sqlite:///~/runs/mlflow.db: `~` is not expanded in an SQLite URI",
    ),
    "unknown sampler": (
        [*OPT, "hydra/sweeper/sampler=foo"],
        "hydra/sweeper/sampler=foo: allowed: tpe, random",
    ),
    "unknown sampler name": (
        [*OPT, "hydra.sweeper.sampler.name=foo", "seed=range(0,3)"],
        "hydra.sweeper.sampler.name=foo: allowed: tpe",
    ),
    "unknown pruner": (
        [*OPT, "hydra/sweeper/pruner=bar"],
        "hydra/sweeper/pruner=bar: allowed: none, median",
    ),
    "empty seed pool": (
        [*AVG, "hydra.sweeper.seed_pool=[]"],
        "hydra.sweeper.seed_pool=[]: the seed pool is empty",
    ),
    "non-integer seed pool": (
        [*AVG, "hydra.sweeper.seed_pool=[0.5]"],
        "hydra.sweeper.seed_pool=0.5: a seed must be an integer >= 0",
    ),
    "seeds_per_trial beyond the pool": (
        [*AVG, "hydra.sweeper.seed_pool=3", "hydra.sweeper.seeds_per_trial=4"],
        "hydra.sweeper.seeds_per_trial=4: an integer from 1 to the 3 seeds",
    ),
    "averaged with seed searched": (
        [*AVG, "seed=range(0,5)"],
        "seed=range(0,5): seed_strategy=averaged draws",
    ),
    "tuned without seed": (
        [*OPT, "optimizer.lr=interval(0.01,0.1)"],
        "seed=0: seed_strategy=tuned searches the seed",
    ),
    "parallel trials": (
        [*OPT, "seed=range(0,3)", "hydra.sweeper.n_jobs=4", "hydra/sweeper/pruner=median"],
        "hydra.sweeper.n_jobs=4: the median pruner stops a seed-run between epochs, which needs "
        "one trial at a time (n_jobs=1)",
    ),
    "malformed storage": (
        [*OPT, "seed=range(0,3)", "hydra.sweeper.storage=foo://x"],
        "hydra.sweeper.storage=foo://x: cannot open this Optuna storage",
    ),
    "storage under ~": (
        [*OPT, "seed=range(0,3)", 'hydra.sweeper.storage="sqlite:///~/optuna.db"'],
        "hydra.sweeper.storage=sqlite:///~/optuna.db: `~` is not expanded in an SQLite URI",
    ),
    "unreachable storage": (
        [*OPT, "seed=range(0,3)", "hydra.sweeper.storage=postgresql://me:secret@127.0.0.1:9/x"],
        "hydra.sweeper.storage=postgresql://me:***@127.0.0.1:9/x: cannot open",
    ),
}


BAD_INPUTS.update(
    {
        "unknown sweeper key": (
            [*OPT, "hydra.sweeper.n_trial=3"],
            "hydra.sweeper.n_trial=3: no such key; did you mean hydra.sweeper.n_trials?",
        ),
        "sampler given as a value": (
            [*OPT, "hydra.sweeper.sampler=nosuch"],
            "hydra.sweeper.sampler=nosuch: allowed: tpe, random",
        ),
        "sweeper setting of the wrong type": (
            [*OPT, "hydra.sweeper.n_trials=abc"],
            "hydra.sweeper.n_trials=abc: Value 'abc' of type 'str' could not be converted",
        ),
        "bad pack size": (
            ["-m", "seed=0,1", "hydra.launcher.pack_size=0"],
            "hydra.launcher.pack_size=0",
        ),
        "empty cnn widths": (["model.widths=[]"], "model.widths=[]: a non-empty list"),
        "empty mlp hidden": (
            ["model=mlp", "model.hidden=[]"],
            "model.hidden=[]: a non-empty list",
        ),
        # your own model and data (tests/mixers.py)
        "custom model without a target": (
            ["model=custom"],
            "model._target_=???: model=custom needs your model",
        ),
        "model that cannot be found": (
            ["model=custom", "model._target_=nosuch.Net"],
            "model._target_=nosuch.Net: cannot be used: Error locating target 'nosuch.Net'",
        ),
        "model with another signature": (
            ["model=custom", "model._target_=tests.mixers.NeedsDepth"],
            "model._target_=tests.mixers.NeedsDepth: cannot be called as seedhp calls a model "
            "(missing a required argument: 'depth')",
        ),
        "model that is not a module": (
            ["model=custom", "model._target_=tests.mixers.not_a_module"],
            "model._target_=tests.mixers.not_a_module: returned a str, not a torch.nn.Module",
        ),
        "model with the wrong logits": (
            ["model=custom", "model._target_=tests.mixers.WrongOutput"],
            "model._target_=tests.mixers.WrongOutput: returns (2, 3) for a batch of shape "
            "(2, 1, 8, 8); expected logits of shape (2, 10): one score per class",
        ),
        "custom data without a target": (
            ["data=custom"],
            "data.source._target_=???: data=custom needs your loader",
        ),
        "examples with five axes": (
            ["data=custom", "data.source._target_=tests.mixers.flat_blocks"],
            "data.source._target_=tests.mixers.flat_blocks: its train x has shape "
            "(10, 1, 2, 2, 2, 2): examples must be (C, H, W), (H, W) or (F,)",
        ),
        "float labels": (
            ["data=custom", "data.source._target_=tests.mixers.float_labels"],
            "data.source._target_=tests.mixers.float_labels: its train y has shape (10,) and "
            "dtype torch.float32: expected (10,) integer class labels",
        ),
        "a seed that is not a number": (["seed=abc"], "seed=abc: a seed must be an integer"),
        "a null seed": (["seed=null"], "seed=None: a seed must be an integer"),
        "a list as the seed": (["seed=[1,2]"], "seed=[1, 2]: a seed must be an integer"),
        "a hundred million seeds": (
            ["-m", "seed=range(0,100000000)"],
            "seed=range(0,100000000): 100,000,000 values: one sweep takes at most 100,000 jobs",
        ),
        "a grid beyond the bound": (
            ["-m", "seed=range(0,1000)", "optimizer.lr=range(0.001,1,0.001)"],
            "seed x optimizer.lr=1000 x 999: 999,000 jobs: one sweep takes at most 100,000",
        ),
        "a study's seeds beyond the bound": (
            [*OPT, "seed=range(0,100000000)"],
            "seed=range(0,100000000): 100,000,000 values",
        ),
        "a loader that returns one array": (
            ["data=custom", "data.source._target_=tests.mixers.one_array"],
            "data.source._target_=tests.mixers.one_array: returned a Tensor; a data loader "
            "returns (train, test)",
        ),
    }
)
# Each promise end to end in a process of its own, as a user meets it: a mistake the pre-flight
# finds, one a sweep finds in its second configuration, one in the tracking store.
IN_A_PROCESS = ("unknown key", "zero lr in a sweep", "unreachable tracking")


@pytest.mark.parametrize("name", list(BAD_INPUTS))
def test_bad_input_fails_before_training_in_one_line(
    name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """In this process, through the same entry point as `python -m seedhp`."""
    args, expected = BAD_INPUTS[name]
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exit_:
        entry(list(args))
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if line.startswith("seedhp: error: ")]
    assert exit_.value.code == 2, err
    assert len(errors) == 1 and errors[0].startswith(f"seedhp: error: {expected}"), err
    assert "secret" not in err
    assert all_runs(tmp_path / "outputs") == []  # nothing trained, nothing recorded


def test_bad_input_in_a_process_of_its_own(tmp_path_factory: pytest.TempPathFactory) -> None:
    procs = {}
    for name in IN_A_PROCESS:
        cwd = tmp_path_factory.mktemp("bad")
        procs[name] = (
            cwd,
            subprocess.Popen(
                [sys.executable, "-m", "seedhp", *BAD_INPUTS[name][0]],
                cwd=cwd,
                text=True,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                env=cli_env(),
            ),
        )
    for name, (cwd, p) in procs.items():
        _, err = p.communicate(timeout=300)
        assert p.returncode == 2, err
        assert err.strip() == f"seedhp: error: {err.strip().split(': error: ', 1)[1]}"
        assert err.strip().startswith(f"seedhp: error: {BAD_INPUTS[name][1]}"), err
        assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
        assert all_runs(cwd / "outputs") == []


def test_seed_sweep_end_to_end(tmp_path: Path) -> None:
    result = cli(["-m", "seed=range(0,20)", "train.epochs=2"], cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    log = result.stdout + result.stderr
    assert "job  1/20" in log and "job 20/20" in log
    assert "Browse: make ui" in result.stdout
    # MLflow 3.17's UI opens on GenAI unless the address asks for the training-runs view
    assert "/#/experiments/1?workflowType=machine_learning" in result.stdout

    outputs = tmp_path / "outputs"
    runs = all_runs(outputs)
    [parent] = [r for r in runs if r.data.tags.get("seedhp.kind") == "sweep"]
    children = [r for r in runs if r is not parent]
    assert len(children) == 20 and parent.info.status == "FINISHED"
    pid = parent.info.run_id
    assert all(r.data.tags["mlflow.parentRunId"] == pid for r in children)
    assert all(
        r.data.tags["seedhp.sweep"] == pid and r.info.status == "FINISHED" for r in children
    )
    assert sorted(int(r.data.tags["seed"]) for r in children) == list(range(20))
    assert len({r.data.tags["config_id"] for r in children}) == 1
    child = children[0]
    assert child.data.params["train.epochs"] == "2" and "seed_stream.init" in child.data.params
    client = mlflow_client(outputs)
    steps = [m.step for m in client.get_metric_history(child.info.run_id, "train_loss")]
    assert steps == [1, 2]
    assert "config.yaml" in {a.path for a in client.list_artifacts(child.info.run_id)}

    # the summary agrees with the runs it summarises
    values = [r.data.metrics["val_acc"] for r in children]
    assert parent.data.metrics["val_acc_mean"] == pytest.approx(sum(values) / 20)
    assert parent.data.metrics["val_acc_gap"] == pytest.approx(max(values) - min(values))
    sweep_dir = Path(parent.data.tags["seedhp.sweep_dir"])
    summary = json.loads((sweep_dir / "summary.json").read_text())
    [row] = summary["configurations"]
    assert row["n"] == 20 and row["max"] == max(values)
    best = next(r for r in children if int(r.data.tags["seed"]) == row["best_seed"])
    assert best.data.metrics["val_acc"] == max(values)
    assert {"summary.json", "summary.txt"} <= {a.path for a in client.list_artifacts(pid)}
    for job in range(20):  # one Hydra job directory per seed, with its own resolved config
        assert OmegaConf.load(sweep_dir / str(job) / ".hydra" / "config.yaml").seed == job


def test_same_seed_same_bits_across_processes_and_after_other_jobs(tmp_path: Path) -> None:
    args = ["train.epochs=3", "model.dropout=0.2", "data.augment=crop", "data.crop_padding=1"]
    alone = cli(
        ["seed=3", *args],
        cwd=tmp_path / "a" if (tmp_path / "a").mkdir() is None else tmp_path,
        env={"PYTHONHASHSEED": "1"},
    )
    after = cli(
        ["-m", "seed=4,3", *args],
        cwd=tmp_path / "b" if (tmp_path / "b").mkdir() is None else tmp_path,
        env={"PYTHONHASHSEED": "2"},
    )
    assert alone.returncode == 0 and after.returncode == 0, alone.stderr + after.stderr

    def seed3(where: str) -> dict[str, list[float]]:
        outputs = tmp_path / where / "outputs"
        [run] = [r for r in all_runs(outputs) if r.data.tags.get("seed") == "3"]
        client = mlflow_client(outputs)
        curves = {
            m: [x.value for x in client.get_metric_history(run.info.run_id, m)]
            for m in ("train_loss", "val_loss", "val_acc")
        }
        return {**curves, "test_loss": [run.data.metrics["test_loss"]]}

    assert seed3("a") == seed3("b")


def test_failing_seed_runs_do_not_take_the_sweep_down(tmp_path: Path) -> None:
    """Failing seeds fail alone (here one job per seed: the planted failure is in the model's
    forward, which a pack never calls; tests/sweep/test_packing.py plants one inside a pack)."""
    flaky = functools.partial(FlakyMLP, hidden=[16])
    doomed = {
        s for s in range(6) if build_seeded(flaky, (1, 8, 8), 10, derive_seeds(s).init).doomed
    }
    assert 0 < len(doomed) < 6  # the plant must hit some seeds and spare others
    result = cli(
        [
            "-m",
            "seed=range(0,6)",
            "model=mlp",
            "model._target_=tests.flaky.FlakyMLP",
            "~model.dropout",
            "model.hidden=[16]",
            "optimizer.lr=0.05,1e6",
            "train.epochs=3",
            "hydra/launcher=seedhp",
        ],
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert f"{2 * len(doomed)} seed-run(s) failed" in result.stdout

    runs = all_runs(tmp_path / "outputs")
    [parent] = [r for r in runs if r.data.tags.get("seedhp.kind") == "sweep"]
    children = [r for r in runs if r is not parent]
    assert len(children) == 12 and parent.info.status == "FINISHED"
    for r in children:
        seed, lr = int(r.data.tags["seed"]), r.data.params["optimizer.lr"]
        status = r.data.tags["seedhp.status"]
        if seed in doomed:
            assert status == "failed" and "planted failure" in r.data.tags["seedhp.error"]
            assert r.info.status == "FAILED"
        elif lr == "0.05":
            assert status == "finished" and r.info.status == "FINISHED"
        else:
            assert status == "diverged" and r.data.metrics["diverged"] == 1.0
            assert r.info.status == "FAILED"
    summary = json.loads(Path(parent.data.tags["seedhp.sweep_dir"], "summary.json").read_text())
    by_n = sorted((c["n"], c["n_diverged"], c["n_failed"]) for c in summary["configurations"])
    ok = 6 - len(doomed)
    assert by_n == [(0, ok, len(doomed)), (ok, 0, len(doomed))]


def test_package_runs_from_any_directory(tmp_path: Path) -> None:
    assert (ROOT / "conf" / "config.yaml").is_file()
    result = cli(["--cfg", "job"], cwd=tmp_path)
    assert result.returncode == 0 and "seed: 0" in result.stdout
