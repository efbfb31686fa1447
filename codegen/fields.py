"""Plan the fields of a method or of content properties: Python names,
annotations, defaults, signatures and the constructor's checks.

Owns: the AMQP type -> Python annotation table, the name-sharing rule
(``wire.NAMES``), spec defaults and :class:`PlanField`. Pure: no I/O, no
jinja2, no codec bodies (codegen.codec), no docstrings (codegen.docstrings).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from codegen import docs, naming
from codegen.model import AMQPClass, Field, Method, Spec, SpecError

#: Python annotation of each AMQP primitive type.
ANNOTATIONS = {
    "bit": "bool",
    "octet": "int",
    "short": "int",
    "long": "int",
    "longlong": "int",
    "timestamp": "datetime.datetime | int",
    "shortstr": "str",
    "longstr": "bytes",
    "table": "dict[str, Any]",
}

#: Parameter annotation of each type where it differs from the attribute's.
PARAM_ANNOTATIONS = {"table": "Mapping[str, Any]"}

_INT_MAX = {"octet": 1 << 8, "short": 1 << 16, "long": 1 << 32, "longlong": 1 << 64}
_ZERO: dict[str, Any] = {
    "bit": False,
    "octet": 0,
    "short": 0,
    "long": 0,
    "longlong": 0,
    "shortstr": "",
    "longstr": b"",
    "table": None,
}

#: Defaults the spec text leaves open, chosen as pika, pamqp and the Java
#: client do, so that ``exchange_declare("logs")`` is a direct exchange rather
#: than a connection error for the empty type.
CLIENT_DEFAULTS: dict[tuple[str, str, str], Any] = {
    ("exchange", "declare", "type"): "direct",
}


#: shortstr fields that name things: consumers, exchanges and queues (by
#: their domain), routes, content, message and exchange types, and
#: applications (by field name).
#: The same few values arrive with message after message, so decoders share
#: one str per value through ``wire.NAMES`` instead of making a copy each
#: time. Values unique to a message (message-id, correlation-id) and free
#: text (reply-text) are decoded as they come.
NAME_DOMAINS = frozenset({"consumer-tag", "exchange-name", "queue-name"})
NAME_FIELDS = frozenset(
    {
        "routing_key",
        "content_type",
        "content_encoding",
        "type",
        "user_id",
        "app_id",
        "reply_to",
    }
)


@dataclass(frozen=True)
class PlanField:
    spec: Field
    name: str
    spec_name: str
    type: str
    reserved: bool
    annotation: str
    default: Any
    required: bool
    keyword_only: bool
    label: str
    doc: str

    @property
    def default_src(self) -> str:
        return "REQUIRED" if self.required else py_repr(self.default)

    @property
    def param(self) -> str:
        """The parameter as written in a signature."""
        if self.type == "table":
            return f"{self.name}: {PARAM_ANNOTATIONS['table']} | None = None"
        if self.required:
            return f"{self.name}: {self.annotation}"
        return f"{self.name}: {self.annotation} = {py_repr(self.default)}"


def is_name(f: PlanField) -> bool:
    """Whether a shortstr field's values are shared through ``wire.NAMES``."""
    return f.type == "shortstr" and (
        f.spec.domain in NAME_DOMAINS or f.name in NAME_FIELDS
    )


# --- fields ------------------------------------------------------------------


def _default(cls: AMQPClass, method: Method, fld: Field) -> Any:
    key = (cls.name, method.name, fld.name)
    if key in CLIENT_DEFAULTS:
        return CLIENT_DEFAULTS[key]
    if fld.default is not None:
        raw = fld.default
        if fld.type == "bit":
            return raw in ("1", "true")
        if fld.type in _INT_MAX:
            return int(raw)
        if fld.type == "longstr":
            return raw.encode()
        if fld.type == "shortstr":
            return raw
        raise SpecError(f"{fld.source}: a default is not supported for type {fld.type}")
    if fld.type == "timestamp":
        raise SpecError(f"{fld.source}: a timestamp method field needs a default")
    return _ZERO[fld.type]


def py_repr(value: Any) -> str:
    """repr() with double-quoted strings, as the rest of the code base."""
    if isinstance(value, str) and '"' not in value and "\\" not in value:
        return f'"{value}"'
    return repr(value)


def _field_texts(spec: Spec | None, fld: Field) -> tuple[str, str]:
    """The field's label and doc, falling back to its domain's."""
    label, doc = fld.label, docs.text_of(fld.docs)
    if spec is not None and (not label or not doc):
        try:
            domain = spec.domain(fld.domain)
        except KeyError:
            return label, doc
        label = label or domain.label
        doc = doc or docs.text_of(domain.docs)
    return label, doc


def plan_fields(
    cls: AMQPClass, method: Method, spec: Spec | None = None
) -> tuple[PlanField, ...]:
    """Every field of ``method`` in wire order, reserved ones included.

    Non-bit, non-table fields are positional-or-keyword in spec order, bits
    and tables keyword-only. A field with a notnull assert has no default;
    positional fields before a required one become required too, since
    Python allows no required positional parameter after a defaulted one.
    """
    planned: list[PlanField] = []
    for fld in method.fields:
        if fld.type not in ANNOTATIONS:
            raise SpecError(f"{fld.source}: unsupported type {fld.type!r}")
        name = naming.python_name(fld.name)
        keyword_only = fld.type in ("bit", "table")
        label, doc = _field_texts(spec, fld)
        required = fld.required and not keyword_only and not fld.reserved
        if (cls.name, method.name, fld.name) in CLIENT_DEFAULTS:
            required = False
        planned.append(
            PlanField(
                spec=fld,
                name=name,
                spec_name=fld.name,
                type=fld.type,
                reserved=fld.reserved,
                annotation=ANNOTATIONS[fld.type],
                default=_default(cls, method, fld),
                required=required,
                keyword_only=keyword_only,
                label=label,
                doc=doc,
            )
        )
    last_required = max(
        (i for i, f in enumerate(planned) if f.required and not f.keyword_only),
        default=-1,
    )
    result = []
    for i, f in enumerate(planned):
        if (
            i < last_required
            and not f.keyword_only
            and not f.reserved
            and not f.required
        ):
            f = PlanField(**{**f.__dict__, "required": True})
        result.append(f)
    names = [f.name for f in result if not f.reserved]
    if len(set(names)) != len(names):
        raise SpecError(f"{method.source}: two fields map to the same Python name")
    return tuple(result)


def signature(
    fields: tuple[PlanField, ...], extra_kw: tuple[str, ...] = ()
) -> tuple[str, ...]:
    """Parameters in order: positional ones, then ``*`` and keyword-only."""
    public = [f for f in fields if not f.reserved]
    positional = [f.param for f in public if not f.keyword_only]
    keyword_only = [f.param for f in public if f.keyword_only] + list(extra_kw)
    return tuple(positional + (["*", *keyword_only] if keyword_only else []))


def _fast_check(f: PlanField) -> str | None:
    """A cheap test that a constructor argument is valid as it is (None: no
    such test; the check function always runs)."""
    n = f.name
    if f.type == "shortstr":
        # An ASCII string is its own UTF-8 (one byte a character, no lone
        # surrogates): only other strings need encoding to check them.
        return f"isinstance({n}, str) and len({n}) < 256 and {n}.isascii()"
    if f.type == "longstr":
        return f"isinstance({n}, bytes)"
    if f.type in _INT_MAX:
        # The exact-class test keeps bool (an int subclass) and IntEnum off
        # the fast path: check_int rejects the one and converts the other.
        return f"{n}.__class__ is int and 0 <= {n} < {_INT_MAX[f.type]:#x}"
    if f.type == "bit":
        return f"{n} is True or {n} is False"
    if f.type == "table":
        return f"isinstance({n}, dict)"
    if f.type == "timestamp":
        return None
    raise AssertionError(f.type)


#: The function of amqp_client._spec_base that checks (and converts) a
#: constructor argument of each type that has no fast path of its own.
_CHECKS = {
    "shortstr": "check_shortstr",
    "longstr": "check_longstr",
    "bit": "check_bit",
    "table": "check_table",
    "timestamp": "check_timestamp",
}


def check_function(type_: str) -> str:
    """The name of the check function for an argument of AMQP type ``type_``."""
    return "check_int" if type_ in _INT_MAX else _CHECKS[type_]


def field_uses(fields: Sequence[PlanField]) -> set[str]:
    """The names a generated class's constructor, annotations and ``FIELDS``
    need for ``fields``: check functions, typing names, ``REQUIRED``."""
    uses: set[str] = set()
    for f in fields:
        if f.reserved:
            continue
        uses.add(check_function(f.type))
        if f.type == "table":
            uses.update(("Any", "Mapping"))
        if f.type == "timestamp":
            uses.add("datetime")
        if f.required:
            uses.add("REQUIRED")
    return uses


def _check_call(f: PlanField) -> str:
    """The call that checks (and converts) an argument or raises."""
    n = f.name
    if f.type in _INT_MAX:
        return f'check_int({n}, "{n}", "{f.type}")'
    return f'{check_function(f.type)}({n}, "{n}")'


def _init_statement(f: PlanField, optional: bool) -> list[str]:
    """The constructor's statement for one field: keep a value that passes
    the fast test, check (or convert) anything else. No nested conditional
    expressions: a default (None, an empty table) is its own branch."""
    n, target = f.name, f"self.{f.name}"
    fast, call = _fast_check(f), _check_call(f)
    if optional:
        if fast is None:
            keep = f"{n} is None"
        elif " and " in fast or " or " in fast:
            keep = f"{n} is None or ({fast})"
        else:
            keep = f"{n} is None or {fast}"
    elif f.type == "table":
        return [
            f"if {n} is None:",
            f"    {target} = {{}}",
            f"elif {fast}:",
            f"    {target} = {n}",
            "else:",
            f"    {target} = {call}",
        ]
    elif fast is None:
        return [f"{target} = {call}"]
    else:
        return [f"{target} = {n} if {fast} else {call}"]
    return [f"if {keep}:", f"    {target} = {n}", "else:", f"    {target} = {call}"]


def init_lines(
    fields: tuple[PlanField, ...], optional: bool = False
) -> tuple[str, ...]:
    lines = []
    for f in fields:
        if f.reserved:
            continue
        lines += _init_statement(f, optional)
    return tuple(lines) or ("pass",)
