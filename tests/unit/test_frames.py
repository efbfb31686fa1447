"""Unit tests of amqp_client.frames: exact writer bytes, every reader error,
and every input fed whole, one byte at a time, and with trailing data.

The method and property classes here are small fakes that follow the
contract of the generated ones (``decode_from(buf, offset, end)``,
``encode()``, ``CLASS_ID``/``METHOD_ID``/``NAME``); tests against the real
generated registries are at the end of the module.
"""

from __future__ import annotations

import array
import struct
from typing import Any, ClassVar

import pytest

from amqp_client import frames
from amqp_client.errors import FrameDecodeError, ProtocolError
from amqp_client.frames import (
    FRAME_END,
    FRAME_HEADER_SIZE,
    FRAME_MIN_SIZE,
    FRAME_OVERHEAD,
    HEARTBEAT_FRAME,
    JOIN_MAX,
    PROTOCOL_HEADER,
    BodyFrame,
    ContentFrame,
    Frame,
    FrameReader,
    HeaderFrame,
    HeartbeatFrame,
    MethodFrame,
    body_frames,
    content_frames,
    header_frame,
    heartbeat_frame,
    method_frame,
)

# Each test runs on the C decoders and on the pure-Python ones.
pytestmark = pytest.mark.usefixtures("wire_codec")

# -- fakes that follow the generated-class contract ------------------------------


def _shortstr(value: str) -> bytes:
    raw = value.encode()
    return bytes([len(raw)]) + raw


def _read_shortstr(buf: bytes, offset: int, end: int, name: str) -> tuple[str, int]:
    if offset >= end:
        raise FrameDecodeError(f"{name}: truncated")
    n = buf[offset]
    offset += 1
    if offset + n > end:
        raise FrameDecodeError(f"{name}: truncated")
    return buf[offset : offset + n].decode(), offset + n


class _Fake:
    __slots__: ClassVar[tuple[str, ...]] = ()
    CLASS_ID: ClassVar[int]
    METHOD_ID: ClassVar[int]
    NAME: ClassVar[str]
    HAS_CONTENT: ClassVar[bool] = False

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and all(
            getattr(self, k) == getattr(other, k) for k in self.__slots__
        )

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={getattr(self, k)!r}" for k in self.__slots__)
        return f"{type(self).__name__}({args})"


_DELIVER_FIXED = struct.Struct(">QB")


class Deliver(_Fake):
    """basic.deliver (60/60): shortstr, longlong, bit, shortstr, shortstr."""

    __slots__ = (  # noqa: RUF023 - wire order
        "consumer_tag",
        "delivery_tag",
        "redelivered",
        "exchange",
        "routing_key",
    )
    CLASS_ID = 60
    METHOD_ID = 60
    NAME = "basic.deliver"
    HAS_CONTENT = True

    def __init__(
        self,
        consumer_tag: str = "",
        delivery_tag: int = 0,
        redelivered: bool = False,
        exchange: str = "",
        routing_key: str = "",
    ) -> None:
        self.consumer_tag = consumer_tag
        self.delivery_tag = delivery_tag
        self.redelivered = redelivered
        self.exchange = exchange
        self.routing_key = routing_key

    def encode(self) -> bytes:
        return b"".join(
            (
                _shortstr(self.consumer_tag),
                _DELIVER_FIXED.pack(self.delivery_tag, self.redelivered),
                _shortstr(self.exchange),
                _shortstr(self.routing_key),
            )
        )

    @classmethod
    def decode_from(cls, buf: bytes, offset: int, end: int) -> Deliver:
        tag, o = _read_shortstr(buf, offset, end, cls.NAME)
        if o + 9 > end:
            raise FrameDecodeError("basic.deliver: truncated")
        dtag, bits = _DELIVER_FIXED.unpack_from(buf, o)
        exchange, o = _read_shortstr(buf, o + 9, end, cls.NAME)
        rkey, o = _read_shortstr(buf, o, end, cls.NAME)
        if o != end:
            raise FrameDecodeError(f"basic.deliver: {end - o} bytes left over")
        return cls(tag, dtag, bool(bits & 1), exchange, rkey)


_DECLARE_OK_FIXED = struct.Struct(">II")


class DeclareOk(_Fake):
    """queue.declare-ok (50/11): shortstr, long, long."""

    __slots__ = ("queue", "message_count", "consumer_count")  # noqa: RUF023
    CLASS_ID = 50
    METHOD_ID = 11
    NAME = "queue.declare-ok"

    def __init__(
        self, queue: str = "", message_count: int = 0, consumer_count: int = 0
    ):
        self.queue = queue
        self.message_count = message_count
        self.consumer_count = consumer_count

    def encode(self) -> bytes:
        return _shortstr(self.queue) + _DECLARE_OK_FIXED.pack(
            self.message_count, self.consumer_count
        )

    @classmethod
    def decode_from(cls, buf: bytes, offset: int, end: int) -> DeclareOk:
        queue, o = _read_shortstr(buf, offset, end, cls.NAME)
        if o + 8 != end:
            raise FrameDecodeError("queue.declare-ok: bad length")
        return cls(queue, *_DECLARE_OK_FIXED.unpack_from(buf, o))


class TxSelect(_Fake):
    """tx.select (90/10): no arguments."""

    CLASS_ID = 90
    METHOD_ID = 10
    NAME = "tx.select"

    def encode(self) -> bytes:
        return b""

    @classmethod
    def decode_from(cls, buf: bytes, offset: int, end: int) -> TxSelect:
        if offset != end:
            raise FrameDecodeError("tx.select: takes no arguments")
        return cls()


class Sloppy(_Fake):
    """A decoder with no bounds checks, the kind that leaks struct.error,
    IndexError or UnicodeDecodeError; the reader must wrap them."""

    CLASS_ID = 99
    METHOD_ID = 1
    NAME = "test.sloppy"

    def encode(self) -> bytes:
        return b""

    @classmethod
    def decode_from(cls, buf: bytes, offset: int, end: int) -> Sloppy:
        mode = buf[offset]
        if mode == 1:
            struct.unpack_from(">Q", buf, len(buf))  # struct.error
        if mode == 2:
            buf[offset + 1 : end].decode("utf-8")  # UnicodeDecodeError
        if mode == 3:
            raise KeyError("weird")
        if mode == 4:
            return buf[end + 100]  # type: ignore[return-value] # IndexError
        return cls()


class Props(_Fake):
    """basic properties with two of the flags: content-type, delivery-mode."""

    __slots__ = ("content_type", "delivery_mode")
    CLASS_ID = 60

    def __init__(
        self, content_type: str | None = None, delivery_mode: int | None = None
    ) -> None:
        self.content_type = content_type
        self.delivery_mode = delivery_mode

    def encode(self) -> bytes:
        flags = 0
        parts = []
        if self.content_type is not None:
            flags |= 0x8000
            parts.append(_shortstr(self.content_type))
        if self.delivery_mode is not None:
            flags |= 0x1000
            parts.append(bytes([self.delivery_mode]))
        return struct.pack(">H", flags) + b"".join(parts)

    @classmethod
    def decode_from(cls, buf: bytes, offset: int, end: int) -> Props:
        if offset + 2 > end:
            raise FrameDecodeError("properties: no flags")
        (flags,) = struct.unpack_from(">H", buf, offset)
        o = offset + 2
        props = cls()
        if flags & 0x8000:
            props.content_type, o = _read_shortstr(buf, o, end, "content-type")
        if flags & 0x1000:
            if o >= end:
                raise FrameDecodeError("properties: truncated delivery-mode")
            props.delivery_mode = buf[o]
            o += 1
        if o != end:
            raise FrameDecodeError(f"properties: {end - o} bytes left over")
        return props


METHODS: dict[int, Any] = {
    (c.CLASS_ID << 16) | c.METHOD_ID: c for c in (Deliver, DeclareOk, TxSelect, Sloppy)
}
PROPERTIES: dict[int, Any] = {60: Props}


def reader(frame_max: int = 131072, *, coalesce: bool = False) -> FrameReader:
    return FrameReader(
        frame_max, methods=METHODS, properties=PROPERTIES, coalesce=coalesce
    )


def raw_frame(ftype: int, channel: int, payload: bytes, end: int = FRAME_END) -> bytes:
    return struct.pack(">BHI", ftype, channel, len(payload)) + payload + bytes([end])


def feed_bytewise(r: FrameReader, data: bytes) -> list[Frame]:
    out: list[Frame] = []
    for i in range(len(data)):
        out += r.feed(data[i : i + 1])
    return out


DELIVER = Deliver("ctag", 7, True, "ex", "rk")
PROPS = Props("text/plain", 2)
# Hand-assembled wire bytes for the objects above.
DELIVER_ARGS = b"\x04ctag" + b"\x00" * 7 + b"\x07" + b"\x01" + b"\x02ex" + b"\x02rk"
DELIVER_FRAME = (
    b"\x01\x00\x05\x00\x00\x00\x18" + b"\x00\x3c\x00\x3c" + DELIVER_ARGS + b"\xce"
)
PROPS_BYTES = b"\x90\x00\x0atext/plain\x02"
HEADER_FRAME = (
    b"\x02\x00\x05\x00\x00\x00\x1a"
    + b"\x00\x3c\x00\x00"
    + b"\x00\x00\x00\x00\x00\x00\x00\x05"
    + PROPS_BYTES
    + b"\xce"
)
BODY_FRAME = b"\x03\x00\x05\x00\x00\x00\x05hello\xce"
MESSAGE = DELIVER_FRAME + HEADER_FRAME + BODY_FRAME
MESSAGE_FRAMES: list[Frame] = [
    MethodFrame(5, DELIVER),
    HeaderFrame(5, 60, 5, PROPS),
    BodyFrame(5, b"hello"),
]


# -- constants ---------------------------------------------------------------------


def test_constants() -> None:
    assert PROTOCOL_HEADER == b"AMQP\x00\x00\x09\x01"
    assert FRAME_END == 0xCE
    assert FRAME_HEADER_SIZE == 7
    assert FRAME_OVERHEAD == 8
    assert FRAME_MIN_SIZE == 4096
    assert (frames.FRAME_METHOD, frames.FRAME_HEADER) == (1, 2)
    assert (frames.FRAME_BODY, frames.FRAME_HEARTBEAT) == (3, 8)


def test_all_names_exist() -> None:
    for name in frames.__all__:
        assert hasattr(frames, name), name


# -- frame objects -----------------------------------------------------------------


def test_frame_equality() -> None:
    assert MethodFrame(1, DeclareOk("q")) == MethodFrame(1, DeclareOk("q"))
    assert MethodFrame(1, DeclareOk("q")) != MethodFrame(2, DeclareOk("q"))
    assert MethodFrame(1, DeclareOk("q")) != MethodFrame(1, DeclareOk("r"))
    assert HeaderFrame(1, 60, 3, Props()) == HeaderFrame(1, 60, 3, Props())
    assert HeaderFrame(1, 60, 3, Props()) != HeaderFrame(1, 60, 4, Props())
    assert BodyFrame(1, b"x") == BodyFrame(1, b"x")
    assert BodyFrame(1, b"x") != BodyFrame(1, b"y")
    assert BodyFrame(1, b"x") != HeartbeatFrame(1)
    assert HeartbeatFrame() == HeartbeatFrame(0)
    assert HeartbeatFrame() != BodyFrame(0, b"")
    assert HeartbeatFrame() != "heartbeat"


def test_frames_are_slotted() -> None:
    for frame in (
        MethodFrame(1, TxSelect()),
        HeaderFrame(1, 60, 0, Props()),
        BodyFrame(1, b""),
        HeartbeatFrame(),
    ):
        assert not hasattr(frame, "__dict__")


def test_frame_repr() -> None:
    assert (
        repr(MethodFrame(1, TxSelect())) == "MethodFrame(channel=1, method=TxSelect())"
    )
    assert repr(HeaderFrame(2, 60, 5, Props("a"))) == (
        "HeaderFrame(channel=2, class_id=60, body_size=5, "
        "properties=Props(content_type='a', delivery_mode=None))"
    )
    assert repr(BodyFrame(3, b"abc")) == "BodyFrame(channel=3, payload=b'abc')"
    long = repr(BodyFrame(3, b"x" * 1000))
    assert "(1000 bytes)" in long
    assert len(long) < 100
    assert repr(HeartbeatFrame()) == "HeartbeatFrame(channel=0)"


def test_frame_match() -> None:
    match MethodFrame(1, TxSelect()):
        case MethodFrame(channel, TxSelect()):
            assert channel == 1
        case _:
            pytest.fail("no match")


# -- writers: exact bytes -------------------------------------------------------


def test_method_frame_bytes() -> None:
    assert method_frame(5, DELIVER) == DELIVER_FRAME
    assert (
        method_frame(0, TxSelect())
        == b"\x01\x00\x00\x00\x00\x00\x04\x00\x5a\x00\x0a\xce"
    )
    assert method_frame(65535, DeclareOk("q", 1, 2)) == (
        b"\x01\xff\xff\x00\x00\x00\x0e\x00\x32\x00\x0b\x01q"
        b"\x00\x00\x00\x01\x00\x00\x00\x02\xce"
    )


def test_header_frame_bytes() -> None:
    assert header_frame(5, 5, PROPS) == HEADER_FRAME
    assert header_frame(1, 2**64 - 1, Props()) == (
        b"\x02\x00\x01\x00\x00\x00\x0e\x00\x3c\x00\x00" + b"\xff" * 8 + b"\x00\x00\xce"
    )


def test_header_frame_class_id_override() -> None:
    assert header_frame(1, 0, Props(), class_id=70) == (
        b"\x02\x00\x01\x00\x00\x00\x0e\x00\x46\x00\x00" + b"\x00" * 8 + b"\x00\x00\xce"
    )


def test_body_frames_bytes() -> None:
    assert body_frames(5, b"hello", 4096) == [BODY_FRAME]
    assert body_frames(5, b"", 4096) == []
    assert body_frames(5, b"hello", 0) == [BODY_FRAME]


def test_heartbeat_frame_bytes() -> None:
    assert heartbeat_frame() == HEARTBEAT_FRAME == b"\x08\x00\x00\x00\x00\x00\x00\xce"


def test_content_frames_small_is_one_buffer() -> None:
    out = content_frames(5, DELIVER, PROPS, b"hello", 131072)
    assert out == [MESSAGE]
    assert type(out[0]) is bytes


def test_content_frames_empty_body() -> None:
    out = content_frames(5, DELIVER, PROPS, b"", 131072)
    assert out == [DELIVER_FRAME + header_frame(5, 0, PROPS)]


def test_content_frames_without_properties() -> None:
    (out,) = content_frames(5, DELIVER, None, b"hello", 4096)
    assert out == DELIVER_FRAME + header_frame(5, 5, Props()) + BODY_FRAME


def test_content_frames_large_body_is_not_copied() -> None:
    body = bytes(range(256)) * 100  # 25,600 bytes
    out = content_frames(5, DELIVER, PROPS, body, 4096)
    joined = b"".join(out)
    expected = (
        DELIVER_FRAME
        + header_frame(5, len(body), PROPS)
        + b"".join(body_frames(5, body, 4096))
    )
    assert joined == expected
    views = [b for b in out if isinstance(b, memoryview)]
    assert len(views) == 7  # ceil(25600 / 4088)
    assert all(v.obj is body for v in views)
    assert b"".join(views) == body
    # 7 frames as [first-head, body, end+head, body, ..., end]
    assert len(out) == 2 * 7 + 1


def test_content_frames_round_trip_through_reader() -> None:
    body = bytes(range(256)) * 100
    r = reader(4096)
    got: list[Frame] = []
    for buf in content_frames(9, DELIVER, PROPS, body, 4096):
        got += r.feed(buf)
    assert got[0] == MethodFrame(9, DELIVER)
    assert got[1] == HeaderFrame(9, 60, len(body), PROPS)
    payloads = [f.payload for f in got[2:] if isinstance(f, BodyFrame)]
    assert len(payloads) == len(got) - 2
    assert b"".join(payloads) == body
    assert all(len(p) <= 4096 - FRAME_OVERHEAD for p in payloads)


# -- writers: body splitting at frame_max boundaries -----------------------------


@pytest.mark.parametrize("frame_max", [4096, 5000, 131072])
def test_body_exactly_frame_max(frame_max: int) -> None:
    body = b"a" * (frame_max - FRAME_OVERHEAD)
    frame = b"".join(body_frames(1, body, frame_max))
    assert len(frame) == frame_max
    assert frame == raw_frame(3, 1, body)
    out = content_frames(1, TxSelect(), Props(), body, frame_max)
    if len(body) < JOIN_MAX:
        (message,) = out
        assert isinstance(message, bytes)  # one joined buffer
    else:  # a large body is its own buffer, not copied
        message = b"".join(out)
        assert [len(b) for b in out][1:] == [len(body), 1]
        assert isinstance(out[1], memoryview) and out[1].obj is body
    assert message.endswith(frame)


@pytest.mark.parametrize("frame_max", [4096, 5000, 131072])
def test_body_one_byte_over_frame_max(frame_max: int) -> None:
    body = b"a" * (frame_max - FRAME_OVERHEAD) + b"b"
    out = body_frames(1, body, frame_max)
    assert b"".join(out) == raw_frame(3, 1, body[:-1]) + raw_frame(3, 1, b"b")
    out = content_frames(1, DELIVER, Props(), body, frame_max)
    assert b"".join(out) == (
        method_frame(1, DELIVER)
        + header_frame(1, len(body), Props())
        + raw_frame(3, 1, body[:-1])
        + raw_frame(3, 1, b"b")
    )


def test_body_frames_split_many() -> None:
    body = b"z" * (3 * 4088 + 10)
    out = body_frames(2, body, 4096)
    assert b"".join(out) == b"".join(
        [raw_frame(3, 2, b"z" * 4088)] * 3 + [raw_frame(3, 2, b"z" * 10)]
    )
    assert all(b.obj is body for b in out if isinstance(b, memoryview))


def test_body_frames_no_limit() -> None:
    body = b"q" * 300_000
    out = body_frames(1, body, 0)
    assert b"".join(out) == raw_frame(3, 1, body)


def test_bytearray_body_is_snapshotted() -> None:
    body = bytearray(b"m" * 5000)
    out = body_frames(1, body, 4096)
    body[:] = b"x" * 10  # resizing must not be blocked by exported views
    assert b"".join(out) == raw_frame(3, 1, b"m" * 4088) + raw_frame(3, 1, b"m" * 912)
    (small,) = content_frames(1, TxSelect(), None, bytearray(b"hi"), 4096)
    assert isinstance(small, bytes)
    assert small.endswith(raw_frame(3, 1, b"hi"))


def test_memoryview_bodies() -> None:
    data = b"v" * 5000
    out = body_frames(1, memoryview(data), 4096)
    assert b"".join(out) == raw_frame(3, 1, b"v" * 4088) + raw_frame(3, 1, b"v" * 912)
    assert all(b.obj is data for b in out if isinstance(b, memoryview))
    wide = array.array("H", [0x0102] * 3000)  # 6000 bytes, itemsize 2
    out = body_frames(1, memoryview(wide), 4096)
    assert b"".join(out) == b"".join(
        [raw_frame(3, 1, wide.tobytes()[:4088]), raw_frame(3, 1, wide.tobytes()[4088:])]
    )
    (msg,) = content_frames(1, TxSelect(), None, memoryview(wide)[:2], 4096)
    assert isinstance(msg, bytes)
    assert msg.endswith(raw_frame(3, 1, wide.tobytes()[:4]))


# -- writers: validation -----------------------------------------------------------


@pytest.mark.parametrize("channel", [-1, 65536, 2**40])
def test_bad_channel_value(channel: int) -> None:
    with pytest.raises(ValueError, match="channel"):
        method_frame(channel, TxSelect())
    with pytest.raises(ValueError, match="channel"):
        header_frame(channel, 0, Props())
    with pytest.raises(ValueError, match="channel"):
        body_frames(channel, b"x", 4096)
    with pytest.raises(ValueError, match="channel"):
        content_frames(channel, TxSelect(), None, b"x", 4096)


@pytest.mark.parametrize("channel", ["1", 1.0, None, True])
def test_bad_channel_type(channel: Any) -> None:
    with pytest.raises(TypeError, match="channel"):
        method_frame(channel, TxSelect())
    with pytest.raises(TypeError, match="channel"):
        content_frames(channel, TxSelect(), None, b"x", 4096)
    with pytest.raises(TypeError, match="channel"):
        body_frames(channel, b"x", 4096)


@pytest.mark.parametrize(
    ("body", "name"),
    [("text", "str"), (None, "NoneType"), ([1, 2], "list"), (7, "int")],
)
def test_bad_body_type(body: Any, name: str) -> None:
    with pytest.raises(TypeError, match=f"not {name}"):
        body_frames(1, body, 4096)
    with pytest.raises(TypeError, match=f"not {name}"):
        content_frames(1, TxSelect(), None, body, 4096)


class Exploding(TxSelect):
    def encode(self) -> bytes:
        raise AssertionError("encode must not run before validation")


@pytest.mark.parametrize("frame_max", [1, 4095, -1, 2**32])
def test_bad_frame_max(frame_max: int) -> None:
    with pytest.raises(ValueError, match="frame_max"):
        body_frames(1, b"x", frame_max)
    with pytest.raises(ValueError, match="frame_max"):
        content_frames(1, Exploding(), None, b"x", frame_max)
    with pytest.raises(ValueError, match="frame_max"):
        FrameReader(frame_max, methods=METHODS, properties=PROPERTIES)


def test_frame_max_type() -> None:
    with pytest.raises(TypeError, match="frame_max"):
        body_frames(1, b"x", "4096")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="frame_max"):
        content_frames(1, TxSelect(), None, b"x", 4096.0)  # type: ignore[arg-type]


def test_validation_before_encode() -> None:
    with pytest.raises(TypeError):
        content_frames(1, Exploding(), None, "str", 4096)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="channel"):
        content_frames(-1, Exploding(), None, b"", 4096)
    with pytest.raises(ValueError, match="channel"):
        method_frame(-1, Exploding())


@pytest.mark.parametrize("size", [-1, 2**64])
def test_bad_body_size(size: int) -> None:
    with pytest.raises(ValueError, match="body_size"):
        header_frame(1, size, Props())
    with pytest.raises(TypeError, match="body_size"):
        header_frame(1, "1", Props())  # type: ignore[arg-type]


# -- reader: chunking ------------------------------------------------------------------

STREAM = (
    method_frame(0, TxSelect())
    + HEARTBEAT_FRAME
    + MESSAGE
    + method_frame(3, DeclareOk("amq.gen-1", 10, 2))
    + raw_frame(3, 7, b"")
    + content_frames(2, Deliver("c", 1), Props(), b"", 4096)[0]
)
STREAM_FRAMES: list[Frame] = [
    MethodFrame(0, TxSelect()),
    HeartbeatFrame(0),
    *MESSAGE_FRAMES,
    MethodFrame(3, DeclareOk("amq.gen-1", 10, 2)),
    BodyFrame(7, b""),
    MethodFrame(2, Deliver("c", 1)),
    HeaderFrame(2, 60, 0, Props()),
]


def test_read_whole() -> None:
    r = reader()
    assert r.feed(STREAM) == STREAM_FRAMES
    assert r.receive_buffer_size() == 0
    assert r.bytes_needed() == 0


def test_read_one_byte_at_a_time() -> None:
    r = reader()
    assert feed_bytewise(r, STREAM) == STREAM_FRAMES
    assert r.receive_buffer_size() == 0


@pytest.mark.parametrize("kind", [bytearray, memoryview])
def test_read_other_buffer_types(kind: Any) -> None:
    r = reader()
    got = r.feed(kind(STREAM[:50])) + r.feed(kind(STREAM[50:]))
    assert got == STREAM_FRAMES
    for frame in got:
        if isinstance(frame, BodyFrame):
            assert type(frame.payload) is bytes


def test_feed_rejects_non_buffer() -> None:
    with pytest.raises(TypeError):
        reader().feed(5)  # type: ignore[arg-type]


def test_read_with_trailing_partial_data() -> None:
    for cut in range(1, len(BODY_FRAME)):
        r = reader()
        assert (
            r.feed(DELIVER_FRAME + HEADER_FRAME + BODY_FRAME[:cut])
            == MESSAGE_FRAMES[:2]
        )
        assert r.receive_buffer_size() == cut
        assert r.bytes_needed() >= 1
        assert r.feed(b"") == []
        assert r.feed(BODY_FRAME[cut:]) == MESSAGE_FRAMES[2:]
        assert r.receive_buffer_size() == 0
        assert r.bytes_needed() == 0


def test_read_every_split_point() -> None:
    for cut in range(len(STREAM) + 1):
        r = reader()
        assert r.feed(STREAM[:cut]) + r.feed(STREAM[cut:]) == STREAM_FRAMES


def test_bytes_needed_for_large_frame() -> None:
    body = b"b" * 100_000
    data = raw_frame(3, 1, body)
    r = reader()
    assert r.feed(data[:3]) == []
    assert r.bytes_needed() == FRAME_HEADER_SIZE - 3
    assert r.feed(data[3:1000]) == []
    assert r.bytes_needed() == len(data) - 1000
    got: list[Frame] = []
    for i in range(1000, len(data), 4096):
        got += r.feed(data[i : i + 4096])
    assert got == [BodyFrame(1, body)]


def test_empty_feed() -> None:
    r = reader()
    assert r.feed(b"") == []
    assert r.feed(bytearray()) == []


# -- reader: coalescing ------------------------------------------------------------------

MESSAGE_JOINED = ContentFrame(5, DELIVER, PROPS, b"hello")


def header_bytes(
    channel: int = 5, class_id: int = 60, body_size: int = 5, props: bytes = PROPS_BYTES
) -> bytes:
    return raw_frame(2, channel, struct.pack(">HHQ", class_id, 0, body_size) + props)


def test_coalescing_is_off_by_default() -> None:
    assert reader().feed(MESSAGE) == MESSAGE_FRAMES


def test_coalesced_message() -> None:
    r = reader(coalesce=True)
    assert r.feed(MESSAGE + MESSAGE) == [MESSAGE_JOINED, MESSAGE_JOINED]
    assert r.receive_buffer_size() == 0


def test_coalesced_empty_body() -> None:
    data = content_frames(2, Deliver("c", 1), Props(), b"", 4096)[0]
    assert isinstance(data, bytes)
    assert reader(coalesce=True).feed(data + HEARTBEAT_FRAME) == [
        ContentFrame(2, Deliver("c", 1), Props(), b""),
        HeartbeatFrame(0),
    ]


def test_content_frame_equality_and_repr() -> None:
    assert ContentFrame(5, DELIVER, PROPS, b"hello") == MESSAGE_JOINED
    assert ContentFrame(6, DELIVER, PROPS, b"hello") != MESSAGE_JOINED
    assert MethodFrame(5, DELIVER) != MESSAGE_JOINED
    assert repr(MESSAGE_JOINED).startswith("ContentFrame(channel=5, method=Deliver(")
    assert repr(MESSAGE_JOINED).endswith("body=<5 bytes>)")
    with pytest.raises(TypeError):
        hash(MESSAGE_JOINED)
    match MESSAGE_JOINED:
        case ContentFrame(channel, method, properties, body):
            assert (channel, method, properties, body) == (5, DELIVER, PROPS, b"hello")
        case _:
            pytest.fail("ContentFrame did not match positionally")


@pytest.mark.parametrize("cut", range(1, len(MESSAGE)))
def test_message_split_anywhere(cut: int) -> None:
    r = reader(coalesce=True)
    got = r.feed(MESSAGE[:cut]) + r.feed(MESSAGE[cut:])
    if cut < len(DELIVER_FRAME):
        # Nothing completed before the cut: the second feed has it all.
        assert got == [MESSAGE_JOINED]
    else:
        assert got == MESSAGE_FRAMES


@pytest.mark.parametrize(
    "data",
    [
        # the header on another channel (the core says 505 about it)
        DELIVER_FRAME + header_bytes(channel=6) + BODY_FRAME,
        # the body on another channel
        DELIVER_FRAME + HEADER_FRAME + raw_frame(3, 6, b"hello"),
        # the body in two frames
        DELIVER_FRAME + HEADER_FRAME + raw_frame(3, 5, b"hel") + raw_frame(3, 5, b"lo"),
        # a body frame bigger than the header said
        DELIVER_FRAME + header_bytes(body_size=4) + BODY_FRAME,
        # a heartbeat between the frames
        DELIVER_FRAME + HEARTBEAT_FRAME + HEADER_FRAME + BODY_FRAME,
    ],
    ids=[
        "header-channel",
        "body-channel",
        "two-bodies",
        "body-size",
        "heartbeat-between",
    ],
)
def test_unusual_sequences_come_back_frame_by_frame(data: bytes) -> None:
    assert reader(coalesce=True).feed(data) == reader().feed(data)


def test_header_of_another_class_is_not_coalesced() -> None:
    # (the core answers 505 to it)
    data = DELIVER_FRAME + header_bytes(class_id=50) + BODY_FRAME
    properties = {**PROPERTIES, 50: Props}
    r = FrameReader(methods=METHODS, properties=properties, coalesce=True)
    assert r.feed(data) == [
        MESSAGE_FRAMES[0],
        HeaderFrame(5, 50, 5, PROPS),
        MESSAGE_FRAMES[2],
    ]


def test_only_methods_with_content_are_coalesced() -> None:
    data = method_frame(5, DeclareOk("q", 1, 2)) + HEADER_FRAME + BODY_FRAME
    assert reader(coalesce=True).feed(data) == [
        MethodFrame(5, DeclareOk("q", 1, 2)),
        *MESSAGE_FRAMES[1:],
    ]


def test_no_coalescing_without_a_properties_decoder() -> None:
    r = FrameReader(methods=METHODS, properties={}, coalesce=True)
    assert r.feed(DELIVER_FRAME) == [MethodFrame(5, DELIVER)]


def test_coalescing_checks_frame_max() -> None:
    # The body frame is over frame_max: the reader must say so, not join it.
    body = b"x" * 5000
    data = (
        DELIVER_FRAME
        + header_bytes(body_size=len(body), props=b"\x00\x00")
        + raw_frame(3, 5, body)
    )
    err = read_error(data, frame_max=4096)
    assert "over frame_max 4096" in str(err)


def test_coalesced_properties_errors_read_as_usual() -> None:
    err = read_error(
        DELIVER_FRAME + header_bytes(props=b"\x80\x00\x09text") + BODY_FRAME
    )
    assert str(err) == "content-type: truncated"


def test_real_registries_coalesce_every_content_method() -> None:
    from amqp_client import spec

    props = spec.BasicProperties(content_type="text/plain", headers={"a": 1})
    messages = [
        spec.BasicDeliver("ctag", 1, "ex", "rk"),
        spec.BasicReturn(312, "NO_ROUTE", "ex", "rk"),
        spec.BasicGetOk(2, "ex", "rk", 0),
    ]
    data = b"".join(content_frames(1, m, props, b"body", 131072)[0] for m in messages)
    assert FrameReader(coalesce=True).feed(data) == [
        ContentFrame(1, m, props, b"body") for m in messages
    ]


# -- reader: errors ------------------------------------------------------------------


def read_error(data: bytes, frame_max: int = 131072) -> FrameDecodeError:
    """Feed ``data`` whole, byte by byte, and whole to a coalescing reader;
    all three must fail the same way."""
    with pytest.raises(FrameDecodeError) as whole:
        reader(frame_max).feed(data)
    r = reader(frame_max)
    with pytest.raises(FrameDecodeError) as bytewise:
        feed_bytewise(r, data)
    with pytest.raises(FrameDecodeError) as joined:
        reader(frame_max, coalesce=True).feed(data)
    assert str(whole.value) == str(bytewise.value) == str(joined.value)
    assert isinstance(whole.value, ProtocolError)
    assert isinstance(whole.value, ValueError)
    assert whole.value.reply_code == 501
    return whole.value


def test_bad_frame_end() -> None:
    err = read_error(raw_frame(1, 3, b"\x00\x5a\x00\x0a", end=0x00))
    assert str(err) == (
        "bad frame-end octet 0x00 (expected 0xce) after a type 1 frame of 4 bytes "
        "on channel 3"
    )


def test_bad_frame_end_after_good_frames() -> None:
    err = read_error(MESSAGE + raw_frame(3, 1, b"abc", end=0xCD))
    assert "bad frame-end octet 0xcd" in str(err)


def test_frame_exactly_frame_max_is_accepted() -> None:
    frame = raw_frame(3, 1, b"x" * (4096 - FRAME_OVERHEAD))
    assert reader(4096).feed(frame) == [BodyFrame(1, b"x" * 4088)]


def test_frame_over_frame_max() -> None:
    err = read_error(raw_frame(3, 1, b"x" * (4096 - FRAME_OVERHEAD + 1)), 4096)
    assert str(err) == "type 3 frame on channel 1 is 4097 bytes, over frame_max 4096"


def test_frame_over_frame_max_detected_from_the_header() -> None:
    r = reader(4096)
    with pytest.raises(FrameDecodeError, match="over frame_max"):
        r.feed(struct.pack(">BHI", 3, 1, 2**32 - 1))


def test_frame_max_zero_means_no_limit() -> None:
    body = b"y" * 200_000
    assert reader(0).feed(raw_frame(3, 1, body)) == [BodyFrame(1, body)]


def test_frame_max_setter() -> None:
    r = reader()
    assert r.frame_max == 131072
    big = raw_frame(3, 1, b"x" * 5000)
    assert r.feed(big) == [BodyFrame(1, b"x" * 5000)]
    r.frame_max = 4096
    assert r.frame_max == 4096
    with pytest.raises(ValueError, match="frame_max"):
        r.frame_max = 100
    with pytest.raises(TypeError, match="frame_max"):
        r.frame_max = "4096"  # type: ignore[assignment]
    assert r.frame_max == 4096
    with pytest.raises(FrameDecodeError, match="over frame_max 4096"):
        r.feed(big)


def test_frame_max_lowered_while_a_frame_is_buffered() -> None:
    r = reader()
    big = raw_frame(3, 1, b"x" * 5000)
    assert r.feed(big[:100]) == []
    r.frame_max = 4096
    with pytest.raises(FrameDecodeError, match="over frame_max"):
        r.feed(b"x")


@pytest.mark.parametrize("ftype", [0, 4, 7, 9, 0xCE, 255])
def test_unknown_frame_type(ftype: int) -> None:
    err = read_error(raw_frame(ftype, 2, b"abc"))
    assert str(err) == f"unknown frame type {ftype} on channel 2 (size 3)"


def test_unknown_frame_type_detected_from_the_header() -> None:
    with pytest.raises(FrameDecodeError, match="unknown frame type 4"):
        reader().feed(struct.pack(">BHI", 4, 0, 100))


def test_unknown_method() -> None:
    err = read_error(raw_frame(1, 4, b"\x00\x3c\x00\x63"))
    assert str(err) == "unknown method 60/99 on channel 4"


@pytest.mark.parametrize("payload", [b"", b"\x00", b"\x00\x3c\x00"])
def test_method_payload_too_short(payload: bytes) -> None:
    err = read_error(raw_frame(1, 1, payload))
    assert str(err) == (
        f"method frame payload of {len(payload)} bytes on channel 1 is too short "
        "for class-id and method-id (4 bytes)"
    )


def test_undecodable_method_raises_the_class_error() -> None:
    err = read_error(raw_frame(1, 1, b"\x00\x3c\x00\x3c" + DELIVER_ARGS + b"!"))
    assert str(err) == "basic.deliver: 1 bytes left over"
    err = read_error(raw_frame(1, 1, b"\x00\x3c\x00\x3c\x09ab"))
    assert str(err) == "basic.deliver: truncated"


@pytest.mark.parametrize(
    ("args", "exc_type"),
    [
        (b"\x01", struct.error),
        (b"\x02\xff\xfe", UnicodeDecodeError),
        (b"\x03", KeyError),
    ],
)
def test_foreign_decoder_errors_are_wrapped(args: bytes, exc_type: type) -> None:
    err = read_error(raw_frame(1, 6, b"\x00\x63\x00\x01" + args))
    assert str(err).startswith(
        f"cannot decode test.sloppy on channel 6: {exc_type.__name__}"
    )
    assert isinstance(err.__cause__, exc_type)


def test_index_error_is_wrapped() -> None:
    err = read_error(raw_frame(1, 6, b"\x00\x63\x00\x01\x04"))
    assert str(err) == (
        "cannot decode test.sloppy on channel 6: IndexError: index out of range"
    )
    assert isinstance(err.__cause__, IndexError)


def test_undecodable_properties() -> None:
    payload = struct.pack(">HHQ", 60, 0, 5) + b"\x80\x00\x09text"
    err = read_error(raw_frame(2, 1, payload))
    assert str(err) == "content-type: truncated"


def test_foreign_properties_errors_are_wrapped() -> None:
    class BadProps(Props):
        @classmethod
        def decode_from(cls, buf: bytes, offset: int, end: int) -> Props:
            return cls(buf[offset:end].decode("ascii"))

    r = FrameReader(methods=METHODS, properties={60: BadProps})
    payload = struct.pack(">HHQ", 60, 0, 5) + b"\x80\x00\xff"
    with pytest.raises(FrameDecodeError) as info:
        r.feed(raw_frame(2, 1, payload))
    assert str(info.value).startswith(
        "cannot decode the properties of class 60 on channel 1: UnicodeDecodeError"
    )
    assert isinstance(info.value.__cause__, UnicodeDecodeError)


@pytest.mark.parametrize("size", [0, 4, 12, 13])
def test_header_payload_too_short(size: int) -> None:
    payload = (struct.pack(">HHQ", 60, 0, 5) + b"\x00\x00")[:size]
    err = read_error(raw_frame(2, 1, payload))
    assert str(err) == (
        f"content header payload of {size} bytes on channel 1 is too short (at least 14)"
    )


def test_header_for_class_without_properties() -> None:
    payload = struct.pack(">HHQ", 50, 0, 5) + b"\x00\x00"
    err = read_error(raw_frame(2, 1, payload))
    assert str(err) == (
        "content header on channel 1 for class 50, which has no content properties"
    )


def test_heartbeat_on_nonzero_channel() -> None:
    err = read_error(raw_frame(8, 1, b""))
    assert str(err) == (
        "heartbeat frame on channel 1 with a 0-byte payload (must be channel 0, empty)"
    )


def test_heartbeat_with_payload() -> None:
    err = read_error(raw_frame(8, 0, b"\x00"))
    assert "with a 1-byte payload" in str(err)


@pytest.mark.parametrize(
    ("header", "version"),
    [
        (PROTOCOL_HEADER, "protocol id 0, version 0-9-1"),
        (b"AMQP\x01\x01\x00\x09", "protocol id 1, version 1-0-9"),
        (b"AMQP\x00\x01\x00\x00", "protocol id 0, version 1-0-0"),
    ],
)
def test_protocol_header_from_server(header: bytes, version: str) -> None:
    err = read_error(header)
    assert str(err) == (
        "the server rejected AMQP 0-9-1 and answered with the protocol header "
        f"{header!r}: it wants {version}"
    )


@pytest.mark.parametrize("frame_max", [0, 4096])
def test_protocol_header_partial_then_complete(frame_max: int) -> None:
    r = reader(frame_max)
    assert r.feed(PROTOCOL_HEADER[:7]) == []
    with pytest.raises(FrameDecodeError, match="version 0-9-1"):
        r.feed(PROTOCOL_HEADER[7:])


def test_protocol_header_after_frames() -> None:
    err = read_error(HEARTBEAT_FRAME + PROTOCOL_HEADER)
    assert "protocol id 0, version 0-9-1" in str(err)


def test_poisoned_reader() -> None:
    r = reader()
    assert r.error is None
    with pytest.raises(FrameDecodeError) as first:
        r.feed(HEARTBEAT_FRAME + raw_frame(9, 0, b""))
    assert r.error is first.value
    assert r.receive_buffer_size() == 0
    for data in (HEARTBEAT_FRAME, b"", STREAM):
        with pytest.raises(FrameDecodeError) as again:
            r.feed(data)
        assert again.value is first.value


def test_poisoned_after_partial_data() -> None:
    r = reader()
    assert r.feed(MESSAGE[:10]) == []
    with pytest.raises(FrameDecodeError, match="bad frame-end"):
        r.feed(MESSAGE[10 : len(DELIVER_FRAME) - 1] + b"\x00")
    with pytest.raises(FrameDecodeError, match="bad frame-end"):
        r.feed(MESSAGE)


# -- the real generated registries, and pamqp as an oracle ----------------------
# amqp_client.spec is imported inside the tests so that the fake-based tests
# above keep working while the generator is being changed.


def test_default_registries_are_the_generated_ones() -> None:
    from amqp_client.spec.methods import METHODS as real_methods
    from amqp_client.spec.properties import PROPERTIES as real_properties

    r = FrameReader()
    assert r._methods is real_methods
    assert r._properties is real_properties


def test_generated_registry_honours_the_contract() -> None:
    from amqp_client.spec.methods import METHODS as real_methods
    from amqp_client.spec.properties import PROPERTIES as real_properties

    assert len(real_methods) >= 60
    for key, cls in real_methods.items():
        assert key == (cls.CLASS_ID << 16) | cls.METHOD_ID, cls
        assert isinstance(cls.NAME, str)
        assert isinstance(cls.HAS_CONTENT, bool)
        assert callable(cls.decode_from)
    assert list(real_properties) == [60]
    assert real_properties[60].CLASS_ID == 60


def test_every_default_constructible_method_round_trips() -> None:
    from amqp_client.spec.methods import METHODS as real_methods

    r = FrameReader()
    count = 0
    for cls in real_methods.values():
        try:
            method = cls()
        except TypeError:
            continue  # has required arguments
        assert r.feed(method_frame(3, method)) == [MethodFrame(3, method)]
        count += 1
    assert count >= 30


def real_deliver() -> Any:
    from amqp_client.spec import BasicDeliver

    return BasicDeliver(
        consumer_tag="ctag-1",
        delivery_tag=2**62 + 5,
        redelivered=True,
        exchange="amq.topic",
        routing_key="a.b.ü",
    )


def pamqp_properties_kwargs() -> dict[str, Any]:
    import datetime

    return {
        "content_type": "application/json",
        "content_encoding": "gzip",
        "headers": {"x-key": "value"},
        "delivery_mode": 2,
        "priority": 9,
        "correlation_id": "corr",
        "reply_to": "amq.rabbitmq.reply-to",
        "expiration": "60000",
        "message_id": "m-1",
        "timestamp": datetime.datetime(2024, 5, 6, 7, 8, 9, tzinfo=datetime.UTC),
        "user_id": "guest",
        "app_id": "tests",
    }


def test_real_message_round_trip() -> None:
    from amqp_client.spec import BasicProperties

    deliver = real_deliver()
    props = BasicProperties(**pamqp_properties_kwargs(), type="t")
    body = bytes(range(256)) * 40  # 10,240 bytes: three body frames at 4096
    data = b"".join(content_frames(7, deliver, props, body, 4096))
    expected: list[Frame] = [
        MethodFrame(7, deliver),
        HeaderFrame(7, 60, len(body), props),
        BodyFrame(7, body[:4088]),
        BodyFrame(7, body[4088:8176]),
        BodyFrame(7, body[8176:]),
    ]
    assert FrameReader(4096).feed(data) == expected
    assert feed_bytewise(FrameReader(4096), data) == expected


def test_real_queue_declare_ok() -> None:
    from amqp_client.spec import QueueDeclareOk

    ok = QueueDeclareOk(queue="amq.gen-JzTY20BRgKO-HjmUJj0wLg", message_count=3)
    frame = method_frame(1, ok)
    assert frame == (
        b"\x01\x00\x01\x00\x00\x00\x2b\x00\x32\x00\x0b\x1eamq.gen-JzTY20BRgKO-HjmUJj0wLg"
        b"\x00\x00\x00\x03\x00\x00\x00\x00\xce"
    )
    assert FrameReader().feed(frame) == [MethodFrame(1, ok)]


def test_real_undecodable_method_is_a_frame_decode_error() -> None:
    # basic.deliver whose consumer-tag length runs past the payload.
    err = read_error_real(raw_frame(1, 1, b"\x00\x3c\x00\x3c\x50abc"))
    assert "basic.deliver" in str(err)
    # queue.declare-ok with a byte left over.
    err = read_error_real(raw_frame(1, 1, b"\x00\x32\x00\x0b\x00" + b"\x00" * 9))
    assert "queue.declare-ok" in str(err)


def read_error_real(data: bytes) -> FrameDecodeError:
    with pytest.raises(FrameDecodeError) as info:
        FrameReader().feed(data)
    return info.value


def test_writers_match_pamqp_marshal() -> None:
    from amqp_client.spec import BasicProperties, BasicPublish, QueueDeclareOk
    from pamqp import body as pbody
    from pamqp import commands
    from pamqp import frame as pframe
    from pamqp import header as pheader
    from pamqp import heartbeat as pheartbeat

    deliver = real_deliver()
    assert method_frame(5, deliver) == pframe.marshal(
        commands.Basic.Deliver("ctag-1", 2**62 + 5, True, "amq.topic", "a.b.ü"), 5
    )
    assert method_frame(
        1, QueueDeclareOk(queue="q", message_count=4, consumer_count=1)
    ) == (pframe.marshal(commands.Queue.DeclareOk("q", 4, 1), 1))
    kwargs = pamqp_properties_kwargs()
    props = BasicProperties(**kwargs)
    pprops = commands.Basic.Properties(**kwargs)
    assert header_frame(9, 12345, props) == pframe.marshal(
        pheader.ContentHeader(0, 12345, pprops), 9
    )
    assert header_frame(9, 0, BasicProperties()) == pframe.marshal(
        pheader.ContentHeader(0, 0, commands.Basic.Properties()), 9
    )
    assert body_frames(2, b"payload", 4096) == [
        pframe.marshal(pbody.ContentBody(b"payload"), 2)
    ]
    assert heartbeat_frame() == pframe.marshal(pheartbeat.Heartbeat(), 0)

    body = b"\x01" * 10_000
    publish = BasicPublish(exchange="ex", routing_key="rk", mandatory=True)
    expected = b"".join(
        [
            pframe.marshal(commands.Basic.Publish(0, "ex", "rk", True), 3),
            pframe.marshal(pheader.ContentHeader(0, len(body), pprops), 3),
            pframe.marshal(pbody.ContentBody(body[:4088]), 3),
            pframe.marshal(pbody.ContentBody(body[4088:8176]), 3),
            pframe.marshal(pbody.ContentBody(body[8176:]), 3),
        ]
    )
    assert b"".join(content_frames(3, publish, props, body, 4096)) == expected
    (small,) = content_frames(3, publish, props, body[:100], 4096)
    assert small == b"".join(
        [
            pframe.marshal(commands.Basic.Publish(0, "ex", "rk", True), 3),
            pframe.marshal(pheader.ContentHeader(0, 100, pprops), 3),
            pframe.marshal(pbody.ContentBody(body[:100]), 3),
        ]
    )


def test_reader_decodes_pamqp_output() -> None:
    from amqp_client.spec import BasicProperties
    from pamqp import body as pbody
    from pamqp import commands
    from pamqp import frame as pframe
    from pamqp import header as pheader

    kwargs = pamqp_properties_kwargs()
    # Header values pamqp encodes with other (smaller) types than we would.
    kwargs["headers"] = {"n": 1, "big": 2**40, "t": True, "s": "x", "l": ["y", 2]}
    data = b"".join(
        [
            pframe.marshal(
                commands.Basic.Deliver("ctag-1", 2**62 + 5, True, "amq.topic", "a.b.ü"),
                5,
            ),
            pframe.marshal(
                pheader.ContentHeader(0, 3, commands.Basic.Properties(**kwargs)), 5
            ),
            pframe.marshal(pbody.ContentBody(b"abc"), 5),
        ]
    )
    assert FrameReader().feed(data) == [
        MethodFrame(5, real_deliver()),
        HeaderFrame(5, 60, 3, BasicProperties(**kwargs)),
        BodyFrame(5, b"abc"),
    ]


def test_readers_share_the_generated_decoder_tables() -> None:
    # Every connection has a reader: the tables derived from the generated
    # registries (~90 bound decoders) are built once, not per connection
    # (bench/scale.py: a third of an asyncio connection's Python heap).
    a, b = frames.FrameReader(), frames.FrameReader(4096)
    assert a._method_decoders is b._method_decoders  # white box: shared, not equal
    assert a._properties_decoders is b._properties_decoders
    c, d = frames.FrameReader(coalesce=True), frames.FrameReader(coalesce=True)
    assert c._content_keys is d._content_keys and c._content_keys
    assert not a._content_keys  # no coalescing: no method takes its content along
