"""The hand-written runtime keeps its layers apart (DESIGN.md "Our shape":
plain composed objects, not "objects that reach into each other's
``_private`` attributes" or "mixins with ``NotImplementedError`` stubs").

Read from the source of every ``amqp_client/**/*.py`` with ``ast`` and
``tokenize`` (nothing is imported, so the checks run on a half-rewritten
tree; generated/ is not walked):

- Private attributes stay in their module. ``x._name`` (one leading
  underscore or a mangled ``__name``; dunders ``__x__`` and enum sunders
  ``_x_`` are public protocol) is allowed when ``x`` is ``self`` or ``cls``,
  or when ``_name`` is defined in the same module: assigned as
  ``self._name``/``cls._name`` anywhere in it, bound in a class body of it
  (method, class attribute, ``__slots__`` entry), or bound at its module
  level. Same-module friends may touch each other; other modules may not.
- Private imports stay in their package. ``from pkg.mod import _name``
  needs the importer in the same folder as ``pkg/mod.py``; a private
  module or package (``pkg/_mod.py``, ``pkg/_sub/``) may be imported from
  ``pkg/`` and the folders below it only.
- ``ALLOWLIST`` names the exceptions, each with its reason.
- A ``# type: ignore[...]`` carries its reason on the same line
  (``# type: ignore[override]  # why``).
- No ``raise NotImplementedError``: no abstract stubs in the runtime.
- ``amqp_client/aio/`` and ``amqp_client/blocking/`` do not import each
  other (the shared parts live below both).
"""

from __future__ import annotations

import ast
import io
import re
import tokenize
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = "amqp_client"

#: (module path, private name) -> one line saying why that cross-module use
#: is right. Covers both attribute access and imports.
ALLOWLIST: dict[tuple[str, str], str] = {}

#: Underscore names that are documented public API of the standard library:
#: namedtuple's methods and fields.
PUBLIC_UNDERSCORE = frozenset(
    {"_asdict", "_field_defaults", "_fields", "_make", "_replace"}
)

FRONTS = ("amqp_client.aio", "amqp_client.blocking")


@dataclass(frozen=True, order=True)
class Violation:
    path: str
    line: int
    what: str  # the expression, import or comment
    name: str = ""  # the private name, for ALLOWLIST

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.what}"


def is_private(name: str) -> bool:
    if not name.startswith("_") or name in PUBLIC_UNDERSCORE:
        return False
    if name.startswith("__") and name.endswith("__"):
        return False  # dunder
    # enum sunder (_value_, _missing_, ...), but not a bare "_" or "__"
    return not (name.endswith("_") and not name.startswith("__") and len(name) > 2)


def module_name(path: str) -> str:
    """``amqp_client/aio/channel.py`` -> ``amqp_client.aio.channel``."""
    parts = PurePosixPath(path).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def folder(path: str) -> str:
    """The package a file's folder is, dotted."""
    return ".".join(PurePosixPath(path).parent.parts)


def sources() -> dict[str, str]:
    """Every hand-written runtime module: path relative to the root -> text."""
    return {
        path.relative_to(ROOT).as_posix(): path.read_text("utf-8")
        for path in sorted((ROOT / PACKAGE).rglob("*.py"))
        if "__pycache__" not in path.parts
    }


def parse(path: str, source: str) -> ast.Module:
    return ast.parse(source, path)


# --- private attributes -------------------------------------------------------------


def is_self(node: ast.expr) -> bool:
    return isinstance(node, ast.Name) and node.id in ("self", "cls")


def bound_in(body: Iterable[ast.stmt]) -> set[str]:
    """Names a module or class body binds (not those of the scopes in it)."""
    names: set[str] = set()
    todo: list[ast.AST] = list(body)
    while todo:
        node = todo.pop()
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)  # its body is another scope
            continue
        if isinstance(node, ast.Lambda):
            continue
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
        todo.extend(ast.iter_child_nodes(node))
    return names


def slots(cls: ast.ClassDef) -> set[str]:
    names: set[str] = set()
    for stmt in cls.body:
        if (
            isinstance(stmt, ast.Assign)
            and any(
                isinstance(t, ast.Name) and t.id == "__slots__" for t in stmt.targets
            )
            and isinstance(stmt.value, ast.Tuple | ast.List)
        ):
            names.update(
                e.value
                for e in stmt.value.elts
                if isinstance(e, ast.Constant) and isinstance(e.value, str)
            )
    return names


def defined_names(tree: ast.Module) -> set[str]:
    """Every attribute name the module itself defines."""
    names = bound_in(tree.body)
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Attribute)
            and isinstance(node.ctx, ast.Store)
            and is_self(node.value)
        ):
            names.add(node.attr)
        elif isinstance(node, ast.ClassDef):
            names |= bound_in(node.body) | slots(node)
    return names


def private_access(path: str, tree: ast.Module) -> Iterator[Violation]:
    own = defined_names(tree)
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Attribute)
            and is_private(node.attr)
            and not is_self(node.value)
            and node.attr not in own
        ):
            yield Violation(path, node.lineno, ast.unparse(node), node.attr)


# --- private imports ----------------------------------------------------------------


def imported(path: str, tree: ast.Module) -> Iterator[tuple[int, str, str | None]]:
    """(line, full dotted name, the module it is taken from or None for a
    plain ``import``) for every import, relative ones resolved."""
    package = folder(path).split(".")
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name, None
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base_parts = package[: len(package) - node.level + 1]
                base = ".".join([*base_parts, *([node.module] if node.module else [])])
            else:
                base = node.module or ""
            for alias in node.names:
                yield node.lineno, f"{base}.{alias.name}", base


def visible(importer: str, package: str) -> bool:
    """Whether a folder (dotted) is ``package`` or below it."""
    return not package or importer == package or importer.startswith(package + ".")


def private_imports(
    path: str, tree: ast.Module, modules: set[str], packages: set[str]
) -> Iterator[Violation]:
    """``modules``/``packages``: the dotted names the walked files define,
    to tell an imported submodule from an imported name."""
    importer = folder(path)
    for line, full, owner in imported(path, tree):
        parts = full.split(".")
        for index, part in enumerate(parts):
            if not is_private(part):
                continue
            prefix = ".".join(parts[: index + 1])
            if owner is not None and index == len(parts) - 1 and prefix not in modules:
                # A name from a module: that module's folder only.
                home = owner if owner in packages else owner.rpartition(".")[0]
                allowed = importer == home
            else:
                # A private module or package: its parent package and below.
                allowed = visible(importer, ".".join(parts[:index]))
            if not allowed:
                shown = (
                    f"from {owner} import {parts[-1]}" if owner else f"import {full}"
                )
                yield Violation(path, line, shown, part)
                break


# --- other rules --------------------------------------------------------------------

TYPE_IGNORE = re.compile(r"#\s*type:\s*ignore\b(\[[^\]]*\])?(?P<rest>.*)")
REASON = re.compile(r"\s*#\s*\S")


def unexplained_ignores(path: str, source: str) -> Iterator[Violation]:
    tokens = tokenize.generate_tokens(io.StringIO(source).readline)
    for token in tokens:
        if token.type != tokenize.COMMENT:
            continue
        match = TYPE_IGNORE.search(token.string)
        if match is not None and not REASON.match(match["rest"]):
            yield Violation(path, token.start[0], token.string)


def not_implemented(path: str, tree: ast.Module) -> Iterator[Violation]:
    for node in ast.walk(tree):
        if isinstance(node, ast.Raise) and node.exc is not None:
            exc = node.exc.func if isinstance(node.exc, ast.Call) else node.exc
            if isinstance(exc, ast.Name) and exc.id == "NotImplementedError":
                yield Violation(path, node.lineno, ast.unparse(node))


def cross_front_imports(path: str, tree: ast.Module) -> Iterator[Violation]:
    here = module_name(path)
    own = [front for front in FRONTS if visible(here, front)]
    if not own:
        return
    others = [front for front in FRONTS if front not in own]
    for line, full, owner in imported(path, tree):
        for name in (full, owner):
            if name is not None and any(visible(name, other) for other in others):
                shown = (
                    f"from {owner} import {full.rpartition('.')[2]}"
                    if owner
                    else f"import {full}"
                )
                yield Violation(path, line, shown)
                break


# --- the checks over a set of files ---------------------------------------------------


def private_violations(files: dict[str, str]) -> list[Violation]:
    """Cross-module private attributes and cross-package private imports."""
    modules = {module_name(path) for path in files}
    packages = {module_name(path) for path in files if path.endswith("/__init__.py")}
    found: list[Violation] = []
    for path, source in files.items():
        tree = parse(path, source)
        found += private_access(path, tree)
        found += private_imports(path, tree, modules, packages)
    return sorted(found)


def report(violations: Iterable[Violation]) -> str:
    lines = [str(v) for v in violations]
    return f"{len(lines)} found:\n" + "\n".join(lines)


# --- tests --------------------------------------------------------------------------


def test_the_walk_sees_the_runtime() -> None:
    files = sources()
    for path in (
        "amqp_client/__init__.py",
        "amqp_client/aio/__init__.py",
        "amqp_client/blocking/__init__.py",
        "amqp_client/protocol/core.py",
    ):
        assert path in files


def test_no_private_access_across_modules() -> None:
    found = [
        v for v in private_violations(sources()) if (v.path, v.name) not in ALLOWLIST
    ]
    assert found == [], "private names used outside their module or package, " + report(
        found
    )


def test_allowlist_entries_are_still_needed() -> None:
    used = {(v.path, v.name) for v in private_violations(sources())}
    stale = sorted(set(ALLOWLIST) - used)
    assert stale == [], f"ALLOWLIST entries nothing needs any more: {stale}"
    assert all(reason.strip() for reason in ALLOWLIST.values())


def test_type_ignores_say_why() -> None:
    found = sorted(
        v
        for path, source in sources().items()
        for v in unexplained_ignores(path, source)
    )
    assert found == [], "a `# type: ignore[...]` without `  # reason`, " + report(found)


def test_no_not_implemented_stubs() -> None:
    found = sorted(
        v
        for path, source in sources().items()
        for v in not_implemented(path, parse(path, source))
    )
    assert found == [], "raise NotImplementedError in the runtime, " + report(found)


def test_fronts_do_not_import_each_other() -> None:
    found = sorted(
        v
        for path, source in sources().items()
        for v in cross_front_imports(path, parse(path, source))
    )
    assert found == [], "aio/ and blocking/ import each other, " + report(found)


# --- the checkers on synthetic source ---------------------------------------------------

SYNTHETIC = {
    "amqp_client/__init__.py": "",
    "amqp_client/_shared.py": "def _helper() -> None: ...\nclass Shared: ...\n",
    "amqp_client/aio/__init__.py": "",
    "amqp_client/aio/connection.py": """\
import sys
from amqp_client.aio import channel

def _wait() -> None: ...

_REGISTRY: dict[str, int] = {}

class Connection:
    __slots__ = ("_slot",)
    _counter = 0

    def __init__(self, other: "Connection") -> None:
        self._channels: dict[int, object] = {}
        self.__mangled = 1
        other._channels.clear()          # same module: fine
        other._slot = 1                  # a __slots__ entry of this module: fine
        type(self)._counter += 1         # a class attribute of this module: fine
        self._from_elsewhere()           # self: always fine
        print(other.__class__, sys.__name__)  # dunders: fine
        channel.Channel()._state         # defined in channel.py only: violation
        sys._getframe()                  # stdlib private: violation
        other.__mangled                  # mangled name assigned on self here: fine
""",
    "amqp_client/aio/channel.py": """\
from amqp_client.aio.connection import _wait, Connection
from amqp_client._shared import Shared
from amqp_client import _shared
from . import connection

class Channel:
    def __init__(self, conn: Connection) -> None:
        self._state = 0
        conn._channels.clear()           # defined in connection.py: violation
        connection._REGISTRY.clear()     # module-level name of connection.py: violation
""",
    "amqp_client/blocking/__init__.py": "",
    "amqp_client/blocking/channel.py": """\
from amqp_client.aio.connection import _wait
from amqp_client._shared import _helper
from ..aio import _private_module
import amqp_client.aio._private_module
from amqp_client.aio import connection
""",
}


def test_private_checks_on_synthetic_source() -> None:
    found = [(v.path, v.line, v.what) for v in private_violations(SYNTHETIC)]
    assert found == [
        ("amqp_client/aio/channel.py", 9, "conn._channels"),
        ("amqp_client/aio/channel.py", 10, "connection._REGISTRY"),
        ("amqp_client/aio/connection.py", 20, "channel.Channel()._state"),
        ("amqp_client/aio/connection.py", 21, "sys._getframe"),
        (
            "amqp_client/blocking/channel.py",
            1,
            "from amqp_client.aio.connection import _wait",
        ),
        (
            "amqp_client/blocking/channel.py",
            2,
            "from amqp_client._shared import _helper",
        ),
        (
            "amqp_client/blocking/channel.py",
            3,
            "from amqp_client.aio import _private_module",
        ),
        (
            "amqp_client/blocking/channel.py",
            4,
            "import amqp_client.aio._private_module",
        ),
    ]


def test_private_names() -> None:
    assert is_private("_x") and is_private("__mangled") and is_private("_")
    assert not is_private("x") and not is_private("__init__")
    assert not is_private("_value_") and not is_private("_replace")


def test_other_checks_on_synthetic_source() -> None:
    ignores = """\
a = 1  # type: ignore[misc]
b = 2  # type: ignore[misc]  # the stub is wrong
c = 3  # type: ignore
d = "# type: ignore[misc]"
e = 4  # type: ignore[misc]  #
f = 5  # prose that mentions type: ignore is no directive
g = 6  # noqa: E501  # type: ignore[misc]
"""
    assert [v.line for v in unexplained_ignores("m.py", ignores)] == [1, 3, 5, 7]
    stubs = """\
def f() -> None:
    raise NotImplementedError
def g() -> None:
    raise NotImplementedError("later")
def h() -> object:
    return NotImplemented
"""
    assert [v.line for v in not_implemented("m.py", ast.parse(stubs))] == [2, 4]
    fronts = {
        "amqp_client/aio/channel.py": "from amqp_client import blocking\nfrom amqp_client import errors\n",
        "amqp_client/blocking/channel.py": "from ..aio import channel\nimport amqp_client.aio.connection\nfrom amqp_client._delivery import D\n",
        "amqp_client/_front.py": "from amqp_client import aio, blocking\n",
    }
    found = [
        (v.path, v.line)
        for path, source in fronts.items()
        for v in cross_front_imports(path, ast.parse(source))
    ]
    assert found == [
        ("amqp_client/aio/channel.py", 1),
        ("amqp_client/blocking/channel.py", 1),
        ("amqp_client/blocking/channel.py", 2),
    ]
