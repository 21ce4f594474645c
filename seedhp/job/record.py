"""A seed-run's MLflow record: the tag names as constants, the identifying tags every writer
sets (seedhp's own task, seedhp.job.run; any app's, seedhp.sweep.tracked), its run name, and
the one reader that turns an MLflow run back into a `SeedRun` (summaries and reports)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from seedhp.errors import ConfigError
from seedhp.job import trust

if TYPE_CHECKING:
    from mlflow.entities import Run

    from seedhp.stats.contrast import SeedRun

# what identifies a seed-run
SEED = "seed"
CONFIG_ID = "config_id"
LABEL = "seedhp.label"  # the configuration's name in summaries and reports
OVERRIDES = "seedhp.overrides"  # JSON list: what re-creates the configuration on another seed
ROLE = "seedhp.role"  # run | trial | reseed | fresh | baseline
STATUS = "seedhp.status"  # running | finished | diverged | pruned | failed | interrupted
JOB_DIR = "seedhp.job_dir"
ERROR = "seedhp.error"
APP = "seedhp.app"  # another app's seed-run: its job name
APP_SCRIPT = "seedhp.app_script"  # ... the script its sweep ran (absolute path)
APP_DIR = "seedhp.app_dir"  # ... the directory its sweep was started in
SEED_KEY = "seedhp.seed_key"  # ... the config key that holds its seed
TEST_METRIC = "seedhp.test_metric"  # on parent runs: the test score beside the objective
RESEED_OF = "seedhp.reseed_of"  # a fresh-seed re-run: of this sweep's or study's parent run
# where it belongs
PARENT = "mlflow.parentRunId"
SWEEP = "seedhp.sweep"  # the sweep's or study's parent run
STUDY = "seedhp.study"
TRIAL = "seedhp.trial"
STRATEGY = "seedhp.strategy"  # tuned | averaged | fixed
REPLICATE = "seedhp.replicate"  # the strategy contrast's replicate (seedhp.sweep.strategies)
SOURCE = "seedhp.source"  # the sources sweep's arm: the stream it varies, or all
REUSED_BY = "seedhp.reused_by."  # + parent run id: a sweep that counts this run as its own
KIND = "seedhp.kind"  # on parent runs: sweep | study | reseed | contrast | sources
# seedhp's own task
MODEL, DATA = "seedhp.model", "seedhp.data"
PACK_SIZE = "seedhp.pack_size"
PACK_ENGINE = "seedhp.pack_engine"
PREDICTIONS = "seedhp.predictions"
# the params seedhp reads back from its seed-runs (the report's objective and split sizes);
# readers of many runs read only these (seedhp.job.tracking.Tracker.children)
READ_PARAMS = ("train.objective", "split.n_val", "split.n_test")
# which process, and is it alive
OWNER = "seedhp.owner"  # host:pid:start of the process that created the run
HEARTBEAT = "seedhp.heartbeat"  # unix seconds: its process was alive then


def seed_run_tags(
    seed: int,
    config_id: str,
    label: str,
    role: str,
    job_dir: str,
    overrides: Sequence[str],
    sweep: str | None,
) -> dict[str, str]:
    """The tags every seed-run starts with, whoever writes it."""
    return {
        SEED: str(seed),
        CONFIG_ID: config_id,
        ROLE: role,
        STATUS: "running",
        LABEL: label,
        JOB_DIR: job_dir,
        OVERRIDES: json.dumps(list(overrides)),
        **({SWEEP: sweep} if sweep else {}),
    }


def run_name(seed: int, label: str, trial: int | None = None) -> str:
    """What the MLflow UI lists: `t12 s62 cnn/digits`, trial first when there is one."""
    return " ".join([*([f"t{trial}"] if trial is not None else []), f"s{seed}", label])


def status(r: Run) -> str:
    """A seed-run's outcome: its status tag (finished, diverged, pruned, failed, interrupted),
    or what MLflow's own status says when the tag is missing."""
    tag = r.data.tags.get(STATUS)
    if tag and not (tag == "running" and r.info.status != "RUNNING"):
        return str(tag)
    return {"FAILED": "failed", "KILLED": "interrupted", "FINISHED": "finished"}.get(
        r.info.status, "running"
    )


def role(r: Run, parent: str | None = None) -> str:
    """run | trial | reseed | baseline: the run's own, or the one the sweep `parent` that
    reuses it gave it."""
    tags = r.data.tags
    return str(tags.get(f"{REUSED_BY}{parent}") or tags.get(ROLE, "run"))


def is_seed_run(r: Run) -> bool:
    return CONFIG_ID in r.data.tags and SEED in r.data.tags


def read_seed_run(r: Run, plays: str | None = None) -> SeedRun:
    """The one reader of a seed-run; `plays`: the role it has where it is read (role(r, parent)
    for a sweep that reuses it), else its own."""
    from seedhp.stats.contrast import SeedRun  # here: SciPy is not a sweep's to import

    tags: dict[str, Any] = r.data.tags
    try:
        overrides = tuple(str(o) for o in json.loads(tags.get(OVERRIDES, "[]")))
    except (ValueError, TypeError):
        overrides = ()
    cid = trust.stored_config_id(str(tags[CONFIG_ID]), r.info.run_id)  # it names report files
    seed = str(tags[SEED])
    if not seed.isdigit():
        raise ConfigError(
            "seed", seed, f"the tag of run {r.info.run_id!r:.40} is not a seed (an int >= 0)"
        )
    return SeedRun(
        run_id=r.info.run_id,
        config_id=cid,
        label=tags.get(LABEL, cid),
        seed=int(seed),
        status=status(r),
        role=plays or role(r),
        metrics={k: float(v) for k, v in r.data.metrics.items()},
        strategy=tags.get(STRATEGY),
        study=tags.get(STUDY),
        replicate=int(tags[REPLICATE]) if REPLICATE in tags else None,
        model=tags.get(MODEL),
        overrides=overrides,
        app_command=(tags[APP_DIR], tags[APP_SCRIPT], tags.get(SEED_KEY, "seed"))
        if APP_SCRIPT in tags and APP_DIR in tags
        else None,
        has_predictions=PREDICTIONS in tags,
        start_time=int(r.info.start_time or 0),
    )
