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
from seedhp.stats.contrast import TIE_RULE

CSS = """
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;max-width:1100px;
margin:2em auto;padding:0 1em;color:#222}
h1{font-size:1.5em;margin-bottom:.2em}h2{margin-top:1.8em;border-bottom:1px solid #ddd}
h3{margin-bottom:.3em}table{border-collapse:collapse;margin:.6em 0;font-size:12.5px}
th,td{border:1px solid #ddd;padding:3px 7px;text-align:right}th{background:#f4f4f4}
td.l,th.l{text-align:left}.wide{overflow-x:auto}.meta{color:#555}.safe{color:#1a7f37}.risky{color:#b42318}
.warn{background:#fff7e0;border-left:4px solid #f0b400;padding:.4em .8em}
img{max-width:100%;height:auto}.fig{display:inline-block;vertical-align:top;margin:.4em}
code{background:#f4f4f4;padding:0 3px}summary{cursor:pointer;margin:.4em 0}
nav{background:#fafafa;border:1px solid #eee;padding:.3em 1em;margin:1em 0}nav ol{margin:.2em 0}
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
    obj = n["objective"]
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
        _summary(n),
        _contents(n),
        _audit(n["audit"]),
        _contrast(n, figures),
        _configurations(n),
        _expected_max(n, figures),
        _comparisons(n),
        _ensembles(n, figures),
        _per_configuration(n, figures),
        _definitions(n),
        "</body></html>",
    ]
    return "\n".join(parts)


SECTIONS = (  # (anchor, title, present when)
    ("audit", "Protocol audit", lambda n: True),
    ("contrast", "Selection contrast", lambda n: bool(n["selections"])),
    ("configurations", "Configurations", lambda n: True),
    ("expected-max", "Expected best of n", lambda n: True),
    ("comparisons", "Comparing configurations", lambda n: bool(n["comparisons"])),
    ("ensembles", "Seed ensembles", lambda n: bool(n["ensembles"])),
    ("per-configuration", "Per configuration", lambda n: True),
    ("definitions", "Definitions", lambda n: True),
)
COLLAPSE_ROWS = 8  # a table longer than this starts folded


def _contents(n: dict[str, Any]) -> str:
    items = "".join(
        f"<li><a href='#{anchor}'>{title}</a></li>"
        for anchor, title, shown in SECTIONS
        if shown(n)
    )
    return f"<nav><b>Contents</b><ol>{items}</ol></nav>"


def collapsed(table: str, n_rows: int) -> str:
    if n_rows <= COLLAPSE_ROWS:
        return table
    return f"<details><summary>the table: {n_rows} rows</summary>{table}</details>"


def _summary(n: dict[str, Any]) -> str:
    """What the seed moved, what each selection rule delivered, which comparisons stand."""
    obj = name(n["objective"])
    items = []
    configs = [c for c in n["configurations"] if c["objective"]["n"] >= 2]
    if configs:
        c = configs[0]
        d, floor = c["objective"], c["noise_floor"]["objective"]
        k = digits_for(_half((d["ci_low"], d["ci_high"])))
        items.append(
            f"Best mean, {escape(c['short'])}: over {d['n']} seeds the seed alone moved "
            f"{escape(obj)} from {fmt(d['min'], digits=k)} to {fmt(d['max'], digits=k)} (gap "
            f"{_sig(d['gap'])}, std {_sig(d['std'])}"
            + (f", against a noise floor of {_sig(floor)}" if _finite(floor) else "")
            + f"); mean {fmt_ci(d['mean'], (d['ci_low'], d['ci_high']))}."
        )
    if len(configs) > 1:
        stds = [c["objective"]["std"] for c in configs]
        gaps = [c["objective"]["gap"] for c in configs]
        items.append(
            f"Over all {len(configs)} configurations the seed std ranged from "
            f"{_sig(min(stds))} to {_sig(max(stds))}, the gap from {_sig(min(gaps))} to "
            f"{_sig(max(gaps))}."
        )
    for s in n["selections"]:
        if s["fresh_n"]:
            items.append(
                f"{escape(s['rule'])}: promised {fmt(s['chosen_on'])}, delivered "
                f"{fmt_ci(s['fresh_test_mean'], s['fresh_test_ci'])} on {s['fresh_n']} fresh "
                "seeds "
                f"(optimism {fmt_ci(s['optimism'], s['optimism_ci'])})."
            )
    comps = n["comparisons"]
    if comps:
        stand = [c for c in comps if c["t_p_holm"] < 0.05]
        labels = n["labels"]
        more = f"; and {len(stand) - 3} more" if len(stand) > 3 else ""
        items.append(
            f"{len(stand)} of {len(comps)} comparisons stand at 5 % (t-test, Holm-adjusted)"
            + (
                ": "
                + "; ".join(
                    f"{escape(labels.get(c['a'], c['a']))} over "
                    f"{escape(labels.get(c['b'], c['b']))} by "
                    f"{fmt_ci(c['difference'], (c['ci_low'], c['ci_high']))}"
                    for c in stand[:3]
                )
                + more
                if stand
                else ""
            )
            + " (<a href='#comparisons'>all comparisons</a>)."
        )
    if not items:
        return ""
    return "<h2>Summary</h2><ul>" + "".join(f"<li>{i}</li>" for i in items) + "</ul>"


def _definitions(n: dict[str, Any]) -> str:
    return (
        "<h2 id=definitions>Definitions</h2><p>Statistics are over the seeds a configuration "
        "finished (diverged, pruned and failed runs are listed, not dropped silently). std: "
        "sample standard deviation (n&minus;1); se: std/&radic;n; IQM: scipy's "
        "trim_mean(x, 0.25), the mean after int(n/4) scores are cut from each end (at n = 10, "
        "the middle 6); quantiles: numpy's linear interpolation (Hyndman&ndash;Fan type 7); "
        "skew: the adjusted Fisher&ndash;Pearson coefficient G1 (scipy skew, bias=False); "
        "kurtosis: the bias-corrected <i>excess</i> kurtosis G2 (scipy kurtosis, bias=False; "
        "0 for a normal distribution); CI of a mean: the Student-t 95 % interval, mean "
        "&plusmn; t(0.975, n&minus;1)&middot;se, over the n seeds shown; noise floor: "
        "&radic;(p(1&minus;p)/n) of an accuracy p on the n evaluation examples (validation "
        "for the objective, test for the test score) &mdash; the spread a finite evaluation "
        "set alone gives. p-values are two-sided. Black swans: scores beyond median "
        "&plusmn; k&middot;MAD (MAD scaled by 1/&Phi;<sup>&minus;1</sup>(3/4) to a normal "
        "std), looked for with 20 seeds or more. "
        f"{escape(TIE_RULE[0].upper() + TIE_RULE[1:])}. Precision: a value with an "
        "interval is rounded to two significant digits of the interval's half-width; "
        "spreads to two significant digits; the JSON and CSV files keep every digit.</p>"
    )


def _audit(items: list[dict[str, str]]) -> str:
    if not items:
        return (
            "<h2 id=audit>Protocol audit</h2><p>Nothing to say about these runs' use of seeds.</p>"
        )
    rows = "".join(
        f"<li><b class={escape(i['kind'])}>{escape(i['kind'])}: "
        f"{escape(i['name'])}</b> &mdash; {escape(i['why'])}</li>"
        for i in items
    )
    intro = "<h2 id=audit>Protocol audit</h2><p>What these runs do with seeds (Bethard 2022):</p>"
    return f"{intro}<ul>{rows}</ul>"


def _contrast(n: dict[str, Any], figures: dict[str, Path]) -> str:
    sels = n["selections"]
    if not sels:
        return ""
    obj, test = name(n["objective"]), name(n["test_metric"])
    head = (
        "<tr><th class=l>rule</th><th class=l>winner</th><th>seed</th><th>seeds seen</th>"
        f"<th>promised: chosen on ({escape(obj)})</th><th>{escape(test)} of what was "
        "selected</th><th>fresh seeds</th>"
        f"<th>fresh {escape(obj)} mean (95 % CI)</th><th>delivered: fresh {escape(test)} "
        "mean (95 % CI)</th><th>seed luck (95 % CI)</th><th>validation&ndash;test gap "
        "(95 % CI)</th><th>optimism (95 % CI)</th></tr>"
    )
    rows = "".join(_contrast_row(s, n["labels"]) for s in sels)
    ties = "".join(
        f"<li>{escape(s['rule'])}: tied on {escape(obj)} {fmt(s['chosen_on'])} with "
        + escape(
            ", ".join(
                n["labels"].get(cid, cid) + ("" if seed is None else f" seed {seed}")
                for cid, seed in s["tied_with"]
            )
        )
        + "</li>"
        for s in sels
        if s["tied_with"]
    )
    note = (
        "<p class=warn>No fresh-seed re-runs yet: run <code>"
        f"{escape(reseed_command(n))}</code> to measure the optimism.</p>"
        if all(s["fresh_n"] == 0 for s in sels)
        else ""
    )
    return (
        f"<h2 id=contrast>Selection contrast: seed-tuned vs seed-averaged</h2><p>The "
        f"seed-tuned winner is the best single (configuration, seed) by {escape(obj)}; the "
        "seed-averaged winner the configuration with the best mean over its seeds (among those "
        "with 2 finished seeds or more); "
        f"{escape(TIE_RULE)}. Both are re-run on seeds the selection never saw. "
        f"<b>Optimism</b> is what a selection promised (the {escape(obj)} it was chosen on) "
        f"minus what its configuration delivers (the mean {escape(test)} over fresh seeds); it "
        f"is the sum of <b>seed luck</b> (promised minus the fresh seeds' mean {escape(obj)}) "
        f"and the <b>validation&ndash;test gap</b> (fresh {escape(obj)} minus fresh "
        f"{escape(test)}, seed by seed). The CIs are Student-t 95 % intervals over the fresh "
        "seeds, the promised score taken as given. The seed-tuned winner's "
        f"{escape(test)} is that one run's; the seed-averaged winner's the mean over the "
        f"seeds it was chosen on.</p><div class=wide><table>{head}{rows}</table></div>"
        + (
            f"<p>Ties on the selection score, passed over by the rule:</p><ul>{ties}</ul>"
            if ties
            else ""
        )
        + note
        + img(figures.get("selection_contrast"))
    )


def _contrast_row(s: dict[str, Any], labels: dict[str, str]) -> str:
    selected = "that run" if s["seed"] is not None else f"mean of {s['n_seeds']} seeds"
    return (
        f"<tr><td class=l>{escape(s['rule'])}</td><td class=l title='{escape(s['label'])}'>"
        f"{escape(labels.get(s['config_id'], s['label']))}</td>"
        f"<td>{'' if s['seed'] is None else s['seed']}</td><td>{s['n_seeds']}</td>"
        f"<td>{fmt(s['chosen_on'])}</td><td>{fmt(s['selected_test'])}<br><small>{selected}"
        f"</small></td><td>{s['fresh_n']}</td>"
        f"<td>{fmt_ci(s['fresh_val_mean'], s['fresh_val_ci'])}</td>"
        f"<td>{fmt_ci(s['fresh_test_mean'], s['fresh_test_ci'])}</td>"
        f"<td>{fmt_ci(s['seed_luck'], s['seed_luck_ci'])}</td>"
        f"<td>{fmt_ci(s['val_test_gap'], s['val_test_gap_ci'])}</td>"
        f"<td><b>{fmt_ci(s['optimism'], s['optimism_ci'])}</b></td></tr>"
    )


def _configurations(n: dict[str, Any]) -> str:
    sizes = {c["noise_floor"]["n_val"] for c in n["configurations"]} - {None}
    n_val = f" (n = {sizes.pop()})" if len(sizes) == 1 else " (n: the row's validation set)"
    head = (
        "<tr><th class=l>configuration</th><th>n</th><th>mean (95 % CI, Student t)</th>"
        f"<th>std</th><th>se</th><th>noise floor{n_val}</th><th>median</th>"
        "<th>IQM</th><th>min</th><th>max</th><th>gap</th><th>quantiles 5, 25, 75, 95 % "
        "(linear)</th><th>skew (G1)</th><th>excess kurtosis (G2)</th>"
        "<th>test mean (95 % CI)</th><th>test noise floor</th>"
        "<th>detectable difference (80 % power): objective, test</th>"
        "<th>diverged, pruned, failed</th></tr>"
    )
    rows = []
    for c in n["configurations"]:
        d, t = c["objective"], c["test"]
        k = digits_for(_half((d["ci_low"], d["ci_high"])))
        quantiles = ", ".join(fmt(d[q], digits=k) for q in ("q05", "q25", "q75", "q95"))
        rows.append(
            f"<tr><td class=l title='{escape(c['label'])}'>{escape(c['short'])}<br><small>"
            f"<code>{escape(c['config_id'])}</code></small></td><td>{d['n']}</td>"
            f"<td>{fmt_ci(d['mean'], (d['ci_low'], d['ci_high']))}</td><td>{_sig(d['std'])}</td>"
            f"<td>{_sig(d['se'])}</td><td>{_sig(c['noise_floor']['objective'])}</td>"
            f"<td>{fmt(d['median'], digits=k)}</td><td>{fmt(d['iqm'], digits=k)}</td>"
            f"<td>{fmt(d['min'], digits=k)}</td><td>{fmt(d['max'], digits=k)}</td>"
            f"<td>{_sig(d['gap'])}</td><td>{quantiles}</td>"
            f"<td>{fmt(d['skewness'], digits=2)}</td><td>{fmt(d['kurtosis'], digits=2)}</td>"
            f"<td>{fmt_ci(t['mean'], (t['ci_low'], t['ci_high']))}</td>"
            f"<td>{_sig(c['noise_floor']['test'])}</td>"
            f"<td>{_sig(c['power']['detectable_objective'])}, "
            f"{_sig(c['power']['detectable_test'])}</td><td>{len(c['diverged'])}, "
            f"{len(c['pruned'])}, {len(c['failed'])}</td></tr>"
        )
    common = _common_words(n)
    return (
        f"<h2 id=configurations>Configurations</h2><p>Final {escape(name(n['objective']))} "
        "over seeds, best mean first"
        + (f"; every configuration shares <code>{escape(common)}</code>" if common else "")
        + ". Compare std with the noise floor: a seed spread near it is what the finite "
        "evaluation set alone would give. The detectable difference is the smallest gap to "
        "another configuration with as many seeds and the same spread that a two-sided t-test "
        "(&alpha; = 0.05, unpaired) finds with 80 % power; paired comparisons on shared seeds "
        "detect less when the seeds' scores correlate (see the comparisons).</p>"
        + collapsed(f"<div class=wide><table>{head}{''.join(rows)}</table></div>", len(rows))
    )


def _common_words(n: dict[str, Any]) -> str:
    labels = [c["label"].split() for c in n["configurations"]]
    if len(labels) < 2:
        return ""
    return " ".join(w for w in labels[0] if all(w in other for other in labels[1:]))


def _expected_max(n: dict[str, Any], figures: dict[str, Path]) -> str:
    warn = "".join(f"<p class=warn>{escape(w)}</p>" for w in n["expected_max"].get("warnings", []))
    return (
        "<h2 id=expected-max>Expected best of n</h2><p>The expected best "
        f"{escape(name(n['objective']))} of n seed-runs drawn from these (Dodge et al. "
        "2019), with both estimators: with replacement F(v<sub>(i)</sub>) = (i/N)<sup>n</sup> "
        "and without, C(i,n)/C(N,n).</p>" + warn + img(figures.get("expected_max"))
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
        "<th>reversal</th><th>power</th><th>seeds for 80 % power</th>"
        "<th>detectable (80 %)</th></tr>"
    )
    rows = "".join(
        f"<tr><td class=l>{escape(labels.get(c['a'], c['a']))}</td>"
        f"<td class=l>{escape(labels.get(c['b'], c['b']))}</td>"
        f"<td>{c['n_a']}, {c['n_b']} ({c['n_shared']})</td>"
        f"<td>{'paired t, Wilcoxon' if c['paired'] else 'Welch t, Mann&ndash;Whitney'}</td>"
        f"<td>{fmt_ci(c['difference'], (c['ci_low'], c['ci_high']))}</td>"
        f"<td>{_p(c['t_p'])} ({_p(c['t_p_holm'])})</td>"
        f"<td>{_p(c['rank_p'])} ({_p(c['rank_p_holm'])})</td>"
        f"<td>{fmt(c['p_improvement'], digits=2)}</td><td>{fmt(c['aso_eps_min'], digits=2)}</td>"
        f"<td>{fmt(c['reversal_rate'], digits=2)}</td><td>{fmt(c['power'], digits=2)}</td>"
        f"<td>{_seeds(c['seeds_for_power'])}</td><td>{_sig(c['detectable'])}</td></tr>"
        for c in comps
    )
    return (
        "<h2 id=comparisons>Comparing configurations</h2><p>On "
        f"{escape(name(comps[0]['metric']))} over seeds, among the (at most six) "
        "configurations with the best mean on the validation "
        "objective: chosen on validation, never on the scores compared. Two configurations that "
        "finished the same seeds are compared on those seeds, paired (paired t-test, Wilcoxon "
        "signed-rank, the CI of the mean paired difference, P(A &gt; B) and the reversal rate "
        "over shared seeds); otherwise as independent samples (Welch, Mann&ndash;Whitney, "
        "P(A &gt; B) over all pairs of one seed each). p-values are two-sided, shown raw and, "
        f"in brackets, Holm-adjusted over the {comps[0]['n_comparisons']} comparisons. "
        "P(A &gt; B) counts ties as &frac12;; reversal: the share of (shared) seeds on which B "
        "scores strictly higher. ASO &epsilon;<sub>min</sub> (Dror et al. 2019, &alpha; = 0.05): "
        "below 0.5 A is almost stochastically better, below 0.2 confidently; shown to 2 "
        "decimals: its resampling alone moves it by a standard deviation of 0.003&ndash;0.017 "
        "(20 random states on 10-seed samples). Power: the t-test's, two-sided at "
        "&alpha; = 0.05, at the observed difference, from the std of the paired differences "
        "(paired) or the pooled std at the harmonic-mean n (independent); seeds for 80 % "
        "power: per side, for that difference; detectable: the smallest difference these "
        "seeds find with 80 % power (seedhp plan computes these for a difference you name)."
        "</p>" + collapsed(f"<div class=wide><table>{head}{rows}</table></div>", len(comps))
    )


def _ensembles(n: dict[str, Any], figures: dict[str, Path]) -> str:
    if not n["ensembles"]:
        return ""
    imgs = "".join(img(figures.get(f"ensemble_{e['config_id']}")) for e in n["ensembles"])
    return (
        "<h2 id=ensembles>Seed ensembles</h2><p>Majority vote of k seed-variants' test "
        "predictions (<code>tracking.save_predictions=true</code>), beside the single seeds.</p>"
        + imgs
    )


def _per_configuration(n: dict[str, Any], figures: dict[str, Path]) -> str:
    out = ["<h2 id=per-configuration>Per configuration</h2>"]
    for c in n["configurations"]:
        hist, conv = figures.get(f"hist_{c['config_id']}"), figures.get(f"conv_{c['config_id']}")
        if hist is None:
            continue
        swans = (
            ", ".join(
                f"seed {s['seed']}: {fmt(s['score'])} ({s['mads']:+.1f} MAD, {s['sds']:+.1f} sd)"
                for s in c["black_swans"]
            )
            or "none"
            if c.get("black_swans_checked", True)
            else f"not looked for: {len(c['seeds'])} finished seeds, fewer than the 20 that "
            "median ± 3 MAD needs to tell a black swan from an ordinary extreme"
        )
        out.append(  # the best configuration open, the others folded
            f"<details{' open' if len(out) == 1 else ''}><summary><b>{escape(c['label'])}</b> "
            f"<small><code>{escape(c['config_id'])}</code></small></summary>"
            f"<p>Black swans: {escape(swans)}. Diverged seeds: "
            f"{escape(', '.join(map(str, c['diverged'])) or 'none')}; pruned: "
            f"{escape(', '.join(map(str, c['pruned'])) or 'none')}; failed: "
            f"{escape(', '.join(map(str, c['failed'])) or 'none')}.</p>"
            f"<div class=fig>{img(hist)}</div><div class=fig>{img(conv)}</div></details>"
        )
    return "".join(out)


def _seeds(n: int | None) -> str:
    return "n/a (no difference, or > 10,000)" if n is None else str(n)


def _finite(x: Any) -> bool:
    return isinstance(x, (int, float)) and math.isfinite(x)


def img(path: Path | None) -> str:
    if path is None:
        return ""
    data = base64.b64encode(path.read_bytes()).decode()
    return f"<img alt='{escape(path.stem)}' src='data:image/png;base64,{data}'>"


def fmt(x: Any, integer: bool = False, digits: int = 4) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "&ndash;"
    return str(int(x)) if integer else f"{x:.{digits}f}"


def digits_for(half_width: float | None) -> int:
    """Decimals that keep two significant digits of an interval's half-width: the precision
    its noise supports (4 where there is no interval)."""
    if half_width is None or not math.isfinite(half_width) or half_width <= 0:
        return 4
    return max(0, min(6, 1 - math.floor(math.log10(half_width))))


def _half(ci: Any) -> float | None:
    lo, hi = ci
    if lo is None or hi is None or math.isnan(lo) or math.isnan(hi):
        return None
    return (hi - lo) / 2


def fmt_ci(x: Any, ci: Any) -> str:
    """A value with its interval, both to the precision the interval supports."""
    d = digits_for(_half(ci))
    if _half(ci) is None:
        return fmt(x, digits=d)
    return f"{fmt(x, digits=d)} [{fmt(ci[0], digits=d)}, {fmt(ci[1], digits=d)}]"


def _sig(x: Any) -> str:
    """A spread (std, se, gap, noise floor): two significant digits."""
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "&ndash;"
    return f"{x:#.2g}" if x != 0 else "0"


def _p(x: float) -> str:
    """A p-value: three decimals, small ones in scientific notation rather than 0.000."""
    if x is None or math.isnan(x):
        return "&ndash;"
    return f"{x:.3f}" if x >= 1e-3 else f"{x:.1e}"
