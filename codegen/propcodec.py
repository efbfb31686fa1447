"""Plan the content-properties codec (AMQP 0-9-1 §4.2.6.1).

Properties are announced by 16-bit flag words, the first property in the
highest bit; bit 0 of a word says another follows. Owns the properties'
fields, flag layout and encode/decode bodies. Pure: no I/O, no jinja2.
"""

from __future__ import annotations

import struct

from codegen import docs, naming
from codegen.codec import _BYTES_ONLY, _STRUCT_CHARS, _name_lines
from codegen.fields import ANNOTATIONS, PlanField, is_name
from codegen.model import AMQPClass, SpecError

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
    fields: tuple[PlanField, ...], structs: set[str], uses: set[str]
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The bodies of the properties' ``encode`` and ``decode_from``; adds
    the struct formats to ``structs`` and the runtime names to ``uses``."""
    uses.add("FrameDecodeError")
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
            uses.add("OCTETS")
            enc += [f"    b = {v}.encode()", "    parts += (OCTETS[len(b)], b)"]
            block.append("    n = buf[offset]")
            if is_name(f):
                names = True
                uses.update(("NAMES", "name_from"))
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
            uses.update(("encode_table", "decode_table"))
            enc += [f'    parts.append(encode_table({v}, "{n}"))']
            block += [f"    self.{n}, offset = decode_table(buf, offset)"]
        elif f.type == "timestamp":
            uses.update(("encode_timestamp", "decode_timestamp"))
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
