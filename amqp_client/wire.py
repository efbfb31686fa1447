"""AMQP 0-9-1 primitive codecs: short and long strings, timestamps, and the
field tables, field arrays and field values RabbitMQ speaks.

The generated method and property classes and the frame layer build on these
functions. This module does no I/O and keeps no protocol state: every
function is a pure transformation between Python values and bytes.

Rules:

* Decoders take ``buf`` (``bytes``, ``bytearray`` or a byte-format
  ``memoryview``) and an ``offset`` and return ``(value, new_offset)``. They
  never copy ``buf`` whole: ``bytes`` is the fast path, and a table or array
  in a ``memoryview`` is copied once, just its own bytes, because slices of
  ``bytes`` decode faster than slices of a view. Any malformed input
  (truncation, a length that overruns, an unknown type tag, a table key that
  is not UTF-8, a timestamp past year 9999, nesting deeper than the
  interpreter's recursion limit) raises
  :class:`~amqp_client.errors.FrameDecodeError` and nothing else; the message
  names the tag, the offset and the key path.
* Encoders return ``bytes``. A value that cannot be sent raises ``TypeError``
  (a type the wire cannot carry) or ``ValueError`` (a value out of range)
  before anything is sent; the message names the key path, such as
  ``headers['a'][2]: int 1180591620717411303424 is outside int64``. The path
  is only built on the error path.
* Field type tags follow RabbitMQ and its AMQP 0-9-1 errata
  (https://www.rabbitmq.com/amqp-0-9-1-errata.html), which differ from the
  table in the 0-9-1 specification (§4.2.5.5):

  ===  =====================  ====================  ======================
  tag  wire type              decodes to            encoded from
  ===  =====================  ====================  ======================
  t    boolean octet          ``bool`` (non-zero    ``bool``
                              is ``True``)
  b    int8                   ``int``               (never)
  B    uint8                  ``int``               (never)
  s    int16                  ``int``               (never)
  u    uint16                 ``int``               (never)
  I    int32                  ``int``               ``int`` in int32
  i    uint32                 ``int``               (never)
  l    int64                  ``int``               ``int`` in int64
  L    int64 (signed, as      ``int``               (never)
       RabbitMQ reads it)
  f    float32                ``float``             (never)
  d    float64                ``float``             ``float``
  D    scale octet + int32    ``decimal.Decimal``   ``decimal.Decimal``
  S    longstr                ``str`` if UTF-8,     ``str``
                              else ``bytes``
  x    longstr                ``bytes``             ``bytes``,
                                                    ``bytearray``,
                                                    ``memoryview``
  T    uint64 seconds since   aware UTC             ``datetime.datetime``
       the epoch              ``datetime.datetime``
  A    field array            ``list``              ``list``, ``tuple``,
                                                    other ``Sequence``
  F    field table            ``dict``              ``dict``, ``Mapping``
  V    void                   ``None``              ``None``
  ===  =====================  ====================  ======================
"""

from __future__ import annotations

import datetime as _dt
import decimal as _decimal
import os as _os
import struct
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final, TypeAlias

from amqp_client.errors import FrameDecodeError

# The optional C speedups of the field-table codecs (see _speedups.c): each
# returns None for what it leaves to the Python code below, which is the
# reference and the one that reports errors. AMQP_CLIENT_NO_SPEEDUPS=1 (or a
# build without a C compiler) runs the Python code alone.
_c_encode_table: Callable[[object], bytes | None] | None = None
_c_encode_array: Callable[[object], bytes | None] | None = None
_c_decode_table: (
    Callable[[bytes, int, dict[bytes, str], int], tuple[dict[str, object], int] | None]
    | None
) = None
_c_decode_array: (
    Callable[[bytes, int, dict[bytes, str], int], tuple[list[object], int] | None]
    | None
) = None
# The generated classes' (method arguments and content properties decoded,
# content properties encoded), used through amqp_client._spec_base.c_layout.
c_decode_fields: Callable[..., Any] | None = None
c_decode_properties: Callable[..., Any] | None = None
c_encode_properties: Callable[..., Any] | None = None
# Whether content properties will decode, without decoding them (so the
# frame reader can leave a delivery's properties to be decoded on first
# access): (kinds, buf, offset, end) -> bool, False meaning "unsure".
c_check_properties: Callable[[bytes, bytes, int, int], bool] | None = None
# The same check, then a lazy instance or the eager decoder's result (see
# _spec_base.lazy_decoder).
c_lazy_properties: Callable[..., Any] | None = None
c_fill_lazy: Callable[..., None] | None = None
# The frame reader's content fast path (a header and its one body frame),
# and its method decoder (decode_fields, else the generated Python code).
c_content_tail: Callable[..., Any] | None = None
c_decode_fields_or: Callable[..., Any] | None = None
c_decode_properties_or: Callable[..., Any] | None = None

#: The C functions when the extension is built (and importable), in the
#: order of the globals above; None otherwise.
SPEEDUPS: tuple[Callable[..., Any], ...] | None = None
try:
    from amqp_client import _speedups

    # All or none: an extension built from an older source (a checkout
    # updated without reinstalling) lacks some; the Python code runs.
    SPEEDUPS = (
        _speedups.encode_table,
        _speedups.encode_array,
        _speedups.decode_table,
        _speedups.decode_array,
        _speedups.decode_fields,
        _speedups.decode_properties,
        _speedups.encode_properties,
        _speedups.check_properties,
        _speedups.lazy_properties,
        _speedups.fill_lazy,
        _speedups.content_tail,
        _speedups.decode_fields_or,
        _speedups.decode_properties_or,
    )
except (ImportError, AttributeError):  # no C compiler, or a stale build
    pass


def use_c_codecs(enabled: bool) -> bool:
    """Route this module's codecs to the C speedups (when built) or not.

    The one switch of the field-table codecs and the reader's C paths; the
    generated classes' layouts follow through
    :func:`amqp_client._spec_base.use_speedups`, which calls this. Returns
    whether the C code is now in use.
    """
    global _c_encode_table, _c_encode_array, _c_decode_table, _c_decode_array
    global c_decode_fields, c_decode_properties, c_encode_properties
    global c_check_properties, c_lazy_properties, c_fill_lazy
    global c_content_tail, c_decode_fields_or, c_decode_properties_or
    chosen = SPEEDUPS if enabled else None
    (
        _c_encode_table,
        _c_encode_array,
        _c_decode_table,
        _c_decode_array,
        c_decode_fields,
        c_decode_properties,
        c_encode_properties,
        c_check_properties,
        c_lazy_properties,
        c_fill_lazy,
        c_content_tail,
        c_decode_fields_or,
        c_decode_properties_or,
    ) = chosen if chosen is not None else (None,) * 13
    return chosen is not None


use_c_codecs(not _os.environ.get("AMQP_CLIENT_NO_SPEEDUPS"))

__all__ = [
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
]

#: The Python types a decoded field value can have (nested tables and arrays
#: hold values of these types again). Narrow a decoded value against it.
FieldValue: TypeAlias = (
    bool
    | int
    | float
    | _decimal.Decimal
    | str
    | bytes
    | _dt.datetime
    | dict[str, object]
    | list[object]
    | None
)

#: A field table as the encoders accept it and as :func:`decode_table`
#: returns it (a ``dict``). ``Mapping`` keeps it covariant, so a
#: ``dict[str, int]`` is a valid argument.
FieldTable: TypeAlias = Mapping[str, object]

_Buffer: TypeAlias = bytes | bytearray | memoryview
_Decoder: TypeAlias = Callable[[_Buffer, int], tuple[object, int]]

#: Names read off the wire -> their ``str``: field-table keys, and the
#: shortstr fields that name things (consumer tags, exchanges, queues,
#: routing keys, content types; the generator picks them). The same few
#: names come with every message, so decoders share one ``str`` per name
#: instead of keeping a copy in each buffered delivery. Bounded: emptied
#: when full, so names that never repeat cannot pin memory. Shared by all
#: connections and threads; its dict operations are atomic.
NAMES: dict[bytes, str] = {}
NAMES_MAX: Final = 4096


def name_from(raw: bytes) -> str:
    """Decode a name that :data:`NAMES` does not hold yet, and remember it.

    Raises:
        UnicodeDecodeError: ``raw`` is not UTF-8.
    """
    name = raw.decode()
    if len(NAMES) >= NAMES_MAX:
        NAMES.clear()
    NAMES[raw] = name
    return name


# --------------------------------------------------------------------------
# Precompiled structs (AMQP is big-endian, §4.2.2). Bound methods are hoisted
# to module level so the hot paths do no attribute look-ups.

_U8 = struct.Struct(">B")
_I8 = struct.Struct(">b")
_BOOL = struct.Struct(">?")  # big-endian "?" reads any non-zero octet as True
_I16 = struct.Struct(">h")
_U16 = struct.Struct(">H")
_I32 = struct.Struct(">i")
_U32 = struct.Struct(">I")
_I64 = struct.Struct(">q")
_U64 = struct.Struct(">Q")
_F32 = struct.Struct(">f")
_F64 = struct.Struct(">d")

_pack_u8 = _U8.pack
_pack_u32 = _U32.pack
_pack_u64 = _U64.pack
_unpack_u32 = _U32.unpack_from
_unpack_u64 = _U64.unpack_from
_unpack_i32 = _I32.unpack_from
_unpack_decimal = struct.Struct(">Bi").unpack_from

# A tag octet and its payload in one call.
_pack_tag_u32 = struct.Struct(">BI").pack  # S and x: tag + length
_pack_tag_i32 = struct.Struct(">Bi").pack  # I
_pack_tag_i64 = struct.Struct(">Bq").pack  # l
_pack_tag_f64 = struct.Struct(">Bd").pack  # d
_pack_tag_u64 = struct.Struct(">BQ").pack  # T
_pack_tag_decimal = struct.Struct(">BBi").pack  # D

_I32_MIN = -(2**31)
_I32_MAX = 2**31 - 1
_I64_MIN = -(2**63)
_I64_MAX = 2**63 - 1
_U32_MAX = 2**32 - 1

_EMPTY_TABLE = b"\x00\x00\x00\x00"
_TRUE = b"t\x01"
_FALSE = b"t\x00"
_VOID = b"V"

_UTC = _dt.UTC
_EPOCH_AWARE = _dt.datetime(1970, 1, 1, tzinfo=_UTC)
_EPOCH_NAIVE = _dt.datetime(1970, 1, 1)
#: The last second a datetime can hold: 9999-12-31T23:59:59Z.
_MAX_TIMESTAMP = 253402300799
_timedelta = _dt.timedelta
_Decimal = _decimal.Decimal

# --------------------------------------------------------------------------
# Errors. The hot paths carry no path and build no strings. A failure raises
# the public exception with an _ErrorState attached; each table or array loop
# it passes through adds its key or index and re-renders the message, so the
# outermost call, the one the caller made, leaves the full path. Builtin
# exceptions that malformed input causes (short reads, unknown tags, bad
# UTF-8) are converted in the loop where they happen.

_STATE = "_amqp_wire_state"

#: At most this many path steps appear in a message (deep nesting is cut).
_MAX_STEPS = 16


class _ErrorState:
    """What a wire error message is rendered from."""

    __slots__ = ("offset", "reason", "steps")

    def __init__(self, reason: str, offset: int = -1) -> None:
        self.reason = reason
        self.offset = offset
        self.steps: list[str] = []  # innermost first

    def where(self) -> str:
        steps = self.steps
        if len(steps) > _MAX_STEPS:
            # Keep the start of the path and its innermost end.
            half = _MAX_STEPS // 2
            steps = [*steps[:half], "...", *steps[-half:]]
        return "".join(reversed(steps))


def _state(exc: BaseException) -> _ErrorState | None:
    state = getattr(exc, _STATE, None)
    return state if isinstance(state, _ErrorState) else None


def _short_repr(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _type_name(value: object) -> str:
    return type(value).__name__


def _encode_error(
    kind: type[TypeError | ValueError], reason: str, path: str = ""
) -> TypeError | ValueError:
    exc = kind(f"{path}: {reason}" if path else reason)
    setattr(exc, _STATE, _ErrorState(reason))
    return exc


# What an encoder can raise: our own TypeError/ValueError, UnicodeEncodeError
# (a lone surrogate), struct.error (a length over 2**32-1), RecursionError (a
# table that contains itself).
_ENCODE_ERRORS = (TypeError, ValueError, struct.error, RecursionError)


def _encode_failure(exc: Exception, step: str, path: str) -> Exception:
    """Locate an encode error at ``path`` + ``step``; return what to raise."""
    state = _state(exc)
    if state is None:
        if isinstance(exc, UnicodeEncodeError):
            reason = f"str {_short_repr(exc.object)} is not encodable as UTF-8"
        elif isinstance(exc, struct.error):
            reason = f"value is longer than {_U32_MAX} bytes"
        elif isinstance(exc, RecursionError):
            reason = "nested too deeply (contains itself?)"
        else:  # not raised by this module: let it through unchanged
            return exc
        state = _ErrorState(reason)
        exc = ValueError(reason)
        setattr(exc, _STATE, state)
    if step:
        state.steps.append(step)
    exc.args = (f"{path}{state.where()}: {state.reason}",)
    return exc


def _decode_error(reason: str, offset: int, what: str) -> FrameDecodeError:
    exc = FrameDecodeError(f"malformed {what}: {reason} (offset {offset})")
    setattr(exc, _STATE, _ErrorState(reason, offset))
    return exc


# What a decoder can raise on malformed input: short reads (struct.error,
# IndexError), an unknown tag (KeyError), bad UTF-8 in a key
# (UnicodeDecodeError), our own FrameDecodeError (both ValueErrors), and
# RecursionError for nesting deeper than the interpreter allows.
_DECODE_ERRORS = (struct.error, IndexError, KeyError, ValueError, RecursionError)


def _describe_tag(tag: int) -> str:
    if 0x21 <= tag <= 0x7E:
        return f"{chr(tag)!r} (0x{tag:02x})"
    return f"0x{tag:02x}"


def _decode_failure(
    exc: Exception, step: str, tag: int, offset: int, what: str
) -> FrameDecodeError:
    """Locate a decode error at ``step``; return the FrameDecodeError to raise.

    ``tag`` and ``offset`` say where a builtin exception happened.
    """
    state = _state(exc)
    if not isinstance(exc, FrameDecodeError) or state is None:
        if isinstance(exc, KeyError):
            reason = f"unknown field type tag {_describe_tag(tag)}"
        elif isinstance(exc, UnicodeDecodeError):
            reason = "table key is not valid UTF-8"
            step = ""  # the key being read, not the one before it
        elif isinstance(exc, RecursionError):
            reason = "nested too deeply"
        elif not isinstance(exc, (struct.error, IndexError)):
            reason = str(exc)
        elif tag >= 0:
            reason = f"value of type {_describe_tag(tag)} is truncated"
        else:
            reason = "truncated"
        state = _ErrorState(reason, offset)
        exc = FrameDecodeError(reason)
        setattr(exc, _STATE, state)
    if step:
        state.steps.append(step)
    where = state.where()
    where = f" at {where}" if where else ""
    exc.args = (f"malformed {what}{where}: {state.reason} (offset {state.offset})",)
    return exc


def _shift_offsets(exc: FrameDecodeError, base: int, what: str) -> None:
    """Re-base a decode error raised while decoding a copy of a region."""
    state = _state(exc)
    if state is not None:
        state.offset += base
        _decode_failure(exc, "", -1, state.offset, what)


# --------------------------------------------------------------------------
# Strings and timestamps (used by the generated method codecs).


def encode_shortstr(value: str, path: str = "value") -> bytes:
    """Encode a shortstr: one length octet and up to 255 bytes of UTF-8.

    Raises:
        TypeError: ``value`` is not a ``str``.
        ValueError: it is longer than 255 bytes in UTF-8, or is not encodable
            as UTF-8 (a lone surrogate).
    """
    if not isinstance(value, str):
        raise TypeError(f"{path}: expected str, got {_type_name(value)}")
    try:
        data = value.encode()
    except UnicodeEncodeError:
        raise ValueError(
            f"{path}: str {_short_repr(value)} is not encodable as UTF-8"
        ) from None
    if len(data) > 255:
        raise ValueError(
            f"{path}: str {_short_repr(value)} is {len(data)} bytes in UTF-8, "
            "longer than the 255 of a shortstr"
        )
    return _pack_u8(len(data)) + data


def decode_shortstr(buf: _Buffer, offset: int) -> tuple[str, int]:
    """Decode a shortstr at ``offset``.

    Raises:
        FrameDecodeError: truncated, or not valid UTF-8.
    """
    try:
        start = offset + 1
        stop = start + buf[offset]
        if stop > len(buf):
            raise IndexError
        return str(buf[start:stop], "utf-8"), stop
    except IndexError:
        raise FrameDecodeError(f"shortstr truncated (offset {offset})") from None
    except UnicodeDecodeError:
        raise FrameDecodeError(
            f"shortstr is not valid UTF-8 (offset {offset})"
        ) from None


def encode_longstr(value: bytes | bytearray | memoryview, path: str = "value") -> bytes:
    """Encode a longstr: a 4-byte length and the bytes.

    Raises:
        TypeError: ``value`` is not bytes-like; a ``str`` neither (the
            caller chooses the encoding).
        ValueError: it is longer than 2**32-1 bytes.
    """
    if isinstance(value, memoryview):
        value = value.tobytes()
    elif not isinstance(value, (bytes, bytearray)):
        raise TypeError(
            f"{path}: expected bytes, bytearray or memoryview, got {_type_name(value)}"
        )
    if len(value) > _U32_MAX:
        raise ValueError(f"{path}: longstr is longer than {_U32_MAX} bytes")
    return _pack_u32(len(value)) + value


def decode_longstr(buf: _Buffer, offset: int) -> tuple[bytes, int]:
    """Decode a longstr at ``offset`` into ``bytes``.

    Raises:
        FrameDecodeError: truncated, or its length overruns ``buf``.
    """
    try:
        (size,) = _unpack_u32(buf, offset)
    except struct.error:
        raise FrameDecodeError(f"longstr truncated (offset {offset})") from None
    start = offset + 4
    stop = start + size
    if stop > len(buf):
        raise FrameDecodeError(
            f"longstr length {size} overruns the buffer (offset {offset})"
        )
    return bytes(buf[start:stop]), stop


def _timestamp_seconds(value: _dt.datetime) -> int:
    """Whole seconds since the epoch; naive datetimes are taken as UTC.

    Sub-second parts are dropped (floored): the wire carries seconds.
    """
    if value.utcoffset() is None:
        delta = value.replace(tzinfo=None) - _EPOCH_NAIVE
    else:
        delta = value - _EPOCH_AWARE
    seconds = delta.days * 86400 + delta.seconds
    if seconds < 0:
        raise _encode_error(
            ValueError, f"datetime {value.isoformat()} is before 1970-01-01T00:00Z"
        )
    return seconds


def encode_timestamp(value: _dt.datetime | int, path: str = "value") -> bytes:
    """Encode a timestamp: uint64 seconds since the epoch (AMQP §4.2.5.4).

    A datetime (naive ones are taken as UTC; sub-second parts are dropped)
    or an int of seconds, as pika and most other clients use.

    Raises:
        TypeError: ``value`` is neither a datetime nor an int.
        ValueError: before 1970-01-01T00:00:00Z, or an int outside uint64.
    """
    if isinstance(value, _dt.datetime):
        try:
            return _pack_u64(_timestamp_seconds(value))
        except ValueError as exc:
            raise _encode_failure(exc, "", path) from None
    if isinstance(value, int) and not isinstance(value, bool):
        if 0 <= value <= 0xFFFFFFFFFFFFFFFF:
            return _pack_u64(value)
        raise ValueError(f"{path}: timestamp {value} is outside 0..2**64-1 seconds")
    raise TypeError(
        f"{path}: expected datetime or int seconds, got {_type_name(value)}"
    )


def _datetime(seconds: int) -> _dt.datetime | int:
    # A timestamp past 9999-12-31 is valid AMQP but no datetime holds it
    # (a publisher that sent milliseconds, say): it stays the int of seconds
    # rather than closing the connection over a header value.
    if seconds > _MAX_TIMESTAMP:
        return seconds
    return _EPOCH_AWARE + _timedelta(seconds=seconds)


def decode_timestamp(buf: _Buffer, offset: int) -> tuple[_dt.datetime | int, int]:
    """Decode a timestamp at ``offset`` into an aware UTC datetime.

    A value past 9999-12-31T23:59:59Z, which no datetime holds, is returned
    as the int of seconds instead.

    Raises:
        FrameDecodeError: truncated.
    """
    try:
        (seconds,) = _unpack_u64(buf, offset)
    except struct.error:
        raise FrameDecodeError(f"timestamp truncated (offset {offset})") from None
    return _datetime(seconds), offset + 8


# --------------------------------------------------------------------------
# Field value encoding. Each encoder returns tag and payload.


def _encode_str(value: str) -> bytes:
    data = value.encode()
    return _pack_tag_u32(0x53, len(data)) + data  # "S"


def _encode_int(value: int) -> bytes:
    if _I32_MIN <= value <= _I32_MAX:
        return _pack_tag_i32(0x49, value)  # "I"
    if _I64_MIN <= value <= _I64_MAX:
        return _pack_tag_i64(0x6C, value)  # "l"
    raise _encode_error(ValueError, f"int {value} is outside int64")


def _encode_bool(value: bool) -> bytes:
    return _TRUE if value else _FALSE


def _encode_float(value: float) -> bytes:
    return _pack_tag_f64(0x64, value)  # "d"


def _encode_bytes(value: bytes | bytearray) -> bytes:
    return _pack_tag_u32(0x78, len(value)) + value  # "x"


def _encode_memoryview(value: memoryview) -> bytes:
    return _encode_bytes(value.tobytes())


def _encode_none(value: None) -> bytes:
    return _VOID


def _encode_datetime(value: _dt.datetime) -> bytes:
    return _pack_tag_u64(0x54, _timestamp_seconds(value))  # "T"


def _encode_decimal(value: _decimal.Decimal) -> bytes:
    # AMQP §4.2.5.5: value = unscaled * 10**-scale, scale an octet and
    # unscaled an int32. A negative exponent is the scale; a positive one is
    # folded into the unscaled value at scale 0. Work on the digits, not with
    # Decimal arithmetic, so that no context can round.
    sign, digits, exponent = value.as_tuple()
    if not isinstance(exponent, int):
        raise _encode_error(ValueError, f"Decimal {value} is not finite")
    unscaled = 0
    for digit in digits:
        unscaled = unscaled * 10 + digit
    if exponent > 0:
        if unscaled:  # (zero stays zero, whatever its exponent)
            if exponent > 10:  # past int32 whatever the digits
                raise _encode_error(ValueError, f"Decimal {value} is outside int32")
            unscaled *= 10**exponent
        scale = 0
    else:
        scale = -exponent
    if sign:
        unscaled = -unscaled
    if scale > 255 or not _I32_MIN <= unscaled <= _I32_MAX:
        # Trailing zeros after the point can go without changing the value.
        while scale and unscaled % 10 == 0:
            unscaled //= 10
            scale -= 1
        if scale > 255:
            raise _encode_error(
                ValueError, f"Decimal {value} needs scale {scale}, more than 255"
            )
        if not _I32_MIN <= unscaled <= _I32_MAX:
            raise _encode_error(
                ValueError,
                f"Decimal {value}: unscaled value {unscaled} is outside int32",
            )
    return _pack_tag_decimal(0x44, scale, unscaled)  # "D"


def _encode_table_value(value: Mapping[str, object]) -> bytes:
    return b"F" + encode_table(value)


def _encode_array_value(value: Sequence[object]) -> bytes:
    return b"A" + encode_array(value)


# Exact-type dispatch; subclasses go through _encoder_for.
_ENCODERS: dict[type, Callable[[Any], bytes]] = {
    str: _encode_str,
    int: _encode_int,
    bool: _encode_bool,
    float: _encode_float,
    bytes: _encode_bytes,
    dict: _encode_table_value,
    list: _encode_array_value,
    type(None): _encode_none,
    _dt.datetime: _encode_datetime,
    _decimal.Decimal: _encode_decimal,
    tuple: _encode_array_value,
    bytearray: _encode_bytes,
    memoryview: _encode_memoryview,
}

# Order matters: bool before int (bool is an int); str and the bytes types
# before Sequence (they are Sequences, not arrays).
_SUBCLASS_ENCODERS: tuple[tuple[type, Callable[[Any], bytes]], ...] = (
    (bool, _encode_bool),
    (int, _encode_int),
    (str, _encode_str),
    (float, _encode_float),
    (bytes, _encode_bytes),
    (bytearray, _encode_bytes),
    (memoryview, _encode_memoryview),
    (_dt.datetime, _encode_datetime),
    (_decimal.Decimal, _encode_decimal),
    (Mapping, _encode_table_value),
    (Sequence, _encode_array_value),
)


def _encoder_for(value: object) -> Callable[[Any], bytes]:
    for kind, encoder in _SUBCLASS_ENCODERS:
        if isinstance(value, kind):
            return encoder
    raise _encode_error(
        TypeError,
        f"{_type_name(value)} {_short_repr(value)} cannot be sent in a field "
        "table (send str, int, float, bool, bytes, Decimal, datetime, dict, "
        "list or None)",
    )


#: Memo of table keys as encoded shortstrs: header and argument names repeat
#: on every publish. Bounded, so arbitrary keys cannot grow it without end.
_KEYS: dict[str, bytes] = {}
_KEYS_MAX = 1024


def _encode_key(key: object) -> bytes:
    if not isinstance(key, str):
        raise _encode_error(
            TypeError, f"table key {_short_repr(key)} is {_type_name(key)}, not str"
        )
    try:
        data = key.encode()
    except UnicodeEncodeError:
        raise _encode_error(
            ValueError, f"table key {_short_repr(key)} is not encodable as UTF-8"
        ) from None
    if len(data) > 255:
        raise _encode_error(
            ValueError,
            f"table key {_short_repr(key)} is {len(data)} bytes in UTF-8, "
            "longer than the 255 of a shortstr",
        )
    encoded = _pack_u8(len(data)) + data
    if type(key) is str and len(_KEYS) < _KEYS_MAX:
        _KEYS[key] = encoded
    return encoded


def encode_table(value: Mapping[str, object] | None, path: str = "table") -> bytes:
    """Encode a field table, its 4-byte length prefix included.

    ``None`` and an empty mapping both encode to ``b"\\0\\0\\0\\0"``. Entries
    keep the mapping's order.

    Args:
        value: the table; keys must be ``str``.
        path: how error messages name the table (``"headers"``,
            ``"arguments"``).

    Raises:
        TypeError: ``value`` is not a mapping, a key is not a ``str``, or a
            value has a type no field type carries.
        ValueError: a key longer than 255 bytes in UTF-8, an int outside
            int64, a Decimal that does not fit, a datetime before 1970, a
            str with a lone surrogate, a string longer than 2**32-1 bytes,
            or a table that contains itself.

        The message starts with the path of the offending value, such as
        ``headers['a'][2]: int 1180591620717411303424 is outside int64``.
    """
    if value is None:
        return _EMPTY_TABLE
    if _c_encode_table is not None:
        encoded = _c_encode_table(value)
        if encoded is not None:
            return encoded
    if type(value) is not dict and not isinstance(value, Mapping):
        raise _encode_error(
            TypeError,
            f"expected a dict for a field table, got {_type_name(value)}",
            path,
        )
    table: Mapping[Any, Any] = value  # values are checked one by one below
    parts: list[bytes] = []
    for key, item in table.items():
        encoded_key = _KEYS.get(key)
        if encoded_key is None:
            try:
                encoded_key = _encode_key(key)
            except _ENCODE_ERRORS as exc:
                raise _encode_failure(exc, "", path) from None
        parts.append(encoded_key)
        try:
            # The common header value types inline, most frequent first.
            kind = type(item)
            if kind is str:
                data = item.encode()
                parts.append(_pack_tag_u32(0x53, len(data)))  # "S"
                parts.append(data)
            elif kind is int and _I32_MIN <= item <= _I32_MAX:
                parts.append(_pack_tag_i32(0x49, item))  # "I"
            elif kind is bool:
                parts.append(_TRUE if item else _FALSE)
            else:
                encoder = _ENCODERS.get(kind) or _encoder_for(item)
                parts.append(encoder(item))
        except _ENCODE_ERRORS as exc:
            raise _encode_failure(exc, f"[{key!r}]", path) from None
    body = b"".join(parts)
    try:
        return _pack_u32(len(body)) + body
    except struct.error as exc:
        raise _encode_failure(exc, "", path) from None


def encode_array(value: Sequence[object], path: str = "array") -> bytes:
    """Encode a field array, its 4-byte length prefix included.

    Args:
        value: a list, tuple or other sequence (not a str or bytes).
        path: how error messages name the array.

    Raises:
        TypeError, ValueError: as :func:`encode_table`.
    """
    if _c_encode_array is not None:
        encoded = _c_encode_array(value)
        if encoded is not None:
            return encoded
    if isinstance(value, (str, bytes, bytearray, memoryview)) or not isinstance(
        value, Sequence
    ):
        raise _encode_error(
            TypeError,
            f"expected a list for a field array, got {_type_name(value)}",
            path,
        )
    parts: list[bytes] = []
    index = 0
    try:
        for item in value:
            parts.append((_ENCODERS.get(type(item)) or _encoder_for(item))(item))
            index += 1
    except _ENCODE_ERRORS as exc:
        raise _encode_failure(exc, f"[{index}]", path) from None
    body = b"".join(parts)
    try:
        return _pack_u32(len(body)) + body
    except struct.error as exc:
        raise _encode_failure(exc, "", path) from None


def encode_field_value(value: object, path: str) -> bytes:
    """Encode one field value: its type tag and its payload.

    Args:
        value: the value; see the module docstring for the tag each type
            gets.
        path: how error messages name the value.

    Raises:
        TypeError, ValueError: as :func:`encode_table`.
    """
    try:
        return (_ENCODERS.get(type(value)) or _encoder_for(value))(value)
    except _ENCODE_ERRORS as exc:
        raise _encode_failure(exc, "", path) from None


# --------------------------------------------------------------------------
# Field value decoding. Each decoder takes the offset just past the tag and
# returns (value, new_offset). Lengths are checked against len(buf); the
# table and array loops also check that their entries end exactly where
# their length prefix says.


def _decode_longstr_value(buf: _Buffer, offset: int) -> tuple[object, int]:
    start = offset + 4
    stop = start + _unpack_u32(buf, offset)[0]
    if stop > len(buf):
        raise _decode_error("longstr overruns the buffer", offset, "field value")
    raw = buf[start:stop]
    try:
        return str(raw, "utf-8"), stop
    except UnicodeDecodeError:
        # Binary data under "S" is common (RabbitMQ reads it as bytes too).
        return bytes(raw), stop


def _decode_bytes_value(buf: _Buffer, offset: int) -> tuple[object, int]:
    start = offset + 4
    stop = start + _unpack_u32(buf, offset)[0]
    if stop > len(buf):
        raise _decode_error("byte array overruns the buffer", offset, "field value")
    return bytes(buf[start:stop]), stop


def _decode_decimal_value(buf: _Buffer, offset: int) -> tuple[object, int]:
    scale, unscaled = _unpack_decimal(buf, offset)
    # Decimal from a string is exact and ignores the context.
    return _Decimal(f"{unscaled}E-{scale}"), offset + 5


def _decode_timestamp_value(buf: _Buffer, offset: int) -> tuple[object, int]:
    return _datetime(_unpack_u64(buf, offset)[0]), offset + 8


def _decode_void_value(buf: _Buffer, offset: int) -> tuple[object, int]:
    return None, offset


def _decode_table_value(buf: _Buffer, offset: int) -> tuple[object, int]:
    return decode_table(buf, offset)


def _decode_array_value(buf: _Buffer, offset: int) -> tuple[object, int]:
    return decode_array(buf, offset)


def _fixed_decoder(layout: struct.Struct) -> _Decoder:
    unpack = layout.unpack_from
    size = layout.size

    def decode(buf: _Buffer, offset: int) -> tuple[object, int]:
        return unpack(buf, offset)[0], offset + size

    return decode


_FIXED_LAYOUTS: tuple[tuple[str, struct.Struct], ...] = (
    ("I", _I32),
    ("t", _BOOL),
    ("l", _I64),
    ("b", _I8),
    ("B", _U8),
    ("s", _I16),
    ("u", _U16),
    ("i", _U32),
    ("L", _I64),  # signed, as RabbitMQ reads it (errata)
    ("f", _F32),
    ("d", _F64),
)

#: Fixed-size values: tag -> (unpack_from, size with the tag). The table and
#: array loops read these without a call of their own.
_FIXED: dict[int, tuple[Callable[[_Buffer, int], tuple[Any, ...]], int]] = {
    ord(tag): (layout.unpack_from, 1 + layout.size) for tag, layout in _FIXED_LAYOUTS
}

#: Every tag -> the decoder of the payload after it.
_DECODERS: dict[int, _Decoder] = {
    ord("S"): _decode_longstr_value,
    **{ord(tag): _fixed_decoder(layout) for tag, layout in _FIXED_LAYOUTS},
    ord("F"): _decode_table_value,
    ord("A"): _decode_array_value,
    ord("x"): _decode_bytes_value,
    ord("T"): _decode_timestamp_value,
    ord("D"): _decode_decimal_value,
    ord("V"): _decode_void_value,
}


def _decode_copy(
    decode: Callable[[bytes, int], tuple[Any, int]],
    buf: bytearray | memoryview,
    offset: int,
    what: str,
) -> tuple[Any, int]:
    """Decode a length-prefixed table or array in a bytearray or memoryview
    from a ``bytes`` copy of just its region (bytes decode faster than
    memoryview slices, and their slices can be looked up in NAMES)."""
    try:
        (size,) = _unpack_u32(buf, offset)
    except struct.error:
        raise _decode_error("truncated", offset, what) from None
    try:
        value, stop = decode(bytes(buf[offset : offset + 4 + size]), 0)
    except FrameDecodeError as exc:
        _shift_offsets(exc, offset, what)
        raise
    return value, offset + stop


def decode_table(buf: _Buffer, offset: int) -> tuple[dict[str, object], int]:
    """Decode a field table, with its length prefix, at ``offset``.

    Returns:
        The table as a ``dict`` with ``str`` keys, and the offset just past
        the table.

    Raises:
        FrameDecodeError: any malformed input. The message names the key
            path, the type tag and the offset.
    """
    if not isinstance(buf, bytes):
        # Keys are looked up in NAMES, which a bytearray slice cannot be.
        return _decode_copy(decode_table, buf, offset, "field table")
    if _c_decode_table is not None:
        decoded = _c_decode_table(buf, offset, NAMES, NAMES_MAX)
        if decoded is not None:
            return decoded
    fixed = _FIXED
    names = NAMES
    key: str | None = None
    tag = -1
    try:
        end = offset + 4 + _unpack_u32(buf, offset)[0]
        if end > len(buf):
            raise _decode_error("length overruns the buffer", offset, "field table")
        offset += 4
        result: dict[str, object] = {}
        while offset < end:
            # A key or value whose length overruns the table ends past `end`,
            # which the check after the loop catches.
            start = offset + 1
            offset = start + buf[offset]
            raw = buf[start:offset]
            try:
                key = names[raw]  # one lookup: another thread may empty it
            except KeyError:
                key = name_from(raw)
            tag = buf[offset]
            if tag == 0x53:  # S
                start = offset + 5
                offset = start + _unpack_u32(buf, offset + 1)[0]
                try:
                    result[key] = buf[start:offset].decode()
                except UnicodeDecodeError:
                    result[key] = bytes(buf[start:offset])
            elif tag == 0x49:  # I
                result[key] = _unpack_i32(buf, offset + 1)[0]
                offset += 5
            else:
                unpack = fixed.get(tag)
                if unpack is not None:
                    result[key] = unpack[0](buf, offset + 1)[0]
                    offset += unpack[1]
                else:
                    result[key], offset = _DECODERS[tag](buf, offset + 1)
        if offset != end:
            raise _decode_error("entry overruns the table", offset, "field table")
    except _DECODE_ERRORS as exc:
        step = "" if key is None else f"[{key!r}]"
        raise _decode_failure(exc, step, tag, offset, "field table") from None
    return result, offset


def decode_array(buf: _Buffer, offset: int) -> tuple[list[object], int]:
    """Decode a field array, with its length prefix, at ``offset``.

    Returns:
        The items as a ``list``, and the offset just past the array.

    Raises:
        FrameDecodeError: as :func:`decode_table`.
    """
    if type(buf) is memoryview:
        return _decode_copy(decode_array, buf, offset, "field array")
    if _c_decode_array is not None and type(buf) is bytes:
        decoded = _c_decode_array(buf, offset, NAMES, NAMES_MAX)
        if decoded is not None:
            return decoded
    fixed = _FIXED
    decoders = _DECODERS
    result: list[object] = []
    tag = -1
    try:
        end = offset + 4 + _unpack_u32(buf, offset)[0]
        if end > len(buf):
            raise _decode_error("length overruns the buffer", offset, "field array")
        offset += 4
        while offset < end:
            tag = buf[offset]
            unpack = fixed.get(tag)
            if unpack is not None:
                result.append(unpack[0](buf, offset + 1)[0])
                offset += unpack[1]
            else:
                value, offset = decoders[tag](buf, offset + 1)
                result.append(value)
    except _DECODE_ERRORS as exc:
        step = "" if tag < 0 else f"[{len(result)}]"
        raise _decode_failure(exc, step, tag, offset, "field array") from None
    if offset != end:
        # An item's length ran past `end`; it is the last one decoded.
        raise _decode_failure(
            _decode_error("item overruns the array", offset, "field array"),
            f"[{len(result) - 1}]",
            tag,
            offset,
            "field array",
        )
    return result, offset


def decode_field_value(buf: _Buffer, offset: int) -> tuple[object, int]:
    """Decode one field value, type tag and payload, at ``offset``.

    Raises:
        FrameDecodeError: as :func:`decode_table`.
    """
    tag = -1
    try:
        tag = buf[offset]
        return _DECODERS[tag](buf, offset + 1)
    except _DECODE_ERRORS as exc:
        raise _decode_failure(exc, "", tag, offset, "field value") from None
