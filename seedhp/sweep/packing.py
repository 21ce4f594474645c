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

import logging
import os
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from hydra.core.hydra_config import HydraConfig
from hydra.core.utils import JobReturn, JobStatus, configure_log, setup_globals
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig, OmegaConf, open_dict, read_write

from seedhp.job.hooks import Hooks, Reporter
from seedhp.job.identity import without_seed
from seedhp.job.run import JobInfo, PackFailed, PackOutOfMemory, named_choices, train_pack
from seedhp.job.urls import scrub, write_scrubbed
from seedhp.job.yaml_text import Entries, dump
from seedhp.sweep.launch import Composer, _outcome, _shown
from seedhp.sweep.progress import Progress

PackEpoch = Callable[[int, int, int], None]  # (epoch, epochs, seeds alive)

log = logging.getLogger("seedhp")
CPU_PACK = 32  # `auto` on CPU: the digits MLP is fastest per seed from about 32 (benchmarks/)
GPU_PACK = 256  # `auto` on CUDA: the first try; halved until it fits, then remembered


def config_key(overrides: Sequence[str]) -> tuple[str, ...]:
    """A job's configuration (seedhp.job.identity): its overrides without its seed, so a
    pack's jobs share it."""
    return without_seed(overrides)


@dataclass
class Job:
    idx: int  # its position in the launch
    overrides: list[str]
    num: int  # hydra.job.num
    seed: int


@dataclass
class Group:
    """One configuration's jobs, composed once: the jobs differ only in seed."""

    cfg: DictConfig  # its first job's config; Hydra's job fields are set per seed as it trains
    task: dict[str, Any]  # the config without Hydra's node, unresolved (.hydra/config.yaml)
    hydra: dict[str, Any]  # Hydra's node, unresolved (.hydra/hydra.yaml)
    jobs: list[Job]
    hydra_text: dict[str, str] = field(default_factory=dict)  # its parts' YAML, emitted once
    task_text: Entries = field(default_factory=lambda: Entries(allow_unicode=True))
    resolved: dict[str, Any] = field(default_factory=dict)  # what every seed shares, resolved

    def sweep_dir(self) -> str:
        if "sweep_dir" not in self.resolved:
            self.resolved["sweep_dir"] = os.path.abspath(str(self.cfg.hydra.sweep.dir))
        return str(self.resolved["sweep_dir"])

    def choices(self) -> tuple[tuple[str, str], ...]:
        if "choices" not in self.resolved:
            self.resolved["choices"] = named_choices(self.cfg.hydra.runtime.choices, self.cfg)
        return tuple(self.resolved["choices"])

    @classmethod
    def of(cls, cfg: DictConfig) -> Group:
        container = OmegaConf.to_container(cfg, resolve=False, enum_to_str=True)
        assert isinstance(container, dict)
        task = {str(k): v for k, v in container.items() if k != "hydra"}
        return cls(cfg, task, container["hydra"], [])


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
    progress: bool = True,
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
    groups: dict[tuple[str, ...], Group] = {}
    for i, overrides in enumerate(job_overrides):
        key = config_key(overrides)
        if key not in groups:  # one configuration, composed once; its seeds are derived
            groups[key] = Group.of(composer.compose(overrides))
        num = initial_job_idx + i if job_numbers is None else job_numbers[i]
        seed = _seed(overrides, groups[key].cfg)
        groups[key].jobs.append(Job(i, list(overrides), num, seed))
    n = len(job_overrides)
    on_job_end, on_epoch = (hooks.on_job_end, hooks.on_epoch) if hooks else (None, None)
    # a sweep's seeds: a bar (or a line per pack epoch); a study's trials say their own progress
    shows = progress and hooks is None and n > 1
    display = Progress(n) if shows else None
    returns: dict[int, JobReturn] = {}
    go_on = True
    for key, group in groups.items():
        start, jobs = 0, group.jobs
        while go_on and start < len(jobs):
            pack = jobs[start : start + packer.size(key)]
            shown = _shown_to(display, len(pack))
            trained = _train_fitting(
                hydra_context, task_function, group, pack, key, packer, on_epoch, shown
            )
            if display is not None:
                display.finished(len(trained))
            for job, ret, k in trained:
                returns[job.idx] = ret
                log.info(
                    "job %*d/%d  %s  %s  [pack of %d]",
                    len(str(n)),
                    job.idx + 1,
                    n,
                    _shown(job.overrides),
                    _outcome(ret, group.cfg),
                    k,
                )
                if on_job_end is not None and not on_job_end(job.idx, ret):
                    go_on = False  # the pack's other seeds trained already: hear them all
            start += len(pack)
    if display is not None:
        display.close()
    configure_log(config.hydra.hydra_logging, config.hydra.verbose)
    return [returns[i] for i in sorted(returns)]


def _shown_to(progress: Progress | None, size: int) -> PackEpoch | None:
    """The pack's epochs, for the progress display."""
    if progress is None:
        return None
    return lambda epoch, epochs, alive: progress.epoch(epoch, epochs, alive, size)


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
    group: Group,
    pack: list[Job],
    key: tuple[str, ...],
    packer: Packer,
    on_epoch: Reporter | None = None,
    shown: PackEpoch | None = None,
) -> list[tuple[Job, JobReturn, int]]:
    """Train a pack. When it does not fit, train its halves (recursively) and remember the
    size that fitted. When it fails otherwise, train its seeds one at a time, once: a seed that
    fails alone too has its own failure recorded, and when every seed trains alone the
    configuration cannot be packed, so its remaining seeds train one at a time (remembered: no
    pack of it is tried again in this sweep)."""
    try:
        out = _train_pack(hydra_context, task_function, group, pack, on_epoch, shown)
    except PackOutOfMemory as err:
        half = len(pack) // 2
        packer.fits[key] = min(packer.fits.get(key, half), half)
        log.warning("%s: splitting into packs of %d and %d", err, half, len(pack) - half)
        first = _train_fitting(
            hydra_context, task_function, group, pack[:half], key, packer, on_epoch, shown
        )
        return first + _train_fitting(
            hydra_context, task_function, group, pack[half:], key, packer, on_epoch, shown
        )
    except PackFailed as err:
        log.warning("%s: training its seeds one at a time to find out why", err)
        out = [
            done
            for job in pack
            for done in _train_pack(hydra_context, task_function, group, [job], on_epoch, shown)
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
    group: Group,
    pack: list[Job],
    on_epoch: Reporter | None = None,
    shown: PackEpoch | None = None,
) -> list[tuple[Job, JobReturn, int]]:
    """What Hydra's run_job does for one job, once per seed, around one pack's training: each
    seed's job directory and .hydra/ files, Hydra's callbacks, a JobReturn each."""
    old = HydraConfig.instance().cfg
    cfg = group.cfg
    infos = [_job_dir(group, job) for job in pack]
    _set_job(cfg, pack[0], infos[0].output_dir)  # Hydra's view while the pack trains
    HydraConfig.instance().set_config(cfg)
    configure_log(cfg.hydra.job_logging, cfg.hydra.verbose)
    callbacks = hydra_context.callbacks
    hooked = bool(getattr(callbacks, "callbacks", True))  # a user's hydra.callbacks
    tic = time.perf_counter()
    try:
        if hooked:
            for job, info in zip(pack, infos, strict=True):
                each = _job_config(group, job, info.output_dir)
                callbacks.on_job_start(config=each, task_function=task_function)
        values = train_pack(cfg, [job.seed for job in pack], infos, on_epoch, shown)
    finally:
        HydraConfig.instance().cfg = old
    out: list[tuple[Job, JobReturn, int]] = []
    for job, info, value in zip(pack, infos, values, strict=True):
        ret = PackReturn.of(group, job, info.output_dir, value)
        if hooked:
            callbacks.on_job_end(config=_job_config(group, job, info.output_dir), job_return=ret)
        _note(cfg, info.output_dir, ret, time.perf_counter() - tic, len(pack))
        out.append((job, ret, len(pack)))
    return out


class PackReturn(JobReturn):
    """A JobReturn whose `cfg` and `hydra_cfg` are built from plain dicts when first read.
    Hydra's run_job builds both for every job (tens of ms each); seedhp's sweepers never read
    them; a user's callback or code may, and gets what run_job would have given."""

    def __init__(self, task: dict[str, Any], hydra: dict[str, Any], **fields: Any) -> None:
        self._task, self._hydra = task, hydra
        self._cfg: DictConfig | None = None
        self._hydra_cfg: DictConfig | None = None
        super().__init__(**fields)

    @classmethod
    def of(
        cls, group: Group, job: Job, output_dir: str, value: float | BaseException
    ) -> PackReturn:
        task, hydra = _job_containers(group, job, output_dir)
        failed = isinstance(value, BaseException)
        return cls(
            task,
            hydra,
            overrides=list(job.overrides),
            working_dir=os.getcwd(),
            task_name=str(group.cfg.hydra.job.name),
            status=JobStatus.FAILED if failed else JobStatus.COMPLETED,
            _return_value=value,
        )

    @property
    def cfg(self) -> DictConfig | None:
        if self._cfg is None:
            self._cfg = OmegaConf.create(self._task)
        return self._cfg

    @cfg.setter
    def cfg(self, value: DictConfig | None) -> None:
        self._cfg = value

    @property
    def hydra_cfg(self) -> DictConfig | None:
        if self._hydra_cfg is None:
            self._hydra_cfg = OmegaConf.create({"hydra": self._hydra})
        return self._hydra_cfg

    @hydra_cfg.setter
    def hydra_cfg(self, value: DictConfig | None) -> None:
        self._hydra_cfg = value


def _seed(overrides: Sequence[str], cfg: DictConfig) -> int:
    """The job's seed: its `seed=` override, else the configuration's."""
    given = [o.split("=", 1)[1] for o in overrides if o.split("=", 1)[0] == "seed"]
    return int(given[-1]) if given else int(cfg.seed)


def _job_containers(
    group: Group, job: Job, output_dir: str
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The job's config and Hydra node, as its own composition would give them (unresolved):
    the configuration's, with its seed, job number, overrides and directory."""
    h = group.hydra
    spec = h["job"]["config"]["override_dirname"]
    lines = sorted(o for o in job.overrides if o.split("=", 1)[0] not in spec["exclude_keys"])
    dirname = re.sub("=", spec["kv_sep"], spec["item_sep"].join(lines))
    hydra = {
        **h,
        "job": {**h["job"], "num": job.num, "id": job.num, "override_dirname": dirname},
        "overrides": {**h["overrides"], "task": list(job.overrides)},
        "runtime": {**h["runtime"], "output_dir": output_dir},
    }
    return {**group.task, "seed": job.seed}, hydra


def _job_config(group: Group, job: Job, output_dir: str) -> DictConfig:
    """The job's whole config as a DictConfig (for a user's Hydra callbacks only)."""
    task, hydra = _job_containers(group, job, output_dir)
    return OmegaConf.create({**task, "hydra": hydra})


def _set_job(cfg: DictConfig, job: Job, output_dir: str) -> None:
    # HydraConfig.set_config marks Hydra's node read-only: open it and the root
    with read_write(cfg), open_dict(cfg), read_write(cfg.hydra), open_dict(cfg.hydra):
        cfg.seed = job.seed
        cfg.hydra.job.num = job.num
        cfg.hydra.job.id = job.num
        cfg.hydra.overrides.task = list(job.overrides)
        cfg.hydra.runtime.output_dir = output_dir


def _job_dir(group: Group, job: Job) -> JobInfo:
    """The job's own directory, with Hydra's .hydra/{config,hydra,overrides}.yaml written from
    plain dicts (the C YAML emitter: a few ms, where OmegaConf.save took tens)."""
    out = os.path.join(group.sweep_dir(), _subdir(group, job))
    task, hydra = _job_containers(group, job, out)
    hydra_dir = Path(out) / str(group.hydra.get("output_subdir") or ".hydra")
    hydra_dir.mkdir(parents=True, exist_ok=True)
    write_scrubbed(hydra_dir / "config.yaml", group.task_text.dump(task))
    write_scrubbed(hydra_dir / "hydra.yaml", _hydra_yaml(group, hydra))
    write_scrubbed(hydra_dir / "overrides.yaml", _yaml(list(job.overrides)))
    return JobInfo(
        multirun=True, output_dir=out, choices=group.choices(), overrides=tuple(job.overrides)
    )


def _subdir(group: Group, job: Job) -> str:
    """hydra.sweep.subdir for the job: its number (Hydra's default), else resolved with the
    job's number in place."""
    if group.hydra["sweep"]["subdir"] == "${hydra.job.num}":
        return str(job.num)
    cfg = group.cfg
    with read_write(cfg), open_dict(cfg), read_write(cfg.hydra), open_dict(cfg.hydra):
        cfg.hydra.job.num = job.num
        cfg.hydra.job.id = job.num
        cfg.seed = job.seed
    return str(OmegaConf.select(cfg, "hydra.sweep.subdir"))


PER_JOB = ("job", "overrides", "runtime")  # the parts of Hydra's node that differ per seed


def _hydra_yaml(group: Group, hydra: dict[str, Any]) -> str:
    """.hydra/hydra.yaml: the node's parts that are the same for every seed of the group
    emitted once, the job's own parts per seed; it loads as the whole node does (a long
    string may wrap at another column)."""
    if not group.hydra_text:
        group.hydra_text = {k: _part(k, v) for k, v in group.hydra.items() if k not in PER_JOB}
    return "hydra:\n" + "".join(
        group.hydra_text[k] if k in group.hydra_text else _part(k, v) for k, v in hydra.items()
    )


def _part(key: str, value: Any) -> str:
    return "".join(f"  {line}\n" if line else "\n" for line in _yaml({key: value}).splitlines())


def _yaml(data: Any) -> str:
    return dump(data, allow_unicode=True)


def _note(cfg: DictConfig, output_dir: str, ret: JobReturn, seconds: float, k: int) -> None:
    """One line in each seed's own job log (the pack's output goes to its first seed's)."""
    path = Path(output_dir) / f"{cfg.hydra.job.name}.log"
    with open(path, "a") as f:
        f.write(scrub(f"trained in a pack of {k} ({seconds:.1f} s): {_outcome(ret, cfg)}\n"))
