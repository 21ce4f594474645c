"""No password is ever written: a study and its report with a password planted in every URI,
then every file, the stores' own bytes (tags, params, Optuna's attributes) and every line the
commands print scanned for it.

Here the URIs carry their passwords in the query string, which SQLite ignores (SQLAlchemy
warns, without the value); the database-URL and `http://user:pw@` forms run against PostgreSQL
and an MLflow server in tests/sweep/test_scale.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from seedhp.job.urls import redact, scrub, secrets_of
from tests.conftest import cli
from tests.report.test_report import seedhp

PLANTED = ("Tr4ck-PLANTED-4e1", "St0re-PLANTED-9a7")


def leaks(root: Path, texts: list[str], secrets: tuple[str, ...] = PLANTED) -> list[str]:
    """Where any of `secrets` appears: files under `root` (databases and artifacts included,
    as bytes) and `texts` (what the commands printed)."""
    found = [
        str(p)
        for p in root.rglob("*")
        if p.is_file() and any(s.encode() in p.read_bytes() for s in secrets)
    ]
    return found + [t[:200] for t in texts if any(s in t for s in secrets)]


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("postgresql://user:pw%40x@host:5432/db", "postgresql://user:***@host:5432/db"),
        ("mysql+pymysql://u:secret@h/db?charset=utf8", "mysql+pymysql://u:***@h/db?charset=utf8"),
        ("http://user:pw@127.0.0.1:5000", "http://user:***@127.0.0.1:5000"),
        ("https://tok3n@mlflow.example.org", "https://***@mlflow.example.org"),
        (
            "postgresql://u@h/db?sslmode=require&password=pw",
            "postgresql://u@h/db?sslmode=require&password=***",
        ),
        ("sqlite:////a/b.db?password=x&mode=ro", "sqlite:////a/b.db?password=***&mode=ro"),
        ("sqlite:///outputs/mlflow.db", "sqlite:///outputs/mlflow.db"),
        ("http://127.0.0.1:5000", "http://127.0.0.1:5000"),
    ],
)
def test_every_uri_form_is_redacted(url: str, shown: str) -> None:
    assert redact(url) == shown
    assert scrub(f"tracking.uri='{url}' and more") == f"tracking.uri='{shown}' and more"
    assert all(s not in shown for s in secrets_of(url))


def test_a_study_and_its_report_write_no_password(tmp_path: Path) -> None:
    out = tmp_path / "outputs"
    tracking = f"sqlite:///{out}/mlflow.db?password={PLANTED[0]}"
    storage = f"sqlite:///{out}/optuna.db?password={PLANTED[1]}"
    done = cli(
        [
            "-m",
            "hydra/sweeper=optuna",
            "hydra.sweeper.n_trials=2",
            "hydra.sweeper.study_name=secret",
            f"hydra.sweeper.storage='{storage}'",
            f"tracking.uri='{tracking}'",
            "seed=range(0,10)",
            "model=mlp",
            "model.hidden=[8]",
            "train.epochs=1",
        ],
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    report = seedhp(
        ["report", "--study", "secret", "--storage", storage, "--tracking-uri", tracking],
        tmp_path,
    )
    assert report.returncode == 0, report.stderr
    bad = seedhp(["report", "--study", "nosuch", "--storage", storage], tmp_path)
    assert bad.returncode == 2 and "password=***" in bad.stderr, bad.stderr
    printed = [done.stdout, done.stderr, report.stdout, report.stderr, bad.stdout, bad.stderr]
    assert leaks(tmp_path, printed) == []
    # the study's record still finds its store: the URI is given again
    assert (out / "multirun").exists() and list(out.rglob("report.html"))
