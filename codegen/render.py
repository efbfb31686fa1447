"""Render the plans through the jinja2 templates and write generated/.

Rendering is pure (plans in, ``{path: text}`` out); :func:`write` renders to
a temporary directory next to the target and swaps it in, so an error never
leaves a half-written tree; :func:`check` compares without writing and
reports the stale files with a diff.
"""

from __future__ import annotations

import difflib
import re
import shutil
import tempfile
from pathlib import Path

import jinja2

from codegen import docs, naming
from codegen import plan as planning
from codegen.model import Spec

TEMPLATES = Path(__file__).parent / "templates"
LINE = 88

_SPEC_BASE = (
    "OCTETS",
    "REQUIRED",
    "Buffer",
    "Field",
    "Method",
    "Properties",
    "bit_value",
    "check_bit",
    "check_int",
    "check_longstr",
    "check_shortstr",
    "check_table",
    "check_timestamp",
    "decode_error",
    "encode_error",
)
_WIRE = ("decode_table", "decode_timestamp", "encode_table", "encode_timestamp")


def defline(
    params: tuple[str, ...] | list[str], name: str, returns: str, aio: bool = False
) -> str:
    """A ``def`` line, wrapped one parameter per line when it is too long."""
    keyword = "async def" if aio else "def"
    allparams = ["self", *params]
    one = f"{keyword} {name}({', '.join(allparams)}) -> {returns}:"
    if len(one) + 4 <= LINE:
        return one
    inner = "\n".join(f"    {p}," if p != "*" else "    *," for p in allparams)
    return f"{keyword} {name}(\n{inner}\n) -> {returns}:"


def docrepr(text: str) -> str:
    """A string literal for a field's doc text."""
    return repr(" ".join(text.split()))


def _uses(text: str, name: str) -> bool:
    return re.search(rf"\b{re.escape(name)}\b", text) is not None


def _imports(text: str, extra_typing: tuple[str, ...] = ()) -> list[str]:
    """The import block a generated module needs, in isort order."""
    stdlib_plain = [m for m in ("datetime", "struct") if m + "." in text]
    typing = sorted(
        {n for n in ("Any", "ClassVar") if _uses(text, n)} | set(extra_typing)
    )
    lines = [f"import {m}" for m in stdlib_plain]
    if _uses(text, "Mapping"):
        lines.append("from collections.abc import Mapping")
    if typing:
        lines.append(f"from typing import {', '.join(typing)}")
    base = [n for n in _SPEC_BASE if _uses(text, n)]
    wire = [n for n in _WIRE if _uses(text, n)]
    first_party = []
    if base:
        first_party.append(
            "from amqp_client._spec_base import (\n"
            + "".join(f"    {n},\n" for n in sorted(base, key=_isort_key))
            + ")"
        )
    if "FrameDecodeError" in text:
        first_party.append("from amqp_client.errors import FrameDecodeError")
    if wire:
        one = f"from amqp_client.wire import {', '.join(wire)}"
        if len(one) > LINE:
            one = (
                "from amqp_client.wire import (\n"
                + "".join(f"    {n},\n" for n in wire)
                + ")"
            )
        first_party.append(one)
    return lines + ([""] if lines and first_party else []) + first_party


def _isort_key(name: str) -> tuple[int, str]:
    # isort's order-by-type as ruff applies it: CONSTANTS, then Classes,
    # then functions and variables, each case-insensitively.
    if name.isupper():
        return (0, name.lower())
    if name[0].isupper():
        return (1, name.lower())
    return (2, name.lower())


def isorted(names: list[str] | tuple[str, ...]) -> list[str]:
    """Names in the order ruff's isort wants them inside one import."""
    return sorted(names, key=_isort_key)


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        autoescape=False,
    )
    env.filters["pyrepr"] = planning.py_repr
    env.filters["docrepr"] = docrepr
    env.filters["defline"] = defline
    env.filters["isorted"] = isorted
    return env


def _module_text(m: planning.MethodPlan) -> str:
    return "\n".join(
        [
            *m.init_lines,
            *m.encode_lines,
            *m.decode_lines,
            *m.signature,
            "ClassVar",
            "Field",
        ]
        + [f.default_src for f in m.fields]
        + [f.annotation for f in m.fields]
        + ["REQUIRED" if any(f.required for f in m.fields) else ""]
        + ["Buffer Method decode_error encode_error"]
    )


def render(spec: Spec) -> dict[str, str]:
    """Render every generated file; returns ``{relative path: text}``."""
    plan = planning.build(spec)
    env = _environment()
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
        text = "\n".join(_module_text(m) for m in module.methods)
        if module.structs:
            text += "\nstruct."
        doc = docs.text_of(module.amqp_class.docs)
        class_doc = "\n".join(docs.fill(doc)) if doc else ""
        grammar = docs.grammar(module.amqp_class.docs)
        if grammar:
            class_doc += "\n\nGrammar::\n\n" + "\n".join(grammar)
        out[f"methods/{module.module}.py"] = env.get_template(
            "methods_class.py.j2"
        ).render(
            **common,
            module=module,
            imports=_imports(text),
            class_doc=docs.escape(class_doc),
        )
    method_names = [m.class_name for m in plan.methods]
    out["methods/__init__.py"] = env.get_template("methods_init.py.j2").render(
        **common, modules=plan.modules, methods=plan.methods, method_names=method_names
    )
    prop_text = "\n".join(
        "\n".join([*p.init_lines, *p.encode_lines, *p.decode_lines, *p.signature])
        + "\n".join(f.annotation for f in p.fields)
        for p in plan.properties
    )
    prop_text += "\nClassVar Field Properties Buffer decode_error encode_error struct."
    out["properties.py"] = env.get_template("properties.py.j2").render(
        **common,
        properties=plan.properties,
        structs=plan.property_structs,
        imports=_imports(prop_text),
    )
    api_classes = sorted(
        {a.method.class_name for a in (*plan.channel_api, *plan.connection_api)}
        | {
            r
            for a in (*plan.channel_api, *plan.connection_api)
            if a.kind in ("rpc", "rpc_no_wait") and a.returns != "object"
            for r in a.method.responses
        }
    )
    out["api.py"] = env.get_template("api.py.j2").render(
        **common,
        channel_api=plan.channel_api,
        connection_api=plan.connection_api,
        api_classes=api_classes,
        properties_classes=sorted(
            {
                naming.properties_class_name(a.method.amqp_class.name)
                for a in (*plan.channel_api, *plan.connection_api)
                if a.kind == "content"
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
    out["py.typed"] = ""
    return {path: out[path] for path in sorted(out)}


def _existing(target: Path) -> dict[str, str]:
    if not target.is_dir():
        return {}
    return {
        str(p.relative_to(target)): p.read_text(encoding="utf-8")
        for p in sorted(target.rglob("*"))
        if p.is_file() and "__pycache__" not in p.parts
    }


def check(spec: Spec, target: Path) -> list[str]:
    """Compare ``target`` with a fresh render; return diff lines (empty if fresh)."""
    fresh = render(spec)
    current = _existing(target)
    diff: list[str] = []
    for path in sorted(set(fresh) | set(current)):
        old, new = current.get(path), fresh.get(path)
        if old == new:
            continue
        if new is None:
            diff.append(f"stale: {target / path} is not generated any more\n")
            continue
        diff.append(f"stale: {target / path}\n")
        diff.extend(
            difflib.unified_diff(
                (old or "").splitlines(keepends=True),
                new.splitlines(keepends=True),
                fromfile=f"{target / path} (committed)",
                tofile=f"{target / path} (generated)",
            )
        )
    return diff


def write(spec: Spec, target: Path) -> list[str]:
    """Render into a temporary directory and swap it in place of ``target``.

    Returns the relative paths written.
    """
    files = render(spec)
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
    return list(files)
