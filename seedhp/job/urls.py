"""Storage and tracking URLs as seedhp shows and writes them: never with a password.

Every URL form MLflow, Optuna and SQLAlchemy accept can carry a secret: a database URL's
password (`postgresql://user:secret@host/db`), an HTTP server's user info
(`http://user:secret@host`, `https://token@host`) and a query string's (`?password=secret`,
`?token=...`). `redact` masks them in one URL, `scrub` in any text (every URL in it, and every
secret `remember` has seen in this process, wherever it appears): seedhp.secrets, which
imports nothing of seedhp's, so that seedhp.errors can scrub its lines too. Everything seedhp
writes (MLflow tags, params and text artifacts, job directories, summaries, reports, log lines,
messages) goes through `scrub`; once a secret is remembered, so do this process's log records
and uncaught tracebacks.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from seedhp.errors import ConfigError
from seedhp.secrets import MASK, redact, remember, scrub, secrets_of

__all__ = [
    "MASK",
    "check_sqlite",
    "redact",
    "remember",
    "scrub",
    "scrub_files",
    "scrubbed",
    "secrets_of",
    "sqlite_file",
    "write_scrubbed",
]


def scrubbed(values: Mapping[str, object] | None) -> dict[str, str]:
    """A mapping's values as strings, scrubbed (MLflow params and tags)."""
    return {k: scrub(str(v)) for k, v in (values or {}).items()}


def write_scrubbed(path: Path, text: str) -> None:
    """Write a text file seedhp makes (a job's .hydra/ files, a summary, a report) scrubbed,
    whole or not at all: into a hidden sibling, renamed into place once written (a full disk
    leaves the file as it was, never a part of it)."""
    partial = path.with_name(f".{path.name}.partial-{os.getpid()}")
    try:
        partial.write_text(scrub(text), encoding="utf-8")
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)


def scrub_files(directory: Path, pattern: str = "*.yaml") -> None:
    """Rewrite the files of `directory` matching `pattern` scrubbed (Hydra's .hydra/ files of a
    job, which Hydra writes before the job starts), where they hold a secret."""
    for path in directory.glob(pattern):
        text = path.read_text(encoding="utf-8")
        clean = scrub(text)
        if clean != text:
            path.write_text(clean, encoding="utf-8")


def sqlite_file(url: str) -> Path | None:
    """The database file of a `sqlite:///` URL as SQLAlchemy opens it, and so MLflow's and
    Optuna's stores: percent-escapes decoded, relative to the working directory, `~` not
    expanded. None for any other URL, and for `:memory:`."""
    if not url.startswith("sqlite:///"):
        return None
    from sqlalchemy.engine import make_url

    database = make_url(url).database
    return None if not database or database == ":memory:" else Path(database)


def check_sqlite(key: str, url: str) -> None:
    """Refuse, in one line, an SQLite URL whose file MLflow and Optuna would not find where
    its writer means: malformed, or starting with `~`, which SQLAlchemy does not expand (the
    store would land in a directory named `~` under the working directory)."""
    if not url.startswith("sqlite:///") or url == "sqlite:///":
        raise ConfigError(
            key,
            redact(url),
            "an SQLite URI is sqlite:///relative/path.db or sqlite:////abs/path.db",
        )
    path = sqlite_file(url)
    if path is not None and path.parts[:1] and path.parts[0].startswith("~"):
        home = Path(str(path)).expanduser()
        raise ConfigError(
            key,
            redact(url),
            f"`~` is not expanded in an SQLite URI (the store would be in a directory named "
            f"`{path.parts[0]}` here); write the absolute path: sqlite:///{home}",
        )
