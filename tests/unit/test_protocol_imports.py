"""The sans-IO core does no I/O: no module it imports, directly or through
other amqp_client modules, imports a socket, event loop, thread, selector or
clock module.

The import graph is read from the source with ``ast`` (nothing is executed):
every ``import``/``from ... import`` statement, at module level or inside a
function, plus ``importlib.import_module("...")`` calls with a literal name,
followed transitively through ``amqp_client`` modules (``amqp_client.spec``
included, wherever it is installed from). Imports under
``if TYPE_CHECKING:`` never run and are left out. Parent packages that
Python runs implicitly are not edges: only what a module names.
"""

from __future__ import annotations

import ast
import importlib.util
from dataclasses import dataclass, field
from pathlib import Path

ROOT_PACKAGE = "amqp_client"
START = "amqp_client.protocol"
FORBIDDEN = frozenset(
    {"socket", "asyncio", "threading", "selectors", "time", "ssl", "select"}
)


@dataclass
class Graph:
    #: module name -> the amqp_client modules it imports
    edges: dict[str, set[str]] = field(default_factory=dict)
    #: module name -> (top-level name of an outside import, line)
    external: dict[str, set[tuple[str, int]]] = field(default_factory=dict)

    def path_to(self, target: str, start: str = START) -> list[str]:
        """A shortest chain of imports from ``start`` to ``target``."""
        previous: dict[str, str | None] = {start: None}
        queue = [start]
        while queue:
            current = queue.pop(0)
            if current == target:
                chain = [current]
                while (parent := previous[chain[-1]]) is not None:
                    chain.append(parent)
                return chain[::-1]
            for nxt in sorted(self.edges.get(current, ())):
                if nxt not in previous:
                    previous[nxt] = current
                    queue.append(nxt)
        return []


def _source(module: str) -> tuple[Path, bool]:
    spec = importlib.util.find_spec(module)
    assert spec is not None and spec.origin is not None, module
    return Path(spec.origin), spec.submodule_search_locations is not None


def _is_module(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except ModuleNotFoundError:
        return False


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _called_name(func: ast.expr) -> str:
    if isinstance(func, ast.Attribute):
        return func.attr
    if isinstance(func, ast.Name):
        return func.id
    return ""


def _imports(module: str) -> list[tuple[str, int]]:
    """Fully qualified names a module imports, with their lines."""
    path, is_package = _source(module)
    if path.suffix != ".py":
        # A compiled extension (amqp_client._speedups): it imports nothing.
        return []
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    package = module if is_package else module.rpartition(".")[0]
    skipped: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            for child in node.body:
                skipped.update(id(n) for n in ast.walk(child))
    found: list[tuple[str, int]] = []
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            found.extend((alias.name, node.lineno) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                parts = parts[: len(parts) - node.level + 1]
                base = ".".join(parts + ([base] if base else []))
            # ``from pkg import sub`` depends on the submodule pkg.sub (pkg
            # itself only runs as its parent); ``from pkg import name``
            # depends on what pkg/__init__.py defines.
            for alias in node.names:
                candidate = f"{base}.{alias.name}"
                if base.split(".")[0] == ROOT_PACKAGE and _is_module(candidate):
                    found.append((candidate, node.lineno))
                else:
                    found.append((base, node.lineno))
        elif (
            isinstance(node, ast.Call)
            and _called_name(node.func) in ("import_module", "__import__")
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            found.append((node.args[0].value, node.lineno))
    return found


def import_graph(start: str = START, *, follow_root: bool = True) -> Graph:
    """Walk the imports of ``start`` through amqp_client modules.

    ``follow_root=False`` treats an import of the package root
    (``amqp_client/__init__.py``, which loads the asyncio front) as a leaf.
    """
    graph = Graph()
    todo = [start]
    while todo:
        module = todo.pop()
        if module in graph.edges:
            continue
        graph.edges[module] = set()
        graph.external[module] = set()
        if module == ROOT_PACKAGE and not follow_root and module != start:
            continue
        for name, line in _imports(module):
            if name.split(".")[0] == ROOT_PACKAGE:
                # Importing a.b.c also runs a.b (but parents are implicit:
                # the root package is only an edge when it is named).
                graph.edges[module].add(name)
                todo.append(name)
            else:
                graph.external[module].add((name.split(".")[0], line))
    return graph


def test_the_walk_sees_the_protocol_modules() -> None:
    graph = import_graph(follow_root=False)
    for module in (
        "amqp_client.protocol",
        "amqp_client.protocol.core",
        "amqp_client.protocol.states",
        "amqp_client.protocol.events",
        "amqp_client.frames",
        "amqp_client.errors",
        "amqp_client.wire",
        "amqp_client.spec",
        "amqp_client.spec.methods",
        "amqp_client.spec.methods.basic",
        "amqp_client.spec.properties",
    ):
        assert module in graph.edges, module
    # The walk does see outside imports (so an empty result means something).
    basic = graph.external["amqp_client.spec.methods.basic"]
    assert any(name == "struct" for name, _ in basic)


def test_the_walk_finds_forbidden_imports() -> None:
    # A check of the checker on amqp_client modules known to do I/O.
    graph = import_graph("amqp_client.aio")
    found = {name for names in graph.external.values() for name, _ in names}
    assert "asyncio" in found


def test_protocol_imports_no_io_modules() -> None:
    graph = import_graph(follow_root=False)
    offenders = sorted(
        (module, name, line)
        for module, names in graph.external.items()
        for name, line in names
        if name in FORBIDDEN
    )
    assert offenders == [], [
        f"{module}:{line} imports {name} via {' -> '.join(graph.path_to(module))}"
        for module, name, line in offenders
    ]


def test_protocol_does_not_import_the_package_root() -> None:
    """Even followed through the package root the graph is clean, because
    the core never names the root (whose ``__init__`` loads the asyncio
    front); it reads the version from ``amqp_client._version``."""
    graph = import_graph()
    assert ROOT_PACKAGE not in graph.edges, " -> ".join(graph.path_to(ROOT_PACKAGE))
    offenders = sorted(
        (module, name)
        for module, names in graph.external.items()
        for name, _ in names
        if name in FORBIDDEN
    )
    assert offenders == []
