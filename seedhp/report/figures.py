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


def promised_delivered(rows: list[dict[str, Any]], objective: str, test: str, path: Path) -> Path:
    """The strategy contrast: per strategy, each replicate's promised score (the validation
    score its winner was chosen on) joined to what the winner delivered on fresh seeds."""
    strategies = list(dict.fromkeys(r["strategy"] for r in rows))
    replicates = sorted({r["replicate"] for r in rows})
    fig, ax = plt.subplots(figsize=(6.4, 4))
    for i, strategy in enumerate(strategies):
        mine = [r for r in rows if r["strategy"] == strategy]
        for r in mine:
            x = i + (replicates.index(r["replicate"]) - (len(replicates) - 1) / 2) * 0.08
            ax.plot([x, x], [r["promised"], r["delivered"]], color=GREY, lw=0.8)
            ax.plot(x, r["promised"], "o", mfc="none", color=BLUE, ms=6)
            ax.plot(x, r["delivered"], "o", color=RED, ms=6)
    ax.plot([], [], "o", mfc="none", color=BLUE, label=f"promised ({name(objective)})")
    ax.plot([], [], "o", color=RED, label=f"delivered (fresh-seed {name(test)} mean)")
    ax.set_xticks(range(len(strategies)), strategies)
    ax.set_xlim(-0.6, len(strategies) - 0.4)
    ax.set_ylabel("score")
    ax.set_title("Promised vs delivered, one point per replicate")
    ax.legend(fontsize=8, loc="best")
    return _save(fig, path)


def _wrap(text: str, width: int = 70) -> str:
    return "\n".join(textwrap.wrap(text, width)) or text


def _save(fig: Any, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(fig)
    return path
