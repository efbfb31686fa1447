"""Unit tests of amqp_client.wire: exact bytes for every tag we encode, every
tag RabbitMQ may send decoded from hand-written bytes, every error with the
path or offset it names, and each input fed whole, cut at every byte, and
followed by trailing data.
"""

from __future__ import annotations

import collections
import datetime
import decimal
import enum
import struct
from collections.abc import Iterator, Mapping

import pytest

from amqp_client import wire
from amqp_client.errors import FrameDecodeError, ProtocolError
from amqp_client.wire import (
    decode_array,
    decode_field_value,
    decode_longstr,
    decode_shortstr,
    decode_table,
    decode_timestamp,
    encode_array,
    encode_field_value,
    encode_longstr,
    encode_shortstr,
    encode_table,
    encode_timestamp,
)

# Each test runs on the C speedups and on the pure-Python codecs.
pytestmark = pytest.mark.usefixtures("wire_codec")

UTC = datetime.UTC
D = decimal.Decimal


def u32(n: int) -> bytes:
    return struct.pack(">I", n)


def table(body: bytes) -> bytes:
    return u32(len(body)) + body


def key(name: str) -> bytes:
    data = name.encode()
    return bytes([len(data)]) + data


def longstr(data: bytes) -> bytes:
    return u32(len(data)) + data


# -- encoding: exact bytes per tag ----------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (True, b"t\x01"),
        (False, b"t\x00"),
        (0, b"I\x00\x00\x00\x00"),
        (1, b"I\x00\x00\x00\x01"),
        (-1, b"I\xff\xff\xff\xff"),
        (2**31 - 1, b"I\x7f\xff\xff\xff"),
        (-(2**31), b"I\x80\x00\x00\x00"),
        (2**31, b"l\x00\x00\x00\x00\x80\x00\x00\x00"),
        (-(2**31) - 1, b"l\xff\xff\xff\xff\x7f\xff\xff\xff"),
        (2**63 - 1, b"l\x7f\xff\xff\xff\xff\xff\xff\xff"),
        (-(2**63), b"l\x80\x00\x00\x00\x00\x00\x00\x00"),
        (1.5, b"d" + struct.pack(">d", 1.5)),
        (-0.0, b"d\x80" + b"\x00" * 7),
        (float("inf"), b"d" + struct.pack(">d", float("inf"))),
        ("", b"S\x00\x00\x00\x00"),
        ("abc", b"S\x00\x00\x00\x03abc"),
        ("é€", b"S\x00\x00\x00\x05" + "é€".encode()),
        (b"", b"x\x00\x00\x00\x00"),
        (b"\x00\xff", b"x\x00\x00\x00\x02\x00\xff"),
        (bytearray(b"ab"), b"x\x00\x00\x00\x02ab"),
        (memoryview(b"abcd")[1:3], b"x\x00\x00\x00\x02bc"),
        (None, b"V"),
        ({}, b"F\x00\x00\x00\x00"),
        ({"a": 1}, b"F\x00\x00\x00\x07\x01aI\x00\x00\x00\x01"),
        ([], b"A\x00\x00\x00\x00"),
        ([1, "a"], b"A\x00\x00\x00\x0bI\x00\x00\x00\x01S\x00\x00\x00\x01a"),
        ((True, None), b"A\x00\x00\x00\x03t\x01V"),
    ],
)
def test_encode_field_value_exact_bytes(value: object, expected: bytes) -> None:
    assert encode_field_value(value, "v") == expected


@pytest.mark.parametrize(
    ("value", "scale", "unscaled"),
    [
        (D("1.50"), 2, 150),
        (D("-1.50"), 2, -150),
        (D("0"), 0, 0),
        (D("-3"), 0, -3),
        (D("1E+2"), 0, 100),  # a positive exponent folds into scale 0
        (D("2147483647"), 0, 2**31 - 1),
        (D("-2147483648"), 0, -(2**31)),
        (D("0.000001"), 6, 1),
        (D("1E-255"), 255, 1),
        (D("0E-300"), 0, 0),  # zeros after the point go when they must
        (D("0E+999999999"), 0, 0),
        (D("-0"), 0, 0),
        (D("1.000000000000000000"), 0, 1),
        (D("12.3400000000000"), 2, 1234),
    ],
)
def test_encode_decimal(value: D, scale: int, unscaled: int) -> None:
    assert encode_field_value(value, "v") == b"D" + struct.pack(">Bi", scale, unscaled)


def test_encode_timestamp_tags_and_time_zones() -> None:
    aware = datetime.datetime(2024, 5, 6, 7, 8, 9, tzinfo=UTC)
    seconds = 1714979289
    assert encode_field_value(aware, "v") == b"T" + struct.pack(">Q", seconds)
    # Naive datetimes are taken as UTC; other zones are converted.
    naive = datetime.datetime(2024, 5, 6, 7, 8, 9)
    assert encode_timestamp(naive) == struct.pack(">Q", seconds)
    plus2 = datetime.timezone(datetime.timedelta(hours=2))
    assert encode_timestamp(
        datetime.datetime(2024, 5, 6, 9, 8, 9, tzinfo=plus2)
    ) == struct.pack(">Q", seconds)
    # The wire carries whole seconds: the fraction is dropped.
    assert encode_timestamp(aware.replace(microsecond=999_999)) == struct.pack(
        ">Q", seconds
    )
    epoch = datetime.datetime(1970, 1, 1, tzinfo=UTC)
    assert encode_timestamp(epoch) == bytes(8)


class Color(enum.IntEnum):
    RED = 7


class Word(enum.StrEnum):
    HELLO = "hello"


class MyMapping(Mapping[str, object]):
    def __init__(self, items: dict[str, object]) -> None:
        self._items = items

    def __getitem__(self, name: str) -> object:
        return self._items[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)


@pytest.mark.parametrize(
    ("value", "plain"),
    [
        (Color.RED, 7),
        (Word.HELLO, "hello"),
        (collections.OrderedDict(a=1), {"a": 1}),
        (MyMapping({"a": "b"}), {"a": "b"}),
        (collections.UserList([1, 2]), [1, 2]),
    ],
)
def test_subclasses_encode_like_their_base(value: object, plain: object) -> None:
    assert encode_field_value(value, "v") == encode_field_value(plain, "v")


def test_bool_is_not_encoded_as_int() -> None:
    assert encode_table({"a": True, "b": 1}) == table(
        key("a") + b"t\x01" + key("b") + b"I\x00\x00\x00\x01"
    )


def test_encode_table_exact_bytes_and_order() -> None:
    value = {"x-trace": "abc", "n": 1, "nested": {"k": None}, "list": [False]}
    assert encode_table(value) == table(
        key("x-trace")
        + b"S"
        + longstr(b"abc")
        + key("n")
        + b"I\x00\x00\x00\x01"
        + key("nested")
        + b"F"
        + table(key("k") + b"V")
        + key("list")
        + b"A"
        + longstr(b"t\x00")
    )


def test_encode_empty_table() -> None:
    assert encode_table(None) == b"\x00\x00\x00\x00"
    assert encode_table({}) == b"\x00\x00\x00\x00"
    assert encode_array([]) == b"\x00\x00\x00\x00"


def test_encode_table_keys() -> None:
    assert encode_table({"é": 1})[4:7] == b"\x02\xc3\xa9"
    longest = "k" * 255
    assert encode_table({longest: None}) == table(key(longest) + b"V")
    assert encode_table({"": None}) == table(b"\x00V")


def test_encode_array_accepts_sequences() -> None:
    assert encode_array([1]) == encode_array((1,)) == longstr(b"I\x00\x00\x00\x01")


def test_shortstr_and_longstr() -> None:
    assert encode_shortstr("") == b"\x00"
    assert encode_shortstr("abc") == b"\x03abc"
    assert encode_shortstr("é" * 127 + "a") == b"\xff" + ("é" * 127 + "a").encode()
    assert encode_longstr(b"ab") == b"\x00\x00\x00\x02ab"
    assert encode_longstr(bytearray(b"ab")) == b"\x00\x00\x00\x02ab"
    assert encode_longstr(memoryview(b"xaby")[1:3]) == b"\x00\x00\x00\x02ab"
    assert encode_longstr(b"") == b"\x00\x00\x00\x00"


# -- encoding errors: type and path ---------------------------------------------


def test_error_names_the_whole_path() -> None:
    with pytest.raises(ValueError) as info:
        encode_table({"a": [1, 2, 2**70]}, "headers")
    assert str(info.value) == (
        "headers['a'][2]: int 1180591620717411303424 is outside int64"
    )
    assert type(info.value) is ValueError


def test_error_path_through_tables_arrays_and_tuples() -> None:
    value = {"x": {"y": ({"z": object()},)}}
    with pytest.raises(TypeError) as info:
        encode_table(value, "arguments")
    assert str(info.value).startswith("arguments['x']['y'][0]['z']: object ")
    assert type(info.value) is TypeError


@pytest.mark.parametrize(
    ("value", "error", "text"),
    [
        (2**63, ValueError, "v: int 9223372036854775808 is outside int64"),
        (-(2**63) - 1, ValueError, "is outside int64"),
        ({1, 2}, TypeError, "v: set {1, 2} cannot be sent"),
        (1j, TypeError, "complex"),
        (object(), TypeError, "object"),
        (datetime.date(2020, 1, 1), TypeError, "date"),
        (D("NaN"), ValueError, "v: Decimal NaN is not finite"),
        (D("Infinity"), ValueError, "not finite"),
        (D("1E+20"), ValueError, "outside int32"),
        (D("1E+10"), ValueError, "outside int32"),
        (D("2147483648"), ValueError, "outside int32"),
        (D("1E-256"), ValueError, "scale 256"),
        (D("0.12345678901"), ValueError, "outside int32"),
        ("\ud800", ValueError, "not encodable as UTF-8"),
        (
            datetime.datetime(1969, 12, 31, 23, 59, 59, tzinfo=UTC),
            ValueError,
            "before 1970",
        ),
    ],
)
def test_encode_field_value_errors(
    value: object, error: type[Exception], text: str
) -> None:
    with pytest.raises(error) as info:
        encode_field_value(value, "v")
    assert text in str(info.value)
    assert str(info.value).startswith("v")
    # The same error, nested, names the path to it.
    with pytest.raises(error) as nested:
        encode_table({"k": [value]}, "headers")
    assert str(nested.value).startswith("headers['k'][0]: ")
    assert text.removeprefix("v: ") in str(nested.value)


@pytest.mark.parametrize(
    ("bad", "error", "text"),
    [
        ({1: "a"}, TypeError, "headers: table key 1 is int, not str"),
        ({b"a": "a"}, TypeError, "table key b'a' is bytes, not str"),
        ({"k" * 256: 1}, ValueError, "is 256 bytes in UTF-8"),
        ({"é" * 128: 1}, ValueError, "is 256 bytes in UTF-8"),
        ({"\udc80": 1}, ValueError, "not encodable as UTF-8"),
    ],
)
def test_bad_keys(bad: dict[object, object], error: type[Exception], text: str) -> None:
    with pytest.raises(error) as info:
        encode_table(bad, "headers")  # type: ignore[arg-type]
    assert str(info.value).startswith("headers: table key")
    assert text in str(info.value)
    with pytest.raises(error) as nested:
        encode_table({"outer": [bad]}, "headers")
    assert str(nested.value).startswith("headers['outer'][0]: table key")


def test_encode_table_rejects_non_mappings() -> None:
    with pytest.raises(TypeError, match=r"^headers: expected a dict"):
        encode_table([("a", 1)], "headers")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"^array: expected a list"):
        encode_array("abc")
    with pytest.raises(TypeError, match=r"^a: expected a list"):
        encode_array({"a": 1}, "a")  # type: ignore[arg-type]


def test_self_containing_table_is_a_value_error() -> None:
    looped: dict[str, object] = {}
    looped["me"] = looped
    with pytest.raises(
        ValueError, match=r"^headers\['me'\]\['me'\].*nested too deeply"
    ):
        encode_table(looped, "headers")
    listed: list[object] = []
    listed.append(listed)
    with pytest.raises(ValueError, match="nested too deeply"):
        encode_array(listed)


def test_foreign_exceptions_pass_unchanged() -> None:
    class Broken(Mapping[str, object]):
        def __getitem__(self, name: str) -> object:
            raise LookupError(name)

        def __iter__(self) -> Iterator[str]:
            raise RuntimeError("boom")

        def __len__(self) -> int:
            return 1

    with pytest.raises(RuntimeError, match="boom"):
        encode_table(Broken())


def test_shortstr_errors() -> None:
    with pytest.raises(TypeError, match=r"^exchange: expected str, got bytes"):
        encode_shortstr(b"x", "exchange")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"^queue: str 'qqqq.* is 256 bytes"):
        encode_shortstr("q" * 256, "queue")
    with pytest.raises(ValueError, match=r"^queue: .*not encodable"):
        encode_shortstr("\ud800", "queue")


def test_longstr_errors() -> None:
    with pytest.raises(TypeError, match=r"^response: expected bytes"):
        encode_longstr("text", "response")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"^value: expected bytes.*got int"):
        encode_longstr(3)  # type: ignore[arg-type]


def test_timestamp_errors() -> None:
    with pytest.raises(
        TypeError, match=r"^timestamp: expected datetime or int seconds, got date"
    ):
        encode_timestamp(datetime.date(2020, 1, 1), "timestamp")  # type: ignore[arg-type]
    with pytest.raises(
        TypeError, match=r"^timestamp: expected datetime or int seconds, got bool"
    ):
        encode_timestamp(True, "timestamp")
    with pytest.raises(ValueError, match=r"^timestamp: datetime .* before 1970"):
        encode_timestamp(datetime.datetime(1900, 1, 1), "timestamp")
    with pytest.raises(
        ValueError, match=r"^timestamp: timestamp -1 is outside 0\.\.2\*\*64-1"
    ):
        encode_timestamp(-1, "timestamp")
    with pytest.raises(ValueError, match=r"outside 0\.\.2\*\*64-1"):
        encode_timestamp(2**64, "timestamp")


def test_timestamp_as_int_seconds() -> None:
    # pika and most clients carry timestamps as int seconds: accepted as is.
    assert encode_timestamp(1_700_000_000) == struct.pack(">Q", 1_700_000_000)
    value, offset = decode_timestamp(struct.pack(">Q", 1_700_000_000), 0)
    assert value == datetime.datetime.fromtimestamp(1_700_000_000, datetime.UTC)
    assert offset == 8


# -- decoding: every tag from hand-written bytes --------------------------------


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"t\x00", False),
        (b"t\x01", True),
        (b"t\x02", True),  # any non-zero octet is true
        (b"t\xff", True),
        (b"b\xff", -1),
        (b"b\x7f", 127),
        (b"B\xff", 255),
        (b"s\xff\xfe", -2),
        (b"u\xff\xff", 65535),
        (b"I\xff\xff\xff\xff", -1),
        (b"i\xff\xff\xff\xff", 4294967295),
        (b"l\xff\xff\xff\xff\xff\xff\xff\xfe", -2),
        (b"L\xff\xff\xff\xff\xff\xff\xff\xff", -1),  # signed, as RabbitMQ reads it
        (b"L\x00\x00\x00\x00\x00\x00\x01\x00", 256),
        (b"f" + struct.pack(">f", 1.5), 1.5),
        (b"f" + struct.pack(">f", 0.1), struct.unpack(">f", struct.pack(">f", 0.1))[0]),
        (b"d" + struct.pack(">d", -2.25), -2.25),
        (b"D\x02\xff\xff\xff\x6a", D("-1.50")),
        (b"D\x00\x00\x00\x00\x07", D("7")),
        (b"D\xff\x00\x00\x00\x01", D("1E-255")),
        (b"S\x00\x00\x00\x03abc", "abc"),
        (b"S\x00\x00\x00\x00", ""),
        (b"S\x00\x00\x00\x02\xc3\xa9", "é"),
        (b"S\x00\x00\x00\x02\xff\xfe", b"\xff\xfe"),  # not UTF-8: bytes
        (b"x\x00\x00\x00\x03abc", b"abc"),
        (b"x\x00\x00\x00\x00", b""),
        (b"A\x00\x00\x00\x00", []),
        (b"A\x00\x00\x00\x07b\x01S\x00\x00\x00\x00", [1, ""]),
        (
            b"T\x00\x00\x00\x00\x00\x00\x00\x00",
            datetime.datetime(1970, 1, 1, tzinfo=UTC),
        ),
        (
            b"T" + struct.pack(">Q", 253402300799),
            datetime.datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC),
        ),
        (b"F\x00\x00\x00\x00", {}),
        (b"F\x00\x00\x00\x03\x01aV", {"a": None}),
        (b"V", None),
    ],
)
def test_decode_field_value_every_tag(data: bytes, expected: object) -> None:
    value, offset = decode_field_value(data, 0)
    assert value == expected
    assert type(value) is type(expected)
    assert offset == len(data)
    # Inside a table and an array, from every buffer type, with trailing data.
    entry = key("k") + data
    encoded_table = table(entry)
    encoded_array = longstr(data)
    for kind in (bytes, bytearray, memoryview):
        assert decode_field_value(kind(b"__" + data + b"++"), 2) == (
            expected,
            2 + len(data),
        )
        assert decode_table(kind(b"_" + encoded_table + b"+"), 1) == (
            {"k": expected},
            1 + len(encoded_table),
        )
        assert decode_array(kind(b"_" + encoded_array + b"+"), 1) == (
            [expected],
            1 + len(encoded_array),
        )


def test_decoded_timestamps_are_aware_utc() -> None:
    value, _ = decode_field_value(b"T" + struct.pack(">Q", 1714979289), 0)
    assert isinstance(value, datetime.datetime)
    assert value.tzinfo is UTC
    assert value == datetime.datetime(2024, 5, 6, 7, 8, 9, tzinfo=UTC)
    assert decode_timestamp(struct.pack(">Q", 0), 0) == (
        datetime.datetime(1970, 1, 1, tzinfo=UTC),
        8,
    )


def test_decoded_decimal_keeps_its_scale() -> None:
    value, _ = decode_field_value(b"D\x02\x00\x00\x00\x96", 0)
    assert isinstance(value, D)
    assert value.as_tuple() == D("1.50").as_tuple()


def test_decode_table_with_repeated_key_keeps_the_last() -> None:
    data = table(key("a") + b"b\x01" + key("a") + b"b\x02")
    assert decode_table(data, 0) == ({"a": 2}, len(data))


def test_decode_shortstr_and_longstr() -> None:
    assert decode_shortstr(b"\x03abc", 0) == ("abc", 4)
    assert decode_shortstr(b"__\x00++", 2) == ("", 3)
    assert decode_shortstr(memoryview(b"\x02\xc3\xa9"), 0) == ("é", 3)
    assert decode_longstr(b"\x00\x00\x00\x02\xff\x00z", 0) == (b"\xff\x00", 6)
    assert decode_longstr(bytearray(b"_\x00\x00\x00\x00"), 1) == (b"", 5)
    assert type(decode_longstr(memoryview(b"\x00\x00\x00\x01a"), 0)[0]) is bytes


# -- decoding errors -------------------------------------------------------------


def decode_error(func: object, data: bytes | memoryview, offset: int = 0) -> str:
    assert callable(func)
    with pytest.raises(FrameDecodeError) as info:
        func(data, offset)
    assert isinstance(info.value, ProtocolError)
    assert isinstance(info.value, ValueError)
    assert info.value.reply_code == 501
    return str(info.value)


def test_unknown_tag_names_tag_key_and_offset() -> None:
    data = table(key("a") + b"Q\x00\x00")
    assert decode_error(decode_table, data) == (
        "malformed field table at ['a']: unknown field type tag 'Q' (0x51) (offset 6)"
    )
    assert "0x00" in decode_error(decode_field_value, b"\x00")
    assert "'U'" in decode_error(decode_array, longstr(b"U\x00\x01"))


def test_nested_errors_name_the_path() -> None:
    inner = table(key("c") + b"Z")
    array = longstr(b"V" + b"F" + inner)
    data = table(key("a") + b"V" + key("b") + b"A" + array)
    message = decode_error(decode_table, data)
    assert message.startswith("malformed field table at ['b'][1]['c']: unknown")
    assert "'Z'" in message
    # The offset is that of the whole buffer, from a memoryview too.
    offset = data.index(b"Z")
    assert message.endswith(f"(offset {offset})")
    view_message = decode_error(decode_table, memoryview(b"__" + data), 2)
    assert view_message.endswith(f"(offset {offset + 2})")


def test_invalid_utf8_key() -> None:
    data = table(b"\x02\xc3\x28V")
    assert "table key is not valid UTF-8" in decode_error(decode_table, data)
    nested = table(key("ok") + b"F" + data)
    message = decode_error(decode_table, nested)
    assert message.startswith("malformed field table at ['ok']: table key is not")


@pytest.mark.parametrize(
    "data",
    [
        table(key("a") + b"S\x00\x00\x00\x09abc"),  # value overruns the table
        u32(20) + key("a") + b"V",  # table length past the buffer
        u32(3) + key("a") + b"I\x00\x00\x00\x01",  # table length too short
        table(b"\x09ab"),  # key overruns
        table(key("a") + b"F" + u32(1)),  # nested table overruns the outer
        table(key("a") + b"A" + u32(9) + b"V"),
        table(key("a") + b"x" + u32(2**32 - 1)),
    ],
)
def test_lengths_that_overrun(data: bytes) -> None:
    decode_error(decode_table, data)
    decode_error(decode_table, memoryview(data))
    decode_error(decode_field_value, b"F" + data)


def test_value_overrun_names_the_key() -> None:
    message = decode_error(decode_table, table(key("a") + b"S\x00\x00\x00\x09abc"))
    assert message.startswith("malformed field table at ['a']: ")


def test_array_item_overrun() -> None:
    data = longstr(b"I\x00\x00\x00\x01" + b"S\x00\x00\x00\x05ab")
    assert decode_error(decode_array, data).startswith("malformed field array at [1]")
    # Past the array but not past the buffer: the same item is blamed.
    message = decode_error(decode_array, data + b"cdefg")
    assert message.startswith("malformed field array at [1]: item overruns")
    message = decode_error(decode_table, table(key("a") + b"A" + data) + b"cdefg")
    assert message.startswith("malformed field table at ['a'][1]: item overruns")


def test_timestamps_past_year_9999_decode_to_int_seconds() -> None:
    # Valid AMQP that no datetime holds (a publisher that sent milliseconds):
    # the int of seconds, not a 501 that would close the connection.
    for seconds in (253402300800, 1_700_000_000_000, 2**64 - 1):
        data = table(key("when") + b"T" + struct.pack(">Q", seconds))
        assert decode_table(data, 0) == ({"when": seconds}, len(data))
        assert decode_timestamp(struct.pack(">Q", seconds), 0) == (seconds, 8)
    last = decode_timestamp(struct.pack(">Q", 253402300799), 0)[0]
    assert last == datetime.datetime(9999, 12, 31, 23, 59, 59, tzinfo=datetime.UTC)


def test_decode_shortstr_errors() -> None:
    assert "truncated" in decode_error(decode_shortstr, b"")
    assert "truncated" in decode_error(decode_shortstr, b"\x03ab")
    assert "truncated" in decode_error(decode_shortstr, b"\x03abc", 4)
    assert "not valid UTF-8" in decode_error(decode_shortstr, b"\x01\xff")


def test_decode_longstr_and_timestamp_errors() -> None:
    assert "truncated" in decode_error(decode_longstr, b"\x00\x00\x00")
    assert "overruns" in decode_error(decode_longstr, b"\x00\x00\x00\x03ab")
    assert "truncated" in decode_error(decode_timestamp, b"\x00" * 7)


def test_deep_nesting_is_a_decode_error() -> None:
    depth = 50_000
    data = b"V"
    for _ in range(depth):
        data = b"A" + longstr(data)
    assert "nested too deeply" in decode_error(decode_field_value, data)
    assert "nested too deeply" in decode_error(decode_array, data[1:])
    nested = b"\x00\x00\x00\x00"
    for _ in range(5_000):
        nested = table(key("k") + b"F" + nested)
    message = decode_error(decode_table, nested)
    assert "nested too deeply" in message
    assert "..." in message  # the path is cut, not thousands of steps long
    assert len(message) < 300


def test_decode_errors_pickle() -> None:
    import pickle

    with pytest.raises(FrameDecodeError) as info:
        decode_table(table(key("a") + b"Q"), 0)
    copy = pickle.loads(pickle.dumps(info.value))
    assert type(copy) is FrameDecodeError
    assert str(copy) == str(info.value)


# -- whole, cut at every byte, with trailing data ---------------------------------

RICH = {
    "s": "héllo",
    "bin": b"\x00\xff",
    "i": -5,
    "big": 2**40,
    "t": True,
    "f": 0.25,
    "dec": D("3.14"),
    "when": datetime.datetime(2020, 2, 29, 12, 0, tzinfo=UTC),
    "none": None,
    "list": [1, "two", [3.0], {"four": 4}],
    "nested": {"x-death": [{"count": 1, "reason": "expired"}]},
}


def test_rich_table_round_trips() -> None:
    data = encode_table(RICH)
    assert decode_table(data, 0) == (RICH, len(data))


def test_every_prefix_is_a_decode_error() -> None:
    data = encode_table(RICH)
    for cut in range(len(data)):
        for kind in (bytes, bytearray, memoryview):
            with pytest.raises(FrameDecodeError):
                decode_table(kind(data[:cut]), 0)
    array = encode_array(list(RICH.values()))
    for cut in range(len(array)):
        with pytest.raises(FrameDecodeError):
            decode_array(array[:cut], 0)
    value = encode_field_value(RICH, "v")
    for cut in range(len(value)):
        with pytest.raises(FrameDecodeError):
            decode_field_value(value[:cut], 0)


def test_trailing_data_is_left_alone() -> None:
    data = encode_table(RICH)
    for kind in (bytes, bytearray, memoryview):
        buf = kind(b"\x01\x02\x03" + data + b"\xce\x00\xff")
        assert decode_table(buf, 3) == (RICH, 3 + len(data))
    # Two tables back to back, as in a method frame.
    other = encode_table({"b": 2})
    both = data + other
    first, offset = decode_table(both, 0)
    second, end = decode_table(both, offset)
    assert (first, second, end) == (RICH, {"b": 2}, len(both))


def test_memoryview_is_not_copied_whole() -> None:
    # A table in the middle of a big buffer decodes from a view of it.
    data = encode_table({"a": "b"})
    buf = memoryview(bytes(1_000_000) + data + bytes(1_000_000))
    assert decode_table(buf, 1_000_000) == ({"a": "b"}, 1_000_000 + len(data))


def test_public_names() -> None:
    assert set(wire.__all__) == {
        "NAMES",
        "FieldTable",
        "FieldValue",
        "decode_array",
        "decode_field_value",
        "decode_longstr",
        "decode_shortstr",
        "decode_table",
        "decode_timestamp",
        "encode_array",
        "encode_field_value",
        "encode_longstr",
        "encode_shortstr",
        "encode_table",
        "encode_timestamp",
        "name_from",
    }
    for name in wire.__all__:
        assert hasattr(wire, name)


# -- names shared between decoded values --------------------------------------


def test_table_keys_are_shared_between_decodes() -> None:
    data = wire.encode_table({"x-trace": "abc", "x-count": 1})
    first, _ = wire.decode_table(data, 0)
    second, _ = wire.decode_table(bytes(data), 0)
    assert first == second
    for a, b in zip(first, second, strict=True):
        assert a is b  # one str per key, not one per message
    # Values are not names: each decode has its own.
    assert first["x-trace"] == second["x-trace"]
    assert first["x-trace"] is not second["x-trace"]


def test_table_from_a_bytearray_decodes_the_same() -> None:
    data = wire.encode_table({"k": {"nested": "v"}, "l": [{"in": 1}]})
    assert wire.decode_table(bytearray(b"ab" + data), 2) == (
        {"k": {"nested": "v"}, "l": [{"in": 1}]},
        2 + len(data),
    )


def test_names_are_bounded() -> None:
    for i in range(wire.NAMES_MAX + 100):
        key = f"key-{i}"
        table, _ = wire.decode_table(wire.encode_table({key: 1}), 0)
        assert table == {key: 1}
    assert 0 < len(wire.NAMES) <= wire.NAMES_MAX


def test_a_key_that_is_not_utf8_is_still_a_decode_error() -> None:
    data = b"\x00\x00\x00\x04\x02\xff\xfeV"
    with pytest.raises(FrameDecodeError):
        wire.decode_table(data, 0)
    assert b"\xff\xfe" not in wire.NAMES
