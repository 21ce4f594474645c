"""Per-configuration summary of a sweep: how much the seed alone moves the score.

Pure functions over records {config_id, seed, status, value, test, label, start_time};
`value` is the objective. Each (configuration, seed) counts once (`latest_per_seed`). Only
finished runs enter the statistics; diverged, pruned, failed and interrupted runs are counted.
"""

from __future__ import annotations

import math
import re
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any, TypeVar

R = TypeVar("R")


# a word of a metric's name that says lower is better (val/loss, test_error, job_seconds)
LOWER_IS_BETTER = frozenset(
    {"loss", "error", "err", "seconds", "time", "mse", "mae", "rmse", "nll", "perplexity"}
    | {"ppl", "wer", "cer", "regret", "cost"}
)


def maximize(objective: str) -> bool:
    """Whether higher is better, from the name's words (split at '/', '_', '-', '.'): losses,
    errors and times are minimised, as is an unnamed float ('objective', Optuna's default);
    anything else (accuracies, scores, rewards) is maximised."""
    words = set(re.split(r"[^a-z0-9]+", objective.lower()))
    return objective != "objective" and not words & LOWER_IS_BETTER


def test_metric_of(objective: str) -> str:
    """The test score beside a validation objective: its name with the word 'val' (or
    'validation') made 'test' (val_acc -> test_acc, val/acc -> test/acc); for a name without
    it, seedhp's own test_loss or test_acc."""
    parts = re.split(r"([^A-Za-z0-9]+)", objective)
    if any(p.lower() in ("val", "validation") for p in parts):
        return "".join("test" if p.lower() in ("val", "validation") else p for p in parts)
    return "test_loss" if not maximize(objective) else "test_acc"


@dataclass(frozen=True)
class ConfigSummary:
    config_id: str
    label: str
    n: int  # finished seed-runs
    mean: float
    std: float  # sample standard deviation (n - 1); nan for n < 2
    min: float
    max: float
    gap: float  # max - min
    median: float
    best_seed: int | None
    worst_seed: int | None
    test_mean: float
    n_diverged: int
    n_pruned: int
    n_failed: int
    n_interrupted: int = 0  # stopped by Ctrl-C, SIGTERM or a process that died: not failed

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


# a terminal result (the same config and seed give it again) outranks a partial one
_RANK = {"finished": 2, "diverged": 2, "pruned": 1}
INTERRUPTED = ("interrupted", "running")  # a run whose process stopped (or has not) before its end


def latest_per_seed(
    records: Sequence[R],
) -> tuple[list[R], list[R]]:
    """Each (config_id, seed) once: its latest finished (or diverged) run, else its latest
    pruned run, else its latest run of any status. Returns (kept, ignored duplicates), each in
    the order of `records`. Records are mappings with config_id, seed, status and start_time
    (ms; missing counts as 0), or objects with those attributes."""
    best: dict[tuple[str, int], tuple[tuple[int, float], int]] = {}
    for i, r in enumerate(records):
        key = (str(_get(r, "config_id")), int(_get(r, "seed")))
        rank = (_RANK.get(str(_get(r, "status")), 0), float(_get(r, "start_time", 0) or 0))
        if key not in best or rank >= best[key][0]:
            best[key] = (rank, i)
    keep = {i for _, i in best.values()}
    kept = [r for i, r in enumerate(records) if i in keep]
    return kept, [r for i, r in enumerate(records) if i not in keep]


def _get(r: Any, key: str, *default: Any) -> Any:
    return r.get(key, *default) if isinstance(r, Mapping) else getattr(r, key, *default)


def summarize(records: Sequence[Mapping[str, Any]], objective: str) -> list[ConfigSummary]:
    """One summary per config_id, in order of first appearance; each (config_id, seed) is
    counted once (latest_per_seed)."""
    records, _ = latest_per_seed(records)
    groups: dict[str, list[Mapping[str, Any]]] = {}
    for r in records:
        groups.setdefault(str(r["config_id"]), []).append(r)
    up = maximize(objective)
    out = []
    for cid, rows in groups.items():
        done = [r for r in rows if r["status"] == "finished" and not math.isnan(r["value"])]
        values = [float(r["value"]) for r in done]
        by_seed = sorted(done, key=lambda r: int(r["seed"]))  # ties go to the lower seed
        ranked = sorted(by_seed, key=lambda r: float(r["value"]) * (-1 if up else 1))  # best first
        best, worst = (ranked[0], ranked[-1]) if ranked else (None, None)
        nan = math.nan
        tests = [float(r["test"]) for r in done if not math.isnan(r["test"])]
        out.append(
            ConfigSummary(
                config_id=cid,
                label=str(rows[0].get("label", cid)),
                n=len(values),
                mean=statistics.fmean(values) if values else nan,
                std=statistics.stdev(values) if len(values) > 1 else nan,
                min=min(values, default=nan),
                max=max(values, default=nan),
                gap=(max(values) - min(values)) if values else nan,
                median=statistics.median(values) if values else nan,
                best_seed=None if best is None else int(best["seed"]),
                worst_seed=None if worst is None else int(worst["seed"]),
                test_mean=statistics.fmean(tests) if tests else nan,
                n_diverged=sum(r["status"] == "diverged" for r in rows),
                n_pruned=sum(r["status"] == "pruned" for r in rows),
                n_failed=sum(
                    r["status"] not in ("finished", "diverged", "pruned", *INTERRUPTED)
                    for r in rows
                ),
                n_interrupted=sum(r["status"] in INTERRUPTED for r in rows),
            )
        )
    return out


def format_table(summaries: Sequence[ConfigSummary], objective: str) -> str:
    """A fixed-width table, one row per configuration."""
    head = (
        f"{'config_id':<12}  {'n':>4}  {'mean':>7}  {'std':>7}  {'min':>7}  {'max':>7}  "
        f"{'gap':>7}  {'median':>7}  {'best seed':>9}  {'worst seed':>10}  {'test mean':>9}  "
        f"{'diverged':>8}  {'pruned':>6}  {'failed':>6}  {'interrupted':>11}  configuration"
    )
    lines = [f"{objective} over seeds, per configuration:", head]
    for s in summaries:
        lines.append(
            f"{s.config_id:<12}  {s.n:>4}  {s.mean:>7.4f}  {s.std:>7.4f}  {s.min:>7.4f}  "
            f"{s.max:>7.4f}  {s.gap:>7.4f}  {s.median:>7.4f}  {_seed(s.best_seed):>9}  "
            f"{_seed(s.worst_seed):>10}  {s.test_mean:>9.4f}  {s.n_diverged:>8}  "
            f"{s.n_pruned:>6}  {s.n_failed:>6}  {s.n_interrupted:>11}  "
            f"{s.label}"
        )
    return "\n".join(lines)


def _seed(seed: int | None) -> str:
    return "-" if seed is None else str(seed)


def seed_ignored(summaries: Sequence[ConfigSummary], objective: str) -> list[str]:
    """One line per configuration whose seed-runs, on two or more different seeds, all
    returned the bit-identical objective: its app seems to ignore its seed."""
    return [
        seed_ignored_line(f"configuration {s.config_id}", s.n, objective, s.min)
        for s in summaries
        if s.n >= 2 and s.min == s.max
    ]


def seed_ignored_line(what: str, n: int, objective: str, value: float) -> str:
    return (
        f"{what}: its {n} seed-runs on different seeds all gave {objective} = {value!r}; the "
        "app seems to ignore its seed (seedhp seeds Python's, NumPy's and torch's generators "
        "before each job, not a generator the app seeds with a constant)"
    )
