"""`hydra/sweeper=seedhp_sources` (`experiment=sources`): one configuration with each source of
randomness (seed stream) varied alone, the others pinned, and all varied together; the grid
sweeper's checks, packs, reuse and summary, and a page saying which source moves the score
(the work: seedhp.sweep.sources).

Its own settings are `sources`, `n`, `together`, `first_seed` and `pin`; the rest are
`hydra/sweeper=seedhp`'s.

No `from __future__ import annotations` here: Hydra executes plugin modules outside
sys.modules, where dataclasses cannot resolve string annotations.
"""

from dataclasses import dataclass, field
from typing import Any, List

from hydra.core.config_store import ConfigStore

from hydra_plugins.seedhp.seedhp_sweeper import SeedhpSweeper, SeedhpSweeperConf


@dataclass
class SourcesSweeperConf(SeedhpSweeperConf):
    _target_: str = "hydra_plugins.seedhp.sources_sweeper.SourcesSweeper"
    sources: List[str] = field(
        default_factory=lambda: ["init", "data", "augment", "dropout", "split"]
    )  # the streams varied alone, one arm each
    n: int = 20  # seeds per arm
    together: bool = True  # the arm `all`: every stream varied at once
    first_seed: int = 1  # each arm trains seeds first_seed .. first_seed + n - 1
    pin: int = 0  # the source seed every held-still stream is pinned to


ConfigStore.instance().store(
    group="hydra/sweeper", name="seedhp_sources", node=SourcesSweeperConf, provider="seedhp"
)


class SourcesSweeper(SeedhpSweeper):
    """The grid sweeper's set-up (the app, its launcher); the sources sweep's own sweep."""

    def __init__(
        self,
        sources: Any = None,
        n: Any = 20,
        together: Any = True,
        first_seed: Any = 1,
        pin: Any = 0,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.sources = {
            "sources": list(sources) if sources is not None else None,
            "n": n,
            "together": together,
            "first_seed": first_seed,
            "pin": pin,
        }

    def sweep(self, arguments: List[str]) -> Any:
        from seedhp.faults import exit_on_fault
        from seedhp.sweep.sources import sources_sweep

        assert self.config is not None and self.hydra_context is not None and self.launcher
        with exit_on_fault():  # a full disk, a read-only store: one line, runs closed
            return sources_sweep(
                self.hydra_context,
                self.config,
                self.launcher,
                self.params,
                list(arguments),
                self.max_batch_size,
                self.app,
                self.sources,
                self.summary,
                self.reuse,
            )
