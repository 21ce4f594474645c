"""Storage and tracking URLs as seedhp shows and writes them: never with a password.

Every URL form MLflow, Optuna and SQLAlchemy accept can carry a secret: a database URL's
password (`postgresql://user:secret@host/db`), an HTTP server's user info
(`http://user:secret@host`, `https://token@host`) and a query string's (`?password=secret`,
`?token=...`). `redact` masks them in one URL, `scrub` in any text (every URL in it, and every
secret `remember` has seen in this process, wherever it appears). Everything seedhp writes
(MLflow tags, params and text artifacts, job directories, summaries, reports, log lines,
messages) goes through `scrub`; once a secret is remembered, so do this process's log records
and uncaught tracebacks.
"""

from __future__ import annotations

import logging
import os
import re
import sys
import urllib.parse
from collections.abc import Iterable, Mapping
from pathlib import Path
from types import TracebackType

from seedhp.errors import ConfigError

_CREDENTIALS = re.compile(
    r"^(?P<scheme>[A-Za-z][A-Za-z0-9+.\-]*://)(?P<user>[^:/@]*):(?P<pw>[^@]*)@"
)
_HTTP_USER = re.compile(r"^(?P<scheme>https?://)(?P<user>[^:/@?#]+)@", re.IGNORECASE)
_SECRET_QUERY = re.compile(
    r"(?P<key>[?&;](?:password|passwd|pwd|pass|secret|token|access_token|auth_token|api_key"
    r"|apikey|sig|signature|credential|credentials)=)(?P<value>[^&#;\s'\"]*)",
    re.IGNORECASE,
)
_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*://[^\s'\"<>\\]*")
MASK = "***"
_SECRETS: set[str] = set()  # remembered in this process; masked wherever they appear


def redact(url: str) -> str:
    """postgresql://user:secret@host/db -> postgresql://user:***@host/db; http://token@host ->
    http://***@host; ?password=secret -> ?password=*** (anything else unchanged)."""
    url = _CREDENTIALS.sub(lambda m: f"{m['scheme']}{m['user']}:{MASK}@", str(url))
    url = _HTTP_USER.sub(lambda m: f"{m['scheme']}{MASK}@", url)
    return _SECRET_QUERY.sub(lambda m: f"{m['key']}{MASK}", url)


def secrets_of(url: str) -> list[str]:
    """The secrets a URL carries, as written and percent-decoded."""
    found = [m["pw"] for m in [_CREDENTIALS.match(url)] if m and m["pw"]]
    found += [m["user"] for m in [_HTTP_USER.match(url)] if m]
    found += [m["value"] for m in _SECRET_QUERY.finditer(url) if m["value"]]
    return [v for s in found for v in {s, urllib.parse.unquote(s)} if v and v != MASK]


def remember(texts: Iterable[str]) -> None:
    """Remember the secrets of every URL in `texts` (a command line, a configured URI), so that
    `scrub` masks them wherever they turn up; the first one also makes this process's log
    records and uncaught tracebacks scrubbed."""
    new = {
        secret
        for text in texts
        for url in _URL.findall(str(text))
        for secret in secrets_of(url)
        if len(secret) >= 3  # shorter would mask innocent text; a URL's own form still is
    }
    if new - _SECRETS:
        first = not _SECRETS
        _SECRETS.update(new)
        if first:
            _scrub_logs_and_tracebacks()


def scrub(text: str) -> str:
    """`text` with every URL redacted and every remembered secret masked."""
    text = str(text)
    if "://" in text:
        text = _URL.sub(lambda m: redact(m.group(0)), text)
    for secret in sorted(_SECRETS, key=len, reverse=True):
        text = text.replace(secret, MASK)
    return text


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


class _ScrubbedRecord(logging.LogRecord):
    """A log record whose message and traceback text are scrubbed when it is made."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        try:
            message = self.getMessage()
        except Exception:  # a record whose arguments do not fit its format: leave it
            return
        self.msg, self.args = scrub(message), None
        if self.exc_info and not self.exc_text:
            self.exc_text = scrub(logging.Formatter().formatException(self.exc_info))


def _scrub_logs_and_tracebacks() -> None:
    logging.setLogRecordFactory(_ScrubbedRecord)
    shown = sys.excepthook

    def hook(kind: type[BaseException], err: BaseException, tb: TracebackType | None) -> None:
        import traceback

        text = "".join(traceback.format_exception(kind, err, tb))
        sys.stderr.write(scrub(text))

    if shown is sys.__excepthook__:
        sys.excepthook = hook


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
