"""The C speedups of the field-table codecs against the Python reference.

``amqp_client._speedups`` handles the common cases and returns None for the
rest, which wire.py then runs in Python (the reference, and the only code
that reports errors). So for every input: whatever the C code returns is
exactly what the Python code returns, and where the Python code raises the C
code must have declined. Checked here on generated tables, on their
encodings mutated, and on random bytes; and that the common cases really
are handled in C (a speedup that always declines would pass the rest).
"""

from __future__ import annotations

import datetime
import decimal
import os
import sys
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from amqp_client import _speedups, spec, wire
from amqp_client.errors import FrameDecodeError
from tests.property.strategies import (
    ALL_METHODS,
    basic_properties,
    field_tables,
    methods,
)
from tests.support.codecs import pure_python

UTC = datetime.UTC


def test_the_speedups_are_in_use() -> None:
    """A build that silently lost its C extension would pass every other
    test on the Python code: CI must fail instead."""
    assert not os.environ.get("AMQP_CLIENT_NO_SPEEDUPS")
    assert wire._c_encode_table is _speedups.encode_table
    assert wire._c_decode_table is _speedups.decode_table
    assert wire._c_encode_array is _speedups.encode_array
    assert wire._c_decode_array is _speedups.decode_array


def python_only(call: Callable[[], Any]) -> Any:
    """``call()`` on the pure-Python codecs."""
    with pure_python():
        return call()


def reference_decode(data: bytes, offset: int) -> tuple[Any, int] | FrameDecodeError:
    try:
        return python_only(lambda: wire.decode_table(data, offset))  # type: ignore[no-any-return]
    except FrameDecodeError as exc:
        return exc


def check_decode(data: bytes, offset: int = 0) -> Any:
    """C's decode of ``data`` is None or the Python result; returns C's."""
    got = _speedups.decode_table(data, offset, wire.NAMES, 4096)
    expected = reference_decode(data, offset)
    if got is not None:
        assert not isinstance(expected, FrameDecodeError), (data, got, expected)
        assert got == expected
        assert [type(v) for v in got[0].values()] == [
            type(v) for v in expected[0].values()
        ]
    return got


def mutated(encoded: bytes, data: st.DataObject, most: int) -> bytes:
    """``encoded`` with 1 to ``most`` bits flipped, cuts or inserted bytes."""
    out = bytearray(encoded)
    for _ in range(data.draw(st.integers(1, most))):
        if not out:
            break
        where = data.draw(st.integers(0, len(out) - 1))
        how = data.draw(st.sampled_from(["flip", "cut", "insert"]))
        if how == "flip":
            out[where] ^= 1 << data.draw(st.integers(0, 7))
        elif how == "cut":
            del out[where:]
        else:
            out[where:where] = data.draw(st.binary(min_size=1, max_size=4))
    return bytes(out)


# -- encoding -------------------------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(field_tables())
def test_encode_is_the_python_encoding_or_declines(table: dict[str, Any]) -> None:
    got = _speedups.encode_table(table)
    expected = python_only(lambda: wire.encode_table(table))
    assert got is None or got == expected


SIMPLE = {
    "s": "text",
    "é": "ünïcode",
    "i": -(2**31),
    "big": 2**40,
    "neg": -(2**63),
    "t": True,
    "f": False,
    "d": 1.5,
    "x": b"\x00\xff",
    "ba": bytearray(b"ab"),
    "v": None,
    "nested": {"a": [1, "b", (2.5, None)], "empty": {}},
}


def test_the_common_types_are_encoded_in_c() -> None:
    got = _speedups.encode_table(SIMPLE)
    assert got is not None
    assert got == python_only(lambda: wire.encode_table(SIMPLE))
    assert _speedups.encode_array([1, "a", [2]]) == python_only(
        lambda: wire.encode_array([1, "a", [2]])
    )


def _self_containing() -> dict[str, Any]:
    table: dict[str, Any] = {}
    table["me"] = table
    return table


def _deep(levels: int) -> dict[str, Any]:
    table: dict[str, Any] = {"leaf": 1}
    for _ in range(levels):
        table = {"t": table}
    return table


@pytest.mark.parametrize(
    "table",
    [
        {"d": decimal.Decimal("1.5")},
        {"ts": datetime.datetime(2020, 1, 1, tzinfo=UTC)},
        {"mv": memoryview(b"ab")},
        {"big": 2**63},
        {"\ud800": 1},
        {"v": "\ud800"},
        {1: "int key"},
        {"k" * 256: 1},
        {"od": OrderedDict(a=1)},
        {"o": object()},
        _self_containing(),
        _deep(40),
        OrderedDict(a=1),
        [("a", 1)],
    ],
    ids=[
        "decimal",
        "datetime",
        "memoryview",
        "int-over-int64",
        "surrogate-key",
        "surrogate-value",
        "int-key",
        "256-byte-key",
        "dict-subclass-value",
        "object",
        "contains-itself",
        "40-deep",
        "dict-subclass",
        "list",
    ],
)
def test_what_c_leaves_to_python(table: Any) -> None:
    assert _speedups.encode_table(table) is None


def test_a_table_that_contains_itself_still_fails_in_python() -> None:
    with pytest.raises(ValueError, match="contains itself"):
        wire.encode_table(_self_containing())


# -- decoding -------------------------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(field_tables(), st.binary(max_size=3))
def test_decode_matches_python(table: dict[str, Any], junk: bytes) -> None:
    data = junk + python_only(lambda: wire.encode_table(table)) + junk
    check_decode(data, len(junk))


@settings(max_examples=500, deadline=None)
@given(field_tables(), st.data())
def test_decode_of_mutated_encodings(
    table: dict[str, Any], data: st.DataObject
) -> None:
    encoded = python_only(lambda: wire.encode_table(table))
    check_decode(mutated(encoded, data, 4))


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=80), st.integers(0, 6))
def test_decode_of_random_bytes(data: bytes, offset: int) -> None:
    check_decode(data, offset)


def test_the_common_tags_are_decoded_in_c() -> None:
    data = python_only(lambda: wire.encode_table(SIMPLE))
    got = check_decode(data)
    assert got is not None
    # Every fixed-size tag, and S holding binary data (kept as bytes).
    raw = (
        b"\x01bb\xff\x01BB\xff\x01ss\xff\xfe\x01uu\xff\xfe\x01ii\xff\xff\xff\xff"
        b"\x01LL\xff\xff\xff\xff\xff\xff\xff\xfe\x01ff\x3f\xc0\x00\x00"
        b"\x01tt\x02\x01SS\x00\x00\x00\x02\xff\xfe"
    )
    table = len(raw).to_bytes(4, "big") + raw
    assert check_decode(table) == (
        {
            "b": -1,
            "B": 255,
            "s": -2,
            "u": 65534,
            "i": 2**32 - 1,
            "L": -2,
            "f": 1.5,
            "t": True,
            "S": b"\xff\xfe",
        },
        len(table),
    )


@pytest.mark.parametrize(
    "value",
    [
        {"d": decimal.Decimal("1.5")},
        {"ts": datetime.datetime(2020, 1, 1, tzinfo=UTC)},
        _deep(40),
    ],
    ids=["decimal", "timestamp", "40-deep"],
)
def test_decode_leaves_to_python(value: dict[str, Any]) -> None:
    data = python_only(lambda: wire.encode_table(value))
    assert _speedups.decode_table(data, 0, wire.NAMES, 4096) is None
    assert wire.decode_table(data, 0) == (value, len(data))


def test_decode_shares_names_and_empties_the_table_when_full() -> None:
    names: dict[bytes, str] = {b"old": "old"}
    data = python_only(lambda: wire.encode_table({"k1": 1, "k2": {"k3": 2}}))
    got = _speedups.decode_table(data, 0, names, 3)
    assert got == ({"k1": 1, "k2": {"k3": 2}}, len(data))
    # k1 and k2 filled it to 3; k3 emptied it first.
    assert names == {b"k3": "k3"}
    again = _speedups.decode_table(data, 0, names, 3)
    assert again is not None
    assert again[0]["k2"] == {"k3": 2}
    assert next(iter(again[0]["k2"])) is names[b"k3"]


def test_arrays() -> None:
    items = [1, "a", None, [True, {"k": b"x"}]]
    data = python_only(lambda: wire.encode_array(items))
    assert _speedups.decode_array(data, 0, wire.NAMES, 4096) == (items, len(data))
    assert _speedups.decode_array(data[:-1], 0, wire.NAMES, 4096) is None


def test_bad_calls_raise_type_error() -> None:
    with pytest.raises(TypeError):
        _speedups.decode_table(bytearray(b"\0\0\0\0"), 0, {}, 1)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        _speedups.decode_table(b"\0\0\0\0", 0)  # type: ignore[call-arg]
    assert _speedups.decode_table(b"\0\0\0\0", 9, {}, 1) is None
    assert _speedups.decode_table(b"\0\0\0\0", -1, {}, 1) is None


# -- the generated decoders: method arguments and content properties ----------------


def layout_of(cls: type[Any]) -> Any:
    module = sys.modules[cls.__module__]
    layout = getattr(module, f"_L_{cls.__name__}")
    assert layout is not None, cls
    return layout


def python_decode(cls: type[Any], data: bytes, offset: int, end: int) -> Any:
    """``cls.decode_from`` on its Python code alone."""
    try:
        return python_only(lambda: cls.decode_from(data, offset, end))
    except FrameDecodeError as exc:
        return exc


def c_decode(cls: type[Any], data: bytes, offset: int, end: int) -> Any:
    decode = (
        _speedups.decode_properties
        if cls is spec.BasicProperties
        else _speedups.decode_fields
    )
    return decode(cls, layout_of(cls), data, offset, end)


def check_object(cls: type[Any], data: bytes, offset: int = 0, end: int = -1) -> Any:
    """C's decode is None or the Python result, attribute by attribute."""
    end = len(data) if end < 0 else end
    got = c_decode(cls, data, offset, end)
    expected = python_decode(cls, data, offset, end)
    if got is not None:
        assert not isinstance(expected, FrameDecodeError), (cls, data, expected)
        assert type(got) is cls
        for name in cls.__slots__:
            a, b = getattr(got, name), getattr(expected, name)
            assert a == b and type(a) is type(b), (cls, name, a, b)
    return got


CODECS: list[type[Any]] = [*ALL_METHODS, spec.BasicProperties]


def left_to_python(value: Any, depth: int = 0) -> bool:
    """Whether a field value is one the C decoders leave to Python: a
    timestamp, a decimal, or tables nested more than 32 deep."""
    if isinstance(value, (datetime.datetime, decimal.Decimal)):
        return True
    if isinstance(value, dict):
        return depth >= 32 or any(left_to_python(v, depth + 1) for v in value.values())
    if isinstance(value, list):
        return depth >= 32 or any(left_to_python(v, depth + 1) for v in value)
    return False


def objects(cls: type[Any]) -> st.SearchStrategy[Any]:
    return basic_properties() if cls is spec.BasicProperties else methods(cls)


@pytest.mark.parametrize("cls", CODECS, ids=lambda c: c.NAME)
@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_generated_decoders_match_python(cls: type[Any], data: st.DataObject) -> None:
    obj = data.draw(objects(cls))
    encoded = obj.encode()
    junk = data.draw(st.binary(max_size=3))
    framed = junk + encoded + junk
    got = check_object(cls, framed, len(junk), len(junk) + len(encoded))
    # C declines a valid encoding only for what it leaves to Python.
    stamped = any(
        f.type == "timestamp" and getattr(obj, f.name) is not None for f in cls.FIELDS
    )
    values = [getattr(obj, f.name) for f in cls.FIELDS]
    assert (got is None) == (stamped or any(map(left_to_python, values))), obj
    check_object(cls, mutated(encoded, data, 3))


@pytest.mark.parametrize("cls", CODECS, ids=lambda c: c.NAME)
@settings(max_examples=40, deadline=None)
@given(data=st.binary(max_size=40))
def test_generated_decoders_on_random_bytes(cls: type[Any], data: bytes) -> None:
    check_object(cls, data)


def test_a_delivery_is_decoded_in_c() -> None:
    deliver = spec.BasicDeliver(
        "ctag", 7, redelivered=True, exchange="e", routing_key="r"
    )
    got = c_decode(spec.BasicDeliver, deliver.encode(), 0, len(deliver.encode()))
    assert got == deliver
    props = spec.BasicProperties(
        content_type="text/plain",
        headers={"x-trace": "abc", "n": 1},
        delivery_mode=2,
        priority=3,
        correlation_id="c",
        reply_to="r",
        expiration="60000",
        message_id="m",
        type="t",
        user_id="guest",
        app_id="a",
    )
    data = props.encode()
    assert c_decode(spec.BasicProperties, data, 0, len(data)) == props
    # A timestamp is left to Python.
    stamped = spec.BasicProperties(timestamp=1).encode()
    assert c_decode(spec.BasicProperties, stamped, 0, len(stamped)) is None
    assert spec.BasicProperties.decode(stamped).timestamp == datetime.datetime(
        1970, 1, 1, 0, 0, 1, tzinfo=UTC
    )


def test_bits_past_one_octet() -> None:
    """queue.declare's five bits share one octet, each on its own field
    (tests/codegen/test_golden.py covers ten bits over two octets)."""
    declare = spec.QueueDeclare(
        "q",
        passive=True,
        durable=False,
        exclusive=True,
        auto_delete=False,
        no_wait=True,
    )
    data = declare.encode()
    assert c_decode(spec.QueueDeclare, data, 0, len(data)) == declare


def test_decoder_calls_with_bad_arguments() -> None:
    layout = layout_of(spec.BasicAck)
    data = spec.BasicAck(1).encode()
    with pytest.raises(TypeError):
        _speedups.decode_fields(spec.BasicAck, (), data, 0, len(data))
    with pytest.raises(TypeError):
        _speedups.decode_fields(spec.BasicAck, layout, data, 0)  # type: ignore[call-arg]
    assert _speedups.decode_fields(spec.BasicAck, layout, bytearray(data), 0, 9) is None
    assert _speedups.decode_fields(spec.BasicAck, layout, data, 0, 99) is None
    assert _speedups.decode_fields(spec.BasicAck, layout, data, 5, 2) is None


# -- content properties, encoding -----------------------------------------------------


def python_encode(props: spec.BasicProperties) -> bytes | Exception:
    try:
        return python_only(props.encode)  # type: ignore[no-any-return]
    except (TypeError, ValueError) as exc:
        return exc


@settings(max_examples=300, deadline=None)
@given(basic_properties())
def test_properties_encoding_matches_python(props: spec.BasicProperties) -> None:
    got = _speedups.encode_properties(props, layout_of(spec.BasicProperties))
    expected = python_encode(props)
    assert isinstance(expected, bytes)
    if got is None:
        # Only a timestamp, or a table C leaves alone, goes to Python.
        assert props.timestamp is not None or left_to_python(props.headers), props
    else:
        assert got == expected


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("content_type", "x" * 256),
        ("content_type", b"bytes"),
        ("content_type", "\ud800"),
        ("delivery_mode", 256),
        ("delivery_mode", -1),
        ("delivery_mode", True),
        ("priority", 1.0),
        ("headers", {"a": object()}),
        ("headers", [("a", 1)]),
        ("timestamp", 5),
    ],
)
def test_properties_encoding_leaves_to_python(name: str, value: Any) -> None:
    """Values set after construction that C does not take: Python encodes
    them (a bool octet) or raises naming the property."""
    props = spec.BasicProperties(content_type="text/plain")
    setattr(props, name, value)
    assert _speedups.encode_properties(props, layout_of(spec.BasicProperties)) is None
    expected = python_encode(props)
    if isinstance(expected, Exception):
        with pytest.raises(type(expected), match=name):
            props.encode()
    else:
        assert props.encode() == expected


def test_properties_with_an_unset_slot_are_left_to_python() -> None:
    props = object.__new__(spec.BasicProperties)
    props.content_type = "x"
    assert _speedups.encode_properties(props, layout_of(spec.BasicProperties)) is None


# -- the properties check behind lazy decoding ------------------------------------------

_KINDS = b"sstBBssssTssss"  # BasicProperties' fields (_spec_base._PROPERTY_KINDS)


def check_properties(data: bytes) -> bool:
    """C's check of ``data`` as BasicProperties; when it passes, the Python
    decoder must decode them (a lazy instance never fails on access), and a
    lazily made instance must equal the Python decoding."""
    ok = _speedups.check_properties(_KINDS, data, 0, len(data))
    if ok:
        expected = python_only(lambda: spec.BasicProperties.decode(data))
        from amqp_client import _spec_base

        decode = _spec_base.lazy_decoder(spec.BasicProperties)
        got = decode(data, 0, len(data))
        assert getattr(got, "_amqp_raw", None) == data
        assert got == expected
    return bool(ok)


def test_property_kinds_are_basic_properties() -> None:
    from amqp_client._spec_base import _PROPERTY_KINDS

    kinds = "".join(_PROPERTY_KINDS[f.type] for f in spec.BasicProperties.FIELDS)
    assert kinds.encode() == _KINDS


@settings(max_examples=300, deadline=None)
@given(basic_properties())
def test_check_passes_what_it_can_vouch_for(props: spec.BasicProperties) -> None:
    encoded = props.encode()
    ok = check_properties(encoded)
    vouchable = all(
        not isinstance(v, str) or v.isascii()
        for v in (getattr(props, f.name) for f in props.FIELDS)
    ) and not left_to_python(props.headers or {})
    if vouchable and (props.headers is None or _ascii_keys(props.headers)):
        assert ok, props


def _ascii_keys(value: Any) -> bool:
    if isinstance(value, dict):
        return all(k.isascii() and _ascii_keys(v) for k, v in value.items())
    if isinstance(value, list | tuple):
        return all(_ascii_keys(v) for v in value)
    return True


@settings(max_examples=500, deadline=None)
@given(basic_properties(), st.data())
def test_check_of_mutated_properties(
    props: spec.BasicProperties, data: st.DataObject
) -> None:
    check_properties(mutated(props.encode(), data, 3))


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=60))
def test_check_of_random_bytes(data: bytes) -> None:
    check_properties(data)


def test_check_properties_bad_calls() -> None:
    with pytest.raises(TypeError):
        _speedups.check_properties(_KINDS, b"", 0)  # type: ignore[call-arg]  # wrong arity on purpose
    not_bytes: Any = bytearray(b"\x00\x00")
    assert _speedups.check_properties(_KINDS, not_bytes, 0, 2) is False
    assert _speedups.check_properties(_KINDS, b"\x00\x00", 0, 2) is True
    assert _speedups.check_properties(_KINDS, b"\x00\x00", 1, 9) is False


# -- the reader's C content path against its Python code --------------------------------


def _read_all(data: bytes, chunk: int) -> list[Any] | type[Exception]:
    from amqp_client.frames import FrameReader

    reader = FrameReader(131072, coalesce=True)
    frames: list[Any] = []
    try:
        for i in range(0, len(data), chunk):
            frames += reader.feed(data[i : i + chunk])
    except FrameDecodeError:
        return FrameDecodeError
    return frames


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(basic_properties(), st.binary(max_size=300), st.integers(1, 3)),
        min_size=1,
        max_size=4,
    ),
    st.data(),
)
def test_coalescing_reader_in_c_is_the_python_one(
    messages: list[tuple[spec.BasicProperties, bytes, int]], data: st.DataObject
) -> None:
    """Deliveries (possibly mutated) read by the C content path and by the
    pure-Python reader: the same frames, or the same error."""
    from amqp_client.frames import content_frames

    stream = b"".join(
        bytes(b)
        for props, payload, channel in messages
        for b in content_frames(
            channel, spec.BasicDeliver("ct", 1, "ex", "rk"), props, payload, 131072
        )
    )
    if data.draw(st.booleans()):
        stream = mutated(stream, data, 3)
    chunk = data.draw(st.sampled_from([1 << 30, 7, 100]))
    got = _read_all(stream, chunk)
    expected = python_only(lambda: _read_all(stream, chunk))
    assert got == expected


def test_decode_fields_or_falls_back_to_the_python_decoder() -> None:
    from amqp_client.spec.methods import basic

    method = spec.BasicDeliver("ct", 5, "ex", "rk")
    encoded = method.encode()
    layout = basic._L_BasicDeliver
    assert layout is not None
    calls: list[tuple[Any, ...]] = []

    def fallback(*args: Any) -> Any:
        calls.append(args)
        return "python"

    got = _speedups.decode_fields_or(
        spec.BasicDeliver, layout, fallback, encoded, 0, len(encoded)
    )
    assert got == method and not calls
    # Declined (bytes left over): the fallback decides.
    padded = encoded + b"\x00"
    got = _speedups.decode_fields_or(
        spec.BasicDeliver, layout, fallback, padded, 0, len(padded)
    )
    assert got == "python" and calls == [(padded, 0, len(padded))]
