"""The report as one self-contained HTML page (figures inlined as PNG data URIs). Every value
that comes from a run (labels, tags, commands) is escaped."""

from __future__ import annotations

import base64
import datetime as dt
import math
from html import escape
from pathlib import Path
from typing import Any

from seedhp.report.figures import name

CSS = """
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;max-width:1100px;
margin:2em auto;padding:0 1em;color:#222}
h1{font-size:1.5em;margin-bottom:.2em}h2{margin-top:1.8em;border-bottom:1px solid #ddd}
h3{margin-bottom:.3em}table{border-collapse:collapse;margin:.6em 0;font-size:12.5px}
th,td{border:1px solid #ddd;padding:3px 7px;text-align:right}th{background:#f4f4f4}
td.l,th.l{text-align:left}.wide{overflow-x:auto}.meta{color:#555}.safe{color:#1a7f37}.risky{color:#b42318}
.warn{background:#fff7e0;border-left:4px solid #f0b400;padding:.4em .8em}
img{max-width:100%;height:auto}.fig{display:inline-block;vertical-align:top;margin:.4em}
code{background:#f4f4f4;padding:0 3px}
"""


def reseed_command(n: dict[str, Any]) -> str:
    """The `seedhp reseed` command for this report's sweep or study, on its own store."""
    parts = ["seedhp reseed", f"--run {n['parent_run_id']}", "--seeds 20"]
    if n.get("tracking_uri"):
        parts.append(f"--tracking-uri '{n['tracking_uri']}'")
    if n.get("experiment", "seedhp") != "seedhp":
        parts.append(f"--experiment '{n['experiment']}'")
    return " ".join(parts)


def _duplicates(dups: list[dict[str, Any]]) -> str:
    if not dups:
        return ""
    shown = ", ".join(
        f"{d['config_id']} seed {d['seed']} ({d['status']}, run {d['run_id']})" for d in dups[:20]
    )
    more = f" and {len(dups) - 20} more" if len(dups) > 20 else ""
    return (
        f"<br>ignored {len(dups)} duplicate run(s) of a (configuration, seed) already counted "
        f"(the latest finished run counts): {escape(shown)}{more}"
    )


def render(n: dict[str, Any], figures: dict[str, Path]) -> str:
    obj, test = n["objective"], n["test_metric"]
    parts = [
        f"<!doctype html><html lang=en><head><meta charset=utf-8>"
        f"<title>seedhp report: {escape(n['title'])}</title><style>{CSS}</style></head><body>",
        f"<h1>seedhp report: {escape(n['title'])}</h1>",
        f"<p class=meta>{escape(n['kind'])}"
        + (
            f", MLflow parent run <code>{escape(str(n['parent_run_id']))}</code>"
            if n["parent_run_id"]
            else ""
        )
        + (f"<br>command: <code>{escape(n['command'])}</code>" if n["command"] else "")
        + f"<br>objective: {escape(name(obj))} (<code>{escape(obj)}</code>, "
        f"{'higher' if n['maximize'] else 'lower'} is better); seed-runs: "
        + escape(", ".join(f"{v} {k}" for k, v in sorted(n["counts"].items())))
        + f"; fresh-seed re-runs: {n['fresh_runs']}"
        + _duplicates(n.get("duplicates", []))
        + f"<br>written {dt.datetime.now().isoformat(timespec='seconds')}</p>",
        _audit(n["audit"]),
        _contrast(n, figures),
        _configurations(n),
        _expected_max(n, figures),
        _comparisons(n),
        _ensembles(n, figures),
        _per_configuration(n, figures),
        f"<h2>Definitions</h2><p>Statistics are over the seeds a configuration finished "
        f"(diverged, pruned and failed runs are listed, not dropped silently). std: sample "
        f"standard deviation; se: std/&radic;n; IQM: scipy's trim_mean(x, 0.25), the mean "
        f"after int(n/4) scores are cut from each end; CI of a mean: the Student-t 95 % "
        f"interval, mean &plusmn; t(0.975, n&minus;1)&middot;se, over the n seeds shown; noise "
        f"floor: &radic;(p(1&minus;p)/n) of an accuracy p on n evaluation examples &mdash; the "
        f"spread a finite evaluation set alone gives. Black swans: scores beyond median "
        f"&plusmn; k&middot;MAD (MAD scaled by 1/&Phi;<sup>&minus;1</sup>(3/4) to a normal "
        f"std), looked for with 20 seeds or more. Optimism: the score a winner was chosen on "
        f"minus its configuration's mean {escape(name(test))} on fresh seeds; seed luck: minus "
        f"its fresh-seed {escape(name(obj))} instead.</p>",
        "</body></html>",
    ]
    return "\n".join(parts)


def _audit(items: list[dict[str, str]]) -> str:
    if not items:
        return "<h2>Protocol audit</h2><p>Nothing to say about these runs' use of seeds.</p>"
    rows = "".join(
        f"<li><b class={escape(i['kind'])}>{escape(i['kind'])}: "
        f"{escape(i['name'])}</b> &mdash; {escape(i['why'])}</li>"
        for i in items
    )
    intro = "<h2>Protocol audit</h2><p>What these runs do with seeds (Bethard 2022):</p>"
    return f"{intro}<ul>{rows}</ul>"


def _contrast(n: dict[str, Any], figures: dict[str, Path]) -> str:
    sels = n["selections"]
    if not sels:
        return ""
    obj, test = name(n["objective"]), name(n["test_metric"])
    head = (
        "<tr><th class=l>rule</th><th class=l>winner</th><th>seed</th><th>seeds seen</th>"
        f"<th>chosen on ({escape(obj)})</th><th>{escape(test)} of the selection</th>"
        f"<th>fresh seeds</th><th>fresh {escape(obj)}</th><th>fresh {escape(test)} "
        "(95 % CI)</th><th>optimism</th><th>seed luck</th></tr>"
    )
    rows = "".join(
        f"<tr><td class=l>{escape(s['rule'])}</td><td class=l title='{escape(s['label'])}'>"
        f"{escape(n['labels'].get(s['config_id'], s['label']))}</td>"
        f"<td>{'' if s['seed'] is None else s['seed']}</td><td>{s['n_seeds']}</td>"
        f"<td>{_f(s['chosen_on'])}</td><td>{_f(s['selected_test'])}</td><td>{s['fresh_n']}</td>"
        f"<td>{_f(s['fresh_val_mean'])}</td><td>{_f(s['fresh_test_mean'])} "
        f"[{_f(s['fresh_test_ci'][0])}, {_f(s['fresh_test_ci'][1])}]</td>"
        f"<td><b>{_f(s['optimism'])}</b></td><td>{_f(s['seed_luck'])}</td></tr>"
        for s in sels
    )
    note = (
        "<p class=warn>No fresh-seed re-runs yet: run <code>"
        f"{escape(reseed_command(n))}</code> to measure the optimism.</p>"
        if all(s["fresh_n"] == 0 for s in sels)
        else ""
    )
    return (
        f"<h2>Selection contrast: seed-tuned vs seed-averaged</h2><p>The seed-tuned winner "
        f"is the best single (configuration, seed) by {escape(obj)}; the seed-averaged "
        f"winner the configuration with the best mean over its seeds. Both are re-run on "
        f"seeds the selection never saw.</p><table>{head}{rows}</table>{note}"
        + _img(figures.get("selection_contrast"))
    )


def _configurations(n: dict[str, Any]) -> str:
    cols = ["n", "mean", "std", "se"]
    head = (
        "<tr><th class=l>configuration</th>"
        + "".join(f"<th>{c}</th>" for c in cols)
        + "<th>95 % CI of mean (Student t, n)</th><th>noise floor</th><th>median</th>"
        "<th>IQM</th><th>min</th>"
        "<th>max</th><th>gap</th><th>quantiles 5, 25, 75, 95 %</th><th>skew</th><th>kurt.</th>"
        "<th>test mean</th><th>test noise floor</th><th>diverged, pruned, failed</th></tr>"
    )
    rows = []
    for c in n["configurations"]:
        d = c["objective"]
        quantiles = ", ".join(_f(d[q]) for q in ("q05", "q25", "q75", "q95"))
        rows.append(
            f"<tr><td class=l title='{escape(c['label'])}'>{escape(c['short'])}<br><small>"
            f"<code>{escape(c['config_id'])}</code></small></td>"
            + "".join(f"<td>{_f(d[k], k == 'n')}</td>" for k in cols)
            + f"<td>[{_f(d['ci_low'])}, {_f(d['ci_high'])}]</td>"
            f"<td>{_f(c['noise_floor']['objective'])}</td><td>{_f(d['median'])}</td>"
            f"<td>{_f(d['iqm'])}</td><td>{_f(d['min'])}</td><td>{_f(d['max'])}</td>"
            f"<td>{_f(d['gap'])}</td><td>{quantiles}</td><td>{_f(d['skewness'], digits=2)}</td>"
            f"<td>{_f(d['kurtosis'], digits=2)}</td><td>{_f(c['test']['mean'])}</td>"
            f"<td>{_f(c['noise_floor']['test'])}</td><td>{len(c['diverged'])}, "
            f"{len(c['pruned'])}, {len(c['failed'])}</td></tr>"
        )
    common = _common_words(n)
    return (
        f"<h2>Configurations</h2><p>Final {escape(name(n['objective']))} over seeds, best "
        "mean first"
        + (f"; every configuration shares <code>{escape(common)}</code>" if common else "")
        + ". Compare std with the noise floor: a seed spread near it is what the finite "
        f"evaluation set alone would give.</p><div class=wide><table>{head}{''.join(rows)}"
        "</table></div>"
    )


def _common_words(n: dict[str, Any]) -> str:
    labels = [c["label"].split() for c in n["configurations"]]
    if len(labels) < 2:
        return ""
    return " ".join(w for w in labels[0] if all(w in other for other in labels[1:]))


def _expected_max(n: dict[str, Any], figures: dict[str, Path]) -> str:
    warn = "".join(f"<p class=warn>{escape(w)}</p>" for w in n["expected_max"].get("warnings", []))
    return (
        "<h2>Expected best of n</h2><p>The expected best "
        f"{escape(name(n['objective']))} of n seed-runs drawn from these (Dodge et al. "
        "2019), with both estimators: with replacement F(v<sub>(i)</sub>) = (i/N)<sup>n</sup> "
        "and without, C(i,n)/C(N,n).</p>" + warn + _img(figures.get("expected_max"))
    )


def _comparisons(n: dict[str, Any]) -> str:
    comps = n["comparisons"]
    if not comps:
        return ""
    labels = n["labels"]
    head = (
        "<tr><th class=l>A (higher mean)</th><th class=l>B</th><th>n A, B (shared)</th>"
        "<th>tests</th><th>mean A &minus; B (95 % CI, Student t)</th>"
        "<th>t p (Holm)</th><th>rank p (Holm)</th>"
        "<th>P(A &gt; B)</th><th>ASO &epsilon;<sub>min</sub></th>"
        "<th>reversal</th></tr>"
    )
    rows = "".join(
        f"<tr><td class=l>{escape(labels.get(c['a'], c['a']))}</td>"
        f"<td class=l>{escape(labels.get(c['b'], c['b']))}</td>"
        f"<td>{c['n_a']}, {c['n_b']} ({c['n_shared']})</td>"
        f"<td>{'paired t, Wilcoxon' if c['paired'] else 'Welch t, Mann&ndash;Whitney'}</td>"
        f"<td>{_f(c['difference'])} [{_f(c['ci_low'])}, {_f(c['ci_high'])}]</td>"
        f"<td>{_p(c['t_p'])} ({_p(c['t_p_holm'])})</td>"
        f"<td>{_p(c['rank_p'])} ({_p(c['rank_p_holm'])})</td>"
        f"<td>{_f(c['p_improvement'])}</td><td>{_f(c['aso_eps_min'])}</td>"
        f"<td>{_f(c['reversal_rate'])}</td></tr>"
        for c in comps
    )
    return (
        f"<h2>Comparing configurations</h2><p>On {escape(name(comps[0]['metric']))} over "
        "seeds, among the (at most six) configurations with the best mean on the validation "
        "objective: chosen on validation, never on the scores compared. Two configurations that "
        "finished the same seeds are compared on those seeds, paired (paired t-test, Wilcoxon "
        "signed-rank, the CI of the mean paired difference, P(A &gt; B) and the reversal rate "
        "over shared seeds); otherwise as independent samples (Welch, Mann&ndash;Whitney, "
        "P(A &gt; B) over all pairs of one seed each). p-values are two-sided, shown raw and, "
        f"in brackets, Holm-adjusted over the {comps[0]['n_comparisons']} comparisons. "
        "P(A &gt; B) counts ties as &frac12;; reversal: the share of (shared) seeds on which B "
        "scores strictly higher. ASO &epsilon;<sub>min</sub> (Dror et al. 2019, &alpha; = 0.05): "
        "below 0.5 A is almost stochastically better, below 0.2 confidently.</p>"
        f"<table>{head}{rows}</table>"
    )


def _ensembles(n: dict[str, Any], figures: dict[str, Path]) -> str:
    if not n["ensembles"]:
        return ""
    imgs = "".join(_img(figures.get(f"ensemble_{e['config_id']}")) for e in n["ensembles"])
    return (
        "<h2>Seed ensembles</h2><p>Majority vote of k seed-variants' test predictions "
        "(<code>tracking.save_predictions=true</code>), beside the single seeds.</p>" + imgs
    )


def _per_configuration(n: dict[str, Any], figures: dict[str, Path]) -> str:
    out = ["<h2>Per configuration</h2>"]
    for c in n["configurations"]:
        hist, conv = figures.get(f"hist_{c['config_id']}"), figures.get(f"conv_{c['config_id']}")
        if hist is None:
            continue
        swans = (
            ", ".join(
                f"seed {s['seed']}: {_f(s['score'])} ({s['mads']:+.1f} MAD, {s['sds']:+.1f} sd)"
                for s in c["black_swans"]
            )
            or "none"
            if c.get("black_swans_checked", True)
            else f"not looked for: {len(c['seeds'])} finished seeds, fewer than the 20 that "
            "median ± 3 MAD needs to tell a black swan from an ordinary extreme"
        )
        out.append(
            f"<h3>{escape(c['label'])} <small><code>{escape(c['config_id'])}</code></small></h3>"
            f"<p>Black swans: {escape(swans)}. Diverged seeds: "
            f"{escape(', '.join(map(str, c['diverged'])) or 'none')}; pruned: "
            f"{escape(', '.join(map(str, c['pruned'])) or 'none')}; failed: "
            f"{escape(', '.join(map(str, c['failed'])) or 'none')}.</p>"
            f"<div class=fig>{_img(hist)}</div><div class=fig>{_img(conv)}</div>"
        )
    return "".join(out)


def _img(path: Path | None) -> str:
    if path is None:
        return ""
    data = base64.b64encode(path.read_bytes()).decode()
    return f"<img alt='{escape(path.stem)}' src='data:image/png;base64,{data}'>"


def _f(x: Any, integer: bool = False, digits: int = 4) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "&ndash;"
    return str(int(x)) if integer else f"{x:.{digits}f}"


def _p(x: float) -> str:
    """A p-value: small ones in scientific notation, not as 0.0000."""
    if x is None or math.isnan(x):
        return "&ndash;"
    return f"{x:.4f}" if x >= 1e-3 else f"{x:.1e}"
