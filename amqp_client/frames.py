"""AMQP 0-9-1 framing: an incremental frame reader and the frame writers.

This module turns bytes from the peer into frame objects and frame objects
(methods, properties, bodies) into bytes. It is sans-IO: it never touches a
socket, an event loop, a thread or a clock, and it never interprets the order
of frames (content assembly and the method grammar belong to the protocol
core). Bad input from the peer raises :class:`~amqp_client.errors.FrameDecodeError`
(reply code 501 frame-error); bad arguments from the caller raise
``ValueError`` or ``TypeError`` before any byte is produced.

The method and property classes come from the generated ``amqp_client.spec``
and are used only through a small contract (see :class:`MethodDecoder` and
:class:`PropertiesDecoder`): ``decode_from(buf, offset, end)`` decodes the
arguments occupying ``buf[offset:end]`` exactly, ``encode()`` returns them.

Wire format (AMQP 0-9-1 §2.3.5, §4.2.3)::

    0      1         3             7                  size+7      size+8
    +------+---------+-------------+------------------+-----------+
    | type | channel |    size     |     payload      | frame-end |
    +------+---------+-------------+------------------+-----------+
     octet   short       long        'size' octets       octet 0xCE

    type 1, method (§4.2.4):
    +----------+-----------+---------------------------+
    | class-id | method-id |   arguments (spec codec)  |
    +----------+-----------+---------------------------+
       short       short

    type 2, content header (§4.2.6.1):
    +----------+--------+-------------+----------------+------------------+
    | class-id | weight |  body size  | property flags | property list... |
    +----------+--------+-------------+----------------+------------------+
       short     short    long long       short(s)

    type 3, content body: the payload is a slice of the message body.
    type 8, heartbeat (§4.2.7): channel 0, empty payload.

Before any frame the client sends the protocol header
``b"AMQP\\x00\\x00\\x09\\x01"``; a broker that does not accept that version
answers with its own protocol header and closes the socket (§4.2.2).
"""

from __future__ import annotations

import functools
import importlib
import struct
import sys
from collections.abc import Callable, Mapping
from typing import Final, NamedTuple, Protocol, TypeAlias, TypeVar, cast

from . import wire as _wire
from ._spec_base import Properties as _GeneratedProperties
from ._spec_base import lazy_decoder
from .errors import FrameDecodeError
from .spec.constants import (
    FRAME_BODY,
    FRAME_END,
    FRAME_HEADER,
    FRAME_HEARTBEAT,
    FRAME_METHOD,
    FRAME_MIN_SIZE,
    PROTOCOL_VERSION,
)

__all__ = [
    "FRAME_BODY",
    "FRAME_END",
    "FRAME_END_BYTE",
    "FRAME_HEADER",
    "FRAME_HEADER_SIZE",
    "FRAME_HEARTBEAT",
    "FRAME_METHOD",
    "FRAME_MIN_SIZE",
    "FRAME_OVERHEAD",
    "HEARTBEAT_FRAME",
    "JOIN_MAX",
    "PROTOCOL_HEADER",
    "BodyFrame",
    "ContentFrame",
    "Frame",
    "FrameReader",
    "HeaderFrame",
    "HeartbeatFrame",
    "Method",
    "MethodDecoder",
    "MethodFrame",
    "Properties",
    "PropertiesDecoder",
    "body_frames",
    "content_frames",
    "header_frame",
    "heartbeat_frame",
    "method_frame",
]

# -- constants (AMQP 0-9-1 §4.2.3 and the spec's <constant> elements) --------

# The frame types, frame-end and frame-min-size are the spec's <constant>s,
# generated into amqp_client.spec.constants: this module re-exports them.
PROTOCOL_HEADER: Final = b"AMQP\x00" + bytes(PROTOCOL_VERSION)
FRAME_END_BYTE: Final = bytes([FRAME_END])
#: type octet + channel short + size long.
FRAME_HEADER_SIZE: Final = 7
#: Header plus the frame-end octet: what a frame costs beyond its payload.
FRAME_OVERHEAD: Final = 8
#: Largest frame_max: the tune methods carry it in a long.
_FRAME_MAX_LIMIT: Final = 0xFFFFFFFF

_HEAD = struct.Struct(">BHI")
_METHOD_KEY = struct.Struct(">I")
_CONTENT_HEAD = struct.Struct(">HHQ")
# A content header frame's head with class-id, weight and body size: what the
# reader checks before it joins a header to the method in front of it.
_HEADER_FRAME_HEAD = struct.Struct(">BHIHHQ")
# Writers pack as much as they can in one call: the frame-end of the previous
# frame is folded into the head of the next one.
_METHOD_HEAD = struct.Struct(">BHIHH")
_HEADER_HEAD = struct.Struct(">BHIHHQ")
_END_HEADER_HEAD = struct.Struct(">BBHIHHQ")
_BODY_HEAD = struct.Struct(">BHI")
_END_BODY_HEAD = struct.Struct(">BBHI")

HEARTBEAT_FRAME: Final = _HEAD.pack(FRAME_HEARTBEAT, 0, 0) + FRAME_END_BYTE

#: A body of this many bytes or more is never copied by the writers: it is
#: handed over as buffers of its own (memoryview slices, one per body
#: frame) between the frame heads, for the front to write with
#: ``writelines``/``sendmsg``. A smaller one is joined with its frame heads
#: into one ``bytes``, so many small publishes stay few large writes.
JOIN_MAX: Final = 65536

# A method frame payload starts with class-id and method-id; a header frame
# payload with class-id, weight, body size and at least one flags word.
_METHOD_MIN_PAYLOAD: Final = 4
_HEADER_MIN_PAYLOAD: Final = 14
_REPR_PAYLOAD_MAX: Final = 32


# -- the contract with the generated classes ----------------------------------


class Method(Protocol):
    """A method instance, as generated into ``amqp_client.spec.methods``."""

    @property
    def CLASS_ID(self) -> int: ...
    @property
    def METHOD_ID(self) -> int: ...
    @property
    def NAME(self) -> str: ...

    def encode(self) -> bytes:
        """Return the method arguments (no class or method id)."""
        ...


class MethodDecoder(Protocol):
    """A method class, as a value of the ``METHODS`` registry."""

    @property
    def NAME(self) -> str: ...

    def decode_from(self, buf: bytes, offset: int, end: int) -> Method:
        """Decode the arguments occupying ``buf[offset:end]`` exactly."""
        ...


class Properties(Protocol):
    """A content-properties instance (``BasicProperties``)."""

    @property
    def CLASS_ID(self) -> int: ...

    def encode(self) -> bytes:
        """Return the property flags followed by the property values."""
        ...


class PropertiesDecoder(Protocol):
    """A properties class, as a value of the ``PROPERTIES`` registry."""

    def decode_from(self, buf: bytes, offset: int, end: int) -> Properties:
        """Decode flags and values occupying ``buf[offset:end]`` exactly."""
        ...


_T = TypeVar("_T")
_Decode: TypeAlias = Callable[[bytes, int, int], _T]


# -- frame objects --------------------------------------------------------------


class MethodFrame:
    """A method frame: ``method`` is an instance of a generated method class."""

    __slots__ = ("channel", "method")
    __match_args__ = ("channel", "method")
    frame_type: Final = FRAME_METHOD

    def __init__(self, channel: int, method: Method) -> None:
        self.channel = channel
        self.method = method

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, MethodFrame):
            return NotImplemented
        return self.channel == other.channel and self.method == other.method

    __hash__ = None  # type: ignore[assignment]  # typeshed types __hash__ as a method; None makes it unhashable

    def __repr__(self) -> str:
        return f"MethodFrame(channel={self.channel!r}, method={self.method!r})"


class HeaderFrame:
    """A content header frame (§4.2.6.1); the weight field is always 0."""

    __slots__ = ("body_size", "channel", "class_id", "properties")
    __match_args__ = ("channel", "class_id", "body_size", "properties")
    frame_type: Final = FRAME_HEADER

    def __init__(
        self, channel: int, class_id: int, body_size: int, properties: Properties
    ) -> None:
        self.channel = channel
        self.class_id = class_id
        self.body_size = body_size
        self.properties = properties

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, HeaderFrame):
            return NotImplemented
        return (
            self.channel == other.channel
            and self.class_id == other.class_id
            and self.body_size == other.body_size
            and self.properties == other.properties
        )

    __hash__ = None  # type: ignore[assignment]  # typeshed types __hash__ as a method; None makes it unhashable

    def __repr__(self) -> str:
        return (
            f"HeaderFrame(channel={self.channel!r}, class_id={self.class_id!r}, "
            f"body_size={self.body_size!r}, properties={self.properties!r})"
        )


class BodyFrame:
    """A content body frame: one slice of a message body.

    ``payload`` is ``bytes``, or for a payload of 64 KiB or more a read-only
    memoryview of the bytes the reader received (not a copy of them).
    """

    __slots__ = ("channel", "payload")
    __match_args__ = ("channel", "payload")
    frame_type: Final = FRAME_BODY

    def __init__(self, channel: int, payload: bytes | memoryview) -> None:
        self.channel = channel
        self.payload = payload

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, BodyFrame):
            return NotImplemented
        return self.channel == other.channel and self.payload == other.payload

    __hash__ = None  # type: ignore[assignment]  # typeshed types __hash__ as a method; None makes it unhashable

    def __repr__(self) -> str:
        payload = self.payload
        if len(payload) <= _REPR_PAYLOAD_MAX:
            return f"BodyFrame(channel={self.channel!r}, payload={payload!r})"
        shown = bytes(payload[:_REPR_PAYLOAD_MAX])
        return (
            f"BodyFrame(channel={self.channel!r}, payload={shown!r}... "
            f"({len(payload)} bytes))"
        )


class HeartbeatFrame:
    """A heartbeat frame (§4.2.7); always on channel 0."""

    __slots__ = ("channel",)
    __match_args__ = ("channel",)
    frame_type: Final = FRAME_HEARTBEAT

    def __init__(self, channel: int = 0) -> None:
        self.channel = channel

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, HeartbeatFrame):
            return NotImplemented
        return self.channel == other.channel

    __hash__ = None  # type: ignore[assignment]  # typeshed types __hash__ as a method; None makes it unhashable

    def __repr__(self) -> str:
        return f"HeartbeatFrame(channel={self.channel!r})"


class ContentFrame:
    """A content-carrying method with its content header and its whole body.

    Not a frame on the wire: a :class:`FrameReader` made with
    ``coalesce=True`` returns one in place of a method frame, the content
    header frame after it and the body frames after that, when it finds all
    of them complete, in order, on one channel and in one buffer, with the
    body in one frame (or none, for an empty body). Any other arrangement
    comes back as the separate frames, so the protocol core must accept both
    and make the same of them.
    """

    __slots__ = ("body", "channel", "method", "properties")
    __match_args__ = ("channel", "method", "properties", "body")

    def __init__(
        self, channel: int, method: Method, properties: Properties, body: bytes
    ) -> None:
        self.channel = channel
        self.method = method
        self.properties = properties
        self.body = body

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ContentFrame):
            return NotImplemented
        return (
            self.channel == other.channel
            and self.method == other.method
            and self.properties == other.properties
            and self.body == other.body
        )

    __hash__ = None  # type: ignore[assignment]  # typeshed types __hash__ as a method; None makes it unhashable

    def __repr__(self) -> str:
        return (
            f"ContentFrame(channel={self.channel!r}, method={self.method!r}, "
            f"properties={self.properties!r}, body=<{len(self.body)} bytes>)"
        )


Frame: TypeAlias = MethodFrame | HeaderFrame | BodyFrame | HeartbeatFrame | ContentFrame

# How the C content path fills a ContentFrame in (no __init__ call).
_CONTENT_FRAME_SLOTS: Final = tuple(
    ContentFrame.__dict__[name] for name in ("channel", "method", "properties", "body")
)


# -- the reader -------------------------------------------------------------------


def _load_registry(module: str, name: str) -> Mapping[int, object]:
    # Imported on first use, not at module import: the generated package is
    # optional for this module's own tests and must not create import cycles.
    try:
        registry = getattr(importlib.import_module(module), name)
    except AttributeError:
        raise ImportError(f"cannot import name {name!r} from {module!r}") from None
    return cast(Mapping[int, object], registry)


def _fast_decoder(cls: MethodDecoder) -> _Decode[Method]:
    """``cls.decode_from``, or with the C speedups the same decoder called
    straight from C (the generated classmethod is a Python call around it).

    The generated module keeps a class's C layout in ``_L_<class name>``
    (None without the speedups); a class without one decodes as it is.
    """
    decode = cls.decode_from
    fields_or = _wire.c_decode_fields_or
    module = sys.modules.get(getattr(cls, "__module__", ""))
    layout = getattr(module, f"_L_{getattr(cls, '__name__', '')}", None)
    if fields_or is None or layout is None:
        return decode
    return functools.partial(fields_or, cls, layout, decode)


class _Tables(NamedTuple):
    """What a reader looks up per frame, derived from the registries."""

    methods: Mapping[int, MethodDecoder]
    properties: Mapping[int, PropertiesDecoder]
    # Bound decoders looked up by one dict subscript in the hot loop.
    method_decoders: dict[int, _Decode[Method]]
    properties_decoders: dict[int, _Decode[Properties]]
    # The methods whose content may be joined to them (none unless
    # coalescing): those that carry content and whose class has a
    # properties decoder.
    content_keys: frozenset[int]


#: The tables of the generated registries, by ``coalesce`` and whether the
#: C speedups are in use: built once and shared by every reader (never
#: changed after), instead of ~90 bound methods and their dicts per
#: connection (6.5 KiB, a third of an asyncio connection's Python heap).
_DEFAULT_TABLES: dict[tuple[bool, bool], _Tables] = {}


def _decoder_tables(
    methods: Mapping[int, MethodDecoder] | None,
    properties: Mapping[int, PropertiesDecoder] | None,
    coalesce: bool,
) -> _Tables:
    if methods is None:
        methods = cast(
            Mapping[int, MethodDecoder],
            _load_registry("amqp_client.spec.methods", "METHODS"),
        )
    if properties is None:
        properties = cast(
            Mapping[int, PropertiesDecoder],
            _load_registry("amqp_client.spec.properties", "PROPERTIES"),
        )
    # Generated properties classes are decoded on first access (the bytes
    # checked on arrival: see _spec_base.lazy_decoder).
    properties_decoders: dict[int, _Decode[Properties]] = {
        key: (
            lazy_decoder(cls)
            if isinstance(cls, type) and issubclass(cls, _GeneratedProperties)
            else cls.decode_from
        )
        for key, cls in properties.items()
    }
    content_keys = (
        frozenset(
            key
            for key, cls in methods.items()
            if getattr(cls, "HAS_CONTENT", False) and key >> 16 in properties_decoders
        )
        if coalesce
        else frozenset()
    )
    return _Tables(
        methods,
        properties,
        {key: _fast_decoder(cls) for key, cls in methods.items()},
        properties_decoders,
        content_keys,
    )


def _payload_limit(frame_max: int) -> int:
    """Return the largest payload a frame_max allows (validating it)."""
    if not isinstance(frame_max, int) or isinstance(frame_max, bool):
        raise TypeError(f"frame_max must be an int, not {type(frame_max).__name__}")
    if frame_max == 0:
        return 0xFFFFFFFF
    if not FRAME_MIN_SIZE <= frame_max <= _FRAME_MAX_LIMIT:
        raise ValueError(
            f"frame_max must be 0 (no limit) or between {FRAME_MIN_SIZE} and "
            f"{_FRAME_MAX_LIMIT}, got {frame_max}"
        )
    return frame_max - FRAME_OVERHEAD


class FrameReader:
    """Incremental AMQP 0-9-1 frame parser: bytes in, frames out.

    Feed it whatever the transport delivers, in any chunking; :meth:`feed`
    returns every frame completed so far and keeps a partial tail for the
    next call. "Not enough bytes yet" is not an error.

    The reader checks framing only: frame-end octets, the negotiated
    frame_max, frame types, heartbeat shape, and that each method or header
    payload decodes with its generated class. Which frame may follow which
    is the protocol core's business.

    After a :class:`FrameDecodeError` the reader is poisoned: every later
    :meth:`feed` raises the same error. Frames that completed before the bad
    one in the failing call are discarded (the connection is going down).

    Args:
        frame_max: largest accepted frame, counting the 7-byte header and the
            frame-end octet as RabbitMQ does; 0 means no limit. Settable, as
            connection.tune-ok changes it.
        methods: registry ``(class_id << 16) | method_id`` -> method class;
            ``None`` loads ``amqp_client.spec.methods.METHODS``.
        properties: registry class_id -> properties class; ``None`` loads
            ``amqp_client.spec.properties.PROPERTIES``.
        coalesce: return a :class:`ContentFrame` for a content method whose
            header and single body frame complete in the same buffer, instead
            of three frames. Off by default, so that the frames returned do
            not depend on how the stream was chunked; the protocol core turns
            it on, as it saves two frame objects and two dispatches per
            message.

    Raises:
        ValueError: frame_max is neither 0 nor in [4096, 2**32 - 1].
        TypeError: frame_max is not an int.
    """

    __slots__ = (
        "_buffered",
        "_content_keys",
        "_content_tail",
        "_error",
        "_frame_max",
        "_limit",
        "_method_decoders",
        "_methods",
        "_need",
        "_parts",
        "_properties",
        "_properties_decoders",
    )

    def __init__(
        self,
        frame_max: int = 131072,
        methods: Mapping[int, MethodDecoder] | None = None,
        properties: Mapping[int, PropertiesDecoder] | None = None,
        *,
        coalesce: bool = False,
    ) -> None:
        self._limit = _payload_limit(frame_max)
        self._frame_max = frame_max
        default = methods is None and properties is None
        key = (coalesce, _wire.c_decode_fields_or is not None)
        tables = _DEFAULT_TABLES.get(key) if default else None
        if tables is None:
            tables = _decoder_tables(methods, properties, coalesce)
            if default:
                _DEFAULT_TABLES[key] = tables
        (
            self._methods,
            self._properties,
            self._method_decoders,
            self._properties_decoders,
            self._content_keys,
        ) = tables
        # Its C version, when the speedups are built.
        self._content_tail = _wire.c_content_tail if coalesce else None
        # The partial tail of the stream, and how many bytes it must reach
        # before parsing can make progress (so a large frame arriving in
        # small pieces costs no re-parsing, just appends).
        # Kept as the pieces received (joined once when the frame is
        # complete), not appended to one buffer: a large body frame arriving
        # in many reads is copied once, not once per read.
        self._parts: list[bytes | memoryview] = []
        self._buffered = 0
        self._need = 0
        self._error: FrameDecodeError | None = None

    @property
    def frame_max(self) -> int:
        """Largest accepted frame including header and frame-end; 0 = none."""
        return self._frame_max

    @frame_max.setter
    def frame_max(self, value: int) -> None:
        self._limit = _payload_limit(value)
        self._frame_max = value
        self._need = 0  # re-check a buffered frame header against the new limit

    @property
    def error(self) -> FrameDecodeError | None:
        """The error that poisoned the reader, or None."""
        return self._error

    def receive_buffer_size(self) -> int:
        """How many received bytes are buffered, waiting to complete a frame."""
        return self._buffered

    def bytes_needed(self) -> int:
        """A lower bound on the bytes still missing to complete the next frame
        (1 or more when a frame is partially buffered, 0 when nothing is)."""
        if not self._buffered:
            return 0
        return max(self._need - self._buffered, 1)

    def feed(self, data: bytes | bytearray | memoryview) -> list[Frame]:
        """Consume ``data`` and return the frames it completes, in order.

        A ``bytes`` argument is parsed in place (and an incomplete tail of
        it kept, as bytes are immutable); any other buffer is copied once
        first, so a caller may reuse it. The pieces of a frame that spans
        several calls are joined once, when it is complete. Decoders are
        always handed a ``bytes`` object; a large body payload is a
        memoryview of it (see :class:`BodyFrame`).

        Raises:
            FrameDecodeError: the stream is not valid AMQP 0-9-1 framing (or
                the reader already failed earlier).
        """
        if self._error is not None:
            raise self._error
        if data.__class__ is not bytes:
            data = bytes(memoryview(data))  # TypeError for a non-buffer
        parts = self._parts
        if parts:
            parts.append(data)
            self._buffered += len(data)
            if self._buffered < self._need:
                return []
            data = b"".join(parts)
            parts.clear()
            self._buffered = 0
        try:
            frames, pos, need = self._parse(data)
        except FrameDecodeError as exc:
            self._error = exc
            parts.clear()
            self._buffered = 0
            self._need = 0
            raise
        rest = len(data) - pos
        if rest:
            # A large tail is kept as a view of ``data`` (no copy); a small
            # one is copied so it does not pin a whole read.
            parts.append(memoryview(data)[pos:] if rest >= 4096 else data[pos:])
            self._buffered = rest
        self._need = need
        return frames

    def _parse(self, data: bytes) -> tuple[list[Frame], int, int]:
        # The hot loop. One header unpack per frame, no slicing except for
        # body payloads, the method key read as one int, decoders working in
        # place on ``data``. Everything the loop touches is a local (the
        # frame types and frame-end are the generated constants, bound here),
        # and the sizes are literals: 7 = FRAME_HEADER_SIZE, 4 and 14 =
        # _METHOD_MIN_PAYLOAD and _HEADER_MIN_PAYLOAD.
        # Frames are tested in order of frequency on a consuming connection.
        frames: list[Frame] = []
        append = frames.append
        unpack_head = _HEAD.unpack_from
        unpack_key = _METHOD_KEY.unpack_from
        unpack_content = _CONTENT_HEAD.unpack_from
        unpack_header = _HEADER_FRAME_HEAD.unpack_from
        content_keys = self._content_keys
        content_tail = self._content_tail
        method_decoders = self._method_decoders
        properties_decoders = self._properties_decoders
        limit = self._limit
        frame_end = FRAME_END
        method_type = FRAME_METHOD
        header_type = FRAME_HEADER
        body_type = FRAME_BODY
        heartbeat_type = FRAME_HEARTBEAT
        n = len(data)
        pos = 0
        need = FRAME_HEADER_SIZE
        while n - pos >= 7:
            ftype, channel, size = unpack_head(data, pos)
            start = pos + 7
            end = start + size
            if end >= n or size > limit:
                if size > limit or ftype not in _FRAME_TYPES:
                    need = self._reject(data, pos, ftype, channel, size)
                else:
                    need = size + FRAME_OVERHEAD
                break
            if data[end] != frame_end:
                raise FrameDecodeError(
                    f"bad frame-end octet 0x{data[end]:02x} (expected 0xce) after a "
                    f"type {ftype} frame of {size} bytes on channel {channel}"
                )
            if ftype == method_type:
                if size < 4:
                    raise FrameDecodeError(
                        f"method frame payload of {size} bytes on channel {channel} "
                        "is too short for class-id and method-id"
                        f" ({_METHOD_MIN_PAYLOAD} bytes)"
                    )
                (key,) = unpack_key(data, start)
                try:
                    decode = method_decoders[key]
                except KeyError:
                    raise FrameDecodeError(
                        f"unknown method {key >> 16}/{key & 0xFFFF} on channel {channel}"
                    ) from None
                try:
                    method = decode(data, start + 4, end)
                except FrameDecodeError:
                    raise
                except Exception as exc:
                    raise FrameDecodeError(
                        f"cannot decode {self._methods[key].NAME} on channel "
                        f"{channel}: {type(exc).__name__}: {exc}"
                    ) from exc
                if key in content_keys:
                    # Join the header and the body when both are complete
                    # here; anything unusual is left to the frame-by-frame
                    # path below, which reports it.
                    hpos = end + 1
                    if content_tail is not None:
                        # The same checks and the same frame, in C.
                        class_id = key >> 16
                        try:
                            tail = content_tail(
                                data,
                                hpos,
                                channel,
                                class_id,
                                limit,
                                properties_decoders[class_id],
                                ContentFrame,
                                _CONTENT_FRAME_SLOTS,
                                method,
                            )
                        except FrameDecodeError:
                            raise
                        except Exception as exc:
                            raise _properties_error(class_id, channel, exc) from exc
                        if tail is not None:
                            frame, pos = tail
                            append(frame)
                            continue
                    elif n - hpos >= 22:
                        htype, hchannel, hsize, class_id, _weight, body_size = (
                            unpack_header(data, hpos)
                        )
                        hend = hpos + 7 + hsize
                        if (
                            htype == header_type
                            and hchannel == channel
                            and class_id == key >> 16
                            and 14 <= hsize <= limit
                            and hend < n
                            and data[hend] == frame_end
                        ):
                            # The body: none, or one whole frame of body_size.
                            body: bytes | None = b""
                            bend = hend
                            bpos = hend + 1
                            if body_size:
                                body = None
                                if n - bpos >= 8:
                                    btype, bchannel, bsize = unpack_head(data, bpos)
                                    bend = bpos + 7 + bsize
                                    if (
                                        btype == body_type
                                        and bchannel == channel
                                        and bsize == body_size
                                        and bsize <= limit
                                        and bend < n
                                        and data[bend] == frame_end
                                    ):
                                        body = data[bpos + 7 : bend]
                            if body is not None:
                                try:
                                    props = properties_decoders[class_id](
                                        data, hpos + 19, hend
                                    )
                                except FrameDecodeError:
                                    raise
                                except Exception as exc:
                                    raise _properties_error(
                                        class_id, channel, exc
                                    ) from exc
                                append(ContentFrame(channel, method, props, body))
                                pos = bend + 1
                                continue
                append(MethodFrame(channel, method))
            elif ftype == body_type:
                # A large payload is a view: the protocol core joins a
                # body's frames into one bytes object, its only copy.
                append(
                    BodyFrame(
                        channel,
                        data[start:end]
                        if size < JOIN_MAX
                        else memoryview(data)[start:end],
                    )
                )
            elif ftype == header_type:
                if size < 14:
                    raise FrameDecodeError(
                        f"content header payload of {size} bytes on channel {channel} "
                        f"is too short (at least {_HEADER_MIN_PAYLOAD})"
                    )
                class_id, _weight, body_size = unpack_content(data, start)
                try:
                    decode_props = properties_decoders[class_id]
                except KeyError:
                    raise FrameDecodeError(
                        f"content header on channel {channel} for class {class_id}, "
                        "which has no content properties"
                    ) from None
                try:
                    props = decode_props(data, start + 12, end)
                except FrameDecodeError:
                    raise
                except Exception as exc:
                    raise _properties_error(class_id, channel, exc) from exc
                append(HeaderFrame(channel, class_id, body_size, props))
            elif ftype == heartbeat_type:
                if channel or size:
                    raise FrameDecodeError(
                        f"heartbeat frame on channel {channel} with a {size}-byte "
                        "payload (must be channel 0, empty)"
                    )
                append(HeartbeatFrame(0))
            else:
                need = self._reject(data, pos, ftype, channel, size)
                break
            pos = end + 1
        return frames, pos, need

    def _reject(
        self, data: bytes, pos: int, ftype: int, channel: int, size: int
    ) -> int:
        """Raise the error for a frame head that cannot start a valid frame.

        Returns the number of bytes needed when the head may be a protocol
        header that is not complete yet.
        """
        if data[pos : pos + 4] == b"AMQP":
            header = data[pos : pos + 8]
            if len(header) < 8:
                return 8
            raise FrameDecodeError(
                "the server rejected AMQP 0-9-1 and answered with the protocol "
                f"header {header!r}: it wants protocol id {header[4]}, version "
                f"{header[5]}-{header[6]}-{header[7]}"
            )
        if ftype not in _FRAME_TYPES:
            raise FrameDecodeError(
                f"unknown frame type {ftype} on channel {channel} (size {size})"
            )
        raise FrameDecodeError(
            f"type {ftype} frame on channel {channel} is {size + FRAME_OVERHEAD} "
            f"bytes, over frame_max {self._frame_max}"
        )


def _properties_error(class_id: int, channel: int, exc: Exception) -> FrameDecodeError:
    return FrameDecodeError(
        f"cannot decode the properties of class {class_id} on channel {channel}: "
        f"{type(exc).__name__}: {exc}"
    )


_FRAME_TYPES: Final = frozenset(
    (FRAME_METHOD, FRAME_HEADER, FRAME_BODY, FRAME_HEARTBEAT)
)


# -- writers ----------------------------------------------------------------------


def _check_channel(channel: int) -> None:
    if not isinstance(channel, int) or isinstance(channel, bool):
        raise TypeError(f"channel must be an int, not {type(channel).__name__}")
    if not 0 <= channel <= 0xFFFF:
        raise ValueError(f"channel must be in 0..65535, got {channel}")


def _as_payload(body: object) -> bytes | memoryview:
    """Return ``body`` as something that is safe to slice without copying.

    ``bytes`` (and read-only byte views) are used as they are. A mutable
    buffer is copied once: queued memoryview slices of it would change if the
    caller reused it, and would stop the caller from resizing a bytearray.
    """
    if isinstance(body, bytes):
        return body if body.__class__ is bytes else bytes(body)
    if isinstance(body, bytearray):
        return bytes(body)
    if isinstance(body, memoryview):
        if not (body.readonly and body.c_contiguous):
            return bytes(body)
        if body.format != "B" or body.ndim != 1:
            return body.cast("B")
        return body
    raise TypeError(
        "a message body must be bytes, bytearray or memoryview, "
        f"not {type(body).__name__}"
    )


def method_frame(channel: int, method: Method) -> bytes:
    """Return one method frame carrying ``method`` on ``channel``.

    Raises:
        TypeError, ValueError: bad channel, or from ``method.encode()``.
    """
    if channel.__class__ is not int or not 0 <= channel <= 0xFFFF:
        _check_channel(channel)
    args = method.encode()
    return b"".join(
        (
            _METHOD_HEAD.pack(
                FRAME_METHOD, channel, len(args) + 4, method.CLASS_ID, method.METHOD_ID
            ),
            args,
            FRAME_END_BYTE,
        )
    )


def header_frame(
    channel: int, body_size: int, properties: Properties, class_id: int | None = None
) -> bytes:
    """Return one content header frame (weight 0).

    Args:
        class_id: the content class; defaults to ``properties.CLASS_ID``.

    Raises:
        TypeError, ValueError: bad channel or body_size, or from
            ``properties.encode()``.
    """
    _check_channel(channel)
    if not isinstance(body_size, int) or isinstance(body_size, bool):
        raise TypeError(f"body_size must be an int, not {type(body_size).__name__}")
    if not 0 <= body_size <= 0xFFFFFFFFFFFFFFFF:
        raise ValueError(f"body_size must be in 0..2**64-1, got {body_size}")
    if class_id is None:
        class_id = properties.CLASS_ID
    props = properties.encode()
    return b"".join(
        (
            _HEADER_HEAD.pack(
                FRAME_HEADER, channel, len(props) + 12, class_id, 0, body_size
            ),
            props,
            FRAME_END_BYTE,
        )
    )


def _body_buffers(
    channel: int, payload: bytes | memoryview, chunk: int, prefix: bytes
) -> list[bytes | memoryview]:
    # [prefix+head1, slice1, end+head2, slice2, ..., end]: the frame-end of
    # each frame shares a buffer with the next head, so N body frames are
    # 2N+1 buffers, and the slices are views of ``payload``, not copies.
    n = len(payload)
    view = memoryview(payload) if payload.__class__ is bytes else payload
    end_head = _END_BODY_HEAD.pack
    size = min(chunk, n)
    out: list[bytes | memoryview] = [
        prefix + _BODY_HEAD.pack(FRAME_BODY, channel, size)
    ]
    append = out.append
    pos = 0
    while True:
        append(view[pos : pos + size])
        pos += size
        if pos >= n:
            break
        size = min(chunk, n - pos)
        append(end_head(FRAME_END, FRAME_BODY, channel, size))
    append(FRAME_END_BYTE)
    return out


def body_frames(
    channel: int, body: bytes | bytearray | memoryview, frame_max: int
) -> list[bytes | memoryview]:
    """Return the body frames for ``body``, split at ``frame_max - 8`` bytes.

    A body under :data:`JOIN_MAX` that fits in one frame comes back as one
    ``bytes`` buffer; any other as a list of headers and memoryview slices
    of the body (a ``bytes`` body is not copied). An empty body yields no frames at all.

    Raises:
        TypeError: body is not bytes, bytearray or memoryview.
        ValueError: bad channel, or frame_max neither 0 nor >= 4096.
    """
    _check_channel(channel)
    payload = _as_payload(body)
    chunk = _payload_limit(frame_max)
    n = len(payload)
    if not n:
        return []
    if n <= chunk and n < JOIN_MAX:
        return [
            b"".join((_BODY_HEAD.pack(FRAME_BODY, channel, n), payload, FRAME_END_BYTE))
        ]
    return _body_buffers(channel, payload, chunk, b"")


def heartbeat_frame() -> bytes:
    """Return a heartbeat frame (the constant :data:`HEARTBEAT_FRAME`)."""
    return HEARTBEAT_FRAME


def content_frames(
    channel: int,
    method: Method,
    properties: Properties | None,
    body: bytes | bytearray | memoryview,
    frame_max: int,
) -> list[bytes | memoryview]:
    """Return a content-carrying method with its header and body frames.

    When the body fits in one body frame and is under :data:`JOIN_MAX` (the
    usual small publish) the whole sequence is one joined ``bytes`` buffer;
    a larger body follows as memoryview slices, not copied. The header's class is the method's class
    (§4.2.6.1); ``properties=None`` sends no properties (all flags clear).

    Raises:
        TypeError: body is not bytes, bytearray or memoryview.
        ValueError: bad channel, or frame_max neither 0 nor >= 4096; or from
            the ``encode()`` of method or properties.
    """
    # The common case (an int channel, a bytes body, a negotiated frame_max)
    # is checked inline; the helpers only run for the rest, and raise.
    if channel.__class__ is not int or not 0 <= channel <= 0xFFFF:
        _check_channel(channel)
    payload = body if body.__class__ is bytes else _as_payload(body)
    if frame_max.__class__ is int and FRAME_MIN_SIZE <= frame_max <= 0xFFFFFFFF:
        chunk = frame_max - 8
    else:
        chunk = _payload_limit(frame_max)
    args = method.encode()
    props = b"\x00\x00" if properties is None else properties.encode()
    class_id = method.CLASS_ID
    n = len(payload)
    head = _METHOD_HEAD.pack(
        FRAME_METHOD, channel, len(args) + 4, class_id, method.METHOD_ID
    )
    header_head = _END_HEADER_HEAD.pack(
        FRAME_END, FRAME_HEADER, channel, len(props) + 12, class_id, 0, n
    )
    if n <= chunk and n < JOIN_MAX:
        if n:
            return [
                b"".join(
                    (
                        head,
                        args,
                        header_head,
                        props,
                        _END_BODY_HEAD.pack(FRAME_END, FRAME_BODY, channel, n),
                        payload,
                        FRAME_END_BYTE,
                    )
                )
            ]
        return [b"".join((head, args, header_head, props, FRAME_END_BYTE))]
    # A large body (JOIN_MAX or more) is not copied: the method and header
    # frames share the first buffer with the first body frame head (the
    # header's frame-end goes in front of that head), and the body follows
    # as views.
    prefix = b"".join((head, args, header_head, props, FRAME_END_BYTE))
    return _body_buffers(channel, payload, chunk, prefix)
