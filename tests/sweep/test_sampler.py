"""A seeded sampler draws trial n's values from (seed, n): a resumed study and each worker of a
shared one propose what one uninterrupted process would, never the first trials again."""

from __future__ import annotations

import math
from collections.abc import Callable

import optuna
import pytest

from seedhp.sweep.samplers import seeded_per_trial

optuna.logging.set_verbosity(optuna.logging.WARNING)
Params = tuple[float, int, str]


def _trial(study: optuna.Study) -> Params:
    trial = study.ask()
    p = (
        trial.suggest_float("lr", 1e-3, 1.0, log=True),
        trial.suggest_categorical("seed", list(range(1000))),
        trial.suggest_categorical("width", ["16", "32", "64"]),
    )
    study.tell(trial, math.log(p[0]) ** 2 + (p[1] % 7) / 10)
    return p


def _params(study: optuna.Study) -> list[Params]:
    return [(t.params["lr"], t.params["seed"], t.params["width"]) for t in study.get_trials()]


SAMPLERS: dict[str, Callable[[int], optuna.samplers.BaseSampler]] = {
    "random": lambda seed: optuna.samplers.RandomSampler(seed=seed),
    "tpe": lambda seed: optuna.samplers.TPESampler(seed=seed),
}


def _one_process(kind: str, n: int) -> list[Params]:
    study = optuna.create_study(sampler=seeded_per_trial(SAMPLERS[kind](0), 0))
    for _ in range(n):
        _trial(study)
    return _params(study)


@pytest.mark.parametrize("kind", SAMPLERS)
def test_a_resumed_study_draws_new_trials(kind: str) -> None:
    single = _one_process(kind, 12)
    storage = optuna.storages.InMemoryStorage()
    for _ in range(2):  # a process that stops after 6 trials, then the command run again
        study = optuna.create_study(
            study_name="s",
            storage=storage,
            load_if_exists=True,
            sampler=seeded_per_trial(SAMPLERS[kind](0), 0),
        )
        for _ in range(6):
            _trial(study)
    resumed = _params(study)
    assert len(set(resumed)) == 12
    # TPE's 10 random start-up trials, and every random trial, are the uninterrupted study's
    same = 12 if kind == "random" else 10
    assert resumed[:same] == single[:same]


def test_two_workers_draw_what_one_process_would() -> None:
    storage = optuna.storages.InMemoryStorage()
    workers = [
        optuna.create_study(
            study_name="s",
            storage=storage,
            load_if_exists=True,
            sampler=seeded_per_trial(optuna.samplers.RandomSampler(seed=0), 0),
        )
        for _ in range(2)
    ]
    for i in range(12):
        _trial(workers[i % 2])
    assert _params(workers[0]) == _one_process("random", 12)


def test_a_sampler_seeded_once_repeats_itself_when_resumed() -> None:
    """What seeded_per_trial prevents: Optuna's own seeded sampler in a second process."""
    storage = optuna.storages.InMemoryStorage()
    for _ in range(2):
        study = optuna.create_study(
            study_name="s",
            storage=storage,
            load_if_exists=True,
            sampler=optuna.samplers.RandomSampler(seed=0),
        )
        for _ in range(6):
            _trial(study)
    drawn = _params(study)
    assert drawn[6:] == drawn[:6]
