"""The pure layers of the generator: naming rules, codec planning, docs."""

from __future__ import annotations

import pytest

from codegen import docs, naming
from codegen.codec import method_codec
from codegen.fields import plan_fields, signature
from codegen.imports import import_lines
from codegen.model import AMQPClass, Field, Method, Source
from codegen.propcodec import flag_layout

SRC = Source("t.xml", 1)


def field(
    name: str, type_: str, reserved: bool = False, notnull: bool = False
) -> Field:
    from codegen.model import Assert

    return Field(
        name=name,
        domain=type_,
        type=type_,
        label="",
        reserved=reserved,
        docs=(),
        asserts=(Assert("notnull"),) if notnull else (),
        rules=(),
        source=SRC,
    )


def method(*fields: Field) -> tuple[AMQPClass, Method]:
    m = Method("m", 1, False, False, False, "", ("server",), (), fields, (), (), SRC)
    return AMQPClass("c", 1, "", "", (), (m,), (), (), (), SRC), m


@pytest.mark.parametrize(
    ("spec_name", "python"),
    [
        ("no-wait", "no_wait"),
        ("global", "global_"),
        ("auto-delete", "auto_delete"),
        ("type", "type"),
    ],
)
def test_python_names(spec_name: str, python: str) -> None:
    assert naming.python_name(spec_name) == python


def test_class_error_and_constant_names() -> None:
    assert naming.class_name("basic", "get-ok") == "BasicGetOk"
    assert naming.api_name("queue", "declare") == "queue_declare"
    assert naming.connection_api_name("update-secret") == "update_secret"
    assert naming.error_name("not-found") == "NotFoundError"
    assert naming.error_name("channel-error") == "ChannelError"
    assert naming.error_name("syntax-error") == "AMQPSyntaxError"
    assert naming.error_name("not-implemented") == "AMQPNotImplementedError"
    assert naming.constant_name("frame-min-size") == "FRAME_MIN_SIZE"
    assert naming.property_name("basic", "reserved") == "cluster_id"


def test_flag_layout_one_word() -> None:
    words, masks = flag_layout(14)
    assert words == 1
    assert masks[0] == 0x8000 and masks[13] == 0x0004


def test_flag_layout_spills_into_a_second_word() -> None:
    words, masks = flag_layout(16)
    assert words == 2
    assert masks[0] == 0x8000 << 16
    assert masks[14] == 0x0002 << 16  # the last property of the first word
    assert masks[15] == 0x8000  # the first of the second word; bit 0 is continuation


def test_fixed_fields_share_one_struct_and_bits_fold() -> None:
    cls, m = method(
        field("a", "short"),
        field("b", "long"),
        *[field(f"bit{i}", "bit") for i in range(9)],
        field("s", "shortstr"),
        field("c", "longlong"),
    )
    structs: set[str] = set()
    encode, decode = method_codec(plan_fields(cls, m), structs)
    # short, long, two bit octets and the shortstr length in one run; the
    # longlong after the string in another.
    assert structs == {"HIBBB", "Q"}

    def bit(name: str) -> str:  # True/False inline, anything else checked
        return f"(self.{name} is True or (self.{name} is not False and bit_value(self.{name})))"

    assert f"{bit('bit0')} | {bit('bit1')} << 1" in encode[-1]
    assert f"<< 7, {bit('bit8')}, len(s_)" in encode[-1]  # alone in octet 2
    assert any("obj.bit8 = (bits" in line and "& 0x01)" in line for line in decode)


def test_reserved_fields_are_constants() -> None:
    cls, m = method(
        field("reserved-1", "short", reserved=True),
        field("reserved-2", "shortstr", reserved=True),
    )
    encode, decode = method_codec(plan_fields(cls, m), set())
    assert encode == ("return b'\\x00\\x00\\x00'",)
    assert decode[-1] == "offset += n1"


def test_signature_rules() -> None:
    cls, m = method(
        field("a", "shortstr"),
        field("b", "shortstr", notnull=True),
        field("flag", "bit"),
        field("args", "table"),
        field("c", "short"),
    )
    # a precedes the required b, so it becomes required too; bits and
    # tables are keyword-only.
    assert signature(plan_fields(cls, m)) == (
        "a: str",
        "b: str",
        "c: int = 0",
        "*",
        "flag: bool = False",
        "args: Mapping[str, Any] | None = None",
    )


def test_docs_reflow_and_escape() -> None:
    assert docs.paragraphs("a\n  b\n\nc") == ["a b", "c"]
    assert docs.fill("word " * 30, width=20)[0] == "word word word word"
    assert docs.escape('say """hi""" \\ now') == 'say \\"\\"\\"hi\\"\\"\\" \\\\ now'
    assert docs.sentence("declare queue") == "Declare queue."


def test_imports_come_from_the_names_the_plan_records() -> None:
    assert import_lines(
        {"struct", "Any", "OCTETS", "Method", "bit_value", "NAMES"}
    ) == [
        "import struct",
        "from typing import Any",
        "",
        "from amqp_client._spec_base import OCTETS, Method, bit_value",
        "from amqp_client.wire import NAMES",
    ]
    with pytest.raises(KeyError):
        import_lines({"something_unknown"})


def test_codec_records_the_runtime_names_it_writes() -> None:
    cls, m = method(
        field("flag", "bit"), field("tag", "shortstr"), field("args", "table")
    )
    uses: set[str] = set()
    method_codec(plan_fields(cls, m), set(), uses)
    # The bit octet and the length of "tag" share one struct: no OCTETS.
    assert uses == {"bit_value", "encode_table", "decode_table"}
