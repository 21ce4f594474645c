"""A report's numbers from a run set: per-configuration statistics, black swans, convergence,
expected best of n, the selection contrast, comparisons, seed ensembles and the protocol audit.
Plain dicts and lists, ready for JSON, CSV and the HTML page."""

from __future__ import annotations

import math
import statistics
from collections import Counter
from dataclasses import dataclass
from typing import Any

import numpy as np

from seedhp.report.collect import RunSet
from seedhp.stats import core as stats
from seedhp.stats.contrast import FRESH_ROLES, SeedRun, audit, compare, group, select
from seedhp.stats.power import detectable

MAX_FIGURED = 12  # configurations that get their own histogram and convergence figure


@dataclass(frozen=True)
class Options:
    black_swan_k: float = 3.0
    random_state: int = 0  # seeds ASO's and the ensembles' resampling


def compute(
    rs: RunSet,
    curves: dict[str, list[float]],
    preds: dict[str, tuple[np.ndarray, np.ndarray]],
    opt: Options,
) -> dict[str, Any]:
    obj, test = rs.objective, rs.test_metric
    sign = 1 if rs.maximize else -1
    g = group(rs.runs)
    scored = {
        cid: [r for r in rs_ if _finite(r.metrics.get(obj))] for cid, rs_ in g.selection.items()
    }
    order = sorted(
        (c for c in scored if scored[c]),
        key=lambda c: -sign * statistics.fmean(r.metrics[obj] for r in scored[c]),
    )
    labels = short_labels({cid: scored[cid][0].label for cid in order})
    configs = [
        {**_configuration(rs, cid, scored[cid], curves, opt), "short": labels[cid]}
        for cid in order
    ]
    all_scores = [r.metrics[obj] for c in order for r in scored[c]]
    selections = select(rs.runs, obj, test, rs.maximize)
    return {
        "title": rs.title,
        "kind": rs.kind,
        "parent_run_id": rs.parent_id,
        "command": rs.command,
        "objective": obj,
        "test_metric": test,
        "maximize": rs.maximize,
        "counts": dict(Counter(r.status for r in rs.runs if r.role not in FRESH_ROLES)),
        "fresh_runs": sum(len(v) for v in g.fresh.values()),
        "duplicates": [  # runs of a (configuration, seed) counted already: a later run won
            {"run_id": r.run_id, "config_id": r.config_id, "seed": r.seed, "status": r.status}
            for r in rs.duplicates
        ],
        "tracking_uri": rs.tracking_uri,
        "experiment": rs.experiment,
        "configurations": configs,
        "expected_max": _expected_max(all_scores, rs, multiple_configs=len(order) > 1),
        "selections": [s.as_dict() for s in selections],
        "comparisons": [
            c.as_dict()
            for c in compare(
                rs.runs,
                test,
                rs.maximize_test,
                random_state=opt.random_state,
                chosen_by=obj,  # which configurations: chosen on validation, never on test
                maximize_chosen_by=rs.maximize,
            )
        ],
        "ensembles": _ensembles(rs, order, preds, opt, labels),
        "audit": [vars(a) for a in audit(rs.runs, obj, ensembles=bool(preds))],
        "labels": labels,
    }


def short_labels(labels: dict[str, str]) -> dict[str, str]:
    """Each configuration's label without the words every configuration shares, so figures
    name what differs (`optimizer.lr=0.2`); the full label where nothing is left."""
    words = {cid: label.split() for cid, label in labels.items()}
    common = set.intersection(*(set(w) for w in words.values())) if len(words) > 1 else set()
    return {
        cid: " ".join(x for x in w if x not in common) or labels[cid] for cid, w in words.items()
    }


def _configuration(
    rs: RunSet, cid: str, runs: list[SeedRun], curves: dict[str, list[float]], opt: Options
) -> dict[str, Any]:
    obj, test = rs.objective, rs.test_metric
    runs = sorted(runs, key=lambda r: r.seed)
    vals = np.array([r.metrics[obj] for r in runs])
    tests = np.array([r.metrics[test] for r in runs if _finite(r.metrics.get(test))])
    d_val = stats.describe(vals)
    d_test = stats.describe(tests)
    sizes = rs.split_sizes.get(cid, {})
    others = [r for r in rs.runs if r.config_id == cid and r.role not in FRESH_ROLES]
    curve_rows = [curves[r.run_id] for r in runs if r.run_id in curves]
    return {
        "config_id": cid,
        "label": runs[0].label,
        "seeds": [r.seed for r in runs],
        "values": vals.tolist(),
        "tests": tests.tolist(),
        "objective": d_val.as_dict(),
        "test": d_test.as_dict(),
        "noise_floor": {  # a finite evaluation set's own spread, beside the seed std
            "objective": stats.noise_floor(d_val.mean, sizes["n_val"])
            if obj.endswith("acc") and "n_val" in sizes
            else math.nan,
            "test": stats.noise_floor(d_test.mean, sizes["n_test"])
            if test.endswith("acc") and "n_test" in sizes
            else math.nan,
            "n_val": sizes.get("n_val"),
            "n_test": sizes.get("n_test"),
        },
        "power": {  # against another configuration with as many seeds and this spread
            "detectable_objective": detectable(d_val.std, d_val.n, paired=False),
            "detectable_test": detectable(d_test.std, d_test.n, paired=False),
        },
        "black_swans": [
            {
                "seed": runs[i].seed,
                "score": float(vals[i]),
                "mads": dist,
                "sds": (float(vals[i]) - d_val.mean) / d_val.std if d_val.std > 0 else math.nan,
            }
            for i, dist in stats.black_swans(vals, opt.black_swan_k)
        ],
        "black_swans_checked": len(vals) >= stats.MIN_SEEDS_FOR_BLACK_SWANS,
        "black_swan_fences": list(stats.robust_fences(vals, opt.black_swan_k)[:2])
        if len(vals)
        else [],
        "diverged": sorted(r.seed for r in others if r.status == "diverged"),
        "failed": sorted(r.seed for r in others if r.status == "failed"),
        "pruned": sorted(r.seed for r in others if r.status == "pruned"),
        "convergence": _convergence(curve_rows),
        "expected_max": _evp(vals),
    }


def _convergence(rows: list[list[float]]) -> dict[str, Any] | None:
    """Bands and rank agreement over the seeds whose curves have the common length."""
    if len(rows) < 2:
        return None
    length = Counter(len(r) for r in rows).most_common(1)[0][0]
    c = np.array([r for r in rows if len(r) == length])
    if length < 1 or len(c) < 2:
        return None
    bands = stats.epoch_bands(c)
    return {
        "epochs": list(range(1, length + 1)),
        "n": len(c),
        **{k: v.tolist() for k, v in bands.items()},
        "rank_agreement": stats.rank_agreement(c).tolist(),
    }


def _evp(scores: np.ndarray | list[float]) -> dict[str, list[float]]:
    if len(scores) == 0:
        return {}
    with_r, with_sd = stats.expected_max(scores, replacement=True)
    without, without_sd = stats.expected_max(scores, replacement=False)
    return {
        "n": list(range(1, len(scores) + 1)),
        "with_replacement": with_r.tolist(),
        "with_replacement_sd": with_sd.tolist(),
        "without_replacement": without.tolist(),
        "without_replacement_sd": without_sd.tolist(),
    }


def _expected_max(scores: list[float], rs: RunSet, multiple_configs: bool) -> dict[str, Any]:
    """Expected best objective over n of all the seed-runs, with Dodge et al.'s caveats."""
    warnings = []
    if len(scores) < 5:
        warnings.append(
            f"Only {len(scores)} scores: with fewer than 5, read the scores "
            "themselves rather than an expected maximum (Dodge et al. 2019)."
        )
    if rs.kind == "study" and rs.sampler not in (None, "random"):
        warnings.append(
            f"The trials were chosen by the {rs.sampler} sampler, not drawn "
            "independently at random: expected-maximum curves assume random "
            "search and are biased for adaptive or grid search."
        )
    elif multiple_configs and rs.kind != "study":
        warnings.append(
            "The configurations form a grid, not independent random draws: the "
            "curve over all seed-runs assumes random search (per configuration, "
            "over seeds, the draws are independent)."
        )
    return {**_evp(scores), "warnings": warnings}


def _ensembles(
    rs: RunSet,
    order: list[str],
    preds: dict[str, tuple[np.ndarray, np.ndarray]],
    opt: Options,
    short: dict[str, str],
) -> list[dict[str, Any]]:
    out = []
    for cid in order:
        members = sorted(  # by seed: the resampling does not depend on the store's row order
            (
                (r.seed, preds[r.run_id])
                for r in rs.runs
                if r.config_id == cid and r.role not in FRESH_ROLES and r.run_id in preds
            ),
            key=lambda m: m[0],
        )
        if len(members) < 2:
            continue
        p = np.stack([m[1][0] for m in members])
        labels = members[0][1][1]
        single = (p == labels[None, :]).mean(1)
        curve = stats.ensemble_accuracy(p, labels, random_state=opt.random_state)
        out.append(
            {
                "short": short.get(cid, cid),
                "config_id": cid,
                "label": next(r.label for r in rs.runs if r.config_id == cid),
                "members": len(members),
                "sizes": list(curve),
                "accuracy": [curve[m][0] for m in curve],
                "sd": [curve[m][1] for m in curve],
                "single_seed": single.tolist(),
            }
        )
    return out


def _finite(v: float | None) -> bool:
    return v is not None and not math.isnan(v)
