"""A store edited by someone else: seedhp reseed and report run no code the user did not name,
and write nowhere but where they are told to."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tests.conftest import all_runs, cli, mlflow_client
from tests.report.test_report import seedhp

TINY = [
    "data=synthetic",
    "data.source.shape=[1,4,4]",
    "data.source.n_train=120",
    "data.source.n_test=40",
    "data.val_size=40",
    "train.epochs=1",
    "train.batch_size=16",
    "report.enabled=false",
]


def _sweep(
    cwd: Path, model: tuple[str, ...] = ("model=mlp", "model.hidden=[8]")
) -> tuple[str, list]:  # type: ignore[type-arg]
    done = cli(["-m", "seed=0,1", *TINY, *model], cwd=cwd)
    assert done.returncode == 0, done.stderr
    runs = all_runs(cwd / "outputs")
    [parent] = [r for r in runs if r.data.tags.get("seedhp.kind") == "sweep"]
    return parent.info.run_id, [r for r in runs if "config_id" in r.data.tags]


def _one_error_line(done, *starts: str) -> None:  # type: ignore[no-untyped-def]
    assert done.returncode == 2, (done.stdout, done.stderr)
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("seedhp: error: "), done.stderr
    for start in starts:
        assert start in lines[0], lines[0]


def test_a_config_edited_in_the_store_runs_no_code_and_ids_become_no_paths(
    tmp_path: Path,
) -> None:
    pid, runs = _sweep(tmp_path)
    client = mlflow_client(tmp_path / "outputs")
    marker = tmp_path / "ran"
    evil = {"model": {"_target_": "os.system", "command": f"touch {marker}"}, "seed": 0}
    for r in runs:  # what anyone who can log to the server can do
        client.log_text(r.info.run_id, yaml.safe_dump(evil), "config.yaml")

    done = seedhp(["reseed", "--run", pid, "--seeds", "1"], tmp_path)
    _one_error_line(done, "model._target_=os.system: read from run ", "--allow-target os.system")
    assert not marker.exists()
    assert not [
        r for r in all_runs(tmp_path / "outputs") if r.data.tags.get("seedhp.role") == "reseed"
    ]

    # a config_id tag that climbs out of outputs/ becomes no path
    client.set_tag(runs[0].info.run_id, "config_id", "../../../../x")
    before = set(tmp_path.parent.iterdir())
    for command in (["report", "--run", pid], ["reseed", "--run", pid, "--seeds", "1"]):
        done = seedhp(command, tmp_path)
        _one_error_line(done, "config_id=../../../../x: the tag of run ", "not a config id")
    assert set(tmp_path.parent.iterdir()) == before
    assert not (tmp_path / "outputs" / "reports").exists()

    done = seedhp(["report", "--run", "../../x"], tmp_path)
    _one_error_line(done, "--run='../../x': a run id is letters")


@pytest.mark.slow
def test_the_users_own_model_reseeds_once_the_user_names_it(tmp_path: Path) -> None:
    pid, _ = _sweep(tmp_path, ("model=custom", "model._target_=tests.mixers.Normalize"))
    done = seedhp(["reseed", "--run", pid, "--seeds", "1", "--no-report"], tmp_path)
    _one_error_line(done, "model._target_=tests.mixers.Normalize", "--allow-target")
    done = seedhp(
        ["reseed", "--run", pid, "--seeds", "1", "--no-report", "--allow-target", "tests.mixers"],
        tmp_path,
    )
    assert done.returncode == 0, done.stderr
    fresh = [
        r for r in all_runs(tmp_path / "outputs") if r.data.tags.get("seedhp.role") == "reseed"
    ]
    assert [r.data.tags["seed"] for r in fresh] == ["2"]
