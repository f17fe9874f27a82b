"""The layering of toolkit/, read from the source (ast): seams point down, no import circles.

Floors, top to bottom: ``host/`` composes everything; ``online/`` (gateway, supervisor) and
``batch/`` are services built from :mod:`toolkit.context`; ``runtime/`` is what runs inside an
instance process; the SDK (workspace, operations, client, ...) talks to a host over HTTP and
never imports server code.  Imports under ``if TYPE_CHECKING:`` are annotations only and do not
count; imports inside functions (lazy ones) do.
"""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent / "toolkit"
MAX_LINES = 450
# The runtime package is also what local testing (``ops.test_locally``) scores with; only its
# instance server is server code.
SERVER_PACKAGES = ("toolkit.host", "toolkit.online", "toolkit.batch", "toolkit.runtime.instance")
SDK_MODULES = ("workspace", "operations", "client", "jobs", "views", "aio", "live")


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {_module_name(p): p for p in sorted(ROOT.rglob("*.py"))}


def _is_type_checking(test: ast.expr) -> bool:
    return "TYPE_CHECKING" in ast.unparse(test)


def _imports(name: str, path: Path) -> set[str]:
    """The toolkit modules ``name`` imports (at run time), resolved to modules that exist."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()

    def add(target: str) -> None:
        while target and target not in MODULES:
            target = target.rpartition(".")[0]
        if target and target != name:
            found.add(target)

    def walk(node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and _is_type_checking(child.test):
                for stmt in child.orelse:
                    walk_stmt(stmt)
                continue
            walk_stmt(child)

    def walk_stmt(node: ast.AST) -> None:
        if isinstance(node, ast.Import):
            for alias in node.names:
                add(alias.name)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if not target.startswith("toolkit"):
                return
            for alias in node.names:  # ``from .host import daemon`` imports toolkit.host.daemon
                sub = f"{target}.{alias.name}"
                add(sub if sub in MODULES else target)
        else:
            walk(node)

    walk(ast.parse(path.read_text(), str(path)))
    # Importing any module runs its packages' __init__ first; that is not a dependency to count.
    return {t for t in found if not name.startswith(t + ".")}


GRAPH = {name: _imports(name, path) for name, path in MODULES.items()}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one node (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0
    for start in graph:
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, edges = work[-1]
            for nxt in edges:
                if nxt not in index:
                    index[nxt] = low[nxt] = counter
                    counter += 1
                    stack.append(nxt)
                    on_stack.add(nxt)
                    work.append((nxt, iter(sorted(graph.get(nxt, ())))))
                    break
                if nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    component = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == node:
                            break
                    if len(component) > 1:
                        found.append(sorted(component))
    return found


def _package_of(module: str) -> str:
    """``toolkit.online.gateway`` -> ``toolkit.online``; a top-level module is its own node."""
    parts = module.split(".")
    if len(parts) > 2 or (len(parts) == 2 and (ROOT / parts[1]).is_dir()):
        return ".".join(parts[:2])
    return module


def test_the_import_graph_is_read() -> None:
    # A broken parser would make every other test here pass vacuously.
    assert "toolkit.runtime.instance" in MODULES
    assert "toolkit.runtime.scorer" in GRAPH["toolkit.runtime.instance"]
    assert "toolkit.context" in GRAPH["toolkit.online.service"]


def test_no_import_cycle_between_modules() -> None:
    assert _cycles(GRAPH) == []


def test_no_import_cycle_between_packages() -> None:
    packages: dict[str, set[str]] = {}
    for module, targets in GRAPH.items():
        here = _package_of(module)
        packages.setdefault(here, set()).update(_package_of(t) for t in targets if _package_of(t) != here)
    assert _cycles(packages) == []


@pytest.mark.parametrize("package", ["toolkit.online", "toolkit.batch", "toolkit.runtime"])
def test_services_never_import_the_host(package: str) -> None:
    bad = sorted(f"{m} -> {t}" for m, ts in GRAPH.items() if m == package or m.startswith(package + ".")
                 for t in ts if t == "toolkit.host" or t.startswith("toolkit.host."))
    assert bad == []


def test_the_runtime_never_imports_the_gateway_side() -> None:
    bad = sorted(f"{m} -> {t}" for m, ts in GRAPH.items() if m.startswith("toolkit.runtime")
                 for t in ts if t.startswith(("toolkit.online", "toolkit.batch", "toolkit.host")))
    assert bad == []


@pytest.mark.parametrize("module", SDK_MODULES)
def test_sdk_modules_never_import_server_code(module: str) -> None:
    name = f"toolkit.{module}"
    if name not in GRAPH:
        pytest.skip(f"{name} does not exist here")
    bad = sorted(t for t in GRAPH[name] if t.startswith(SERVER_PACKAGES))
    assert bad == [], f"{name} imports server code: {bad}"


def test_no_module_is_too_long() -> None:
    long = {p.relative_to(ROOT).as_posix(): n for p in MODULES.values()
            if (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert long == {}, f"split these modules (at most {MAX_LINES} lines each): {long}"


def test_every_exception_belongs_to_the_one_tree() -> None:
    """Each exception class toolkit/ defines derives from ``ToolkitError`` (errors.py), so
    ``except ToolkitError`` catches whatever the toolkit raises on purpose."""
    from toolkit.errors import ToolkitError

    outside, seen = [], 0
    for name in MODULES:
        if name.endswith("__main__"):
            continue  # running the CLI is not importing it
        module = importlib.import_module(name)
        for value in vars(module).values():
            if isinstance(value, type) and issubclass(value, BaseException) and value.__module__ == name:
                seen += 1
                if not issubclass(value, ToolkitError):
                    outside.append(f"{name}.{value.__qualname__}")
    assert seen >= 20, "the walk found too few exception classes to be reading toolkit/"
    assert outside == [], f"derive these from toolkit.errors.ToolkitError: {outside}"
