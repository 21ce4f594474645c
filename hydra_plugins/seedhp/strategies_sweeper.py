"""`hydra/sweeper=seedhp_strategies` (`experiment=strategies`): the strategy contrast, one
Optuna study per (replicate, seed strategy) at an equal budget in seed-runs, each winner re-run
on shared fresh seeds, and the answer on one page (the work: seedhp.sweep.strategies).

Settings follow `hydra/sweeper=seedhp_optuna` where they mean the same (`sampler`, `pruner`,
`direction`, `storage`, `params`, `n_jobs`); the contrast's own are `replicates`, `strategies`,
`budgets` (or one `budget`), `seeds_per_trial`, `fresh_seeds`, `seed_block`, `seed_shopping`,
`draw_split`, `draw_test`, `startup_share` and `name`.

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
    replicates: int = 10  # draws of the whole protocol (seeds, sampler seed, split, test part)
    strategies: List[str] = field(default_factory=lambda: ["tuned", "averaged", "fixed"])
    # the arms: one study per replicate and strategy
    budgets: List[int] = field(default_factory=lambda: [24, 72, 216])  # seed-runs per study
    budget: Optional[int] = None  # one budget: the same as budgets=[N]
    seeds_per_trial: int = 3  # averaged: k, the seeds every trial of a study shares
    fresh_seeds: int = 20  # each winner re-run on these, shared by a replicate's arms
    seed_block: int = 1000  # training seeds per replicate: replicate r uses [r*block, (r+1)*block)
    seed_shopping: int = 10  # the fixed winner re-trained on this many more seeds (0: no arm)
    draw_split: bool = True  # replicate r validates on seeds.split=r (false: one shared split)
    draw_test: Any = "auto"  # auto | true | false: replicate r's test part drawn too (auto: where
    # the data set's test part is not an official one)
    startup_share: float = 0.4  # a sampler other than random: its start-up share of each study
    name: Optional[str] = None  # null: derived from the space and settings, so a re-run resumes
    sampler: SamplerConf = field(default_factory=lambda: SamplerConf(name="random"))
    # every study's sampler; replicate r samples with seed sampler.seed + r
    n_jobs: int = 1  # trials asked (and their seed-runs launched) at a time
    pruner: PrunerConf = field(default_factory=PrunerConf)  # every study's pruner (none)
    direction: Optional[str] = None  # null: from train.objective
    storage: Optional[str] = None  # null: sqlite:///<abs paths.outputs>/optuna.db
    heartbeat_seconds: int = 10  # a trial silent for 6x this in the storage is failed
    max_failure_rate: float = 0.5  # stop a study when more of its trials failed (after 5)
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
