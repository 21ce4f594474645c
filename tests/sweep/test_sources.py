"""The sources sweep: `python -m seedhp experiment=sources`, its arms, its numbers, its errors."""

from __future__ import annotations

import json
import math
import subprocess
import sys
import textwrap
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from hydra.core.override_parser.overrides_parser import OverridesParser
from scipy import stats as sps

from seedhp.errors import ConfigError
from seedhp.job import record
from seedhp.stats import sources as numbers
from seedhp.stats.contrast import holm
from seedhp.sweep.sources import SourcesSettings, sources_settings
from seedhp.train.seeds import STREAMS
from tests.conftest import all_runs, cli, cli_env

ARMS = [*STREAMS, "all"]
SMALL = [
    "experiment=sources",
    "hydra.sweeper.n=3",
    "train.epochs=1",
    "model.hidden=[16]",
    "model.dropout=0.0",  # mlp without dropout: the dropout arm is not used
]

# ----------------------------------------------------------------------------------------------
# The numbers, on tiny arrays worked out by hand


def test_the_std_interval_is_chi_square_for_normal_looking_scores() -> None:
    s = numbers.std_interval([1.0, 2.0, 3.0])
    assert (s.n, s.mean, s.std, s.method) == (3, 2.0, 1.0, numbers.CHI2)
    assert s.shapiro_p == pytest.approx(1.0)
    # n - 1 = 2 degrees of freedom: chi2(2) is exponential with mean 2, ppf(q) = -2 ln(1 - q),
    # so the interval is [s / sqrt(-ln 0.025), s / sqrt(-ln 0.975)]
    lo, hi = 1 / math.sqrt(-math.log(0.025)), 1 / math.sqrt(-math.log(0.975))
    assert s.ci == pytest.approx((lo, hi)) and s.ci == pytest.approx((0.52066, 6.2847), abs=1e-4)
    # the same formula at another n, against scipy's quantiles directly
    x = np.array([3.0, 1.0, 4.0, 1.0, 5.0, 9.0, 2.0, 6.0])
    s = numbers.std_interval(x)
    sd, df = float(np.std(x, ddof=1)), len(x) - 1
    assert s.method == numbers.CHI2
    assert s.ci == pytest.approx(
        (
            sd * math.sqrt(df / sps.chi2.ppf(0.975, df)),
            sd * math.sqrt(df / sps.chi2.ppf(0.025, df)),
        )
    )


def test_the_std_interval_is_bootstrapped_where_shapiro_wilk_rejects_normality() -> None:
    x = [0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0, 5.0, 20.0]
    s = numbers.std_interval(x, random_state=3)
    assert s.method == numbers.BOOTSTRAP and s.shapiro_p < 0.05
    assert s.ci[0] <= s.std <= s.ci[1]
    assert numbers.std_interval(x, random_state=3) == s  # an explicit random_state: the same
    assert numbers.std_interval(x, random_state=4).ci != s.ci


@pytest.mark.parametrize(
    ("x", "method", "std", "ci"),
    [
        ([0.5], numbers.NONE, math.nan, (math.nan, math.nan)),
        ([0.5, 0.5, 0.5], numbers.IDENTICAL, 0.0, (0.0, 0.0)),
        # n = 2: Shapiro-Wilk cannot test, normality assumed; chi2(1) quantiles from scipy
        ([1.0, 3.0], numbers.CHI2, math.sqrt(2), None),
    ],
)
def test_the_std_interval_at_the_edges(
    x: list[float], method: str, std: float, ci: tuple[float, float] | None
) -> None:
    s = numbers.std_interval(x)
    assert s.method == method and s.std == pytest.approx(std, nan_ok=True)
    if ci is not None:
        assert s.ci == pytest.approx(ci, nan_ok=True)
    else:
        assert math.isnan(s.shapiro_p)
        assert s.ci == pytest.approx(numbers.chi2_interval(math.sqrt(2), 2))


def test_the_share_is_a_variance_ratio_with_its_f_interval() -> None:
    # var 1 over var 4; F(2, 2) has cdf f / (1 + f), so ppf(q) = q / (1 - q): 39 and 1/39
    share, ci = numbers.variance_share([1.0, 2.0, 3.0], [0.0, 2.0, 4.0])
    assert share == pytest.approx(0.25)
    assert ci == pytest.approx((0.25 / 39, 0.25 * 39))
    share, ci = numbers.variance_share([1.0, 2.0, 4.0, 8.0], [0.0, 1.0, 5.0])
    r = float(np.var([1, 2, 4, 8], ddof=1) / np.var([0, 1, 5], ddof=1))
    assert ci == pytest.approx((r / sps.f.ppf(0.975, 3, 2), r / sps.f.ppf(0.025, 3, 2)))
    assert math.isnan(numbers.variance_share([1.0, 2.0], [3.0, 3.0])[0])  # no spread to share


def test_brown_forsythe_by_hand_and_against_scipy() -> None:
    # medians 2 and 2: |x - median| = [1, 0, 1] and [2, 0, 2]; between 2/3, within 10/3,
    # W = (6 - 2) / (2 - 1) * (2/3) / (10/3) = 0.8
    w, p = numbers.brown_forsythe([1.0, 2.0, 3.0], [0.0, 2.0, 4.0])
    assert w == pytest.approx(0.8) and p == pytest.approx(sps.f.sf(0.8, 1, 4))
    rng = np.random.default_rng(0)
    groups = [rng.normal(0, s, n) for s, n in ((1, 7), (2, 9), (0.5, 5))]
    ref = sps.levene(*groups, center="median")
    assert numbers.brown_forsythe(*groups) == pytest.approx((ref.statistic, ref.pvalue))
    assert all(math.isnan(v) for v in numbers.brown_forsythe([1.0, 2.0]))  # one group


def test_the_analysis_names_unused_sources_and_gives_them_no_test() -> None:
    init, data, split = [0.90, 0.92, 0.94], [0.91, 0.915, 0.92], [0.88, 0.93, 0.95]
    together, still = [0.86, 0.92, 0.96], [0.9, 0.9, 0.9]
    val = {"init": init, "data": data, "dropout": still, "split": split, "all": together}
    test = {a: [v - 0.01 for v in x] for a, x in val.items()}
    prints = {a: np.column_stack([val[a], test[a]]) for a in val}
    s = numbers.analyse(val, test, prints, n_val=100, n_test=200)
    assert s.unused == ("dropout",)
    by = {a.source: a for a in s.arms}
    assert by["dropout"].unused and not by["init"].unused
    assert by["init"].val.share == pytest.approx(np.var(init, ddof=1) / np.var(together, ddof=1))
    assert by["all"].val.share == pytest.approx(1.0)
    p = by["data"].test.spread.mean
    assert by["data"].test.noise_floor == pytest.approx(math.sqrt(p * (1 - p) / 200))
    assert by["data"].val.noise_floor == pytest.approx(math.sqrt(0.915 * 0.085 / 100))
    singles = ("init", "data", "dropout", "split")
    assert s.share_sum["val"] == pytest.approx(sum(by[a].val.share for a in singles))
    val_pairs = [q for q in s.pairs if q.metric == "val"]
    assert [(q.a, q.b) for q in val_pairs] == [
        ("init", "data"),
        ("init", "split"),
        ("data", "split"),
    ]
    assert [q.p_holm for q in val_pairs] == pytest.approx(holm([q.p for q in val_pairs]))
    [overall] = [o for o in s.overall if o.metric == "val"]
    assert overall.sources == ("init", "data", "split")
    ref = sps.levene(init, data, split, center="median")
    assert (overall.statistic, overall.p) == pytest.approx((ref.statistic, ref.pvalue))
    assert "dropout" in numbers.answer(s, 100, " points")


def test_an_arm_is_identical_only_when_every_metric_is() -> None:
    assert numbers.identical([[0.9, 0.3], [0.9, 0.3], [0.9, 0.3]])
    assert not numbers.identical([[0.9, 0.3], [0.9, 0.31]])  # same accuracy, another loss
    assert not numbers.identical([[0.9, 0.3]])  # one run: nothing to compare


# ----------------------------------------------------------------------------------------------
# The arms


def _overrides(*args: str):  # type: ignore[no-untyped-def]
    return OverridesParser.create().parse_overrides(list(args))


def test_each_arm_varies_its_stream_and_pins_the_others() -> None:
    s = SourcesSettings(("init", "split"), n=3, pin=7)
    assert s.seeds == range(1, 4)
    assert s.arms() == [
        (
            "init",
            [
                "seeds.init=null",
                "seeds.data=7",
                "seeds.augment=7",
                "seeds.dropout=7",
                "seeds.split=7",
                "tracking.source=init",
            ],
        ),
        (
            "split",
            [
                "seeds.init=7",
                "seeds.data=7",
                "seeds.augment=7",
                "seeds.dropout=7",
                "seeds.split=null",
                "tracking.source=split",
            ],
        ),
        ("all", [*(f"seeds.{x}=null" for x in STREAMS), "tracking.source=all"]),
    ]


def test_a_stream_no_arm_varies_keeps_the_command_lines_pin() -> None:
    sweeper = {"sources": ["init"], "n": 2, "together": False}
    s = sources_settings(sweeper, _overrides("seeds.split=3", "train.epochs=1"))
    assert s.held == {"split": "3"}
    [(name, arm)] = s.arms()
    assert name == "init" and "seeds.split=0" not in arm and "seeds.data=0" in arm
    with pytest.raises(ConfigError, match=r"^seeds\.split=3: the sources sweep varies"):
        sources_settings({**sweeper, "together": True}, _overrides("seeds.split=3"))


# ----------------------------------------------------------------------------------------------
# End to end


@pytest.mark.slow  # two commands: 18 seed-runs trained, then all of them reused
def test_one_command_varies_each_source_alone_and_a_rerun_trains_nothing(tmp_path: Path) -> None:
    first = cli(SMALL, cwd=tmp_path)
    assert first.returncode == 0, first.stderr[-3000:]
    outputs = tmp_path / "outputs"
    runs = all_runs(outputs)
    [parent] = [r for r in runs if r.data.tags.get(record.KIND) == "sources"]
    seed_runs = [r for r in runs if record.CONFIG_ID in r.data.tags]
    assert Counter(r.data.tags[record.SOURCE] for r in seed_runs) == {a: 3 for a in ARMS}
    assert all(r.data.tags[record.PARENT] == parent.info.run_id for r in seed_runs)
    for r in seed_runs:  # the varied stream follows the seed, every other is pinned to 0
        arm, seed = r.data.tags[record.SOURCE], r.data.tags[record.SEED]
        assert seed in {"1", "2", "3"}
        for stream in STREAMS:
            expected = seed if arm in (stream, "all") else "0"
            assert r.data.params[f"seed_source.{stream}"] == expected, (arm, stream)
    assert len({r.data.tags[record.CONFIG_ID] for r in seed_runs}) == len(ARMS)  # one each

    [page] = outputs.glob("multirun/*/sources")
    assert {p.name for p in page.iterdir()} >= {
        "sources.html",
        "sources.json",
        "sources.csv",
        "sources.png",
    }
    n = json.loads((page / "sources.json").read_text())
    assert [a["source"] for a in n["arms"]] == ARMS and all(a["n"] == 3 for a in n["arms"])
    assert set(n["unused"]) == {"augment", "dropout"}  # digits: data.augment=none
    assert f"Sources: outputs/multirun/{page.parent.name}/sources/sources.html" in first.stdout
    assert "not used by this configuration: every run identical" in first.stdout
    assert "not used by this configuration" in (page / "sources.html").read_text()
    logged = {a.path for a in _artifacts(outputs, parent.info.run_id, "sources")}
    assert {"sources/sources.html", "sources/sources.json", "sources/sources.png"} <= logged

    again = cli(SMALL, cwd=tmp_path)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "18 already finished in the store are reused" in again.stdout + again.stderr
    assert len([r for r in all_runs(outputs) if record.CONFIG_ID in r.data.tags]) == 18
    [*_, latest] = sorted(outputs.glob("multirun/*/sources/sources.json"))
    m = json.loads(latest.read_text())
    assert m["arms"] == n["arms"] and m["runs"] == n["runs"]


def _artifacts(outputs: Path, run_id: str, path: str) -> list:  # type: ignore[type-arg]
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri=f"sqlite:///{outputs}/mlflow.db").list_artifacts(run_id, path)


@pytest.mark.parametrize(
    ("override", "message"),
    [
        (
            "hydra.sweeper.sources=[init,lucky]",
            "hydra.sweeper.sources=[init,lucky]: lucky is not a seed stream; a list of distinct "
            "seed streams from init, data, augment, dropout, split",
        ),
        ("seed=3", "seed=3: the sources sweep chooses the seeds"),
        pytest.param(
            "seeds.init=3",
            "seeds.init=3: the sources sweep varies this stream in its arms",
            marks=pytest.mark.slow,
        ),
        pytest.param(
            "hydra.sweeper.n=1",
            "hydra.sweeper.n=1: an integer >= 2 (seeds per arm)",
            marks=pytest.mark.slow,
        ),
        pytest.param(
            "optimizer.lr=0.1,0.2",
            "optimizer.lr=0.1,0.2: the sources sweep measures one configuration",
            marks=pytest.mark.slow,
        ),
    ],
)
def test_bad_input_fails_in_one_line_before_training(
    tmp_path: Path, override: str, message: str
) -> None:
    result = cli([*SMALL, override], cwd=tmp_path)
    assert result.returncode == 2, result.stderr[-2000:]
    [line] = result.stderr.strip().splitlines()
    assert line.startswith(f"seedhp: error: {message}")
    assert not all_runs(tmp_path / "outputs")


def test_another_app_is_told_the_sweep_needs_seedhps_seed_streams(tmp_path: Path) -> None:
    (tmp_path / "config.yaml").write_text("seed: 0\nlr: 0.1\n")
    (tmp_path / "app.py").write_text(
        textwrap.dedent(
            """
            import hydra

            @hydra.main(version_base="1.3", config_path=".", config_name="config")
            def main(cfg):
                return 0.5 + cfg.lr

            if __name__ == "__main__":
                main()
            """
        )
    )
    done = subprocess.run(
        [sys.executable, "app.py", "-m", "hydra/sweeper=seedhp_sources"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        env=cli_env(),
    )
    assert done.returncode == 2, done.stderr[-2000:]
    [line] = done.stderr.strip().splitlines()
    assert line.startswith(
        "seedhp: error: hydra/sweeper=seedhp_sources: the sources sweep needs seedhp's seed "
        "streams (seeds.init, "
    )
    assert not (tmp_path / "outputs").exists()
