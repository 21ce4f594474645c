"""What one study's loop holds while it runs (seedhp.sweep.study): the Hydra context, the
launcher, the app, the study's settings, the Optuna study, the MLflow parent run and the
counts of this process's trials. Its own module, so that the loop's helpers (study_record,
study_storage) take it without importing the loop.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import optuna
from hydra.core.utils import JobReturn
from hydra.plugins.launcher import Launcher
from hydra.types import HydraContext
from omegaconf import DictConfig

from seedhp.job.tracking import Tracker
from seedhp.sweep.app import App
from seedhp.sweep.study_settings import StudySettings


@dataclass
class StudyContext:
    hydra_context: HydraContext
    config: DictConfig
    launcher: Launcher
    app: App
    settings: StudySettings
    study: optuna.Study
    tracker: Tracker
    parent: str
    sweep_dir: Path
    returns: list[JobReturn] = field(default_factory=list)
    asked: int = 0  # trials this process ran
    seed_warned: bool = False  # the app seems to ignore its seed: said once
    traceback_shown: bool = False  # a failed job's traceback goes to stderr once
    failed: int = 0  # ... of which failed (an error, or every seed diverged)
    replicate: int | None = None  # the strategy contrast's replicate, tagged on every seed-run
    job_offset: int = 0  # added to job numbers: studies sharing a sweep directory stay apart
