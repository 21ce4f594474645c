"""Seed streams: one independent seed per source of randomness, all derived from `seed`.

`seed` is the hyperparameter. Each stream (`init`, `data`, `augment`, `dropout`, `split`) gets
its own 63-bit value, a pure function of (source seed, stream name) computed with blake2b, so it
is the same in every process, on every machine and under every PYTHONHASHSEED. A stream can be
pinned to another source seed (`seeds.split=0`): its value is then the one seed 0 would give that
stream, so a pinned run and an unpinned run of the same seed agree on that stream.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass

STREAMS = ("init", "data", "augment", "dropout", "split")


def derive(source: int, stream: str) -> int:
    """The value of `stream` for source seed `source`: an int in [0, 2**63)."""
    digest = hashlib.blake2b(f"seedhp/{stream}/{source}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") >> 1


@dataclass(frozen=True)
class SeedStreams:
    """The derived seeds of one seed-run; `sources` says which seed each stream follows."""

    seed: int
    init: int
    data: int
    augment: int
    dropout: int
    split: int
    sources: tuple[tuple[str, int], ...]

    def as_params(self) -> dict[str, str]:
        """Every derived value and its source, as MLflow params (`seed_stream.init`, ...)."""
        params = {f"seed_stream.{name}": str(getattr(self, name)) for name in STREAMS}
        params.update({f"seed_source.{name}": str(src) for name, src in self.sources})
        return params


def derive_seeds(seed: int, pinned: Mapping[str, int | None] | None = None) -> SeedStreams:
    """Derive every stream from `seed`, except those `pinned` to another source seed."""
    pinned = pinned or {}
    unknown = set(pinned) - set(STREAMS)
    if unknown:
        raise KeyError(f"unknown seed streams {sorted(unknown)}; streams: {', '.join(STREAMS)}")
    sources = {s: seed if pinned.get(s) is None else int(pinned[s]) for s in STREAMS}  # type: ignore[arg-type]
    values = {s: derive(src, s) for s, src in sources.items()}
    return SeedStreams(seed=seed, sources=tuple(sources.items()), **values)
