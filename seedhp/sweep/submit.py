"""Packs on submitit: the work behind `hydra/launcher=packed_submitit_{local,slurm}`.

The sweep's process groups the jobs into packs (a configuration's seeds, at most `pack_size`)
and submits one submitit task per pack, as one job array; each task trains its pack with
seedhp.sweep.packing (one process, one batched model, its seeds' own job directories and
MLflow runs) and returns the seeds' JobReturns. A task that dies (killed, preempted, out of
time) fails its seeds, recorded as failed; the sweep goes on.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from hydra.core.singleton import Singleton
from hydra.core.utils import JobReturn, JobStatus
from omegaconf import OmegaConf

from seedhp.sweep.packing import GPU_PACK, Packer, group_packs, launch_packed

log = logging.getLogger("seedhp")
_FIRST_CLASS = {  # submitit's own parameters; every other one is prefixed with the executor
    "timeout_min",
    "cpus_per_task",
    "gpus_per_node",
    "tasks_per_node",
    "mem_gb",
    "nodes",
    "name",
    "stderr_to_stdout",
}


def submit_packs(
    launcher: Any, job_overrides: Sequence[Sequence[str]], initial_job_idx: int
) -> list[JobReturn]:
    import submitit

    packer = Packer(launcher.pack_size)  # checks pack_size before anything is submitted
    size = GPU_PACK if packer.pack_size == "auto" else int(packer.pack_size)
    packs = group_packs(job_overrides, size)
    params = {
        k: OmegaConf.to_container(v, resolve=True) if OmegaConf.is_config(v) else v
        for k, v in launcher.params.items()
    }
    folder = str(params.pop("submitit_folder"))
    init = {}
    if "max_num_timeout" in params:
        init[f"{launcher.executor}_max_num_timeout"] = params.pop("max_num_timeout")
    executor = submitit.AutoExecutor(folder=folder, cluster=launcher.executor, **init)
    executor.update_parameters(
        **{k if k in _FIRST_CLASS else f"{launcher.executor}_{k}": v for k, v in params.items()}
    )
    state = Singleton.get_state()
    log.info(
        "submitit %s: %d jobs in %d packs (at most %d seeds each), folder %s",
        launcher.executor,
        len(job_overrides),
        len(packs),
        size,
        folder,
    )
    with executor.batch():
        tasks = [
            executor.submit(
                launcher,
                [list(job_overrides[i]) for i in pack],
                [initial_job_idx + i for i in pack],
                state,
            )
            for pack in packs
        ]
    returns: dict[int, JobReturn] = {}
    for pack, task in zip(packs, tasks, strict=True):
        try:
            results = list(task.result())
        except Exception as err:  # the task died: its seeds failed, the sweep goes on
            first = str(err).strip().splitlines()[-1] if str(err).strip() else type(err).__name__
            log.warning("submitit task %s failed: %s", task.job_id, first)
            results = [_failed(job_overrides[i], err) for i in pack]
        for i, ret in zip(pack, results, strict=True):
            returns[i] = ret
    return [returns[i] for i in sorted(returns)]


def train_pack_task(
    launcher: Any, job_overrides: Sequence[Sequence[str]], job_numbers: Sequence[int], state: Any
) -> list[JobReturn]:
    """Runs inside the submitit task."""
    Singleton.set_state(state)
    return launch_packed(
        launcher.hydra_context,
        launcher.task_function,
        launcher.config,
        job_overrides,
        0,
        Packer(launcher.pack_size),
        job_numbers=job_numbers,
    )


def _failed(overrides: Sequence[str], err: BaseException) -> JobReturn:
    ret = JobReturn()
    ret.overrides = list(overrides)
    ret.status = JobStatus.FAILED
    ret.return_value = err
    return ret
