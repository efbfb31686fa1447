"""Unit tests of the generated method classes, BasicProperties and the
per-reply-code exceptions (amqp_client.spec).

Exact bytes for hand-checked methods; every decode error names the method
and the field; constructors and encoders reject bad values with
TypeError/ValueError naming the field; equality, repr, class attributes,
the registry, the documentation taken from the spec, and the reply-code
exception classes.

The encode/decode properties over every method (round trip, pamqp and pika
interop) are in tests/property/test_methods_props.py.
"""

from __future__ import annotations

import datetime
import inspect
import pickle
import re
import struct
import types
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any, cast

import pytest

from amqp_client import errors, spec
from amqp_client._spec_base import REQUIRED, SECRET_FIELDS, Field, Method
from amqp_client.errors import FrameDecodeError

# Each test runs on the C decoders and on the pure-Python ones.
pytestmark = pytest.mark.usefixtures("wire_codec")

ALL_METHODS: tuple[type[Method], ...] = tuple(
    sorted(spec.METHODS.values(), key=lambda cls: cls.INDEX)
)
SPEC_XML = Path(__file__).resolve().parents[2] / "spec" / "amqp0-9-1.extended.xml"
UTC = datetime.UTC

_INT_BITS = {"octet": 8, "short": 16, "long": 32, "longlong": 64}
_FIXED_SIZE = {"octet": 1, "short": 2, "long": 4, "longlong": 8, "timestamp": 8}

#: A non-default value of every AMQP type, so every byte of an encoding is
#: exercised (shortstrs and longstrs are not empty, tables not empty).
SAMPLE: dict[str, Any] = {
    "bit": True,
    "octet": 0x7F,
    "short": 0x1234,
    "long": 0x12345678,
    "longlong": 0x123456789ABCDEF0,
    "shortstr": "x",
    "longstr": b"y",
    "table": {"k": "v"},
    "timestamp": datetime.datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC),
}


def sample(cls: type[Method], **overrides: Any) -> Method:
    """An instance of ``cls`` with every field set to a non-default value."""
    kwargs = {f.name: SAMPLE[f.type] for f in cls.FIELDS}
    kwargs.update(overrides)
    return cls(**kwargs)


def fields_of(
    *amqp_types: str, classes: tuple[type[Method], ...] = ALL_METHODS
) -> list[Any]:
    """pytest params (cls, field) for every field of the given AMQP types."""
    return [
        pytest.param(cls, field, id=f"{cls.NAME}:{field.name}")
        for cls in classes
        for field in cls.FIELDS
        if not amqp_types or field.type in amqp_types
    ]


def names_field(message: str, cls_name: str, field: str) -> bool:
    """``message`` names the method ``cls_name`` and the field ``field``
    (as a word of its own, not as part of the method name)."""
    if cls_name not in message:
        return False
    rest = message.replace(cls_name, " ")
    return re.search(rf"(?<![\w.-]){re.escape(field)}(?![\w-])", rest) is not None


by_method = pytest.mark.parametrize("cls", ALL_METHODS, ids=lambda cls: cls.NAME)


# --------------------------------------------------------------------------
# Exact bytes, checked by hand against AMQP 0-9-1 §4.2 and the class grammar


def _shortstr(text: str) -> bytes:
    data = text.encode()
    return bytes([len(data)]) + data


def _table(body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + body


EXACT: list[Any] = [
    pytest.param(
        spec.BasicPublish("amq.direct", "rk", mandatory=True),
        b"\x00\x00" + b"\x0aamq.direct" + b"\x02rk" + b"\x01",
        id="basic.publish mandatory",
    ),
    pytest.param(
        spec.BasicPublish("", "q", mandatory=True, immediate=True),
        b"\x00\x00\x00\x01q\x03",
        id="basic.publish both bits",
    ),
    pytest.param(
        spec.QueueDeclare(
            "q",
            durable=True,
            exclusive=True,
            no_wait=True,
            arguments={"x-max-length": 10},
        ),
        # reserved-1, queue, the 5 bits folded into one octet (passive is
        # bit 0 ... no-wait bit 4), arguments with the int as I (int32).
        b"\x00\x00"
        + b"\x01q"
        + bytes([0b10110])
        + _table(b"\x0cx-max-length" + b"I" + struct.pack(">i", 10)),
        id="queue.declare bits",
    ),
    pytest.param(
        spec.BasicDeliver("ctag", 2**64 - 1, "ex", "rk", redelivered=True),
        b"\x04ctag" + b"\xff" * 8 + b"\x01" + b"\x02ex" + b"\x02rk",
        id="basic.deliver",
    ),
    pytest.param(
        spec.ConnectionTune(2047, 131072, 60),
        b"\x07\xff" + b"\x00\x02\x00\x00" + b"\x00\x3c",
        id="connection.tune",
    ),
    pytest.param(spec.TxSelect(), b"", id="tx.select"),
    pytest.param(spec.ConnectionCloseOk(), b"", id="connection.close-ok"),
    pytest.param(
        spec.ExchangeDeclare("logs", "fanout", durable=True),
        b"\x00\x00\x04logs\x06fanout\x02\x00\x00\x00\x00",
        id="exchange.declare",
    ),
    pytest.param(
        spec.BasicQos(0, 10, global_=True),
        b"\x00\x00\x00\x00\x00\x0a\x01",
        id="basic.qos",
    ),
    pytest.param(
        spec.BasicNack(7, multiple=True, requeue=True),
        struct.pack(">QB", 7, 0b11),
        id="basic.nack",
    ),
    pytest.param(
        spec.ConnectionStartOk(
            "PLAIN",
            b"\x00guest\x00guest",
            "en_US",
            client_properties={"product": "amqp-client"},
        ),
        _table(b"\x07product" + b"S" + struct.pack(">I", 11) + b"amqp-client")
        + b"\x05PLAIN"
        + struct.pack(">I", 12)
        + b"\x00guest\x00guest"
        + b"\x05en_US",
        id="connection.start-ok",
    ),
    pytest.param(
        spec.ConnectionClose(320, "CONNECTION_FORCED - bye", 0, 0),
        struct.pack(">H", 320) + _shortstr("CONNECTION_FORCED - bye") + b"\x00" * 4,
        id="connection.close",
    ),
    pytest.param(spec.ChannelOpen(), b"\x00", id="channel.open reserved shortstr"),
    pytest.param(
        spec.ChannelOpenOk(), b"\x00\x00\x00\x00", id="channel.open-ok reserved longstr"
    ),
    pytest.param(spec.ConnectionOpen("/"), b"\x01/\x00\x00", id="connection.open"),
    pytest.param(
        spec.ConnectionUpdateSecret(b"token", "refresh"),
        b"\x00\x00\x00\x05token\x07refresh",
        id="connection.update-secret",
    ),
    pytest.param(
        spec.ConnectionBlocked("low on memory"),
        b"\x0dlow on memory",
        id="connection.blocked",
    ),
    pytest.param(
        spec.BasicProperties(
            content_type="text/plain",
            delivery_mode=2,
            timestamp=datetime.datetime(2024, 1, 1, tzinfo=UTC),
        ),
        b"\x90\x40" + b"\x0atext/plain" + b"\x02" + struct.pack(">Q", 1704067200),
        id="basic properties",
    ),
    pytest.param(spec.BasicProperties(), b"\x00\x00", id="basic properties empty"),
    pytest.param(
        spec.BasicProperties(headers={}, cluster_id=""),
        b"\x20\x04" + b"\x00\x00\x00\x00" + b"\x00",
        id="basic properties empty values are present",
    ),
]


@pytest.mark.parametrize(("value", "expected"), EXACT)
def test_exact_bytes(value: Any, expected: bytes) -> None:
    assert value.encode() == expected
    decoded = type(value).decode(expected)
    assert decoded == value
    assert repr(decoded) == repr(value)


def test_naive_timestamp_is_taken_as_utc() -> None:
    naive = spec.BasicProperties(timestamp=datetime.datetime(2024, 1, 1))
    aware = spec.BasicProperties(timestamp=datetime.datetime(2024, 1, 1, tzinfo=UTC))
    assert naive.encode() == aware.encode()
    decoded = spec.BasicProperties.decode(naive.encode())
    assert decoded.timestamp == datetime.datetime(2024, 1, 1, tzinfo=UTC)
    assert isinstance(decoded.timestamp, datetime.datetime)
    assert decoded.timestamp.tzinfo is not None


def test_timestamp_as_int_seconds() -> None:
    as_int = spec.BasicProperties(timestamp=1704067200)
    as_datetime = spec.BasicProperties(
        timestamp=datetime.datetime(2024, 1, 1, tzinfo=UTC)
    )
    assert as_int.encode() == as_datetime.encode()
    assert spec.BasicProperties.decode(as_int.encode()) == as_datetime
    # The last second a datetime holds decodes as one; later ones as ints.
    last = datetime.datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC)
    assert (
        spec.BasicProperties.decode(
            spec.BasicProperties(timestamp=253402300799).encode()
        ).timestamp
        == last
    )
    for seconds in (253402300800, 2**64 - 1):
        encoded = spec.BasicProperties(timestamp=seconds).encode()
        assert encoded == b"\x00\x40" + struct.pack(">Q", seconds)
        assert spec.BasicProperties.decode(encoded).timestamp == seconds


def test_timestamp_drops_sub_second_part() -> None:
    props = spec.BasicProperties(
        timestamp=datetime.datetime(2024, 1, 1, 0, 0, 1, 999999, tzinfo=UTC)
    )
    decoded = spec.BasicProperties.decode(props.encode())
    assert decoded.timestamp == datetime.datetime(2024, 1, 1, 0, 0, 1, tzinfo=UTC)


def test_reserved_fields_decode_whatever_they_hold() -> None:
    # pamqp sends "0" in channel.open's and channel.open-ok's reserved fields,
    # AMQP 0-8 peers a ticket and capabilities; all are to be ignored.
    assert spec.ChannelOpen.decode(b"\x010") == spec.ChannelOpen()
    assert spec.ChannelOpenOk.decode(b"\x00\x00\x00\x010") == spec.ChannelOpenOk()
    assert spec.BasicPublish.decode(b"\x00\x07\x00\x00\x00") == spec.BasicPublish()
    assert spec.ConnectionOpen.decode(b"\x01/\x03cap\x01") == spec.ConnectionOpen("/")


def test_unused_bits_of_a_bit_octet_are_ignored() -> None:
    assert spec.BasicAck.decode(struct.pack(">QB", 1, 0xFE)) == spec.BasicAck(1)
    assert spec.BasicAck.decode(struct.pack(">QB", 1, 0xFF)) == spec.BasicAck(
        1, multiple=True
    )


# --------------------------------------------------------------------------
# Decoding errors


def field_spans(cls: type[Method], data: bytes) -> list[tuple[str, int, int]]:
    """(wire field, start, end) of each field in a valid encoding; a run of
    bits shares one octet, which counts as its first bit's."""
    spans: list[tuple[str, int, int]] = []
    offset = 0
    bits = 0
    for name, amqp_type in cls.WIRE:
        if amqp_type == "bit":
            size = 1 if bits % 8 == 0 else 0
            bits += 1
        else:
            bits = 0
            if amqp_type in _FIXED_SIZE:
                size = _FIXED_SIZE[amqp_type]
            elif amqp_type == "shortstr":
                size = 1 + data[offset]
            else:  # longstr, table: a 4-byte length prefix
                size = 4 + struct.unpack_from(">I", data, offset)[0]
        spans.append((name, offset, offset + size))
        offset += size
    assert offset == len(data)
    return spans


def _ends_in_string(cls: type[Method]) -> bool:
    name, amqp_type = cls.WIRE[-1] if cls.WIRE else ("", "")
    return amqp_type in ("shortstr", "longstr") and not name.startswith("reserved")


@pytest.mark.parametrize(
    "cls",
    [pytest.param(cls, id=cls.NAME) for cls in ALL_METHODS if cls.WIRE],
)
def test_truncated_payload_names_method_and_field(cls: type[Method]) -> None:
    data = sample(cls).encode()
    spans = field_spans(cls, data)
    wrong = []
    for cut in range(len(data)):
        expected = next(name for name, _, end in spans if end > cut)
        with pytest.raises(FrameDecodeError) as info:
            cls.decode(data[:cut])
        if not names_field(str(info.value), cls.NAME, expected):
            wrong.append((cut, expected, str(info.value)))
    assert not wrong


@pytest.mark.parametrize(
    ("cls", "data", "field"),
    [
        # The reason's length says 3, one byte follows.
        pytest.param(spec.ConnectionBlocked, b"\x03a", "reason", id="shortstr"),
        # The challenge's length says 4, none follow.
        pytest.param(
            spec.ConnectionSecure, b"\x00\x00\x00\x04", "challenge", id="longstr"
        ),
    ],
)
def test_truncated_final_string_names_field(
    cls: type[Method], data: bytes, field: str
) -> None:
    with pytest.raises(FrameDecodeError) as info:
        cls.decode(data)
    assert names_field(str(info.value), cls.NAME, field), str(info.value)


@by_method
def test_trailing_bytes_are_an_error(cls: type[Method]) -> None:
    data = sample(cls).encode()
    for extra in (b"\x00", b"\xce", b"\x00" * 9):
        with pytest.raises(FrameDecodeError, match=re.escape(cls.NAME)) as info:
            cls.decode(data + extra)
        assert re.search("left over|trailing|extra", str(info.value))
    # decode_from stops at `end`: what follows is not its business.
    assert cls.decode_from(data + b"\xce", 0, len(data)) == sample(cls)


MARKER = "Z" * 7


@pytest.mark.parametrize(("cls", "field"), fields_of("shortstr"))
def test_invalid_utf8_in_shortstr_names_method_and_field(
    cls: type[Method], field: Field
) -> None:
    data = sample(cls, **{field.name: MARKER}).encode()
    assert data.count(b"\x07" + MARKER.encode()) == 1
    bad = data.replace(b"\x07" + MARKER.encode(), b"\x07\xff" + MARKER.encode()[1:])
    with pytest.raises(FrameDecodeError) as info:
        cls.decode(bad)
    assert names_field(str(info.value), cls.NAME, field.name), str(info.value)
    assert "utf-8" in str(info.value).lower()


def test_decode_errors_are_frame_decode_errors() -> None:
    assert issubclass(FrameDecodeError, errors.ProtocolError)
    assert issubclass(FrameDecodeError, ValueError)
    with pytest.raises(FrameDecodeError) as info:
        spec.ConnectionTune.decode(b"\x00")
    assert info.value.reply_code == 501


def test_properties_decode_errors() -> None:
    data = spec.BasicProperties(content_type="text/plain", headers={"a": 1}).encode()
    for cut in range(len(data)):
        with pytest.raises(
            FrameDecodeError, match=re.escape(spec.BasicProperties.NAME)
        ):
            spec.BasicProperties.decode(data[:cut])
    with pytest.raises(FrameDecodeError):
        spec.BasicProperties.decode(data + b"\x00")
    # Flag bit 0 announces a further flag word, bit 1 is unused: RabbitMQ
    # sends neither for class basic.
    for flags in (b"\x00\x01", b"\x00\x02"):
        with pytest.raises(FrameDecodeError):
            spec.BasicProperties.decode(flags)


@pytest.mark.parametrize(
    ("data", "prop"),
    [
        pytest.param(b"\x80", "flags", id="flags"),
        pytest.param(b"\x80\x00", "content_type", id="content_type missing"),
        pytest.param(b"\x80\x00\x05ab", "content_type", id="content_type cut"),
        pytest.param(b"\x80\x00\x01\xff", "content_type", id="content_type utf-8"),
        pytest.param(b"\x20\x00\x00\x00", "headers", id="headers cut"),
    ],
)
def test_properties_decode_errors_name_the_property(data: bytes, prop: str) -> None:
    with pytest.raises(FrameDecodeError) as info:
        spec.BasicProperties.decode(data)
    assert names_field(str(info.value), spec.BasicProperties.NAME, prop), str(
        info.value
    )


# --------------------------------------------------------------------------
# Constructor validation


@pytest.mark.parametrize(("cls", "field"), fields_of("shortstr"))
def test_shortstr_over_255_bytes_is_a_value_error(
    cls: type[Method], field: Field
) -> None:
    for value in ("x" * 256, "é" * 128, "€" * 86):
        with pytest.raises(ValueError, match=re.escape(field.name)):
            sample(cls, **{field.name: value})
    fits = "é" * 127 + "x"  # exactly 255 bytes
    assert getattr(sample(cls, **{field.name: fits}), field.name) == fits


#: Values of the wrong Python type for each AMQP type.
WRONG_TYPE: dict[str, list[Any]] = {
    "bit": ["yes", None, 1.0, 2, b"\x01"],
    "octet": ["1", 1.0, None, b"\x01"],
    "short": ["1", 1.0, None],
    "long": ["1", 1.0, None],
    "longlong": ["1", 1.0, None, 2**64 * 1.0],
    "shortstr": [b"x", 1, None, ["x"]],
    "longstr": ["x", 1, None],
    "table": [[("a", 1)], "a", 1, {"a", "b"}],
}


@pytest.mark.parametrize(("cls", "field"), fields_of())
def test_wrong_type_is_a_type_error_naming_the_field(
    cls: type[Method], field: Field
) -> None:
    for value in WRONG_TYPE[field.type]:
        with pytest.raises(TypeError, match=re.escape(field.name)):
            sample(cls, **{field.name: value})


@pytest.mark.parametrize(("cls", "field"), fields_of(*_INT_BITS))
def test_int_out_of_range_is_a_value_error_naming_the_field(
    cls: type[Method], field: Field
) -> None:
    bits = _INT_BITS[field.type]
    for value in (-1, -(2**bits), 2**bits, 2**bits + 1, 2**100):
        with pytest.raises(ValueError, match=re.escape(field.name)):
            sample(cls, **{field.name: value})
    for value in (0, 2**bits - 1):
        assert getattr(sample(cls, **{field.name: value}), field.name) == value


def test_bits_take_bools_and_0_or_1() -> None:
    # Deliberately ints, not bools: the codec takes 0 and 1 for a bit.
    method = spec.QueueDeclare(durable=cast(Any, 1), exclusive=cast(Any, 0))
    assert method.durable is True
    assert method.exclusive is False


def test_tables_take_any_mapping_and_none() -> None:
    proxy = types.MappingProxyType({"x-expires": 1000})
    method = spec.QueueDeclare("q", arguments=proxy)
    assert type(method.arguments) is dict
    assert method.arguments == {"x-expires": 1000}
    assert spec.QueueDeclare("q", arguments=None).arguments == {}
    assert spec.QueueDeclare("q").arguments == {}


@pytest.mark.parametrize(
    "make",
    [
        pytest.param(lambda: spec.QueueDeclare("\udc80"), id="QueueDeclare"),
        pytest.param(lambda: spec.BasicPublish("", "\ud800"), id="BasicPublish"),
        pytest.param(
            lambda: spec.BasicProperties(content_type="\udc80"), id="BasicProperties"
        ),
    ],
)
def test_unencodable_shortstr_is_a_value_error(make: Any) -> None:
    with pytest.raises(ValueError):
        make()


def test_unencodable_long_shortstr_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="queue"):
        spec.QueueDeclare("\udc80" * 64)


@pytest.mark.parametrize(
    "cls",
    [cls for cls in ALL_METHODS if any(f.default is REQUIRED for f in cls.FIELDS)],
    ids=lambda c: c.NAME,
)
def test_required_fields_cannot_be_omitted(cls: type[Method]) -> None:
    required = [f for f in cls.FIELDS if f.default is REQUIRED]
    full = {f.name: SAMPLE[f.type] for f in required}
    cls(**full)
    for field in required:
        kwargs = {name: value for name, value in full.items() if name != field.name}
        with pytest.raises(TypeError, match=re.escape(field.name)):
            cls(**kwargs)


def test_exchange_declare_requires_exchange() -> None:
    assert spec.ExchangeDeclare.FIELDS[0].name == "exchange"
    assert spec.ExchangeDeclare.FIELDS[0].default is REQUIRED
    with pytest.raises(TypeError, match="exchange"):
        exchange_declare: Any = spec.ExchangeDeclare
        exchange_declare()
    assert spec.ExchangeDeclare("logs").type == "direct"


@by_method
def test_defaults_are_the_spec_defaults(cls: type[Method]) -> None:
    method = cls(
        **{f.name: SAMPLE[f.type] for f in cls.FIELDS if f.default is REQUIRED}
    )
    for field in cls.FIELDS:
        if field.default is REQUIRED:
            continue
        expected = {} if field.type == "table" else field.default
        assert getattr(method, field.name) == expected, field.name


@by_method
def test_signature_follows_the_fields(cls: type[Method]) -> None:
    """Non-bit non-table fields positional-or-keyword in spec order; bits
    and tables keyword-only; parameter defaults are the spec defaults."""
    params = list(inspect.signature(cls).parameters.values())
    assert [p.name for p in params] == [
        f.name for f in cls.FIELDS if f.type not in ("bit", "table")
    ] + [f.name for f in cls.FIELDS if f.type in ("bit", "table")]
    by_name = {f.name: f for f in cls.FIELDS}
    for param in params:
        field = by_name[param.name]
        keyword_only = field.type in ("bit", "table")
        assert param.kind is (
            inspect.Parameter.KEYWORD_ONLY
            if keyword_only
            else inspect.Parameter.POSITIONAL_OR_KEYWORD
        ), param.name
        if field.default is REQUIRED:
            assert param.default is inspect.Parameter.empty, param.name
        else:
            assert param.default == field.default, param.name


# --------------------------------------------------------------------------
# Bad values assigned after construction


def _bad_values(field: Field) -> list[tuple[Any, type[Exception]]]:
    if field.type in _INT_BITS:
        bits = _INT_BITS[field.type]
        return [
            (-1, ValueError),
            (2**bits, ValueError),
            ("1", TypeError),
            (None, TypeError),
            (1.5, TypeError),
        ]
    others: dict[str, list[tuple[Any, type[Exception]]]] = {
        # 2 must not spill into the next bit (BasicNack.multiple = 2 would
        # otherwise send requeue=True).
        "bit": [("yes", TypeError), (None, TypeError), (2, TypeError), (-1, TypeError)],
        "shortstr": [
            ("x" * 256, ValueError),
            ("é" * 128, ValueError),
            (b"x", TypeError),
            (None, TypeError),
            ("\udc80", ValueError),
        ],
        "longstr": [("x", TypeError), (None, TypeError), (7, TypeError)],
        "table": [([1], TypeError), ("a", TypeError), (5, TypeError)],
    }
    return others[field.type]


@pytest.mark.parametrize(("cls", "field"), fields_of())
def test_bad_value_assigned_later_fails_encode_naming_the_field(
    cls: type[Method], field: Field
) -> None:
    for value, error in _bad_values(field):
        method = sample(cls)
        setattr(method, field.name, value)
        with pytest.raises((TypeError, ValueError)) as info:
            method.encode()
        assert type(info.value) is error, (value, info.value)
        assert not isinstance(info.value, struct.error)
        assert names_field(str(info.value), cls.NAME, field.name), str(info.value)


def test_float_bit_assigned_later_fails_encode() -> None:
    silent = []
    for param in fields_of("bit"):
        cls, field = param.values
        method = sample(cls)
        setattr(method, field.name, 1.0)
        try:
            method.encode()
        except TypeError as exc:
            assert names_field(str(exc), cls.NAME, field.name), str(exc)
        else:
            silent.append(f"{cls.NAME}.{field.name}")
    # Reproducer: m = BasicAck(1); m.multiple = 1.0; m.encode() sends multiple.
    assert not silent


def test_bad_table_value_assigned_later_names_the_key_path() -> None:
    method = spec.QueueDeclare("q")
    method.arguments = {"x-args": {"nested": object()}}
    with pytest.raises(TypeError) as info:
        method.encode()
    assert "arguments" in str(info.value)
    assert "nested" in str(info.value)


PROPERTY_BAD: dict[str, list[tuple[Any, type[Exception]]]] = {
    "shortstr": [("x" * 256, ValueError), (b"x", TypeError), (1, TypeError)],
    "octet": [(-1, ValueError), (256, ValueError), ("1", TypeError)],
    "table": [([1], TypeError), ("a", TypeError)],
    "timestamp": [
        ("now", TypeError),
        (1.5, TypeError),
        (True, TypeError),
        (-1, ValueError),
        (2**64, ValueError),
    ],
}


@pytest.mark.parametrize("field", spec.BasicProperties.FIELDS, ids=lambda f: f.name)
def test_properties_validation(field: Field) -> None:
    for value, error in PROPERTY_BAD[field.type]:
        with pytest.raises(error, match=re.escape(field.name)):
            spec.BasicProperties(**{field.name: value})
        props = spec.BasicProperties()
        setattr(props, field.name, value)
        with pytest.raises(error) as info:
            props.encode()
        assert names_field(str(info.value), spec.BasicProperties.NAME, field.name), str(
            info.value
        )


def test_properties_timestamp_before_1970_fails_encode() -> None:
    props = spec.BasicProperties(
        timestamp=datetime.datetime(1969, 12, 31, 23, 59, 59, tzinfo=UTC)
    )
    with pytest.raises(ValueError, match="timestamp"):
        props.encode()


# --------------------------------------------------------------------------
# Equality, repr, slots


def test_equality() -> None:
    assert spec.QueueDeclare("q", durable=True) == spec.QueueDeclare("q", durable=True)
    assert spec.QueueDeclare("q", durable=True) != spec.QueueDeclare("q")
    assert spec.QueueDeclare("q", arguments={"a": 1}) != spec.QueueDeclare("q")
    # Same fields, different method: never equal.
    assert spec.BasicConsumeOk("t") != spec.BasicCancelOk("t")
    assert spec.TxSelect() == spec.TxSelect()
    assert spec.TxSelect() != spec.TxCommit()
    assert spec.TxSelect() != ()
    assert spec.BasicProperties(priority=1) == spec.BasicProperties(priority=1)
    assert spec.BasicProperties(priority=1) != spec.BasicProperties()
    # Mutable, so unhashable (like a dataclass with eq).
    with pytest.raises(TypeError):
        hash(spec.TxSelect())
    with pytest.raises(TypeError):
        hash(spec.BasicProperties())


def test_repr() -> None:
    assert repr(spec.QueueDeclare("q", durable=True)) == (
        "QueueDeclare(queue='q', passive=False, durable=True, exclusive=False, "
        "auto_delete=False, no_wait=False, arguments={})"
    )
    assert repr(spec.TxSelect()) == "TxSelect()"
    assert repr(spec.BasicProperties(delivery_mode=2)).startswith(
        "BasicProperties(content_type=None, content_encoding=None, headers=None, delivery_mode=2"
    )


@by_method
def test_repr_evaluates_to_an_equal_object(cls: type[Method]) -> None:
    method = sample(cls)
    if any((cls.NAME, f.name) in SECRET_FIELDS for f in cls.FIELDS):
        # A password never appears in a repr (DESIGN.md §4): the fields
        # that carry one (start-ok's SASL response, update-secret's new
        # secret) show '***', so these do not evaluate back.
        assert "='***'" in repr(method)
        return
    namespace = {"datetime": datetime.datetime, cls.__name__: cls}
    assert eval(repr(method), namespace) == method


@by_method
def test_slots_in_wire_order(cls: type[Method]) -> None:
    assert cls.__slots__ == tuple(f.name for f in cls.FIELDS)
    method = sample(cls)
    assert not hasattr(method, "__dict__")
    with pytest.raises(AttributeError):
        method.not_a_field = 1  # type: ignore[attr-defined]


# --------------------------------------------------------------------------
# Class attributes and the registry

SPEC_METHODS = {
    "connection": "start start-ok secure secure-ok tune tune-ok open open-ok close close-ok",
    "channel": "open open-ok flow flow-ok close close-ok",
    "exchange": "declare declare-ok delete delete-ok bind bind-ok unbind unbind-ok",
    "queue": "declare declare-ok bind bind-ok unbind unbind-ok purge purge-ok delete delete-ok",
    "basic": "qos qos-ok consume consume-ok cancel cancel-ok publish return deliver get "
    "get-ok get-empty ack reject recover-async recover recover-ok nack",
    "tx": "select select-ok commit commit-ok rollback rollback-ok",
    "confirm": "select select-ok",
}
OVERLAY_METHODS = {
    "connection.blocked": (10, 60),
    "connection.unblocked": (10, 61),
    "connection.update-secret": (10, 70),
    "connection.update-secret-ok": (10, 71),
}
CLASS_IDS = {
    "connection": 10,
    "channel": 20,
    "exchange": 40,
    "queue": 50,
    "basic": 60,
    "confirm": 85,
    "tx": 90,
}


def test_registry_is_complete() -> None:
    spec_names = {
        f"{cls}.{m}" for cls, names in SPEC_METHODS.items() for m in names.split()
    }
    assert len(spec_names) == 60
    assert set(spec.BY_NAME) == spec_names | set(OVERLAY_METHODS)
    assert len(spec.METHODS) == 64
    for name, (class_id, method_id) in OVERLAY_METHODS.items():
        cls = spec.BY_NAME[name]
        assert (class_id, method_id) == (cls.CLASS_ID, cls.METHOD_ID)
        assert spec.METHODS[class_id << 16 | method_id] is cls


def test_registry_is_sorted_by_id_and_consistent() -> None:
    assert list(spec.METHODS) == sorted(spec.METHODS)
    assert list(spec.BY_NAME.values()) == list(spec.METHODS.values())
    for index, cls in spec.METHODS.items():
        assert index == cls.INDEX == cls.CLASS_ID << 16 | cls.METHOD_ID
        assert spec.BY_NAME[cls.NAME] is cls
        assert CLASS_IDS[cls.NAME.split(".")[0]] == cls.CLASS_ID
        assert issubclass(cls, Method)
    assert {60: spec.BasicProperties} == spec.PROPERTIES


@by_method
def test_class_name_and_export(cls: type[Method]) -> None:
    expected = "".join(part.capitalize() for part in re.split(r"[.-]", cls.NAME))
    assert cls.__name__ == expected
    assert getattr(spec, expected) is cls
    assert expected in spec.__all__


@by_method
def test_fields_describe_the_wire(cls: type[Method]) -> None:
    assert all(isinstance(f, Field) for f in cls.FIELDS)
    wire = [
        (name, amqp_type)
        for name, amqp_type in cls.WIRE
        if not name.startswith("reserved")
    ]
    assert [(f.name, f.type) for f in cls.FIELDS] == wire
    for field in cls.FIELDS:
        assert field.name.replace("_", "-").rstrip("-") == field.spec_name
        assert field.name.isidentifier()


def test_responses_are_classes() -> None:
    assert (spec.QueueDeclareOk,) == spec.QueueDeclare.RESPONSES
    assert (spec.BasicGetOk, spec.BasicGetEmpty) == spec.BasicGet.RESPONSES
    assert (spec.ConnectionUpdateSecretOk,) == spec.ConnectionUpdateSecret.RESPONSES
    assert spec.BasicPublish.RESPONSES == ()
    for cls in ALL_METHODS:
        for response in cls.RESPONSES:
            assert isinstance(response, type)
            assert spec.METHODS[response.INDEX] is response
            assert response.CLASS_ID == cls.CLASS_ID
        if cls.RESPONSES:
            assert cls.SYNCHRONOUS, cls.NAME


def test_class_attributes() -> None:
    content = {cls.NAME for cls in ALL_METHODS if cls.HAS_CONTENT}
    assert content == {"basic.publish", "basic.return", "basic.deliver", "basic.get-ok"}
    assert spec.QueueDeclare.SYNCHRONOUS is True
    assert spec.BasicPublish.SYNCHRONOUS is False
    assert spec.BasicAck.SYNCHRONOUS is False
    assert spec.QueueDeclare.NAME == "queue.declare"
    assert (spec.QueueDeclare.CLASS_ID, spec.QueueDeclare.METHOD_ID) == (50, 10)
    assert spec.BasicRecoverAsync.DEPRECATED is True
    assert spec.BasicRecover.DEPRECATED is False


# --------------------------------------------------------------------------
# Documentation from the spec


def _xml_methods() -> list[tuple[str, ET.Element]]:
    root = ET.parse(SPEC_XML).getroot()
    return [
        (f"{cls.get('name')}.{method.get('name')}", method)
        for cls in root.iter("class")
        for method in cls.findall("method")
    ]


def _field_doc(element: ET.Element) -> str:
    """The first paragraph of a field's own spec text ("" when it has none)."""
    for doc in element.findall("doc"):
        if doc.get("type") is None:
            return _flat(doc.text).split("\n\n")[0]
    return ""


def _flat(text: str | None) -> str:
    return " ".join((text or "").split())


def test_help_of_queue_declare_shows_fields_and_rules() -> None:
    import pydoc

    text = pydoc.plain(pydoc.render_doc(spec.QueueDeclare))
    doc = _flat(inspect.getdoc(spec.QueueDeclare))
    assert doc.startswith("Declare queue, create if needed.")
    assert doc.split(".")[0] in text
    xml = dict(_xml_methods())["queue.declare"]
    for field in spec.QueueDeclare.FIELDS:
        assert field.name in text
        assert f"{field.name} (" in doc  # its Args entry
        element = next(f for f in xml.iter("field") if f.get("name") == field.spec_name)
        # The label is the field's, or its domain's when the field has none.
        assert (element.get("label") or "").lower() in doc.lower()
        assert _flat(_field_doc(element))[:60] in doc
    for rule in (
        "default-binding",
        "minimum-queues",
        "queue.default-name",
        "queue.reserved",
        "queue.syntax",
        "exclusive.exclusive",
        "auto_delete.pre-existence",
    ):
        assert rule in doc
    assert "QueueDeclareOk" in doc
    assert "PreconditionFailedError" in doc  # queue.syntax fails with 406
    assert "shortstr" in doc and "bit" in doc and "table" in doc


@pytest.mark.parametrize(
    ("name", "element"), _xml_methods(), ids=lambda v: v if isinstance(v, str) else ""
)
def test_docstring_carries_the_spec_text(name: str, element: ET.Element) -> None:
    cls = spec.BY_NAME[name]
    doc = _flat(inspect.getdoc(cls))
    label = element.get("label", "")
    assert label.lower() in doc.lower()
    for field in cls.FIELDS:
        assert field.name in doc
        xml_field = next(
            f for f in element.iter("field") if f.get("name") == field.spec_name
        )
        assert " ".join(_field_doc(xml_field).split()[:8]) in doc, field.name
    for rule in element.iter("rule"):
        assert rule.get("name", "") in doc


# --------------------------------------------------------------------------
# Reply-code exceptions


def test_reply_code_classes() -> None:
    assert issubclass(spec.NotFoundError, errors.ChannelClosed)
    assert spec.NotFoundError.REPLY_CODE == 404
    assert spec.NotFoundError().reply_code == 404
    assert issubclass(spec.AMQPSyntaxError, errors.ConnectionClosed)
    assert spec.AMQPSyntaxError.REPLY_CODE == 502
    assert issubclass(spec.AMQPNotImplementedError, errors.ConnectionClosed)
    assert spec.AMQPNotImplementedError.REPLY_CODE == 540
    # Names that would shadow a builtin are prefixed.
    assert not hasattr(spec, "SyntaxError")
    assert not hasattr(spec, "NotImplementedError")
    for code, cls in spec.ERRORS_BY_CODE.items():
        assert code == cls.REPLY_CODE
        assert issubclass(cls, errors.AMQPError)
        family = (
            errors.ChannelClosed
            if code in spec.SOFT_ERRORS
            else errors.ConnectionClosed
        )
        assert issubclass(cls, family), cls
    assert set(spec.ERRORS_BY_CODE) == spec.SOFT_ERRORS | spec.HARD_ERRORS


def test_channel_error_picks_the_class() -> None:
    exc = spec.channel_error(404, "NOT_FOUND - no queue 'q'", 50, 10)
    assert type(exc) is spec.NotFoundError
    assert (exc.reply_code, exc.reply_text, exc.class_id, exc.method_id) == (
        404,
        "NOT_FOUND - no queue 'q'",
        50,
        10,
    )
    assert "404" in str(exc) and "NOT_FOUND - no queue 'q'" in str(exc)
    # A hard-error code on channel.close, or an unknown code: the family class.
    for code in (320, 999):
        other = spec.channel_error(code, "odd")
        assert type(other) is errors.ChannelClosed
        assert other.reply_code == code


def test_connection_error_picks_the_class() -> None:
    exc = spec.connection_error(320, "CONNECTION_FORCED - shutdown")
    assert type(exc) is spec.ConnectionForcedError
    # RabbitMQ closes the connection with 403 on a failed login: a soft
    # code on connection.close stays in the connection family.
    refused = spec.connection_error(403, "ACCESS_REFUSED")
    assert isinstance(refused, errors.ConnectionClosed)
    assert not isinstance(refused, errors.ChannelClosed)
    assert refused.reply_code == 403
    assert type(spec.connection_error(999)) is errors.ConnectionClosed


def _error_instances() -> list[Any]:
    made: list[Any] = [
        cls(cls.REPLY_CODE, f"text {code}", 50, 10)
        for code, cls in spec.ERRORS_BY_CODE.items()
    ]
    made += [
        spec.channel_error(406, "PRECONDITION_FAILED", 40, 10),
        spec.connection_error(541),
    ]
    made += [spec.channel_error(320), spec.connection_error(403, "ACCESS_REFUSED")]
    return made


@pytest.mark.parametrize(
    "exc", _error_instances(), ids=lambda e: f"{type(e).__name__}-{e.reply_code}"
)
def test_exceptions_pickle(exc: errors.AMQPError) -> None:
    copy = pickle.loads(pickle.dumps(exc))
    assert type(copy) is type(exc)
    assert copy.args == exc.args
    assert str(copy) == str(exc)


# --------------------------------------------------------------------------
# Names shared between decoded messages


def test_names_in_deliveries_are_shared() -> None:
    data = spec.BasicDeliver("ctag-1", 7, "ex", "rk").encode()
    first = spec.BasicDeliver.decode(data)
    second = spec.BasicDeliver.decode(bytearray(data))
    assert first == second
    for field in ("consumer_tag", "exchange", "routing_key"):
        assert getattr(first, field) is getattr(second, field), field


def test_which_properties_are_names() -> None:
    props = spec.BasicProperties(
        content_type="application/json",
        reply_to="amq.rabbitmq.reply-to",
        message_id="m-1",
        correlation_id="c-1",
    )
    data = props.encode()
    first = spec.BasicProperties.decode(data)
    second = spec.BasicProperties.decode(data)
    assert first == second == props
    assert first.content_type is second.content_type
    assert first.reply_to is second.reply_to
    # Identifiers of one message are not kept.
    assert first.message_id is not second.message_id
    assert first.correlation_id is not second.correlation_id


@pytest.mark.parametrize(("cls", "field"), fields_of("shortstr"))
def test_decoders_share_names_and_only_names(cls: type[Method], field: Field) -> None:
    # Names are consumer tags, exchange and queue names (by domain), routing
    # keys and exchange types; anything else (reply-text, virtual host...)
    # is decoded afresh each time.
    data = sample(cls, **{field.name: "name-1"}).encode()
    first, second = cls.decode(data), cls.decode(data)
    assert getattr(first, field.name) == "name-1"
    shared = getattr(first, field.name) is getattr(second, field.name)
    by_domain = field.domain in ("consumer-tag", "exchange-name", "queue-name")
    assert shared is (by_domain or field.name in ("routing_key", "type"))


def test_a_name_that_is_not_utf8_is_still_a_decode_error() -> None:
    data = b"\x02\xff\xfe" + bytes(10) + b"\x00\x00"
    with pytest.raises(FrameDecodeError, match=r"basic.deliver"):
        spec.BasicDeliver.decode(data)
