"""A new SQLite MLflow store, copied from an empty one that MLflow made.

MLflow makes a new SQLite store by running its whole migration chain, 1.5 s against 0.25 s to
open an existing store (measured on this project's 2-core machine, MLflow 3.17). Every sweep in a
new directory, and every test that runs one, paid it. Here MLflow's own table creation runs once
per MLflow and SQLAlchemy version, into a template in the user's cache (`$XDG_CACHE_HOME/seedhp`
where that is an absolute path, else `~/.cache/seedhp`); a new store is a copy of that file, put
in place before MLflow opens it. A template not at MLflow's head revision is made again. MLflow
then finds every table at that revision (it checks, as for any store) and adds its default
experiment itself, as it would have.

Whatever goes wrong here (no cache directory, a file system without hard links, a change in
MLflow's internals) leaves the store to MLflow, which makes it the usual way.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import sqlite3
import tempfile
from pathlib import Path

from seedhp.job.urls import sqlite_file

log = logging.getLogger("seedhp")


def copy_empty_store(uri: str) -> Path | None:
    """Put a copy of the empty template at a `sqlite:///` URI's file if there is none yet;
    the copy's path, or None when nothing was copied. The file is the one MLflow opens: the
    URI's database as SQLAlchemy reads it (percent-escapes decoded, `~` not expanded)."""
    path = _database(uri)
    if path is None or path.exists():
        return None
    part: Path | None = None
    try:
        template = _template()
        part = _part_beside(path)
        shutil.copyfile(template, part)
        os.link(part, path)  # never over a store another process made in the meantime
        return path
    except Exception as err:  # MLflow makes the store itself
        log.debug("new MLflow store left to MLflow, not copied: %s", err)
        return None
    finally:
        if part is not None:
            part.unlink(missing_ok=True)


def template_path() -> Path:
    import mlflow
    import sqlalchemy

    cache = os.environ.get("XDG_CACHE_HOME", "")
    root = Path(cache) if os.path.isabs(cache) else Path.home() / ".cache"  # XDG: absolute only
    name = f"mlflow-{mlflow.__version__}-sqlalchemy-{sqlalchemy.__version__}-empty.db"
    return root / "seedhp" / name


def _database(uri: str) -> Path | None:
    """The file of a `sqlite:///` URI without options; None for anything else."""
    from sqlalchemy.engine import make_url

    if "?" in uri or make_url(uri).query:
        return None
    return sqlite_file(uri)


def _part_beside(path: Path) -> Path:
    """A new, empty file of this process alone in `path`'s directory (unique across hosts
    sharing the directory, unlike a pid)."""
    handle, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    os.close(handle)
    return Path(name)


def _template() -> Path:
    """The cached empty store at MLflow's head revision; made by MLflow's own table creation
    when there is none, or none at that revision."""
    import sqlalchemy
    from mlflow.store.db.utils import _get_latest_schema_revision, _initialize_tables

    path = template_path()
    if _revision(path) == _get_latest_schema_revision():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    part = _part_beside(path)
    engine = sqlalchemy.create_engine(sqlalchemy.URL.create("sqlite", database=str(part)))
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
        with contextlib.closing(
            sqlite3.connect(f"{db.resolve().as_uri()}?mode=ro", uri=True)
        ) as con:
            return str(con.execute("SELECT version_num FROM alembic_version").fetchone()[0])
    except Exception:  # not a store, or not one of MLflow's
        return None
