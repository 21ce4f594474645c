"""Storage and tracking URLs as seedhp shows them: never with a password."""

from __future__ import annotations

import re

_CREDENTIALS = re.compile(
    r"^(?P<scheme>[A-Za-z][A-Za-z0-9+.\-]*://)(?P<user>[^:/@]*):(?P<pw>[^@]*)@"
)


def redact(url: str) -> str:
    """postgresql://user:secret@host/db -> postgresql://user:***@host/db (others unchanged)."""
    return _CREDENTIALS.sub(lambda m: f"{m['scheme']}{m['user']}:***@", str(url))
