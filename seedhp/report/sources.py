"""The sources page: which source of randomness moves the score, one configuration's arms side
by side (sources.html, sources.json, sources.csv, sources.png), logged on the sweep's parent
run (artifacts `sources/`, metrics `sources.<arm>.<val|test>_std` and `..._share`).

The numbers are seedhp.stats.sources'; this module reads the arms' seed-runs from MLflow and
writes the files. Scores on the page are in accuracy points (x 100) for accuracies."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from html import escape
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from seedhp.job.record import is_seed_run, read_seed_run, role
from seedhp.job.tracking import Tracker, metric
from seedhp.job.urls import write_scrubbed
from seedhp.report import figures as fig
from seedhp.report.build import json_safe, write_csv
from seedhp.report.html import CSS, digits_for, img
from seedhp.report.whole import log_page_last, whole_dir
from seedhp.stats import sources as numbers
from seedhp.stats.summary import latest_per_seed

if TYPE_CHECKING:
    from mlflow.entities import Run

    from seedhp.stats.contrast import SeedRun

PAGE = ("sources.json", "sources.html")  # uploaded last: a stopped upload has no page
# final metrics that tell two runs apart (not times: those differ between identical runs)
FINGERPRINT = ("val_acc", "val_loss", "best_val_acc", "test_acc", "test_loss", "train_loss")
METRICS = ("val", "test")


def arm_runs(
    runs: Sequence[Run], arms: Mapping[str, Sequence[str]], parent: str | None = None
) -> tuple[dict[str, list[SeedRun]], dict[str, int]]:
    """Each arm's finished seed-runs, one per seed (the latest), by seed; arms: arm -> its
    config_ids. Also the split's sizes (split.n_val, split.n_test) as the runs logged them."""
    wanted = {cid: a for a, ids in arms.items() for cid in ids}
    read = [read_seed_run(r, role(r, parent)) for r in runs if is_seed_run(r)]
    mine = [s for s in read if s.config_id in wanted and s.role != "reseed"]
    kept, _ = latest_per_seed(mine)
    out: dict[str, list[SeedRun]] = {a: [] for a in arms}
    for s in sorted(kept, key=lambda s: s.seed):
        if s.status == "finished":
            out[wanted[s.config_id]].append(s)
    sizes: dict[str, int] = {}
    for r in runs:
        for key in ("split.n_val", "split.n_test"):
            value = r.data.params.get(key)
            if key not in sizes and value is not None and str(value).isdigit():
                sizes[key] = int(value)
    return out, sizes


def write_sources(
    tracker: Tracker,
    parent: str,
    meta: Mapping[str, Any],
    by_arm: Mapping[str, Sequence[SeedRun]],
    sizes: Mapping[str, int],
    objective: str,
    test_metric: str,
    out: Path,
    random_state: int = 0,
) -> tuple[Path, str]:
    """Write the page into `out` and onto `parent`; returns its path and a console table."""
    values = {
        a: [r for r in rs if _finite(r.metrics.get(objective), r.metrics.get(test_metric))]
        for a, rs in by_arm.items()
    }
    val = {a: np.array([r.metrics[objective] for r in rs]) for a, rs in values.items()}
    test = {a: np.array([r.metrics[test_metric] for r in rs]) for a, rs in values.items()}
    fingerprints = {a: _fingerprint(rs, objective, test_metric) for a, rs in values.items()}
    accuracy = objective.endswith("acc"), test_metric.endswith("acc")
    s = numbers.analyse(
        val,
        test,
        fingerprints,
        sizes.get("split.n_val") if accuracy[0] else None,
        sizes.get("split.n_test") if accuracy[1] else None,
        random_state=random_state,
    )
    scale, unit = numbers.unit(objective)
    n: dict[str, Any] = {
        **dict(meta),
        "objective": objective,
        "test_metric": test_metric,
        "unit": unit.strip() or objective,
        "scale": scale,
        "n_val": sizes.get("split.n_val"),
        "n_test": sizes.get("split.n_test"),
        "random_state": random_state,
        "confidence": numbers.CONFIDENCE,
        "normality_alpha": numbers.NORMALITY_ALPHA,
        "bootstrap_resamples": numbers.N_RESAMPLES,
        "answer": numbers.answer(s, scale, unit),
        "share_note": numbers.SUM_NOTE,
        **s.as_dict(),
        "runs": {
            a: [
                {
                    "seed": r.seed,
                    "run_id": r.run_id,
                    objective: r.metrics[objective],
                    test_metric: r.metrics[test_metric],
                }
                for r in rs
            ]
            for a, rs in values.items()
        },
    }
    with whole_dir(out) as partial:  # stopped midway, nothing that looks complete
        figure = _figure(val, test, n, partial / "sources.png")
        write_scrubbed(partial / "sources.json", json.dumps(json_safe(n), indent=1))
        write_csv(partial / "sources.csv", _csv_rows(s))
        write_scrubbed(partial / "sources.html", render(n, figure))
    log_page_last(tracker, parent, out, "sources", PAGE)
    tracker.log(
        parent,
        metrics=[
            metric(f"sources.{a.source}.{m}_{q}", x)
            for a in s.arms
            for m in METRICS
            for q, x in (("std", _metric(a, m).spread.std), ("share", _metric(a, m).share))
            if math.isfinite(x)
        ],
    )
    return out / "sources.html", table(n)


def _finite(*xs: float | None) -> bool:
    return all(x is not None and math.isfinite(x) for x in xs)


def _fingerprint(runs: Sequence[SeedRun], objective: str, test_metric: str) -> np.ndarray:
    """(n, m): the final metrics every run of the arm logged, in one order."""
    names = dict.fromkeys((objective, test_metric, *FINGERPRINT))
    keys = [k for k in names if all(k in r.metrics for r in runs)]
    return np.array([[r.metrics[k] for k in keys] for r in runs], dtype=float).reshape(
        len(runs), len(keys)
    )


def _metric(a: numbers.Arm, m: str) -> numbers.Metric:
    return a.val if m == "val" else a.test


def _csv_rows(s: numbers.Sources) -> list[dict[str, Any]]:
    rows = []
    for a in s.arms:
        for m in METRICS:
            x = _metric(a, m)
            rows.append(
                {
                    "source": a.source,
                    "metric": m,
                    "n": a.n,
                    "unused": a.unused,
                    "mean": x.spread.mean,
                    "std": x.spread.std,
                    "std_ci_low": x.spread.ci[0],
                    "std_ci_high": x.spread.ci[1],
                    "std_ci_method": x.spread.method,
                    "shapiro_p": x.spread.shapiro_p,
                    "share": x.share,
                    "share_ci_low": x.share_ci[0],
                    "share_ci_high": x.share_ci[1],
                    "noise_floor": x.noise_floor,
                }
            )
    return rows


# ----------------------------------------------------------------------------------------------
# The figure


def _figure(
    val: Mapping[str, np.ndarray], test: Mapping[str, np.ndarray], n: dict[str, Any], path: Path
) -> Path:
    """Per arm, its seed-runs' scores as dots over a box (median, quartiles, whiskers to 1.5
    IQR); the objective on the left, the test score on the right."""
    plt = fig.plt
    scale, shown = n["scale"], f" ({n['unit']})" if n["unit"] == "points" else ""
    arms = list(val)
    rng = np.random.default_rng(0)  # the dots' horizontal jitter, the same each time
    f, axes = plt.subplots(1, 2, figsize=(10, 3.6), squeeze=False)
    for ax, scores, name in zip(
        axes[0], (val, test), (n["objective"], n["test_metric"]), strict=True
    ):
        data = [np.asarray(scores[a]) * scale for a in arms]
        ax.boxplot(
            data,
            positions=range(len(arms)),
            widths=0.5,
            showfliers=False,
            medianprops={"color": "black"},
            boxprops={"color": fig.GREY},
            whiskerprops={"color": fig.GREY},
            capprops={"color": fig.GREY},
        )
        for i, (a, d) in enumerate(zip(arms, data, strict=True)):
            colour = fig.RED if a == numbers.TOGETHER else fig.BLUE
            colour = fig.GREY if a in n["unused"] else colour
            x = i + rng.uniform(-0.12, 0.12, len(d))
            ax.plot(x, d, "o", color=colour, ms=3.5, alpha=0.6)
        ax.set_xticks(
            range(len(arms)), [f"{a}\n(not used)" if a in n["unused"] else a for a in arms]
        )
        ax.set_ylabel(f"{fig.name(name)}{shown}")
        ax.set_title(f"{fig.name(name)}: each source varied alone, and all together")
    return _save(f, path)


def _save(f: Any, path: Path) -> Path:
    f.tight_layout()
    f.savefig(path, dpi=120, bbox_inches="tight")
    fig.plt.close(f)
    return path


# ----------------------------------------------------------------------------------------------
# The page and the console table


def render(n: dict[str, Any], figure: Path) -> str:
    obj, test = fig.name(n["objective"]), fig.name(n["test_metric"])
    return "\n".join(
        [
            "<!doctype html><html lang=en><head><meta charset=utf-8><title>seedhp sources: "
            f"{escape(str(n.get('label', '')))}</title><style>{CSS}</style></head><body>",
            "<h1>Which source of randomness moves the score?</h1>",
            _design(n),
            f"<p><b>{escape(n['answer'])}</b></p>" if n["answer"] else "",
            img(figure),
            *(_arms_table(n, m, name) for m, name in (("val", obj), ("test", test))),
            _shares(n),
            _tests(n),
            _definitions(n),
            "</body></html>",
        ]
    )


def _design(n: dict[str, Any]) -> str:
    pins = ", ".join(
        f"<code>seeds.{s}={escape(str(v))}</code>" for s, v in (n.get("held") or {}).items()
    )
    return (
        f"<p class=meta>configuration <b>{escape(str(n.get('label', '')))}</b>; each arm "
        "(its own config_id: sources.json) varies one seed stream over seeds "
        f"{escape(str(n.get('seeds', '')))} (<code>seeds.&lt;source&gt;=null</code>: it follows "
        f"the seed) with every other stream pinned to source seed {escape(str(n.get('pin')))}"
        + (f" (held on the command line: {pins})" if pins else "")
        + "; the arm <b>all</b> varies every stream. Objective "
        f"{escape(fig.name(n['objective']))}, beside it {escape(fig.name(n['test_metric']))}; "
        f"scores in {escape(n['unit'])}. Validation examples: {n.get('n_val') or '&ndash;'}, "
        f"test examples: {n.get('n_test') or '&ndash;'}."
        + (f"<br>command: <code>{escape(str(n['command']))}</code>" if n.get("command") else "")
        + f"<br>MLflow parent run <code>{escape(str(n['parent_run_id']))}</code></p>"
    )


def _arms_table(n: dict[str, Any], m: str, name: str) -> str:
    k = n["scale"]
    floor_n = n.get("n_val") if m == "val" else n.get("n_test")
    head = (
        f"<h2>{escape(name.capitalize())}</h2><table><tr><th class=l>source varied</th>"
        "<th>seed-runs</th><th>mean</th><th>std [95 % CI]</th><th class=l>CI of the std</th>"
        "<th>share of all's variance [95 % F interval]</th>"
        f"<th>noise floor &radic;(p(1&minus;p)/{floor_n or 'n'})</th></tr>"
    )
    rows = []
    for a in n["arms"]:
        x = a[m]
        sp = x["spread"]
        if a["unused"]:
            why = (
                "not used by this configuration: every run identical"
                if a["source"] != numbers.TOGETHER
                else "every run identical: this configuration ignores its seed"
            )
            rows.append(
                f"<tr><td class=l>{escape(a['source'])}</td><td>{a['n']}</td>"
                f"<td>{_mean(sp, k)}</td><td class=l colspan=4>{why}</td></tr>"
            )
            continue
        rows.append(
            f"<tr><td class=l><b>{escape(a['source'])}</b></td><td>{a['n']}</td>"
            f"<td>{_mean(sp, k)}</td><td>{_v(sp['std'], k, sp['ci'])}</td>"
            f"<td class=l>{_method(n, sp)}</td>"
            f"<td>{_share(x['share'], x['share_ci'], a['source'])}</td>"
            f"<td>{_v(x['noise_floor'], k)}</td></tr>"
        )
    return head + "".join(rows) + "</table>"


def _shares(n: dict[str, Any]) -> str:
    parts = []
    for m, name in (("val", n["objective"]), ("test", n["test_metric"])):
        total = n["share_sum"].get(m)
        if total is None or not math.isfinite(total):
            continue
        parts.append(
            f"{escape(fig.name(name))}: the single-source shares add to {total:.2f} "
            f"({total - 1:+.2f} from 1)"
        )
    if not parts:
        return (
            "<h2>Shares</h2><p>No shares: the arm <b>all</b> is missing (hydra.sweeper.together="
            "false) or its runs have no spread.</p>"
        )
    return f"<h2>Shares</h2><p>{'; '.join(parts)}. {escape(n['share_note'])}</p>"


def _tests(n: dict[str, Any]) -> str:
    out = ["<h2>Do the single-source spreads differ?</h2>"]
    if not n["pairs"] and not n["overall"]:
        out.append(
            "<p>Fewer than two single-source arms that this configuration uses: nothing to "
            "compare.</p>"
        )
        return "".join(out)
    out.append(
        "<p>Brown&ndash;Forsythe tests of equal spread (Levene's test on absolute deviations "
        "from each arm's median), between every two single-source arms that vary anything "
        "(Holm-adjusted within each metric) and across them all"
        + (
            f"; left out, since their runs are all identical: {escape(', '.join(n['unused']))}"
            if n["unused"]
            else ""
        )
        + ".</p><table><tr><th class=l>metric</th><th class=l>arms</th>"
        "<th>std ratio</th><th>W</th><th>p</th><th>p (Holm)</th></tr>"
    )
    for o in n["overall"]:
        name = fig.name(n["objective"] if o["metric"] == "val" else n["test_metric"])
        out.append(
            f"<tr><td class=l>{escape(name)}</td><td class=l>all of "
            f"{escape(', '.join(o['sources']))}</td><td>&ndash;</td><td>{_g(o['statistic'])}</td>"
            f"<td>{_g(o['p'])}</td><td>&ndash;</td></tr>"
        )
    for p in n["pairs"]:
        name = fig.name(n["objective"] if p["metric"] == "val" else n["test_metric"])
        out.append(
            f"<tr><td class=l>{escape(name)}</td><td class=l>{escape(p['a'])} vs "
            f"{escape(p['b'])}</td><td>{_g(p['std_ratio'])}</td><td>{_g(p['statistic'])}</td>"
            f"<td>{_g(p['p'])}</td><td>{_g(p['p_holm'])}</td></tr>"
        )
    out.append("</table>")
    return "".join(out)


def _definitions(n: dict[str, Any]) -> str:
    a = 1 - n["confidence"]
    return (
        "<h2>Definitions</h2><ul>"
        "<li><b>std</b>: the sample standard deviation (n &minus; 1) over the arm's seed-runs. "
        "<b>Its 95 % CI</b>: the chi-square interval [s&radic;((n&minus;1)/&chi;&sup2;"
        f"<sub>{1 - a / 2:g}</sub>), s&radic;((n&minus;1)/&chi;&sup2;<sub>{a / 2:g}</sub>)] "
        f"where a Shapiro&ndash;Wilk test does not reject normal scores (p &ge; "
        f"{n['normality_alpha']:g}; assumed at n = 2, where it cannot test), else a "
        f"percentile bootstrap of the std ({n['bootstrap_resamples']:,} resamples, "
        f"random_state {n['random_state']}); each row says which.</li>"
        "<li><b>share</b>: var(arm) / var(all), the arm's variance as a share of the variance "
        "with every stream varied; its interval is the F interval of a ratio of two variances "
        "[r/F<sub>0.975</sub>(n<sub>1</sub>&minus;1, n<sub>2</sub>&minus;1), "
        "r/F<sub>0.025</sub>(n<sub>1</sub>&minus;1, n<sub>2</sub>&minus;1)], which assumes "
        "normal scores and independent arms.</li>"
        "<li><b>noise floor</b>: &radic;(p(1&minus;p)/n) at the arm's mean accuracy p, n the "
        "validation or test examples: the spread a finite evaluation set alone gives one "
        "score; a std near it is mostly which examples happened to be right.</li>"
        "<li><b>not used</b>: every seed-run of the arm gave the same final metrics to the "
        "last bit: nothing in this configuration draws from that stream (dropout without "
        "dropout layers, augment with data.augment=none), so it gets no test (its share is "
        "0).</li></ul>"
    )


def table(n: dict[str, Any]) -> str:
    """The console's short table: the objective's spread per arm, in the page's unit."""
    k, unit = n["scale"], n["unit"]
    lines = [
        f"Sources of randomness: {n['objective']} ({unit}), std with its 95 % CI, share of "
        "all's variance",
        f"{'source':<9} {'n':>3} {'mean':>8}  {'std [95 % CI]':<24} {'CI':<10} share",
    ]
    for a in n["arms"]:
        sp, x = a["val"]["spread"], a["val"]
        if a["unused"]:
            why = (
                "not used by this configuration: every run identical"
                if a["source"] != numbers.TOGETHER
                else "every run identical: the configuration ignores its seed"
            )
            lines.append(f"{a['source']:<9} {a['n']:>3} {_m(sp['mean'], k):>8}  {why}")
            continue
        std = f"{_t(sp['std'], k)} [{_t(sp['ci'][0], k)}, {_t(sp['ci'][1], k)}]"
        share = "-" if a["source"] == numbers.TOGETHER else _share_text(x["share"])
        lines.append(
            f"{a['source']:<9} {a['n']:>3} {_m(sp['mean'], k):>8}  {std:<24} "
            f"{sp['method']:<10} {share}"
        )
    floors = [
        f"{where} ({size} examples) {_t(a[m]['noise_floor'], k)}"
        for a in n["arms"][-1:]
        for m, where, size in (
            ("val", "validation", n.get("n_val")),
            ("test", "test", n.get("n_test")),
        )
        if a[m]["noise_floor"] is not None and math.isfinite(a[m]["noise_floor"])
    ]
    if floors:
        lines.append(f"noise floor at {n['arms'][-1]['source']}'s mean: {'; '.join(floors)}")
    total = n["share_sum"].get("val")
    if total is not None and math.isfinite(total):
        lines.append(f"single-source shares add to {total:.2f} ({total - 1:+.2f} from 1)")
    return "\n".join(lines)


def _t(x: Any, k: float) -> str:
    return "-" if x is None or not math.isfinite(x) else _sig(x * k)


def _m(x: Any, k: float) -> str:
    return "-" if x is None or not math.isfinite(x) else f"{x * k:.{2 if k == 100 else 4}f}"


def _share_text(x: Any) -> str:
    return "-" if x is None or not math.isfinite(x) else f"{x:.2f}"


def _g(x: Any) -> str:
    return "&ndash;" if x is None or not math.isfinite(x) else f"{x:.3g}"


def _v(x: Any, k: float, ci: Any = None) -> str:
    """A spread (std, noise floor) in the page's unit, two significant digits, with its
    interval when given."""
    if x is None or not math.isfinite(x):
        return "&ndash;"
    text = _sig(x * k)
    if ci is not None and ci[0] is not None and math.isfinite(ci[0]):
        text += f" [{_sig(ci[0] * k)}, {_sig(ci[1] * k)}]"
    return text


def _sig(x: float) -> str:
    """Two significant digits, as a plain decimal (12, 6.4, 0.050)."""
    if x == 0 or not math.isfinite(x):
        return "0" if x == 0 else "-"
    return f"{x:.{max(0, 1 - math.floor(math.log10(abs(x))))}f}"


def _mean(sp: dict[str, Any], k: float) -> str:
    """A mean in the page's unit, to the precision its standard error supports (two decimals
    where it has none)."""
    x, std, n = sp["mean"], sp["std"], sp["n"]
    if x is None or not math.isfinite(x):
        return "&ndash;"
    se = std * k / math.sqrt(n) if std and math.isfinite(std) and n else None
    return f"{x * k:.{min(digits_for(se), 3) if se else 2}f}"


def _method(n: dict[str, Any], sp: dict[str, Any]) -> str:
    p = sp.get("shapiro_p")
    if sp["method"] == numbers.CHI2:
        why = (
            f"Shapiro&ndash;Wilk p = {p:.2g} &ge; {n['normality_alpha']:g}"
            if p is not None and math.isfinite(p)
            else "normality assumed: n = 2 cannot test it"
        )
        return f"chi-square ({why})"
    if sp["method"] == numbers.BOOTSTRAP:
        return (
            f"percentile bootstrap (Shapiro&ndash;Wilk p = {p:.2g} &lt; {n['normality_alpha']:g})"
        )
    if sp["method"] == numbers.IDENTICAL:
        return "every score equal (std 0; other metrics differ)"
    return escape(str(sp["method"]))


def _share(x: Any, ci: Any, source: str) -> str:
    if source == numbers.TOGETHER:
        return "1 (the reference)"
    if x is None or not math.isfinite(x):
        return "&ndash;"
    if ci[0] is None or not math.isfinite(ci[0]):
        return f"{x:.2f}"
    return f"{x:.2f} [{ci[0]:.2f}, {ci[1]:.2f}]"
