"""The seed report: from a real sweep through the CLI, and from hand-made runs."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from seedhp.report.build import draw
from seedhp.report.collect import RunSet
from seedhp.report.compute import Options, compute
from seedhp.report.html import digits_for, render
from seedhp.stats.contrast import SeedRun
from seedhp.stats.power import detectable, power, seeds_needed
from tests.conftest import all_runs, cli, cli_env, mlflow_client

EVIL = "<script>alert('x')</script>"


def synthetic_runs() -> RunSet:
    rng = np.random.default_rng(0)
    runs = []
    for c, (cid, mu) in enumerate((("aaa", 0.95), ("bbb", 0.93))):
        for seed in range(8):
            val, test = mu + rng.normal(0, 0.01), mu - 0.01 + rng.normal(0, 0.01)
            runs.append(
                SeedRun(
                    f"{cid}{seed}",
                    cid,
                    f"cnn/digits {EVIL} lr={c}",
                    seed,
                    "finished",
                    "run",
                    {"val_acc": val, "test_acc": test},
                )
            )
    runs.append(SeedRun("bad", "aaa", f"cnn/digits {EVIL} lr=0", 9, "diverged", "run", {}))
    return RunSet(
        title=f"sweep {EVIL}",
        kind="sweep",
        parent_id="p",
        objective="val_acc",
        test_metric="test_acc",
        runs=runs,
        command=f"seed=range(0,8) {EVIL}",
        split_sizes={"aaa": {"n_val": 288, "n_test": 359}},
    )


def test_report_numbers_figures_and_escaping(tmp_path: Path) -> None:
    rs = synthetic_runs()
    curves = {
        r.run_id: [0.5, 0.8, r.metrics["val_acc"]] for r in rs.runs if r.status == "finished"
    }
    numbers = compute(rs, curves, {}, Options())
    a, b = numbers["configurations"]
    assert a["config_id"] == "aaa" and a["objective"]["n"] == 8 and a["diverged"] == [9]
    vals = [r.metrics["val_acc"] for r in rs.runs if r.config_id == "aaa" and r.metrics]
    assert a["objective"]["mean"] == pytest.approx(np.mean(vals))
    assert a["noise_floor"]["objective"] == pytest.approx(
        math.sqrt(a["objective"]["mean"] * (1 - a["objective"]["mean"]) / 288)
    )
    assert math.isnan(b["noise_floor"]["objective"])  # no split sizes recorded for bbb
    assert a["convergence"]["epochs"] == [1, 2, 3] and a["convergence"]["rank_agreement"][-1] == 1
    assert [s["rule"] for s in numbers["selections"]] == ["seed-tuned", "seed-averaged"]
    assert len(numbers["comparisons"]) == 1 and numbers["comparisons"][0]["a"] == "aaa"
    assert any("grid" in w for w in numbers["expected_max"]["warnings"])
    assert a["short"] == "lr=0"  # what differs between the configurations
    # power: 8 seeds of each on the same seeds, paired on their differences
    std = a["objective"]["std"]
    assert a["power"]["detectable_objective"] == pytest.approx(detectable(std, 8, paired=False))
    (c,) = numbers["comparisons"]
    d = [
        x.metrics["test_acc"] - y.metrics["test_acc"]
        for x, y in zip(rs.runs[:8], rs.runs[8:16], strict=True)
    ]
    sd = float(np.std(d, ddof=1))
    assert c["paired"] and c["power"] == pytest.approx(power(np.mean(d) / sd, 8))
    assert c["seeds_for_power"] == seeds_needed(np.mean(d), sd)
    assert c["detectable"] == pytest.approx(detectable(sd, 8))

    figures = draw(numbers, rs, tmp_path)
    assert {"hist_aaa", "conv_aaa", "expected_max", "selection_contrast"} <= set(figures)
    for path in figures.values():
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    page = render(numbers, figures)
    assert EVIL not in page and "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in page
    assert page.count("data:image/png;base64,") == len(figures)  # self-contained
    assert "seed-tuned" in page and "Protocol audit" in page
    assert "detectable difference (80 % power)" in page and "seeds for 80 % power" in page


def test_every_number_is_the_same_whatever_the_stores_row_order() -> None:
    """ASO and the ensembles resample: their inputs are put in seed order first."""
    rs = synthetic_runs()
    rng = np.random.default_rng(1)
    labels = rng.integers(0, 10, 50)
    preds = {
        r.run_id: (np.where(rng.random(50) < 0.8, labels, (labels + 1) % 10), labels)
        for r in rs.runs
        if r.status == "finished"
    }
    shuffled = [rs.runs[i] for i in rng.permutation(len(rs.runs))]
    a = compute(rs, {}, preds, Options())
    b = compute(RunSet(**{**vars(rs), "runs": shuffled}), {}, preds, Options())
    assert a["ensembles"] and a["comparisons"]
    for key in ("configurations", "selections", "comparisons", "ensembles"):
        assert json.dumps(a[key], sort_keys=True) == json.dumps(b[key], sort_keys=True), key


def test_the_page_opens_with_a_summary_and_contents_and_prints_what_the_noise_supports(
    tmp_path: Path,
) -> None:
    rs = synthetic_runs()
    numbers = compute(rs, {}, {}, Options())
    page = render(numbers, {})
    assert page.index("<h2>Summary</h2>") < page.index("<nav>") < page.index("id=audit")
    assert "over 8 seeds the seed alone moved validation accuracy from" in page
    assert "Over all 2 configurations the seed std ranged from" in page
    assert "comparisons stand at 5 % (t-test, Holm-adjusted)" in page
    for anchor in ("audit", "contrast", "configurations", "comparisons", "definitions"):
        assert f"href='#{anchor}'" in page and f"id={anchor}" in page
    assert "href='#ensembles'" not in page  # no predictions saved: no such section
    d = numbers["configurations"][0]["objective"]
    k = digits_for((d["ci_high"] - d["ci_low"]) / 2)
    assert f"{d['mean']:.{k}f} [{d['ci_low']:.{k}f}, {d['ci_high']:.{k}f}]" in page
    for words in (
        "excess kurtosis (G2)",
        "skew (G1)",
        "(linear)",
        "two-sided",
        "noise floor (n = 288)",
    ):
        assert words in page


@pytest.mark.parametrize(
    ("half", "digits"), [(0.0023, 4), (0.012, 3), (0.1, 2), (0.00049, 5), (math.nan, 4), (0.0, 4)]
)
def test_values_keep_two_significant_digits_of_their_intervals_half_width(
    half: float, digits: int
) -> None:
    assert digits_for(half) == digits


def test_sweep_writes_a_report_that_agrees_with_mlflow(tmp_path: Path) -> None:
    store = tmp_path / "elsewhere"  # not the default store: fresh seeds must follow the sweep
    store.mkdir()
    result = cli(
        [
            "-m",
            "seed=range(0,6)",
            "optimizer.lr=0.05,0.2",
            "model=mlp",
            "train.epochs=3",
            "tracking.save_predictions=true",
            "report.fresh_seeds=4",
            f"tracking.uri=sqlite:///{store}/mlflow.db",
        ],
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    outputs = tmp_path / "outputs"
    assert all_runs(outputs) == []  # nothing in the default store
    [report_dir] = outputs.glob("multirun/*/report")
    assert f"Report: {report_dir.relative_to(tmp_path)}/report.html" in result.stdout
    numbers = json.loads((report_dir / "report.json").read_text())
    assert numbers["fresh_runs"] > 0 and numbers["tracking_uri"] == f"sqlite:///{store}/mlflow.db"
    runs = all_runs(store)
    [parent] = [r for r in runs if r.data.tags.get("seedhp.kind") == "sweep"]
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
    fresh = [r for r in children if r.data.tags["seedhp.role"] == "reseed"]
    for cfg in numbers["configurations"]:
        vals = [
            r.data.metrics["val_acc"]
            for r in children
            if r.data.tags["config_id"] == cfg["config_id"] and r.data.tags["seedhp.role"] == "run"
        ]
        assert cfg["objective"]["n"] == 6 and cfg["objective"]["mean"] == pytest.approx(
            np.mean(vals)
        )
    tuned, averaged = numbers["selections"]
    winners = {tuned["config_id"], averaged["config_id"]}
    assert len(fresh) == 4 * len(winners) and tuned["fresh_n"] == averaged["fresh_n"] == 4
    assert {r.data.tags["config_id"] for r in fresh} == winners
    assert {int(r.data.tags["seed"]) for r in fresh} == {6, 7, 8, 9}  # seeds never seen
    assert tuned["chosen_on"] == max(
        r.data.metrics["val_acc"] for r in children if r.data.tags["seedhp.role"] == "run"
    )
    assert len(numbers["ensembles"]) == 2 and numbers["ensembles"][0]["members"] == 6
    names = {p.name for p in report_dir.iterdir()}
    assert {
        "report.html",
        "report.json",
        "configurations.csv",
        "runs.csv",
        "comparisons.csv",
        "expected_max.png",
        "selection_contrast.png",
    } <= names
    assert len([n for n in names if n.startswith("histogram_")]) == 2
    logged = {a.path for a in mlflow_client(store).list_artifacts(parent.info.run_id, "report")}
    assert {f"report/{n}" for n in names} == logged

    # the same report again from the command line: the same numbers
    again = subprocess.run(
        [
            sys.executable,
            "-m",
            "seedhp.report",
            "--run",
            parent.info.run_id,
            "--out",
            str(tmp_path / "again"),
            "--no-log",
            "--tracking-uri",
            f"sqlite:///{store}/mlflow.db",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env=cli_env(),
    )
    assert again.returncode == 0, again.stderr
    assert json.loads((tmp_path / "again" / "report.json").read_text()) == numbers


def seedhp(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    """The `seedhp` command, as the README shows it."""
    command = [str(Path(sys.executable).parent / "seedhp"), *args]
    return subprocess.run(command, cwd=cwd, capture_output=True, text=True, env=cli_env())


@pytest.mark.slow
def test_report_and_reseed_commands_in_every_form(tmp_path: Path) -> None:
    first = cli(
        [
            "-m",
            "seed=range(0,4)",
            "optimizer.lr=0.05,0.2",
            "model=mlp",
            "train.epochs=2",
            "report.enabled=false",
        ],
        cwd=tmp_path,
    )
    assert first.returncode == 0, first.stderr
    outputs = tmp_path / "outputs"
    [parent] = [r for r in all_runs(outputs) if r.data.tags.get("seedhp.kind") == "sweep"]
    pid = parent.info.run_id

    done = seedhp(["reseed", "--seeds", "3"], tmp_path)  # no --run: the latest sweep
    assert done.returncode == 0, done.stderr
    fresh = [r for r in all_runs(outputs) if r.data.tags.get("seedhp.role") == "reseed"]
    originals = {
        r.data.tags["config_id"]: r.data.tags["seedhp.label"]
        for r in all_runs(outputs)
        if r.data.tags.get("seedhp.role") == "run"
    }
    assert 3 <= len(fresh) <= 6 and {int(r.data.tags["seed"]) for r in fresh} == {4, 5, 6}
    for r in fresh:  # the same configuration, re-created from its resolved config
        assert r.data.tags["config_id"] in originals
        assert r.data.tags["seedhp.label"] == originals[r.data.tags["config_id"]]
        assert r.data.tags["seedhp.reseed_of"] == pid
    # the reseed sweep prints its own summary: the winners' fresh seeds
    table = done.stdout[done.stdout.index("val_acc over seeds") :].splitlines()
    rows = [line for line in table[2:] if line[:12] in originals]
    assert rows and all(int(line.split()[1]) == 3 for line in rows), done.stdout
    numbers = json.loads(next((outputs / "reports").glob(f"{pid}/report.json")).read_text())
    assert all(s["fresh_n"] == 3 for s in numbers["selections"])

    again = seedhp(["reseed", "--run", pid, "--seeds", "3"], tmp_path)
    assert again.returncode == 0 and "already have 3 fresh seeds" in again.stdout, again.stderr
    reseeds = [r for r in all_runs(outputs) if r.data.tags.get("seedhp.role") == "reseed"]
    assert len(reseeds) == len(fresh)

    for form in ([], ["--run", pid]):  # the latest sweep or study, and one named
        out = tmp_path / f"report{len(form)}"
        report = seedhp(["report", *form, "--out", str(out)], tmp_path)
        assert report.returncode == 0, report.stderr
        assert json.loads((out / "report.json").read_text())["parent_run_id"] == pid
    everything = seedhp(["report", "--all", "--out", str(tmp_path / "all")], tmp_path)
    assert everything.returncode == 0, everything.stderr
    numbers = json.loads((tmp_path / "all" / "report.json").read_text())
    assert numbers["kind"] == "experiment"
    assert sum(c["objective"]["n"] for c in numbers["configurations"]) == 8  # fresh ones apart
    # seedhp plan: the seeds a difference needs, from this sweep as a pilot
    planned = seedhp(["plan", "--run", pid, "--difference", "0.003"], tmp_path)
    assert planned.returncode == 0, planned.stderr
    finished = [
        r
        for r in all_runs(outputs)
        if r.data.tags.get("seedhp.status") == "finished" and "config_id" in r.data.tags
    ]
    for cid in originals:
        scores = [r.data.metrics["val_acc"] for r in finished if r.data.tags["config_id"] == cid]
        lr = next(o for o in originals[cid].split() if o.startswith("optimizer.lr="))
        [row] = [
            line
            for line in planned.stdout.splitlines()
            if line.startswith(lr + " ") and "(paired)" not in line
        ]
        n, std, _, need = row.split()[1:5]
        assert int(n) == len(scores) and float(std) == pytest.approx(
            np.std(scores, ddof=1), abs=1e-5
        )
        assert need == str(seeds_needed(0.003, float(np.std(scores, ddof=1)), paired=False))
    assert "(paired)" in planned.stdout  # both configurations trained seeds 0-3
    bad = seedhp(["plan", "--run", pid, "--difference", "0"], tmp_path)
    assert bad.returncode == 2 and bad.stderr.strip().splitlines() == [
        "seedhp: error: --difference=0.0: a positive difference in val_acc's own unit (0.003 "
        "for 0.3 accuracy points)"
    ]


def test_a_study_told_to_minimise_is_reported_lowest_first() -> None:
    # seedhp.optimize(direction="minimize") with its metric named `value`: the name says
    # nothing, the study's direction (tag seedhp.direction) decides
    runs = [
        SeedRun(f"{cid}{s}", cid, f"f x={cid}", s, "finished", "trial", {"value": v + 0.01 * s})
        for cid, v in (("low", 0.1), ("high", 0.9))
        for s in range(4)
    ]
    rs = RunSet("study s", "study", "p", "value", "value", runs, direction="minimize")
    numbers = compute(rs, {}, {}, Options())
    assert not numbers["maximize"] and numbers["configurations"][0]["config_id"] == "low"
    assert [s["config_id"] for s in numbers["selections"]] == ["low", "low"]
    assert numbers["comparisons"][0]["a"] == "low"  # the better one first: the lower
