"""The configuration reference (docs/reference.md), generated from the sources of truth: every
key of every file under conf/ with its value and its YAML comment, and every setting of seedhp's
Hydra plugins (hydra.sweeper.*, hydra.launcher.*) with its default and its comment in
hydra_plugins/seedhp/. `python -m tests.docs_reference > docs/reference.md` (`make reference`)
writes it; tests/test_layout.py checks that the committed page is what this prints, so it
cannot drift from the config."""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
KEY = re.compile(r"^(?P<indent> *)(?P<key>[\w.@/+-]+):(?P<value>[^#]*?)\s*(?:#\s?(?P<note>.*))?$")
ITEM = re.compile(r"^(?P<indent> *)- (?P<value>[^#]*?)\s*(?:#\s?(?P<note>.*))?$")
FIELD = re.compile(
    r"^    (?P<key>\w+): [^=]+= (?P<value>.+?)\s*(?:#\s?(?P<note>.*))?$"
)  # a dataclass field with its default


@dataclass
class Row:
    key: str
    value: str
    note: str


def yaml_rows(text: str) -> tuple[str, list[Row]]:
    """The file's opening comment and one row per key (dotted) or defaults-list item; a
    comment-only line indented under a commented line continues its note."""
    lines = text.splitlines()
    head = []
    for line in lines:
        if not line.startswith("#"):
            break
        if not line.startswith("# @package"):
            head.append(line[1:].strip())
    rows: list[Row] = []
    stack: list[tuple[int, str]] = []  # (indent, key) of the open mappings
    for line in lines:
        stripped = line.strip()
        if not stripped or line.startswith("#"):
            continue
        if stripped.startswith("#"):  # continues the note of the row above
            if rows and rows[-1].note:
                rows[-1].note += " " + stripped[1:].strip()
            continue
        m = KEY.match(line) or ITEM.match(line)
        if m is None:
            continue
        indent = len(m["indent"])
        while stack and stack[-1][0] >= indent and "key" in m.groupdict():
            stack.pop()
        if "key" not in m.groupdict():  # a list item of the key above
            parent = stack[-1][1] if stack else ""
            rows.append(Row(parent, f"- {m['value']}", m["note"] or ""))
            continue
        dotted = ".".join([k for _, k in stack] + [m["key"]])
        value = m["value"].strip()
        if not value:
            stack.append((indent, m["key"]))
        rows.append(Row(dotted, value, m["note"] or ""))
    return " ".join(head), rows


def plugin_rows(text: str) -> dict[str, list[Row]]:
    """Config class name -> one row per dataclass field (name, default, comment)."""
    out: dict[str, list[Row]] = {}
    current = ""
    for line in _joined(text.splitlines()):
        if m := re.match(r"^class (\w+Conf)\b(?:\((\w+Conf)\))?", line):
            current = m[1]
            out[current] = [Row(r.key, r.value, r.note) for r in out.get(m[2] or "", [])]
            if m[2] and m[2] not in out:  # extends a class of another module
                out[current].append(
                    Row("", f"{m[2]}", "and every setting of the class it extends")
                )
        elif current and (m := FIELD.match(line)):
            if m["key"] == "_target_":
                continue
            out[current].append(Row(m["key"], python_value(m["value"]), m["note"] or ""))
        elif current and out[current] and (m := re.match(r"^\s+#\s?(.*)$", line)):
            out[current][-1].note += " " + m[1].strip()  # the comment continues
        elif line and not line.startswith((" ", "#")):
            current = ""
    return out


def _joined(lines: list[str]) -> list[str]:
    """Lines with a default spread over several (open brackets) joined into one."""
    out: list[str] = []
    for line in lines:
        if out and _open(out[-1]):
            out[-1] += ("" if out[-1].endswith(("(", "[", "{")) else " ") + line.strip()
        else:
            out.append(line)
    return [re.sub(r",?\s*\)", ")", x) if "default_factory" in x else x for x in out]


def _open(line: str) -> bool:
    code = line.split("  #", 1)[0]
    return sum(code.count(a) - code.count(b) for a, b in ("()", "[]", "{}")) > 0


def python_value(text: str) -> str:
    """A dataclass default as the YAML a user writes: null, true, [a, b], {name: random}."""
    text = re.sub(r"^field\(default_factory=lambda: (.*)\)$", r"\1", text.strip())
    if m := re.match(r"^field\(default_factory=(\w+)\)$", text):
        return f"{m[1]}()"
    if m := re.match(r"^\w+Conf\((.*)\)$", text):
        text = "{" + re.sub(r"(\w+)=", r"\1: ", m[1]) + "}"
    text = re.sub(r"\bNone\b", "null", text)
    text = re.sub(r"\bTrue\b", "true", re.sub(r"\bFalse\b", "false", text))
    return re.sub(r'"([^"]*)"', r"\1", text)


def stored(text: str) -> list[tuple[str, str, str]]:
    """(group, name, config class) of each ConfigStore entry in a plugin module."""
    found = []
    for call in re.findall(r"\.store\((.*?)\)\n", text, re.S):
        group = re.search(r'group="([^"]+)"', call)
        name = re.search(r'name="([^"]+)"', call)
        node = re.search(r"node=(\w+)", call)
        if group and name and node:
            found.append((group[1], name[1], node[1]))
    return found


def cell(text: str) -> str:
    return text.replace("|", "\\|").strip()


def table(rows: list[Row], prefix: str = "") -> list[str]:
    out = ["| key | value | what it is |", "|---|---|---|"]
    for r in rows:
        key = f"{prefix}{r.key}" if r.key else prefix.rstrip(".")
        value = f"`{cell(r.value)}`" if r.value else ""
        out.append(f"| `{cell(key)}` | {value} | {cell(r.note)} |")
    return out


def page() -> str:
    out = [
        "# Configuration reference",
        "",
        "Generated from the config files and the plugins' settings (`make reference`; a test",
        "checks it is current): every key with its value and the comment beside it. Task-level",
        "guidance is in [configuration](configuration.md).",
        "",
    ]
    conf = ROOT / "conf"
    files = [conf / "config.yaml", conf / "plugins.yaml"]
    files += sorted(p for p in conf.rglob("*.yaml") if p not in files)
    for path in files:
        head, rows = yaml_rows(path.read_text())
        rel = path.relative_to(ROOT).as_posix()
        group = path.parent.relative_to(conf).as_posix()
        out += [f"## `{rel}`", ""]
        if head:
            out += [head, ""]
        if group != ".":
            out += [f"Chosen with `{group}={path.stem}`.", ""]
        out += [*table(rows), ""]
    modules = sorted((ROOT / "hydra_plugins" / "seedhp").glob("*.py"))
    names = {node: f"{g}={n}" for m in modules for g, n, node in stored(m.read_text())}
    for module in modules:
        text = module.read_text()
        classes = plugin_rows(text)
        for group, name, node in stored(text):
            if node not in classes:
                continue
            key = group.replace("/", ".")
            rows = [r for r in classes[node] if r.key]
            base = [r.value for r in classes[node] if not r.key]
            out += [
                f"## `{group}={name}`",
                "",
                f"Settings of `{module.relative_to(ROOT).as_posix()}` (`{key}.<key>=`)"
                + (f", and every setting of `{names.get(base[0], base[0])}`." if base else "."),
                "",
                *(table(rows, f"{key}.") if rows else ["No settings of its own."]),
                "",
            ]
    return "\n".join(out).rstrip() + "\n"


if __name__ == "__main__":
    sys.stdout.write(page())
