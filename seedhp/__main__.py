"""`python -m seedhp`: one seed-run; `python -m seedhp -m seed='range(0,500)'`: a seed sweep.

Following one seed of `python -m seedhp -m seed='range(0,100)'` to its MLflow run takes six
files, each opened once, in this order (conf/config.yaml picks the sweeper and the launcher):

1. here: the one check before Hydra (`preflight`), then Hydra's multirun;
2. hydra_plugins/seedhp/seedhp_sweeper.py: `hydra/sweeper=seedhp`, a thin plugin that hands
   the sweep to
3. seedhp/sweep/grid.py: expand `seed=range(...)` into jobs, check each configuration, open the
   sweep's MLflow parent run, launch, summarise;
4. hydra_plugins/seedhp/packed_launcher.py: `hydra/launcher=packed`, a thin plugin that hands
   the jobs to
5. seedhp/sweep/packing.py: compose each job's config, group the seeds of a configuration into
   packs, write their job directories, and call
6. seedhp/job/run.py: `train_pack`: each seed's settings and seed streams, its MLflow run
   (`_start`: name, tags, params, config.yaml; created with the pack's), the training, and the
   run's end (`_finish`: final scores and status; closed with the pack's).

Below those, for detail: seedhp/train/loop.py (how a pack trains), seedhp/job/record.py (the
MLflow tag names and the one reader), seedhp/job/tracking.py (the MLflow client calls).
"""

from __future__ import annotations

import signal
import sys
from pathlib import Path

import hydra
from omegaconf import DictConfig

from seedhp import heap
from seedhp.errors import exit_on_config_error
from seedhp.exits import run_then_exit
from seedhp.faults import exit_on_fault
from seedhp.job.urls import remember
from seedhp.sweep.preflight import preflight

# absolute, so the config tree is found however this module is reached (python -m, import)
CONF = str(Path(__file__).resolve().parent.parent / "conf")


@hydra.main(version_base="1.3", config_path=CONF, config_name="config")
def main(cfg: DictConfig) -> float:
    # torch comes with these: imported after `heap.hold`, as the sweepers' work is
    from hydra.core.hydra_config import HydraConfig

    from seedhp.job.run import run
    from seedhp.sweep.launch import job_info
    from seedhp.sweep.tracked import hydra_files

    hydra_files(HydraConfig.get())
    with exit_on_config_error(), exit_on_fault():
        return run(cfg, job_info(cfg))


def _overrides(argv: list[str]) -> list[str] | None:
    """The overrides of a command line as hydra.main parses it; None when it names another
    primary config (then there is nothing to check against)."""
    from hydra._internal.utils import get_args_parser

    args, _ = get_args_parser().parse_known_args(argv)
    if args.config_name or args.config_dir or args.config_path:
        return None
    return list(args.overrides)


def _interrupt(signum: int, frame: object) -> None:
    """SIGTERM (what SLURM and `kill` send) stops a sweep the way Ctrl-C does: the seed-runs
    in training are recorded as interrupted, the summary is written, and re-running the same
    command resumes."""
    raise KeyboardInterrupt(signal.Signals(signum).name)


def entry(argv: list[str] | None = None) -> None:
    """`python -m seedhp ARGS`: argv defaults to sys.argv[1:]."""
    if argv is not None:
        sys.argv = [sys.argv[0], *argv]
    remember(sys.argv[1:])  # a password in a URI is masked in everything written from here on
    overrides = _overrides(sys.argv[1:])
    if overrides is not None:
        with exit_on_config_error():
            preflight(overrides, Path(CONF))
    try:
        main()
    except KeyboardInterrupt:
        print(
            "seedhp: interrupted; finished seed-runs are recorded, and running the same "
            "command again trains only what is missing",
            file=sys.stderr,
            flush=True,
        )
        raise SystemExit(130) from None


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, _interrupt)
    heap.hold()
    run_then_exit(entry)
