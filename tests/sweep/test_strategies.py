"""The strategy contrast end to end: `python -m seedhp experiment=strategies ...`."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

import optuna
import pytest

from seedhp.stats.contrast import best_trials
from tests.conftest import all_runs, cli, cli_env

SMALL = [
    "experiment=strategies",
    "train.epochs=1",
    "hydra.sweeper.replicates=2",
    "hydra.sweeper.budget=4",
    "hydra.sweeper.seeds_per_trial=2",
    "hydra.sweeper.fresh_seeds=3",
    "hydra.sweeper.seed_block=100",
]


@pytest.mark.slow  # about 50 s: 2 replicates x 3 studies, 18 fresh seed-runs, then a resume
def test_one_command_runs_the_whole_contrast_and_resumes(tmp_path: Path) -> None:
    first = cli(SMALL, cwd=tmp_path)
    assert first.returncode == 0, first.stderr[-3000:]
    outputs = tmp_path / "outputs"
    [path] = outputs.glob("multirun/*/contrast/contrast.json")
    n = json.loads(path.read_text())
    assert {(r["replicate"], r["strategy"]) for r in n["rows"]} == {
        (k, s) for k in (0, 1) for s in ("tuned", "averaged", "fixed")
    }
    assert n["answer"].startswith("Promised minus delivered on fresh seeds")
    assert "Contrast: " in first.stdout and (path.parent / "contrast.html").exists()

    runs = all_runs(outputs)
    [parent] = [r for r in runs if r.data.tags.get("seedhp.kind") == "contrast"]
    studies = [r for r in runs if r.data.tags.get("seedhp.kind") == "study"]
    assert len(studies) == 6
    assert all(s.data.tags["mlflow.parentRunId"] == parent.info.run_id for s in studies)
    assert "contrast.tuned.optimism" in parent.data.metrics
    seed_runs = [r for r in runs if "config_id" in r.data.tags]
    assert all(
        {"seedhp.replicate", "seedhp.strategy", "seedhp.study"} <= set(r.data.tags)
        for r in seed_runs
    )
    storage = f"sqlite:///{outputs}/optuna.db"
    for row in n["rows"]:
        study = optuna.load_study(study_name=row["study"], storage=storage)
        trials = study.get_trials(states=(optuna.trial.TrialState.COMPLETE,))
        # the same budget in seed-runs: an averaged trial of 2 seeds costs 2
        assert sum(len(t.user_attrs["seed_scores"]) for t in trials) == 4
        # the winner is the trial the study reports as best, by the report's tie rule
        seed_key = "seed" if row["strategy"] == "tuned" else None
        best = best_trials(trials, True, seed_key)[0]
        assert row["promised"] == best.value and row["config_id"] == best.user_attrs["config_id"]

    # fresh seeds: the same for a replicate's strategies, seen by none of its studies
    fresh = [r for r in seed_runs if r.data.tags["seedhp.role"] == "fresh"]
    for k in (0, 1):
        mine = [r for r in seed_runs if r.data.tags["seedhp.replicate"] == str(k)]
        fresh_seeds = {int(r.data.tags["seed"]) for r in fresh if r in mine}
        trained = {int(r.data.tags["seed"]) for r in mine if r.data.tags["seedhp.role"] == "trial"}
        assert len(fresh_seeds) == 3 and not fresh_seeds & trained
        rows_k = [r for r in n["rows"] if r["replicate"] == k]
        assert all(r["n_fresh"] == 3 for r in rows_k)
    # no (configuration, fresh seed) trained twice, even where two strategies chose alike
    assert (
        max(Counter((r.data.tags["config_id"], r.data.tags["seed"]) for r in fresh).values()) == 1
    )

    again = cli(SMALL, cwd=tmp_path)  # resumes: every study is done, every fresh run reused
    assert again.returncode == 0, again.stderr[-3000:]
    assert len([r for r in all_runs(outputs) if "config_id" in r.data.tags]) == len(seed_runs)
    [*_, latest] = sorted(outputs.glob("multirun/*/contrast/contrast.json"))
    assert json.loads(latest.read_text())["rows"] == n["rows"]

    # existing studies contrasted: their winners on one shared set of fresh seeds
    names = [r["study"] for r in n["rows"] if r["replicate"] == 0]
    seedhp = [str(Path(sys.executable).parent / "seedhp"), "report"]
    command = [*seedhp, *(a for name in names for a in ("--study", name)), "--seeds", "3"]
    done = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, env=cli_env())
    assert done.returncode == 0, done.stderr[-3000:]
    assert "Contrast: " in done.stdout
    [path] = (outputs / "reports").glob("contrast-*/contrast.json")
    m = json.loads(path.read_text())
    assert [r["study"] for r in m["rows"]] == names and all(r["n_fresh"] == 3 for r in m["rows"])
    before = len([r for r in all_runs(outputs) if "config_id" in r.data.tags])
    assert before > len(seed_runs)  # the distinct winners' fresh seed-runs
    studied = {
        int(r.data.tags["seed"])
        for r in seed_runs
        if r.data.tags.get("seedhp.study") in names and r.data.tags["seedhp.role"] == "trial"
    }
    fresh_now = {
        int(r.data.tags["seed"])
        for r in all_runs(outputs)
        if r.data.tags.get("seedhp.role") == "reseed"
    }
    assert len(fresh_now) == 3 and not fresh_now & studied
    again = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, env=cli_env())
    assert again.returncode == 0, again.stderr[-3000:]
    assert len([r for r in all_runs(outputs) if "config_id" in r.data.tags]) == before


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("hydra.sweeper.strategies=[tuned,lucky]", "hydra.sweeper.strategies="),
        pytest.param(
            "hydra.sweeper.budget=0",
            "hydra.sweeper.budget=0: an integer >= 1",
            marks=pytest.mark.slow,
        ),
        ("seed=3", "seed="),
        pytest.param(
            "hydra.sweeper.seeds_per_trial=9",
            "hydra.sweeper.seeds_per_trial=9",
            marks=pytest.mark.slow,
        ),
    ],
)
def test_bad_settings_fail_in_one_line_before_training(
    tmp_path: Path, override: str, message: str
) -> None:
    result = cli([*SMALL, override], cwd=tmp_path)
    assert result.returncode == 2, result.stderr[-2000:]
    [line] = result.stderr.strip().splitlines()
    assert line.startswith("seedhp: error: ") and message in line
    assert not all_runs(tmp_path / "outputs")
