"""A scripted AMQP 0-9-1 broker for unit tests of the sans-IO core.

For unit tests only: integration tests talk to a real RabbitMQ. This module
builds the bytes a broker would send with the generated codecs
(``amqp_client.frames`` writers over ``amqp_client.spec`` classes), decodes
what a :class:`~amqp_client.protocol.Connection` sent with the frame reader,
and drives a connection through the usual steps (handshake, channel open).

It never mocks the core: everything goes through ``receive_data`` as bytes.
A :class:`Feeder` decides how the bytes are chunked (whole, one byte at a
time, or with a partial frame trailing every chunk) so each scripted input
is checked in every chunking, as h11's tests do.

Usage::

    conn = connect(feed)                     # OPEN, events drained
    channel = open_channel(conn, feed)       # ChannelOpened, events drained
    feed(conn, deliver(channel, b"hi"))
    assert conn.events_received() == [...]
    assert sent_methods(conn) == [(channel, spec.BasicAck(1))]
"""

from __future__ import annotations

import struct
from collections.abc import Mapping
from typing import Any, cast

from amqp_client import auth, spec
from amqp_client._spec_base import REQUIRED, Method, Properties
from amqp_client.frames import (
    HEARTBEAT_FRAME,
    PROTOCOL_HEADER,
    Frame,
    FrameReader,
    MethodFrame,
    content_frames,
    header_frame,
    heartbeat_frame,
    method_frame,
)
from amqp_client.protocol import Connection, ConnectionState
from amqp_client.protocol import events as ev

__all__ = [
    "FEED_MODES",
    "SERVER_PROPERTIES",
    "Feeder",
    "body",
    "channel_open_ok",
    "connect",
    "content",
    "decode_client_bytes",
    "deliver",
    "handshake",
    "header",
    "heartbeat",
    "method",
    "open_channel",
    "raw_frame",
    "sent_bytes",
    "sent_frames",
    "sent_methods",
    "start",
    "tune",
    "valid_kwargs",
]

#: What a RabbitMQ 3.x node says about itself in connection.start (trimmed).
SERVER_PROPERTIES: dict[str, Any] = {
    "product": "RabbitMQ",
    "version": "3.12.1",
    "platform": "Erlang/OTP 25.3",
    "capabilities": {
        "publisher_confirms": True,
        "exchange_exchange_bindings": True,
        "basic.nack": True,
        "consumer_cancel_notify": True,
        "connection.blocked": True,
        "consumer_priorities": True,
        "authentication_failure_close": True,
        "per_consumer_qos": True,
        "direct_reply_to": True,
    },
    "cluster_name": "rabbit@scripted",
}

#: The chunkings every scripted input is fed in (see :class:`Feeder`).
FEED_MODES = ("whole", "bytewise", "trailing")


#: A valid value of each AMQP type, for fields without a default (0 for the
#: integer types not listed).
FILLERS: dict[str, Any] = {
    "shortstr": "x",
    "longstr": b"x",
    "bit": False,
    "table": {},
    "timestamp": 0,
}


def valid_kwargs(cls: type[Method]) -> dict[str, Any]:
    """Keyword arguments for a valid instance of ``cls``: each field's default,
    or a filler of its type when it has none."""
    return {
        f.name: FILLERS.get(f.type, 0) if f.default is REQUIRED else f.default
        for f in cls.FIELDS
    }


# -- broker -> client bytes -------------------------------------------------------


def method(channel: int, m: Method) -> bytes:
    """One method frame from the broker."""
    return method_frame(channel, m)


def start(
    mechanisms: bytes = b"PLAIN AMQPLAIN",
    *,
    locales: bytes = b"en_US",
    version: tuple[int, int] = (0, 9),
    server_properties: Mapping[str, Any] | None = None,
) -> bytes:
    """connection.start as RabbitMQ sends it."""
    props = dict(SERVER_PROPERTIES if server_properties is None else server_properties)
    return method_frame(
        0,
        spec.ConnectionStart(
            version[0], version[1], mechanisms, locales, server_properties=props
        ),
    )


def tune(channel_max: int = 2047, frame_max: int = 131072, heartbeat: int = 0) -> bytes:
    """connection.tune with the broker's limits (RabbitMQ's defaults,
    heartbeat off unless asked)."""
    return method_frame(0, spec.ConnectionTune(channel_max, frame_max, heartbeat))


def channel_open_ok(channel: int) -> bytes:
    return method_frame(channel, spec.ChannelOpenOk())


def content(
    channel: int,
    m: Method,
    payload: bytes,
    properties: Properties | None = None,
    *,
    frame_max: int = 131072,
) -> bytes:
    """A content-carrying method with its header and body frames, joined;
    the body is split into frames of at most ``frame_max - 8`` bytes."""
    if properties is None:
        properties = spec.BasicProperties()
    return b"".join(
        bytes(b) for b in content_frames(channel, m, properties, payload, frame_max)
    )


def deliver(
    channel: int,
    payload: bytes,
    *,
    delivery_tag: int = 1,
    consumer_tag: str = "ctag",
    exchange: str = "",
    routing_key: str = "q",
    properties: Properties | None = None,
    frame_max: int = 131072,
) -> bytes:
    """basic.deliver with its content."""
    return content(
        channel,
        spec.BasicDeliver(consumer_tag, delivery_tag, exchange, routing_key),
        payload,
        properties,
        frame_max=frame_max,
    )


def header(
    channel: int,
    body_size: int,
    properties: Properties | None = None,
    *,
    class_id: int | None = None,
) -> bytes:
    """A content header frame on its own."""
    return header_frame(
        channel,
        body_size,
        spec.BasicProperties() if properties is None else properties,
        class_id,
    )


def body(channel: int, payload: bytes) -> bytes:
    """One content body frame (of any size, even over frame_max)."""
    return raw_frame(3, channel, payload)


def heartbeat() -> bytes:
    return heartbeat_frame()


def raw_frame(ftype: int, channel: int, payload: bytes, *, end: int = 0xCE) -> bytes:
    """A frame built by hand: for garbage and wrong sizes."""
    return struct.pack(">BHI", ftype, channel, len(payload)) + payload + bytes([end])


# -- client -> broker bytes -------------------------------------------------------


def sent_bytes(conn: Connection) -> bytes:
    """Everything the connection queued for the wire, joined."""
    out = conn.data_to_send()
    assert isinstance(out, list)
    for buf in out:
        assert isinstance(buf, bytes | memoryview), type(buf)
    return b"".join(bytes(buf) for buf in out)


def decode_client_bytes(data: bytes) -> list[Frame | bytes]:
    """Frames in bytes the client sent; a leading protocol header comes back
    as the bytes ``PROTOCOL_HEADER``. Asserts that nothing is left over."""
    items: list[Frame | bytes] = []
    if data.startswith(PROTOCOL_HEADER):
        items.append(PROTOCOL_HEADER)
        data = data[len(PROTOCOL_HEADER) :]
    reader = FrameReader(0)
    items.extend(reader.feed(data))
    assert reader.receive_buffer_size() == 0, f"partial frame sent: {data!r}"
    return items


def sent_frames(conn: Connection) -> list[Frame | bytes]:
    """Decode what the connection queued (see :func:`decode_client_bytes`)."""
    return decode_client_bytes(sent_bytes(conn))


def sent_methods(conn: Connection) -> list[tuple[int, Method]]:
    """The method frames the connection queued, as (channel, method) pairs;
    the protocol header, content and heartbeat frames are left out."""
    return [
        (f.channel, cast(Method, f.method))
        for f in sent_frames(conn)
        if isinstance(f, MethodFrame)
    ]


# -- chunking ---------------------------------------------------------------------


class Feeder:
    """Feeds broker bytes to a connection in one of :data:`FEED_MODES`.

    * ``whole``: each input in one ``receive_data`` call;
    * ``bytewise``: one call per byte;
    * ``trailing``: each input followed by the first bytes of a heartbeat
      frame; the next input starts with the rest of it. A partial frame
      must never change what the connection does.
    """

    #: How much of a heartbeat frame trails each chunk in ``trailing`` mode.
    TAIL = 5

    def __init__(self, mode: str = "whole") -> None:
        if mode not in FEED_MODES:
            raise ValueError(f"unknown feed mode {mode!r}")
        self.mode = mode
        self._rest = b""

    def __repr__(self) -> str:
        return f"Feeder({self.mode!r})"

    def __call__(self, conn: Connection, data: bytes, now: float = 0.0) -> None:
        if self.mode == "whole":
            conn.receive_data(data, now)
        elif self.mode == "bytewise":
            for i in range(len(data)):
                conn.receive_data(data[i : i + 1], now)
        else:
            chunk = self._rest + data + HEARTBEAT_FRAME[: self.TAIL]
            self._rest = HEARTBEAT_FRAME[self.TAIL :]
            conn.receive_data(chunk, now)


_WHOLE = Feeder("whole")


# -- drivers ----------------------------------------------------------------------


def handshake(
    conn: Connection,
    feed: Feeder | None = None,
    *,
    now: float = 0.0,
    heartbeat: int = 0,
    frame_max: int = 131072,
    channel_max: int = 2047,
    mechanisms: bytes = b"PLAIN AMQPLAIN",
) -> list[Frame | bytes]:
    """Drive ``conn`` from INITIAL to OPEN with the broker's tune values;
    return every frame it sent (protocol header first). The
    ``ConnectionOpened`` event is left in ``events_received()``."""
    feed = feed or _WHOLE
    if conn.state is ConnectionState.INITIAL:
        conn.initiate(now)
    feed(conn, start(mechanisms), now)
    feed(conn, tune(channel_max, frame_max, heartbeat), now)
    feed(conn, method(0, spec.ConnectionOpenOk()), now)
    assert conn.state is ConnectionState.OPEN, conn.state
    return sent_frames(conn)


def connect(
    feed: Feeder | None = None,
    *,
    now: float = 0.0,
    heartbeat: int = 0,
    frame_max: int = 131072,
    channel_max: int = 2047,
    **kwargs: Any,
) -> Connection:
    """A new connection, OPEN, with its output and events drained.

    ``heartbeat``, ``frame_max`` and ``channel_max`` are the broker's tune
    values; ``kwargs`` go to :class:`Connection`.
    """
    kwargs.setdefault("mechanism", auth.Plain("guest", "guest"))
    conn = Connection(**kwargs)
    handshake(
        conn,
        feed,
        now=now,
        heartbeat=heartbeat,
        frame_max=frame_max,
        channel_max=channel_max,
    )
    events = conn.events_received()
    assert [type(e) for e in events] == [ev.ConnectionOpened], events
    return conn


def open_channel(conn: Connection, feed: Feeder | None = None, now: float = 0.0) -> int:
    """Open a channel through its handshake; output and events drained."""
    feed = feed or _WHOLE
    channel = conn.open_channel()
    assert sent_methods(conn) == [(channel, spec.ChannelOpen())]
    feed(conn, channel_open_ok(channel), now)
    assert conn.events_received() == [ev.ChannelOpened(channel)]
    return channel
