"""The `seedhp` command: `seedhp report`, `seedhp reseed` and `seedhp plan` (training is
`python -m seedhp`)."""

from __future__ import annotations

import argparse
import re
import shlex
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from seedhp import faults
from seedhp.errors import ConfigError, one_line
from seedhp.exits import run_then_exit
from seedhp.faults import exit_on_fault
from seedhp.job import trust
from seedhp.job.identity import quote
from seedhp.job.tracking import Tracker
from seedhp.job.trust import safe_run_id
from seedhp.job.urls import redact, remember
from seedhp.report import Options, build_report
from seedhp.report.collect import collect, latest_parent, study_parent, study_store
from seedhp.report.reseed import plan
from seedhp.stats.contrast import FRESH_ROLES, SeedRun


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="seedhp", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    report = sub.add_parser("report", help="write the seed report of a sweep, study or experiment")
    _source_args(report)
    report.add_argument("--out", help="report directory (default outputs/reports/<run id>)")
    report.add_argument(
        "--black-swan-k",
        type=float,
        default=3.0,
        help="black swans lie beyond median -/+ k MAD (default 3)",
    )
    report.add_argument(
        "--random-state", type=int, default=0, help="seeds ASO's and the ensembles' resampling"
    )
    report.add_argument(
        "--seeds",
        type=int,
        default=20,
        help="with several --study: the fresh seeds their winners share (default 20)",
    )
    report.add_argument(
        "--no-log",
        action="store_true",
        help="do not log the report as artifacts of the parent run",
    )
    reseed = sub.add_parser(
        "reseed",
        help="re-run both winners (seed-tuned, seed-averaged) on "
        "fresh seeds, tracked like any run, then report",
    )
    _source_args(reseed)
    reseed.add_argument("--seeds", type=int, required=True, help="fresh seeds per winner")
    reseed.add_argument("--no-report", action="store_true", help="do not write the report after")
    planner = sub.add_parser(
        "plan",
        help="how many seeds per configuration a difference needs, from a pilot sweep or study",
    )
    _source_args(planner)
    planner.add_argument(
        "--difference",
        type=float,
        required=True,
        help="the difference to detect, in the metric's unit (0.003: 0.3 accuracy points)",
    )
    planner.add_argument("--metric", help="the metric (default: the pilot's objective)")
    args = parser.parse_args(argv)
    remember(sys.argv[1:] if argv is None else argv)
    with exit_on_fault():  # a full disk, a read-only store, refused credentials: one line
        return _command(args)


def _command(args: argparse.Namespace) -> int:
    try:
        if args.study and len(args.study) > 1:
            if args.command in ("reseed", "plan"):
                raise ConfigError("--study", args.study, f"{args.command} takes one study")
            return _contrast(args)
        tracker, parent = _source(args)
        if tracker.read_only() is None:  # a read-only store is read as it is
            tracker.reap()
        if args.command == "plan":
            return _plan(args, tracker, parent)
        if args.command == "reseed":
            _reseed(args, tracker, parent)
            if args.no_report:
                return 0
        out = Path(
            getattr(args, "out", None)
            or Path("outputs/reports")
            / (safe_run_id(parent) if parent else _dir_name(tracker.experiment_name))
        )
        options = Options(
            getattr(args, "black_swan_k", 3.0),
            getattr(args, "random_state", 0),
        )
        log_it = not getattr(args, "no_log", False)
        if log_it and (locked := tracker.read_only()):
            log_it = False
            print(
                f"seedhp: {locked} is read-only: the report is not logged on its run",
                file=sys.stderr,
            )
        path = build_report(
            tracker,
            parent,
            out.resolve(),
            options,
            log_artifacts=log_it,
            key="--study" if args.study else "--run",
        )
    except ConfigError as err:
        print(f"seedhp: error: {one_line(err)}", file=sys.stderr)
        return 2
    print(f"Report: {path}")
    return 0


def _plan(args: argparse.Namespace, tracker: Tracker, parent: str | None) -> int:
    from seedhp.report.sizing import format_needs, needs

    rs = collect(tracker, parent, "--study" if args.study else "--run")
    metric = args.metric or rs.objective
    source = f"{len(rs.runs)} seed-runs of {rs.title}" if parent else f"{len(rs.runs)} seed-runs"
    print(format_needs(needs(rs, args.difference, metric), args.difference, metric, source))
    return 0


def _source_args(p: argparse.ArgumentParser) -> None:
    cwd = Path.cwd()
    which = p.add_mutually_exclusive_group()
    which.add_argument(
        "--run", help="a sweep's or study's MLflow parent run id (default: the most recent one)"
    )
    which.add_argument(
        "--study",
        action="append",
        help="an Optuna study name (its parent run is found in --storage); give it more than "
        "once to contrast studies: their winners re-run on one shared set of fresh seeds",
    )
    which.add_argument("--all", action="store_true", help="every seed-run of the experiment")
    p.add_argument(
        "--storage",
        default=f"sqlite:///{cwd}/outputs/optuna.db",
        help="Optuna storage of --study (default: the project's)",
    )
    p.add_argument(
        "--tracking-uri",
        help="MLflow tracking URI (default: a --study's own store, else outputs/mlflow.db)",
    )
    p.add_argument(
        "--experiment", help="MLflow experiment (default: a --study's own, else seedhp)"
    )
    p.add_argument(
        "--allow-target",
        action="append",
        default=[],
        metavar="PREFIX",
        help="a re-run may build this callable (or any under this dotted prefix) from a "
        "config read back from the store; seedhp's and torch's are always allowed",
    )


def _contrast(args: argparse.Namespace) -> int:
    """Several --study: their winners on one shared set of fresh seeds, and the contrast."""
    from seedhp.report.studies import contrast_studies

    faults.opened("--storage", args.storage)  # named in the line for a fault of it
    sources = [study_parent(args.storage, name) for name in args.study]
    stores = {(s.tracking_uri, s.experiment) for s in sources}
    if len(stores) > 1 and not args.tracking_uri:
        raise ConfigError(
            "--study", args.study, "the studies record to different MLflow stores or experiments"
        )
    found = sources[0]
    tracker = Tracker(
        _study_store(args.tracking_uri, found.tracking_uri),
        args.experiment or found.experiment or "seedhp",
    )
    tracker.reap()
    out = Path(args.out or "outputs/reports").resolve()

    def rerun(source: SeedRun, seeds: Sequence[int], reseed_of: str) -> None:
        said = app_rerun(tracker, source, seeds, reseed_of)
        if said:
            raise ConfigError("--study", reseed_of, said)
        _rerun(tracker, source, seeds, reseed_of, args.allow_target)

    page = contrast_studies(tracker, args.storage, args.study, args.seeds, out, rerun)
    print(f"Contrast: {page}")
    return 0


def _source(args: argparse.Namespace) -> tuple[Tracker, str | None]:
    """The store and the parent run the arguments name. A study's own MLflow store and
    experiment are recorded in its storage, so --study needs no --tracking-uri."""
    if args.study:
        faults.opened("--storage", args.storage)  # named in the line for a fault of it
        found = study_parent(args.storage, args.study[0])
        uri = _study_store(args.tracking_uri, found.tracking_uri)
        tracker = Tracker(uri, args.experiment or found.experiment or "seedhp")
        return tracker, found.run_id
    tracker = Tracker(args.tracking_uri or _default_store(), args.experiment or "seedhp")
    if args.all:
        return tracker, None
    return tracker, args.run or latest_parent(tracker)


def _study_store(given: str | None, recorded: str | None) -> str:
    """--tracking-uri, else the store the study recorded (seedhp.report.collect.study_store)."""
    advice = "give the URI with it (--tracking-uri, or MLFLOW_TRACKING_URI)"
    return study_store(given, recorded, _default_store(), "--tracking-uri", advice)


def _dir_name(name: str) -> str:
    """A name (an MLflow experiment's may hold '/') as one directory name."""
    return re.sub(r"[^\w.-]", "_", name).strip(".") or "experiment"


def _default_store() -> str:
    return f"sqlite:///{Path.cwd()}/outputs/mlflow.db"


def _reseed(args: argparse.Namespace, tracker: Tracker, parent: str | None) -> None:
    """Each winner's configuration, re-created from its run's resolved config.yaml, on fresh
    seeds: a grid sweep of `python -m seedhp`, tagged seedhp.reseed_of=<parent>."""
    if parent is None:
        raise ConfigError("--all", True, "reseed needs one sweep or study: give --run or --study")
    if args.seeds < 1:
        raise ConfigError("--seeds", args.seeds, "an integer >= 1")
    rs = collect(tracker, parent, "--study" if args.study else "--run")
    todo = plan(rs, args.seeds)
    if not todo:
        print(f"both winners already have {args.seeds} fresh seeds")
    sources = [
        (next(r for r in rs.runs if r.config_id == i.config_id and r.role not in FRESH_ROLES), i)
        for i in todo
    ]
    apps = [app_rerun(tracker, source, i.seeds, parent) for source, i in sources]
    if any(apps):
        key = "--study" if args.study else "--run"
        raise ConfigError(key, parent, " ; ".join(a for a in apps if a))
    for source, item in sources:
        _rerun(tracker, source, item.seeds, parent, args.allow_target)


def app_rerun(tracker: Tracker, source: SeedRun, seeds: Sequence[int], reseed_of: str) -> str:
    """For another app's configuration, what to say instead of re-running it: seedhp runs no
    command it reads from the store (seedhp.job.trust), so the user runs it, then asks again;
    the runs it records are the fresh-seed runs of `reseed_of`. '' for seedhp's own."""
    if source.app_command is None:
        return ""
    where, script, seed_key = source.app_command
    words = [
        sys.executable,
        script,
        "-m",
        "hydra/sweeper=seedhp",
        f"{seed_key}={','.join(map(str, seeds))}",
        *source.overrides,
        f"hydra.sweeper.reseed_of={reseed_of}",
        f"hydra.sweeper.tracking_uri={redact(tracker.uri)}",
        f"hydra.sweeper.experiment={tracker.experiment_name}",
    ]
    if seed_key != "seed":
        words.append(f"hydra.sweeper.seed_key={seed_key}")
    command = " ".join(shlex.quote(w) for w in words)
    return (
        f"configuration {source.config_id} is another app's and seedhp runs no command read "
        f"from the store: run its fresh seeds, then ask again: cd {shlex.quote(where)} && "
        f"{command}"
    )


def _rerun(
    tracker: Tracker,
    source: SeedRun,
    seeds: Sequence[int],
    reseed_of: str,
    allow: Sequence[str] = (),
) -> None:
    """`source`'s configuration, re-created from its run's resolved config.yaml, on `seeds`:
    a grid sweep of `python -m seedhp`, role reseed, tagged seedhp.reseed_of=<reseed_of>.
    The config comes from the store: it may build only seedhp's and torch's callables and
    those under `allow` (seedhp.job.trust)."""
    sweep_dir = (
        f"outputs/multirun/reseed_{safe_run_id(reseed_of, 'reseed_of')}_"
        f"{trust.stored_config_id(source.config_id, source.run_id)}"
    )
    with tempfile.TemporaryDirectory() as tmp:
        config = tracker.client.download_artifacts(source.run_id, "config.yaml", tmp)
        trust.check_config(
            _yaml_mapping(Path(config), source.run_id),
            f"run {source.run_id}'s config.yaml",
            allow,
        )
        command = [
            # the run's resolved config as the primary config: the same config_id
            sys.executable,
            "-m",
            "seedhp",
            "-m",
            f"--config-path={Path(config).parent}",
            "--config-name=config",
            "hydra/sweeper=seedhp",
            "hydra/launcher=seedhp",
            "hydra.job.name=seedhp",
            f"hydra.sweep.dir={sweep_dir}",
            "hydra.sweep.subdir=${hydra.job.num}",
            f"seed={','.join(map(str, seeds))}",
            "tracking.role=reseed",
            f"tracking.reseed_of={reseed_of}",
            f"tracking.uri={quote(tracker.uri)}",
            f"tracking.experiment={quote(tracker.experiment_name)}",
            "tracking.study=null",
            "tracking.trial=null",
            "tracking.strategy=null",
            "++tracking.replicate=null",  # configs logged before it existed lack the key
            "report.enabled=false",
            f"tracking.label={quote(source.label)}",
        ]
        print(
            f"reseeding {source.config_id} ({source.label}) on seeds {seeds[0]}..{seeds[-1]}",
            flush=True,
        )
        done = subprocess.run(command, check=False)
    if done.returncode != 0:
        raise ConfigError(
            "reseed", source.config_id, f"the re-run failed (exit {done.returncode})"
        )


def _yaml_mapping(path: Path, run_id: str) -> dict[str, Any]:
    """A stored config.yaml as plain data (YAML's safe loader: no tags, no objects)."""
    import yaml

    try:
        tree = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as err:
        raise ConfigError(
            "config.yaml", f"run {run_id}", f"not a YAML mapping ({type(err).__name__})"
        ) from None
    if not isinstance(tree, dict):
        raise ConfigError("config.yaml", f"run {run_id}", "not a YAML mapping")
    return tree


def cli() -> None:
    """The `seedhp` console script: main(), then a quick exit (seedhp.exits)."""
    run_then_exit(main)


if __name__ == "__main__":
    cli()
