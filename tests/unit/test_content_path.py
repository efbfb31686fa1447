"""The content path: large bodies without copies, lazily decoded properties.

Outbound, a body of ``JOIN_MAX`` bytes or more reaches the front as buffers
of its own (views of the body), never joined with the frame heads, and the
bytes on the wire are those of the plain encoding. Inbound, the reader
joins a frame's reads once, large body payloads are views, and the core
joins a body's frames once into ``bytes`` of the declared size. A
delivery's properties are checked on arrival and decoded on first access.
Each test runs on the C codecs and on the pure-Python ones (where the
properties are decoded at once: see ``_spec_base.lazy_decoder``).
"""

from __future__ import annotations

import asyncio
import copy
import datetime
import decimal
import pickle
import struct
import threading
from collections.abc import Callable
from typing import Any

import pytest

from amqp_client import spec
from amqp_client.aio.connection import _write_buffers
from amqp_client.errors import FrameDecodeError, FrameSequenceError
from amqp_client.frames import (
    FRAME_OVERHEAD,
    JOIN_MAX,
    BodyFrame,
    ContentFrame,
    FrameReader,
    HeaderFrame,
    content_frames,
    header_frame,
    method_frame,
)
from amqp_client.protocol import events as ev
from tests.support.scripted_peer import (
    body,
    connect,
    deliver,
    header,
    method,
    open_channel,
    raw_frame,
    sent_methods,
)

pytestmark = pytest.mark.usefixtures("wire_codec")

PROPS = spec.BasicProperties(
    content_type="text/plain",
    delivery_mode=2,
    headers={"x-trace": "abc", "n": 1, "nested": {"a": [1, "b", None]}},
    correlation_id="c-1",
)
DELIVER = spec.BasicDeliver("ctag", 7, "ex", "rk")


def plain_encoding(
    channel: int, m: Any, props: spec.BasicProperties, payload: bytes, frame_max: int
) -> bytes:
    """The frames written out one by one, each its own bytes: what any
    arrangement of buffers must add up to on the wire."""
    chunk = frame_max - FRAME_OVERHEAD
    return b"".join(
        [
            method_frame(channel, m),
            header_frame(channel, len(payload), props),
            *(
                raw_frame(3, channel, payload[i : i + chunk])
                for i in range(0, len(payload), chunk)
            ),
        ]
    )


def is_lazy(props: object) -> bool:
    """The properties are still undecoded (their bytes kept)."""
    return getattr(props, "_amqp_raw", None) is not None


# -- outbound: large bodies are their own buffers ------------------------------------


@pytest.mark.parametrize(
    "size",
    [1, JOIN_MAX - 1, JOIN_MAX, JOIN_MAX + 1, 131072 - 8, 131072 - 7, 3 * 131072 + 5],
)
@pytest.mark.parametrize("frame_max", [131072, 1 << 20])
def test_publish_buffers_add_up_to_the_plain_encoding(
    size: int, frame_max: int
) -> None:
    payload = bytes(range(256)) * (size // 256) + bytes(size % 256)
    publish = spec.BasicPublish("ex", "rk")
    out = content_frames(1, publish, PROPS, payload, frame_max)
    fast = spec.BasicPublish.frames(1, frame_max, PROPS, payload, "ex", "rk")
    expected = plain_encoding(1, publish, PROPS, payload, frame_max)
    assert b"".join(out) == expected
    assert b"".join(fast) == expected
    for buffers in (out, fast):
        if size < JOIN_MAX:
            assert len(buffers) == 1 and isinstance(buffers[0], bytes)
        else:
            # The body is not copied: views of it, between small heads.
            views = [b for b in buffers if isinstance(b, memoryview)]
            assert views and all(v.obj is payload for v in views)
            assert sum(len(v) for v in views) == size
            assert all(len(b) < 512 for b in buffers if not isinstance(b, memoryview))


def test_small_publishes_stay_one_buffer_each() -> None:
    conn = connect()
    channel = open_channel(conn)
    for _ in range(100):
        conn.basic_publish(channel, b"x" * 100, PROPS, "", "q")
    out = conn.data_to_send()
    assert len(out) == 100 and all(isinstance(b, bytes) for b in out)


class _Recorder(asyncio.WriteTransport):
    """An asyncio transport that records what it is handed."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[tuple[str, list[bytes | bytearray | memoryview]]] = []

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.calls.append(("write", [data]))

    def wire(self) -> bytes:
        return b"".join(bytes(b) for _, bufs in self.calls for b in bufs)


class _JoiningRecorder(_Recorder):
    """writelines as asyncio's base class has it (CPython 3.11's selector
    transport): it joins the buffers and calls write()."""


class _OwnWritelines(_Recorder):
    """A transport with a writelines of its own (3.12+, uvloop)."""

    def writelines(self, list_of_data: Any) -> None:
        self.calls.append(("writelines", list(list_of_data)))


def test_asyncio_write_never_joins_a_large_body() -> None:
    payload = b"\x01" * (JOIN_MAX * 3)
    conn = connect(frame_max=1 << 20)
    channel = open_channel(conn)
    conn.basic_publish(channel, b"small", None, "", "q")
    conn.basic_publish(channel, payload, PROPS, "", "q")
    conn.basic_publish(channel, b"small", None, "", "q")
    data = conn.data_to_send()
    expected = b"".join(data)
    joining = _JoiningRecorder()
    _write_buffers(joining, data)  # type: ignore[arg-type]  # a recorder, not a socket transport
    assert joining.wire() == expected
    written = [b for _, bufs in joining.calls for b in bufs]
    # The body went through write() as the caller's view, not joined.
    assert any(isinstance(b, memoryview) and b.obj is payload for b in written)
    assert all(len(b) < JOIN_MAX for b in written if not isinstance(b, memoryview))
    assert joining.calls[-1][0] == "write"  # the high-water mark is checked
    own = _OwnWritelines()
    _write_buffers(own, data)  # type: ignore[arg-type]  # a recorder
    assert own.wire() == expected
    assert [name for name, _ in own.calls] == ["writelines", "write"]


def test_asyncio_write_small_buffers_as_before() -> None:
    data: list[bytes | memoryview] = [b"a" * 10, b"b" * 20, b"c" * 30]
    joining = _JoiningRecorder()
    _write_buffers(joining, data)  # type: ignore[arg-type]  # a recorder
    assert [(name, len(b"".join(bufs))) for name, bufs in joining.calls] == [
        ("write", 30),  # writelines(data[:-1]), joined by the base class
        ("write", 30),
    ]


# -- inbound: bodies assembled once -----------------------------------------------------


def test_reader_joins_a_large_frame_once_and_gives_a_view() -> None:
    payload = bytes(range(256)) * 1024  # 256 KiB: one body frame
    frame = raw_frame(3, 1, payload)
    reader = FrameReader(1 << 20)
    got = []
    for i in range(0, len(frame), 10000):
        got += reader.feed(frame[i : i + 10000])
        if i + 10000 < len(frame):
            assert reader.receive_buffer_size() == i + 10000
    (out,) = got
    assert isinstance(out, BodyFrame)
    assert isinstance(out.payload, memoryview) and out.payload == payload
    assert reader.receive_buffer_size() == 0 and reader.bytes_needed() == 0


def test_reader_copies_a_buffer_it_may_not_keep() -> None:
    payload = b"z" * (JOIN_MAX + 10)
    frame = bytearray(raw_frame(3, 1, payload))
    reader = FrameReader(1 << 20)
    assert reader.feed(memoryview(frame)[:100]) == []
    frame[:100] = bytes(100)  # the caller reuses its buffer
    (out,) = reader.feed(bytes(frame[100:]))
    assert isinstance(out, BodyFrame) and out.payload == payload


@pytest.mark.parametrize("frame_max", [4096, 131072])
@pytest.mark.parametrize("size", [JOIN_MAX - 1, JOIN_MAX, 300_000])
@pytest.mark.parametrize("chunk", [1000, 65536, 1 << 30])
def test_multi_frame_body_is_bytes_of_the_declared_size(
    frame_max: int, size: int, chunk: int
) -> None:
    conn = connect(frame_max=frame_max)
    channel = open_channel(conn)
    payload = bytes(range(251)) * (size // 251) + bytes(size % 251)
    data = deliver(channel, payload, properties=PROPS, frame_max=frame_max)
    for i in range(0, len(data), chunk):
        conn.receive_data(data[i : i + chunk], 0.0)
    (event,) = conn.events_received()
    assert isinstance(event, ev.DeliveryReceived)
    assert type(event.body) is bytes
    assert len(event.body) == size and event.body == payload
    assert event.properties == PROPS


def assert_closed_with(conn: Any, error_type: type[Exception], code: int) -> None:
    (*_, (channel, close)) = sent_methods(conn)
    assert channel == 0 and isinstance(close, spec.ConnectionClose)
    assert close.reply_code == code
    (*_, last) = conn.events_received()
    assert isinstance(last, ev.ConnectionTerminated)
    assert isinstance(last.error, error_type)


@pytest.mark.parametrize("large", [False, True])
def test_body_longer_than_declared_is_501(large: bool) -> None:
    conn = connect(frame_max=1 << 20)
    channel = open_channel(conn)
    part = b"x" * (JOIN_MAX if large else 10)
    conn.receive_data(
        method(channel, DELIVER)
        + header(channel, 2 * len(part) - 1, PROPS)
        + body(channel, part)
        + body(channel, part),
        0.0,
    )
    assert_closed_with(conn, FrameDecodeError, 501)


def test_body_shorter_than_declared_then_a_method_is_505() -> None:
    conn = connect(frame_max=1 << 20)
    channel = open_channel(conn)
    conn.receive_data(
        method(channel, DELIVER)
        + header(channel, 2 * JOIN_MAX, PROPS)
        + body(channel, b"x" * JOIN_MAX)
        + method(channel, DELIVER),
        0.0,
    )
    assert_closed_with(conn, FrameSequenceError, 505)


# -- lazy properties ------------------------------------------------------------------------


def received_properties(props: spec.BasicProperties) -> spec.BasicProperties:
    """The properties of a delivery of ``props``, as the reader makes them."""
    data = b"".join(content_frames(1, DELIVER, props, b"body", 131072))
    (frame,) = FrameReader(131072, coalesce=True).feed(data)
    assert isinstance(frame, ContentFrame)
    assert isinstance(frame.properties, spec.BasicProperties)
    return frame.properties


def test_properties_are_decoded_on_first_access(wire_codec: str) -> None:
    props = received_properties(PROPS)
    assert isinstance(props, spec.BasicProperties)
    # With the C speedups nothing is decoded yet; without, at once.
    assert is_lazy(props) is (wire_codec == "c")
    assert props.headers == PROPS.headers
    assert not is_lazy(props)
    assert props == PROPS
    assert PROPS == props  # noqa: SIM300  # the plain class's __eq__ first
    assert repr(props) == repr(PROPS)
    assert props.encode() == PROPS.encode()


def test_lazy_properties_copy_pickle_and_compare() -> None:
    def unpickled(p: spec.BasicProperties) -> spec.BasicProperties:
        return pickle.loads(pickle.dumps(p))  # type: ignore[no-any-return]  # pickle.loads returns Any

    makers: list[Callable[[spec.BasicProperties], spec.BasicProperties]] = [
        copy.copy,
        copy.deepcopy,
        unpickled,
    ]
    for make in makers:
        props = received_properties(PROPS)
        clone = make(props)
        assert type(clone) is spec.BasicProperties
        assert clone == PROPS
    assert received_properties(PROPS) == received_properties(PROPS)
    assert received_properties(PROPS) != received_properties(spec.BasicProperties())


def test_a_property_set_before_the_first_read_is_kept() -> None:
    props = received_properties(PROPS)
    props.headers = {"mine": True}
    assert props.content_type == "text/plain"
    assert props.headers == {"mine": True}
    with pytest.raises(AttributeError, match="no_such"):
        getattr(props, "no_such")  # noqa: B009  # not a property: still an error


def test_lazy_properties_read_from_many_threads() -> None:
    def read(
        p: spec.BasicProperties, barrier: threading.Barrier, seen: list[object]
    ) -> None:
        barrier.wait()
        seen.append((p.headers, p.correlation_id, p.delivery_mode))

    for _ in range(20):
        props = received_properties(PROPS)
        seen: list[object] = []
        barrier = threading.Barrier(4)
        threads = [
            threading.Thread(target=read, args=(props, barrier, seen)) for _ in range(4)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join(10)
        assert seen == [(PROPS.headers, "c-1", 2)] * 4


def header_with(raw_properties: bytes, body_size: int = 0) -> bytes:
    return raw_frame(2, 1, struct.pack(">HHQ", 60, 0, body_size) + raw_properties)


_TABLE_FLAG = b"\x20\x00"
MALFORMED = {
    "table overruns the header": _TABLE_FLAG + b"\x00\x00\x00\x09\x01aS\x00\x00",
    "unknown value tag": _TABLE_FLAG + b"\x00\x00\x00\x03\x01aZ",
    "value overruns its table": _TABLE_FLAG + b"\x00\x00\x00\x07\x01aS\x00\x00\x00\x09",
    "key not UTF-8": _TABLE_FLAG + b"\x00\x00\x00\x03\x01\xffV",
    "nested table overruns": _TABLE_FLAG + b"\x00\x00\x00\x08\x01aF\x00\x00\x00\x09",
    "unknown property flag": b"\x00\x02",
    "shortstr overruns": b"\x80\x00\x09text",
    "shortstr not UTF-8": b"\x80\x00\x02\xff\xfe",
    "bytes after the properties": b"\x00\x00\x00",
    "octet missing": b"\x10\x00",
}


@pytest.mark.parametrize("raw", list(MALFORMED.values()), ids=list(MALFORMED))
def test_malformed_properties_are_refused_on_arrival(raw: bytes) -> None:
    with pytest.raises(FrameDecodeError):
        FrameReader(131072).feed(header_with(raw))
    with pytest.raises(FrameDecodeError):  # joined with its deliver
        FrameReader(131072, coalesce=True).feed(
            method_frame(1, DELIVER) + header_with(raw, 1) + raw_frame(3, 1, b"x")
        )
    conn = connect()
    assert open_channel(conn) == 1
    conn.receive_data(method(1, DELIVER) + header_with(raw, 1) + body(1, b"x"), 0.0)
    assert_closed_with(conn, FrameDecodeError, 501)


UNUSUAL = {
    # What the C check is unsure of is decoded at once, and accepted.
    "non-ASCII key": spec.BasicProperties(headers={"clé": "v"}),
    "non-ASCII shortstr": spec.BasicProperties(content_type="text/é"),
    "decimal and timestamp values": spec.BasicProperties(
        headers={
            "d": decimal.Decimal("1.25"),
            "t": datetime.datetime(2020, 1, 2, tzinfo=datetime.UTC),
        }
    ),
    "timestamp property": spec.BasicProperties(
        timestamp=datetime.datetime(2023, 11, 14, tzinfo=datetime.UTC)
    ),
    "binary under S": None,
}


@pytest.mark.parametrize("name", list(UNUSUAL))
def test_unusual_but_valid_properties_are_accepted(name: str) -> None:
    props = UNUSUAL[name]
    if props is None:
        raw = _TABLE_FLAG + b"\x00\x00\x00\x09\x01aS\x00\x00\x00\x02\xff\xfe"
        (frame,) = FrameReader(131072).feed(header_with(raw))
        assert isinstance(frame, HeaderFrame)
        assert frame.properties == spec.BasicProperties(headers={"a": b"\xff\xfe"})
        return
    assert received_properties(props) == props


def test_the_generated_publish_fast_path_uses_the_runtimes_join_limit() -> None:
    from codegen.codec import JOIN_MAX as GENERATED_JOIN_MAX

    assert GENERATED_JOIN_MAX == JOIN_MAX
