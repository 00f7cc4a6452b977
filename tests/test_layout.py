"""The package's shape, as docs/architecture.md describes it: no import circle, each
layer imports only the layers below it, small modules, short orchestration functions.

Imports are read from the source (every ``import``, also inside functions and under
``TYPE_CHECKING``: a circle hidden in a function is still a circle in the design).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "pipeline"
MAX_MODULE_LINES = 400
MAX_ORCHESTRATION_LINES = 60
ORCHESTRATION = ("run", "session", "outcome", "jobs", "stages")

# Who may import whom: a module of a layer imports only modules of the layers listed
# for it (and its own). Everything not listed is "app" (cli, commands), which may
# import anything.
LAYERS: dict[str, set[str]] = {
    "base": set(),  # errors, config, trace, phone rules: leaves
    "io": {"base"},
    "store": {"base"},
    "providers": {"base"},
    "emulators": {"base"},
    "engine": {"base", "store", "providers"},
    "stages": {"base", "io", "store", "providers", "engine", "state"},
    "state": {"base", "store", "engine"},
}
BASE = {
    "errors", "config", "provider_config", "trace", "phone_metadata", "validity_table",
    "normalize", "columns", "stopping", "lock", "preflight", "verdict", "validity_cache",
    "consent_dates",
}  # fmt: skip
STATE = {"run_state", "report"}


def _modules() -> dict[str, Path]:
    found = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE).with_suffix("").parts
        name = ".".join(("pipeline", *parts)).removesuffix(".__init__")
        found[name] = path
    return found


def _imports(path: Path, name: str, known: set[str]) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out: set[str] = set()
    for node in ast.walk(tree):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{anchor}.{base}" if base else anchor
            targets = [base, *(f"{base}.{alias.name}" for alias in node.names)]
        out.update(t for t in targets if t in known and t != name)
    return out


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    known = set(modules)
    return {name: _imports(path, name, known) for name, path in modules.items()}


def _layer(module: str) -> str:
    parts = module.split(".")[1:]
    if not parts:
        return "app"
    head = parts[0]
    if head in {"io", "store", "providers", "emulators", "engine", "stages"}:
        return head
    if head in BASE:
        return "base"
    if head in STATE:
        return "state"
    return "app"


def test_no_import_circle() -> None:
    graph = _graph()
    circles: list[list[str]] = []
    state: dict[str, int] = {}  # 1: on the path, 2: done

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                circles.append([*path[path.index(nxt) :], nxt])
            elif nxt not in state:
                visit(nxt, [*path, nxt])
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node, [node])
    # A package's __init__ importing its own modules is not a circle of the design.
    circles = [c for c in circles if not all(m.startswith(c[0] + ".") or m == c[0] for m in c)]
    assert circles == []


def test_each_layer_imports_only_the_layers_below_it() -> None:
    wrong = []
    for module, targets in _graph().items():
        layer = _layer(module)
        if layer == "app":
            continue
        allowed = LAYERS[layer] | {layer}
        wrong.extend(
            f"{module} ({layer}) imports {t} ({_layer(t)})"
            for t in sorted(targets)
            if _layer(t) not in allowed
        )
    assert wrong == []


@pytest.mark.parametrize("name", sorted(_modules()))
def test_module_is_small(name: str) -> None:
    lines = _modules()[name].read_text(encoding="utf-8").count("\n")
    assert lines <= MAX_MODULE_LINES, f"{name}: {lines} lines"


def test_orchestration_functions_are_short() -> None:
    long = []
    for name, path in _modules().items():
        if not any(name.split(".")[1:2] == [part] for part in ORCHESTRATION):
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                length = (node.end_lineno or node.lineno) - node.lineno + 1
                if length > MAX_ORCHESTRATION_LINES:
                    long.append(f"{name}.{node.name}: {length} lines")
    assert long == []
