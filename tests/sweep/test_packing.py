"""`hydra/launcher=packed` in-process: seeds of one configuration trained as packs, yet every
seed with its own job directory, JobReturn and MLflow run; packs that run out of memory or fail
are split, and no seed's result depends on the pack it trained in."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
import torch
from hydra import initialize_config_dir
from hydra._internal.callbacks import Callbacks
from hydra.core.global_hydra import GlobalHydra
from hydra.core.utils import JobReturn, JobStatus
from hydra.types import HydraContext, RunMode
from mlflow.entities import ViewType
from omegaconf import OmegaConf

import seedhp.job.run
from hydra_plugins.seedhp.packed_launcher import PackedLauncher
from seedhp.errors import ConfigError
from seedhp.sweep.packing import Packer
from tests.conftest import CONF, all_runs, cli, mlflow_client

BASE = ["model=mlp", "model.hidden=[16]", "train.epochs=2"]
SEEDS = [0, 1, 2, 3, 4]


@pytest.fixture
def launch(tmp_path: Path) -> Iterator[Callable[..., list[JobReturn]]]:
    """launch(jobs, pack_size, where): the packed launcher as Hydra's multirun sets it up."""
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        gh = GlobalHydra.instance()
        assert gh.hydra is not None

        def go(jobs: Sequence[Sequence[str]], pack_size: int | str, where: str) -> Any:
            outputs = tmp_path / where
            master = gh.hydra.compose_config(  # type: ignore[union-attr]
                "config", [f"paths.outputs={outputs}"], run_mode=RunMode.MULTIRUN
            )
            launcher = PackedLauncher(pack_size=pack_size)
            launcher.setup(
                hydra_context=HydraContext(gh.config_loader(), Callbacks(master)),
                task_function=lambda cfg: None,
                config=master,
            )
            # a sweeper hands over each job's overrides in full, the command line's included
            jobs = [[f"paths.outputs={outputs}", *j] for j in jobs]
            return launcher.launch(jobs, initial_job_idx=0), launcher

        yield go


def jobs_for(seeds: Sequence[int], *extra: str) -> list[list[str]]:
    return [[*BASE, *extra, f"seed={s}"] for s in seeds]


def values(returns: Sequence[JobReturn]) -> list[float]:
    return [float(r.return_value) for r in returns]


def test_every_seed_gets_its_own_job_dir_return_and_run(launch, tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    # two configurations, interleaved as a sweeper might hand them over
    jobs = [
        j
        for pair in zip(jobs_for(SEEDS), jobs_for(SEEDS, "optimizer.lr=0.02"), strict=True)
        for j in pair
    ]
    returns, launcher = launch(jobs, 8, "packed")
    assert [r.status for r in returns] == [JobStatus.COMPLETED] * 10
    assert [r.overrides[1:] for r in returns] == jobs  # in job order, not pack order
    assert len(launcher.packer.fits) == 2  # one pack per configuration

    job_dirs = sorted(p for p in (tmp_path / "packed" / "multirun").glob("*/*") if p.is_dir())
    assert [p.name for p in job_dirs] == [str(i) for i in range(10)]
    for i, d in enumerate(job_dirs):
        assert OmegaConf.load(d / ".hydra" / "overrides.yaml")[1:] == jobs[i]
        assert OmegaConf.load(d / ".hydra" / "config.yaml").seed == SEEDS[i // 2]
        hydra = OmegaConf.load(d / ".hydra" / "hydra.yaml").hydra
        assert hydra.job.num == i and list(hydra.overrides.task)[1:] == jobs[i]
        assert hydra.runtime.output_dir == str(d.resolve())
        assert "trained in a pack of 5" in (d / "seedhp.log").read_text()
        # the JobReturn's configs, built when read, are the job's own
        assert returns[i].cfg.seed == SEEDS[i // 2] and "hydra" not in returns[i].cfg
        assert returns[i].hydra_cfg.hydra.job.num == i
    # stderr is no terminal here: one plain progress line per pack epoch
    lines = [x for x in capsys.readouterr().err.splitlines() if x.startswith("seedhp: ")]
    assert len(lines) == 2 * 2 and "pack of 5: epoch 2/2, 5 alive" in lines[1]
    assert lines[-1].startswith("seedhp: 5/10 seeds")

    runs = all_runs(tmp_path / "packed")
    assert len(runs) == 10
    by_dir = {r.data.tags["seedhp.job_dir"]: r for r in runs}
    for i, d in enumerate(job_dirs):
        run = by_dir[str(d)]
        assert run.info.status == "FINISHED" and run.data.tags["seedhp.pack_size"] == "5"
        assert run.data.tags["seed"] == str(SEEDS[i // 2])
        assert run.data.metrics["val_acc"] == returns[i].return_value
        assert (
            len(mlflow_client(tmp_path / "packed").get_metric_history(run.info.run_id, "val_acc"))
            == 2
        )

    # each seed's result is the one it gets alone, to the last bit (exact kernels on CPU)
    alone, _ = launch(jobs, 1, "alone")
    assert values(alone) == values(returns)
    assert len(set(values(returns))) > 2  # the seeds do differ


def test_a_pack_that_runs_out_of_memory_is_split_and_retried(  # type: ignore[no-untyped-def]
    launch, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    real, sizes = seedhp.job.run.train, []

    def small_device(*args: Any, **kwargs: Any) -> Any:
        sizes.append(len(args[3]))
        if len(args[3]) > 2:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return real(*args, **kwargs)

    monkeypatch.setattr(seedhp.job.run, "train", small_device)
    returns, launcher = launch(jobs_for(SEEDS) + jobs_for([5, 6, 7]), 8, "oom")
    # 8 -> 4 + 4 -> 2 + 2 + 2 + 2; the size that fitted is then kept for the configuration
    assert sizes == [8, 4, 2, 2, 4, 2, 2]
    assert [r.status for r in returns] == [JobStatus.COMPLETED] * 8
    assert list(launcher.packer.fits.values()) == [2]

    client = mlflow_client(tmp_path / "oom")
    active = all_runs(tmp_path / "oom")
    assert sorted(int(r.data.tags["seed"]) for r in active) == list(range(8))
    assert all(r.info.status == "FINISHED" for r in active)
    [exp] = [e for e in client.search_experiments() if e.name == "seedhp"]
    deleted = client.search_runs([exp.experiment_id], run_view_type=ViewType.DELETED_ONLY)
    assert len(deleted) == 8 + 4 + 4  # the packs that did not fit, set aside, not erased

    monkeypatch.setattr(seedhp.job.run, "train", real)
    alone, _ = launch(jobs_for(SEEDS) + jobs_for([5, 6, 7]), 1, "alone")
    assert values(alone) == values(returns)


def test_a_seed_that_fails_in_a_pack_fails_alone(  # type: ignore[no-untyped-def]
    launch, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    real = seedhp.job.run.train

    def seed_3_breaks(*args: Any, **kwargs: Any) -> Any:
        if 3 in [s.seed for s in args[3]]:
            raise RuntimeError("planted failure for seed 3")
        return real(*args, **kwargs)

    monkeypatch.setattr(seedhp.job.run, "train", seed_3_breaks)
    returns, _ = launch(jobs_for(SEEDS), 8, "failing")
    status = {s: r.status.name for s, r in zip(SEEDS, returns, strict=True)}
    assert status == {0: "COMPLETED", 1: "COMPLETED", 2: "COMPLETED", 3: "FAILED", 4: "COMPLETED"}
    assert "planted failure" in str(returns[3]._return_value)
    runs = {int(r.data.tags["seed"]): r for r in all_runs(tmp_path / "failing")}
    assert sorted(runs) == SEEDS
    assert runs[3].info.status == "FAILED" and runs[3].data.tags["seedhp.status"] == "failed"
    assert "planted failure" in runs[3].data.tags["seedhp.error"]
    assert all(runs[s].data.tags["seedhp.status"] == "finished" for s in (0, 1, 2, 4))

    monkeypatch.setattr(seedhp.job.run, "train", real)
    alone, _ = launch(jobs_for([0, 1, 2, 4]), 1, "alone")
    assert values(alone) == [float(returns[i].return_value) for i in (0, 1, 2, 4)]


def test_a_configuration_that_only_trains_alone_is_split_once_then_not_packed(  # type: ignore[no-untyped-def]
    launch, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    real, sizes = seedhp.job.run.train, []

    def alone_only(*args: Any, **kwargs: Any) -> Any:
        sizes.append(len(args[3]))
        if len(args[3]) > 1:
            raise RuntimeError("this module cannot be packed")
        return real(*args, **kwargs)

    monkeypatch.setattr(seedhp.job.run, "train", alone_only)
    returns, launcher = launch(jobs_for(range(8)), 4, "alone_only")
    # the first pack of 4 fails, its seeds train alone; the rest are never packed again
    assert sizes == [4] + [1] * 8
    assert [r.status for r in returns] == [JobStatus.COMPLETED] * 8
    assert list(launcher.packer.fits.values()) == [1]
    client = mlflow_client(tmp_path / "alone_only")
    [exp] = [e for e in client.search_experiments() if e.name == "seedhp"]
    deleted = client.search_runs([exp.experiment_id], run_view_type=ViewType.DELETED_ONLY)
    assert len(deleted) == 4  # one abandoned attempt, not one per split
    assert sorted(int(r.data.tags["seed"]) for r in all_runs(tmp_path / "alone_only")) == list(
        range(8)
    )


def test_pack_size_is_checked() -> None:
    for bad in (0, -3, "big", 2.5):
        with pytest.raises(ConfigError, match=r"hydra\.launcher\.pack_size"):
            Packer(bad)  # type: ignore[arg-type]
    assert Packer("auto").size(("x",)) == 32  # on CPU


@pytest.mark.slow
def test_an_averaged_study_trains_each_trial_as_one_pack(tmp_path: Path) -> None:
    """The averaged strategy hands a trial's seeds to the launcher at once: one pack per trial,
    and the trial values are those of the same study run one seed at a time."""
    args = [
        "-m",
        "hydra/sweeper=optuna",
        "hydra.sweeper.seed_strategy=averaged",
        "hydra.sweeper.seeds_per_trial=4",
        "hydra.sweeper.seed_pool=10",
        "hydra.sweeper.n_trials=2",
        "hydra.sweeper.sampler.seed=0",
        "optimizer.lr=interval(0.01,0.2)",
        *BASE,
    ]
    studies = {}
    for launcher in ("packed", "seedhp"):
        (tmp_path / launcher).mkdir()
        result = cli([*args, f"hydra/launcher={launcher}"], cwd=tmp_path / launcher)
        assert result.returncode == 0, result.stderr
        outputs = tmp_path / launcher / "outputs"
        [path] = outputs.glob("multirun/*/optimization_results.yaml")
        studies[launcher] = OmegaConf.load(path)
        runs = [r for r in all_runs(outputs) if "seed" in r.data.tags]
        assert len(runs) == 8
        packs = {r.data.tags["seedhp.pack_size"] for r in runs}
        assert packs == ({"4"} if launcher == "packed" else {"1"})
        assert {r.data.tags["seedhp.status"] for r in runs} == {"finished"}
    packed, alone = studies["packed"], studies["seedhp"]
    assert json.dumps(OmegaConf.to_container(packed.best_params)) == json.dumps(
        OmegaConf.to_container(alone.best_params)
    )
    assert packed.best_value == alone.best_value


def test_hydra_yaml_emitted_in_parts_loads_as_the_whole_node() -> None:
    import yaml

    from seedhp.sweep.packing import Group, _hydra_yaml, _yaml

    node = {
        "run": {"dir": "outputs/x"},
        "job": {"num": 3, "override_dirname": "a=1,seed=3", "config": {"x": [1, 2]}},
        "help": {"template": "multi\n\nline: text\n" + "long " * 40},
        "overrides": {"task": ["seed=3", "a=1"]},
        "runtime": {"output_dir": "/tmp/x/3", "choices": {"model": "mlp"}},
        "mode": None,
    }
    group = Group(None, {}, node, [])  # type: ignore[arg-type]
    text = _hydra_yaml(group, node)
    assert yaml.safe_load(text) == yaml.safe_load(_yaml({"hydra": node})) == {"hydra": node}
    assert set(group.hydra_text) == {"run", "help", "mode"}  # emitted once per group


@pytest.mark.parametrize("draw_test", [False, True])
def test_seeds_on_their_own_splits_share_a_pack_each_on_its_own_split(  # type: ignore[no-untyped-def]
    launch, tmp_path: Path, draw_test: bool
) -> None:
    # seeds.split=null: each seed validates (and with data.draw_test tests) on its own split;
    # they still train as one pack, each on exactly the parts it trains on alone
    extra = ("seeds.split=null", *(("++data.draw_test=true",) if draw_test else ()))
    jobs = jobs_for(SEEDS[:3], *extra, "tracking.save_predictions=true")
    packed, _ = launch(jobs, 8, "packed")
    alone, _ = launch(jobs, 1, "alone")
    assert values(packed) == values(alone)
    runs = {w: all_runs(tmp_path / w) for w in ("packed", "alone")}
    assert {r.data.tags["seedhp.pack_size"] for r in runs["packed"]} == {"3"}

    def record(where: str, run: Any) -> tuple[Any, ...]:
        client = mlflow_client(tmp_path / where)
        blob = client.download_artifacts(run.info.run_id, "test_predictions.json", str(tmp_path))
        return (run.data.tags["seed"], run.data.metrics, json.loads(Path(blob).read_text()))

    by_seed = {w: sorted((record(w, r) for r in rs), key=lambda t: t[0]) for w, rs in runs.items()}
    for (seed, m, preds), (_, m1, preds1) in zip(by_seed["packed"], by_seed["alone"], strict=True):
        same = {k: m[k] for k in ("val_acc", "val_loss", "test_acc", "test_loss", "train_loss")}
        assert same == {k: m1[k] for k in same}, seed
        assert preds == preds1, seed  # its own test part's labels, too
    labels = {json.dumps(p["labels"]) for _, _, p in by_seed["packed"]}
    assert len(labels) == (3 if draw_test else 1)
    pinned, _ = launch(jobs_for(SEEDS[:3]), 1, "pinned")  # the default: one split for all
    assert values(packed) != values(pinned)
