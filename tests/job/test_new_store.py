"""A new SQLite store is a copy of MLflow's own empty store, and the same as one MLflow makes."""

from __future__ import annotations

import contextlib
import re
import sqlite3
from pathlib import Path

import pytest
from mlflow.store.db.utils import _get_latest_schema_revision
from mlflow.tracking import MlflowClient

from seedhp.job import new_store
from seedhp.job.tracking import Tracker, _client


@pytest.fixture(autouse=True)
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    _client.cache_clear()
    return tmp_path / "cache" / "seedhp"


def _contents(db: Path) -> list[str]:
    """The store's schema and rows, each statement's lines sorted (MLflow's migrations emit a
    table's constraints and a table's indexes in an order that differs from run to run), with
    creation and update times and the store's own directory blanked."""
    dump = sqlite3.connect(db).iterdump()
    statements = [
        re.sub(r",\d{13},\d{13},", ",T,T,", s).replace(str(db.parent), "DIR") for s in dump
    ]
    return sorted("\n".join(sorted(s.replace(",", "\n").splitlines())) for s in statements)


def test_a_copied_store_is_the_store_mlflow_makes(tmp_path: Path, cache: Path) -> None:
    made = tmp_path / "made" / "mlflow.db"
    made.parent.mkdir()
    MlflowClient(tracking_uri=f"sqlite:///{made}").search_experiments()  # MLflow's own way

    first = Tracker(f"sqlite:///{tmp_path}/a/mlflow.db", "seedhp")  # makes the template
    templates = list(cache.glob("mlflow-*-empty.db"))
    assert len(templates) == 1
    _client.cache_clear()
    second = Tracker(f"sqlite:///{tmp_path}/b/mlflow.db", "seedhp")  # a copy of it
    assert _contents(tmp_path / "b" / "mlflow.db") == _contents(tmp_path / "a" / "mlflow.db")
    for tracker in (first, second):
        run_id = tracker.start_run("r", {"seed": "1"})
        assert tracker.client.get_run(run_id).data.tags["seed"] == "1"

    fresh = tmp_path / "c" / "mlflow.db"
    fresh.parent.mkdir()
    assert new_store.copy_empty_store(f"sqlite:///{fresh}") == fresh
    MlflowClient(tracking_uri=f"sqlite:///{fresh}").search_experiments()
    assert _contents(fresh) == _contents(made)


def test_an_existing_store_is_never_replaced(tmp_path: Path) -> None:
    db = tmp_path / "mlflow.db"
    tracker = Tracker(f"sqlite:///{db}", "seedhp")
    run_id = tracker.start_run("kept", {"seed": "3"})
    assert new_store.copy_empty_store(f"sqlite:///{db}") is None
    _client.cache_clear()
    assert Tracker(f"sqlite:///{db}", "seedhp").client.get_run(run_id).info.run_name == "kept"


@pytest.mark.parametrize("damage", ["older", "not a store"])
def test_a_template_not_at_mlflows_revision_is_made_again(
    tmp_path: Path, cache: Path, damage: str
) -> None:
    Tracker(f"sqlite:///{tmp_path}/a/mlflow.db", "seedhp")
    [template] = cache.glob("mlflow-*-empty.db")
    if damage == "older":
        with contextlib.closing(sqlite3.connect(template)) as db, db:
            db.execute("UPDATE alembic_version SET version_num = 'an-older-revision'")
    else:
        template.write_text("garbage")
    _client.cache_clear()
    tracker = Tracker(f"sqlite:///{tmp_path}/b/mlflow.db", "seedhp")
    assert tracker.client.get_run(tracker.start_run("r", {})).info.status == "RUNNING"
    assert new_store._revision(template) == _get_latest_schema_revision()


def test_without_a_cache_mlflow_makes_the_store(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "file").write_text("not a directory")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "file"))
    db = tmp_path / "s" / "mlflow.db"
    assert new_store.copy_empty_store(f"sqlite:///{db}") is None
    assert not db.exists() and not list(db.parent.glob(".*part"))
    tracker = Tracker(f"sqlite:///{db}", "seedhp")
    assert tracker.client.get_run(tracker.start_run("r", {})).info.status == "RUNNING"


def test_a_store_another_process_made_meanwhile_is_kept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = tmp_path / "store" / "mlflow.db"
    db.parent.mkdir()
    real = new_store.shutil.copyfile

    def copy_then_another_process_makes_the_store(src: Path, dst: Path) -> None:
        real(src, dst)
        db.write_text("another process's store")

    monkeypatch.setattr(new_store.shutil, "copyfile", copy_then_another_process_makes_the_store)
    assert new_store.copy_empty_store(f"sqlite:///{db}") is None
    assert db.read_text() == "another process's store"
    assert [p.name for p in db.parent.iterdir()] == ["mlflow.db"]  # no part file left


@pytest.mark.parametrize(
    ("uri", "made"),
    [
        ("sqlite:///a%20b/mlflow.db", "a b/mlflow.db"),  # SQLAlchemy decodes the escape
        ("sqlite:///rel/mlflow.db", "rel/mlflow.db"),
        ("sqlite:///:memory:", None),
        ("sqlite:///rel/mlflow.db?timeout=5", None),  # options: left to MLflow
    ],
)
def test_the_copy_is_where_mlflow_opens_the_store(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, uri: str, made: str | None
) -> None:
    work = tmp_path / "work"
    for d in ("a b", "rel"):
        (work / d).mkdir(parents=True)
    monkeypatch.chdir(work)
    copied = new_store.copy_empty_store(uri)
    files = sorted(str(p.relative_to(work)) for p in work.rglob("*") if p.is_file())
    assert files == ([made] if made else [])
    assert copied == (Path(made) if made else None)


def test_a_relative_cache_home_is_ignored(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/cache")
    monkeypatch.setenv("HOME", str(tmp_path))
    assert new_store.template_path().parent == tmp_path / ".cache" / "seedhp"
