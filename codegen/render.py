"""Render the plans through the jinja2 templates; write generated/ and the reference.

Two outputs come from one spec: the package tree (generated/, importable as
``amqp_client.spec``) and the Markdown reference (docs/reference.md in a
checkout). Rendering is pure (plans in, ``{path: text}`` and the reference's
text out); :func:`write` renders everything before it writes anything, then
writes the tree to a temporary directory next to the target and swaps it
in, and the reference to a temporary file it renames over the old one, so
an error never leaves a half-written output. :func:`check` compares without
writing and reports the stale files with a diff. Where the reference goes is
the caller's choice (``reference=None`` renders the package only): the
library does not guess the checkout from the package's target.

Owns: the templates' environment, each file's context (imports from the
plan's recorded names, through codegen.imports) and the last step,
``ruff format``. It computes no code of its own and never reads what it
rendered to decide anything.
"""

from __future__ import annotations

import difflib
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path

import jinja2

from codegen import api as api_plan
from codegen import codec, docs, naming
from codegen import fields as fields_plan
from codegen import imports as imports_of
from codegen import plan as planning
from codegen import reference as referencing
from codegen.model import Spec

TEMPLATES = Path(__file__).parent / "templates"
LINE = 88

#: The last step of rendering: ``ruff format`` with the project's settings
#: (line length and target version from pyproject.toml's [tool.ruff]), given
#: on the command line with ``--isolated`` so that no configuration file
#: found near the output changes a byte. The templates place the code; ruff
#: wraps it. ruff is pinned in the ``codegen`` extra: another ruff version
#: may wrap differently, which ``make check-generated`` would report.
RUFF_FORMAT = (
    "-m",
    "ruff",
    "format",
    "--isolated",
    "--quiet",
    f"--line-length={LINE}",
    "--target-version=py311",
)


def defline(
    params: tuple[str, ...] | list[str],
    name: str,
    returns: str,
    aio: bool = False,
    static: bool = False,
) -> str:
    """A ``def`` line, wrapped one parameter per line when it is too long."""
    keyword = "async def" if aio else "def"
    allparams = [*params] if static else ["self", *params]
    one = f"{keyword} {name}({', '.join(allparams)}) -> {returns}:"
    if len(one) + 4 <= LINE:
        return one
    inner = "\n".join(f"    {p}," if p != "*" else "    *," for p in allparams)
    return f"{keyword} {name}(\n{inner}\n) -> {returns}:"


def pytuple(items: tuple[object, ...]) -> str:
    """A tuple literal with the code base's double-quoted strings."""
    inner = ", ".join(fields_plan.py_repr(item) for item in items)
    return f"({inner},)" if len(items) == 1 else f"({inner})"


def docrepr(text: str) -> str:
    """A string literal for a field's doc text."""
    return repr(" ".join(text.split()))


def isorted(names: list[str] | tuple[str, ...]) -> list[str]:
    """Names in the order ruff's isort wants them inside one import."""
    return sorted(names, key=imports_of.isort_key)


#: The names the methods template writes itself into every method module
#: (the plan's ``uses`` has the rest).
METHOD_TEMPLATE_NAMES = (
    "Buffer",
    "ClassVar",
    "Field",
    "Method",
    "c_decode_fields",
    "c_layout",
    "decode_error",
    "encode_error",
    "new_object",
)

#: The names the properties template writes itself.
PROPERTIES_TEMPLATE_NAMES = (
    "Buffer",
    "ClassVar",
    "Field",
    "Properties",
    "decode_error",
    "encode_error",
    "new_object",
)


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        autoescape=False,
    )
    env.filters["pyrepr"] = fields_plan.py_repr
    env.filters["pytuple"] = pytuple
    env.filters["docrepr"] = docrepr
    env.filters["defline"] = defline
    env.filters["isorted"] = isorted
    return env


def render(spec: Spec, *, hooks: Mapping[str, str] = api_plan.HOOKS) -> dict[str, str]:
    """Render every file of the package; returns ``{relative path: text}``.

    ``hooks``: which methods hand over to which runtime hook (see
    :data:`codegen.api.HOOKS`, the default).
    """
    return _render_package(planning.build(spec, hooks), _environment())


def render_reference(spec: Spec, *, hooks: Mapping[str, str] = api_plan.HOOKS) -> str:
    """Render the Markdown reference (docs/reference.md) of ``spec``."""
    return _render_reference(planning.build(spec, hooks), _environment())


def _render_reference(plan: planning.SpecPlan, env: jinja2.Environment) -> str:
    return env.get_template("reference.md.j2").render(ref=referencing.build(plan))


def _render_package(plan: planning.SpecPlan, env: jinja2.Environment) -> dict[str, str]:
    spec = plan.spec
    common = {"header": plan.header, "spec": spec}
    out: dict[str, str] = {}
    out["constants.py"] = env.get_template("constants.py.j2").render(
        **common,
        constants=plan.constants,
        reply_codes=plan.reply_codes,
        class_ids=plan.class_ids,
    )
    out["errors.py"] = env.get_template("errors.py.j2").render(
        **common, errors=plan.errors
    )
    for module in plan.modules:
        doc = docs.text_of(module.amqp_class.docs)
        class_doc = "\n".join(docs.fill(doc)) if doc else ""
        grammar = docs.grammar(module.amqp_class.docs)
        if grammar:
            class_doc += "\n\nGrammar::\n\n" + "\n".join(grammar)
        local = sorted({m.properties_class for m in module.methods} - {""})
        imports = imports_of.import_lines({*module.uses, *METHOD_TEMPLATE_NAMES})
        if local:
            imports += ["", f"from ..properties import {', '.join(local)}"]
        out[f"methods/{module.module}.py"] = env.get_template(
            "methods_class.py.j2"
        ).render(
            **common,
            module=module,
            imports=imports,
            class_doc=docs.escape(class_doc),
        )
    method_names = [m.class_name for m in plan.methods]
    out["methods/__init__.py"] = env.get_template("methods_init.py.j2").render(
        **common, modules=plan.modules, methods=plan.methods, method_names=method_names
    )
    out["properties.py"] = env.get_template("properties.py.j2").render(
        **common,
        properties=plan.properties,
        structs=plan.property_structs,
        imports=imports_of.import_lines(
            {*plan.property_uses, *PROPERTIES_TEMPLATE_NAMES}
        ),
    )
    api_classes = sorted(
        {
            a.method.class_name
            for a in (*plan.channel_api, *plan.connection_api)
            if a.kind != "publish"
        }
        | {
            r
            for a in (*plan.channel_api, *plan.connection_api)
            if a.kind in ("rpc", "rpc_no_wait")
            for r in a.method.responses
        }
    )
    out["api.py"] = env.get_template("api.py.j2").render(
        **common,
        channel_api=plan.channel_api,
        connection_api=plan.connection_api,
        channel_hooks=plan.channel_hooks,
        api_classes=api_classes,
        properties_classes=sorted(
            {
                naming.properties_class_name(a.method.amqp_class.name)
                for a in (*plan.channel_api, *plan.connection_api)
                if a.kind == "publish"
            }
        ),
    )
    all_names = (
        [
            "AsyncChannelMethods",
            "AsyncConnectionMethods",
            "ChannelMethods",
            "ConnectionMethods",
            "DEFAULT_PORT",
            "HARD_ERRORS",
            "PROTOCOL_VERSION",
            "SOFT_ERRORS",
            "ClassId",
            "ReplyCode",
            "ERRORS_BY_CODE",
            "channel_error",
            "connection_error",
            "BY_NAME",
            "METHODS",
            "PROPERTIES",
        ]
        + [name for name, _, _ in plan.constants]
        + [e.class_name for e in plan.errors]
        + method_names
        + [p.class_name for p in plan.properties]
    )
    out["__init__.py"] = env.get_template("init.py.j2").render(
        **common,
        constants=plan.constants,
        errors=plan.errors,
        method_names=method_names,
        properties=plan.properties,
        all_names=sorted(set(all_names)),
        constant_imports=[
            "DEFAULT_PORT",
            "HARD_ERRORS",
            "PROTOCOL_VERSION",
            "SOFT_ERRORS",
            "ClassId",
            "ReplyCode",
            *(name for name, _, _ in plan.constants),
        ],
        error_imports=[
            "ERRORS_BY_CODE",
            "channel_error",
            "connection_error",
            *(e.class_name for e in plan.errors),
        ],
    )
    out["spec.h"] = env.get_template("spec.h.j2").render(
        header=plan.header,
        framing=[
            (n, v)
            for n, v, error in plan.constants
            if n.startswith("FRAME_") and not error
        ],
        kinds=list(codec.C_KINDS.items()),
    )
    out["py.typed"] = ""
    return format_python({path: out[path] for path in sorted(out)})


def format_python(files: Mapping[str, str]) -> dict[str, str]:
    """``files`` with each Python module passed through ruff format.

    Raises:
        RuntimeError: ruff is missing (it comes with the ``codegen`` extra)
            or refused a module (a template wrote invalid Python).
    """
    with tempfile.TemporaryDirectory(prefix="codegen-format-") as tmp:
        root = Path(tmp)
        modules = [path for path in files if path.endswith(".py")]
        for path in modules:
            dest = root / path
            dest.parent.mkdir(parents=True, exist_ok=True)
            dest.write_text(files[path], encoding="utf-8", newline="\n")
        done = subprocess.run(
            [sys.executable, *RUFF_FORMAT, str(root)],
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(
                "ruff format failed on the generated code (ruff comes with the "
                f"codegen extra): {done.stderr.strip() or done.stdout.strip()}"
            )
        formatted = {
            path: (root / path).read_text(encoding="utf-8") for path in modules
        }
    return {path: formatted.get(path, text) for path, text in files.items()}


def _existing(target: Path) -> dict[str, str]:
    if not target.is_dir():
        return {}
    return {
        str(p.relative_to(target)): p.read_text(encoding="utf-8")
        for p in sorted(target.rglob("*"))
        if p.is_file() and "__pycache__" not in p.parts
    }


def _render_all(
    spec: Spec, reference: Path | None, hooks: Mapping[str, str]
) -> tuple[dict[str, str], str | None]:
    plan = planning.build(spec, hooks)
    env = _environment()
    files = _render_package(plan, env)
    text = _render_reference(plan, env) if reference is not None else None
    return files, text


def _stale(path: Path, old: str | None, new: str) -> list[str]:
    """The report for one stale file: a ``stale:`` line, then a unified diff."""
    return [
        f"stale: {path}\n",
        *difflib.unified_diff(
            (old or "").splitlines(keepends=True),
            new.splitlines(keepends=True),
            fromfile=f"{path} (committed)",
            tofile=f"{path} (generated)",
        ),
    ]


def check(
    spec: Spec,
    target: Path,
    reference: Path | None = None,
    *,
    hooks: Mapping[str, str] = api_plan.HOOKS,
) -> list[str]:
    """Compare ``target`` (and ``reference``, if given) with a fresh render.

    Returns diff lines, empty if everything is fresh; each stale file starts
    with a line ``stale: <path>``. A missing reference file is stale.
    """
    fresh, fresh_reference = _render_all(spec, reference, hooks)
    current = _existing(target)
    diff: list[str] = []
    for path in sorted(set(fresh) | set(current)):
        old, new = current.get(path), fresh.get(path)
        if old == new:
            continue
        if new is None:
            diff.append(f"stale: {target / path} is not generated any more\n")
            continue
        diff.extend(_stale(target / path, old, new))
    if reference is not None and fresh_reference is not None:
        old = reference.read_text(encoding="utf-8") if reference.is_file() else None
        if old != fresh_reference:
            diff.extend(_stale(reference, old, fresh_reference))
    return diff


def write(
    spec: Spec,
    target: Path,
    reference: Path | None = None,
    *,
    hooks: Mapping[str, str] = api_plan.HOOKS,
) -> list[str]:
    """Render into a temporary directory and swap it in place of ``target``.

    With ``reference``, also write the Markdown reference to that file
    (through a temporary file renamed over it; its directory is created).
    Nothing is written unless everything rendered. Returns the paths written
    relative to ``target``; the reference, if written, is not among them.
    """
    files, reference_text = _render_all(spec, reference, hooks)
    target = target.resolve()
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        for path, text in files.items():
            dest = staging / path
            dest.parent.mkdir(parents=True, exist_ok=True)
            dest.write_text(text, encoding="utf-8", newline="\n")
        old = None
        if target.exists():
            old = target.with_name(f".{target.name}.old")
            if old.exists():
                shutil.rmtree(old)
            target.rename(old)
        staging.rename(target)
        if old is not None:
            shutil.rmtree(old)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    if reference is not None and reference_text is not None:
        _write_file(reference, reference_text)
    return list(files)


def _write_file(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically: a temporary file, then a rename."""
    path = path.resolve()
    path.parent.mkdir(parents=True, exist_ok=True)
    # Named by process id, in the same directory (so the rename is atomic),
    # and created by open() so that it gets the umask's mode.
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        temporary.write_text(text, encoding="utf-8", newline="\n")
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
