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

import importlib.machinery
import importlib.util
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

from hydra.core.config_store import ConfigStore
from hydra.core.plugins import Plugins
from hydra.plugins.launcher import Launcher
from hydra.plugins.sweeper import Sweeper
from hydra.types import HydraContext, TaskFunction
from omegaconf import MISSING, DictConfig, OmegaConf

from seedhp.sweep.samplers import (
    PRUNER_CLASSES,
    PRUNER_KEYS,
    REMOVED,
    SAMPLER_CLASSES,
    SAMPLER_KEYS,
)

SAMPLERS = tuple(SAMPLER_CLASSES)
PRUNERS = tuple(PRUNER_CLASSES)


@dataclass
class SamplerConf:  # the strategy contrast's (one sampler for every study): the short form
    name: str = "tpe"  # tpe | random | gp | cmaes | grid | bruteforce | qmc
    seed: Optional[int] = None  # the sampler's own seed, not a training seed


@dataclass
class PrunerConf:
    name: str = "none"  # none | median | wilcoxon | hyperband; null arguments: Optuna's
    p_threshold: Optional[float] = None  # wilcoxon: prune when worse than the best (0.1)
    n_startup_steps: Optional[int] = None  # wilcoxon: seeds reported before pruning (2)
    n_startup_trials: Optional[int] = None  # median: trials finished before pruning (5)
    n_warmup_steps: Optional[int] = None  # median: steps before a trial can be pruned (0)
    min_resource: Optional[int] = None  # hyperband (1)
    reduction_factor: Optional[int] = None  # hyperband (3)


def _node(module: str, cls: str, keys: tuple, name: Optional[str] = None) -> Dict[str, Any]:
    """A sampler (pruner) node in hydra-optuna-sweeper's form: `_target_` and the keyword
    arguments of every sampler (null: Optuna's default, not passed), so a `_target_` from an
    app's YAML with its own arguments composes, and `name` for seedhp's short form."""
    return {"_target_": f"optuna.{module}.{cls}", "name": name, **{k: None for k in keys}}


@dataclass
class OptunaSweeperConf:
    _target_: str = "hydra_plugins.seedhp.optuna_sweeper.OptunaSweeper"
    _recursive_: bool = False  # the sampler's and pruner's _target_ are built by seedhp, checked
    defaults: List[Any] = field(default_factory=lambda: [{"sampler": "tpe"}, {"pruner": "none"}])
    # the sampler and pruner config groups chosen by default
    sampler: Any = MISSING  # hydra/sweeper/sampler=<name>, or _target_ + its arguments
    pruner: Any = MISSING  # hydra/sweeper/pruner=<name>, or _target_ + its arguments
    direction: Any = None  # minimize | maximize | a list of them; null: from the objective's name
    n_trials: int = 20  # finished trials the study ends with, over every process and run
    study_name: Optional[str] = None  # null: derived from the search, so a re-run resumes
    storage: Optional[str] = None  # null: in memory (as Optuna); sqlite:///optuna.db persists
    seed_strategy: Optional[str] = None  # tuned | averaged | fixed | none; null: tuned when
    # the seed is searched, else none (another app) or tuned (seedhp's own)
    seed_pool: Any = 100  # averaged: the seeds every trial shares: N (0..N-1), [a,b,..],
    # or "range(a,b)"
    seeds_per_trial: int = 5  # averaged: a trial's seeds are the pool's first ones
    aggregate: str = "mean"  # averaged: mean | median | iqm | min (the worst seed)
    heartbeat_seconds: int = 10  # a trial silent for 6x this in the storage is failed
    max_failure_rate: float = 0.5  # stop when more of this process's trials failed (after 5)
    n_jobs: int = 1  # trials asked and launched together, as one batch of the launcher
    params: Optional[Dict[str, str]] = None  # the search space; the command line wins
    custom_search_space: Optional[str] = None  # dotted path of f(cfg, trial): more suggestions
    seed_key: str = "seed"  # the config key that holds the seed (e.g. trainer.seed)
    objective: Optional[str] = None  # other apps: the returned value to optimise (dict returns)
    tracking_uri: Optional[str] = None  # other apps: MLflow store; null: outputs/mlflow.db
    experiment: Optional[str] = None  # other apps: MLflow experiment; null: seedhp
    ignore_keys: Optional[List[str]] = None  # other apps: keys left out of config_id
    test_metric: Optional[str] = None  # other apps: the test score; null: objective val->test


ConfigStore.instance().store(
    group="hydra/sweeper", name="seedhp_optuna", node=OptunaSweeperConf, provider="seedhp"
)
_NODES = [
    *(("sampler", n, _node("samplers", c, SAMPLER_KEYS)) for n, c in SAMPLER_CLASSES.items()),
    # names hydra-optuna-sweeper still lists: refused with what to write instead
    *(("sampler", n, _node("samplers", "TPESampler", SAMPLER_KEYS, name=n)) for n in REMOVED),
    *(("pruner", n, _node("pruners", c, PRUNER_KEYS)) for n, c in PRUNER_CLASSES.items()),
]
for _group, _name, _conf in _NODES:
    ConfigStore.instance().store(
        group=f"hydra/sweeper/{_group}", name=_name, node=_conf, provider="seedhp"
    )


PEER_CLASS = "hydra_plugins.hydra_optuna_sweeper.optuna_sweeper.OptunaSweeper"


class OptunaSweeper(Sweeper):
    peer_named = False  # hydra.sweeper._target_ named hydra-optuna-sweeper's class

    def __init__(self, **settings: Any) -> None:
        self.settings = settings
        self.config: Optional[DictConfig] = None
        self.hydra_context: Optional[HydraContext] = None
        self.launcher: Optional[Launcher] = None
        self.app: Any = None  # seedhp.sweep.app.App: seedhp's own task or any app's

    def setup(
        self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig
    ) -> None:
        from seedhp.sweep.app import peer_named, prepare

        if self.peer_named:
            peer_named(self.settings, PEER_CLASS)
        self.config, self.hydra_context = config, hydra_context
        self.app = prepare(task_function, config, self.settings)
        self.launcher = Plugins.instance().instantiate_launcher(
            hydra_context=hydra_context, task_function=self.app.task, config=config
        )

    def sweep(self, arguments: List[str]) -> Any:
        from seedhp.sweep.plain import is_plain, plain_sweep

        if is_plain(self.app, self.values(), arguments):  # seed_strategy=none
            return self.run(plain_sweep, arguments)
        from seedhp.sweep.study import optuna_sweep

        return self.run(optuna_sweep, arguments)

    def values(self) -> Dict[str, Any]:
        """The settings as plain values."""
        return {
            k: OmegaConf.to_container(v, resolve=True) if OmegaConf.is_config(v) else v
            for k, v in self.settings.items()
        }

    def run(self, work: Any, arguments: List[str]) -> Any:
        """Hand the sweep to `work` (seedhp.sweep.*) with the settings as plain values."""
        assert self.config is not None and self.hydra_context is not None and self.launcher
        from seedhp.faults import exit_on_fault

        with exit_on_fault():  # a full disk, a read-only store: one line, runs closed
            return work(
                self.hydra_context,
                self.config,
                self.launcher,
                self.values(),
                list(arguments),
                self.app,
            )


def _peer_installed() -> bool:
    try:
        return importlib.util.find_spec("hydra_plugins.hydra_optuna_sweeper") is not None
    except (ImportError, ValueError):
        return False


def _answer_to_the_peers_name() -> None:
    """lightning-hydra-template's hparams_search configs name hydra-optuna-sweeper's class in
    `hydra.sweeper._target_`, which replaces seedhp_optuna's. Where that package is not
    installed (it needs optuna<3), its module name is given to a module holding seedhp's
    sweeper under the peer's class name, which says so when it runs (seedhp.sweep.app)."""
    import sys
    import types

    package_name, _, class_name = PEER_CLASS.rpartition(".")
    parent_name = package_name.rpartition(".")[0]
    parent = types.ModuleType(parent_name)
    parent.__spec__ = importlib.machinery.ModuleSpec(parent_name, None, is_package=True)
    parent.__path__ = []
    module = types.ModuleType(package_name)
    module.__spec__ = importlib.machinery.ModuleSpec(package_name, None)

    class PeerNamedSweeper(OptunaSweeper):
        peer_named = True

    PeerNamedSweeper.__module__ = package_name
    PeerNamedSweeper.__name__ = PeerNamedSweeper.__qualname__ = class_name
    setattr(module, class_name, PeerNamedSweeper)
    parent.optuna_sweeper = module  # type: ignore[attr-defined]
    sys.modules[parent_name], sys.modules[package_name] = parent, module
    setattr(sys.modules["hydra_plugins"], parent_name.rpartition(".")[2], parent)
    globals()["PeerNamedSweeper"] = PeerNamedSweeper  # Hydra's plugin scan registers it


if not _peer_installed():
    _answer_to_the_peers_name()
