"""Turn the spec model into render-ready plans. Pure: no I/O, no jinja2.

The templates only place what this module computes: Python names and
annotations, signatures, docstrings and the bodies of the specialised
codecs. The codec rules (AMQP 0-9-1 §4.2.5):

* fixed-size fields (octet, short, long, longlong) next to each other form a
  *run* packed by one precompiled ``struct.Struct``; the length prefix of a
  following shortstr or longstr joins the run;
* consecutive bit fields are folded into octets, least significant bit
  first, eight to an octet; any other field ends the fold;
* reserved fields are written as zero/empty and skipped when read;
* content properties (§4.2.6.1) are announced by 16-bit flag words, the
  first property in the highest bit; bit 0 of a word says another follows.
"""

from __future__ import annotations

import keyword
import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from codegen import docs, naming
from codegen.model import AMQPClass, Constant, Field, Method, Rule, Spec, SpecError

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

_STRUCT_CHARS = {"octet": "B", "short": "H", "long": "I", "longlong": "Q"}

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

#: The first decode line of a decoder that looks names up: NAMES is keyed
#: by ``bytes``, which a bytearray slice is not.
_BYTES_ONLY = "buf = buf if buf.__class__ is bytes else bytes(buf)"


def is_name(f: PlanField) -> bool:
    """Whether a shortstr field's values are shared through ``wire.NAMES``."""
    return f.type == "shortstr" and (
        f.spec.domain in NAME_DOMAINS or f.name in NAME_FIELDS
    )


def _name_lines(target: str, raw: str) -> list[str]:
    # One subscript, not ``in`` and then a subscript: another thread may
    # empty NAMES in between. A miss costs an exception, which is cheaper
    # than a .get() call on every hit.
    return [
        f"raw = {raw}",
        "try:",
        f"    {target} = NAMES[raw]",
        "except KeyError:",
        f"    {target} = name_from(raw)",
    ]


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

#: Client-sent methods the runtime drives itself (connection and channel
#: lifecycle); they get no generated API method. Replies to server-sent
#: methods (start-ok, tune-ok, close-ok, flow-ok...) are owned by the
#: runtime as well; see :func:`runtime_owned`.
LIFECYCLE = frozenset(
    {
        ("connection", "open"),
        ("connection", "close"),
        ("channel", "open"),
        ("channel", "close"),
    }
)

#: Classes whose API methods live on the connection, not the channel.
CONNECTION_CLASSES = frozenset({"connection"})


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


@dataclass(frozen=True)
class MethodPlan:
    amqp_class: AMQPClass
    method: Method
    class_name: str
    name: str
    class_id: int
    method_id: int
    fields: tuple[PlanField, ...]
    wire: tuple[PlanField, ...]
    responses: tuple[str, ...]
    docstring: str
    init_lines: tuple[str, ...]
    encode_lines: tuple[str, ...]
    decode_lines: tuple[str, ...]
    structs: tuple[str, ...]
    signature: tuple[str, ...]
    # A content method of a class with properties: the body of its static
    # ``frames`` and the properties class it takes; else empty.
    frames_lines: tuple[str, ...] = ()
    properties_class: str = ""
    # The C decoder's layout (see c_kinds).
    c_kinds: str = ""
    c_names: tuple[str | None, ...] = ()

    @property
    def index(self) -> int:
        return (self.class_id << 16) | self.method_id

    @property
    def frames_signature(self) -> tuple[str, ...]:
        return (
            "channel: int",
            "frame_max: int",
            f"properties: {self.properties_class} | None",
            "body: bytes | bytearray | memoryview",
            *self.signature,
        )


@dataclass(frozen=True)
class PropertiesPlan:
    amqp_class: AMQPClass
    class_name: str
    fields: tuple[PlanField, ...]
    docstring: str
    init_lines: tuple[str, ...]
    encode_lines: tuple[str, ...]
    decode_lines: tuple[str, ...]
    structs: tuple[str, ...]
    signature: tuple[str, ...]
    # The C decoder's layout (see c_kinds); empty when it cannot read these
    # properties (more than one flag word).
    c_kinds: str = ""
    c_names: tuple[str | None, ...] = ()


@dataclass(frozen=True)
class ApiMethod:
    name: str
    method: MethodPlan
    params: tuple[str, ...]  # rendered parameters after self
    params_no_wait_true: tuple[str, ...]  # the overload with no_wait: Literal[True]
    params_no_wait_false: tuple[str, ...]
    call: str  # the method class construction
    no_wait: str  # the name of the no-wait parameter, or ""
    kind: str  # "rpc", "send", "rpc_no_wait", or a hook's: "publish", "get", "consume"
    returns: str
    docstring: str
    hook: str = ""  # the runtime hook it hands over to ("_publish"...), or ""
    # What it hands the hook: the publish hook takes the arguments themselves.
    hook_args: tuple[str, ...] = ()


@dataclass(frozen=True)
class HookPlan:
    """An abstract runtime hook of the channel API classes, declared because
    one of the spec's methods hands over to it."""

    name: str  # "_publish", "_get" or "_consume"
    params: tuple[str, ...]  # rendered parameters after self
    returns: str
    docstring: str


@dataclass(frozen=True)
class ErrorPlan:
    class_name: str
    base: str
    code: int
    constant: str
    docstring: str


@dataclass(frozen=True)
class ModulePlan:
    amqp_class: AMQPClass
    module: str
    methods: tuple[MethodPlan, ...]
    structs: tuple[str, ...]


@dataclass(frozen=True)
class SpecPlan:
    spec: Spec
    header: str
    constants: tuple[tuple[str, int, str], ...]
    reply_codes: tuple[tuple[str, int, str], ...]
    class_ids: tuple[tuple[str, int], ...]
    errors: tuple[ErrorPlan, ...]
    modules: tuple[ModulePlan, ...]
    properties: tuple[PropertiesPlan, ...]
    channel_api: tuple[ApiMethod, ...]
    connection_api: tuple[ApiMethod, ...]
    property_structs: tuple[str, ...] = field(default=())
    # The runtime hooks the channel API uses, in HOOK_KINDS order.
    channel_hooks: tuple[HookPlan, ...] = field(default=())

    @property
    def methods(self) -> tuple[MethodPlan, ...]:
        return tuple(m for mod in self.modules for m in mod.methods)


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


def _check_expr(f: PlanField) -> str:
    """A constructor assignment: fast path inline, slow path a check call."""
    n = f.name
    if f.type == "shortstr":
        # An ASCII string is its own UTF-8 (one byte a character, no lone
        # surrogates): only other strings need encoding to check them.
        return f'{n} if isinstance({n}, str) and len({n}) < 256 and {n}.isascii() else check_shortstr({n}, "{n}")'
    if f.type == "longstr":
        return f'{n} if isinstance({n}, bytes) else check_longstr({n}, "{n}")'
    if f.type in _INT_MAX:
        # The exact-class test keeps bool (an int subclass) and IntEnum off
        # the fast path: check_int rejects the one and converts the other.
        return (
            f"{n} if {n}.__class__ is int and 0 <= {n} < {_INT_MAX[f.type]:#x} "
            f'else check_int({n}, "{n}", "{f.type}")'
        )
    if f.type == "bit":
        return f'{n} if {n} is True or {n} is False else check_bit({n}, "{n}")'
    if f.type == "table":
        return f'{n} if isinstance({n}, dict) else check_table({n}, "{n}")'
    if f.type == "timestamp":
        return f'check_timestamp({n}, "{n}")'
    raise AssertionError(f.type)


def _init_expr(f: PlanField, optional: bool) -> str:
    expr = _check_expr(f)
    if optional:
        return f"None if {f.name} is None else {expr}"
    if f.type == "table":
        return f"{{}} if {f.name} is None else {expr}"
    return expr


def init_lines(
    fields: tuple[PlanField, ...], optional: bool = False
) -> tuple[str, ...]:
    lines = []
    for f in fields:
        if f.reserved:
            continue
        expr = _init_expr(f, optional)
        lines.append(f"self.{f.name} = {expr}")
    return tuple(lines) or ("pass",)


# --- method codecs -----------------------------------------------------------


class _Emitter:
    """Builds the encode and decode bodies of one method."""

    def __init__(self, structs: set[str], checked_bits: bool = False) -> None:
        self.structs = structs
        # Bits come from checked arguments (True or False), not attributes
        # that may have been set to anything since.
        self.checked_bits = checked_bits
        self.prelude: list[str] = []
        self.parts: list[str] = []
        # The size of each part in bytes: a number, or an expression, or ""
        # when only the encoded part knows it (a field table).
        self.sizes: list[str] = []
        # Per part: (struct chars, encode expressions) when it packs a run
        # of fixed-size fields, else None.
        self.runs: list[tuple[str, list[str]] | None] = []
        self.decode: list[str] = []
        self.run: list[
            tuple[str, str, str]
        ] = []  # (struct char, encode expr, decode target)
        self.after_run: list[str] = []  # bit unpacking after the run is read
        self.bits: list[tuple[str, int]] = []  # current bit fold: (expr, position)
        self.bit_target = ""
        self._bit_count = 0
        self.temp = 0
        self.names = False  # whether a field is looked up in NAMES

    def _name(self, prefix: str) -> str:
        self.temp += 1
        return f"{prefix}{self.temp}"

    def struct(self, chars: str) -> str:
        self.structs.add(chars)
        return f"_S_{chars}"

    def close_bits(self) -> None:
        if not self.bit_target:
            return
        # Only True/False (and the ints 0/1) make a bit; bit_value raises
        # TypeError for anything else, so a bad value assigned after
        # construction cannot leak into a neighbouring bit.
        exprs = []
        for e, p in self.bits:
            if self.checked_bits:
                value = f"self.{e}"
            else:
                value = f"(1 if self.{e} is True else 0 if self.{e} is False else bit_value(self.{e}))"
            exprs.append(f"{value} << {p}" if p else value)
        # An octet of reserved bits only: written as 0, read and dropped.
        target = self.bit_target if exprs else "_"
        self.run[-1] = ("B", " | ".join(exprs) if exprs else "0", target)
        self.bits = []
        self.bit_target = ""

    def add_bit(self, f: PlanField) -> None:
        if self.bit_target and self._bit_count == 8:
            self.close_bits()
        if not self.bit_target:
            self.bit_target = self._name("bits")
            self._bit_count = 0
            self.run.append(("B", "0", self.bit_target))
        position = self._bit_count
        self._bit_count += 1
        if not f.reserved:
            self.bits.append((f.name, position))
            mask = 1 << position
            self.after_run.append(
                f"self.{f.name} = ({self.bit_target} & {mask:#04x}) != 0"
            )

    def flush(self) -> None:
        self.close_bits()
        if not self.run:
            return
        chars = "".join(c for c, _, _ in self.run)
        size = struct.calcsize(">" + chars)
        encode_exprs = [e for _, e, _ in self.run]
        targets = [t for _, _, t in self.run]
        self.runs.append((chars, encode_exprs))
        if all(e.isdigit() for e in encode_exprs):
            self.parts.append(repr(struct.pack(">" + chars, *map(int, encode_exprs))))
        elif chars == "B" and (
            not encode_exprs[0].startswith("self.")
            or (self.checked_bits and targets[0].startswith("bits"))
        ):
            # A length or a bit octet: never negative, so a table lookup
            # (IndexError past 255) replaces a struct call.
            self.parts.append(f"OCTETS[{encode_exprs[0]}]")
        else:
            self.parts.append(f"{self.struct(chars)}.pack({', '.join(encode_exprs)})")
        self.sizes.append(str(size))
        if chars == "B":
            self.decode.append(f"{targets[0]} = buf[offset]")
        elif len(targets) == 1:
            self.decode.append(
                f"{targets[0]} = {self.struct(chars)}.unpack_from(buf, offset)[0]"
            )
        else:
            self.decode.append(
                f"{', '.join(targets)} = {self.struct(chars)}.unpack_from(buf, offset)"
            )
        self.decode.append(f"offset += {size}")
        self.decode.extend(self.after_run)
        self.run = []
        self.after_run = []

    def add(self, f: PlanField) -> None:
        if f.type == "bit":
            self.add_bit(f)
            return
        self.close_bits()
        if f.type in _STRUCT_CHARS:
            value = "0" if f.reserved else f"self.{f.name}"
            target = "_" if f.reserved else f"self.{f.name}"
            self.run.append((_STRUCT_CHARS[f.type], value, target))
            return
        if f.type in ("shortstr", "longstr"):
            length = self._name("n")
            char = "B" if f.type == "shortstr" else "I"
            if f.reserved:
                self.run.append((char, "0", length))
                self.flush()
                self.decode.append(f"offset += {length}")
                return
            if f.type == "shortstr":
                data = f"{f.name}_"
                self.prelude.append(f"{data} = self.{f.name}.encode()")
            else:
                data = f"self.{f.name}"
            self.run.append((char, f"len({data})", length))
            self.flush()
            self.parts.append(data)
            self.sizes.append(f"len({data})")
            self.runs.append(None)
            if is_name(f):
                self.names = True
                self.decode += _name_lines(
                    f"self.{f.name}", f"buf[offset:offset + {length}]"
                )
            elif f.type == "shortstr":
                self.decode.append(
                    f"self.{f.name} = buf[offset:offset + {length}].decode()"
                )
            else:
                self.decode.append(
                    f"self.{f.name} = bytes(buf[offset:offset + {length}])"
                )
            self.decode.append(f"offset += {length}")
            return
        self.flush()
        if f.type == "table":
            if f.reserved:
                self.parts.append(repr(b"\0\0\0\0"))
                self.sizes.append("4")
                self.runs.append(None)
                self.decode.append("_, offset = decode_table(buf, offset)")
            else:
                self.parts.append(f'encode_table(self.{f.name}, "{f.name}")')
                self.sizes.append("")
                self.runs.append(None)
                self.decode.append(f"self.{f.name}, offset = decode_table(buf, offset)")
            return
        if f.type == "timestamp":
            self.parts.append(f'encode_timestamp(self.{f.name}, "{f.name}")')
            self.sizes.append("8")
            self.runs.append(None)
            self.decode.append(f"self.{f.name}, offset = decode_timestamp(buf, offset)")
            return
        raise AssertionError(f.type)

    def result(self) -> tuple[tuple[str, ...], tuple[str, ...]]:
        self.flush()
        if not self.parts:
            ret = 'return b""'
        elif len(self.parts) == 1:
            ret = f"return {self.parts[0]}"
        elif len(self.parts) == 2:
            ret = f"return {self.parts[0]} + {self.parts[1]}"
        else:
            ret = f'return b"".join(({", ".join(self.parts)}))'
        # Decoders build ``obj`` without calling __init__ (values from the
        # wire are already valid by construction of the codec).
        decode = [_BYTES_ONLY, *self.decode] if self.names else self.decode
        return (*self.prelude, ret), tuple(
            line.replace("self.", "obj.") for line in decode
        )


_C_KINDS = {
    "octet": "B",
    "short": "H",
    "long": "I",
    "longlong": "Q",
    "longstr": "S",
    "table": "t",
    "timestamp": "T",
}


def c_kinds(
    fields: tuple[PlanField, ...], properties: bool = False
) -> tuple[str, tuple[str | None, ...]]:
    """The layout the C decoder reads (see amqp_client/_speedups.c): one
    kind character per wire field, and the slot each goes to (None for a
    reserved field). Bits are numbered as the emitter folds them: eight to
    an octet, a new octet after any other field."""
    kinds: list[str] = []
    names: list[str | None] = []
    bit = -1  # position of the last bit in the current octet; -1: none
    for f in fields:
        if f.type == "bit":
            if properties:
                raise AssertionError("bit content properties are not supported")
            bit = 0 if bit in (-1, 7) else bit + 1
            kinds.append(str(bit))
        else:
            bit = -1
            if f.type == "shortstr":
                kinds.append("r" if f.reserved else "n" if is_name(f) else "s")
            else:
                kinds.append(_C_KINDS[f.type])
        names.append(None if f.reserved else f.name)
    return "".join(kinds), tuple(names)


def method_codec(
    fields: tuple[PlanField, ...], structs: set[str]
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    emitter = _Emitter(structs)
    for f in fields:
        emitter.add(f)
    return emitter.result()


#: The names a content method's ``frames`` uses for itself; a field with one
#: of them would shadow it.
#: Bodies of this many bytes or more are left out of the one joined buffer
#: of the publish fast path (amqp_client.frames.JOIN_MAX, which a test holds
#: equal).
JOIN_MAX = 65536

_FRAMES_LOCALS = frozenset(
    {"channel", "frame_max", "properties", "body", "props", "n", "method"}
)


#: AMQP 0-9-1 framing (§4.2.3), which the runtime's frame reader and writer
#: are built on.
_FRAMING = {
    "frame-method": 1,
    "frame-header": 2,
    "frame-body": 3,
    "frame-min-size": 4096,
    "frame-end": 206,
}


def _frame_constant(spec: Spec, name: str) -> int:
    """A framing constant: the spec's, which must agree with the runtime's;
    the 0-9-1 value when the spec leaves it out."""
    for c in spec.constants:
        if c.name == name:
            if c.value != _FRAMING[name]:
                raise SpecError(
                    f"{c.source}: {name} is {c.value}; the runtime frames with "
                    f"{_FRAMING[name]} (AMQP 0-9-1)"
                )
            return c.value
    return _FRAMING[name]


def _fast_test(f: PlanField) -> str:
    """A cheap test that an argument needs no conversion and fits its type
    (a shortstr's encoded length is tested after encoding); what fails it
    goes through the constructor, which raises or converts."""
    n = f.name
    if f.type == "shortstr":
        return f"{n}.__class__ is str"
    if f.type == "longstr":
        return f"{n}.__class__ is bytes and len({n}) <= 0xFFFFFFFF"
    if f.type in _INT_MAX:
        return f"{n}.__class__ is int and 0 <= {n} < {_INT_MAX[f.type]:#x}"
    if f.type == "bit":
        return f"({n} is True or {n} is False)"
    if f.type == "table":
        return f"{n}.__class__ is dict"
    # A timestamp (or anything else) always takes the constructor's path.
    return "False"


def content_frames_lines(
    cls: AMQPClass,
    method: Method,
    class_name: str,
    properties_class: str,
    fields: tuple[PlanField, ...],
    structs: set[str],
    spec: Spec,
) -> tuple[str, ...]:
    """The body of a content method's ``frames``: the method frame, its
    content header and body frame built straight from the arguments, with
    no method object made (the publish hot path).

    The common case (arguments of their exact types, a non-empty ``bytes``
    body that fits one frame on an int channel, a negotiated frame_max,
    properties of the class's own type or None) is packed here into one
    buffer. Anything else, valid or not, goes through the constructor and
    the general ``content_frames``, which convert, split or raise: so the
    errors are the constructor's, naming the field.
    """
    for f in fields:
        if f.name in _FRAMES_LOCALS:
            raise SpecError(
                f"{f.spec.source}: field {f.spec_name!r} of {cls.name}.{method.name} "
                "shadows a name its generated frames() uses"
            )
    public = [f for f in fields if not f.reserved]
    emitter = _Emitter(structs, checked_bits=True)
    for f in fields:
        emitter.add(f)
    emitter.flush()
    encodes = [line.replace("self.", "") for line in emitter.prelude]
    # The frame head packs the class and method ids, and the method's first
    # run of fixed-size fields when it starts with one.
    head_chars, head_args = "BHIHH", [str(cls.index), str(method.index)]
    todo = list(zip(emitter.parts, emitter.sizes, emitter.runs, strict=True))
    fixed = 4  # class-id and method-id
    if todo and todo[0][2] is not None:
        _, size, run = todo.pop(0)
        assert run is not None
        head_chars += run[0]
        head_args += [e.replace("self.", "") for e in run[1]]
        fixed += int(size)
    tables: list[str] = []
    parts: list[str] = []
    variable: list[str] = []
    for i, (part, size, _) in enumerate(todo):
        part = part.replace("self.", "")
        if not size:  # a field table: encoded first, to know its size
            tables.append(f"t{i} = {part}")
            part, size = f"t{i}", f"len(t{i})"
        parts.append(part)
        if size.isdigit():
            fixed += int(size)
        else:
            variable.append(size)
    method_type = _frame_constant(spec, "frame-method")
    header_type = _frame_constant(spec, "frame-header")
    body_type = _frame_constant(spec, "frame-body")
    end = _frame_constant(spec, "frame-end")
    minimum = _frame_constant(spec, "frame-min-size")
    overhead = 8  # the 7-byte frame header and the frame-end octet
    for chars in (head_chars, "BBHIHxxQ", "BBHI"):
        structs.add(chars)
    size = " + ".join([str(fixed), *variable])
    head = ", ".join([str(method_type), "channel", size, *head_args])
    tests = [
        "channel.__class__ is int",
        "0 <= channel <= 0xFFFF",
        "body.__class__ is bytes",
        "frame_max.__class__ is int",
        f"{minimum} <= frame_max <= 0xFFFFFFFF",
        f"0 < len(body) <= frame_max - {overhead}",
        # A larger body is not copied into the joined buffer: content_frames
        # hands it over as a buffer of its own (frames.JOIN_MAX).
        f"len(body) < {JOIN_MAX}",
        f"(properties is None or properties.__class__ is {properties_class})",
        *(_fast_test(f) for f in public),
    ]
    shortstrs = [f"len({f.name}_) < 256" for f in public if f.type == "shortstr"]
    pack = [
        *tables,
        'props = b"\\x00\\x00" if properties is None else properties.encode()',
        "n = len(body)",
        "return [",
        '    b"".join(',
        "        (",
        f"            _S_{head_chars}.pack({head}),",
        *(f"            {part}," for part in parts),
        f"            _S_BBHIHxxQ.pack({end:#x}, {header_type}, channel, "
        f"len(props) + 12, {cls.index}, n),",
        "            props,",
        f"            _S_BBHI.pack({end:#x}, {body_type}, channel, n),",
        "            body,",
        f"            {bytes([end])!r},",
        "        )",
        "    )",
        "]",
    ]
    if shortstrs:
        pack = [f"if {' and '.join(shortstrs)}:", *("    " + line for line in pack)]
    if encodes:
        # A lone surrogate fails to encode: the constructor names the field.
        pack = [
            "try:",
            *("    " + line for line in encodes),
            "except UnicodeEncodeError:",
            "    pass",
            "else:",
            *("    " + line for line in pack),
        ]
    call_args = ", ".join(f"{f.name}={f.name}" for f in public)
    lines = [
        "if (",
        *(f"    {'and ' if i else ''}{test}" for i, test in enumerate(tests)),
        "):",
        *("    " + line for line in pack),
        f"method = {class_name}({call_args})",
        f"if properties is not None and not isinstance(properties, {properties_class}):",
        "    raise TypeError(",
        f'        "properties must be {properties_class} or None, not "',
        '        f"{type(properties).__name__}"',
        "    )",
        "return content_frames(channel, method, properties, body, frame_max)",
    ]
    return tuple(lines)


# --- properties codec ----------------------------------------------------------


def plan_properties(cls: AMQPClass) -> tuple[PlanField, ...]:
    planned = []
    for fld in cls.properties:
        if fld.type not in ANNOTATIONS:
            raise SpecError(f"{fld.source}: unsupported type {fld.type!r}")
        if fld.type == "bit":
            raise SpecError(f"{fld.source}: bit content properties are not supported")
        planned.append(
            PlanField(
                spec=fld,
                name=naming.property_name(cls.name, fld.name),
                spec_name=fld.name,
                type=fld.type,
                reserved=False,
                annotation=ANNOTATIONS[fld.type],
                default=None,
                required=False,
                keyword_only=True,
                label=fld.label,
                doc=docs.text_of(fld.docs),
            )
        )
    return tuple(planned)


def flag_layout(count: int) -> tuple[int, list[int]]:
    """Number of 16-bit flag words and each property's mask in the joined int.

    Property ``k`` sits in word ``k // 15`` at bit ``15 - k % 15``; the flag
    words are joined big-endian into one integer.
    """
    words = max(1, (count + 14) // 15)
    masks = []
    for k in range(count):
        word, bit = divmod(k, 15)
        masks.append(1 << (16 * (words - 1 - word) + 15 - bit))
    return words, masks


def properties_codec(
    fields: tuple[PlanField, ...], structs: set[str]
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    words, masks = flag_layout(len(fields))
    structs.add("H")
    used = 0
    for mask in masks:
        used |= mask
    enc = ["flags = 0", 'parts: list[bytes] = [b""]']
    dec: list[str] = []
    names = False
    if words == 1:
        dec += ["flags = _S_H.unpack_from(buf, offset)[0]", "offset += 2"]
    else:
        dec += [
            "flags = 0",
            f"for _ in range({words}):",
            "    word = _S_H.unpack_from(buf, offset)[0]",
            "    offset += 2",
            "    flags = flags << 16 | word",
            "    if not word & 1:",
            "        break",
            "else:",
            '    raise FrameDecodeError("too many property flag words")',
        ]
    full = (1 << (16 * words)) - 1
    dec += [
        f"if flags & {full & ~used:#x}:",
        '    raise FrameDecodeError(f"unknown property flags {flags:#x}")',
    ]
    blocks: list[tuple[int, str, list[str]]] = []
    for f, mask in zip(fields, masks, strict=True):
        n = f.name
        v = f"v_{n}"
        enc += [f"{v} = self.{n}", f"if {v} is not None:", f"    flags |= {mask:#x}"]
        block = [f"if flags & {mask:#x}:"]
        if f.type == "shortstr":
            enc += [f"    b = {v}.encode()", "    parts += (OCTETS[len(b)], b)"]
            block.append("    n = buf[offset]")
            if is_name(f):
                names = True
                block += [
                    "    " + line
                    for line in _name_lines(
                        f"self.{n}", "buf[offset + 1:offset + 1 + n]"
                    )
                ]
            else:
                block.append(f"    self.{n} = buf[offset + 1:offset + 1 + n].decode()")
            block.append("    offset += 1 + n")
        elif f.type == "longstr":
            structs.add("I")
            enc += [f"    parts += (_S_I.pack(len({v})), {v})"]
            block += [
                "    n = _S_I.unpack_from(buf, offset)[0]",
                f"    self.{n} = bytes(buf[offset + 4:offset + 4 + n])",
                "    offset += 4 + n",
            ]
        elif f.type in _STRUCT_CHARS:
            char = _STRUCT_CHARS[f.type]
            structs.add(char)
            size = struct.calcsize(">" + char)
            enc += [f"    parts.append(_S_{char}.pack({v}))"]
            if char == "B":
                block += [f"    self.{n} = buf[offset]", "    offset += 1"]
            else:
                block += [
                    f"    self.{n} = _S_{char}.unpack_from(buf, offset)[0]",
                    f"    offset += {size}",
                ]
        elif f.type == "table":
            enc += [f'    parts.append(encode_table({v}, "{n}"))']
            block += [f"    self.{n}, offset = decode_table(buf, offset)"]
        elif f.type == "timestamp":
            enc += [f'    parts.append(encode_timestamp({v}, "{n}"))']
            block += [f"    self.{n}, offset = decode_timestamp(buf, offset)"]
        else:
            raise AssertionError(f.type)
        block += ["else:", f"    self.{n} = None"]
        blocks.append((mask, n, block))
    # Properties are tested in groups of four: a group with no flag set (the
    # common case: most messages carry few properties) costs one test and
    # one chained assignment instead of four tests.
    for i in range(0, len(blocks), 4):
        group = blocks[i : i + 4]
        group_mask = 0
        for mask, _, _ in group:
            group_mask |= mask
        dec.append(f"if flags & {group_mask:#x}:")
        dec.extend("    " + line for _, _, block in group for line in block)
        dec.append("else:")
        dec.append("    " + " = ".join(f"self.{n}" for _, n, _ in group) + " = None")
    if words == 1:
        enc += ["parts[0] = _S_H.pack(flags)"]
    else:
        enc += [
            'parts[0] = b"".join(',
            f"    _S_H.pack((flags >> {16} * ({words - 1} - i)) & 0xFFFF | (i < {words - 1}))",
            f"    for i in range({words})",
            ")",
        ]
    enc += ['return b"".join(parts)']
    if names:
        dec.insert(0, _BYTES_ONLY)
    return tuple(enc), tuple(line.replace("self.", "obj.") for line in dec)


# --- docstrings -------------------------------------------------------------------


def _field_doc(f: PlanField, indent: str = "    ") -> list[str]:
    default = "required" if f.required else f"default {py_repr(f.default)}"
    if f.type == "table":
        default = "default empty"
    kind = f.type if f.spec.domain == f.type else f"{f.spec.domain}: {f.type}"
    head = f"{f.name} ({kind}, {default}):"
    label = docs.sentence(f.label)
    text = " ".join(p for p in (label, *docs.paragraphs(f.doc)[:1]) if p)
    more = docs.paragraphs(f.doc)[1:]
    body = "\n\n".join([text, *more]) if text else "\n\n".join(more)
    return docs.hanging(head, body, indent)


def _rules(method: Method, fields: tuple[PlanField, ...]) -> list[tuple[str, Rule]]:
    rules: list[tuple[str, Rule]] = [("", r) for r in method.rules]
    for f in fields:
        rules += [(f"{f.name}.", r) for r in f.spec.rules]
    return rules


def method_docstring(
    cls: AMQPClass,
    method: Method,
    fields: tuple[PlanField, ...],
    error_names: dict[str, str],
) -> str:
    lines = [docs.sentence(method.label) or f"{cls.name}.{method.name}.", ""]
    lines += docs.fill(docs.text_of(method.docs))
    flags = []
    if method.synchronous:
        flags.append("synchronous")
    if method.content:
        flags.append("carries content")
    if method.deprecated:
        flags.append("deprecated")
    senders = []
    if method.client_sent:
        senders.append("client")
    if method.server_sent:
        senders.append("server")
    replies = (
        ", ".join(naming.class_name(cls.name, r) for r in method.responses) or "none"
    )
    lines += [
        "",
        *docs.fill(
            f"AMQP {cls.name}.{method.name} ({cls.index}/{method.index}); "
            f"{', '.join(flags) or 'asynchronous'}; sent by the {' and '.join(senders) or '?'}; "
            f"replies: {replies}."
        ),
    ]
    public = [f for f in fields if not f.reserved]
    if public:
        lines += ["", "Args:"]
        for f in public:
            lines += _field_doc(f)
    rules = docs.rules_section(_rules(method, fields), error_names)
    if rules:
        lines += ["", *rules]
    return docs.escape("\n".join(lines).strip())


def properties_docstring(cls: AMQPClass, fields: tuple[PlanField, ...]) -> str:
    lines = [
        f"Content properties of class {cls.name} ({cls.index}).",
        "",
        *docs.fill(
            "Every property is optional; None leaves it out of the content "
            "header (its flag bit stays clear). A timestamp is a datetime (a "
            "naive one is taken as UTC) or an int of seconds; decoded ones are "
            "UTC-aware datetimes, or the int of seconds when past year 9999."
        ),
        "",
        "Args:",
    ]
    for f in fields:
        head = f"{f.name} ({f.type}):"
        text = " ".join(
            p for p in (docs.sentence(f.label), *docs.paragraphs(f.doc)) if p
        )
        lines += docs.hanging(head, text, "    ")
    return docs.escape("\n".join(lines))


def api_docstring(
    cls: AMQPClass,
    method: Method,
    fields: tuple[PlanField, ...],
    returns: str,
    error_names: dict[str, str],
    content: bool,
) -> str:
    lines = [docs.sentence(method.label) or f"{cls.name}.{method.name}.", ""]
    lines += docs.fill(docs.text_of(method.docs))
    lines += [
        "",
        *docs.fill(
            f"Sends {naming.class_name(cls.name, method.name)} "
            f"({cls.name}.{method.name})."
        ),
    ]
    public = [f for f in fields if not f.reserved]
    args: list[str] = []
    if content:
        args += docs.hanging("body (bytes):", "The message body.", "    ")
    for f in public:
        args += _field_doc(f)
    if content:
        props = naming.properties_class_name(cls.name)
        args += docs.hanging(
            f"properties ({props} | None):", "The content properties.", "    "
        )
    if content:
        args += docs.hanging(
            "timeout (float | None):",
            "Seconds publishing may wait while the broker blocks the "
            "connection, channel.flow pauses the channel, the socket is full "
            "or the connection recovers; None waits. TimeoutError when it "
            "passes, and nothing was sent.",
            "    ",
        )
    elif method.synchronous and method.responses:
        args += docs.hanging(
            "timeout (float | None):",
            "Seconds to wait for the reply; None waits until the connection "
            "fails. TimeoutError when it passes. A finite number >= 0; "
            "checked before anything is sent.",
            "    ",
        )
    if args:
        lines += ["", "Args:", *args]
    lines += ["", "Returns:"]
    lines += docs.fill(returns, "    ")
    codes = []
    for _, rule in _rules(method, fields):
        if rule.on_failure and rule.on_failure in error_names:
            name = error_names[rule.on_failure]
            if name not in codes:
                codes.append(name)
    raises = [
        *docs.hanging(
            "ChannelClosed:",
            "The broker closed the channel with a soft error"
            + (f" (such as {', '.join(codes)})" if codes else "")
            + "; the channel is unusable, the connection goes on.",
            "    ",
        ),
        *docs.hanging(
            "ConnectionClosed:", "The connection closed or was lost meanwhile.", "    "
        ),
        *docs.hanging(
            "TypeError, ValueError:",
            "An argument has the wrong type or is out of range; nothing was sent.",
            "    ",
        ),
    ]
    lines += ["", "Raises:", *raises]
    return docs.escape("\n".join(lines).strip())


# --- the API --------------------------------------------------------------------


#: The runtime hooks for what needs more than send-and-await-reply, and the
#: kind of API method each makes (the api template's branch). The generated
#: API method checks the arguments and hands them to its hook, which each
#: front's channel implements; the hook's result is one of the channel API
#: classes' type parameters (PublishT, GetT, ConsumerT).
HOOK_KINDS: Mapping[str, str] = {
    "_publish": "publish",  # content out: the arguments, not a method object
    "_get": "get",  # a reply that may carry content, or an empty one
    "_consume": "consume",  # a reply, then deliveries for as long as it lasts
}

#: Which client-sent methods hand over to which runtime hook (see HOOK_KINDS).
#: A client-sent content method, or one whose reply carries content, needs
#: one: the plan refuses it otherwise (HookError). ``build`` takes another
#: table for a spec that is not AMQP's (the tests' tiny one).
HOOKS: Mapping[str, str] = {
    "basic.publish": "_publish",  # content out; a Confirmation in confirm mode
    "basic.get": "_get",  # a reply with content: a Delivery, or None
    "basic.consume": "_consume",  # a Consumer that deliveries flow into
}


class HookError(SpecError, ValueError):
    """A client-sent method and the runtime hooks (HOOKS) do not fit: it
    needs a hook it has not got, or its hook cannot drive it."""


def api_hook(
    mp: MethodPlan,
    responses: Sequence[MethodPlan],
    hooks: Mapping[str, str] = HOOKS,
) -> str:
    """The runtime hook ``mp``'s API method hands over to, or "" when
    ``_rpc``/``_send`` will do. ``responses`` are ``mp``'s replies.

    Raises:
        HookError: ``mp`` is a content method, or a reply of it carries
            content, and ``hooks`` has no hook for it; or its hook is not
            one of HOOK_KINDS, or cannot drive it.
    """
    method = mp.method
    where = f"{method.source}: {mp.name}"
    content_reply = any(r.method.content for r in responses)
    hook = hooks.get(mp.name, "")
    if not hook:
        if method.content:
            raise HookError(
                f"{where} is a client-sent content method without a runtime "
                "hook; add one to codegen.plan.HOOKS"
            )
        if content_reply:
            raise HookError(
                f"{where} has a reply with content but no runtime hook; add "
                "one to codegen.plan.HOOKS"
            )
        return ""
    if hook not in HOOK_KINDS:
        raise HookError(
            f"{where}: unknown runtime hook {hook!r} in codegen.plan.HOOKS "
            f"(one of {', '.join(HOOK_KINDS)})"
        )
    if mp.amqp_class.name in CONNECTION_CLASSES:
        raise HookError(
            f"{where}: a connection method cannot have a runtime hook (they "
            "are the channel's); see codegen.plan.HOOKS"
        )
    waits = bool(method.synchronous and responses)
    fits, what = {
        "_publish": (method.content and not waits, "a content method, no reply"),
        "_get": (
            waits and content_reply and not method.content,
            "a method whose reply carries content",
        ),
        "_consume": (
            waits and not content_reply and not method.content,
            "a method with a reply (without content)",
        ),
    }[hook]
    if not fits:
        raise HookError(
            f"{where}: its runtime hook {hook} (codegen.plan.HOOKS) drives {what}"
        )
    return hook


def plan_hook(api: ApiMethod) -> HookPlan:
    """The abstract declaration of the hook ``api`` hands over to."""
    mp = api.method
    if api.hook == "_publish":
        props = naming.properties_class_name(mp.amqp_class.name)
        return HookPlan(
            name=api.hook,
            params=(
                "body: bytes",
                # The API method's parameters, without their defaults.
                *[f.param.split(" = ")[0] for f in mp.fields],
                f"properties: {props} | None",
                "timeout: float | None",
            ),
            returns=api.returns,
            docstring=f"Publish a message; what {api.name} returns (runtime hook).",
        )
    params = (f"method: {mp.class_name}", "timeout: float | None")
    if api.hook == "_get":
        return HookPlan(
            name=api.hook,
            params=params,
            returns=api.returns,
            docstring=f"Send {mp.name}; the message, or None when the queue is "
            "empty\n(runtime hook).",
        )
    return HookPlan(
        name=api.hook,
        params=params,
        returns=api.returns,
        docstring=f"Start a consumer; what {api.name} returns (runtime hook).",
    )


def runtime_owned(cls: AMQPClass, method: Method) -> bool:
    """Whether the runtime sends ``method`` itself (no generated API method)."""
    if (cls.name, method.name) in LIFECYCLE:
        return True
    return any(
        method.name in other.responses and other.server_sent for other in cls.methods
    )


def plan_api(
    mp: MethodPlan,
    error_names: dict[str, str],
    by_name: dict[str, MethodPlan],
    hooks: Mapping[str, str] = HOOKS,
) -> ApiMethod:
    cls, method = mp.amqp_class, mp.method
    connection_level = cls.name in CONNECTION_CLASSES
    name = (
        naming.connection_api_name(method.name)
        if connection_level
        else naming.api_name(cls.name, method.name)
    )
    public = [f for f in mp.wire if not f.reserved]
    if keyword.iskeyword(name):
        name += "_"
    responses = [by_name[f"{cls.name}.{r}"] for r in method.responses]
    waits = bool(method.synchronous and responses)
    # The spec spells it "no-wait" (domain no-wait) everywhere but in
    # confirm.select, whose bit is "nowait".
    no_wait_field = next(
        (
            f
            for f in public
            if f.type == "bit"
            and (f.spec.domain == "no-wait" or f.spec_name in ("no-wait", "nowait"))
        ),
        None,
    )
    has_no_wait = waits and no_wait_field is not None
    no_wait_name = no_wait_field.name if no_wait_field is not None else ""
    extra = ("timeout: float | None = None",) if waits else ()
    content = method.content
    hook = api_hook(mp, responses, hooks)
    wire = mp.wire
    if hook == "_consume":
        # A consumer needs its consume-ok (its tag): no no-wait here.
        wire = tuple(f for f in wire if f is not no_wait_field)
        public = [f for f in public if f is not no_wait_field]
        has_no_wait, no_wait_name = False, ""
    if content:
        params = (
            "body: bytes",
            "*",
            *[p for p in signature(wire) if p != "*"],
            f"properties: {naming.properties_class_name(cls.name)} | None = None",
            "timeout: float | None = None",
        )
    else:
        params = signature(wire, extra)
    args = ", ".join(
        [f.name for f in public if not f.keyword_only]
        + [f"{f.name}={f.name}" for f in public if f.keyword_only]
    )
    call = f"{mp.class_name}({args})"
    hook_args: tuple[str, ...] = ()
    if hook == "_publish":
        kind, returns = "publish", "PublishT"
        hook_args = (
            "body",
            *[f.name for f in public],
            "properties",
            "check_timeout(timeout)",
        )
        returns_doc = (
            "A Confirmation in confirm mode (settled by the broker's ack, "
            "nack or return), else None."
        )
    elif hook == "_get":
        kind, returns = "get", "GetT | None"
        returns_doc = "The message as a Delivery (with message_count), or None "
        returns_doc += "when the queue is empty."
    elif hook == "_consume":
        kind, returns = "consume", "ConsumerT"
        returns_doc = (
            "The Consumer: an iterator of deliveries, ended by a cancel from "
            "either side."
        )
    elif not waits:
        kind, returns = "send", "None"
        returns_doc = "None: the method has no reply."
    else:
        returns = " | ".join(r.class_name for r in responses)
        returns_doc = f"The reply: {returns}."
        kind = "rpc_no_wait" if has_no_wait else "rpc"
        if has_no_wait:
            returns_doc += " None when no_wait is true (nothing is awaited)."
    doc = api_docstring(cls, method, wire, returns_doc, error_names, content)

    def swap(params: tuple[str, ...], replacement: str) -> tuple[str, ...]:
        prefix = f"{no_wait_name}:"
        return tuple(
            f"{no_wait_name}: {replacement}"
            if no_wait_name and p.startswith(prefix)
            else p
            for p in params
        )

    return ApiMethod(
        name=name,
        method=mp,
        params=params,
        params_no_wait_true=swap(params, "Literal[True]"),
        params_no_wait_false=swap(params, "Literal[False] = False"),
        no_wait=no_wait_name,
        call=call,
        kind=kind,
        returns=returns,
        docstring=doc,
        hook=hook,
        hook_args=hook_args,
    )


# --- the whole spec -----------------------------------------------------------------


def _error_plans(constants: tuple[Constant, ...]) -> tuple[ErrorPlan, ...]:
    plans = []
    for const in constants:
        if not const.error_class:
            continue
        base = (
            "ChannelClosed" if const.error_class == "soft-error" else "ConnectionClosed"
        )
        text = docs.text_of(const.docs)
        lines = [f"{const.value} {const.name} ({const.error_class}).", ""]
        lines += docs.fill(text)
        plans.append(
            ErrorPlan(
                class_name=naming.error_name(const.name),
                base=base,
                code=const.value,
                constant=naming.constant_name(const.name),
                docstring=docs.escape("\n".join(lines).strip()),
            )
        )
    return tuple(plans)


def provenance(spec: Spec) -> str:
    """Which spec files the output comes from, and how to remake it."""
    files = " and ".join(f"{f.name} (sha256 {f.sha256})" for f in spec.files)
    return f"Generated by codegen from {files}. Do not edit: run `make generate`."


def header(spec: Spec) -> str:
    return f"# {provenance(spec)}"


def build(spec: Spec, hooks: Mapping[str, str] = HOOKS) -> SpecPlan:
    """Plan everything the templates render for ``spec``; ``hooks`` says
    which methods hand over to which runtime hook (see HOOKS).

    Raises:
        SpecError: ``spec`` cannot be rendered; a HookError (a ValueError
            too) when its methods and ``hooks`` do not fit.
    """
    errors = _error_plans(spec.constants)
    error_names = {
        next(c.name for c in spec.constants if c.value == e.code): e.class_name
        for e in errors
    }
    modules = []
    by_name: dict[str, MethodPlan] = {}
    for cls in spec.classes:
        structs: set[str] = set()
        plans = []
        for method in cls.methods:
            wire = plan_fields(cls, method, spec)
            encode, decode = method_codec(wire, structs)
            class_name = naming.class_name(cls.name, method.name)
            properties_class = (
                naming.properties_class_name(cls.name)
                if method.content and cls.properties
                else ""
            )
            frames = (
                content_frames_lines(
                    cls, method, class_name, properties_class, wire, structs, spec
                )
                if properties_class
                else ()
            )
            mp = MethodPlan(
                amqp_class=cls,
                method=method,
                class_name=class_name,
                name=f"{cls.name}.{method.name}",
                class_id=cls.index,
                method_id=method.index,
                fields=tuple(f for f in wire if not f.reserved),
                wire=wire,
                responses=tuple(
                    naming.class_name(cls.name, r) for r in method.responses
                ),
                docstring=method_docstring(cls, method, wire, error_names),
                init_lines=init_lines(wire),
                encode_lines=encode,
                decode_lines=decode,
                structs=(),
                signature=signature(wire),
                frames_lines=frames,
                properties_class=properties_class,
                c_kinds=c_kinds(wire)[0],
                c_names=c_kinds(wire)[1],
            )
            plans.append(mp)
            by_name[mp.name] = mp
        modules.append(
            ModulePlan(
                amqp_class=cls,
                module=naming.python_name(cls.name),
                methods=tuple(plans),
                structs=tuple(sorted(structs)),
            )
        )
    properties = []
    prop_structs: set[str] = set()
    for cls in spec.classes:
        if not cls.properties:
            continue
        fields = plan_properties(cls)
        encode, decode = properties_codec(fields, prop_structs)
        kinds, names = (
            c_kinds(fields, properties=True) if len(fields) <= 15 else ("", ())
        )
        properties.append(
            PropertiesPlan(
                amqp_class=cls,
                class_name=naming.properties_class_name(cls.name),
                fields=fields,
                docstring=properties_docstring(cls, fields),
                init_lines=init_lines(fields, optional=True),
                encode_lines=encode,
                decode_lines=decode,
                structs=(),
                signature=tuple(
                    ["*"]
                    + [
                        f"{f.name}: {PARAM_ANNOTATIONS.get(f.type, f.annotation)} | None = None"
                        for f in fields
                    ]
                ),
                c_kinds=kinds,
                c_names=names,
            )
        )
    channel_api = []
    connection_api = []
    for mod in modules:
        for mp in mod.methods:
            if not mp.method.client_sent or runtime_owned(mp.amqp_class, mp.method):
                continue
            api = plan_api(mp, error_names, by_name, hooks)
            if mp.amqp_class.name in CONNECTION_CLASSES:
                connection_api.append(api)
            else:
                channel_api.append(api)
    hooked: dict[str, ApiMethod] = {}
    for api in channel_api:
        if not api.hook:
            continue
        other = hooked.setdefault(api.hook, api)
        if other is not api:
            raise HookError(
                f"{api.method.method.source}: {api.method.name} and "
                f"{other.method.name} both hand over to {api.hook} "
                "(codegen.plan.HOOKS); a hook drives one method"
            )
    unused = sorted(set(hooks) - {api.method.name for api in hooked.values()})
    if unused:
        # A misspelt entry would leave its method on _rpc, silently.
        raise HookError(
            f"codegen.plan.HOOKS names {', '.join(unused)}: no client-sent "
            "method of the spec that the API sends"
        )
    reply_codes = tuple(
        (naming.constant_name(c.name), c.value, c.error_class)
        for c in spec.constants
        if c.error_class or c.name.startswith("reply-")
    )
    constants = tuple(
        (naming.constant_name(c.name), c.value, c.error_class) for c in spec.constants
    )
    return SpecPlan(
        spec=spec,
        header=header(spec),
        constants=constants,
        reply_codes=reply_codes,
        class_ids=tuple((naming.constant_name(c.name), c.index) for c in spec.classes),
        errors=errors,
        modules=tuple(modules),
        properties=tuple(properties),
        channel_api=tuple(channel_api),
        connection_api=tuple(connection_api),
        property_structs=tuple(sorted(prop_structs)),
        channel_hooks=tuple(plan_hook(hooked[h]) for h in HOOK_KINDS if h in hooked),
    )
