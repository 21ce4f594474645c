"""The sources sweep behind `hydra/sweeper=seedhp_sources` (`experiment=sources`): which source
of randomness moves the score of one configuration.

Each arm is the configuration on the seeds first_seed .. first_seed + n - 1 with one stream
varied (`seeds.<source>=null`: it follows the seed) and every other stream pinned to the source
seed `pin`; the arm `all` varies every stream together. An arm's pins are part of its
config_id (seedhp.job.identity), so each arm is a configuration of its own: the grid sweep
(seedhp.sweep.grid) checks them all before training, packs each arm's seeds, reuses finished
(config_id, seed) runs (re-running the command trains nothing again) and tags each seed-run
with its arm (`tracking.source`, tag seedhp.source). At the end the arms' page
(seedhp.report.sources) goes into `<sweep dir>/sources/` and onto the sweep's parent run
(seedhp.kind=sources).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import Override
from hydra.core.utils import JobReturn
from hydra.plugins.launcher import Launcher
from hydra.types import HydraContext
from omegaconf import DictConfig

from seedhp.errors import ConfigError, exit_on_config_error
from seedhp.job.tracking import Tracker
from seedhp.job.values import check_seed
from seedhp.stats.sources import TOGETHER
from seedhp.sweep.app import App
from seedhp.sweep.grid import Arms, grid_sweep
from seedhp.sweep.tracked import Target
from seedhp.train.seeds import STREAMS


@dataclass(frozen=True)
class SourcesSettings:
    sources: tuple[str, ...]  # the streams varied alone, one arm each
    n: int  # seeds per arm
    together: bool = True  # the arm `all`: every stream varied
    first_seed: int = 1
    pin: int = 0  # the source seed every held-still stream is pinned to
    # streams the command line pins and no arm varies: kept as written in every arm
    held: dict[str, str] = field(default_factory=dict)

    @property
    def seeds(self) -> range:
        return range(self.first_seed, self.first_seed + self.n)

    @property
    def varied(self) -> tuple[str, ...]:
        return STREAMS if self.together else self.sources

    def arms(self) -> list[tuple[str, list[str]]]:
        """(arm, the overrides appended to its jobs), in order: the sources, then all."""
        out = [
            (
                source,
                [
                    *(
                        f"seeds.{s}=null" if s == source else f"seeds.{s}={self.pin}"
                        for s in STREAMS
                        if s not in self.held
                    ),
                    f"tracking.source={source}",
                ],
            )
            for source in self.sources
        ]
        if self.together:
            out.append(
                (TOGETHER, [*(f"seeds.{s}=null" for s in STREAMS), f"tracking.source={TOGETHER}"])
            )
        return out


def sources_settings(
    sweeper: Mapping[str, Any], overrides: Sequence[Override], seed_key: str = "seed"
) -> SourcesSettings:
    """Check the sweep's own settings and the command line; one ConfigError for bad input."""
    raw = sweeper.get("sources")
    sources = tuple(str(s) for s in (raw or ()))
    bad = [s for s in sources if s not in STREAMS]
    if not sources or bad or len(set(sources)) != len(sources):
        why = f"{bad[0]} is not a seed stream; " if bad else ""
        raise ConfigError(
            "hydra.sweeper.sources",
            f"[{','.join(sources)}]",
            f"{why}a list of distinct seed streams from {', '.join(STREAMS)}",
        )
    n = sweeper.get("n")
    if isinstance(n, bool) or not isinstance(n, int) or n < 2:
        raise ConfigError("hydra.sweeper.n", n, "an integer >= 2 (seeds per arm)")
    first = check_seed(sweeper.get("first_seed", 1), "hydra.sweeper.first_seed")
    pin = check_seed(sweeper.get("pin", 0), "hydra.sweeper.pin")
    together = sweeper.get("together", True)
    if not isinstance(together, bool):
        raise ConfigError("hydra.sweeper.together", together, "true or false")
    s = SourcesSettings(sources, n, together, first, pin)
    held = {}
    for o in overrides:
        key, text = o.key_or_group, (o.input_line or "").split("=", 1)[-1]
        if key == seed_key:
            raise ConfigError(
                seed_key,
                text,
                "the sources sweep chooses the seeds (hydra.sweeper.first_seed and "
                "hydra.sweeper.n: seeds first_seed .. first_seed + n - 1); take "
                f"{seed_key} off the command line",
            )
        stream = key.removeprefix("seeds.") if key.startswith("seeds.") else None
        if stream in s.varied:
            raise ConfigError(
                key,
                text,
                "the sources sweep varies this stream in its arms (hydra.sweeper.sources; "
                "the arm all, hydra.sweeper.together=true, varies every stream): take "
                f"{key} off the command line",
            )
        if o.is_sweep_override():
            raise ConfigError(
                key,
                text,
                "the sources sweep measures one configuration: give each key one value (one "
                "command per configuration)",
            )
        if stream in STREAMS:
            held[stream] = o.get_value_element_as_str()
    return SourcesSettings(sources, n, together, first, pin, held)


def sources_sweep(
    hydra_context: HydraContext,
    config: DictConfig,
    launcher: Launcher,
    params: dict[str, str],
    arguments: list[str],
    max_batch_size: int | None,
    app: App,
    sweeper: Mapping[str, Any],
    with_summary: bool = True,
    reuse: bool = True,
) -> list[Sequence[JobReturn]]:
    with exit_on_config_error():
        if not app.own:
            raise ConfigError(
                "hydra/sweeper",
                "seedhp_sources",
                "the sources sweep needs seedhp's seed streams ("
                + ", ".join(f"seeds.{s}" for s in STREAMS)
                + "): it runs seedhp's own task (python -m seedhp)",
            )
        parser = OverridesParser.create(config_loader=hydra_context.config_loader)
        overrides = parser.parse_overrides([f"{k}={v}" for k, v in params.items()] + arguments)
        s = sources_settings(sweeper, overrides, app.seed_key)
    arms = s.arms()
    at_end = functools.partial(_page, s, [a for a, _ in arms], " ".join(arguments))
    seeds = {app.seed_key: f"range({s.seeds.start},{s.seeds.stop})"}
    return grid_sweep(
        hydra_context,
        config,
        launcher,
        {**params, **seeds},
        arguments,
        max_batch_size,
        app,
        with_summary,
        reuse,
        Arms([o for _, o in arms], "sources", at_end),
    )


def _page(
    s: SourcesSettings,
    names: Sequence[str],
    command: str,
    tracker: Tracker,
    parent: str,
    settings: Target,
    sweep_dir: Path,
    runs: Sequence[Any],
    config_ids: list[list[str]],
) -> None:
    from seedhp.report.sources import arm_runs, write_sources  # matplotlib: only at the end

    ids = dict(zip(names, config_ids, strict=True))
    by_arm, sizes = arm_runs(runs, ids, parent)
    labels = [r.label for rs in by_arm.values() for r in rs]
    meta = {
        "label": " ".join(w for w in (labels[0] if labels else "").split() if "seeds." not in w),
        "parent_run_id": parent,
        "command": command,
        "sources": list(s.sources),
        "together": s.together,
        "seeds": f"{s.seeds.start}..{s.seeds.stop - 1}",
        "n": s.n,
        "first_seed": s.first_seed,
        "pin": s.pin,
        "held": dict(s.held),
        "config_ids": ids,
    }
    page, table = write_sources(
        tracker,
        parent,
        meta,
        by_arm,
        sizes,
        settings.objective,
        settings.test_metric,
        sweep_dir / "sources",
        settings.report.random_state,
    )
    print(f"\n{table}\nSources: {page}", flush=True)
