"""In-process launching: the work behind `hydra/launcher=seedhp`."""

from __future__ import annotations

import copy
import logging
import re
import time
from collections.abc import Sequence
from pathlib import Path

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import Override
from hydra.core.utils import JobReturn, JobStatus, configure_log, run_job, setup_globals
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig, OmegaConf, open_dict, read_write

from seedhp.job.hooks import Hooks, epoch_reports
from seedhp.job.run import JobInfo, named_choices

log = logging.getLogger("seedhp")


class Composer:
    """Job configs, composed once per configuration shape.

    Hydra composes every job from the config files (~0.1 s each). Most jobs of a sweep or a
    study differ from an already composed one only in plain `key=value` overrides of existing
    keys (`seed=3`, `optimizer.lr=0.0123`): their config is that one's with those values set the
    way Hydra sets them (`OmegaConf.update(cfg, key, value, merge=True)`), and with Hydra's
    record of the overrides replaced. Anything else (a config group choice, `+`, `++`, `~`, a
    `hydra.*` key, a dict value that would merge into the old one) is composed in full.
    """

    def __init__(self, hydra_context: HydraContext, config: DictConfig) -> None:
        self.loader, self.config = hydra_context.config_loader, config
        self.groups = set(OmegaConf.select(config, "hydra.runtime.choices", default={}) or {})
        self.composed: dict[tuple[tuple[str, ...], tuple[str, ...]], DictConfig] = {}
        self.parser = OverridesParser.create()

    def compose(self, overrides: Sequence[str]) -> DictConfig:
        overrides = list(overrides)
        parsed = self.parser.parse_overrides(overrides)
        values = [o for o in parsed if self._plain_value(o)]
        shape = (
            tuple(str(o.input_line) for o in parsed if not self._plain_value(o)),
            tuple(sorted(o.key_or_group for o in values)),
        )
        base = self.composed.get(shape)
        if base is None or len(set(shape[1])) != len(shape[1]):
            base = self.composed[shape] = self.loader.load_sweep_config(self.config, overrides)
            return copy.deepcopy(base)
        cfg = copy.deepcopy(base)
        with read_write(cfg), open_dict(cfg.hydra):
            for o in values:
                OmegaConf.update(cfg, o.key_or_group, o.value(), merge=True)
            cfg.hydra.overrides.task = overrides
            cfg.hydra.job.override_dirname = self._dirname(cfg, parsed)
        return cfg

    def _plain_value(self, o: Override) -> bool:
        return not (
            o.is_sweep_override()
            or o.is_add()
            or o.is_force_add()
            or o.is_delete()
            or o.is_hydra_override()
            or o.package is not None
            or o.key_or_group in self.groups
            or isinstance(o.value(), dict)
        )

    @staticmethod
    def _dirname(cfg: DictConfig, overrides: Sequence[Override]) -> str:
        """hydra.job.override_dirname as Hydra computes it."""
        spec = cfg.hydra.job.config.override_dirname
        lines = sorted(
            str(o.input_line) for o in overrides if o.key_or_group not in spec.exclude_keys
        )
        return re.sub("=", spec.kv_sep, spec.item_sep.join(lines))


def launch_in_process(
    hydra_context: HydraContext,
    task_function: TaskFunction,
    config: DictConfig,
    job_overrides: Sequence[Sequence[str]],
    initial_job_idx: int,
    hooks: Hooks | None = None,
    composer: Composer | None = None,
) -> list[JobReturn]:
    """Run the jobs one after another here; a failing job is reported and the rest go on.

    `hooks.on_job_end(i, job_return)` is called after job i; when it returns False the remaining
    jobs are not run (a pruned trial's seeds), and fewer returns come back than jobs were given.
    `hooks.on_epoch` is installed around each job (Hydra's run_job takes no argument for it).
    """
    on_job_end, on_epoch = (hooks.on_job_end, hooks.on_epoch) if hooks else (None, None)
    setup_globals()
    configure_log(config.hydra.hydra_logging, config.hydra.verbose)
    Path(str(config.hydra.sweep.dir)).mkdir(parents=True, exist_ok=True)
    composer = composer or Composer(hydra_context, config)
    n = len(job_overrides)
    returns = []
    for i, overrides in enumerate(job_overrides):
        idx = initial_job_idx + i
        cfg = composer.compose(overrides)
        with open_dict(cfg):
            cfg.hydra.job.id = idx
            cfg.hydra.job.num = idx
        tic = time.perf_counter()
        with epoch_reports(on_epoch):
            ret = run_job(
                hydra_context=hydra_context,
                task_function=task_function,
                config=cfg,
                job_dir_key="hydra.sweep.dir",
                job_subdir_key="hydra.sweep.subdir",
            )
        # logging stays as the job set it up, so this line also lands in the job's own log
        # a sweeper that reports per job (seedhp's optuna sweeper) prints its own lines
        (log.debug if on_job_end is not None and n == 1 else log.info)(
            "job %*d/%d  %s  %s  (%.1f s)",
            len(str(n)),
            i + 1,
            n,
            _shown(overrides),
            _outcome(ret, cfg),
            time.perf_counter() - tic,
        )
        returns.append(ret)
        if on_job_end is not None and not on_job_end(i, ret):
            break
    configure_log(config.hydra.hydra_logging, config.hydra.verbose)
    return returns


def _shown(overrides: Sequence[str]) -> str:
    """The overrides a reader needs: not the bookkeeping ones seedhp's sweepers add."""
    return " ".join(o for o in overrides if not o.lstrip("+").startswith("tracking."))


def _outcome(ret: JobReturn, cfg: DictConfig) -> str:
    if ret.status == JobStatus.FAILED:
        err = ret._return_value
        return f"FAILED: {type(err).__name__}: {err}"
    objective = OmegaConf.select(cfg, "train.objective", default="objective")
    value = ret.return_value
    return f"{objective} {value:.4f}" if value == value else f"{objective} nan (diverged)"


def job_info(cfg: DictConfig | None = None) -> JobInfo:
    """What Hydra knows about the running job, as plain values (JobInfo() outside Hydra)."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    if not HydraConfig.initialized():
        return JobInfo()
    hc = HydraConfig.get()
    return JobInfo(
        multirun=hc.mode == RunMode.MULTIRUN,
        output_dir=str(hc.runtime.output_dir),
        choices=named_choices(hc.runtime.choices, cfg),
        overrides=tuple(hc.overrides.task),
    )
