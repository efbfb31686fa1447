"""Plan the specialised codecs of the method classes (AMQP 0-9-1 §4.2.5).

* fixed-size fields (octet, short, long, longlong) next to each other form a
  *run* packed by one precompiled ``struct.Struct``; the length prefix of a
  following shortstr or longstr joins the run;
* consecutive bit fields are folded into octets, least significant bit
  first, eight to an octet; any other field ends the fold;
* reserved fields are written as zero/empty and skipped when read.

Owns: the bodies of ``encode``/``decode_from``, the C decoder's layout
table (:func:`c_kinds`: one kind character per wire field, the vocabulary
``amqp_client/_speedups.c`` reads) and the publish fast path
(``frames()``). Pure: no I/O, no jinja2; it does not name Python types or
write docstrings (codegen.fields, codegen.docstrings).
"""

from __future__ import annotations

import struct

from codegen.fields import _INT_MAX, PlanField, is_name
from codegen.model import AMQPClass, Method, Spec, SpecError

_STRUCT_CHARS = {"octet": "B", "short": "H", "long": "I", "longlong": "Q"}

#: Bodies of this many bytes or more are left out of the one joined buffer
#: of the publish fast path (amqp_client.frames.JOIN_MAX, which a test holds
#: equal).
JOIN_MAX = 65536


#: The first decode line of a decoder that looks names up: NAMES is keyed
#: by ``bytes``, which a bytearray slice is not.
_BYTES_ONLY = "buf = buf if buf.__class__ is bytes else bytes(buf)"


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


# --- method codecs -----------------------------------------------------------


class _Emitter:
    """Builds the encode and decode bodies of one method."""

    def __init__(
        self, structs: set[str], uses: set[str], checked_bits: bool = False
    ) -> None:
        self.structs = structs
        # The runtime names the emitted code calls (OCTETS, bit_value...):
        # the module's imports (see codegen.imports).
        self.uses = uses
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
        # construction cannot leak into a neighbouring bit. True and False
        # (what the constructor leaves) are told apart inline: a call per
        # bit is most of a small method's encoding.
        exprs = []
        for e, p in self.bits:
            if self.checked_bits:
                value = f"self.{e}"
            else:
                self.uses.add("bit_value")
                value = (
                    f"(self.{e} is True or (self.{e} is not False "
                    f"and bit_value(self.{e})))"
                )
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
            self.uses.add("OCTETS")
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
                self.uses.update(("NAMES", "name_from"))
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
            self.uses.add("decode_table")
            if f.reserved:
                self.parts.append(repr(b"\0\0\0\0"))
                self.sizes.append("4")
                self.runs.append(None)
                self.decode.append("_, offset = decode_table(buf, offset)")
            else:
                self.uses.add("encode_table")
                self.parts.append(f'encode_table(self.{f.name}, "{f.name}")')
                self.sizes.append("")
                self.runs.append(None)
                self.decode.append(f"self.{f.name}, offset = decode_table(buf, offset)")
            return
        if f.type == "timestamp":
            self.uses.update(("encode_timestamp", "decode_timestamp"))
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


#: The layout kinds of the C decoder: one character per wire field. The
#: generator writes them into generated/spec.h as ``KIND_<name>`` macros,
#: which amqp_client/_speedups.c switches on, so both sides read one table.
C_KINDS: dict[str, str] = {
    "OCTET": "B",
    "SHORT": "H",
    "LONG": "I",
    "LONGLONG": "Q",
    "LONGSTR": "S",
    "TABLE": "t",
    "TIMESTAMP": "T",  # declined by C: the Python decoder reads it
    "NAME": "n",  # a shortstr shared through wire.NAMES
    "SHORTSTR": "s",
    "RESERVED_SHORTSTR": "r",
    "BIT0": "0",  # a bit at position k is chr(ord(BIT0) + k); 0 reads an octet
}

#: The kind of each AMQP type with one kind of its own.
_C_KIND_OF_TYPE = {
    "octet": C_KINDS["OCTET"],
    "short": C_KINDS["SHORT"],
    "long": C_KINDS["LONG"],
    "longlong": C_KINDS["LONGLONG"],
    "longstr": C_KINDS["LONGSTR"],
    "table": C_KINDS["TABLE"],
    "timestamp": C_KINDS["TIMESTAMP"],
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
            kinds.append(chr(ord(C_KINDS["BIT0"]) + bit))
        else:
            bit = -1
            if f.type != "shortstr":
                kinds.append(_C_KIND_OF_TYPE[f.type])
            elif f.reserved:
                kinds.append(C_KINDS["RESERVED_SHORTSTR"])
            elif is_name(f):
                kinds.append(C_KINDS["NAME"])
            else:
                kinds.append(C_KINDS["SHORTSTR"])
        names.append(None if f.reserved else f.name)
    return "".join(kinds), tuple(names)


def method_codec(
    fields: tuple[PlanField, ...], structs: set[str], uses: set[str] | None = None
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The bodies of ``encode`` and ``decode_from``; adds the struct formats
    they use to ``structs`` and the runtime names they call to ``uses``."""
    emitter = _Emitter(structs, set() if uses is None else uses)
    for f in fields:
        emitter.add(f)
    return emitter.result()


#: The names a content method's ``frames`` uses for itself; a field with one
#: of them would shadow it.
_FRAMES_LOCALS = frozenset(
    {"channel", "frame_max", "properties", "body", "props", "n", "method"}
)


#: AMQP 0-9-1 framing (§4.2.3): the values a spec that leaves a framing
#: constant out gets. The runtime's frame reader and writer
#: (amqp_client/frames.py) use the generated constants, so the two agree.
_FRAMING = {
    "frame-method": 1,
    "frame-header": 2,
    "frame-body": 3,
    "frame-min-size": 4096,
    "frame-end": 206,
}


def _frame_constant(spec: Spec, name: str) -> int:
    """A framing constant: the spec's, else the 0-9-1 value."""
    for c in spec.constants:
        if c.name == name:
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
    uses: set[str],
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
    uses.add("content_frames")
    emitter = _Emitter(structs, uses, checked_bits=True)
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
