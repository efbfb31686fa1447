"""The ``python -m amqp_client`` command line.

``doc`` shows the spec's documentation of a method, a class or the content
properties, as generated into ``amqp_client.spec``; ``doc --list`` lists
every class and method. Output fits an 80-column terminal. This module only
formats text; it talks to no broker.
"""

from __future__ import annotations

import argparse
import inspect
import sys
from collections.abc import Sequence
from typing import TextIO

from amqp_client import spec
from amqp_client._spec_base import Method

WIDTH = 80


def _classes() -> dict[int, list[type[Method]]]:
    grouped: dict[int, list[type[Method]]] = {}
    for cls in spec.METHODS.values():
        grouped.setdefault(cls.CLASS_ID, []).append(cls)
    return grouped


def _class_module_doc(class_id: int) -> str:
    first = _classes()[class_id][0]
    module = sys.modules[first.__module__]
    return inspect.cleandoc(module.__doc__ or "")


def list_methods(out: TextIO) -> None:
    """Every class and method: ids, direction, label."""
    for class_id, methods in sorted(_classes().items()):
        class_name = methods[0].NAME.split(".")[0]
        summary = _class_module_doc(class_id).splitlines()[0]
        label = summary.split(": ", 1)[-1] if ": " in summary else summary
        out.write(f"{class_name} ({class_id}): {label}\n")
        for cls in sorted(methods, key=lambda c: c.METHOD_ID):
            label = (cls.__doc__ or "").strip().splitlines()[0].rstrip(".")
            flags = "sync" if cls.SYNCHRONOUS else ""
            if cls.HAS_CONTENT:
                flags = (flags + " content").strip()
            line = f"  {cls.NAME:<24} {class_id}/{cls.METHOD_ID:<4} {label}"
            if flags:
                line += f" [{flags}]"
            if len(line) > WIDTH:
                line = line[: WIDTH - 3] + "..."
            out.write(line + "\n")
    for props in spec.PROPERTIES.values():
        out.write(f"\n{props.__name__}: {len(props.FIELDS)} content properties\n")
        out.write(f"  (python -m amqp_client doc {props.NAME.split()[0]}.properties)\n")


def show(name: str, out: TextIO) -> bool:
    """Print the documentation of a method, a class or a properties class."""
    key = name.strip().lower().replace("_", "-")
    if key in spec.BY_NAME:
        cls = spec.BY_NAME[key]
        out.write(f"{cls.NAME} ({cls.CLASS_ID}/{cls.METHOD_ID}): {cls.__name__}\n")
        out.write("=" * min(WIDTH, len(cls.NAME) + 30) + "\n\n")
        out.write(inspect.cleandoc(cls.__doc__ or "") + "\n")
        return True
    for props in spec.PROPERTIES.values():
        if key in (f"{props.NAME.split()[0]}.properties", props.__name__.lower()):
            out.write(f"{props.__name__} (class {props.CLASS_ID})\n\n")
            out.write(inspect.cleandoc(props.__doc__ or "") + "\n")
            return True
    for class_id, methods in _classes().items():
        if methods[0].NAME.split(".")[0] == key:
            out.write(_class_module_doc(class_id) + "\n\nMethods:\n")
            for cls in sorted(methods, key=lambda c: c.METHOD_ID):
                label = (cls.__doc__ or "").strip().splitlines()[0]
                out.write(f"  {cls.NAME:<24} {label}\n")
            return True
    return False


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m amqp_client", description="amqp-client command line"
    )
    commands = parser.add_subparsers(dest="command", required=True)
    doc = commands.add_parser(
        "doc",
        help="show the AMQP spec's documentation of a method or class",
        description="Show the spec text of a method (queue.declare), a class "
        "(basic) or content properties (basic.properties).",
    )
    doc.add_argument(
        "name", nargs="?", help="e.g. queue.declare, basic, basic.properties"
    )
    doc.add_argument("--list", action="store_true", help="list every class and method")
    args = parser.parse_args(argv)
    try:
        return _run(args)
    except BrokenPipeError:  # `... | head`: the reader went away
        sys.stderr.close()
        return 0


def _run(args: argparse.Namespace) -> int:
    if args.command == "doc":
        if args.list or not args.name:
            list_methods(sys.stdout)
            return 0
        if not show(args.name, sys.stdout):
            close = [n for n in spec.BY_NAME if args.name.split(".")[-1] in n][:5]
            hint = f" (did you mean {', '.join(close)}?)" if close else ""
            sys.stderr.write(f"unknown method or class: {args.name}{hint}\n")
            return 2
    return 0
