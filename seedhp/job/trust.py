"""What seedhp takes from a store: configurations that may run only named code, and ids that
become paths only when they are the ids seedhp writes.

A seed-run's `config.yaml` artifact and its `seedhp.overrides` tag live in the MLflow store,
which anyone who can log to a shared tracking server can change. seedhp re-creates
configurations from them (`seedhp reseed`, `seedhp report --study A --study B`, a sweep's
fresh-seed re-runs), and a `_target_` is code that runs when the configuration is built. From a
store only these run: seedhp's own models, data loaders and optimizers, and torch's optimizers
and modules (SAFE_TARGETS), and any callable the user named: in the current command line or
configuration, or with `--allow-target PREFIX`. Anything else fails in one line naming it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

from seedhp.errors import ConfigError

# torch.* as a whole is not safe: torch.load unpickles, torch.hub.load runs a repository's code
SAFE_TARGETS = (
    "seedhp.train.models",
    "seedhp.train.data",
    "seedhp.train.optim",
    "torch.optim",
    "torch.nn",
)
_CONFIG_ID = re.compile(r"[0-9a-f]{12}")
_RUN_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")  # MLflow's: 32 hex digits
_DOTTED = re.compile(r"[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)+")


def allowed(target: str, allow: Iterable[str] = ()) -> bool:
    """`target` is a SAFE_TARGETS callable or lies under one of `allow` (whole dotted parts:
    `mypkg` allows `mypkg.Net`, not `mypkgevil.Net`)."""
    return any(target == p or target.startswith(p + ".") for p in (*SAFE_TARGETS, *allow))


def named_in(texts: Iterable[str]) -> set[str]:
    """Every dotted name in `texts` (a command line's overrides, a configuration's values):
    the callables the user named, which a configuration read back from a store may run."""
    return {m.group(0) for text in texts for m in _DOTTED.finditer(str(text))}


def targets(tree: Any, prefix: str = "") -> Iterator[tuple[str, str]]:
    """(dotted key, value) of every `_target_` in a nested config of dicts and lists."""
    if isinstance(tree, Mapping):
        for k, v in tree.items():
            key = f"{prefix}.{k}" if prefix else str(k)
            if k == "_target_":
                yield key, str(v)
            else:
                yield from targets(v, key)
    elif isinstance(tree, (list, tuple)):
        for i, v in enumerate(tree):
            yield from targets(v, f"{prefix}[{i}]")


def _strings(tree: Any, prefix: str = "") -> Iterator[tuple[str, str]]:
    if isinstance(tree, Mapping):
        for k, v in tree.items():
            yield from _strings(v, f"{prefix}.{k}" if prefix else str(k))
    elif isinstance(tree, (list, tuple)):
        for i, v in enumerate(tree):
            yield from _strings(v, f"{prefix}[{i}]")
    elif isinstance(tree, str):
        yield prefix, tree


def _refuse(key: str, value: str, where: str) -> ConfigError:
    return ConfigError(
        key,
        value,
        f"read from {where}; from a store seedhp runs only its own and torch's callables "
        f"({', '.join(SAFE_TARGETS)}): to run this one, name it with --allow-target {value}",
    )


def check_config(tree: Mapping[str, Any], where: str, allow: Sequence[str] = ()) -> None:
    """A seed-run's resolved config read back from a store (`where` says whose): no Hydra
    node or defaults list (seedhp writes neither), no interpolation (it was resolved before it
    was written; `${oc.env:...}` would copy the environment into the run's params), and only
    allowed `_target_`s."""
    for key in ("hydra", "defaults"):
        if key in tree:
            raise ConfigError(
                key, "...", f"in {where}: a seed-run's config.yaml holds no `{key}` node"
            )
    for key, text in _strings(tree):
        if "${" in text:
            raise ConfigError(
                key, text, f"in {where}: a seed-run's config.yaml is resolved (no interpolation)"
            )
    for key, target in targets(tree):
        if not allowed(target, allow):
            raise _refuse(key, target, where)


def check_overrides(overrides: Sequence[str], where: str, allow: Sequence[str] = ()) -> None:
    """A configuration's overrides read back from a store (a seed-run's seedhp.overrides tag):
    no Hydra overrides (a seed-run's configuration has none), no interpolation, and every
    `_target_` allowed."""
    for o in overrides:
        key, _, value = str(o).partition("=")
        bare = key.lstrip("+~")
        if bare.startswith(("hydra.", "hydra/")) or bare == "hydra":
            raise ConfigError(
                bare, value, f"in {where}: a seed-run's configuration has no Hydra overrides"
            )
        if "${" in value:
            raise ConfigError(
                bare, value, f"in {where}: a stored override is resolved (no interpolation)"
            )
        if bare.endswith("_target_") and not allowed(value.strip("'\""), allow):
            raise _refuse(bare, value, where)


def stored_config_id(value: str, run_id: str) -> str:
    """A config_id tag read from the store: the 12 hex digits seedhp writes (it names files)."""
    if not _CONFIG_ID.fullmatch(value):
        raise ConfigError(
            "config_id",
            value,
            f"the tag of run {run_id!r:.40} is not a config id seedhp writes "
            "(12 hex digits): the store was changed outside seedhp",
        )
    return value


def safe_run_id(value: str, key: str = "--run") -> str:
    """A run id that becomes part of a path: letters, digits, _ and - only (MLflow's are 32 hex
    digits)."""
    if not _RUN_ID.fullmatch(str(value)):
        raise ConfigError(
            key, repr(value)[:80], "a run id is letters, digits, _ and - (MLflow's: 32 hex)"
        )
    return str(value)
