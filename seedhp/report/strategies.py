"""The strategy contrast's page: the answer in one sentence, pooled and per-replicate numbers,
the paired differences between strategies, a figure; with JSON and CSV, logged on the
contrast's parent run."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from html import escape
from pathlib import Path
from typing import Any

from seedhp.job.tracking import Tracker, metric
from seedhp.job.urls import write_scrubbed
from seedhp.report import figures as fig
from seedhp.report.build import json_safe, write_csv
from seedhp.report.html import CSS, collapsed, fmt, fmt_ci, img
from seedhp.report.whole import log_page_last, whole_dir
from seedhp.stats import strategies as numbers
from seedhp.stats.contrast import TIE_RULE
from seedhp.stats.summary import test_metric_of

PAGE = ("contrast.json", "contrast.html")  # uploaded last: a stopped upload has no page
NAMES = {
    "promised": "promised",
    "fresh_val": "fresh validation mean",
    "delivered": "delivered (fresh test mean)",
    "seed_luck": "seed luck",
    "gap": "validation&ndash;test gap",
    "optimism": "optimism",
    "regret": "regret",
}


def contrast_parent(tracker: Tracker, name: str, tags: Mapping[str, str]) -> str:
    """A contrast's MLflow parent run (`seedhp.kind=contrast`), found again by its name when
    the same contrast is asked for again, else created with `tags`."""
    mine = f"tags.`seedhp.kind` = 'contrast' and tags.`seedhp.contrast` = '{name}'"
    found = sorted(tracker.search(mine), key=lambda r: (r.info.start_time, r.info.run_id))
    if found:
        tracker.reopen(found[0].info.run_id)
        return str(found[0].info.run_id)
    return tracker.start_run(
        f"contrast {name}", {"seedhp.kind": "contrast", "seedhp.contrast": name, **tags}
    )


def write_contrast(
    tracker: Tracker,
    parent: str,
    meta: Mapping[str, Any],
    outcomes: Sequence[numbers.Outcome],
    objective: str,
    out: Path,
    maximize: bool,
) -> Path:
    """contrast.html, contrast.json, replicates.csv, pooled.csv, differences.csv and the
    figure in `out`, logged on `parent` (artifacts `contrast/`, pooled means as metrics)."""
    test = test_metric_of(objective)
    rows = numbers.rows(outcomes, maximize)
    pooled = numbers.pooled(rows)
    diffs = numbers.differences(rows)
    seed_diffs = numbers.seed_differences(outcomes)
    sentence = numbers.answer(rows, seed_diffs, test, maximize)
    n = {
        **dict(meta),
        "objective": objective,
        "test_metric": test,
        "answer": sentence,
        "replicates_done": sorted({r.replicate for r in rows}),
        "rows": [r.as_dict() for r in rows],
        "pooled": [p.as_dict() for p in pooled],
        "differences": [d.as_dict() for d in diffs],
        "seed_differences": [d.as_dict() for d in seed_diffs],
    }
    with whole_dir(out) as partial:  # stopped midway, nothing that looks complete
        figure = fig.promised_delivered(
            n["rows"], objective, test, partial / "promised_delivered.png"
        )
        write_scrubbed(partial / "contrast.json", json.dumps(json_safe(n), indent=1))
        write_csv(partial / "replicates.csv", n["rows"])
        write_csv(
            partial / "pooled.csv",
            [
                {
                    "strategy": p.strategy,
                    "n": p.n,
                    "quantity": q,
                    "mean": p.mean[q],
                    "ci_low": p.ci[q][0],
                    "ci_high": p.ci[q][1],
                }
                for p in pooled
                for q in numbers.QUANTITIES
            ],
        )
        write_csv(partial / "differences.csv", n["differences"])
        write_csv(partial / "seed_differences.csv", n["seed_differences"])
        write_scrubbed(partial / "contrast.html", render(n, figure))
    page = out / "contrast.html"
    log_page_last(tracker, parent, out, "contrast", PAGE)
    tracker.log(
        parent,
        metrics=[
            metric(f"contrast.{p.strategy}.{q}", p.mean[q])
            for p in pooled
            for q in numbers.QUANTITIES
            if not math.isnan(p.mean[q])
        ],
    )
    return page


def render(n: dict[str, Any], figure: Path | None) -> str:
    obj, test = fig.name(n["objective"]), fig.name(n["test_metric"])
    return "\n".join(
        [
            "<!doctype html><html lang=en><head><meta charset=utf-8><title>seedhp strategy "
            f"contrast: {escape(str(n['name']))}</title><style>{CSS}</style></head><body>",
            f"<h1>Does tuning the seed inflate results? {escape(str(n['name']))}</h1>",
            f"<p class=meta>{n['replicates']} replicates &times; "
            f"{escape(', '.join(n['strategies']))}; {n['budget']} seed-runs per study (an "
            f"averaged trial of {n['seeds_per_trial']} seeds costs {n['seeds_per_trial']}); "
            f"winners re-run on {n['fresh_seeds']} fresh seeds per replicate, shared by its "
            f"strategies; objective {escape(obj)}, delivered on {escape(test)}"
            + (
                f"<br>command: <code>{escape(str(n['command']))}</code>"
                if n.get("command")
                else ""
            )
            + f"<br>MLflow parent run <code>{escape(str(n['parent_run_id']))}</code>; Optuna "
            f"storage <code>{escape(str(n['storage']))}</code></p>",
            f"<p><b>{escape(n['answer'])}</b></p>" if n["answer"] else "",
            _pooled(n),
            _differences(n),
            _seed_differences(n),
            img(figure),
            _replicates(n),
            "<h2>Definitions</h2><p>Each study's winner is its best trial by its strategy's "
            f"own rule ({escape(TIE_RULE)}): the tuned study's best (configuration, seed), the "
            "averaged study's best mean over its shared seeds, the fixed study's best "
            "configuration on its one seed. <b>Promised</b>: the validation score it was chosen "
            "on. <b>Delivered</b>: its configuration's mean test score on the replicate's fresh "
            "seeds (the same seeds for every strategy, none seen by any of the replicate's "
            "studies). <b>Seed luck</b>: promised minus the fresh validation mean. "
            "<b>Validation&ndash;test gap</b>: fresh validation minus fresh test mean. "
            "<b>Optimism</b>: promised minus delivered, the sum of the two. <b>Regret</b>: the "
            "best delivered score of any strategy in that replicate minus this one's. Pooled "
            "values are means over replicates with Student-t 95 % intervals over them; "
            "differences between strategies are paired by replicate (paired t-test, "
            "two-sided). Values are printed to two significant digits of their interval's "
            "half-width; the JSON and CSV files keep every digit.</p>",
            "</body></html>",
        ]
    )


def _pooled(n: dict[str, Any]) -> str:
    head = (
        "<tr><th class=l>strategy</th><th>replicates</th>"
        + "".join(f"<th>{NAMES[q]} (95 % CI)</th>" for q in numbers.QUANTITIES)
        + "</tr>"
    )
    rows = "".join(
        f"<tr><td class=l>{escape(p['strategy'])}</td><td>{p['n']}</td>"
        + "".join(f"<td>{fmt_ci(p['mean'][q], p['ci'][q])}</td>" for q in numbers.QUANTITIES)
        + "</tr>"
        for p in n["pooled"]
    )
    return (
        f"<h2>Per strategy, over replicates</h2><div class=wide><table>{head}{rows}</table></div>"
    )


def _differences(n: dict[str, Any]) -> str:
    diffs = n["differences"]
    if not diffs:
        return ""
    head = (
        "<tr><th class=l>difference</th><th class=l>of</th><th>replicates</th>"
        "<th>mean (95 % CI)</th><th>p (paired t)</th></tr>"
    )
    rows = "".join(
        f"<tr><td class=l>{escape(d['a'])} &minus; {escape(d['b'])}</td>"
        f"<td class=l>{NAMES[d['quantity']]}</td><td>{d['n']}</td>"
        f"<td>{fmt_ci(d['mean'], d['ci'])}</td><td>{fmt(d['p'], digits=3)}</td></tr>"
        for d in diffs
    )
    return (
        "<h2>Between strategies, paired by replicate</h2><p>A negative difference in delivered "
        "score means the second strategy's winners did better on fresh seeds; in optimism, "
        "that the first overstated less.</p>"
        + collapsed(f"<table>{head}{rows}</table>", len(diffs))
    )


def _seed_differences(n: dict[str, Any]) -> str:
    diffs = n["seed_differences"]
    if not diffs:
        return ""
    head = (
        "<tr><th>replicate</th><th class=l>difference in delivered</th><th>fresh seeds</th>"
        "<th>mean (95 % CI)</th><th>p (paired t)</th></tr>"
    )
    rows = "".join(
        f"<tr><td>{d['replicate']}</td><td class=l>{escape(d['a'])} &minus; {escape(d['b'])}"
        + (" <small>(the same configuration)</small>" if d["same_configuration"] else "")
        + f"</td><td>{d['n']}</td><td>{fmt_ci(d['mean'], d['ci'])}</td>"
        f"<td>{fmt(d['p'], digits=3)}</td></tr>"
        for d in diffs
    )
    return (
        "<h2>Within each replicate, paired by fresh seed</h2><p>The winners of one replicate "
        "ran on the same fresh seeds: their test scores compared seed by seed.</p>"
        + collapsed(f"<table>{head}{rows}</table>", len(diffs))
    )


def _replicates(n: dict[str, Any]) -> str:
    head = (
        "<tr><th>replicate</th><th class=l>strategy</th><th class=l>winner</th><th>seed</th>"
        "<th>seed-runs</th><th>promised</th><th>fresh val mean</th><th>delivered (95 % CI)</th>"
        "<th>seed luck</th><th>gap</th><th>optimism</th><th>regret</th></tr>"
    )
    rows = "".join(
        f"<tr><td>{r['replicate']}</td><td class=l>{escape(r['strategy'])}</td>"
        f"<td class=l title='{escape(r['study'])}'>{escape(r['label'])}<br><small><code>"
        f"{escape(r['config_id'])}</code></small></td>"
        f"<td>{'' if r['seed'] is None else r['seed']}</td>"
        f"<td>{r['seed_runs']}</td><td>{fmt(r['promised'])}</td><td>{fmt(r['fresh_val'])}</td>"
        f"<td>{fmt_ci(r['delivered'], r['delivered_ci'])} <small>n {r['n_fresh']}</small></td>"
        f"<td>{fmt(r['seed_luck'])}</td><td>{fmt(r['gap'])}</td><td>{fmt(r['optimism'])}</td>"
        f"<td>{fmt(r['regret'])}</td></tr>"
        for r in n["rows"]
    )
    return "<h2>Per replicate</h2>" + collapsed(
        f"<div class=wide><table>{head}{rows}</table></div>", len(n["rows"])
    )
