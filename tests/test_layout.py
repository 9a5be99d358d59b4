"""The library's shape: the data root's folder names are spelled in one module, and no module imports one
that imports it back."""

from __future__ import annotations

import ast
import io
import re
import tokenize
from pathlib import Path

from tests.conftest import ROOT

PACKAGE = ROOT / "include" / "churnguard"
LAYOUT = re.compile(r"(^|/)(landing|labels|staged|scores|reports|quarantine)(/|$)")


def layout_strings(path: Path) -> list[str]:
    """String literals of ``path`` that name a data-root folder (``"landing"``, ``"reports/…"``)."""
    found = []
    for token in tokenize.generate_tokens(io.StringIO(path.read_text()).readline):
        if token.type == tokenize.STRING:
            try:
                value = ast.literal_eval(token.string)
            except (ValueError, SyntaxError):  # an f-string: its text without the prefix and quotes
                value = re.sub(r"^[A-Za-z]*(\"\"\"|'''|\"|')", "", token.string)
            if isinstance(value, str) and not value.startswith("/") and LAYOUT.search(value):  # "/…": a URL
                found.append(f"{path.relative_to(ROOT)}:{token.start[0]}: {token.string[:60]}")
    return found


def test_the_data_root_layout_is_spelled_in_dataroot_only():
    spelled = {str(p.relative_to(PACKAGE)): layout_strings(p) for p in PACKAGE.rglob("*.py")}
    assert layout_strings(PACKAGE / "dataroot.py"), "the layout test no longer sees the layout"
    assert [hit for name, hits in spelled.items() if name != "dataroot.py" for hit in hits] == []
    plugins = [hit for p in (ROOT / "plugins").rglob("*.py") for hit in layout_strings(p)]
    assert plugins == []


def module_imports(path: Path) -> set[str]:
    """The churnguard modules ``path`` imports, at the top or inside a function (not under TYPE_CHECKING)."""
    tree = ast.parse(path.read_text())
    names = set()
    for node in tree.body:
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            continue
        for sub in ast.walk(node):
            if isinstance(sub, ast.ImportFrom) and sub.module and sub.module.startswith("churnguard"):
                names.add(sub.module)
                names.update(f"{sub.module}.{a.name}" for a in sub.names)
            elif isinstance(sub, ast.Import):
                names.update(a.name for a in sub.names if a.name.startswith("churnguard"))
    return names


def test_no_import_cycle_in_the_library():
    modules = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        modules[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    graph = {name: {m for m in module_imports(path) if m in modules and m != name} for name, path in modules.items()}
    # a package's own __init__ importing its submodules is the package, not a cycle
    cycles, state = [], {}

    def visit(name: str, trail: list[str]) -> None:
        state[name] = "open"
        for nxt in sorted(graph[name]):
            if nxt.startswith(name + "."):
                continue
            if state.get(nxt) == "open":
                cycles.append(trail[trail.index(nxt) :] + [nxt] if nxt in trail else [name, nxt])
            elif nxt not in state:
                visit(nxt, [*trail, nxt])
        state[name] = "done"

    for name in sorted(graph):
        if name not in state:
            visit(name, [name])
    assert cycles == []
