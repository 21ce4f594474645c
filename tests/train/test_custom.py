"""Your own model and data: any nn.Module trains, and a seed's result never depends on its pack.

Each module of tests/mixers.py mixes features in a way the hand-written pack layers would turn
into mixing seeds (or holds a layer they do not implement); the probe must move it to an engine
under which seed 0 gives the same alone and in a pack of 4.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from seedhp.job.run import _ENGINES, JobInfo, run_pack
from seedhp.train.probe import PROBE_RTOL
from tests.conftest import ROOT, all_runs, cli, compose_config

DATA = [
    "data=synthetic",
    "data.source.shape=[1,8,8]",
    "data.source.n_train=160",
    "data.source.n_test=64",
    "data.val_size=32",
    "train.batch_size=32",
    "train.epochs=2",
    "train.objective=val_loss",  # a loss: finer than an accuracy on 32 examples
]


def seed0(
    model: str, seeds: list[int], outputs: Path, extra: tuple[str, ...] | list[str] = ()
) -> tuple[float, str]:
    """Seed 0's objective trained with `seeds` as one pack, and the engine it used."""
    overrides = ["model=custom", f"model._target_=tests.mixers.{model}", *DATA, *extra]
    cfgs = [compose_config([*overrides, f"seed={s}"], outputs) for s in seeds]
    values = run_pack(cfgs, [JobInfo(multirun=True)] * len(cfgs))
    [run] = [
        r
        for r in all_runs(outputs)
        if r.data.tags["seed"] == "0" and r.data.tags["seedhp.pack_size"] == str(len(seeds))
    ]
    value = values[seeds.index(0)]
    assert isinstance(value, float)
    return value, run.data.tags["seedhp.pack_engine"]


MIXERS = {  # module -> the engine under train.kernels=fast (on the CPU's exact kernels: none)
    "Normalize": "vmap",  # F.normalize(h, dim=1)
    "Softmax": "vmap",  # softmax over features
    "MeanCentre": "vmap",  # h - h.mean(1)
    "LayerNormed": "vmap",  # a layer the pack does not implement
    "GroupNormed": "vmap",
    "Attention": "vmap",
    "Embedded": "vmap",
    "FunctionalDropout": "none",  # randomness in forward: only one seed at a time
    "Noise": "none",  # torch.randn_like in forward
}


def _table(default: set[str]) -> list[object]:
    """The whole table in `make test-all`; `default` of it in `make test` too."""
    return [m if m in default else pytest.param(m, marks=pytest.mark.slow) for m in MIXERS]


@pytest.mark.parametrize("model", _table({"Normalize", "LayerNormed", "Noise"}))
def test_a_seed_gives_the_same_alone_and_in_a_pack_of_4(model: str, tmp_path: Path) -> None:
    """Bitwise, on the CPU's exact kernels: the probe rejects the layers engine, and only the
    none engine promises every position of a pack."""
    _ENGINES.clear()  # the probe runs afresh, as in a new process
    alone, engine = seed0(model, [0], tmp_path)
    packed, engine4 = seed0(model, [1, 2, 0, 3], tmp_path)
    assert engine == engine4 == "none"
    assert alone == packed


@pytest.mark.parametrize("model", _table({"GroupNormed"}))
def test_with_fast_kernels_the_generic_engine_agrees_to_rounding(
    model: str, tmp_path: Path
) -> None:
    _ENGINES.clear()
    fast = ["train.kernels=fast"]
    alone, engine = seed0(model, [0], tmp_path, fast)
    packed, engine4 = seed0(model, [1, 2, 0, 3], tmp_path, fast)
    assert engine == engine4 == MIXERS[model]
    assert packed == pytest.approx(alone, rel=PROBE_RTOL)


@pytest.mark.parametrize(
    ("model", "seeds", "extra"),
    [
        # evaluation batches of 20 and a short last one of 12 (the 32 validation examples)
        ("ShortBatchMixer", [1, 2, 0, 3], ["train.eval_batch_size=20"]),
        # mixes only in packs of 5 or more: the probe's pack of 8 sees it
        ("WideMixer", [1, 2, 0], []),
    ],
)
def test_the_probe_sees_every_shape_the_run_computes(
    model: str, seeds: list[int], extra: list[str], tmp_path: Path
) -> None:
    _ENGINES.clear()
    alone, engine = seed0(model, [0], tmp_path, extra)
    packed, engine3 = seed0(model, seeds, tmp_path, extra)
    assert engine == engine3 == "none"
    assert alone == packed


def test_bundled_models_keep_the_layers_engine(tmp_path: Path) -> None:
    _ENGINES.clear()
    _, engine = seed0("_Flat", [0], tmp_path)  # Linear and ReLU only: what the layers know
    assert engine == "layers"


def test_forcing_an_engine(tmp_path: Path) -> None:
    """train.pack_engine=none is always correct, at any pack size."""
    _ENGINES.clear()
    cfgs = [
        compose_config(
            ["model=mlp", "train.pack_engine=none", *DATA, f"seed={s}"], tmp_path / str(len(s))
        )
        for s in ("0", "10")
    ]
    [alone] = run_pack(cfgs[:1], [JobInfo(multirun=True)])
    packed = run_pack(
        [
            compose_config(
                ["model=mlp", "train.pack_engine=none", *DATA, f"seed={s}"], tmp_path / "p"
            )
            for s in (5, 0)
        ],
        [JobInfo(multirun=True)] * 2,
    )
    assert packed[1] == alone
    assert {r.data.tags["seedhp.pack_engine"] for r in all_runs(tmp_path / "p")} == {"none"}


def test_the_example_model_and_data_from_the_command_line(tmp_path: Path) -> None:
    """The README's command (examples/own_model.py): a custom model on a custom loader."""
    result = cli(
        [
            "-m",
            "seed=range(0,4)",
            "model=custom",
            "model._target_=examples.own_model.NormedMLP",
            "data=custom",
            "data.source._target_=examples.own_model.breast_cancer",
            "train.epochs=3",
            "report.enabled=false",
        ],
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    label = "examples.own_model.NormedMLP/examples.own_model.breast_cancer/sgd/cosine"
    assert label in result.stdout  # the summary names the targets, not cnn/digits
    runs = [r for r in all_runs(tmp_path / "outputs") if "seed" in r.data.tags]
    assert len(runs) == 4
    for r in runs:
        assert r.data.tags["seedhp.model"] == "examples.own_model.NormedMLP"
        assert r.data.tags["seedhp.data"] == "examples.own_model.breast_cancer"
        assert r.data.tags["seedhp.label"].startswith(label)
        assert r.data.tags["seedhp.pack_engine"] in ("vmap", "none")
        assert r.data.params["split.n_test"] == "143" and r.data.metrics["test_acc"] > 0.8
    assert (ROOT / "examples" / "own_model.py").is_file()
