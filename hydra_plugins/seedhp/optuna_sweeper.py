"""`hydra/sweeper=seedhp_optuna`: Optuna studies with the seed as a hyperparameter
(seedhp.sweep.study), for seedhp's own app (which also accepts `hydra/sweeper=optuna`, from its own
config tree) and for any Hydra app whose task returns a float or a dict of floats.

Settings and syntax follow hydra-optuna-sweeper, so its users can switch without relearning:
`hydra/sweeper/sampler=random` (or `hydra.sweeper.sampler.name=random`) with
`hydra.sweeper.sampler.seed`, `hydra.sweeper.direction`, `n_trials`, `study_name`, `storage`,
`params`. Added: `seed_strategy`, `seed_pool`, `seeds_per_trial`, `aggregate`, `pruner`, and for
other apps `seed_key`, `objective`, `tracking_uri`, `experiment` (seedhp.sweep.tracked).

No `from __future__ import annotations` here: Hydra executes plugin modules outside
sys.modules, where dataclasses cannot resolve string annotations.
"""

from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

from hydra.core.config_store import ConfigStore
from hydra.core.plugins import Plugins
from hydra.plugins.launcher import Launcher
from hydra.plugins.sweeper import Sweeper
from hydra.types import HydraContext, TaskFunction
from omegaconf import MISSING, DictConfig, OmegaConf

SAMPLERS = ("tpe", "random", "gp", "cmaes", "grid", "bruteforce", "qmc")
PRUNERS = ("none", "median", "wilcoxon", "hyperband")


@dataclass
class SamplerConf:
    name: str = "tpe"  # tpe | random | gp | cmaes | grid | bruteforce | qmc
    seed: Optional[int] = None  # the sampler's own seed, not a training seed


@dataclass
class PrunerConf:
    name: str = "none"  # none | median | wilcoxon | hyperband
    p_threshold: float = 0.1  # wilcoxon: prune when worse than the best at this p-value
    n_startup_steps: int = 2  # wilcoxon: seeds a trial reports before it can be pruned
    n_startup_trials: int = 5  # median: trials finished before pruning starts
    n_warmup_steps: int = 0  # median: steps of a trial before it can be pruned
    min_resource: int = 1  # hyperband
    reduction_factor: int = 3  # hyperband


@dataclass
class OptunaSweeperConf:
    _target_: str = "hydra_plugins.seedhp.optuna_sweeper.OptunaSweeper"
    defaults: List[Any] = field(default_factory=lambda: [{"sampler": "tpe"}, {"pruner": "none"}])
    sampler: SamplerConf = MISSING
    pruner: PrunerConf = MISSING
    direction: Optional[str] = None  # maximize | minimize; null: from train.objective
    n_trials: int = 20  # finished trials the study ends with, over every process and run
    study_name: Optional[str] = None  # null: derived from the search, so a re-run resumes
    storage: Optional[str] = None  # null: sqlite:///<abs paths.outputs>/optuna.db
    seed_strategy: str = "tuned"  # tuned | averaged | fixed
    seed_pool: Any = (
        100  # averaged: the seeds every trial shares: N (0..N-1), [a,b,..], "range(a,b)"
    )
    seeds_per_trial: int = 5  # averaged: a trial's seeds are the pool's first ones
    aggregate: str = "mean"  # averaged: mean | median | iqm | min (the worst seed)
    heartbeat_seconds: int = 10  # a trial silent for 6x this in the storage is failed
    max_failure_rate: float = 0.5  # stop when more of this process's trials failed (after 5)
    n_jobs: int = 1  # hydra-optuna-sweeper's; one trial at a time: share a study across processes
    params: Optional[Dict[str, str]] = None  # the search space; the command line wins
    seed_key: str = "seed"  # the config key that holds the seed (e.g. trainer.seed)
    objective: Optional[str] = None  # other apps: the returned value to optimise (dict returns)
    tracking_uri: Optional[str] = None  # other apps: MLflow store; null: outputs/mlflow.db
    experiment: Optional[str] = None  # other apps: MLflow experiment; null: seedhp
    ignore_keys: Optional[List[str]] = None  # other apps: keys left out of config_id
    test_metric: Optional[str] = None  # other apps: the test score; null: objective val->test


ConfigStore.instance().store(
    group="hydra/sweeper", name="seedhp_optuna", node=OptunaSweeperConf, provider="seedhp"
)
for _name in SAMPLERS:
    ConfigStore.instance().store(
        group="hydra/sweeper/sampler", name=_name, node=SamplerConf(name=_name), provider="seedhp"
    )
for _name in PRUNERS:
    ConfigStore.instance().store(
        group="hydra/sweeper/pruner", name=_name, node=PrunerConf(name=_name), provider="seedhp"
    )


class OptunaSweeper(Sweeper):
    def __init__(self, **settings: Any) -> None:
        self.settings = settings
        self.config: Optional[DictConfig] = None
        self.hydra_context: Optional[HydraContext] = None
        self.launcher: Optional[Launcher] = None
        self.app: Any = None  # seedhp.sweep.app.App: seedhp's own task or any app's

    def setup(
        self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig
    ) -> None:
        from seedhp.sweep.app import prepare

        self.config, self.hydra_context = config, hydra_context
        self.app = prepare(task_function, config, self.settings)
        self.launcher = Plugins.instance().instantiate_launcher(
            hydra_context=hydra_context, task_function=self.app.task, config=config
        )

    def sweep(self, arguments: List[str]) -> Any:
        from seedhp.sweep.study import optuna_sweep

        return self.run(optuna_sweep, arguments)

    def run(self, work: Any, arguments: List[str]) -> Any:
        """Hand the sweep to `work` (seedhp.sweep.*) with the settings as plain values."""
        assert self.config is not None and self.hydra_context is not None and self.launcher
        settings = {
            k: OmegaConf.to_container(v, resolve=True) if OmegaConf.is_config(v) else v
            for k, v in self.settings.items()
        }
        from seedhp.faults import exit_on_fault

        with exit_on_fault():  # a full disk, a read-only store: one line, runs closed
            return work(
                self.hydra_context, self.config, self.launcher, settings, list(arguments), self.app
            )
