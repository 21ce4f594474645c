"""`python -m seedhp`: one seed-run; `python -m seedhp -m seed='range(0,500)'`: a seed sweep."""

from __future__ import annotations

import signal
import sys
from pathlib import Path

import hydra
from omegaconf import DictConfig

from seedhp.errors import exit_on_config_error
from seedhp.job.run import run
from seedhp.sweep.launch import job_info
from seedhp.sweep.preflight import preflight

# absolute, so the config tree is found however this module is reached (python -m, import)
CONF = str(Path(__file__).resolve().parent.parent / "conf")


@hydra.main(version_base="1.3", config_path=CONF, config_name="config")
def main(cfg: DictConfig) -> float:
    with exit_on_config_error():
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
    entry()
