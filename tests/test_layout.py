"""The library's shape: the data root's folder names are spelled in one module, no module imports one that
imports it back, only the edges open the store, the data root or storage or load a config (the rest is handed
them), and drift and validation do not import each other."""

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


# The edges: the modules that open the store, the data root and storage and load the configs; every other
# module is handed them (issue 32: "the domain is handed its inputs").
EDGE_MODULES = {
    "context.py",  # the day's context
    "health.py",  # the views
    "status.py",
    "preload.py",
    "serving/app.py",  # the prediction service's factory
    "config.py",  # the loaders and openers themselves
    "settings.py",
    "storage.py",
    "dataroot.py",
}
EDGE_PATTERNS = ("cli*.py", "store/*.py")  # the CLIs; the monitoring store's package
OPENERS = re.compile(r"^(open_store|open_storage|DataRoot\.open|load_\w+_config)$")


def is_edge(relative: Path) -> bool:
    return str(relative) in EDGE_MODULES or any(relative.match(pattern) for pattern in EDGE_PATTERNS)


def opener_uses(path: Path, root: Path = ROOT) -> list[str]:
    """``file:line: name`` of each call of an opener or config loader in ``path`` (or the function handed over
    as a value, e.g. a dataclass field's ``default_factory``), in line order; ``file`` relative to ``root``."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load):
            name = node.id
        elif isinstance(node, ast.Attribute):
            owner = ast.unparse(node.value).rsplit(".", 1)[-1]
            name = f"{owner}.{node.attr}" if owner == "DataRoot" else node.attr
        else:
            continue
        if OPENERS.match(name):
            found.append((node.lineno, node.col_offset, f"{path.relative_to(root)}:{node.lineno}: {name}"))
    return [hit for *_, hit in sorted(found)]


def test_the_opener_finder_sees_calls_attributes_and_references(tmp_path):
    module = tmp_path / "mod.py"
    module.write_text(
        "from churnguard import config\n"
        "def f(cfg=None, root=None):\n"
        "    a = cfg or config.load_drift_config()\n"
        "    b = root or DataRoot.open()\n"
        "    c = field(default_factory=load_dataset_config)\n"
        "    return open_store(), open_storage('file:///x'), DataRoot.batch_key('2026-09-01'), load_yaml_model\n"
    )
    hits = opener_uses(module, tmp_path)
    assert hits[0] == "mod.py:3: load_drift_config"
    assert [hit.rsplit(": ", 1)[1] for hit in hits] == [
        "load_drift_config",
        "DataRoot.open",
        "load_dataset_config",
        "open_store",
        "open_storage",
    ]
    assert is_edge(Path("cli_drift.py")) and is_edge(Path("store/core.py")) and is_edge(Path("context.py"))
    assert not is_edge(Path("drift/report.py")) and not is_edge(Path("validation/config.py"))


def test_only_the_edges_open_the_store_the_data_root_or_storage_or_load_a_config():
    uses = [
        hit
        for path in sorted(PACKAGE.rglob("*.py"))
        if not is_edge(path.relative_to(PACKAGE))
        for hit in opener_uses(path)
    ]
    assert uses == [], "handed, not opened or loaded, outside the edges:\n" + "\n".join(uses)


def test_drift_and_validation_do_not_import_each_other():
    arrows = [
        f"{path.relative_to(ROOT)} imports {name}"
        for here, there in (("drift", "validation"), ("validation", "drift"))
        for path in (PACKAGE / here).rglob("*.py")
        for name in sorted(module_imports(path))
        if name == f"churnguard.{there}" or name.startswith(f"churnguard.{there}.")
    ]
    assert arrows == []
