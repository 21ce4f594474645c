"""`hydra/sweeper=seedhp`: Hydra's grid (cartesian product) semantics, checked whole before any
training, with an MLflow parent run and a per-configuration summary at the end; for seedhp's
own app and for any Hydra app whose task returns a float or a dict of floats
(seedhp.sweep.tracked).

No `from __future__ import annotations` here: Hydra executes plugin modules outside
sys.modules, where dataclasses cannot resolve string annotations.
"""

from dataclasses import dataclass
from typing import Any, List, Optional

from hydra.core.config_store import ConfigStore
from hydra.core.plugins import Plugins
from hydra.plugins.launcher import Launcher
from hydra.plugins.sweeper import Sweeper
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig


@dataclass
class SeedhpSweeperConf:
    _target_: str = "hydra_plugins.seedhp.seedhp_sweeper.SeedhpSweeper"
    max_batch_size: int | None = None  # jobs handed to the launcher at once; null: all
    params: dict[str, str] | None = None  # sweep overrides kept in config (the CLI wins)
    summary: bool = True  # print and log the per-configuration summary at the end
    reuse: bool = True  # a (configuration, seed) already finished in the store is not retrained
    seed_key: str = "seed"  # the config key that holds the seed (e.g. trainer.seed)
    objective: Optional[str] = None  # other apps: the returned value summarised (dict returns)
    tracking_uri: Optional[str] = None  # other apps: MLflow store; null: outputs/mlflow.db
    experiment: Optional[str] = None  # other apps: MLflow experiment; null: seedhp
    ignore_keys: Optional[List[str]] = None  # other apps: keys left out of config_id
    test_metric: Optional[str] = None  # other apps: the test score; null: objective val->test
    reseed_of: Optional[str] = None  # other apps: fresh-seed re-runs of that run's winners


ConfigStore.instance().store(
    group="hydra/sweeper", name="seedhp", node=SeedhpSweeperConf, provider="seedhp"
)


class SeedhpSweeper(Sweeper):
    def __init__(
        self,
        max_batch_size: int | None = None,
        params: dict[str, str] | None = None,
        summary: bool = True,
        reuse: bool = True,
        seed_key: str = "seed",
        objective: Optional[str] = None,
        tracking_uri: Optional[str] = None,
        experiment: Optional[str] = None,
        ignore_keys: Optional[List[str]] = None,
        test_metric: Optional[str] = None,
        reseed_of: Optional[str] = None,
    ) -> None:
        self.app_settings = {
            "seed_key": seed_key,
            "objective": objective,
            "tracking_uri": tracking_uri,
            "experiment": experiment,
            "ignore_keys": ignore_keys,
            "test_metric": test_metric,
            "reseed_of": reseed_of,
        }
        self.app: Any = None  # seedhp.sweep.app.App
        self.max_batch_size = max_batch_size
        self.params = dict(params or {})
        self.summary = summary
        self.reuse = reuse
        self.config: DictConfig | None = None
        self.hydra_context: HydraContext | None = None
        self.launcher: Launcher | None = None

    def setup(
        self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig
    ) -> None:
        from seedhp.sweep.app import prepare

        self.config, self.hydra_context = config, hydra_context
        self.app = prepare(task_function, config, self.app_settings)
        self.launcher = Plugins.instance().instantiate_launcher(
            hydra_context=hydra_context, task_function=self.app.task, config=config
        )

    def sweep(self, arguments: list[str]) -> Any:
        from seedhp.faults import exit_on_fault
        from seedhp.sweep.grid import grid_sweep

        assert self.config is not None and self.hydra_context is not None and self.launcher
        with exit_on_fault():  # a full disk, a read-only store: one line, runs closed
            return grid_sweep(
                self.hydra_context,
                self.config,
                self.launcher,
                self.params,
                list(arguments),
                self.max_batch_size,
                self.app,
                self.summary,
                self.reuse,
            )
