"""Command-line pre-flight: unknown config keys and options in one line, before Hydra starts.

Hydra reports a misspelled key or option in five to ten lines of help; seedhp's contract for bad
input is one line naming the key, the value and what is allowed. This composes the task config
once with the given overrides (the first value of each sweep) and translates those two mistakes;
anything else is left to Hydra and to seedhp's own checks.
"""

from __future__ import annotations

import difflib
import shutil
from collections.abc import Sequence
from pathlib import Path

from hydra import compose, initialize_config_dir
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.errors import ConfigCompositionException, HydraException, MissingConfigException
from omegaconf import DictConfig, OmegaConf

from seedhp.errors import ConfigError
from seedhp.sweep.bound import check_grid
from seedhp.sweep.bound import values as bounded_values


def preflight(overrides: Sequence[str], conf_dir: Path) -> None:
    """Raise ConfigError for an unknown option of a config group or an unknown key."""
    try:
        parsed = OverridesParser.create().parse_overrides(list(overrides))
    except HydraException:
        return  # a syntax error: Hydra's own message names the override and the position
    check_grid(parsed)  # a sweep too large to expand is refused before it is
    firsts: list[str] = []  # each override with its first value (a sweep's first element)
    for o in parsed:
        if o.key_or_group in ("hydra/sweeper/sampler", "hydra/sweeper/pruner"):
            _check_study_option(o.key_or_group, o.value())
        slurm = o.key_or_group == "hydra/launcher" and str(o.value()).endswith("submitit_slurm")
        if slurm and shutil.which("sbatch") is None:
            raise ConfigError(
                "hydra/launcher",
                o.value(),
                "no SLURM on this machine (sbatch not found); "
                f"{str(o.value()).replace('slurm', 'local')} runs the same here",
            )
        if o.is_delete():
            continue
        if o.is_sweep_override():
            if not o.is_discrete_sweep():
                continue
            values: list[object] = bounded_values(o)
            texts = list(o.sweep_string_iterator())
        else:
            values, texts = [o.value()], [o.get_value_element_as_str()]
        group = conf_dir / o.key_or_group
        hydras = o.key_or_group.startswith("hydra/")  # Hydra's groups: plugins add options
        if group.is_dir() and o.package is None and not hydras:
            options = sorted(p.stem for p in group.glob("*.yaml"))
            for v in values:
                if str(v) not in options:
                    raise ConfigError(o.key_or_group, v, f"allowed: {', '.join(options)}")
        if texts:
            firsts.append(f"{o.get_key_element()}={texts[0]}")
    try:
        cfg = _compose(conf_dir, firsts)
    except ConfigCompositionException as err:
        cause = f"\n{err.__cause__}" if err.__cause__ is not None else ""
        raise _one_line(f"{err}{cause}", firsts, conf_dir) from None
    except MissingConfigException:
        return  # a group option we did not see as one: Hydra's message lists the options
    _check_plugins(cfg)


def _compose(conf_dir: Path, overrides: list[str]) -> DictConfig:
    """The config with Hydra's own node (hydra.sweeper.*, hydra.launcher.*), as a run gets it."""
    with initialize_config_dir(config_dir=str(conf_dir), version_base="1.3"):
        return compose("config", overrides=overrides, return_hydra_config=True)


def _one_line(message: str, firsts: list[str], conf_dir: Path) -> ConfigError:
    """Hydra's several-line composition error as seedhp's one line, naming the override."""
    lines = [line.strip() for line in message.splitlines() if line.strip()]
    key = _unknown_key(message)
    if key is not None:
        value = next(f.split("=", 1)[1] for f in firsts if f.split("=", 1)[0] == key)
        base = _compose(conf_dir, [f for f in firsts if f.split("=", 1)[0] != key])
        parent, _, leaf = key.rpartition(".")
        node = OmegaConf.select(base, parent) if parent else base
        siblings = [str(k) for k in node] if OmegaConf.is_dict(node) else []
        close = difflib.get_close_matches(leaf, siblings, n=1)
        hint = f"did you mean {parent + '.' if parent else ''}{close[0]}? " if close else ""
        return ConfigError(key, value, f"no such key; {hint}(+{key}=... adds a new one)")
    if lines and lines[0].startswith("Error merging override "):
        key, _, value = lines[0][len("Error merging override ") :].partition("=")
        if key in ("hydra.sweeper.sampler", "hydra.sweeper.pruner"):
            from seedhp.sweep.study_settings import PRUNERS, SAMPLERS

            group, names = key.rsplit(".", 1)[1], SAMPLERS if key.endswith("sampler") else PRUNERS
            return ConfigError(
                key,
                value,
                f"allowed: {', '.join(names)}, chosen with hydra/sweeper/{group}=<name> "
                f"(or hydra.sweeper.{group}.name=<name>)",
            )
        reason = lines[1] if len(lines) > 1 else "cannot be set here"
        return ConfigError(key, value, reason)
    return ConfigError("overrides", " ".join(firsts), lines[0] if lines else message)


def _check_plugins(cfg: DictConfig) -> None:
    """Settings of seedhp's launchers that are otherwise read only when the first job launches."""
    target = str(OmegaConf.select(cfg, "hydra.launcher._target_", default=""))
    if target.startswith("hydra_plugins.seedhp.packed"):
        from seedhp.sweep.packing import Packer

        Packer(OmegaConf.select(cfg, "hydra.launcher.pack_size"))


def _check_study_option(group: str, value: object) -> None:
    """hydra/sweeper/sampler=<name> and hydra/sweeper/pruner=<name> (the optuna sweeper's)."""
    from seedhp.sweep.study_settings import PRUNERS, SAMPLERS

    allowed = SAMPLERS if group.endswith("sampler") else PRUNERS
    if value not in allowed:
        raise ConfigError(group, value, f"allowed: {', '.join(allowed)}")


def _unknown_key(message: str) -> str | None:
    """The key of Hydra's "Could not override 'train.epoch'." (not in struct), if that is it."""
    first = message.splitlines()[0] if message else ""
    if first.startswith("Could not override '") and "To append to your config use +" in message:
        return first.split("'")[1]
    return None
