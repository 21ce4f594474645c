"""What a configuration is, defined once: a job's config or overrides without its seed.

- `config_id`: a 12-hex-digit hash of the resolved config without the seed and the keys that
  never change what a seed-run computes. Every seed-run of one configuration shares it, in any
  process, sweep or study; reuse, summaries and reports group by it. The stream pins
  (`seeds.*`) are part of it: seed 3 validated on split 0 and seed 3 validated on its own split
  are two different measurements, and (config_id, seed) names one seed-run.
- `identity_view`: another app's config as its identity sees it: every value resolved, except
  those that come from the job's runtime (`${hydra:...}`, `${now:...}`, directly or through
  other keys: LHT's `paths.output_dir`, `trainer.default_root_dir`), which are kept as written.
  A job and a sweeper's pre-flight, where Hydra's runtime is not set, see the same view.
- `without_seed`: a job's overrides without its seed override; the jobs of one configuration
  in one launch share them (packs, the grid sweep's per-configuration checks).
- `configuration_overrides`: those, less seedhp's bookkeeping (`tracking.*`, `report.*`): what
  re-creates the configuration on another seed (tag `seedhp.overrides`, `seedhp reseed`).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from omegaconf import DictConfig, ListConfig
from omegaconf.basecontainer import BaseContainer
from omegaconf.errors import MissingMandatoryValue, OmegaConfBaseException

# seedhp's own app: keys that never change what a seed-run computes
RUNTIME_KEYS = (
    "seed",
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
RUNTIME_RESOLVERS = ("hydra", "now")  # their values differ per job, never per configuration
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


def identity_view(cfg: DictConfig) -> dict[str, Any]:
    """The config without Hydra's node, each value resolved unless it comes from the job's
    runtime (kept as written, e.g. '${paths.output_dir}/checkpoints'); '???' stays '???'."""
    with _runtime_unresolved():
        return {str(key): _view(cfg, key) for key in cfg if key != "hydra"}


def _view(parent: DictConfig | ListConfig, key: Any) -> Any:
    try:
        value = parent[key]
    except MissingMandatoryValue:
        return "???"
    except OmegaConfBaseException:  # it needs Hydra's runtime (or names no key): as written
        node = parent._get_node(key)
        return str(node._value()) if node is not None else None  # type: ignore[union-attr]
    if isinstance(value, DictConfig):
        return None if value._is_none() else {str(k): _view(value, k) for k in value}
    if isinstance(value, ListConfig):
        return None if value._is_none() else [_view(value, i) for i in range(len(value))]
    return value


class _Runtime(Exception):
    pass


@contextlib.contextmanager
def _runtime_unresolved() -> Iterator[None]:
    """Hydra's `hydra` and `now` resolvers fail while the view is taken, in a job as outside
    one (where HydraConfig is unset and only some of its values would resolve)."""

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise _Runtime("a job's runtime value")

    saved = {
        n: BaseContainer._resolvers[n] for n in RUNTIME_RESOLVERS if n in BaseContainer._resolvers
    }
    try:
        BaseContainer._resolvers.update({n: refuse for n in saved})
        yield
    finally:
        BaseContainer._resolvers.update(saved)


def _key(override: str) -> str:
    return override.split("=", 1)[0].lstrip("+~")


def without_seed(overrides: Sequence[str], seed_key: str = "seed") -> tuple[str, ...]:
    return tuple(o for o in overrides if _key(o) != seed_key)


def configuration_overrides(overrides: Sequence[str], seed_key: str = "seed") -> list[str]:
    return [o for o in without_seed(overrides, seed_key) if not _key(o).startswith(BOOKKEEPING)]


def quote(value: str) -> str:
    """A string as a quoted Hydra override value (':' and '/' stay plain, quotes escaped)."""
    return "'" + value.replace("'", "\\'") + "'"
