"""Storage and tracking URLs as seedhp shows them: never with a password."""

from __future__ import annotations

import re
from pathlib import Path

from seedhp.errors import ConfigError

_CREDENTIALS = re.compile(
    r"^(?P<scheme>[A-Za-z][A-Za-z0-9+.\-]*://)(?P<user>[^:/@]*):(?P<pw>[^@]*)@"
)


def redact(url: str) -> str:
    """postgresql://user:secret@host/db -> postgresql://user:***@host/db (others unchanged)."""
    return _CREDENTIALS.sub(lambda m: f"{m['scheme']}{m['user']}:***@", str(url))


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
