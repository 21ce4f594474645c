"""A new SQLite MLflow store, copied from an empty one that MLflow made.

MLflow makes a new SQLite store by running its whole migration chain, 1.5 s against 0.25 s to
open an existing store (measured on this project's 2-core machine, MLflow 3.17). Every sweep in a
new directory, and every test that runs one, paid it. Here MLflow's own table creation runs once
per MLflow and SQLAlchemy version, into a template in the user's cache
(`$XDG_CACHE_HOME/seedhp`, else `~/.cache/seedhp`); a new store is a copy of that file, put in
place before MLflow opens it. A template not at MLflow's head revision is made again. MLflow then
finds every table at that revision (it checks, as for any store) and adds its default experiment
itself, as it would have.

Whatever goes wrong here (no cache directory, a file system without hard links, a change in
MLflow's internals) leaves the store to MLflow, which makes it the usual way.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import sqlite3
from pathlib import Path

log = logging.getLogger("seedhp")


def copy_empty_store(uri: str) -> Path | None:
    """Put a copy of the empty template at a `sqlite:///` URI's file if there is none yet;
    the copy's path, or None when nothing was copied."""
    if not uri.startswith("sqlite:///") or "?" in uri:
        return None
    path = Path(uri[len("sqlite:///") :]).expanduser()
    if path.exists():
        return None
    part = path.with_name(f".{path.name}.{os.getpid()}.part")
    try:
        shutil.copyfile(_template(), part)
        os.link(part, path)  # never over a store another process made in the meantime
        return path
    except Exception as err:  # MLflow makes the store itself
        log.debug("new MLflow store left to MLflow, not copied: %s", err)
        return None
    finally:
        part.unlink(missing_ok=True)


def template_path() -> Path:
    import mlflow
    import sqlalchemy

    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "seedhp"
    return cache / f"mlflow-{mlflow.__version__}-sqlalchemy-{sqlalchemy.__version__}-empty.db"


def _template() -> Path:
    """The cached empty store at MLflow's head revision; made by MLflow's own table creation
    when there is none, or none at that revision."""
    import sqlalchemy
    from mlflow.store.db.utils import _get_latest_schema_revision, _initialize_tables

    path = template_path()
    if _revision(path) == _get_latest_schema_revision():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    part = path.with_name(f".{path.name}.{os.getpid()}.part")
    part.unlink(missing_ok=True)
    engine = sqlalchemy.create_engine(f"sqlite:///{part}")
    try:
        _initialize_tables(engine)
        engine.dispose()
        os.replace(part, path)  # whole or absent, whoever else makes it at the same time
    finally:
        engine.dispose()
        part.unlink(missing_ok=True)
    return path


def _revision(db: Path) -> str | None:
    if not db.exists():
        return None
    try:
        with contextlib.closing(sqlite3.connect(f"{db.as_uri()}?mode=ro", uri=True)) as con:
            return str(con.execute("SELECT version_num FROM alembic_version").fetchone()[0])
    except Exception:  # not a store, or not one of MLflow's
        return None
