"""Secrets out of every text seedhp shows or writes: the core of seedhp.job.urls, which
re-exports it; it imports nothing of seedhp's, so seedhp.errors scrubs its one-line messages
with it without importing the job floor.

`redact` masks the password of one URL (a database URL's, an HTTP server's user info, a query
string's `?password=`/`?token=`), `scrub` every URL in a text and every secret `remember` has
seen in this process; once a secret is remembered, this process's log records and uncaught
tracebacks are scrubbed too.
"""

from __future__ import annotations

import logging
import re
import sys
import urllib.parse
from collections.abc import Iterable
from types import TracebackType

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
