"""Configs as YAML text, fast: PyYAML's C emitter, and the top-level entries of a mapping kept
as text across the seeds of a pack, whose configs share every value but the seed's.

A block mapping is its entries one after another, so dumping {a: 1, b: {...}} gives the text
of {a: 1} followed by that of {b: {...}}: only the entries whose value is a new object are
emitted again. No anchors or aliases are written (each entry stands alone either way).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import yaml

_BASE: Any = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


class _Dumper(_BASE):
    def ignore_aliases(self, data: Any) -> bool:
        return True


def dump(data: Any, *, allow_unicode: bool = False) -> str:
    """`data` as block YAML, keys in their order."""
    return yaml.dump(
        data,
        Dumper=_Dumper,
        sort_keys=False,
        allow_unicode=allow_unicode,
        default_flow_style=False,
    )


class Entries:
    """dump() of mappings that share values: each top-level entry is emitted once per value
    object, then reused while the same object comes back (keep one per pack: the values must
    not change in between)."""

    def __init__(self, *, allow_unicode: bool = False) -> None:
        self.allow_unicode = allow_unicode
        self._text: dict[Any, tuple[Any, str]] = {}

    def dump(self, data: Mapping[Any, Any]) -> str:
        if not data:
            return dump(dict(data), allow_unicode=self.allow_unicode)
        parts = []
        for key, value in data.items():
            kept = self._text.get(key)
            if kept is None or kept[0] is not value:
                kept = (value, dump({key: value}, allow_unicode=self.allow_unicode))
                self._text[key] = kept
            parts.append(kept[1])
        return "".join(parts)
