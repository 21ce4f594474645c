"""`hydra/launcher=seedhp`: jobs run one after another in this process (imports and data loaded
once), each composed once per configuration, with `job i/n` progress."""

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from hydra.core.config_store import ConfigStore
from hydra.core.utils import JobReturn
from hydra.plugins.launcher import Launcher
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig


@dataclass
class SeedhpLauncherConf:
    _target_: str = "hydra_plugins.seedhp.seedhp_launcher.SeedhpLauncher"


ConfigStore.instance().store(
    group="hydra/launcher", name="seedhp", node=SeedhpLauncherConf, provider="seedhp"
)


class SeedhpLauncher(Launcher):
    def __init__(self) -> None:
        self.config: DictConfig | None = None
        self.hydra_context: HydraContext | None = None
        self.task_function: TaskFunction | None = None
        self.composer: Any = (
            None  # seedhp.launch.Composer, kept across launches (a study's trials)
        )

    def setup(
        self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig
    ) -> None:
        self.config, self.hydra_context, self.task_function = config, hydra_context, task_function

    def launch(
        self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int
    ) -> Sequence[JobReturn]:
        return self.launch_with(job_overrides, initial_job_idx, None)

    def launch_with(
        self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int, hooks: Any
    ) -> Sequence[JobReturn]:
        """`launch`, and the sweeper hears each job as it ends (hooks: seedhp.job.hooks.Hooks)."""
        from seedhp.sweep.launch import Composer, launch_in_process

        assert self.config is not None and self.hydra_context and self.task_function
        if self.composer is None:
            self.composer = Composer(self.hydra_context, self.config)
        return launch_in_process(
            self.hydra_context,
            self.task_function,
            self.config,
            job_overrides,
            initial_job_idx,
            hooks,
            self.composer,
        )
