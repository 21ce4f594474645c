"""Every command block the docs mark is run as a new user would run it: each block marked
`<!-- run -->` (or `<!-- run: slow -->`) on the line before its ```bash fence is collected from
README.md and docs/*.md and run line by line with bash in a fresh directory, with the project's
environment on PATH; each line must exit 0. Blocks without the mark (a server, a cluster) are
run by their feature's own tests."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT, cli_env

MARK = re.compile(r"<!-- run(?:: (slow))? -->\n```bash\n(.*?)\n```", re.S)


def blocks() -> list[pytest.ParameterSet]:
    found = []
    for page in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        for i, m in enumerate(MARK.finditer(page.read_text())):
            marks = [pytest.mark.slow] if m.group(1) else []
            found.append(pytest.param(m.group(2), id=f"{page.name}#{i}", marks=marks))
    return found


@pytest.mark.parametrize("block", blocks())
def test_a_marked_docs_block_runs(block: str, tmp_path: Path) -> None:
    env = cli_env({"PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"})
    for line in block.splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        done = subprocess.run(
            ["bash", "-c", line], cwd=tmp_path, env=env, capture_output=True, text=True
        )
        assert done.returncode == 0, f"{line}\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}"


def test_the_docs_mark_blocks_to_run() -> None:
    assert any("sources-and-power.md" in p.id for p in blocks())  # type: ignore[operator]


@pytest.mark.slow
def test_the_docs_figures_are_drawn_by_the_sweep_the_docs_show(tmp_path: Path) -> None:
    from tests.docs_figures import NAMES, SWEEP, draw

    page = (ROOT / "docs" / "report.md").read_text()
    shown = " ".join(a if "=range" not in a else f"'{a}'" for a in SWEEP)
    assert f"python -m seedhp {shown}" in page  # the figures are that command's
    written = draw(tmp_path)
    assert [p.name for p in written] == [target for _, target in NAMES]
    for p in written:
        assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert (ROOT / "docs" / "img" / p.name).exists()  # committed, and shown in the page
        assert f"img/{p.name}" in page
