"""The one error type that bad input raises: it names the key, the value and what is allowed."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from typing import Any


class ConfigError(ValueError):
    """Bad input, found before any training. `str()` is one line: `key=value: allowed`."""

    def __init__(self, key: str, value: Any, allowed: str) -> None:
        self.key, self.value, self.allowed = key, value, allowed
        super().__init__(f"{key}={value!s}: {allowed}")


@contextlib.contextmanager
def exit_on_config_error() -> Iterator[None]:
    """At the command line, bad input is one line on stderr and exit status 2."""
    try:
        yield
    except ConfigError as err:
        print(f"seedhp: error: {one_line(err)}", file=sys.stderr, flush=True)
        raise SystemExit(2) from None


def one_line(err: ConfigError) -> str:
    """The error as one line, scrubbed of passwords (seedhp.secrets)."""
    from seedhp.secrets import scrub

    return " ".join(scrub(str(err)).split())
