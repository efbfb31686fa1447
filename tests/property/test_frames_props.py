"""Property tests of amqp_client.frames: chunking never changes what the
reader sees, garbage only ever raises ProtocolError, writers round-trip.

Uses small fake method/property classes that follow the generated-class
contract, so these properties hold independently of the generator.
"""

from __future__ import annotations

import random
import struct
from typing import Any, ClassVar

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from amqp_client.errors import FrameDecodeError, ProtocolError
from amqp_client.frames import (
    FRAME_OVERHEAD,
    HEARTBEAT_FRAME,
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
    method_frame,
)

# -- fakes -------------------------------------------------------------------------


def _shortstr(value: str) -> bytes:
    raw = value.encode()
    return bytes([len(raw)]) + raw


def _read_shortstr(buf: bytes, offset: int, end: int) -> tuple[str, int]:
    if offset >= end or offset + 1 + buf[offset] > end:
        raise FrameDecodeError("shortstr: truncated")
    n = buf[offset]
    # .decode() may raise UnicodeDecodeError on purpose: the reader wraps it.
    return buf[offset + 1 : offset + 1 + n].decode(), offset + 1 + n


class _Fake:
    __slots__: ClassVar[tuple[str, ...]] = ()

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and all(
            getattr(self, k) == getattr(other, k) for k in self.__slots__
        )

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={getattr(self, k)!r}" for k in self.__slots__)
        return f"{type(self).__name__}({args})"


_U64_BIT = struct.Struct(">QB")


class Deliver(_Fake):
    __slots__ = ("tag", "delivery_tag", "redelivered", "routing_key")  # noqa: RUF023
    CLASS_ID = 60
    METHOD_ID = 60
    NAME = "basic.deliver"
    HAS_CONTENT = True

    def __init__(
        self, tag: str, delivery_tag: int, redelivered: bool, routing_key: str
    ) -> None:
        self.tag = tag
        self.delivery_tag = delivery_tag
        self.redelivered = redelivered
        self.routing_key = routing_key

    def encode(self) -> bytes:
        return (
            _shortstr(self.tag)
            + _U64_BIT.pack(self.delivery_tag, self.redelivered)
            + _shortstr(self.routing_key)
        )

    @classmethod
    def decode_from(cls, buf: bytes, offset: int, end: int) -> Deliver:
        tag, o = _read_shortstr(buf, offset, end)
        # No bounds check here on purpose: struct.error must be wrapped.
        dtag, bits = _U64_BIT.unpack_from(buf[:end], o)
        rkey, o = _read_shortstr(buf, o + 9, end)
        if o != end:
            raise FrameDecodeError("basic.deliver: bytes left over")
        return cls(tag, dtag, bool(bits & 1), rkey)


class Ack(_Fake):
    __slots__ = ("delivery_tag", "multiple")
    CLASS_ID = 60
    METHOD_ID = 80
    NAME = "basic.ack"

    def __init__(self, delivery_tag: int, multiple: bool) -> None:
        self.delivery_tag = delivery_tag
        self.multiple = multiple

    def encode(self) -> bytes:
        return _U64_BIT.pack(self.delivery_tag, self.multiple)

    @classmethod
    def decode_from(cls, buf: bytes, offset: int, end: int) -> Ack:
        if end - offset != 9:
            raise FrameDecodeError("basic.ack: bad length")
        dtag, bits = _U64_BIT.unpack_from(buf, offset)
        return cls(dtag, bool(bits & 1))


class Props(_Fake):
    __slots__ = ("content_type", "priority")
    CLASS_ID = 60

    def __init__(self, content_type: str | None = None, priority: int | None = None):
        self.content_type = content_type
        self.priority = priority

    def encode(self) -> bytes:
        flags = 0
        out = b""
        if self.content_type is not None:
            flags |= 0x8000
            out += _shortstr(self.content_type)
        if self.priority is not None:
            flags |= 0x0800
            out += bytes([self.priority])
        return struct.pack(">H", flags) + out

    @classmethod
    def decode_from(cls, buf: bytes, offset: int, end: int) -> Props:
        flags = (buf[offset] << 8) | buf[offset + 1]
        o = offset + 2
        props = cls()
        if flags & 0x8000:
            props.content_type, o = _read_shortstr(buf, o, end)
        if flags & 0x0800:
            props.priority = buf[o]  # may read past ``end``: caught below
            o += 1
        if o != end:
            raise FrameDecodeError("properties: length mismatch")
        return props


METHODS: dict[int, Any] = {(c.CLASS_ID << 16) | c.METHOD_ID: c for c in (Deliver, Ack)}
PROPERTIES: dict[int, Any] = {60: Props}


def new_reader(frame_max: int = 0, *, coalesce: bool = False) -> FrameReader:
    return FrameReader(
        frame_max, methods=METHODS, properties=PROPERTIES, coalesce=coalesce
    )


def expand(frames: list[Frame]) -> list[Frame]:
    """The frames a coalescing reader stood in for with each ContentFrame."""
    out: list[Frame] = []
    for frame in frames:
        if isinstance(frame, ContentFrame):
            out.append(MethodFrame(frame.channel, frame.method))
            out.append(
                HeaderFrame(
                    frame.channel,
                    frame.method.CLASS_ID,
                    len(frame.body),
                    frame.properties,
                )
            )
            if frame.body:
                out.append(BodyFrame(frame.channel, frame.body))
        else:
            out.append(frame)
    return out


# -- a seeded 1,000-frame stream ----------------------------------------------------


def random_text(rng: random.Random) -> str:
    return "".join(rng.choice("abcé.-_ü0") for _ in range(rng.randrange(12)))


def random_stream(rng: random.Random, count: int) -> tuple[bytes, list[Frame]]:
    parts: list[bytes | memoryview] = []
    expected: list[Frame] = []
    while len(expected) < count:
        channel = rng.randrange(65536)
        kind = rng.randrange(6)
        if kind == 0:
            m: Any = Deliver(
                random_text(rng),
                rng.randrange(2**64),
                rng.random() < 0.5,
                random_text(rng),
            )
            parts.append(method_frame(channel, m))
            expected.append(MethodFrame(channel, m))
        elif kind == 1:
            m = Ack(rng.randrange(2**64), rng.random() < 0.5)
            parts.append(method_frame(channel, m))
            expected.append(MethodFrame(channel, m))
        elif kind == 2:
            p = Props(
                random_text(rng) if rng.random() < 0.5 else None,
                rng.randrange(10) if rng.random() < 0.5 else None,
            )
            size = rng.randrange(2**64)
            parts.append(header_frame(channel, size, p))
            expected.append(HeaderFrame(channel, 60, size, p))
        elif kind == 3:
            payload = rng.randbytes(rng.choice((0, 1, 7, 100, 5000)))
            parts += body_frames(channel, payload, 0) or [
                struct.pack(">BHI", 3, channel, 0) + b"\xce"
            ]
            expected.append(BodyFrame(channel, payload))
        elif kind == 4:
            parts.append(HEARTBEAT_FRAME)
            expected.append(HeartbeatFrame())
        else:
            # A whole message, as a broker sends it: what a coalescing
            # reader joins when it arrives in one piece.
            m = Deliver(random_text(rng), rng.randrange(2**64), False, "")
            p = Props(random_text(rng), None)
            payload = rng.randbytes(rng.choice((0, 1, 100, 5000)))
            parts += content_frames(channel, m, p, payload, 4096)
            expected.append(MethodFrame(channel, m))
            expected.append(HeaderFrame(channel, 60, len(payload), p))
            expected += [
                BodyFrame(channel, payload[i : i + 4088])
                for i in range(0, len(payload), 4088)
            ]
    return b"".join(parts), expected


def chunked(data: bytes, rng: random.Random) -> list[bytes]:
    out = []
    pos = 0
    while pos < len(data):
        step = rng.choice((1, 2, 3, 7, 8, 13, 100, 1000, 10000))
        out.append(data[pos : pos + step])
        pos += step
    return out


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**32 - 1))
def test_1000_frames_any_chunking_matches_whole(seed: int) -> None:
    rng = random.Random(seed)
    data, expected = random_stream(rng, 1000)
    assert new_reader().feed(data) == expected
    reader = new_reader()
    got: list[Frame] = []
    for chunk in chunked(data, rng):
        got += reader.feed(chunk)
    assert got == expected
    assert reader.receive_buffer_size() == 0


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**32 - 1))
def test_coalescing_reader_stands_in_for_the_same_frames(seed: int) -> None:
    rng = random.Random(seed)
    data, expected = random_stream(rng, 1000)
    whole = new_reader(coalesce=True).feed(data)
    assert expand(whole) == expected
    # Whole messages in one buffer are joined: one ContentFrame each.
    assert any(isinstance(f, ContentFrame) for f in whole)
    reader = new_reader(coalesce=True)
    got: list[Frame] = []
    for chunk in chunked(data, rng):
        got += reader.feed(chunk)
    assert expand(got) == expected
    assert reader.receive_buffer_size() == 0


@settings(max_examples=200, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1), cuts=st.lists(st.integers(0, 10_000), max_size=8)
)
def test_small_stream_split_anywhere(seed: int, cuts: list[int]) -> None:
    data, expected = random_stream(random.Random(seed), 12)
    points = sorted({c % (len(data) + 1) for c in cuts})
    reader = new_reader()
    got: list[Frame] = []
    prev = 0
    for point in [*points, len(data)]:
        got += reader.feed(memoryview(data)[prev:point])
        prev = point
    assert got == expected


# -- garbage never escapes as another exception -------------------------------------


def feed_and_classify(reader: FrameReader, chunks: list[bytes]) -> None:
    try:
        for chunk in chunks:
            reader.feed(chunk)
    except ProtocolError as exc:
        assert isinstance(exc, FrameDecodeError)
        assert reader.error is exc
        # Poisoned: the same error again.
        try:
            reader.feed(b"\x08\x00\x00\x00\x00\x00\x00\xce")
        except ProtocolError as again:
            assert again is exc
        else:
            raise AssertionError("a failed reader accepted more input") from None


@settings(max_examples=500, deadline=None)
@given(
    data=st.binary(max_size=300),
    frame_max=st.sampled_from([0, 4096]),
    coalesce=st.booleans(),
)
def test_random_bytes_raise_only_protocol_errors(
    data: bytes, frame_max: int, coalesce: bool
) -> None:
    feed_and_classify(new_reader(frame_max, coalesce=coalesce), [data])


# Frames that look right from the outside (known type, right frame-end) with
# random payloads reach the decoders, which is where foreign errors come from.
plausible_frame = st.builds(
    lambda ftype, channel, payload, end: (
        struct.pack(">BHI", ftype, channel, len(payload)) + payload + bytes([end])
    ),
    st.sampled_from([1, 1, 1, 2, 2, 3, 8, 0, 9]),
    st.sampled_from([0, 1, 65535]),
    st.one_of(
        st.binary(max_size=40),
        st.tuples(st.integers(0, 12), st.binary(max_size=30)).map(
            lambda t: b"\x00\x3c\x00\x3c" + bytes([t[0]]) + t[1]
        ),
        st.binary(max_size=12).map(lambda b: b"\x00\x3c\x00\x50" + b),
        st.one_of(
            st.binary(max_size=8),
            st.tuples(st.integers(0, 8), st.binary(max_size=10)).map(
                lambda t: b"\x80\x00" + bytes([t[0]]) + t[1]
            ),
            st.binary(max_size=2).map(lambda b: b"\x08\x00" + b),
        ).map(lambda b: struct.pack(">HHQ", 60, 0, 1) + b),
    ),
    st.sampled_from([0xCE, 0xCE, 0xCE, 0x00]),
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 2**32 - 1),
    junk=st.lists(plausible_frame, min_size=1, max_size=6),
    tail=st.binary(max_size=50),
    split=st.integers(1, 64),
    coalesce=st.booleans(),
)
def test_garbage_after_valid_prefix(
    seed: int, junk: list[bytes], tail: bytes, split: int, coalesce: bool
) -> None:
    prefix, expected = random_stream(random.Random(seed), 5)
    reader = new_reader(4096 * 4, coalesce=coalesce)
    assert expand(reader.feed(prefix)) == expected
    data = b"".join(junk) + tail
    feed_and_classify(reader, [data[i : i + split] for i in range(0, len(data), split)])


# -- writer -> reader round trip --------------------------------------------------

texts = st.text(alphabet=st.characters(codec="utf-8"), max_size=20).filter(
    lambda s: len(s.encode()) <= 255
)
methods = st.one_of(
    st.builds(Deliver, texts, st.integers(0, 2**64 - 1), st.booleans(), texts),
    st.builds(Ack, st.integers(0, 2**64 - 1), st.booleans()),
)
properties = st.builds(Props, st.none() | texts, st.none() | st.integers(0, 255))
frame_maxes = st.sampled_from([0, 4096, 4097, 8192, 131072])


@settings(max_examples=150, deadline=None)
@given(
    channel=st.integers(0, 65535),
    method=methods,
    props=properties,
    body=st.one_of(
        st.binary(max_size=200),
        st.integers(0, 20_000).map(
            lambda n: bytes(range(256)) * (n // 256) + b"x" * (n % 256)
        ),
    ),
    frame_max=frame_maxes,
    body_kind=st.sampled_from([bytes, bytearray, memoryview]),
)
def test_content_round_trip(
    channel: int, method: Any, props: Props, body: bytes, frame_max: int, body_kind: Any
) -> None:
    buffers = content_frames(channel, method, props, body_kind(body), frame_max)
    if frame_max == 0 or len(body) <= frame_max - FRAME_OVERHEAD:
        assert len(buffers) == 1
        assert type(buffers[0]) is bytes
    reader = new_reader(frame_max)
    got: list[Frame] = []
    for buf in buffers:  # fed as produced: bytes and memoryviews
        got += reader.feed(buf)
    assert got[0] == MethodFrame(channel, method)
    assert got[1] == HeaderFrame(channel, method.CLASS_ID, len(body), props)
    bodies = got[2:]
    assert all(isinstance(f, BodyFrame) and f.channel == channel for f in bodies)
    payloads = [f.payload for f in bodies if isinstance(f, BodyFrame)]
    assert b"".join(payloads) == body
    assert all(payloads)  # no empty body frames
    if frame_max:
        assert all(len(p) + FRAME_OVERHEAD <= frame_max for p in payloads)
        # Every frame but the last is full.
        assert all(len(p) + FRAME_OVERHEAD == frame_max for p in payloads[:-1])


@settings(max_examples=100, deadline=None)
@given(
    channel=st.integers(0, 65535),
    method=methods,
    props=properties,
    size=st.integers(0, 2**64 - 1),
)
def test_single_frame_writers_round_trip(
    channel: int, method: Any, props: Props, size: int
) -> None:
    data = method_frame(channel, method) + header_frame(channel, size, props)
    assert new_reader().feed(data) == [
        MethodFrame(channel, method),
        HeaderFrame(channel, 60, size, props),
    ]
