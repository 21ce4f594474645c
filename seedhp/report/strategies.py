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
from seedhp.report.html import CSS, collapsed, digits_for, fmt, img
from seedhp.report.whole import log_page_last, whole_dir
from seedhp.stats import strategies as numbers
from seedhp.stats.contrast import TIE_RULE
from seedhp.stats.summary import test_metric_of

PAGE = ("contrast.json", "contrast.html")  # uploaded last: a stopped upload has no page
NAMES = {
    "reported": "reported",
    "delivered": "delivered (fresh test mean)",
    "inflation": "inflation",
    "promised": "promised",
    "fresh_val": "fresh validation mean",
    "seed_luck": "seed luck",
    "gap": "validation&ndash;test gap",
    "optimism": "optimism",
    "z": "promised's z",
    "percentile": "promised's percentile",
    "regret": "regret",
}
UNITLESS = ("z", "percentile")  # printed as they are; every other quantity in the page's unit


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
    """contrast.html, contrast.json, replicates.csv, pooled.csv, differences.csv,
    seed_differences.csv and the figures in `out`, logged on `parent` (artifacts `contrast/`,
    pooled means as metrics `contrast.<arm>.b<budget>.<quantity>`)."""
    test = test_metric_of(objective)
    rows = numbers.rows(outcomes, maximize)
    pooled = numbers.pooled(rows)
    diffs = numbers.differences(rows)
    seed_diffs = numbers.seed_differences(outcomes)
    sentence = numbers.answer(rows, diffs, seed_diffs, test, maximize)
    scale, unit = numbers.unit(test)
    n = {
        **dict(meta),
        "objective": objective,
        "test_metric": test,
        "unit": unit.strip() or test,
        "answer": sentence,
        "replicates_done": sorted({r.replicate for r in rows}),
        "rows": [r.as_dict() for r in rows],
        "pooled": [p.as_dict() for p in pooled],
        "differences": [d.as_dict() for d in diffs],
        "seed_differences": [d.as_dict() for d in seed_diffs],
    }
    with whole_dir(out) as partial:  # stopped midway, nothing that looks complete
        shown = f" ({unit.strip()})" if unit else ""
        figures = [
            fig.contrast_answer(
                n["rows"], n["pooled"], n["differences"], scale, shown, partial / "answer.png"
            )
        ]
        if len({r.budget for r in rows}) > 1:
            figures.append(
                fig.contrast_budgets(n["pooled"], scale, shown, partial / "budgets.png")
            )
        write_scrubbed(partial / "contrast.json", json.dumps(json_safe(n), indent=1))
        write_csv(partial / "replicates.csv", [_flat(r) for r in n["rows"]])
        write_csv(
            partial / "pooled.csv",
            [
                {
                    "strategy": p.strategy,
                    "budget": p.budget,
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
        write_csv(partial / "differences.csv", [_flat(d) for d in n["differences"]])
        write_csv(partial / "seed_differences.csv", [_flat(d) for d in n["seed_differences"]])
        write_scrubbed(partial / "contrast.html", render(n, figures))
    page = out / "contrast.html"
    log_page_last(tracker, parent, out, "contrast", PAGE)
    tracker.log(
        parent,
        metrics=[
            metric(f"contrast.{p.strategy}.b{p.budget}.{q}", p.mean[q])
            for p in pooled
            for q in numbers.QUANTITIES
            if not math.isnan(p.mean[q])
        ],
    )
    return page


def _flat(row: Mapping[str, Any]) -> dict[str, Any]:
    """A CSV row: an interval as two columns, a list as one ;-separated cell."""
    out: dict[str, Any] = {}
    for k, v in row.items():
        if k.endswith("ci") and isinstance(v, (list, tuple)) and len(v) == 2:
            out[f"{k}_low"], out[f"{k}_high"] = v
        elif isinstance(v, (list, tuple)):
            out[k] = ";".join(str(x) for x in v)
        else:
            out[k] = v
    return out


def render(n: dict[str, Any], figures: Sequence[Path]) -> str:
    obj, test = fig.name(n["objective"]), fig.name(n["test_metric"])
    return "\n".join(
        [
            "<!doctype html><html lang=en><head><meta charset=utf-8><title>seedhp strategy "
            f"contrast: {escape(str(n['name']))}</title><style>{CSS}</style></head><body>",
            f"<h1>Does tuning the seed inflate results? {escape(str(n['name']))}</h1>",
            _design(n, obj, test),
            f"<p><b>{escape(n['answer'])}</b></p>" if n["answer"] else "",
            _answer(n),
            img(figures[0]) if figures else "",
            _differences(n),
            *(
                [
                    "<h2>Against the budget</h2><p>Dodge et al. (2019): which protocol wins "
                    "depends on the budget. Per arm, the mean over replicates and its 95 % CI "
                    "at each budget.</p>",
                    img(figures[1]),
                ]
                if len(figures) > 1
                else []
            ),
            _decomposition(n),
            _ties(n),
            _seed_differences(n),
            _replicates(n),
            _definitions(n),
            "</body></html>",
        ]
    )


def _scaled(n: dict[str, Any], q: str) -> float:
    return 1.0 if q in UNITLESS else (100.0 if n["unit"] == "points" else 1.0)


def _v(n: dict[str, Any], q: str, x: Any, ci: Any = None) -> str:
    """A value (and its interval) in the page's unit, to the precision the interval supports."""
    k = _scaled(n, q)
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "&ndash;"
    lo, hi = (math.nan, math.nan) if ci is None else (_num(ci[0]), _num(ci[1]))
    ok = not (math.isnan(lo) or math.isnan(hi))
    d = digits_for((hi - lo) * k / 2) if ok else (1 if q in UNITLESS else 2)
    d = min(d, 3) if q != "z" else 2
    text = f"{x * k:.{d}f}"
    return f"{text} [{lo * k:.{d}f}, {hi * k:.{d}f}]" if ok else text


def _num(x: Any) -> float:
    return math.nan if x is None else float(x)


def _design(n: dict[str, Any], obj: str, test: str) -> str:
    budgets = n.get("budgets") or []
    sampler = str(n.get("sampler") or "")
    if n.get("nested_budgets"):
        phase = (
            f"{escape(sampler)} sampler (no start-up phase): one study per replicate and "
            "strategy runs to the largest budget, and a smaller budget's winner is the best of "
            "its first trials, exactly what a study of that size runs"
        )
    elif sampler:
        phase = (
            f"{escape(sampler)} sampler; one study per budget, each starting with the same "
            f"share ({n.get('startup_share')}) of its trials at random"
        )
    else:
        phase = "the studies' own samplers"
    drawn = (
        "each replicate draws its validation split (<code>seeds.split=r</code>)"
        + (
            " and its test part (<code>data.draw_test=true</code>): replicates are "
            "independent draws of the data too"
            if n.get("draw_test")
            else "; the test set is shared by every replicate (the data set's official one, "
            "or <code>hydra.sweeper.draw_test=false</code>): intervals are conditional on it"
        )
        if n.get("draw_split")
        else "every replicate validates on the same split and tests on the same test set: "
        "intervals are conditional on that split"
    )
    shop = (
        f"; <b>seed shopping</b>: the fixed study's winner re-trained on "
        f"{n['seed_shopping']} further seeds of the replicate's block, the best on validation "
        f"reported (its budget: the fixed study's plus {n['seed_shopping']})"
        if n.get("seed_shopping")
        else ""
    )
    return (
        f"<p class=meta>{n['replicates']} replicates &times; "
        f"{escape(', '.join(n['strategies']))}; budgets "
        f"{escape(', '.join(map(str, budgets)) if isinstance(budgets, list) else str(budgets))} "
        f"seed-runs per study (an averaged trial of {n['seeds_per_trial']} seeds costs "
        f"{n['seeds_per_trial']}){shop}; {phase}; {drawn}; winners re-run on "
        f"{n['fresh_seeds']} fresh seeds per replicate, shared by its arms; objective "
        f"{escape(obj)}, delivered on {escape(test)}; every score in {escape(n['unit'])}"
        + (f"<br>command: <code>{escape(str(n['command']))}</code>" if n.get("command") else "")
        + f"<br>MLflow parent run <code>{escape(str(n['parent_run_id']))}</code>; Optuna "
        f"storage <code>{escape(str(n['storage']))}</code></p>"
    )


def _answer(n: dict[str, Any]) -> str:
    qs = ("reported", "delivered", "inflation", "promised", "z", "percentile")
    head = (
        "<tr><th>budget</th><th class=l>arm</th><th>replicates</th>"
        + "".join(f"<th>{NAMES[q]}</th>" for q in qs)
        + "</tr>"
    )
    rows = "".join(
        f"<tr><td>{p['budget']}</td><td class=l>{escape(p['strategy'])}</td><td>{p['n']}</td>"
        + "".join(f"<td>{_v(n, q, p['mean'][q], p['ci'][q])}</td>" for q in qs)
        + "</tr>"
        for p in n["pooled"]
    )
    return (
        "<h2>The answer: what each arm reports, and what it delivers</h2><p>Mean over "
        "replicates, 95 % Student-t CI. <b>Inflation</b> = reported &minus; delivered: how far "
        "the number the protocol would publish overstates what its configuration gives on "
        "seeds nobody chose. <b>z</b> and <b>percentile</b>: where the promised validation "
        "score lies in the selected configuration's own fresh-seed validation scores.</p>"
        f"<div class=wide><table>{head}{rows}</table></div>"
    )


def _differences(n: dict[str, Any]) -> str:
    diffs = n["differences"]
    if not diffs:
        return ""
    head = (
        "<tr><th>budget</th><th class=l>difference</th><th class=l>of</th><th>replicates</th>"
        "<th>mean (95 % CI)</th><th>p (paired t)</th><th>Holm</th><th>p (exact sign-flip)</th>"
        "<th>Holm</th><th>power</th><th>replicates for 80 % power: observed effect, half</th>"
        "</tr>"
    )
    rows = "".join(
        f"<tr><td>{d['budget']}</td><td class=l>{escape(d['a'])} &minus; {escape(d['b'])}</td>"
        f"<td class=l>{NAMES[d['quantity']]}</td><td>{d['n']}</td>"
        f"<td>{_v(n, d['quantity'], d['mean'], d['ci'])}</td>"
        + "".join(
            f"<td>{numbers.p_text(d[k])}</td>"
            for k in ("p", "p_holm", "p_signflip", "p_signflip_holm")
        )
        + f"<td>{fmt(d['power'], digits=2)}</td>"
        f"<td>{_needed(d['n_for_power'])}, {_needed(d['n_for_power_half'])}</td></tr>"
        for d in diffs
    )
    reps = max((d["n"] for d in diffs), default=0)
    floor = (
        f" With {reps} replicates the exact sign-flip p cannot be below "
        f"{numbers.p_text(2.0 ** (1 - reps))}."
        if 0 < reps <= numbers.EXACT_UP_TO
        else ""
    )
    return (
        "<h2>Between arms, paired by replicate</h2><p>Each comparison once (regret would repeat "
        "delivered; seed shopping's delivered score is the fixed arm's). Holm adjusts over the "
        f"{len(diffs)} comparisons of this table.{floor} Power: of a two-sided paired t-test "
        "at &alpha; = 0.05 for the observed standardised effect (mean / std of the "
        "differences); replicates needed for 80 % power at that effect and at half of it "
        "(noncentral t).</p>"
        f"<div class=wide><table>{head}{rows}</table></div>"
    )


def _needed(k: int | None) -> str:
    return "&ndash;" if k is None else str(k)


def _decomposition(n: dict[str, Any]) -> str:
    qs = ("promised", "fresh_val", "seed_luck", "gap", "optimism", "regret")
    head = (
        "<tr><th>budget</th><th class=l>arm</th>"
        + "".join(f"<th>{NAMES[q]}</th>" for q in qs)
        + "</tr>"
    )
    rows = "".join(
        f"<tr><td>{p['budget']}</td><td class=l>{escape(p['strategy'])}</td>"
        + "".join(f"<td>{_v(n, q, p['mean'][q], p['ci'][q])}</td>" for q in qs)
        + "</tr>"
        for p in n["pooled"]
    )
    return (
        "<h2>Where the promised score's optimism comes from</h2><p>Optimism (promised "
        "&minus; delivered) = seed luck (promised &minus; fresh validation) + the "
        "validation&ndash;test gap (fresh validation &minus; fresh test), per arm over "
        "replicates.</p>"
        + collapsed(f"<div class=wide><table>{head}{rows}</table></div>", len(n["pooled"]))
    )


def _ties(n: dict[str, Any]) -> str:
    tied = [r for r in n["rows"] if r["ties"]]
    head = (
        "<tr><th>replicate</th><th>budget</th><th class=l>arm</th><th class=l>winner</th>"
        "<th class=l>tied with it, on the selection score</th></tr>"
    )
    rows = "".join(
        f"<tr><td>{r['replicate']}</td><td>{r['budget']}</td><td class=l>"
        f"{escape(r['strategy'])}</td><td class=l><code>{escape(r['config_id'])}</code>"
        + (f", seed {r['seed']}" if r["seed"] is not None else "")
        + f"</td><td class=l>{escape('; '.join(r['ties']))}</td></tr>"
        for r in tied
    )
    return (
        f"<h2>Ties</h2><p>{len(tied)} of {len(n['rows'])} selections had candidates tied with "
        f"the winner (within 1e-7 of its score), broken by the rule: {escape(TIE_RULE)}.</p>"
        + (collapsed(f"<table>{head}{rows}</table>", len(tied)) if tied else "")
    )


def _seed_differences(n: dict[str, Any]) -> str:
    diffs = n["seed_differences"]
    if not diffs:
        return ""
    head = (
        "<tr><th>replicate</th><th>budget</th><th class=l>difference in delivered</th>"
        "<th>fresh seeds</th><th>mean (95 % CI)</th><th>p (paired t)</th></tr>"
    )
    rows = "".join(
        f"<tr><td>{d['replicate']}</td><td>{d['budget']}</td><td class=l>{escape(d['a'])} "
        f"&minus; {escape(d['b'])}"
        + (" <small>(the same configuration)</small>" if d["same_configuration"] else "")
        + f"</td><td>{d['n']}</td><td>{_v(n, 'delivered', d['mean'], d['ci'])}</td>"
        f"<td>{numbers.p_text(d['p'])}</td></tr>"
        for d in diffs
    )
    return (
        "<h2>Within each replicate, paired by fresh seed</h2><p>The winners of one replicate "
        "ran on the same fresh seeds: their test scores compared seed by seed.</p>"
        + collapsed(f"<table>{head}{rows}</table>", len(diffs))
    )


def _replicates(n: dict[str, Any]) -> str:
    qs = ("promised", "reported", "fresh_val", "inflation", "seed_luck", "gap", "regret")
    head = (
        "<tr><th>replicate</th><th>budget</th><th class=l>arm</th><th class=l>winner</th>"
        "<th>seed</th><th>seed-runs</th><th>delivered (95 % CI)</th>"
        + "".join(f"<th>{NAMES[q]}</th>" for q in qs)
        + "<th>z</th><th>percentile</th></tr>"
    )
    rows = "".join(
        f"<tr><td>{r['replicate']}</td><td>{r['budget']}</td>"
        f"<td class=l>{escape(r['strategy'])}</td>"
        f"<td class=l title='{escape(r['study'])}'>{escape(r['label'])}<br><small><code>"
        f"{escape(r['config_id'])}</code></small></td>"
        f"<td>{'' if r['seed'] is None else r['seed']}</td><td>{r['seed_runs']}</td>"
        f"<td>{_v(n, 'delivered', r['delivered'], r['delivered_ci'])} "
        f"<small>n {r['n_fresh']}</small></td>"
        + "".join(f"<td>{_v(n, q, r[q])}</td>" for q in qs)
        + f"<td>{_v(n, 'z', r['z'])}</td><td>{_v(n, 'percentile', r['percentile'])}</td></tr>"
        for r in n["rows"]
    )
    return "<h2>Per replicate</h2>" + collapsed(
        f"<div class=wide><table>{head}{rows}</table></div>", len(n["rows"])
    )


def _definitions(n: dict[str, Any]) -> str:
    return (
        "<h2>Definitions</h2><p>Each study's winner is its best trial by its strategy's own "
        f"rule ({escape(TIE_RULE)}): the tuned study's best (configuration, seed), the averaged "
        "study's best mean over its shared seeds, the fixed study's best configuration on its "
        "one seed; seed shopping's, the fixed winner's best seed on validation. <b>Promised</b>: "
        "the validation score it was selected on. <b>Reported</b>: the test score of what was "
        "selected (the selected run's; an averaged winner's mean over its seeds), the number a "
        "paper would print. <b>Delivered</b>: its configuration's mean test score on the "
        "replicate's fresh seeds (the same seeds for every arm, none seen by any of the "
        "replicate's studies). <b>Inflation</b>: reported minus delivered. <b>Seed luck</b>: "
        "promised minus the fresh validation mean. <b>Validation&ndash;test gap</b>: fresh "
        "validation minus fresh test mean. <b>Optimism</b>: promised minus delivered, the sum "
        "of the two. <b>Regret</b>: the best delivered score of any arm in that replicate and "
        "budget minus this one's. Signs are such that a positive inflation, luck, gap or "
        "optimism means overstated, for a loss as for an accuracy. Pooled values are means "
        "over replicates with Student-t 95 % intervals; differences between arms are paired "
        "by replicate. Values are printed to two significant digits of their interval's "
        f"half-width, in {escape(n['unit'])}; the JSON and CSV files keep every digit, as "
        "fractions.</p>"
    )
