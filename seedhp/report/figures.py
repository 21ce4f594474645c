"""The report's figures, one PNG each, from the numbers seedhp.report.compute made."""

from __future__ import annotations

import math
import textwrap
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.ticker import MaxNLocator
from scipy import stats as sps

NAMES = {
    "val_acc": "validation accuracy",
    "val_loss": "validation loss",
    "best_val_acc": "best validation accuracy",
    "test_acc": "test accuracy",
    "test_loss": "test loss",
    "train_loss": "training loss",
    "train_seconds": "seconds",
}
BLUE, RED, GREY, ORANGE = "#1f77b4", "#d62728", "#7f7f7f", "#ff7f0e"
plt.rcParams.update(
    {
        "font.size": 9,
        "axes.titlesize": 10,
        "figure.dpi": 120,
        "axes.spines.top": False,
        "axes.spines.right": False,
    }
)


def name(metric: str) -> str:
    return NAMES.get(metric, metric)


def histogram(cfg: dict[str, Any], objective: str, path: Path) -> Path:
    """Picard's Fig. 2: the distribution of the final score over seeds."""
    v = np.asarray(cfg["values"])
    d = cfg["objective"]
    fig, ax = plt.subplots(figsize=(6.4, 3.6))
    bins = min(30, max(5, int(math.sqrt(len(v))) * 2))
    ax.hist(v, bins=bins, density=True, color=BLUE, alpha=0.55, edgecolor="white", label="seeds")
    if len(v) >= 3 and np.ptp(v) > 0:
        grid = np.linspace(v.min() - 0.1 * np.ptp(v), v.max() + 0.1 * np.ptp(v), 300)
        ax.plot(grid, sps.gaussian_kde(v)(grid), color=BLUE, lw=1.5, label="density (KDE)")
    ax.axvline(d["mean"], color="black", lw=1, label="mean")
    for i, fence in enumerate(cfg["black_swan_fences"]):
        ax.axvline(
            fence,
            color=GREY,
            lw=1,
            ls="--",
            label="black-swan fences (median -+ k MAD)" if i == 0 else None,
        )
    if cfg["black_swans"]:
        swans = [s["score"] for s in cfg["black_swans"]]
        ax.plot(
            swans,
            np.zeros(len(swans)),
            "v",
            color=RED,
            ms=8,
            clip_on=False,
            label="black swans (beyond the dashed fences)",
        )
    ax.set_xlabel(f"final {name(objective)}")
    ax.set_ylabel("density")
    std = "n/a" if math.isnan(d["std"]) else f"{d['std']:.4f}"
    ax.set_title(f"{_wrap(cfg['short'])}\nn = {d['n']} seeds, mean = {d['mean']:.4f}, std = {std}")
    ax.legend(frameon=False, fontsize=8)
    return _save(fig, path)


def convergence(cfg: dict[str, Any], metric: str, path: Path) -> Path:
    """Picard's Fig. 1: per-epoch mean, +-1 std and min-max over seeds; below, how well each
    epoch's ranking of the seeds predicts the final one."""
    c = cfg["convergence"]
    e = np.asarray(c["epochs"])
    mean, std = np.asarray(c["mean"]), np.asarray(c["std"])
    fig, (ax, ax2) = plt.subplots(
        2, 1, figsize=(6.4, 4.8), sharex=True, gridspec_kw={"height_ratios": [3, 1.2]}
    )
    ax.fill_between(e, c["min"], c["max"], color=RED, alpha=0.15, lw=0, label="min-max")
    ax.fill_between(e, mean - std, mean + std, color=RED, alpha=0.35, lw=0, label="mean +- 1 std")
    ax.plot(e, mean, color=RED, lw=1.5, label="mean")
    ax.set_ylabel(name(metric))
    ax.set_title(f"{_wrap(cfg['short'])}\n{name(metric)} per epoch over {c['n']} seeds")
    ax.legend(frameon=False, fontsize=8, loc="best")
    rho = np.asarray(c["rank_agreement"], dtype=float)
    ax2.plot(e, rho, "o-", color=GREY, ms=3)
    ax2.set_ylim(-1.05, 1.05)
    ax2.axhline(0, color="black", lw=0.5)
    ax2.set_ylabel("rank corr.\nwith final")
    ax2.set_xlabel("epoch")
    ax2.xaxis.set_major_locator(MaxNLocator(integer=True))
    return _save(fig, path)


def expected_max(
    overall: dict[str, Any], configs: list[dict[str, Any]], objective: str, path: Path
) -> Path:
    """Dodge et al. 2019: the expected best validation score of n seed-runs."""
    fig, ax = plt.subplots(figsize=(6.4, 4))
    n = np.asarray(overall["n"])
    m, sd = np.asarray(overall["with_replacement"]), np.asarray(overall["with_replacement_sd"])
    lo, hi = min(overall["with_replacement"]), max(overall["with_replacement"])
    ax.fill_between(
        n,
        np.clip(m - sd, lo, hi),
        np.clip(m + sd, lo, hi),
        color=BLUE,
        alpha=0.2,
        lw=0,
        label="+- 1 sd (clipped to the observed range)",
    )
    ax.plot(n, m, color=BLUE, lw=1.8, label="all seed-runs, with replacement (i/N)^n")
    ax.plot(
        n,
        overall["without_replacement"],
        color=BLUE,
        lw=1.2,
        ls="--",
        label="all seed-runs, without replacement C(i,n)/C(N,n)",
    )
    for cfg, color in zip(configs[:3], (ORANGE, "#2ca02c", "#9467bd"), strict=False):
        evp = cfg["expected_max"]
        if evp and len(evp["n"]) > 1:
            ax.plot(
                evp["n"],
                evp["with_replacement"],
                color=color,
                lw=1.2,
                label=f"over its seeds: {cfg['short'][:50]}",
            )
    ax.set_xscale("log")
    ax.set_xlabel("n (seed-runs drawn)")
    ax.set_ylabel(f"expected best {name(objective)}")
    ax.set_title(f"Expected best {name(objective)} of n seed-runs (N = {len(n)})")
    ax.legend(frameon=False, fontsize=7.5, loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=2)
    return _save(fig, path)


def selection_contrast(
    selections: list[dict[str, Any]], labels: dict[str, str], objective: str, test: str, path: Path
) -> Path:
    """What each selection rule's winner promised, and what it gives on fresh seeds."""
    fig, ax = plt.subplots(figsize=(6.4, 4))
    xs = np.arange(len(selections))
    fresh = any(s["fresh_n"] for s in selections)
    kinds = [
        ("chosen_on", f"chosen on ({name(objective)})", "o", BLUE),
        ("selected_test", f"{name(test)} of what was selected", "s", GREY),
    ]
    if fresh:
        kinds += [
            ("fresh_val_mean", f"fresh seeds: {name(objective)} mean", "^", ORANGE),
            ("fresh_test_mean", f"fresh seeds: {name(test)} mean (95 % CI)", "D", RED),
        ]
    for j, (key, label, marker, color) in enumerate(kinds):
        ys = [s[key] for s in selections]
        off = xs + (j - (len(kinds) - 1) / 2) * 0.12
        if key == "fresh_test_mean":
            err = np.array(
                [
                    [s[key] - s["fresh_test_ci"][0], s["fresh_test_ci"][1] - s[key]]
                    for s in selections
                ]
            ).T
            ax.errorbar(
                off, ys, yerr=np.nan_to_num(err), fmt=marker, color=color, label=label, capsize=3
            )
        else:
            ax.plot(off, ys, marker, color=color, label=label, ms=7)
    ax.set_xticks(
        xs,
        [
            f"{s['rule']}\n{_wrap(labels.get(s['config_id'], s['label']), 30)}"
            + (f"\nseed {s['seed']}" if s["seed"] is not None else "")
            for s in selections
        ],
    )
    ax.set_xlim(-0.6, len(selections) - 0.4)
    ax.set_ylabel("score")
    ax.set_title(
        "Selection contrast: the winner's promise and its fresh-seed worth"
        + ("" if fresh else "\n(no fresh-seed runs yet: seedhp reseed)")
    )
    ax.legend(frameon=False, fontsize=7.5, loc="best")
    return _save(fig, path)


def ensemble(e: dict[str, Any], path: Path) -> Path:
    """Seed ensembles: majority-vote accuracy against members, beside single seeds."""
    fig, ax = plt.subplots(figsize=(6.4, 3.8))
    sizes, acc, sd = np.asarray(e["sizes"]), np.asarray(e["accuracy"]), np.asarray(e["sd"])
    single = np.asarray(e["single_seed"])
    ax.axhspan(
        single.min(),
        single.max(),
        color=GREY,
        alpha=0.15,
        lw=0,
        label=f"single seeds: min-max (n = {len(single)})",
    )
    ax.axhline(single.mean(), color=GREY, lw=1, ls="--", label="single seeds: mean")
    ax.fill_between(sizes, acc - sd, acc + sd, color=BLUE, alpha=0.25, lw=0)
    ax.plot(sizes, acc, "o-", color=BLUE, ms=3, label="ensemble (majority vote), mean +- sd")
    ax.set_xlabel("seed-members in the ensemble")
    ax.set_ylabel("test accuracy")
    ax.set_title(f"Seed ensembles: {_wrap(e['short'])}")
    ax.legend(frameon=False, fontsize=8)
    return _save(fig, path)


def contrast_answer(
    rows: list[dict[str, Any]],
    pooled: list[dict[str, Any]],
    diffs: list[dict[str, Any]],
    scale: float,
    unit: str,
    path: Path,
) -> Path:
    """The strategy contrast's answer, one row of panels per budget. Left: per arm, each
    replicate's promised (validation score selected on), reported (test score of what was
    selected), fresh validation mean and delivered (fresh test mean), the delivered points of
    one replicate linked across arms, the pooled mean and 95 % CI of each beside them. Right:
    the paired differences in delivered score and in inflation, one dot per replicate, the
    mean and 95 % CI, and zero."""
    budgets = sorted({r["budget"] for r in rows})
    arms = list(dict.fromkeys(r["strategy"] for r in rows))
    replicates = sorted({r["replicate"] for r in rows})
    marks = (  # quantity, marker, colour, offset within the arm
        ("promised", "^", BLUE, -0.27),
        ("reported", "D", ORANGE, -0.09),
        ("fresh_val", "o", GREY, 0.09),
        ("delivered", "o", RED, 0.27),
    )
    fig, axes = plt.subplots(
        len(budgets),
        2,
        figsize=(10, 3.4 * len(budgets)),
        squeeze=False,
        gridspec_kw={"width_ratios": (1.3, 1)},
    )
    for (left, right), b in zip(axes, budgets, strict=True):
        mine = [r for r in rows if r["budget"] == b]
        by = {(r["replicate"], r["strategy"]): r for r in mine}
        for k in replicates:  # one replicate's delivered scores, linked across arms
            xs = [i + 0.27 for i, a in enumerate(arms) if (k, a) in by]
            ys = [by[(k, a)]["delivered"] * scale for a in arms if (k, a) in by]
            left.plot(xs, ys, color=RED, lw=0.5, alpha=0.35)
        for i, arm in enumerate(arms):
            for q, marker, colour, dx in marks:
                ys = [r[q] * scale for r in mine if r["strategy"] == arm and _ok(r[q])]
                left.plot(
                    [i + dx] * len(ys),
                    ys,
                    marker,
                    color=colour,
                    ms=4,
                    alpha=0.6,
                    mfc="none" if q in ("promised", "fresh_val") else colour,
                )
                p = next((p for p in pooled if (p["strategy"], p["budget"]) == (arm, b)), None)
                if p is not None and _ok(p["mean"][q]):
                    lo, hi = p["ci"][q]
                    m = p["mean"][q]
                    err = [[(m - lo) * scale], [(hi - m) * scale]] if _ok(lo) else None
                    left.errorbar(
                        i + dx + 0.05,
                        m * scale,
                        yerr=err,
                        fmt="_",
                        color="black",
                        ms=9,
                        capsize=2,
                        lw=1,
                    )
        for q, marker, colour, _ in marks:
            left.plot(
                [],
                [],
                marker,
                color=colour,
                label=_LABELS[q],
                mfc="none" if q in ("promised", "fresh_val") else colour,
            )
        left.set_xticks(range(len(arms)), [a.replace("_", " ") for a in arms])
        left.set_ylabel(f"score{unit}")
        left.set_title(f"{b} seed-runs per study" if b else "each study's own budget")
        mine_d = [d for d in diffs if d["budget"] == b]
        for j, d in enumerate(mine_d):
            colour = RED if d["quantity"] == "delivered" else ORANGE
            vals = [v * scale for v in d["values"]]
            right.plot(vals, [j] * len(vals), "o", color=colour, ms=3.5, alpha=0.5)
            if _ok(d["mean"]):
                lo, hi = d["ci"]
                err = [[(d["mean"] - lo) * scale], [(hi - d["mean"]) * scale]] if _ok(lo) else None
                right.errorbar(
                    d["mean"] * scale,
                    j,
                    xerr=err,
                    fmt="|",
                    color="black",
                    ms=10,
                    capsize=3,
                    lw=1.2,
                )
        right.axvline(0, color=GREY, lw=0.8, ls="--")
        right.set_yticks(
            range(len(mine_d)),
            [f"{d['a']} − {d['b']}: {d['quantity']}".replace("_", " ") for d in mine_d],
            fontsize=7,
        )
        right.invert_yaxis()
        right.set_xlabel(f"paired difference{unit} (dots: replicates; bar: mean, 95 % CI)")
    axes[0][0].legend(fontsize=7, loc="best", ncol=2)
    return _save(fig, path)


_LABELS = {
    "promised": "promised (selected on, val)",
    "reported": "reported (its test score)",
    "fresh_val": "fresh-seed validation mean",
    "delivered": "delivered (fresh-seed test mean)",
}


def contrast_budgets(pooled: list[dict[str, Any]], scale: float, unit: str, path: Path) -> Path:
    """Dodge's curves: per arm, delivered score and inflation against the budget, with the
    95 % CIs over replicates."""
    arms = list(dict.fromkeys(p["strategy"] for p in pooled))
    colours = dict(zip(arms, (BLUE, RED, GREY, ORANGE, "#2ca02c", "#9467bd"), strict=False))
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    for ax, q, title in (
        (axes[0], "delivered", "delivered (fresh-seed test mean)"),
        (axes[1], "inflation", "inflation (reported − delivered)"),
    ):
        for k, arm in enumerate(arms):
            mine = sorted((p for p in pooled if p["strategy"] == arm), key=lambda p: p["budget"])
            if q == "delivered" and arm == "seed_shopping":
                continue  # the fixed arm's configuration: the same curve
            xs = [p["budget"] * (1 + 0.03 * (k - len(arms) / 2)) for p in mine]
            ys = [p["mean"][q] * scale for p in mine]
            lo = [
                (p["mean"][q] - p["ci"][q][0]) * scale if _ok(p["ci"][q][0]) else 0 for p in mine
            ]
            hi = [
                (p["ci"][q][1] - p["mean"][q]) * scale if _ok(p["ci"][q][1]) else 0 for p in mine
            ]
            ax.errorbar(
                xs,
                ys,
                yerr=[lo, hi],
                marker="o",
                ms=4,
                capsize=3,
                lw=1.2,
                color=colours[arm],
                label=arm.replace("_", " "),
            )
        if q == "inflation":
            ax.axhline(0, color=GREY, lw=0.8, ls="--")
        ax.set_xscale("log")
        budgets = sorted({p["budget"] for p in pooled})
        ax.set_xticks(budgets, [str(b) for b in budgets])
        ax.minorticks_off()
        ax.set_xlabel("budget (seed-runs per study)")
        ax.set_ylabel(f"{q}{unit}")
        ax.set_title(title)
    axes[0].legend(fontsize=8, loc="best")
    return _save(fig, path)


def _ok(x: Any) -> bool:
    return isinstance(x, (int, float)) and math.isfinite(x)


def _wrap(text: str, width: int = 70) -> str:
    return "\n".join(textwrap.wrap(text, width)) or text


def _save(fig: Any, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(fig)
    return path
