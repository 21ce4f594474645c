"""Packed launching: the work behind `hydra/launcher=packed`.

A sweep's jobs that differ only in `seed` are one configuration: they are trained as packs of
up to `pack_size` seeds, each pack once, in this process. Every seed still gets its own job
directory (with Hydra's .hydra/ files), JobReturn and MLflow run. A pack that runs out of
memory is split in two and retried; the size that fitted is remembered for the next packs. A
pack that fails otherwise is trained again one seed at a time, so that a failure is recorded for
the seeds that cause it and their pack-mates train as if they had never met; when no seed fails
alone, the configuration is not packed again in this sweep.
"""

from __future__ import annotations

import copy
import logging
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from hydra.core.hydra_config import HydraConfig
from hydra.core.utils import JobReturn, JobStatus, configure_log, setup_globals
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig, OmegaConf, open_dict, read_write

from seedhp.job.hooks import Hooks, Reporter
from seedhp.job.identity import without_seed
from seedhp.job.run import JobInfo, PackFailed, PackOutOfMemory, named_choices, run_pack
from seedhp.sweep.launch import Composer, _outcome, _shown

log = logging.getLogger("seedhp")
CPU_PACK = 32  # `auto` on CPU: the digits MLP is fastest per seed from about 32 (benchmarks/)
GPU_PACK = 256  # `auto` on CUDA: the first try; halved until it fits, then remembered


def config_key(overrides: Sequence[str]) -> tuple[str, ...]:
    """A job's configuration (seedhp.job.identity): its overrides without its seed, so a
    pack's jobs share it."""
    return without_seed(overrides)


@dataclass
class Job:
    idx: int
    overrides: list[str]
    cfg: DictConfig


class Packer:
    """Pack sizes per configuration: `pack_size` (an int, or auto: the largest that fits)."""

    def __init__(self, pack_size: int | str) -> None:
        if pack_size != "auto" and (not isinstance(pack_size, int) or pack_size < 1):
            from seedhp.errors import ConfigError

            raise ConfigError("hydra.launcher.pack_size", pack_size, "an integer >= 1, or auto")
        self.pack_size = pack_size
        self.fits: dict[tuple[str, ...], int] = {}  # configuration -> largest pack that fitted

    def size(self, key: tuple[str, ...]) -> int:
        if key in self.fits:
            return self.fits[key]
        if self.pack_size != "auto":
            return int(self.pack_size)
        return GPU_PACK if torch.cuda.is_available() else CPU_PACK


def launch_packed(
    hydra_context: HydraContext,
    task_function: TaskFunction,
    config: DictConfig,
    job_overrides: Sequence[Sequence[str]],
    initial_job_idx: int,
    packer: Packer,
    composer: Composer | None = None,
    hooks: Hooks | None = None,
    job_numbers: Sequence[int] | None = None,
) -> list[JobReturn]:
    """Train the jobs pack by pack; returns their JobReturns in job order. `hooks.on_job_end(i,
    ret)` hears every seed of a finished pack; once it returns False no further pack is started;
    `hooks.on_epoch` hears a one-seed pack's epochs (a tuned trial's pruner).
    `job_numbers`: each job's hydra.job.num, when not initial_job_idx + its position (a pack
    handed to a submitit worker)."""
    setup_globals()
    configure_log(config.hydra.hydra_logging, config.hydra.verbose)
    Path(str(config.hydra.sweep.dir)).mkdir(parents=True, exist_ok=True)
    composer = composer or Composer(hydra_context, config)
    groups: dict[tuple[str, ...], list[Job]] = {}
    for i, overrides in enumerate(job_overrides):
        cfg = composer.compose(overrides)  # a config of its own (the composer copies)
        num = initial_job_idx + i if job_numbers is None else job_numbers[i]
        with open_dict(cfg):
            cfg.hydra.job.id = num
            cfg.hydra.job.num = num
        key = config_key(overrides)
        groups.setdefault(key, []).append(Job(i, list(overrides), cfg))
    n = len(job_overrides)
    on_job_end, on_epoch = (hooks.on_job_end, hooks.on_epoch) if hooks else (None, None)
    returns: dict[int, JobReturn] = {}
    go_on = True
    for key, jobs in groups.items():
        start = 0
        while go_on and start < len(jobs):
            pack = jobs[start : start + packer.size(key)]
            trained = _train_fitting(hydra_context, task_function, pack, key, packer, on_epoch)
            for job, ret, k in trained:
                returns[job.idx] = ret
                log.info(
                    "job %*d/%d  %s  %s  [pack of %d]",
                    len(str(n)),
                    job.idx + 1,
                    n,
                    _shown(job.overrides),
                    _outcome(ret, job.cfg),
                    k,
                )
                if on_job_end is not None and not on_job_end(job.idx, ret):
                    go_on = False  # the pack's other seeds trained already: hear them all
            start += len(pack)
    configure_log(config.hydra.hydra_logging, config.hydra.verbose)
    return [returns[i] for i in sorted(returns)]


def group_packs(job_overrides: Sequence[Sequence[str]], pack_size: int) -> list[list[int]]:
    """Positions of the jobs, grouped by configuration (overrides without seed=) into chunks of
    at most pack_size, in order of first appearance."""
    groups: dict[tuple[str, ...], list[int]] = {}
    for i, overrides in enumerate(job_overrides):
        groups.setdefault(config_key(overrides), []).append(i)
    return [
        jobs[start : start + pack_size]
        for jobs in groups.values()
        for start in range(0, len(jobs), pack_size)
    ]


def _train_fitting(
    hydra_context: HydraContext,
    task_function: TaskFunction,
    pack: list[Job],
    key: tuple[str, ...],
    packer: Packer,
    on_epoch: Reporter | None = None,
) -> list[tuple[Job, JobReturn, int]]:
    """Train a pack. When it does not fit, train its halves (recursively) and remember the
    size that fitted. When it fails otherwise, train its seeds one at a time, once: a seed that
    fails alone too has its own failure recorded, and when every seed trains alone the
    configuration cannot be packed, so its remaining seeds train one at a time (remembered: no
    pack of it is tried again in this sweep)."""
    try:
        out = _train_pack(hydra_context, task_function, pack, on_epoch)
    except PackOutOfMemory as err:
        half = len(pack) // 2
        packer.fits[key] = min(packer.fits.get(key, half), half)
        log.warning("%s: splitting into packs of %d and %d", err, half, len(pack) - half)
        first = _train_fitting(hydra_context, task_function, pack[:half], key, packer, on_epoch)
        return first + _train_fitting(
            hydra_context, task_function, pack[half:], key, packer, on_epoch
        )
    except PackFailed as err:
        log.warning("%s: training its seeds one at a time to find out why", err)
        out = [
            done
            for job in pack
            for done in _train_pack(hydra_context, task_function, [job], on_epoch)
        ]
        if all(ret.status == JobStatus.COMPLETED for _, ret, _ in out):
            packer.fits[key] = 1
            log.warning(
                "every seed of that pack trains alone: this configuration's remaining seeds "
                "train one at a time (%s)",
                err.__cause__ or err,
            )
        return out
    packer.fits.setdefault(key, len(pack))
    return out


def _train_pack(
    hydra_context: HydraContext,
    task_function: TaskFunction,
    pack: list[Job],
    on_epoch: Reporter | None = None,
) -> list[tuple[Job, JobReturn, int]]:
    """What Hydra's run_job does for one job, once per seed, around one pack's training."""
    old = HydraConfig.instance().cfg
    for job in pack:
        _prepare_job_dir(job.cfg)
    infos = [_info(job.cfg) for job in pack]
    HydraConfig.instance().set_config(pack[0].cfg)
    configure_log(pack[0].cfg.hydra.job_logging, pack[0].cfg.hydra.verbose)
    callbacks = hydra_context.callbacks
    tic = time.perf_counter()
    try:
        for job in pack:
            callbacks.on_job_start(config=job.cfg, task_function=task_function)
        values = run_pack([job.cfg for job in pack], infos, on_epoch)
    finally:
        HydraConfig.instance().cfg = old
    out = []
    for job, value in zip(pack, values, strict=True):
        ret = _job_return(job.cfg, value)
        callbacks.on_job_end(config=job.cfg, job_return=ret)
        _note(job.cfg, ret, time.perf_counter() - tic, len(pack))
        out.append((job, ret, len(pack)))
    return out


def _prepare_job_dir(cfg: DictConfig) -> None:
    """The job's own directory, with Hydra's .hydra/{config,hydra,overrides}.yaml."""
    out = Path(str(cfg.hydra.sweep.dir)) / str(OmegaConf.select(cfg, "hydra.sweep.subdir"))
    with read_write(cfg.hydra), open_dict(cfg.hydra):
        cfg.hydra.runtime.output_dir = os.path.abspath(out)
    hydra_dir = out / str(cfg.hydra.output_subdir or ".hydra")
    hydra_dir.mkdir(parents=True, exist_ok=True)
    task = copy.deepcopy(cfg)
    with read_write(task), open_dict(task):
        del task["hydra"]
    OmegaConf.save(task, hydra_dir / "config.yaml")
    OmegaConf.save(OmegaConf.masked_copy(cfg, "hydra"), hydra_dir / "hydra.yaml")
    OmegaConf.save(cfg.hydra.overrides.task, hydra_dir / "overrides.yaml")


def _info(cfg: DictConfig) -> JobInfo:
    h = cfg.hydra
    return JobInfo(
        multirun=True,
        output_dir=str(h.runtime.output_dir),
        choices=named_choices(h.runtime.choices, cfg),
        overrides=tuple(h.overrides.task),
    )


def _job_return(cfg: DictConfig, value: float | BaseException) -> JobReturn:
    ret = JobReturn()
    task = copy.deepcopy(cfg)
    with read_write(task), open_dict(task):
        del task["hydra"]
    ret.cfg = task
    ret.hydra_cfg = OmegaConf.masked_copy(cfg, "hydra")
    ret.overrides = list(cfg.hydra.overrides.task)
    ret.working_dir = os.getcwd()
    ret.task_name = str(cfg.hydra.job.name)
    ret.return_value = value
    ret.status = JobStatus.FAILED if isinstance(value, BaseException) else JobStatus.COMPLETED
    return ret


def _note(cfg: DictConfig, ret: JobReturn, seconds: float, k: int) -> None:
    """One line in each seed's own job log (the pack's output goes to its first seed's)."""
    path = Path(str(cfg.hydra.runtime.output_dir)) / f"{cfg.hydra.job.name}.log"
    with open(path, "a") as f:
        f.write(f"trained in a pack of {k} ({seconds:.1f} s): {_outcome(ret, cfg)}\n")
