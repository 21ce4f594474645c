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
from tests.datafiles import write_mnist

SMALL = [
    "experiment=strategies",
    "train.epochs=1",
    "hydra.sweeper.replicates=2",
    "hydra.sweeper.budget=4",
    "hydra.sweeper.seeds_per_trial=2",
    "hydra.sweeper.fresh_seeds=3",
    "hydra.sweeper.seed_block=100",
    "hydra.sweeper.seed_shopping=2",
]


@pytest.mark.slow  # about 60 s: 2 replicates x 3 studies, shopping, fresh seed-runs, a resume
def test_one_command_runs_the_whole_contrast_and_resumes(tmp_path: Path) -> None:
    first = cli(SMALL, cwd=tmp_path)
    assert first.returncode == 0, first.stderr[-3000:]
    outputs = tmp_path / "outputs"
    [path] = outputs.glob("multirun/*/contrast/contrast.json")
    n = json.loads(path.read_text())
    assert {(r["replicate"], r["strategy"]) for r in n["rows"]} == {
        (k, s) for k in (0, 1) for s in ("tuned", "averaged", "fixed", "seed_shopping")
    }
    assert n["answer"].startswith("At 4 seed-runs per study (2 replicates")
    assert n["draw_split"] and n["draw_test"]  # digits: the test part is drawn too
    assert "Contrast: " in first.stdout and (path.parent / "contrast.html").exists()

    runs = all_runs(outputs)
    [parent] = [r for r in runs if r.data.tags.get("seedhp.kind") == "contrast"]
    studies = [r for r in runs if r.data.tags.get("seedhp.kind") == "study"]
    assert len(studies) == 6
    assert all(s.data.tags["mlflow.parentRunId"] == parent.info.run_id for s in studies)
    assert "contrast.tuned.b4.inflation" in parent.data.metrics
    seed_runs = [r for r in runs if "config_id" in r.data.tags]
    assert all(
        {"seedhp.replicate", "seedhp.strategy", "seedhp.study"} <= set(r.data.tags)
        for r in seed_runs
    )
    storage = f"sqlite:///{outputs}/optuna.db"
    for row in [r for r in n["rows"] if r["strategy"] != "seed_shopping"]:
        study = optuna.load_study(study_name=row["study"], storage=storage)
        trials = study.get_trials(states=(optuna.trial.TrialState.COMPLETE,))
        # the same budget in seed-runs: an averaged trial of 2 seeds costs 2
        assert sum(len(t.user_attrs["seed_scores"]) for t in trials) == 4
        # the winner is the trial the study reports as best, by the report's tie rule
        seed_key = "seed" if row["strategy"] == "tuned" else None
        best = best_trials(trials, True, seed_key)[0]
        assert row["promised"] == best.value and row["config_id"] == best.user_attrs["config_id"]
        # reported: the test score of what was selected, read from its own seed-runs
        ids = best.user_attrs["mlflow_run_ids"].values()
        tests = [next(r for r in runs if r.info.run_id == i).data.metrics["test_acc"] for i in ids]
        assert row["reported"] == pytest.approx(sum(tests) / len(tests))
        assert row["inflation"] == pytest.approx(row["reported"] - row["delivered"])

    # seed shopping: the fixed winner on the block's next 2 seeds, the best on validation
    for k in (0, 1):
        fixed, shop = (
            next(r for r in n["rows"] if (r["replicate"], r["strategy"]) == (k, arm))
            for arm in ("fixed", "seed_shopping")
        )
        # each shopping seed trained once for the configuration (by this arm, or reused from a
        # study that chose the same configuration and seed)
        shopped = [
            r
            for r in seed_runs
            if r.data.tags["config_id"] == fixed["config_id"]
            and int(r.data.tags["seed"]) in {100 * k + 1, 100 * k + 2}
            and r.data.tags["seedhp.role"] != "fresh"
        ]
        assert sorted(int(r.data.tags["seed"]) for r in shopped) == [100 * k + 1, 100 * k + 2]
        candidates = [*shopped, *(r for r in seed_runs if r.info.run_id in _ids(fixed, outputs))]
        best_val = max(r.data.metrics["val_acc"] for r in candidates)
        assert shop["promised"] == best_val and shop["delivered"] == fixed["delivered"]
        assert shop["seed_runs"] == fixed["seed_runs"] + 2

    # each replicate validates on its own split: seeds.split=r in every seed-run's config
    for r in seed_runs:
        assert r.data.params.get("seeds.split") == r.data.tags["seedhp.replicate"]
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
    names = [
        r["study"] for r in n["rows"] if r["replicate"] == 0 and r["strategy"] != "seed_shopping"
    ]
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


def _ids(row: dict[str, object], outputs: Path) -> set[str]:
    study = optuna.load_study(
        study_name=str(row["study"]), storage=f"sqlite:///{outputs}/optuna.db"
    )
    return {
        i
        for t in study.get_trials(states=(optuna.trial.TrialState.COMPLETE,))
        if t.user_attrs.get("config_id") == row["config_id"]
        for i in t.user_attrs["mlflow_run_ids"].values()
    }


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("hydra.sweeper.strategies=[tuned,lucky]", "hydra.sweeper.strategies="),
        pytest.param(
            "hydra.sweeper.budget=0",
            "hydra.sweeper.budget=0: distinct integers >= 1",
            marks=pytest.mark.slow,
        ),
        ("seed=3", "seed="),
        pytest.param(
            "hydra.sweeper.seeds_per_trial=9",
            "hydra.sweeper.budget=4: multiples of hydra.sweeper.seeds_per_trial (9)",
            marks=pytest.mark.slow,
        ),
        pytest.param(
            "hydra.sweeper.budgets=[]",
            "hydra.sweeper.budgets=[]: distinct integers >= 1",
            marks=pytest.mark.slow,
        ),
        pytest.param(
            "hydra.sweeper.seed_shopping=100",
            "hydra.sweeper.seed_shopping=100: at most 99",
            marks=pytest.mark.slow,
        ),
        pytest.param(
            "seeds.split=3",
            "seeds.split=3: the contrast draws each replicate's split",
            marks=pytest.mark.slow,
        ),
    ],
)
def test_bad_settings_fail_in_one_line_before_training(
    tmp_path: Path, override: str, message: str
) -> None:
    small = (
        [a for a in SMALL if not a.startswith("hydra.sweeper.budget=")]
        if "budgets" in override
        else SMALL
    )
    result = cli([*small, override], cwd=tmp_path)
    assert result.returncode == 2, result.stderr[-2000:]
    [line] = result.stderr.strip().splitlines()
    assert line.startswith("seedhp: error: ") and message in line
    assert not all_runs(tmp_path / "outputs")


@pytest.mark.slow
def test_an_official_test_set_is_not_redrawn_when_asked(tmp_path: Path) -> None:
    write_mnist(tmp_path / "data", n_train=60, n_test=20, name="FashionMNIST")
    fashion = [
        "data=fashion_mnist",
        "data.source.verify=false",
        "data.val_size=10",
        "train.batch_size=8",
    ]
    result = cli([*SMALL, *fashion, "hydra.sweeper.draw_test=true"], cwd=tmp_path)
    assert result.returncode == 2, result.stderr[-2000:]
    [line] = result.stderr.strip().splitlines()
    assert line.startswith("seedhp: error: hydra.sweeper.draw_test=True: ") and "official" in line
