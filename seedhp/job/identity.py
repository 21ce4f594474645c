"""What a configuration is, defined once: a job's config or overrides without its seed.

- `config_id`: a 12-hex-digit hash of the resolved config without the seed and the keys that
  never change what a seed-run computes. Every seed-run of one configuration shares it, in any
  process, sweep or study; reuse, summaries and reports group by it.
- `without_seed`: a job's overrides without its seed override; the jobs of one configuration
  in one launch share them (packs, the grid sweep's per-configuration checks).
- `configuration_overrides`: those, less seedhp's bookkeeping (`tracking.*`, `report.*`): what
  re-creates the configuration on another seed (tag `seedhp.overrides`, `seedhp reseed`).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from typing import Any

# seedhp's own app: keys that never change what a seed-run computes
RUNTIME_KEYS = (
    "seed",
    "seeds",
    "tracking",
    "paths",
    "hydra",
    "report",
    "train.device",
    "train.eval_batch_size",
    "train.deterministic",
    "train.kernels",
    "train.compile",
    "train.pack_engine",
    "data.root",
    "data.download",
    "data.source.root",
    "data.source.download",
    "data.source.verify",
)
BOOKKEEPING = ("tracking.", "report.")  # overrides that say where and how a run is recorded


def config_id(cfg: Mapping[str, Any], leave_out: Sequence[str] = RUNTIME_KEYS) -> str:
    """The hash of a resolved config without the dotted keys `leave_out` (seedhp's runtime
    keys; for another app: its seed key and Hydra's node)."""
    pruned = json.loads(json.dumps(dict(cfg), default=str))
    for dotted in leave_out:
        *parents, leaf = dotted.split(".")
        node: Any = pruned
        for p in parents:
            node = node.get(p) if isinstance(node, dict) else None
        if isinstance(node, dict):
            node.pop(leaf, None)
    blob = json.dumps(pruned, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()[:12]


def _key(override: str) -> str:
    return override.split("=", 1)[0].lstrip("+~")


def without_seed(overrides: Sequence[str], seed_key: str = "seed") -> tuple[str, ...]:
    return tuple(o for o in overrides if _key(o) != seed_key)


def configuration_overrides(overrides: Sequence[str], seed_key: str = "seed") -> list[str]:
    return [o for o in without_seed(overrides, seed_key) if not _key(o).startswith(BOOKKEEPING)]


def quote(value: str) -> str:
    """A string as a quoted Hydra override value (':' and '/' stay plain, quotes escaped)."""
    return "'" + value.replace("'", "\\'") + "'"
