"""`hydra/launcher=packed`: a multirun's jobs that differ only in seed are trained as packs of
up to `pack_size` seeds, one batched model each, in this process (the work: seedhp.sweep.packing).

No `from __future__ import annotations` here: Hydra executes plugin modules outside
sys.modules, where dataclasses cannot resolve string annotations.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from hydra.core.config_store import ConfigStore
from hydra.core.utils import JobReturn

from hydra_plugins.seedhp.seedhp_launcher import SeedhpLauncher


@dataclass
class PackedLauncherConf:
    _target_: str = "hydra_plugins.seedhp.packed_launcher.PackedLauncher"
    pack_size: Any = "auto"  # seeds per pack: an int, or auto (the largest that fits; 32 on CPU)
    progress: bool = True  # a bar on a terminal, else a line per pack epoch (stderr)


ConfigStore.instance().store(
    group="hydra/launcher", name="packed", node=PackedLauncherConf, provider="seedhp"
)


class PackedLauncher(SeedhpLauncher):
    """seedhp's launcher (setup, launch_with the sweeper's hooks, one Composer across launches)
    training packs instead of one job at a time."""

    def __init__(self, pack_size: Any = "auto", progress: bool = True) -> None:
        super().__init__()
        self.pack_size = pack_size
        self.progress = progress
        self.packer: Any = None  # seedhp.packing.Packer: pack sizes that fitted, per configuration

    def launch(
        self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int
    ) -> Sequence[JobReturn]:
        """Hydra's entry (the grid sweeper's): no hooks."""
        return self.launch_with(job_overrides, initial_job_idx, None)

    def launch_with(
        self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int, hooks: Any
    ) -> Sequence[JobReturn]:
        """`launch`, and the sweeper hears each job as it ends (hooks: seedhp.job.hooks.Hooks;
        a study's trials)."""
        from seedhp.sweep.launch import Composer
        from seedhp.sweep.packing import Packer, launch_packed

        assert self.config is not None and self.hydra_context and self.task_function
        if self.composer is None:
            self.composer = Composer(self.hydra_context, self.config)
            self.packer = Packer(self.pack_size)
        return launch_packed(
            self.hydra_context,
            self.task_function,
            self.config,
            job_overrides,
            initial_job_idx,
            self.packer,
            self.composer,
            hooks,
            progress=self.progress,
        )
