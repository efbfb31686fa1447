"""Property tests of the generated method classes and BasicProperties.

For every entry of the method registry (and for BasicProperties):

* encode -> decode gives an equal object, whatever valid values the fields
  hold (nested field tables included), from bytes, bytearray, a memoryview,
  or a range of a larger buffer (decode_from);
* the encoding equals pamqp's byte for byte (values limited to what both
  encode the same way);
* pamqp's and pika's encodings decode to the values they were given;
* mutated encodings only ever raise FrameDecodeError.

The mapping from our field names to pamqp's and pika's is built from the
wire layout (``WIRE``, reserved fields included) position by position; the
few names that differ are listed in RENAMED and checked, so a layout
difference fails loudly instead of being papered over.
"""

from __future__ import annotations

import datetime
import decimal
import inspect
import warnings
from typing import Any

import pamqp.commands
import pika.spec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pamqp import base as pamqp_base

from amqp_client import spec
from amqp_client._spec_base import Method
from amqp_client.errors import FrameDecodeError
from tests.property.strategies import (
    ALL_METHODS,
    PAMQP_DECODE,
    PAMQP_ENCODE,
    PIKA,
    ROUND_TRIP,
    basic_properties,
    method_kwargs,
    methods,
    properties_kwargs,
)

# Each test runs on the C decoders and on the pure-Python ones.
pytestmark = pytest.mark.usefixtures("wire_codec")

# Moderate per-method budgets keep the whole module well under a minute.
PER_METHOD = settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
PROPERTIES = settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)


def _ids(cls: type[Method]) -> str:
    return cls.NAME


by_method = pytest.mark.parametrize("cls", ALL_METHODS, ids=_ids)


# --------------------------------------------------------------------------
# Strict comparison: == alone would let True pass for 1, b"x" for "x"...


def canonical(value: Any) -> Any:
    """A comparable form of a decoded value that keeps the type apart."""
    if isinstance(value, bool):
        return ("bool", value)
    if isinstance(value, int):
        return ("int", value)
    if isinstance(value, float):
        return ("float", value.hex())
    if isinstance(value, decimal.Decimal):
        return ("decimal", value)  # by value: pika normalises
    if isinstance(value, str):
        return ("str", value)
    if isinstance(value, bytes | bytearray | memoryview):
        return ("bytes", bytes(value))
    if isinstance(value, datetime.datetime):
        assert value.tzinfo is not None, f"naive datetime {value!r}"
        return ("datetime", value.astimezone(datetime.UTC))
    if isinstance(value, dict):
        return ("dict", {key: canonical(item) for key, item in value.items()})
    if isinstance(value, list | tuple):
        return ("list", [canonical(item) for item in value])
    if value is None:
        return ("none",)
    raise AssertionError(f"unexpected decoded value {value!r}")


def assert_same(expected: Any, actual: Any) -> None:
    """``actual`` equals ``expected`` field by field, types included."""
    assert type(actual) is type(expected)
    assert actual == expected
    for field in type(expected).FIELDS:
        want, got = getattr(expected, field.name), getattr(actual, field.name)
        assert canonical(got) == canonical(want), field.name


# --------------------------------------------------------------------------
# Our layout against pamqp's and pika's


#: (our wire name, their name) pairs that legitimately differ: reserved
#: fields, which pamqp and pika name after their pre-0-9-1 meaning, and a
#: few renames. Anything else must match exactly.
RENAMED = frozenset(
    {
        ("reserved_1", "ticket"),
        ("reserved_1", "capabilities"),
        ("reserved_2", "insist"),
        ("reserved_1", "known_hosts"),
        ("reserved_1", "out_of_band"),
        ("reserved_1", "channel_id"),
        ("reserved_1", "cluster_id"),
        ("type", "exchange_type"),  # pamqp
        ("no_wait", "nowait"),
        ("global_", "global_qos"),  # pika
        ("type", "message_type"),  # pamqp's Basic.Properties
    }
)

#: What our encoder writes for a reserved field of each type.
RESERVED_VALUE: dict[str, Any] = {
    "short": 0,
    "shortstr": "",
    "longstr": b"",
    "bit": False,
}

#: pamqp insists on a reserved value of its own for these (the string "0",
#: from AMQP 0-8's out-of-band and channel-id); we, pika and RabbitMQ send
#: it empty. pamqp's check is bypassed for them so the rest of the encoding
#: can still be compared; tests/unit/test_methods.py checks that we decode
#: pamqp's "0".
PAMQP_RESERVED_CHECKS = frozenset({"channel.open", "channel.open-ok"})


def _check_names(
    ours: list[str], theirs: list[str], what: str
) -> list[tuple[str, str]]:
    assert len(ours) == len(theirs), f"{what}: {ours} vs {theirs}"
    pairs = list(zip(ours, theirs, strict=True))
    for our_name, their_name in pairs:
        assert our_name == their_name or (our_name, their_name) in RENAMED, (
            f"{what}: our {our_name!r} against {their_name!r}"
        )
    return pairs


def pamqp_class(cls: type[Method]) -> type[pamqp_base.Frame]:
    return pamqp.commands.INDEX_MAPPING[cls.INDEX]


def pamqp_names(cls: type[Method]) -> list[tuple[str, str]]:
    """(our wire name, pamqp attribute) in wire order; types must agree."""
    theirs = pamqp_class(cls)
    pairs = _check_names([n for n, _ in cls.WIRE], list(theirs.__slots__), cls.NAME)
    for (our_name, amqp_type), (_, their_name) in zip(cls.WIRE, pairs, strict=True):
        assert theirs.amqp_type(their_name) == amqp_type, (cls.NAME, our_name)
    return pairs


def pika_class(cls: type[Method]) -> Any:
    return pika.spec.methods[cls.INDEX]


def pika_names(cls: type[Method]) -> list[tuple[str, str]]:
    """(our wire name, pika constructor parameter) in wire order."""
    params = list(inspect.signature(pika_class(cls).__init__).parameters)[1:]
    return _check_names([n for n, _ in cls.WIRE], params, cls.NAME)


def _wire_values(method: Method) -> dict[str, Any]:
    """Every wire field's value, reserved ones as our encoder writes them."""
    values = {f.name: getattr(method, f.name) for f in method.FIELDS}
    for name, amqp_type in method.WIRE:
        if name not in values:
            values[name] = RESERVED_VALUE[amqp_type]
    return values


def to_pamqp_value(value: Any) -> Any:
    """pamqp writes bytearray (not bytes) as a byte array."""
    if isinstance(value, bytes):
        return bytearray(value)
    if isinstance(value, dict):
        return {key: to_pamqp_value(item) for key, item in value.items()}
    if isinstance(value, list):
        return [to_pamqp_value(item) for item in value]
    return value


def pamqp_encode(method: Method) -> bytes:
    cls = type(method)
    values = _wire_values(method)
    types = dict(cls.WIRE)
    kwargs: dict[str, Any] = {}
    for our_name, their_name in pamqp_names(cls):
        value = values[our_name]
        if types[our_name] == "longstr":
            value = value.decode("utf-8")  # pamqp takes str
        kwargs[their_name] = to_pamqp_value(value)
    frame_class = pamqp_class(cls)
    if cls.NAME in PAMQP_RESERVED_CHECKS:
        frame_class = _unchecked(frame_class)
    with warnings.catch_warnings():
        # pamqp warns on constructing a method 0-9-1 deprecates (recover-async).
        warnings.simplefilter("ignore", DeprecationWarning)
        frame = frame_class(**kwargs)
    data: bytes = frame.marshal()
    return data


def _unchecked(frame_class: Any) -> Any:
    """A subclass of a pamqp frame class whose validate() does nothing."""
    return type(frame_class.__name__, (frame_class,), {"validate": lambda self: None})


def pika_encode(method: Method) -> bytes:
    cls = type(method)
    values = _wire_values(method)
    kwargs = {their: values[ours] for ours, their in pika_names(cls)}
    return b"".join(pika_class(cls)(**kwargs).encode())


@by_method
def test_wire_layout_agrees_with_pamqp_and_pika(cls: type[Method]) -> None:
    pamqp_names(cls)
    pika_names(cls)
    assert pamqp_class(cls).frame_id == cls.METHOD_ID
    assert pamqp_class(cls).index == cls.INDEX
    assert pika_class(cls).INDEX == cls.INDEX
    assert pika.spec.has_content(cls.INDEX) is cls.HAS_CONTENT


@by_method
def test_responses_agree_with_pamqp(cls: type[Method]) -> None:
    theirs = sorted(pamqp_class(cls).valid_responses)
    ours = sorted(pamqp_class(response).name for response in cls.RESPONSES)
    assert ours == theirs


# --------------------------------------------------------------------------
# Methods


@by_method
@PER_METHOD
@given(data=st.data())
def test_round_trip(cls: type[Method], data: st.DataObject) -> None:
    method = data.draw(methods(cls, ROUND_TRIP), label="method")
    encoded = method.encode()
    assert type(encoded) is bytes
    assert_same(method, cls.decode(encoded))
    assert_same(method, cls.decode(bytearray(encoded)))
    assert_same(method, cls.decode(memoryview(encoded)))
    # As the frame reader hands it over: its receive buffer with offsets.
    before = data.draw(st.binary(max_size=8), label="before")
    after = data.draw(st.binary(max_size=8), label="after")
    buffer = bytearray(before + encoded + after)
    decoded = cls.decode_from(buffer, len(before), len(before) + len(encoded))
    assert_same(method, decoded)
    assert decoded.encode() == encoded


@by_method
@PER_METHOD
@given(data=st.data())
def test_constructor_keywords_round_trip(
    cls: type[Method], data: st.DataObject
) -> None:
    """What a constructor is given is what it holds (defaults for the rest)."""
    kwargs = data.draw(method_kwargs(cls, ROUND_TRIP), label="kwargs")
    method = cls(**kwargs)
    for field in cls.FIELDS:
        if field.name in kwargs:
            expected = kwargs[field.name]
        else:
            expected = {} if field.type == "table" else field.default
        assert canonical(getattr(method, field.name)) == canonical(expected), field.name


@by_method
@PER_METHOD
@given(data=st.data())
def test_encoding_equals_pamqp(cls: type[Method], data: st.DataObject) -> None:
    method = data.draw(methods(cls, PAMQP_ENCODE), label="method")
    assert method.encode() == pamqp_encode(method)


@by_method
@PER_METHOD
@given(data=st.data())
def test_decodes_pamqp(cls: type[Method], data: st.DataObject) -> None:
    method = data.draw(methods(cls, PAMQP_DECODE), label="method")
    assert_same(method, cls.decode(pamqp_encode(method)))


@by_method
@PER_METHOD
@given(data=st.data())
def test_decodes_pika(cls: type[Method], data: st.DataObject) -> None:
    method = data.draw(methods(cls, PIKA), label="method")
    assert_same(method, cls.decode(pika_encode(method)))


@by_method
@PER_METHOD
@given(data=st.data())
def test_mutated_payload_only_raises_frame_decode_error(
    cls: type[Method], data: st.DataObject
) -> None:
    encoded = bytearray(data.draw(methods(cls, ROUND_TRIP), label="method").encode())
    mutation = data.draw(st.sampled_from(["truncate", "extend", "flip", "random"]))
    if mutation == "truncate":
        del encoded[data.draw(st.integers(0, len(encoded))) :]
    elif mutation == "extend":
        encoded += data.draw(st.binary(min_size=1, max_size=8))
    elif mutation == "flip" and encoded:
        index = data.draw(st.integers(0, len(encoded) - 1))
        encoded[index] ^= data.draw(st.integers(1, 255))
    else:
        encoded = bytearray(data.draw(st.binary(max_size=64)))
    try:
        decoded = cls.decode(bytes(encoded))
    except FrameDecodeError as exc:
        assert cls.NAME in str(exc)
    else:
        assert type(decoded) is cls


# --------------------------------------------------------------------------
# BasicProperties


def pamqp_properties(kwargs: dict[str, Any]) -> bytes:
    fields = spec.BasicProperties.FIELDS
    pairs = _check_names(
        [f.name for f in fields],
        list(pamqp.commands.Basic.Properties.__slots__),
        "basic properties",
    )
    names = dict(pairs)
    values = {names[key]: to_pamqp_value(value) for key, value in kwargs.items()}
    return pamqp.commands.Basic.Properties(**values).marshal()


def pika_properties(kwargs: dict[str, Any]) -> bytes:
    params = list(inspect.signature(pika.spec.BasicProperties.__init__).parameters)[1:]
    _check_names(
        [f.name for f in spec.BasicProperties.FIELDS], params, "pika properties"
    )
    values = dict(kwargs)
    if isinstance(values.get("timestamp"), datetime.datetime):
        values["timestamp"] = int(values["timestamp"].timestamp())  # pika: seconds
    return b"".join(pika.spec.BasicProperties(**values).encode())


@PROPERTIES
@given(props=basic_properties(ROUND_TRIP), before=st.binary(max_size=4))
def test_properties_round_trip(props: spec.BasicProperties, before: bytes) -> None:
    encoded = props.encode()
    decoded = spec.BasicProperties.decode(encoded)
    assert_same(props, decoded)
    if isinstance(decoded.timestamp, datetime.datetime):
        assert decoded.timestamp.utcoffset() == datetime.timedelta(0)
    assert decoded.encode() == encoded
    assert_same(props, spec.BasicProperties.decode(memoryview(encoded)))
    buffer = bytearray(before + encoded + b"\xce")
    assert_same(
        props,
        spec.BasicProperties.decode_from(
            buffer, len(before), len(before) + len(encoded)
        ),
    )


@PROPERTIES
@given(kwargs=properties_kwargs(PAMQP_ENCODE))
def test_properties_encoding_equals_pamqp(kwargs: dict[str, Any]) -> None:
    assert spec.BasicProperties(**kwargs).encode() == pamqp_properties(kwargs)


@PROPERTIES
@given(kwargs=properties_kwargs(PAMQP_DECODE))
def test_properties_decode_pamqp(kwargs: dict[str, Any]) -> None:
    decoded = spec.BasicProperties.decode(pamqp_properties(kwargs))
    assert_same(spec.BasicProperties(**kwargs), decoded)


@PROPERTIES
@given(kwargs=properties_kwargs(PIKA))
def test_properties_decode_pika(kwargs: dict[str, Any]) -> None:
    decoded = spec.BasicProperties.decode(pika_properties(kwargs))
    assert_same(spec.BasicProperties(**kwargs), decoded)


@PROPERTIES
@given(props=basic_properties(ROUND_TRIP), data=st.data())
def test_mutated_properties_only_raise_frame_decode_error(
    props: spec.BasicProperties, data: st.DataObject
) -> None:
    encoded = props.encode()
    cut = data.draw(st.integers(0, len(encoded)))
    mutated = encoded[:cut] + data.draw(st.binary(max_size=4))
    try:
        decoded = spec.BasicProperties.decode(mutated)
    except FrameDecodeError as exc:
        assert spec.BasicProperties.NAME in str(exc)
    else:
        assert type(decoded) is spec.BasicProperties
