"""Fresh seeds for the two winners: what their configurations give on seeds the selection
never saw."""

from __future__ import annotations

from dataclasses import dataclass

from seedhp.report.collect import RunSet
from seedhp.stats.contrast import FRESH_ROLES, fresh_seeds, select


@dataclass(frozen=True)
class Reseed:
    config_id: str
    label: str
    overrides: tuple[str, ...]  # re-creates the configuration (without seed and tracking keys)
    seeds: tuple[int, ...]  # fresh seeds it still lacks


def plan(rs: RunSet, n: int) -> list[Reseed]:
    """Both winners' configurations on the same n fresh seeds (one plan if they coincide),
    minus the fresh seeds each has already run: asking twice does not train twice."""
    winners: list[str] = []
    for s in select(rs.runs, rs.objective, rs.test_metric, rs.maximize):
        if s.config_id not in winners:
            winners.append(s.config_id)
    selection_runs = [r for r in rs.runs if r.role not in FRESH_ROLES]
    seeds = fresh_seeds(selection_runs, n)
    out = []
    for cid in winners:
        done = {
            r.seed
            for r in rs.runs
            if r.config_id == cid and r.role in FRESH_ROLES and r.status == "finished"
        }
        source = next(r for r in rs.runs if r.config_id == cid and r.role not in FRESH_ROLES)
        todo = tuple(s for s in seeds if s not in done)
        if todo:
            out.append(Reseed(cid, source.label, source.overrides, todo))
    return out
