"""Every command the docs show is run by a test, and the docs say which. The line before each
command fence in docs/*.md (```bash, ```sh, ```shell, ```console, or a bare ```) is one mark:

- `<!-- run -->` before a ```bash fence: run here in `make test`, each line (a line ending in
  `\\` continues on the next) with bash in a fresh temporary directory, the project's
  environment on PATH and the repository root on PYTHONPATH, so a command the docs run from a
  clone's root (`python -m examples.plain_optuna`) imports what it would there while its
  outputs land in the temporary directory; each line must exit 0.
- `<!-- run: slow -->`: the same, in `make test-all` only (blocks of up to a few minutes).
- `<!-- run: from DIR -->`, `<!-- run: slow, from DIR -->`: a block the docs run from a
  directory of the clone (`From examples/plain_pytorch/`) runs in a fresh copy of DIR, so what
  it writes beside itself never lands in the repository.
- `<!-- run elsewhere: tests/FILE.py::TEST -->` (several separated by `, `): a block that cannot
  run here (a server, a cluster, the network, hours of compute, a value to fill in, a
  transcript of errors) is run, in a small form, by the tests named.
- `<!-- not run: REASON -->`: nothing runs it (rare).

Output, trees, YAML and Python go in ```text, ```yaml or ```python fences, which take no mark.
README.md's command blocks carry no marks: README_RUN_BY names the test that runs each of their
command lines."""

from __future__ import annotations

import ast
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT, cli_env

MARK = re.compile(r"<!-- run(?:: ([a-z][a-z0-9 ,./_-]*))? -->\n```bash\n(.*?)\n```", re.S)
SHELL = {"", "bash", "sh", "shell", "console"}  # fence languages that hold commands
ANY_MARK = re.compile(r"<!-- (run(?:: [^>]*)?|run elsewhere: [^>]*|not run: [^>]*) -->")
ELSEWHERE = re.compile(r"<!-- run elsewhere: ([^>]*) -->")
FENCE = re.compile(r"^ *```(\S*)")
PAGES = sorted((ROOT / "docs").glob("*.md"))

# README.md's command lines (trailing comments off) -> the test that runs each, in a small form
README_RUN_BY = {
    "make data": "tests/test_fetch.py::test_make_data_fetches_the_genuine_files",
    "python -m seedhp experiment=picard": (
        "tests/test_fetch.py::test_picard_runs_on_the_real_files_and_reports"
    ),
    "python -m seedhp experiment=picard data=mnist": (
        "tests/test_fetch.py::test_the_picard_preset_is_one_configuration_on_fashion_mnist"
    ),
    "make run": "tests/test_cli.py::test_seed_sweep_end_to_end",
    "make test": "not run: the test suite itself, this module included",
    "python -m seedhp -m seed='range(0,500)'": "tests/test_cli.py::test_seed_sweep_end_to_end",
    "python -m seedhp -m seed='range(0,50)' optimizer.lr=0.02,0.05,0.1": (
        "tests/report/test_report.py::test_sweep_writes_a_report_that_agrees_with_mlflow"
    ),
    "python -m seedhp search=averaged": (
        "tests/sweep/test_study.py::test_averaged_study_prunes_a_planted_bad_configuration"
    ),
    "python -m seedhp experiment=strategies": (
        "tests/sweep/test_strategies.py::test_one_command_runs_the_whole_contrast_and_resumes"
    ),
    "seedhp report": "tests/report/test_report.py::test_report_and_reseed_commands_in_every_form",
    "seedhp plan --difference 0.003": (
        "tests/report/test_report.py::test_report_and_reseed_commands_in_every_form"
    ),
}


def options(mark: str | None) -> tuple[bool, str | None]:
    """`slow` and `from DIR` of a run mark's options (`slow, from examples/plain_pytorch`)."""
    slow, where = False, None
    for option in mark.split(", ") if mark else []:
        if option == "slow":
            slow = True
        elif option.startswith("from ") and (ROOT / option[5:]).is_dir():
            where = option[5:]
        else:
            raise ValueError(f"<!-- run: {mark} -->: {option!r} is not slow or from DIR")
    return slow, where


def blocks() -> list[pytest.ParameterSet]:
    found = []
    for page in [ROOT / "README.md", *PAGES]:
        for i, m in enumerate(MARK.finditer(page.read_text())):
            try:
                slow, where = options(m.group(1))
            except ValueError:
                continue  # test_every_command_block_says_what_runs_it names it
            marks = [pytest.mark.slow] if slow else []
            found.append(pytest.param(m.group(2), where, id=f"{page.name}#{i}", marks=marks))
    return found


@pytest.mark.parametrize(("block", "where"), blocks())
def test_a_marked_docs_block_runs(block: str, where: str | None, tmp_path: Path) -> None:
    cwd = tmp_path
    if where is not None:  # a fresh copy, without what earlier runs left there
        cwd = tmp_path / Path(where).name
        left = shutil.ignore_patterns("outputs", "multirun", "logs", "__pycache__")
        shutil.copytree(ROOT / where, cwd, ignore=left)
    env = cli_env({"PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"})
    for line in re.sub(r"\\\n\s*", " ", block).splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        done = subprocess.run(
            ["bash", "-c", line], cwd=cwd, env=env, capture_output=True, text=True, timeout=600
        )
        assert done.returncode == 0, f"{line}\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}"


def test_the_docs_mark_blocks_to_run() -> None:
    assert any("sources-and-power.md" in p.id for p in blocks())  # type: ignore[operator]


def fences(page: Path) -> list[tuple[int, str, str, str, list[str]]]:
    """(line number, language, the line before, the one before that, the lines) per fence."""
    lines, found, i = page.read_text().splitlines(), [], 0
    while i < len(lines):
        opened = FENCE.match(lines[i])
        if opened is None:
            i += 1
            continue
        end = next(j for j in range(i + 1, len(lines)) if FENCE.match(lines[j]))
        before, earlier = (lines[k].strip() if k >= 0 else "" for k in (i - 1, i - 2))
        found.append((i + 1, opened.group(1), before, earlier, lines[i + 1 : end]))
        i = end + 1
    return found


def commands(lines: list[str]) -> list[str]:
    joined = re.sub(r"\\\n\s*", " ", "\n".join(lines))
    return [re.sub(r"\s+#.*$", "", c).strip() for c in joined.splitlines() if c.strip()]


def test_every_command_block_says_what_runs_it() -> None:
    wrong = []
    for page in [ROOT / "README.md", *PAGES]:
        for n, lang, before, earlier, lines in fences(page):
            where = f"{page.relative_to(ROOT)}:{n}"
            mark = ANY_MARK.fullmatch(before)
            if mark is None and lang in SHELL and page.name == "README.md":
                wrong += [
                    f"{where}: {c!r} is in no README_RUN_BY entry"
                    for c in commands(lines)
                    if c not in README_RUN_BY
                ]
            elif mark is None and lang in SHELL:
                wrong.append(f"{where}: a ```{lang} block without a mark on the line before")
            elif mark is not None and lang not in SHELL:
                wrong.append(f"{where}: a mark before a ```{lang} block, which holds no commands")
            elif mark is not None and ANY_MARK.fullmatch(earlier):
                wrong.append(f"{where}: two marks")
            elif mark is not None and re.fullmatch(r"run(: .*)?", mark.group(1)):
                if lang != "bash":
                    wrong.append(f"{where}: a run mark before ```{lang}: only ```bash is run")
                try:
                    options(mark.group(1)[5:])
                except ValueError as e:
                    wrong.append(f"{where}: {e}")
    assert wrong == [], "\n".join(wrong)


def named_tests() -> list[str]:
    named = [v for v in README_RUN_BY.values() if not v.startswith("not run: ")]
    for page in [ROOT / "README.md", *PAGES]:
        for m in ELSEWHERE.finditer(page.read_text()):
            named += m.group(1).split(", ")
    return named


def test_every_run_elsewhere_mark_names_a_test_that_exists() -> None:
    missing = []
    for named in named_tests():
        file, _, name = named.partition("::")
        path = ROOT / file
        if not (file.startswith("tests/") and name.startswith("test_") and path.is_file()):
            missing.append(named)
            continue
        tree = ast.parse(path.read_text())
        defined = {
            n.name for n in ast.walk(tree) if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)
        }
        if name not in defined:
            missing.append(named)
    assert missing == [] and named_tests(), missing


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
