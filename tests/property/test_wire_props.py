"""Property tests of amqp_client.wire: encode/decode round trips over nested
tables and arrays of every encodable type, garbage in gives FrameDecodeError
and nothing else, and interop both ways with pika and pamqp.

What the peers do differently (pika 1.4, pamqp 4.0.1), and so what each
interop test leaves out:

* pika cannot encode floats, and decodes ``f``/``d`` truncated to int.
* pika normalises Decimals (``1.50`` is sent as scale 1, 15); we keep the
  scale, so byte equality holds only for normalised Decimals.
* pamqp sorts table keys, sends ints in the smallest tag (``b``, ``s``,
  ``u``, ``i`` ...) and floats as float32 ``f``; it only sends bytearray as
  ``x``, decodes ``x`` to bytearray, and reads timestamps past 2**32-1 as
  milliseconds.
"""

from __future__ import annotations

import datetime
import decimal
import math
import struct
from collections.abc import Callable, Mapping
from typing import Any

import pamqp.decode
import pamqp.encode
import pika.data
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from amqp_client.errors import FrameDecodeError
from amqp_client.wire import (
    decode_array,
    decode_field_value,
    decode_table,
    encode_array,
    encode_field_value,
    encode_table,
)

# Each test runs on the C speedups and on the pure-Python codecs.
pytestmark = pytest.mark.usefixtures("wire_codec")

UTC = datetime.UTC
D = decimal.Decimal
I32 = (-(2**31), 2**31 - 1)
I64 = (-(2**63), 2**63 - 1)

# -- strategies --------------------------------------------------------------------

keys = st.text(max_size=12)
texts = st.text(max_size=30)
ints = st.integers(*I64)
floats = st.floats(allow_nan=True)
floats32 = st.floats(width=32, allow_nan=False)
decimals = st.builds(
    lambda unscaled, scale: D(f"{unscaled}E-{scale}"),
    st.integers(*I32),
    st.integers(0, 255),
)
# Normalised: what pika sends with the same bytes as we do.
normal_decimals = st.builds(
    lambda unscaled, scale: D(f"{unscaled}E-{scale}"),
    st.integers(*I32).filter(lambda n: n % 10 != 0),
    st.integers(0, 12),
) | st.integers(*I32).map(D)


def datetimes(last_year: int = 9999) -> st.SearchStrategy[datetime.datetime]:
    return st.datetimes(
        min_value=datetime.datetime(1970, 1, 1),
        max_value=datetime.datetime(last_year, 12, 31, 23, 59, 59),
    ).map(lambda d: d.replace(microsecond=0, tzinfo=UTC))


# pamqp reads a timestamp past 2**32-1 as milliseconds.
pamqp_datetimes = datetimes(2105)


def nested(
    scalars: st.SearchStrategy[Any],
    *,
    key_strategy: st.SearchStrategy[str] = keys,
    sort_keys: bool = False,
) -> st.SearchStrategy[Any]:
    def tables(children: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
        made = st.dictionaries(key_strategy, children, max_size=4)
        return made.map(lambda d: dict(sorted(d.items()))) if sort_keys else made

    return st.recursive(
        scalars,
        lambda children: st.lists(children, max_size=4) | tables(children),
        max_leaves=12,
    )


def tables_of(values: st.SearchStrategy[Any], *, sort_keys: bool = False) -> Any:
    made = st.dictionaries(keys, values, max_size=6)
    return made.map(lambda d: dict(sorted(d.items()))) if sort_keys else made


everything = nested(
    st.none()
    | st.booleans()
    | ints
    | floats
    | decimals
    | texts
    | st.binary(max_size=20)
    | datetimes()
)

# The input types that encode like a plain type: tuples, bytearrays,
# memoryviews, naive datetimes, positive-exponent Decimals.
input_variants = nested(
    st.tuples(ints, texts)
    | st.binary(max_size=8).map(bytearray)
    | st.binary(max_size=8).map(lambda b: memoryview(b))
    | datetimes().map(lambda d: d.replace(tzinfo=None))
    | st.builds(lambda n, e: D(f"{n}E+{e}"), st.integers(-999, 999), st.integers(1, 6))
    | everything
)


def expected(value: Any) -> Any:
    """What a value decodes to after we encode it."""
    if isinstance(value, (tuple, list)):
        return [expected(item) for item in value]
    if isinstance(value, Mapping):
        return {name: expected(item) for name, item in value.items()}
    if isinstance(value, (bytearray, memoryview)):
        return bytes(value)
    if isinstance(value, datetime.datetime) and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


def assert_same(got: Any, want: Any) -> None:
    """Equal, with the same types all the way down (True is not 1) and
    floats compared bit for bit (NaN, -0.0)."""
    assert type(got) is type(want), (got, want)
    if isinstance(want, float):
        assert struct.pack(">d", got) == struct.pack(">d", want)
    elif isinstance(want, dict):
        assert list(got) == list(want)
        for name in want:
            assert_same(got[name], want[name])
    elif isinstance(want, list):
        assert len(got) == len(want)
        for got_item, want_item in zip(got, want, strict=True):
            assert_same(got_item, want_item)
    else:
        assert got == want
        if isinstance(want, datetime.datetime):
            assert got.utcoffset() == datetime.timedelta(0)


def assert_equal_values(got: Any, want: Any) -> None:
    """Equal as values (for peers that pick other tags): dict order and
    Decimal exponents may differ; bytearray counts as bytes, and pika's
    ``long`` (an int subclass) as int."""
    if isinstance(got, bytearray):
        got = bytes(got)
    elif isinstance(got, int) and not isinstance(got, bool):
        got = int(got)
    if isinstance(want, dict):
        assert isinstance(got, dict)
        assert got.keys() == want.keys()
        for name in want:
            assert_equal_values(got[name], want[name])
    elif isinstance(want, list):
        assert isinstance(got, list)
        assert len(got) == len(want)
        for got_item, want_item in zip(got, want, strict=True):
            assert_equal_values(got_item, want_item)
    else:
        assert type(got) is type(want), (got, want)
        assert got == want or (isinstance(want, float) and math.isnan(want))


# -- round trips --------------------------------------------------------------------


@given(tables_of(everything))
def test_table_round_trip(table: dict[str, Any]) -> None:
    data = encode_table(table)
    decoded, offset = decode_table(data, 0)
    assert offset == len(data)
    assert_same(decoded, table)


@given(input_variants)
def test_field_value_round_trip(value: Any) -> None:
    data = encode_field_value(value, "v")
    decoded, offset = decode_field_value(data, 0)
    assert offset == len(data)
    assert_same(decoded, expected(value))


@given(st.lists(input_variants, max_size=5), st.binary(max_size=6))
def test_array_round_trip_from_any_buffer(items: list[Any], junk: bytes) -> None:
    data = encode_array(items)
    for kind in (bytes, bytearray, memoryview):
        decoded, offset = decode_array(kind(junk + data + junk), len(junk))
        assert offset == len(junk) + len(data)
        assert_same(decoded, expected(items))


@given(decimals)
def test_decimal_keeps_its_exponent(value: D) -> None:
    decoded, _ = decode_field_value(encode_field_value(value, "v"), 0)
    assert isinstance(decoded, D)
    assert decoded.as_tuple() == value.as_tuple()


# -- garbage in: FrameDecodeError and nothing else ---------------------------------

DECODERS: list[Callable[[Any, int], tuple[Any, int]]] = [
    decode_table,
    decode_array,
    decode_field_value,
]


def decodes_or_fails_cleanly(data: bytes, offset: int) -> None:
    for decode in DECODERS:
        for kind in (bytes, memoryview):
            try:
                _, end = decode(kind(data), offset)
            except FrameDecodeError:
                continue
            assert offset < end <= len(data)


@given(st.binary(max_size=64), st.integers(0, 4))
def test_random_bytes(data: bytes, offset: int) -> None:
    decodes_or_fails_cleanly(data, offset)


@given(
    tables_of(everything),
    st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 255)), max_size=4),
    st.integers(0, 10_000),
)
def test_mutated_tables(
    table: dict[str, Any], edits: list[tuple[int, int]], cut: int
) -> None:
    data = bytearray(encode_table(table))
    for position, byte in edits:
        data[position % len(data)] = byte
    # Also the typed prefixes: a field value or array made of the same bytes.
    for payload in (bytes(data), bytes(data[: cut % (len(data) + 1)])):
        decodes_or_fails_cleanly(payload, 0)
        decodes_or_fails_cleanly(b"F" + payload, 0)
        decodes_or_fails_cleanly(b"A" + payload, 0)


# -- interop with pika ---------------------------------------------------------------


def pika_encode(table: dict[str, Any]) -> bytes:
    pieces: list[bytes] = []
    pika.data.encode_table(pieces, table)
    return b"".join(pieces)


pika_values = nested(
    st.none()
    | st.booleans()
    | ints
    | texts
    | st.binary(max_size=20)
    | datetimes()
    | normal_decimals
)


@settings(deadline=None)
@given(tables_of(pika_values | decimals))
def test_pika_encoded_tables_decode(table: dict[str, Any]) -> None:
    decoded, offset = decode_table(pika_encode(table), 0)
    assert offset == len(pika_encode(table))
    assert_equal_values(decoded, table)


@settings(deadline=None)
@given(tables_of(pika_values))
def test_same_bytes_as_pika(table: dict[str, Any]) -> None:
    assert encode_table(table) == pika_encode(table)


@settings(deadline=None)
@given(tables_of(pika_values | decimals))  # pika decodes floats as ints
def test_pika_decodes_our_tables(table: dict[str, Any]) -> None:
    data = encode_table(table)
    decoded, offset = pika.data.decode_table(data, 0)
    assert offset == len(data)
    assert_equal_values(decoded, table)


# -- interop with pamqp --------------------------------------------------------------


pamqp_values = nested(
    st.none()
    | st.booleans()
    | ints
    | floats32
    | decimals
    | texts
    | st.binary(max_size=20).map(bytearray)
    | pamqp_datetimes,
)


@settings(deadline=None)
@given(tables_of(pamqp_values))
def test_pamqp_encoded_tables_decode(table: dict[str, Any]) -> None:
    data = pamqp.encode.field_table(table)
    decoded, offset = decode_table(data, 0)
    assert offset == len(data)
    # pamqp picks b/s/u/I/i/l by size and f for floats: the numbers survive.
    assert_equal_values(decoded, expected(table))


def pamqp_agrees(value: int) -> bool:
    """Ints that pamqp sends with our tag (I, or l outside uint32)."""
    if I32[0] <= value <= I32[1]:
        return not -32768 <= value <= 65535
    return not 0 <= value <= 2**32 - 1


pamqp_alike = nested(
    st.none()
    | st.booleans()
    | ints.filter(pamqp_agrees)
    | decimals
    | texts
    | st.binary(max_size=20).map(bytearray)
    | pamqp_datetimes,
    sort_keys=True,
)


@settings(deadline=None)
@given(tables_of(pamqp_alike, sort_keys=True))
def test_same_bytes_as_pamqp(table: dict[str, Any]) -> None:
    assert encode_table(table) == pamqp.encode.field_table(table)


@settings(deadline=None)
@given(
    tables_of(
        nested(
            st.none()
            | st.booleans()
            | ints
            | floats.filter(lambda f: not math.isnan(f))
            | decimals
            | texts
            | st.binary(max_size=20)
            | pamqp_datetimes
        )
    )
)
def test_pamqp_decodes_our_tables(table: dict[str, Any]) -> None:
    data = encode_table(table)
    offset, decoded = pamqp.decode.field_table(data)
    assert offset == len(data)
    assert_equal_values(decoded, table)
