"""The import block of a generated module, from the names its plan uses.

The plan records every runtime name the code it writes calls (the codec
emitters, the constructor checks, the annotations); the templates add the
names they write themselves. This module knows where each name comes from
and writes the block in the order ruff's isort wants. It never looks at
rendered text.
"""

from __future__ import annotations

from collections.abc import Iterable

#: Where each name a generated module may use is imported from. A plain
#: module (``import struct``) maps to None.
SOURCES: dict[str, str | None] = {
    "datetime": None,
    "struct": None,
    "Mapping": "collections.abc",
    "Any": "typing",
    "ClassVar": "typing",
    **{
        name: "amqp_client._spec_base"
        for name in (
            "OCTETS",
            "REQUIRED",
            "Buffer",
            "Field",
            "Method",
            "Properties",
            "bit_value",
            "c_decode_fields",
            "c_decode_properties",
            "c_encode_properties",
            "c_layout",
            "check_bit",
            "check_int",
            "check_longstr",
            "check_shortstr",
            "check_table",
            "check_timestamp",
            "decode_error",
            "encode_error",
            "new_object",
        )
    },
    "FrameDecodeError": "amqp_client.errors",
    "content_frames": "amqp_client.frames",
    **{
        name: "amqp_client.wire"
        for name in (
            "NAMES",
            "decode_table",
            "decode_timestamp",
            "encode_table",
            "encode_timestamp",
            "name_from",
        )
    },
}

_STDLIB = ("collections.abc", "typing")


def isort_key(name: str) -> tuple[int, str]:
    """isort's order-by-type as ruff applies it: CONSTANTS, then Classes,
    then functions and variables, each case-insensitively."""
    if name.isupper():
        return (0, name.lower())
    if name[0].isupper():
        return (1, name.lower())
    return (2, name.lower())


def import_lines(names: Iterable[str]) -> list[str]:
    """The import block (stdlib, a blank line, first party) for ``names``.

    Raises:
        KeyError: a name this module does not know the source of.
    """
    by_module: dict[str | None, set[str]] = {}
    for name in names:
        by_module.setdefault(SOURCES[name], set()).add(name)
    stdlib = [f"import {name}" for name in sorted(by_module.pop(None, set()))]
    modules = {module: names for module, names in by_module.items() if module}
    stdlib += [_from(m, modules.pop(m)) for m in _STDLIB if m in modules]
    first_party = [_from(module, modules[module]) for module in sorted(modules)]
    return stdlib + ([""] if stdlib and first_party else []) + first_party


def _from(module: str, names: set[str]) -> str:
    # One line; ruff format, the last step of rendering, wraps it.
    return f"from {module} import {', '.join(sorted(names, key=isort_key))}"
