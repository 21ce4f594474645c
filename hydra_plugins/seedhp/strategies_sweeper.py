"""`hydra/sweeper=seedhp_strategies` (`experiment=strategies`): the strategy contrast, one
Optuna study per (replicate, seed strategy) at an equal budget in seed-runs, each winner re-run
on shared fresh seeds, and the answer on one page (the work: seedhp.sweep.strategies).

Settings follow `hydra/sweeper=seedhp_optuna` where they mean the same (`sampler`, `pruner`,
`direction`, `storage`, `params`); the contrast's own are `replicates`, `strategies`, `budget`,
`seeds_per_trial`, `fresh_seeds`, `seed_block` and `name`.

No `from __future__ import annotations` here: Hydra executes plugin modules outside
sys.modules, where dataclasses cannot resolve string annotations.
"""

from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

from hydra.core.config_store import ConfigStore

from hydra_plugins.seedhp.optuna_sweeper import OptunaSweeper, PrunerConf, SamplerConf


@dataclass
class StrategiesSweeperConf:
    _target_: str = "hydra_plugins.seedhp.strategies_sweeper.StrategiesSweeper"
    replicates: int = 5  # independent draws of the whole protocol
    strategies: List[str] = field(default_factory=lambda: ["tuned", "averaged", "fixed"])
    budget: int = 24  # seed-runs per study; an averaged trial of k seeds costs k
    seeds_per_trial: int = 3  # averaged: k, the seeds every trial of a study shares
    fresh_seeds: int = 20  # each winner re-run on these, shared by a replicate's strategies
    seed_block: int = 1000  # training seeds per replicate: replicate r uses [r*block, (r+1)*block)
    name: Optional[str] = None  # null: derived from the space and settings, so a re-run resumes
    sampler: SamplerConf = field(default_factory=SamplerConf)  # replicate r: sampler.seed + r
    pruner: PrunerConf = field(default_factory=PrunerConf)
    direction: Optional[str] = None  # null: from train.objective
    storage: Optional[str] = None  # null: sqlite:///<abs paths.outputs>/optuna.db
    heartbeat_seconds: int = 10
    max_failure_rate: float = 0.5
    params: Optional[Dict[str, str]] = None  # the search space; the command line wins


ConfigStore.instance().store(
    group="hydra/sweeper",
    name="seedhp_strategies",
    node=StrategiesSweeperConf,
    provider="seedhp",
)


class StrategiesSweeper(OptunaSweeper):
    """The Optuna sweeper's set-up (the app, its launcher); the contrast's own sweep."""

    def sweep(self, arguments: List[str]) -> Any:
        from seedhp.sweep.strategies import strategies_sweep

        return self.run(strategies_sweep, arguments)
