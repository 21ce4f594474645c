"""The layout's seams hold: who may import Hydra, MLflow and torch, and the public API."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import seedhp

PACKAGE = Path(seedhp.__file__).resolve().parent
ROOT = PACKAGE.parent
IMPORT = re.compile(r"^\s*(?:from|import)\s+([\w.]+)", re.MULTILINE)


def _imports(path: Path) -> set[str]:
    """Every module a file imports, at its top or inside a function."""
    return set(IMPORT.findall(path.read_text()))


def _files(*under: str) -> list[Path]:
    return sorted(p for u in under for p in (PACKAGE / u).rglob("*.py"))


def _named(imports: set[str], *roots: str) -> set[str]:
    return {m for m in imports if m.split(".")[0] in roots or m.startswith(roots)}


def test_hydra_is_imported_only_at_the_edges() -> None:
    """Hydra: __main__ and the sweep package (hydra_plugins/ is outside the package)."""
    edges = {PACKAGE / "__main__.py", *_files("sweep")}
    offenders = {
        str(p.relative_to(PACKAGE)): _named(_imports(p), "hydra")
        for p in PACKAGE.rglob("*.py")
        if p not in edges and _named(_imports(p), "hydra")
    }
    assert offenders == {}


def test_training_is_pure_torch_and_statistics_pure_numbers() -> None:
    for p in _files("train"):
        assert not _named(_imports(p), "hydra", "mlflow", "optuna", "omegaconf"), p
        assert not _named(_imports(p), "seedhp.job", "seedhp.sweep", "seedhp.report"), p
    for p in _files("stats"):
        assert not _named(_imports(p), "hydra", "mlflow", "optuna", "torch", "omegaconf"), p


def test_one_definition_of_a_configuration() -> None:
    """config_id and the overrides of a configuration are defined in seedhp.job.identity."""
    defined = {
        name: [
            str(p.relative_to(PACKAGE))
            for p in PACKAGE.rglob("*.py")
            if re.search(rf"^def {name}\(", p.read_text(), re.MULTILINE)
        ]
        for name in ("config_id", "configuration_overrides", "without_seed")
    }
    assert defined == {name: ["job/identity.py"] for name in defined}


@pytest.mark.parametrize("name", seedhp.__all__)
def test_the_public_api_resolves(name: str) -> None:
    assert getattr(seedhp, name) is not None


FLOORS = {"stats": 0, "train": 0, "job": 1, "report": 2, "sweep": 3}  # each imports only below


@pytest.mark.parametrize("package", list(FLOORS))
def test_a_floor_imports_only_its_own_and_the_floors_below(package: str) -> None:
    """stats and train know nothing of seedhp; job records runs; report reads them; sweep,
    the top, drives them all: a lower floor importing a higher one is a back-stair."""
    higher = {p for p, floor in FLOORS.items() if floor > FLOORS[package]}
    wrong = {
        f"{path.relative_to(PACKAGE)}: {module}"
        for path in _files(package)
        for module in _imports(path)
        if module.startswith("seedhp.") and module.split(".")[1] in higher
    }
    assert not wrong


def test_the_readme_is_a_front_page_whose_links_reach_the_documentation() -> None:
    root = PACKAGE.parent
    readme = (root / "README.md").read_text()
    assert len(readme.splitlines()) <= 200
    links = re.findall(r"\]\(([^)#]+\.md)\)", readme)
    assert links and all((root / link).is_file() for link in links)
    nav = (root / "mkdocs.yml").read_text()
    pages = {p.name for p in (root / "docs").glob("*.md")}
    assert pages and all(f": {page}" in nav for page in pages)  # every page in the site's nav


def test_the_configuration_reference_is_generated_from_the_config() -> None:
    from tests.docs_reference import page, plugin_rows, yaml_rows

    committed = (ROOT / "docs" / "reference.md").read_text()
    assert committed == page(), "docs/reference.md is stale: run `make reference`"
    # every key a user can set says what it is (STYLE.md): a comment beside it in conf/
    bare = [
        f"{path.relative_to(ROOT)}: {r.key}"
        for path in sorted((ROOT / "conf").rglob("*.yaml"))
        for r in yaml_rows(path.read_text())[1]
        if r.value
        and not r.note
        and not r.key.endswith("_target_")
        and not r.value.startswith("- override")
    ]
    bare += [
        f"{path.relative_to(ROOT)}: {c}.{r.key}"
        for path in sorted((ROOT / "hydra_plugins" / "seedhp").glob("*.py"))
        for c, rows in plugin_rows(path.read_text()).items()
        for r in rows
        if r.key and not r.note
    ]
    assert not bare, bare


FROM = re.compile(r"^\s*from\s+(seedhp[\w.]*)\s+import\s+(\([^)]*\)|[^\n]+)", re.MULTILINE)
PLAIN = re.compile(r"^\s*import\s+(seedhp[\w.]*)", re.MULTILINE)


def _module_graph() -> dict[str, set[str]]:
    """seedhp's modules -> the seedhp modules each imports, at its top, inside a function or
    under TYPE_CHECKING (`from seedhp.x import y` names seedhp.x.y when that is a module)."""
    mods = {
        ".".join(p.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__"): p
        for p in PACKAGE.rglob("*.py")
    }
    graph: dict[str, set[str]] = {m: set() for m in mods}
    for m, path in mods.items():
        text = path.read_text()
        for pkg, names in FROM.findall(text):
            words = [w.split(" as ")[0].strip() for w in re.split(r"[,()\n]+", names)]
            words = [w for w in words if w and not w.startswith("#")]
            subs = {f"{pkg}.{w}" for w in words if f"{pkg}.{w}" in mods}
            graph[m] |= subs | ({pkg} if len(subs) < len(words) and pkg in mods else set())
        graph[m] |= {t for t in PLAIN.findall(text) if t in mods}
        graph[m].discard(m)
    return graph


def test_no_modules_import_each_other_in_a_circle() -> None:
    graph = _module_graph()
    circles = []
    for start in sorted(graph):  # a path from a module back to itself (bounded: a DFS)
        seen: set[str] = set()
        todo = [(start, [start])]
        while todo:
            node, path = todo.pop()
            for nxt in sorted(graph[node]):
                if nxt == start:
                    circles.append(" -> ".join([*path, start]))
                elif nxt not in seen:
                    seen.add(nxt)
                    todo.append((nxt, [*path, nxt]))
    assert not circles, circles[:5]
    assert "seedhp.sweep.study_context" in graph["seedhp.sweep.study_storage"]  # graph is read


def test_the_version_is_the_changelogs_newest() -> None:
    changelog = (ROOT / "CHANGELOG.md").read_text()
    released = re.findall(r"^## \[(\d+\.\d+\.\d+)\] - ", changelog, re.MULTILINE)
    declared = re.search(r'^version = "([^"]+)"', (ROOT / "pyproject.toml").read_text(), re.M)
    assert released and declared and released[0] == declared[1] == seedhp.__version__
