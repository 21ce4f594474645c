"""Building a report directory: collect, compute, draw, render, write, log."""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from seedhp.errors import ConfigError
from seedhp.job.tracking import Tracker
from seedhp.job.urls import scrub, write_scrubbed
from seedhp.report import figures as fig
from seedhp.report.collect import RunSet, collect, curves, predictions
from seedhp.report.compute import MAX_FIGURED, Options, compute
from seedhp.report.html import render
from seedhp.report.whole import log_page_last, whole_dir

PAGE = ("report.json", "report.html")  # uploaded last: a run whose upload stopped has no page


def build_report(
    tracker: Tracker,
    parent_id: str | None,
    out_dir: Path,
    options: Options | None = None,
    log_artifacts: bool = True,
    key: str = "--run",
    runs: Sequence[Any] | None = None,
) -> Path:
    """Write the report of one sweep or study (parent_id) or of the whole experiment (None).
    `key` names what chose the parent, for the error when it has nothing to report on."""
    rs = collect(tracker, parent_id, key, runs)
    if not [r for r in rs.runs if r.status == "finished"]:
        raise ConfigError(
            key if parent_id else "--all",
            parent_id or tracker.experiment_name,
            "has no finished seed-run to report on",
        )
    numbers = compute(
        rs,
        curves(tracker, rs.runs, rs.curve_metric),
        predictions(tracker, rs.runs),
        options or Options(),
    )
    with whole_dir(out_dir) as partial:  # stopped midway, nothing that looks complete
        figures = draw(numbers, rs, partial)
        write_scrubbed(partial / "report.json", json.dumps(json_safe(numbers), indent=1))
        write_tables(numbers, rs, partial)
        write_scrubbed(partial / "report.html", render(numbers, figures))
    if log_artifacts and parent_id is not None:
        log_page_last(tracker, parent_id, out_dir, "report", PAGE)
    return out_dir / "report.html"


def draw(n: dict[str, Any], rs: RunSet, out: Path) -> dict[str, Path]:
    figures: dict[str, Path] = {}
    for c in n["configurations"][:MAX_FIGURED]:
        cid = c["config_id"]
        figures[f"hist_{cid}"] = fig.histogram(c, rs.objective, out / f"histogram_{cid}.png")
        if c["convergence"]:
            figures[f"conv_{cid}"] = fig.convergence(
                c, rs.curve_metric, out / f"convergence_{cid}.png"
            )
    if n["expected_max"].get("n"):
        figures["expected_max"] = fig.expected_max(
            n["expected_max"], n["configurations"], rs.objective, out / "expected_max.png"
        )
    if n["selections"]:
        figures["selection_contrast"] = fig.selection_contrast(
            n["selections"],
            n["labels"],
            rs.objective,
            rs.test_metric,
            out / "selection_contrast.png",
        )
    for e in n["ensembles"][:MAX_FIGURED]:
        figures[f"ensemble_{e['config_id']}"] = fig.ensemble(
            e, out / f"ensemble_{e['config_id']}.png"
        )
    return figures


def write_tables(n: dict[str, Any], rs: RunSet, out: Path) -> None:
    """configurations.csv, runs.csv, comparisons.csv, selections.csv."""
    rows = []
    for c in n["configurations"]:
        row = {"config_id": c["config_id"], "label": c["label"]}
        row.update({f"{rs.objective}_{k}": v for k, v in c["objective"].items()})
        row.update({f"{rs.test_metric}_{k}": v for k, v in c["test"].items()})
        row.update(
            {
                "noise_floor": c["noise_floor"]["objective"],
                "test_noise_floor": c["noise_floor"]["test"],
                "detectable_80": c["power"]["detectable_objective"],
                "test_detectable_80": c["power"]["detectable_test"],
                "black_swans": " ".join(str(s["seed"]) for s in c["black_swans"]),
                "diverged": " ".join(map(str, c["diverged"])),
                "pruned": " ".join(map(str, c["pruned"])),
                "failed": " ".join(map(str, c["failed"])),
            }
        )
        rows.append(row)
    write_csv(out / "configurations.csv", rows)
    write_csv(
        out / "runs.csv",
        [
            {
                "run_id": r.run_id,
                "config_id": r.config_id,
                "label": r.label,
                "seed": r.seed,
                "status": r.status,
                "role": r.role,
                rs.objective: r.metrics.get(rs.objective, math.nan),
                rs.test_metric: r.metrics.get(rs.test_metric, math.nan),
            }
            for r in rs.runs
        ],
    )
    write_csv(out / "comparisons.csv", n["comparisons"])
    write_csv(out / "selections.csv", n["selections"])


def write_csv(path: Path, rows: list[dict[str, Any]]) -> None:
    with open(path, "w", newline="") as f:
        if not rows:
            return
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(
            {k: scrub(v) if isinstance(v, str) else v for k, v in row.items()} for row in rows
        )


def json_safe(x: Any) -> Any:
    if isinstance(x, float):
        return None if math.isnan(x) or math.isinf(x) else x
    if isinstance(x, dict):
        return {str(k): json_safe(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [json_safe(v) for v in x]
    return x
