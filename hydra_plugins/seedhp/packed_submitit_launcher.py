"""`hydra/launcher=packed_submitit_slurm` and `packed_submitit_local`: hydra-submitit-launcher's
settings (partition, gpus_per_node, timeout_min, array_parallelism, ...) plus `pack_size`; one
submitit task trains one pack of a configuration's seeds (seedhp.sweep.packing), so a SLURM array
of N tasks trains N packs. Every seed still gets its own job directory, JobReturn and MLflow run.

No `from __future__ import annotations` here: Hydra executes plugin modules outside
sys.modules, where dataclasses cannot resolve string annotations.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Optional

from hydra.core.config_store import ConfigStore
from hydra.core.utils import JobReturn
from hydra.plugins.launcher import Launcher
from hydra.types import HydraContext, TaskFunction
from hydra_plugins.hydra_submitit_launcher.config import LocalQueueConf, SlurmQueueConf
from omegaconf import DictConfig


@dataclass
class PackedSlurmConf(SlurmQueueConf):
    _target_: str = "hydra_plugins.seedhp.packed_submitit_launcher.PackedSlurmLauncher"
    pack_size: Any = "auto"  # seeds per SLURM task: an int, or auto (256, split on OOM)


@dataclass
class PackedLocalConf(LocalQueueConf):
    _target_: str = "hydra_plugins.seedhp.packed_submitit_launcher.PackedLocalLauncher"
    pack_size: Any = "auto"  # seeds per local submitit task: an int, or auto


_store = ConfigStore.instance()
_store.store(
    group="hydra/launcher", name="packed_submitit_slurm", node=PackedSlurmConf, provider="seedhp"
)
_store.store(
    group="hydra/launcher", name="packed_submitit_local", node=PackedLocalConf, provider="seedhp"
)


class _PackedSubmititLauncher(Launcher):
    executor = "abstract"

    def __init__(self, pack_size: Any = "auto", **params: Any) -> None:
        self.pack_size = pack_size
        self.params = params
        self.config: Optional[DictConfig] = None
        self.hydra_context: Optional[HydraContext] = None
        self.task_function: Optional[TaskFunction] = None

    def setup(
        self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig
    ) -> None:
        self.config, self.hydra_context, self.task_function = config, hydra_context, task_function

    def __call__(
        self, job_overrides: Sequence[Sequence[str]], job_numbers: Sequence[int], state: Any
    ) -> Sequence[JobReturn]:
        """In the submitit task: train this pack (halving it on OOM or failure)."""
        from seedhp.sweep.submit import train_pack_task

        assert self.config is not None and self.hydra_context and self.task_function
        return train_pack_task(self, job_overrides, job_numbers, state)

    def launch(
        self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int
    ) -> Sequence[JobReturn]:
        from seedhp.sweep.submit import submit_packs

        assert self.config is not None
        return submit_packs(self, job_overrides, initial_job_idx)


class PackedSlurmLauncher(_PackedSubmititLauncher):
    executor = "slurm"


class PackedLocalLauncher(_PackedSubmititLauncher):
    executor = "local"
