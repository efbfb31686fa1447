"""Unit tests of the sans-IO core (amqp_client.protocol): scripted bytes in,
bytes and events out.

Every broker input comes from the generated codecs through
``tests.support.scripted_peer``; what the client sent is decoded with the
frame reader. Tests that take the ``feed`` fixture run three times: each
scripted input fed whole, one byte at a time, and with a partial frame
trailing it. No broker, no sockets, no clock but the ``now`` we pass.
"""

from __future__ import annotations

import struct
from typing import Any

import pytest

import amqp_client
from amqp_client import auth, spec
from amqp_client._spec_base import Method
from amqp_client.errors import (
    AMQPError,
    AuthenticationError,
    ChannelClosed,
    ConnectionClosed,
    ConnectionLost,
    FrameDecodeError,
    FrameSequenceError,
    HeartbeatTimeout,
    ProtocolError,
    UsageError,
)
from amqp_client.frames import (
    HEARTBEAT_FRAME,
    PROTOCOL_HEADER,
    BodyFrame,
    HeaderFrame,
    MethodFrame,
)
from amqp_client.protocol import (
    ChannelState,
    Connection,
    ConnectionState,
    negotiate,
)
from amqp_client.protocol import events as ev
from amqp_client.protocol.core import CLIENT_FRAME_MAX
from tests.support.scripted_peer import (
    FEED_MODES,
    SERVER_PROPERTIES,
    Feeder,
    body,
    channel_open_ok,
    connect,
    content,
    decode_client_bytes,
    deliver,
    handshake,
    header,
    heartbeat,
    method,
    open_channel,
    raw_frame,
    sent_bytes,
    sent_frames,
    sent_methods,
    start,
    tune,
)

CAPABILITIES = (
    "publisher_confirms",
    "exchange_exchange_bindings",
    "basic.nack",
    "consumer_cancel_notify",
    "connection.blocked",
    "authentication_failure_close",
    "per_consumer_qos",
    "direct_reply_to",
)


@pytest.fixture(params=FEED_MODES)
def feed(request: pytest.FixtureRequest) -> Feeder:
    """How scripted bytes reach the connection: whole, bytewise, trailing."""
    return Feeder(request.param)


def new(**kwargs: Any) -> Connection:
    kwargs.setdefault("mechanism", auth.Plain("guest", "guest"))
    return Connection(**kwargs)


def state(conn: Connection) -> ConnectionState:
    """The connection's state (through a call, so mypy does not narrow it
    between commands)."""
    return conn.state


def terminal_events(conn: Connection) -> list[ev.Event]:
    """Assert the connection ended with one ConnectionTerminated as its last
    event, and return the events it emitted (that one included)."""
    events = conn.events_received()
    assert events, "no events"
    last = events[-1]
    assert isinstance(last, ev.ConnectionTerminated), events
    assert not any(isinstance(e, ev.ConnectionTerminated) for e in events[:-1])
    assert conn.state is ConnectionState.CLOSED
    assert conn.is_closed and not conn.is_open
    assert conn.error is last.error
    return events


def terminal_error(conn: Connection) -> AMQPError | None:
    """As :func:`terminal_events`, returning the terminal event's error."""
    last = terminal_events(conn)[-1]
    assert isinstance(last, ev.ConnectionTerminated)
    return last.error


def assert_failed(
    conn: Connection, error_type: type[ProtocolError], code: int
) -> list[ev.Event]:
    """The peer broke the protocol: close with ``code`` is the last thing
    queued, and the terminal event carries an ``error_type``. Returns the
    events emitted."""
    methods = sent_methods(conn)
    assert methods, "no connection.close queued"
    channel, close = methods[-1]
    assert channel == 0
    assert isinstance(close, spec.ConnectionClose)
    assert close.reply_code == code
    events = terminal_events(conn)
    error = conn.error
    assert isinstance(error, error_type), error
    assert error.reply_code == code
    assert close.reply_text == str(error)[:255]
    assert_dead(conn)
    return events


def assert_dead(conn: Connection) -> None:
    """After termination more input changes nothing."""
    conn.receive_data(heartbeat(), 1e6)
    conn.receive_data(method(0, spec.ConnectionClose(320, "late")), 1e6)
    conn.receive_eof()
    conn.connection_lost("late")
    conn.handle_timers(1e9)
    assert conn.data_to_send() == []
    assert conn.events_received() == []
    assert conn.next_deadline() is None
    assert conn.state is ConnectionState.CLOSED


def confirming(conn: Connection, channel: int, feed: Feeder | None = None) -> None:
    """Put ``channel`` in confirm mode (select and select-ok), drained."""
    conn.call(channel, spec.ConfirmSelect())
    assert sent_methods(conn) == [(channel, spec.ConfirmSelect())]
    (feed or Feeder())(conn, method(channel, spec.ConfirmSelectOk()))
    assert conn.events_received() == [ev.ReplyReceived(channel, spec.ConfirmSelectOk())]


def publish(conn: Connection, channel: int, payload: bytes = b"x") -> int | None:
    return conn.publish(
        channel, spec.BasicPublish("", "q"), spec.BasicProperties(), payload
    )


# -- the handshake (AMQP 0-9-1 §4.2.3, §2.2.4) ---------------------------------------


def test_initiate_queues_the_protocol_header_first() -> None:
    conn = new()
    assert conn.state is ConnectionState.INITIAL
    assert conn.data_to_send() == []
    assert conn.next_deadline() is None
    conn.initiate(0.0)
    assert [bytes(b) for b in conn.data_to_send()] == [PROTOCOL_HEADER]
    assert state(conn) is ConnectionState.AWAIT_START
    assert conn.events_received() == []
    with pytest.raises(UsageError):
        conn.initiate(0.0)
    assert conn.data_to_send() == []


def test_handshake_step_by_step(feed: Feeder) -> None:
    conn = new(vhost="prod", connection_name="orders-service", heartbeat=30)
    conn.initiate(0.0)
    assert sent_frames(conn) == [PROTOCOL_HEADER]

    feed(conn, start())
    assert conn.events_received() == []
    assert conn.state is ConnectionState.AWAIT_TUNE
    assert conn.server_properties == SERVER_PROPERTIES
    [(channel, start_ok)] = sent_methods(conn)
    assert channel == 0
    assert isinstance(start_ok, spec.ConnectionStartOk)
    assert start_ok.mechanism == "PLAIN"
    assert start_ok.response == b"\x00guest\x00guest"
    assert start_ok.locale == "en_US"
    props = start_ok.client_properties
    assert props["product"] == "amqp-client"
    assert props["version"] == amqp_client.__version__
    assert str(props["platform"]).startswith("Python 3.")
    assert props["capabilities"] == dict.fromkeys(CAPABILITIES, True)
    assert props["connection_name"] == "orders-service"

    feed(conn, tune(channel_max=2047, frame_max=131072, heartbeat=60))
    assert conn.events_received() == []
    assert state(conn) is ConnectionState.AWAIT_OPEN_OK
    assert sent_methods(conn) == [
        (0, spec.ConnectionTuneOk(2047, 131072, 30)),
        (0, spec.ConnectionOpen("prod")),
    ]

    feed(conn, method(0, spec.ConnectionOpenOk()))
    assert conn.events_received() == [
        ev.ConnectionOpened(SERVER_PROPERTIES, 2047, 131072, 30)
    ]
    assert state(conn) is ConnectionState.OPEN and conn.is_open
    assert (conn.channel_max, conn.frame_max, conn.heartbeat) == (2047, 131072, 30)
    assert conn.data_to_send() == []
    assert conn.error is None


def test_handshake_in_one_chunk() -> None:
    conn = new()
    conn.initiate(0.0)
    conn.receive_data(start() + tune() + method(0, spec.ConnectionOpenOk()), 0.0)
    assert [type(e) for e in conn.events_received()] == [ev.ConnectionOpened]
    frames = sent_frames(conn)
    assert frames[0] == PROTOCOL_HEADER
    assert [type(f.method) for f in frames[1:] if isinstance(f, MethodFrame)] == [
        spec.ConnectionStartOk,
        spec.ConnectionTuneOk,
        spec.ConnectionOpen,
    ]


def test_frame_for_a_channel_never_opened_right_after_open_ok() -> None:
    conn = new()
    conn.initiate(0.0)
    conn.receive_data(
        start() + tune() + method(0, spec.ConnectionOpenOk()) + channel_open_ok(1),
        0.0,
    )
    assert_failed(conn, FrameSequenceError, 505)


def test_no_connection_name_property_unless_given() -> None:
    conn = new()
    frames = handshake(conn)
    start_ok = next(
        f.method
        for f in frames
        if isinstance(f, MethodFrame) and isinstance(f.method, spec.ConnectionStartOk)
    )
    assert "connection_name" not in start_ok.client_properties


def test_client_properties_merge_over_the_defaults() -> None:
    conn = new(
        locale="de_DE",
        client_properties={
            "product": "my-app",
            "team": "payments",
            "capabilities": {"consumer_priorities": True},
        },
    )
    conn.initiate(0.0)
    conn.data_to_send()
    conn.receive_data(start(), 0.0)
    [(_, start_ok)] = sent_methods(conn)
    assert isinstance(start_ok, spec.ConnectionStartOk)
    assert start_ok.locale == "de_DE"
    props = start_ok.client_properties
    assert props["product"] == "my-app"
    assert props["team"] == "payments"
    assert props["version"] == amqp_client.__version__
    assert props["capabilities"] == {
        **dict.fromkeys(CAPABILITIES, True),
        "consumer_priorities": True,
    }


@pytest.mark.parametrize(
    "mechanism",
    [
        auth.Plain("guest", "guest"),
        auth.AMQPlain("guest", "guest"),
        auth.External(),
    ],
    ids=lambda m: m.name,
)
def test_chosen_mechanism_and_its_response(mechanism: auth.Mechanism) -> None:
    conn = new(mechanism=mechanism)
    conn.initiate(0.0)
    conn.data_to_send()
    conn.receive_data(start(b"AMQPLAIN PLAIN EXTERNAL"), 0.0)
    [(_, start_ok)] = sent_methods(conn)
    assert isinstance(start_ok, spec.ConnectionStartOk)
    assert start_ok.mechanism == mechanism.name
    assert start_ok.response == mechanism.response()


def test_mechanism_not_offered_is_an_authentication_error(feed: Feeder) -> None:
    conn = new(mechanism=auth.Plain("guest", "guest"))
    conn.initiate(0.0)
    conn.data_to_send()
    feed(conn, start(b"AMQPLAIN EXTERNAL"))
    error = terminal_error(conn)
    assert isinstance(error, AuthenticationError)
    assert isinstance(error, ConnectionClosed)
    assert "PLAIN" in str(error) and "AMQPLAIN" in str(error)
    assert sent_methods(conn) == []
    assert_dead(conn)


def test_secure_challenge_with_plain_is_a_protocol_error(feed: Feeder) -> None:
    # PLAIN finishes with its initial response: a challenge breaks the
    # grammar of the handshake (505).
    conn = new()
    conn.initiate(0.0)
    conn.data_to_send()
    feed(conn, start())
    sent_methods(conn)
    feed(conn, method(0, spec.ConnectionSecure(b"challenge")))
    assert_failed(conn, FrameSequenceError, 505)


class _ChallengeResponse:
    """A SASL mechanism with one challenge round (a user plug-in)."""

    name = "X-TEST"

    def response(self) -> bytes:
        return b"hello"

    def challenge(self, data: bytes) -> bytes:
        return b"answer to " + data


def test_secure_challenge_answered_by_the_mechanism(feed: Feeder) -> None:
    conn = new(mechanism=_ChallengeResponse())
    conn.initiate(0.0)
    conn.data_to_send()
    feed(conn, start(b"PLAIN X-TEST"))
    [(_, start_ok)] = sent_methods(conn)
    assert isinstance(start_ok, spec.ConnectionStartOk)
    assert (start_ok.mechanism, start_ok.response) == ("X-TEST", b"hello")
    feed(conn, method(0, spec.ConnectionSecure(b"nonce-1")))
    assert sent_methods(conn) == [(0, spec.ConnectionSecureOk(b"answer to nonce-1"))]
    feed(conn, method(0, spec.ConnectionSecure(b"nonce-2")))
    assert sent_methods(conn) == [(0, spec.ConnectionSecureOk(b"answer to nonce-2"))]
    assert conn.state is ConnectionState.AWAIT_TUNE
    feed(conn, tune())
    feed(conn, method(0, spec.ConnectionOpenOk()))
    assert [type(e) for e in conn.events_received()] == [ev.ConnectionOpened]


def _to_stage(conn: Connection, stage: ConnectionState, feed: Feeder) -> None:
    conn.initiate(0.0)
    if stage is not ConnectionState.AWAIT_START:
        feed(conn, start())
    if stage is ConnectionState.AWAIT_OPEN_OK:
        feed(conn, tune())
    assert conn.state is stage
    conn.data_to_send()


HANDSHAKE_STAGES = [
    ConnectionState.AWAIT_START,
    ConnectionState.AWAIT_TUNE,
    ConnectionState.AWAIT_OPEN_OK,
]


@pytest.mark.parametrize("stage", HANDSHAKE_STAGES, ids=lambda s: s.value)
def test_close_403_during_the_handshake_is_an_authentication_error(
    stage: ConnectionState, feed: Feeder
) -> None:
    conn = new()
    _to_stage(conn, stage, feed)
    text = "ACCESS_REFUSED - Login was refused using authentication mechanism PLAIN"
    feed(conn, method(0, spec.ConnectionClose(403, text, 0, 0)))
    assert sent_methods(conn) == [(0, spec.ConnectionCloseOk())]
    error = terminal_error(conn)
    assert isinstance(error, AuthenticationError)
    assert (error.reply_code, error.reply_text) == (403, text)
    assert_dead(conn)


def test_close_530_on_open_is_not_allowed(feed: Feeder) -> None:
    conn = new(vhost="nope")
    _to_stage(conn, ConnectionState.AWAIT_OPEN_OK, feed)
    text = "NOT_ALLOWED - vhost nope not found"
    feed(conn, method(0, spec.ConnectionClose(530, text, 10, 40)))
    assert sent_methods(conn) == [(0, spec.ConnectionCloseOk())]
    error = terminal_error(conn)
    assert isinstance(error, spec.NotAllowedError)
    assert isinstance(error, ConnectionClosed)
    assert not isinstance(error, AuthenticationError)
    assert (error.reply_code, error.class_id, error.method_id) == (530, 10, 40)


def test_close_403_after_open_is_not_an_authentication_error() -> None:
    conn = connect()
    conn.receive_data(method(0, spec.ConnectionClose(403, "ACCESS_REFUSED")), 0.0)
    assert sent_methods(conn) == [(0, spec.ConnectionCloseOk())]
    error = terminal_error(conn)
    assert isinstance(error, ConnectionClosed)
    assert not isinstance(error, AuthenticationError)
    assert error.reply_code == 403


def test_broker_speaking_another_version(feed: Feeder) -> None:
    conn = new()
    conn.initiate(0.0)
    conn.data_to_send()
    feed(conn, start(version=(0, 8)))
    assert_failed(conn, FrameSequenceError, 505)


def test_broker_answering_with_its_protocol_header(feed: Feeder) -> None:
    # §4.2.2: a broker that refuses our version sends its own header.
    conn = new()
    conn.initiate(0.0)
    conn.data_to_send()
    feed(conn, b"AMQP\x00\x00\x08\x00")
    assert_failed(conn, FrameDecodeError, 501)


@pytest.mark.parametrize(
    ("stage", "data"),
    [
        (ConnectionState.AWAIT_START, tune()),
        (ConnectionState.AWAIT_START, method(0, spec.ConnectionOpenOk())),
        (ConnectionState.AWAIT_TUNE, start()),
        (ConnectionState.AWAIT_TUNE, method(0, spec.ConnectionOpenOk())),
        (ConnectionState.AWAIT_OPEN_OK, tune()),
        (ConnectionState.AWAIT_OPEN_OK, method(0, spec.ConnectionBlocked("x"))),
        (ConnectionState.AWAIT_OPEN_OK, channel_open_ok(1)),
        (ConnectionState.AWAIT_OPEN_OK, method(0, spec.ChannelOpenOk())),
    ],
    ids=lambda v: v.value if isinstance(v, ConnectionState) else None,
)
def test_handshake_out_of_order_is_505(
    stage: ConnectionState, data: bytes, feed: Feeder
) -> None:
    conn = new()
    _to_stage(conn, stage, feed)
    feed(conn, data)
    assert_failed(conn, FrameSequenceError, 505)


def test_heartbeats_during_the_handshake_are_ignored(feed: Feeder) -> None:
    conn = new()
    conn.initiate(0.0)
    feed(conn, heartbeat())
    feed(conn, start())
    feed(conn, heartbeat())
    feed(conn, tune())
    feed(conn, heartbeat())
    feed(conn, method(0, spec.ConnectionOpenOk()))
    assert [type(e) for e in conn.events_received()] == [ev.ConnectionOpened]


@pytest.mark.parametrize(
    "kwargs",
    [
        {"frame_max": 4095},
        {"frame_max": 2**32},
        {"channel_max": -1},
        {"channel_max": 65536},
        {"heartbeat": -1},
        {"heartbeat": 65536},
        {"vhost": "v" * 256},
    ],
)
def test_bad_arguments_raise_before_any_byte(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        new(**kwargs)


# -- tune negotiation ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("client", "server", "heartbeat", "expected"),
    [
        (0, 0, False, 0),
        (0, 2047, False, 2047),
        (2047, 0, False, 2047),
        (100, 2047, False, 100),
        (2047, 100, False, 100),
        (0, 0, True, 0),
        (0, 60, True, 60),
        (60, 0, True, 60),
        (10, 60, True, 10),
        (60, 10, True, 10),
    ],
)
def test_negotiate(client: int, server: int, heartbeat: bool, expected: int) -> None:
    assert negotiate(client, server, heartbeat=heartbeat) == expected


@pytest.mark.parametrize(
    ("wanted", "offered", "tune_ok", "attributes"),
    [
        # channel_max: the smaller non-zero value; 0 on both sides = all ids.
        # frame_max 0 on both sides ("no limit"): the client's own maximum
        # (CLIENT_FRAME_MAX, 1 MiB) in tune-ok, never an unbounded reader.
        ({}, (2047, 131072, 60), (2047, 131072, 60), (2047, 131072, 60)),
        (
            {"channel_max": 100},
            (2047, 0, 0),
            (100, CLIENT_FRAME_MAX, 0),
            (100, CLIENT_FRAME_MAX, 0),
        ),
        (
            {"channel_max": 4000},
            (2047, 0, 0),
            (2047, CLIENT_FRAME_MAX, 0),
            (2047, CLIENT_FRAME_MAX, 0),
        ),
        (
            {"channel_max": 100},
            (0, 0, 0),
            (100, CLIENT_FRAME_MAX, 0),
            (100, CLIENT_FRAME_MAX, 0),
        ),
        ({}, (0, 0, 0), (65535, CLIENT_FRAME_MAX, 0), (65535, CLIENT_FRAME_MAX, 0)),
        # frame_max: the smaller non-zero value, never below frame-min-size.
        ({"frame_max": 4096}, (0, 131072, 0), (65535, 4096, 0), (65535, 4096, 0)),
        (
            {"frame_max": 1_000_000},
            (0, 131072, 0),
            (65535, 131072, 0),
            (65535, 131072, 0),
        ),
        ({"frame_max": 8192}, (0, 0, 0), (65535, 8192, 0), (65535, 8192, 0)),
        ({}, (0, 1000, 0), (65535, 4096, 0), (65535, 4096, 0)),
        # heartbeat: if either side is 0 the larger, else the smaller.
        (
            {"heartbeat": None},
            (0, 0, 60),
            (65535, CLIENT_FRAME_MAX, 60),
            (65535, CLIENT_FRAME_MAX, 60),
        ),
        (
            {"heartbeat": 0},
            (0, 0, 60),
            (65535, CLIENT_FRAME_MAX, 60),
            (65535, CLIENT_FRAME_MAX, 60),
        ),
        (
            {"heartbeat": 10},
            (0, 0, 60),
            (65535, CLIENT_FRAME_MAX, 10),
            (65535, CLIENT_FRAME_MAX, 10),
        ),
        (
            {"heartbeat": 120},
            (0, 0, 60),
            (65535, CLIENT_FRAME_MAX, 60),
            (65535, CLIENT_FRAME_MAX, 60),
        ),
        (
            {"heartbeat": 30},
            (0, 0, 0),
            (65535, CLIENT_FRAME_MAX, 30),
            (65535, CLIENT_FRAME_MAX, 30),
        ),
    ],
)
def test_tune_negotiation(
    wanted: dict[str, Any],
    offered: tuple[int, int, int],
    tune_ok: tuple[int, int, int],
    attributes: tuple[int, int, int],
) -> None:
    conn = new(**wanted)
    conn.initiate(0.0)
    conn.receive_data(start(), 0.0)
    conn.data_to_send()
    conn.receive_data(tune(*offered), 0.0)
    assert sent_methods(conn) == [
        (0, spec.ConnectionTuneOk(*tune_ok)),
        (0, spec.ConnectionOpen("/")),
    ]
    conn.receive_data(method(0, spec.ConnectionOpenOk()), 0.0)
    [opened] = conn.events_received()
    assert isinstance(opened, ev.ConnectionOpened)
    assert (opened.channel_max, opened.frame_max, opened.heartbeat) == attributes
    assert (conn.channel_max, conn.frame_max, conn.heartbeat) == attributes


def test_frames_over_the_negotiated_frame_max_are_501(feed: Feeder) -> None:
    conn = connect(feed, frame_max=4096)
    channel = open_channel(conn, feed)
    feed(conn, method(channel, spec.BasicDeliver("ctag", 1)) + header(channel, 5000))
    feed(conn, body(channel, b"x" * 4088))  # exactly frame_max: fine
    assert conn.events_received() == []
    feed(conn, body(channel, b"x" * 4089))
    assert_failed(conn, FrameDecodeError, 501)


# -- channel ids ---------------------------------------------------------------------


def test_channel_ids_lowest_free_first_and_reused(feed: Feeder) -> None:
    conn = connect(feed)
    assert [open_channel(conn, feed) for _ in range(4)] == [1, 2, 3, 4]
    conn.close_channel(2)
    sent_methods(conn)
    feed(conn, method(2, spec.ChannelCloseOk()))
    feed(conn, method(4, spec.ChannelClose(404, "NOT_FOUND")))
    conn.close_channel(1)
    feed(conn, method(1, spec.ChannelCloseOk()))
    assert [
        (e.channel, e.error is None)
        for e in conn.events_received()
        if isinstance(e, ev.ChannelTerminated)
    ] == [(2, True), (4, False), (1, True)]
    sent_methods(conn)
    assert [open_channel(conn, feed) for _ in range(4)] == [1, 2, 4, 5]


def test_channel_ids_exhausted_at_channel_max(feed: Feeder) -> None:
    conn = connect(feed, channel_max=3)
    assert conn.channel_max == 3
    assert [open_channel(conn, feed) for _ in range(3)] == [1, 2, 3]
    with pytest.raises(UsageError):
        conn.open_channel()
    assert conn.data_to_send() == []
    conn.close_channel(2)
    feed(conn, method(2, spec.ChannelCloseOk()))
    conn.events_received()
    sent_methods(conn)
    assert open_channel(conn, feed) == 2
    with pytest.raises(UsageError):
        conn.open_channel()


def test_channel_open_before_open_ok_arrives() -> None:
    conn = connect()
    channel = conn.open_channel()
    assert not conn.channel_is_open(channel)
    with pytest.raises(UsageError):
        conn.call(channel, spec.QueueDeclare("q"))
    with pytest.raises(UsageError):
        publish(conn, channel)
    assert sent_methods(conn) == [(channel, spec.ChannelOpen())]
    conn.receive_data(channel_open_ok(channel), 0.0)
    assert conn.events_received() == [ev.ChannelOpened(channel)]
    assert conn.channel_is_open(channel)


@pytest.mark.parametrize(
    "frames",
    [
        pytest.param(lambda c: method(c, spec.QueueDeclareOk("q", 0, 0)), id="reply"),
        pytest.param(lambda c: deliver(c, b"x"), id="deliver"),
        pytest.param(
            lambda c: content(c, spec.BasicReturn(312, "NO_ROUTE", "", "q"), b"x"),
            id="return",
        ),
        pytest.param(lambda c: method(c, spec.BasicAck(1)), id="ack"),
        pytest.param(lambda c: method(c, spec.BasicCancel("ctag")), id="cancel"),
        pytest.param(lambda c: method(c, spec.ChannelFlow(active=False)), id="flow"),
        pytest.param(lambda c: method(c, spec.ChannelCloseOk()), id="close-ok"),
    ],
)
def test_method_before_channel_open_ok_is_505(frames: Any, feed: Feeder) -> None:
    # Nothing but open-ok (or a refusal) can be meant for a channel that is
    # still opening: it has no consumer, publish or request yet.
    conn = connect(feed)
    channel = conn.open_channel()
    conn.data_to_send()
    feed(conn, frames(channel))
    events = assert_failed(conn, FrameSequenceError, 505)
    assert [type(e) for e in events] == [ev.ConnectionTerminated]


def test_channel_close_before_open_ok_refuses_the_open(feed: Feeder) -> None:
    conn = connect(feed)
    channel = conn.open_channel()
    conn.data_to_send()
    feed(conn, method(channel, spec.ChannelClose(504, "CHANNEL_ERROR", 20, 10)))
    assert sent_methods(conn) == [(channel, spec.ChannelCloseOk())]
    [event] = conn.events_received()
    assert isinstance(event, ev.ChannelTerminated)
    assert isinstance(event.error, ChannelClosed | ConnectionClosed)
    assert event.error.reply_code == 504
    assert conn.state is ConnectionState.OPEN


@pytest.mark.parametrize("state", [ConnectionState.INITIAL, ConnectionState.AWAIT_TUNE])
def test_commands_before_open_raise(state: ConnectionState) -> None:
    conn = new()
    if state is ConnectionState.AWAIT_TUNE:
        _to_stage(conn, state, Feeder())
    with pytest.raises(UsageError):
        conn.open_channel()
    with pytest.raises(UsageError):
        conn.call(0, spec.ConnectionUpdateSecret(b"s", "r"))
    with pytest.raises(UsageError):
        conn.close_channel(1)
    assert conn.data_to_send() == []


# -- RPC queueing ----------------------------------------------------------------------


def test_one_request_at_a_time_per_channel_in_order(feed: Feeder) -> None:
    conn = connect(feed)
    channel = open_channel(conn, feed)
    other = open_channel(conn, feed)

    conn.call(channel, spec.QueueDeclare("a"))
    conn.call(channel, spec.QueueDeclare("b"))
    conn.send(channel, spec.BasicAck(7))
    tag = publish(conn, channel, b"after b")
    conn.call(channel, spec.BasicQos(prefetch_count=10))
    conn.call(other, spec.ExchangeDeclare("x", "fanout"))  # not held up
    assert tag is None
    assert sent_methods(conn) == [
        (channel, spec.QueueDeclare("a")),
        (other, spec.ExchangeDeclare("x", "fanout")),
    ]

    feed(conn, method(other, spec.ExchangeDeclareOk()))
    feed(conn, method(channel, spec.QueueDeclareOk("a", 0, 0)))
    assert conn.events_received() == [
        ev.ReplyReceived(other, spec.ExchangeDeclareOk()),
        ev.ReplyReceived(channel, spec.QueueDeclareOk("a", 0, 0)),
    ]
    assert sent_methods(conn) == [(channel, spec.QueueDeclare("b"))]

    feed(conn, method(channel, spec.QueueDeclareOk("b", 1, 0)))
    assert conn.events_received() == [
        ev.ReplyReceived(channel, spec.QueueDeclareOk("b", 1, 0))
    ]
    # The ack and the publish waited behind declare b, in order, then qos.
    frames = sent_frames(conn)
    assert [type(f) for f in frames] == [
        MethodFrame,
        MethodFrame,
        HeaderFrame,
        BodyFrame,
        MethodFrame,
    ]
    assert frames[0] == MethodFrame(channel, spec.BasicAck(7))
    assert frames[1] == MethodFrame(channel, spec.BasicPublish("", "q"))
    assert frames[3] == BodyFrame(channel, b"after b")
    assert frames[4] == MethodFrame(channel, spec.BasicQos(prefetch_count=10))

    feed(conn, method(channel, spec.BasicQosOk()))
    assert conn.events_received() == [ev.ReplyReceived(channel, spec.BasicQosOk())]
    assert conn.data_to_send() == []


def test_send_and_publish_do_not_wait_for_the_request_on_the_wire() -> None:
    # Only what was queued behind a request waits; the request itself is
    # already on the wire, so later asynchronous methods go out at once.
    conn = connect()
    channel = open_channel(conn)
    conn.call(channel, spec.QueueDeclare("a"))
    conn.send(channel, spec.BasicAck(1))
    publish(conn, channel)
    assert [type(f) for f in sent_frames(conn)] == [
        MethodFrame,
        MethodFrame,
        MethodFrame,
        HeaderFrame,
        BodyFrame,
    ]


def test_replies_with_alternatives() -> None:
    conn = connect()
    channel = open_channel(conn)
    conn.call(channel, spec.BasicGet("q"))
    conn.call(channel, spec.BasicGet("q"))
    assert sent_methods(conn) == [(channel, spec.BasicGet("q"))]
    conn.receive_data(method(channel, spec.BasicGetEmpty()), 0.0)
    assert conn.events_received() == [ev.ReplyReceived(channel, spec.BasicGetEmpty())]
    assert sent_methods(conn) == [(channel, spec.BasicGet("q"))]


@pytest.mark.parametrize(
    ("request_", "reply"),
    [
        (None, spec.QueueDeclareOk("q", 0, 0)),
        (spec.QueueDeclare("q"), spec.ExchangeDeclareOk()),
        (spec.QueueDeclare("q"), spec.QueueBindOk()),
        (None, spec.ChannelCloseOk()),
        (None, spec.ChannelOpenOk()),
        (spec.BasicQos(), spec.BasicGetEmpty()),
        # A client-only method or a connection method on a channel.
        (None, spec.QueueDeclare("q")),
        (spec.QueueDeclare("q"), spec.QueueDeclare("q")),
        (None, spec.ConnectionCloseOk()),
        (None, spec.ChannelFlowOk(active=True)),
    ],
    ids=lambda m: m.NAME if m is not None else "nothing",
)
def test_unexpected_reply_is_505(request_: Any, reply: Method, feed: Feeder) -> None:
    conn = connect(feed)
    channel = open_channel(conn, feed)
    if request_ is not None:
        conn.call(channel, request_)
        sent_methods(conn)
    feed(conn, method(channel, reply))
    assert_failed(conn, FrameSequenceError, 505)


def test_unexpected_get_ok_is_505(feed: Feeder) -> None:
    conn = connect(feed)
    channel = open_channel(conn, feed)
    conn.call(channel, spec.QueueDeclare("q"))
    feed(conn, content(channel, spec.BasicGetOk(1, "", "q", 0), b"x"))
    assert_failed(conn, FrameSequenceError, 505)


def test_reply_on_an_unopened_channel_is_505(feed: Feeder) -> None:
    conn = connect(feed)
    feed(conn, method(9, spec.QueueDeclareOk("q", 0, 0)))
    assert_failed(conn, FrameSequenceError, 505)


def test_command_misuse_raises_and_sends_nothing() -> None:
    conn = connect()
    channel = open_channel(conn)
    with pytest.raises(UsageError):
        conn.call(channel, spec.BasicAck(1))  # no reply
    with pytest.raises(UsageError):
        conn.send(channel, spec.BasicPublish("", "q"))  # carries content
    with pytest.raises(UsageError):
        conn.call(42, spec.QueueDeclare("q"))  # not open
    with pytest.raises(UsageError):
        conn.send(42, spec.BasicAck(1))
    with pytest.raises(UsageError):
        publish(conn, 42)
    with pytest.raises(TypeError):
        conn.publish(channel, spec.BasicPublish(), None, "text")  # type: ignore[arg-type]
    assert conn.data_to_send() == []
    assert conn.events_received() == []


MISFITS = {
    "call-queue.declare-on-0": lambda c, ch: c.call(0, spec.QueueDeclare("q")),
    "send-basic.ack-on-0": lambda c, ch: c.send(0, spec.BasicAck(1)),
    "send-connection.close-on-a-channel": lambda c, ch: c.send(
        ch, spec.ConnectionClose(200, "")
    ),
    "call-connection.close-on-0": lambda c, ch: c.call(
        0, spec.ConnectionClose(200, "")
    ),
    "call-channel.close": lambda c, ch: c.call(ch, spec.ChannelClose(200, "")),
    "call-channel.open": lambda c, ch: c.call(ch, spec.ChannelOpen()),
    "publish-queue.declare": lambda c, ch: c.publish(
        ch, spec.QueueDeclare("q"), None, b"x"
    ),
}


@pytest.mark.parametrize("misuse", MISFITS.values(), ids=MISFITS.keys())
def test_methods_that_do_not_fit_the_command_raise(misuse: Any) -> None:
    # Connection-class methods belong on channel 0 and the others never do;
    # the handshake and the close handshakes have their own commands
    # (close, open_channel, close_channel); publish carries content methods
    # only. Misuse is the caller's: UsageError, nothing sent.
    conn = connect()
    channel = open_channel(conn)
    with pytest.raises(UsageError):
        misuse(conn, channel)
    assert conn.data_to_send() == []


# -- content assembly (§4.2.6) --------------------------------------------------------


def test_delivery_split_across_body_frames(feed: Feeder) -> None:
    conn = connect(feed, frame_max=4096)
    channel = open_channel(conn, feed)
    payload = bytes(range(256)) * 40  # 10240 bytes: 3 body frames
    props = spec.BasicProperties(
        content_type="application/octet-stream", headers={"k": 1}, delivery_mode=2
    )
    data = deliver(
        channel,
        payload,
        delivery_tag=3,
        consumer_tag="c1",
        exchange="ex",
        routing_key="rk",
        properties=props,
        frame_max=4096,
    )
    assert data.count(b"\xce\x03\x00\x01") == 3  # three body frames
    feed(conn, data)
    assert conn.events_received() == [
        ev.DeliveryReceived(
            channel, spec.BasicDeliver("c1", 3, "ex", "rk"), props, payload
        )
    ]
    assert conn.data_to_send() == []


def test_delivery_with_a_body_frame_per_byte(feed: Feeder) -> None:
    conn = connect(feed)
    channel = open_channel(conn, feed)
    feed(
        conn,
        method(channel, spec.BasicDeliver("c", 1))
        + header(channel, 3)
        + body(channel, b"a")
        + body(channel, b"")
        + body(channel, b"b")
        + body(channel, b"c"),
    )
    [delivery] = conn.events_received()
    assert isinstance(delivery, ev.DeliveryReceived)
    assert delivery.body == b"abc"
    assert isinstance(delivery.body, bytes)


def test_zero_size_body_has_no_body_frame(feed: Feeder) -> None:
    conn = connect(feed)
    channel = open_channel(conn, feed)
    data = deliver(channel, b"")
    assert len(data) == len(
        method(channel, spec.BasicDeliver("ctag", 1, "", "q")) + header(channel, 0)
    )
    feed(conn, data + deliver(channel, b"next", delivery_tag=2))
    events = conn.events_received()
    assert [(type(e), e.body) for e in events] == [  # type: ignore[union-attr]
        (ev.DeliveryReceived, b""),
        (ev.DeliveryReceived, b"next"),
    ]


def test_get_ok_content_is_the_reply(feed: Feeder) -> None:
    conn = connect(feed)
    channel = open_channel(conn, feed)
    conn.call(channel, spec.BasicGet("q"))
    conn.call(channel, spec.QueueDelete("q"))
    assert sent_methods(conn) == [(channel, spec.BasicGet("q"))]
    get_ok = spec.BasicGetOk(5, "", "q", 2, redelivered=True)
    props = spec.BasicProperties(message_id="m1")
    feed(conn, method(channel, get_ok) + header(channel, 4, props))
    assert conn.events_received() == []
    assert sent_methods(conn) == []  # the get is still pending
    feed(conn, body(channel, b"gets"))
    assert conn.events_received() == [ev.GetReceived(channel, get_ok, props, b"gets")]
    assert sent_methods(conn) == [(channel, spec.QueueDelete("q"))]


def test_return(feed: Feeder) -> None:
    conn = connect(feed)
    channel = open_channel(conn, feed)
    returned = spec.BasicReturn(312, "NO_ROUTE", "ex", "nowhere")
    feed(conn, content(channel, returned, b"lost", spec.BasicProperties(priority=1)))
    assert conn.events_received() == [
        ev.ReturnReceived(channel, returned, spec.BasicProperties(priority=1), b"lost")
    ]


def test_content_of_different_channels_may_interleave(feed: Feeder) -> None:
    conn = connect(feed)
    one = open_channel(conn, feed)
    two = open_channel(conn, feed)
    feed(
        conn,
        method(one, spec.BasicDeliver("c1", 1))
        + method(two, spec.BasicDeliver("c2", 1))
        + header(one, 6)
        + body(one, b"one-")
        + header(two, 3)
        + body(two, b"two")
        + method(two, spec.BasicDeliver("c2", 2))
        + body(one, b"ok")
        + header(two, 0),
    )
    assert [(e.channel, e.body) for e in conn.events_received()] == [  # type: ignore[union-attr]
        (two, b"two"),
        (one, b"one-ok"),
        (two, b""),
    ]


@pytest.mark.parametrize(
    ("frames", "error_type", "code"),
    [
        pytest.param(
            lambda c: body(c, b"x"), FrameSequenceError, 505, id="body-without-header"
        ),
        pytest.param(
            lambda c: header(c, 1) + body(c, b"x"),
            FrameSequenceError,
            505,
            id="header-without-method",
        ),
        pytest.param(
            lambda c: method(c, spec.BasicDeliver("c", 1)) + body(c, b"x"),
            FrameSequenceError,
            505,
            id="body-before-header",
        ),
        pytest.param(
            lambda c: (
                method(c, spec.BasicDeliver("c", 1))
                + method(c, spec.BasicDeliver("c", 2))
            ),
            FrameSequenceError,
            505,
            id="method-instead-of-header",
        ),
        pytest.param(
            lambda c: (
                method(c, spec.BasicDeliver("c", 1))
                + header(c, 5)
                + body(c, b"ab")
                + method(c, spec.ChannelFlow(active=False))
            ),
            FrameSequenceError,
            505,
            id="method-in-the-middle-of-the-body",
        ),
        pytest.param(
            lambda c: (
                method(c, spec.BasicDeliver("c", 1)) + header(c, 5) + header(c, 5)
            ),
            FrameSequenceError,
            505,
            id="second-header",
        ),
        pytest.param(
            lambda c: deliver(c, b"abc") + body(c, b"d"),
            FrameSequenceError,
            505,
            id="body-after-complete-content",
        ),
        pytest.param(
            lambda c: deliver(c, b"") + body(c, b""),
            FrameSequenceError,
            505,
            id="body-after-empty-content",
        ),
        # Only class basic has content properties, so the frame reader
        # already refuses a header of another class (501), before the core
        # could compare it with the method's class.
        pytest.param(
            lambda c: (
                method(c, spec.BasicDeliver("c", 1))
                + header(c, 1, class_id=50)
                + body(c, b"x")
            ),
            FrameDecodeError,
            501,
            id="header-class-mismatch",
        ),
        pytest.param(
            lambda c: (
                method(c, spec.BasicDeliver("c", 1))
                + header(c, 3)
                + body(c, b"toolong")
            ),
            FrameDecodeError,
            501,
            id="body-over-declared-size",
        ),
        pytest.param(
            lambda c: (
                method(c, spec.BasicDeliver("c", 1))
                + header(c, 5)
                + body(c, b"abc")
                + body(c, b"def")
            ),
            FrameDecodeError,
            501,
            id="bodies-over-declared-size",
        ),
        pytest.param(
            lambda c: header(0, 1), FrameSequenceError, 505, id="header-on-channel-0"
        ),
        pytest.param(
            lambda c: body(0, b"x"), FrameSequenceError, 505, id="body-on-channel-0"
        ),
        pytest.param(
            lambda c: method(0, spec.BasicDeliver("c", 1)),
            FrameSequenceError,
            505,
            id="deliver-on-channel-0",
        ),
        pytest.param(
            lambda c: deliver(c + 1, b"x"),
            FrameSequenceError,
            505,
            id="content-on-unopened-channel",
        ),
    ],
)
def test_content_out_of_order(
    frames: Any, error_type: type[ProtocolError], code: int, feed: Feeder
) -> None:
    conn = connect(feed)
    channel = open_channel(conn, feed)
    feed(conn, frames(channel))
    assert_failed(conn, error_type, code)


@pytest.mark.parametrize("closing", [False, True], ids=["open", "closing"])
def test_content_on_channel_0_fails_alike_joined_or_not(closing: bool) -> None:
    # Whole, the reader joins the three frames; byte by byte it cannot. The
    # error must not depend on it (while closing, the deliver itself is
    # discarded and its header is what breaks the rules).
    messages = []
    for mode in ("whole", "bytewise"):
        feed = Feeder(mode)
        conn = connect(feed)
        if closing:
            conn.close()
        conn.data_to_send()
        feed(conn, deliver(0, b"body"))
        assert_failed(conn, FrameSequenceError, 505)
        messages.append(str(conn.error))
    assert messages[0] == messages[1]


def test_joined_and_separate_content_frames_give_the_same_events() -> None:
    # Fed whole, the reader hands the core a deliver, its header and its body
    # as one ContentFrame; fed in pieces, as three frames. Same events, same
    # bytes out, whatever the chunking.
    props = spec.BasicProperties(content_type="text/plain", headers={"n": 1})
    outcomes = []
    for chunk_size in (None, 1, 7, 64, 1000):
        conn = connect(frame_max=4096)
        one = open_channel(conn)
        two = open_channel(conn)
        conn.call(two, spec.BasicGet("q"))
        conn.call(two, spec.QueueDelete("q"))
        conn.data_to_send()
        script = (
            deliver(one, b"a" * 100, delivery_tag=1, properties=props)
            + deliver(one, b"", delivery_tag=2)
            + deliver(one, bytes(range(256)) * 40, delivery_tag=3, frame_max=4096)
            + content(two, spec.BasicReturn(312, "NO_ROUTE", "ex", "rk"), b"back")
            + content(two, spec.BasicGetOk(9, "", "q", 0), b"got", props)
            + deliver(one, b"last", delivery_tag=4)
        )
        if chunk_size is None:
            conn.receive_data(script, 0.0)
        else:
            for i in range(0, len(script), chunk_size):
                conn.receive_data(script[i : i + chunk_size], 0.0)
        assert conn.state is ConnectionState.OPEN
        outcomes.append((conn.events_received(), sent_methods(conn)))
    events, sent = outcomes[0]
    assert [type(e) for e in events] == [
        ev.DeliveryReceived,
        ev.DeliveryReceived,
        ev.DeliveryReceived,
        ev.ReturnReceived,
        ev.GetReceived,
        ev.DeliveryReceived,
    ]
    assert sent == [(2, spec.QueueDelete("q"))]  # sent once the get-ok is done
    assert all(outcome == outcomes[0] for outcome in outcomes[1:])


# -- publisher confirms ----------------------------------------------------------------


def test_confirm_tags_acks_and_nacks(feed: Feeder) -> None:
    conn = connect(feed)
    channel = open_channel(conn, feed)
    assert publish(conn, channel) is None  # not in confirm mode
    assert conn.unconfirmed(channel) == []
    conn.call(channel, spec.ConfirmSelect())
    # Counted from the request: everything after it on the channel counts.
    assert publish(conn, channel) == 1
    feed(conn, method(channel, spec.ConfirmSelectOk()))
    assert conn.events_received() == [ev.ReplyReceived(channel, spec.ConfirmSelectOk())]
    assert [publish(conn, channel) for _ in range(5)] == [2, 3, 4, 5, 6]
    assert conn.unconfirmed(channel) == [1, 2, 3, 4, 5, 6]

    feed(conn, method(channel, spec.BasicAck(2)))
    assert conn.events_received() == [ev.PublishAcked(channel, (2,))]
    assert conn.unconfirmed(channel) == [1, 3, 4, 5, 6]

    feed(conn, method(channel, spec.BasicAck(4, multiple=True)))
    assert conn.events_received() == [ev.PublishAcked(channel, (1, 3, 4))]
    assert conn.unconfirmed(channel) == [5, 6]

    feed(conn, method(channel, spec.BasicNack(5, requeue=True)))
    assert conn.events_received() == [ev.PublishNacked(channel, (5,))]
    assert publish(conn, channel) == 7
    feed(conn, method(channel, spec.BasicNack(7, multiple=True)))
    assert conn.events_received() == [ev.PublishNacked(channel, (6, 7))]
    assert conn.unconfirmed(channel) == []
    assert publish(conn, channel) == 8
    assert conn.unconfirmed(channel) == [8]


def test_confirms_for_unknown_tags_are_ignored(feed: Feeder) -> None:
    conn = connect(feed)
    channel = open_channel(conn, feed)
    confirming(conn, channel, feed)
    publish(conn, channel)
    publish(conn, channel)
    feed(conn, method(channel, spec.BasicAck(1)))
    feed(conn, method(channel, spec.BasicAck(1)))  # again
    feed(conn, method(channel, spec.BasicAck(99)))
    feed(conn, method(channel, spec.BasicNack(1, multiple=True)))  # nothing left
    assert conn.events_received() == [ev.PublishAcked(channel, (1,))]
    assert conn.unconfirmed(channel) == [2]
    assert conn.is_open


@pytest.mark.parametrize(
    ("confirm", "event"),
    [
        (spec.BasicAck(0, multiple=True), ev.PublishAcked),
        (spec.BasicNack(0, multiple=True), ev.PublishNacked),
    ],
)
def test_multiple_confirm_with_tag_zero_confirms_everything(
    confirm: Method, event: type[ev.PublishAcked | ev.PublishNacked], feed: Feeder
) -> None:
    # AMQP 0-9-1 basic.ack/basic.nack, field multiple: "If the multiple
    # field is 1, and the delivery tag is zero, this indicates
    # acknowledgement of all outstanding messages."
    conn = connect(feed)
    channel = open_channel(conn, feed)
    confirming(conn, channel, feed)
    for _ in range(3):
        publish(conn, channel)
    feed(conn, method(channel, confirm))
    assert conn.events_received() == [event(channel, (1, 2, 3))]
    assert conn.unconfirmed(channel) == []
    feed(conn, method(channel, confirm))  # nothing left: no event
    assert conn.events_received() == []


def test_confirm_select_no_wait_and_queued_select(feed: Feeder) -> None:
    conn = connect(feed)
    one = open_channel(conn, feed)
    two = open_channel(conn, feed)
    conn.send(one, spec.ConfirmSelect(nowait=True))
    assert publish(conn, one) == 1
    # A select queued behind another request counts from the request too.
    conn.call(two, spec.QueueDeclare("q"))
    conn.call(two, spec.ConfirmSelect())
    assert publish(conn, two) == 1
    assert publish(conn, two) == 2
    assert publish(conn, one) == 2
    feed(conn, method(two, spec.QueueDeclareOk("q", 0, 0)))
    feed(conn, method(two, spec.ConfirmSelectOk()))
    feed(conn, method(two, spec.BasicAck(2, multiple=True)))
    feed(conn, method(one, spec.BasicAck(1)))
    assert conn.events_received()[-2:] == [
        ev.PublishAcked(two, (1, 2)),
        ev.PublishAcked(one, (1,)),
    ]
    assert conn.unconfirmed(one) == [2]
    assert conn.unconfirmed(two) == []
    assert conn.unconfirmed(99) == []


@pytest.mark.parametrize("confirm", [spec.BasicAck(1), spec.BasicNack(1)])
def test_confirm_when_not_in_confirm_mode_is_505(confirm: Method, feed: Feeder) -> None:
    conn = connect(feed)
    channel = open_channel(conn, feed)
    publish(conn, channel)
    feed(conn, method(channel, confirm))
    assert_failed(conn, FrameSequenceError, 505)


def test_publish_frames_split_at_frame_max() -> None:
    conn = connect(frame_max=4096)
    channel = open_channel(conn)
    payload = b"0123456789" * 1000
    props = spec.BasicProperties(content_type="text/plain")
    conn.publish(channel, spec.BasicPublish("ex", "rk", mandatory=True), props, payload)
    out = conn.data_to_send()
    assert all(isinstance(b, bytes | memoryview) for b in out)
    frames = [
        f
        for f in decode_client_bytes(b"".join(bytes(b) for b in out))
        if not isinstance(f, bytes)
    ]
    assert frames[0] == MethodFrame(
        channel, spec.BasicPublish("ex", "rk", mandatory=True)
    )
    assert frames[1] == HeaderFrame(channel, 60, len(payload), props)
    bodies = frames[2:]
    assert all(isinstance(f, BodyFrame) for f in bodies)
    assert [len(f.payload) for f in bodies] == [4088, 4088, 1824]  # type: ignore[union-attr]
    assert b"".join(f.payload for f in bodies) == payload  # type: ignore[union-attr]


# -- close handshakes (§4.2.3, channel.close / connection.close) ------------------------


def test_client_closes_the_connection(feed: Feeder) -> None:
    conn = connect(feed)
    open_channel(conn, feed)
    conn.close()
    assert conn.state is ConnectionState.CLOSING
    assert sent_methods(conn) == [(0, spec.ConnectionClose(200, "", 0, 0))]
    conn.close()  # no second close
    assert conn.data_to_send() == []
    assert conn.events_received() == []
    with pytest.raises(UsageError):
        conn.open_channel()
    feed(conn, method(0, spec.ConnectionCloseOk()))
    assert terminal_error(conn) is None
    assert conn.data_to_send() == []
    assert_dead(conn)


def test_client_closes_the_connection_with_a_reason(feed: Feeder) -> None:
    conn = connect(feed)
    conn.close(320, "going away")
    assert sent_methods(conn) == [(0, spec.ConnectionClose(320, "going away", 0, 0))]
    feed(conn, method(0, spec.ConnectionCloseOk()))
    error = terminal_error(conn)
    assert isinstance(error, ConnectionClosed)
    assert (error.reply_code, error.reply_text) == (320, "going away")


def test_close_before_initiate_is_immediate() -> None:
    conn = new()
    conn.close()
    assert conn.data_to_send() == []
    assert terminal_error(conn) is None


@pytest.mark.parametrize(
    ("code", "error_type"),
    [
        (320, spec.ConnectionForcedError),
        (402, spec.InvalidPathError),
        (501, spec.FrameError),
        (502, spec.AMQPSyntaxError),
        (503, spec.CommandInvalidError),
        (504, spec.ChannelError),
        (505, spec.UnexpectedFrameError),
        (506, spec.ResourceError),
        (530, spec.NotAllowedError),
        (540, spec.AMQPNotImplementedError),
        (541, spec.InternalError),
        (404, ConnectionClosed),  # a soft code on connection.close
        (999, ConnectionClosed),
    ],
)
def test_broker_closes_the_connection(
    code: int, error_type: type[ConnectionClosed], feed: Feeder
) -> None:
    conn = connect(feed)
    one = open_channel(conn, feed)
    conn.call(one, spec.QueueDeclare("q"))
    sent_methods(conn)
    text = "CONNECTION_FORCED - broker forced connection closure with reason 'shutdown'"
    feed(conn, method(0, spec.ConnectionClose(code, text, 50, 10)))
    assert sent_methods(conn) == [(0, spec.ConnectionCloseOk())]
    error = terminal_error(conn)
    assert type(error) is error_type
    assert isinstance(error, ConnectionClosed)
    assert (error.reply_code, error.reply_text) == (code, text)
    assert (error.class_id, error.method_id) == (50, 10)
    assert_dead(conn)
    with pytest.raises(error_type):
        conn.open_channel()


def test_simultaneous_connection_close(feed: Feeder) -> None:
    conn = connect(feed)
    conn.close()
    sent_methods(conn)
    feed(conn, method(0, spec.ConnectionClose(320, "shutdown")))
    # The close the client asked for is done; the broker gets its close-ok.
    assert sent_methods(conn) == [(0, spec.ConnectionCloseOk())]
    assert terminal_error(conn) is None


def test_connection_methods_after_client_close_are_discarded(feed: Feeder) -> None:
    conn = connect(feed)
    conn.close()
    sent_methods(conn)
    feed(
        conn,
        method(0, spec.ConnectionBlocked("low on memory"))
        + method(0, spec.ConnectionUnblocked())
        + method(0, spec.ConnectionUpdateSecretOk())
        + method(0, spec.ConnectionOpenOk())
        + tune()
        + heartbeat(),
    )
    assert conn.events_received() == []
    assert conn.data_to_send() == []
    assert conn.state is ConnectionState.CLOSING
    assert not conn.blocked
    feed(conn, method(0, spec.ConnectionCloseOk()))
    assert terminal_error(conn) is None


def test_channel_frames_after_client_close_are_discarded(feed: Feeder) -> None:
    # AMQP 0-9-1 connection.close: "After sending this method, any received
    # methods except Close and Close-OK MUST be discarded."
    conn = connect(feed)
    channel = open_channel(conn, feed)
    confirming(conn, channel, feed)
    publish(conn, channel)
    conn.close()
    sent_methods(conn)
    feed(
        conn,
        deliver(channel, b"late")
        + method(channel, spec.BasicAck(1))
        + method(channel, spec.ChannelFlow(active=False))
        + method(channel, spec.BasicCancel("ctag"))
        + method(channel, spec.ChannelClose(404, "NOT_FOUND"))
        + method(channel, spec.QueueDeclareOk("q", 0, 0))
        + body(channel, b"no header")
        + deliver(channel + 1, b"unknown channel"),
    )
    assert conn.events_received() == []
    assert conn.data_to_send() == []
    assert conn.state is ConnectionState.CLOSING
    feed(conn, method(0, spec.ConnectionCloseOk()))
    assert terminal_error(conn) is None


def test_client_closes_a_channel(feed: Feeder) -> None:
    conn = connect(feed)
    channel = open_channel(conn, feed)
    other = open_channel(conn, feed)
    conn.call(channel, spec.QueueDeclare("a"))
    conn.call(channel, spec.QueueDeclare("b"))  # queued: dropped by the close
    sent_methods(conn)
    conn.close_channel(channel)
    assert sent_methods(conn) == [(channel, spec.ChannelClose(200, "", 0, 0))]
    assert not conn.channel_is_open(channel)
    conn.close_channel(channel)  # already closing: nothing more
    conn.close_channel(77)  # unknown: nothing
    assert conn.data_to_send() == []
    with pytest.raises(UsageError):
        conn.call(channel, spec.QueueDeclare("c"))
    with pytest.raises(UsageError):
        conn.send(channel, spec.BasicAck(1))
    with pytest.raises(UsageError):
        publish(conn, channel)
    # Frames until close-ok are discarded (content assembled and dropped).
    feed(
        conn,
        method(channel, spec.QueueDeclareOk("a", 0, 0))
        + deliver(channel, b"late")
        + method(channel, spec.BasicAck(1))
        + method(channel, spec.BasicCancel("c"))
        + method(channel, spec.ChannelFlow(active=False))
        + deliver(other, b"still fine"),
    )
    events = conn.events_received()
    assert [(type(e), e.channel) for e in events] == [  # type: ignore[union-attr]
        (ev.DeliveryReceived, other)
    ]
    assert conn.data_to_send() == []
    feed(conn, method(channel, spec.ChannelCloseOk()))
    assert conn.events_received() == [ev.ChannelTerminated(channel, None)]
    assert conn.data_to_send() == []
    assert conn.is_open
    # Its id is free again, the other channel unaffected.
    assert open_channel(conn, feed) == channel
    conn.call(other, spec.QueueDeclare("x"))
    assert sent_methods(conn) == [(other, spec.QueueDeclare("x"))]


def test_client_closes_a_channel_with_a_reason(feed: Feeder) -> None:
    conn = connect(feed)
    channel = open_channel(conn, feed)
    conn.close_channel(channel, 406, "bad", 60, 40)
    assert sent_methods(conn) == [(channel, spec.ChannelClose(406, "bad", 60, 40))]
    feed(conn, method(channel, spec.ChannelCloseOk()))
    [terminated] = conn.events_received()
    assert isinstance(terminated, ev.ChannelTerminated)
    assert isinstance(terminated.error, spec.PreconditionFailedError)


@pytest.mark.parametrize(
    ("code", "error_type"),
    [
        (311, spec.ContentTooLargeError),
        (313, spec.NoConsumersError),
        (403, spec.AccessRefusedError),
        (404, spec.NotFoundError),
        (405, spec.ResourceLockedError),
        (406, spec.PreconditionFailedError),
        (999, ChannelClosed),
    ],
)
def test_broker_closes_a_channel(
    code: int, error_type: type[ChannelClosed], feed: Feeder
) -> None:
    conn = connect(feed)
    channel = open_channel(conn, feed)
    other = open_channel(conn, feed)
    conn.call(channel, spec.QueueDeclare("q", passive=True))
    conn.call(channel, spec.QueueDeclare("r"))
    sent_methods(conn)
    text = "NOT_FOUND - no queue 'q' in vhost '/'"
    feed(conn, method(channel, spec.ChannelClose(code, text, 50, 10)))
    assert sent_methods(conn) == [(channel, spec.ChannelCloseOk())]
    [terminated] = conn.events_received()
    assert isinstance(terminated, ev.ChannelTerminated)
    assert terminated.channel == channel
    error = terminated.error
    assert type(error) is error_type
    assert isinstance(error, ChannelClosed)
    assert (error.reply_code, error.reply_text) == (code, text)
    assert (error.class_id, error.method_id) == (50, 10)
    # The connection and its other channels keep working.
    assert conn.is_open
    assert not conn.channel_is_open(channel)
    with pytest.raises(UsageError):
        conn.call(channel, spec.QueueDeclare("q"))
    conn.call(other, spec.QueueDeclare("q"))
    feed(conn, method(other, spec.QueueDeclareOk("q", 0, 0)))
    assert conn.events_received() == [
        ev.ReplyReceived(other, spec.QueueDeclareOk("q", 0, 0))
    ]
    # A frame for the freed channel is now an error.
    feed(conn, method(channel, spec.QueueDeclareOk("r", 0, 0)))
    assert_failed(conn, FrameSequenceError, 505)


def test_simultaneous_channel_close(feed: Feeder) -> None:
    conn = connect(feed)
    channel = open_channel(conn, feed)
    conn.close_channel(channel)
    sent_methods(conn)
    feed(conn, method(channel, spec.ChannelClose(406, "PRECONDITION_FAILED")))
    assert sent_methods(conn) == [(channel, spec.ChannelCloseOk())]
    [terminated] = conn.events_received()
    assert terminated == ev.ChannelTerminated(channel, None)
    # A late close-ok for a freed channel is a 505.
    feed(conn, method(channel, spec.ChannelCloseOk()))
    assert_failed(conn, FrameSequenceError, 505)


def test_broker_closes_a_channel_that_is_opening(feed: Feeder) -> None:
    conn = connect(feed)
    channel = conn.open_channel()
    sent_methods(conn)
    feed(conn, method(channel, spec.ChannelClose(405, "RESOURCE_LOCKED")))
    assert sent_methods(conn) == [(channel, spec.ChannelCloseOk())]
    [terminated] = conn.events_received()
    assert isinstance(terminated, ev.ChannelTerminated)
    assert isinstance(terminated.error, spec.ResourceLockedError)


# -- heartbeats (§4.2.7) -----------------------------------------------------------------


def test_heartbeat_deadlines(feed: Feeder) -> None:
    conn = connect(feed, heartbeat=10, now=100.0)
    assert conn.heartbeat == 10
    # min(last_sent + h/2, last_received + 2h)
    assert conn.next_deadline() == 105.0
    conn.handle_timers(104.9)
    assert conn.data_to_send() == []
    conn.handle_timers(105.0)
    assert sent_bytes(conn) == HEARTBEAT_FRAME
    assert conn.next_deadline() == 110.0

    # Output pushes the send deadline.
    feed(conn, heartbeat(), 108.0)
    assert conn.events_received() == []
    assert conn.next_deadline() == 110.0
    conn.call(0, spec.ConnectionUpdateSecret(b"token", "rotation"))
    assert sent_methods(conn) == [
        (0, spec.ConnectionUpdateSecret(b"token", "rotation"))
    ]
    assert conn.next_deadline() == 113.0
    conn.handle_timers(113.0)
    assert sent_bytes(conn) == HEARTBEAT_FRAME

    # Input pushes the dead deadline: last input at 108, so dead at 128.
    for now in (118.0, 123.0):
        assert conn.next_deadline() == now
        conn.handle_timers(now)
        assert sent_bytes(conn) == HEARTBEAT_FRAME
    assert conn.next_deadline() == 128.0
    conn.handle_timers(127.9)
    assert conn.data_to_send() == []
    assert conn.events_received() == []
    conn.handle_timers(128.0)
    error = terminal_error(conn)
    assert isinstance(error, HeartbeatTimeout)
    assert isinstance(error, ConnectionLost)
    assert conn.data_to_send() == []
    assert_dead(conn)


def test_any_input_keeps_the_connection_alive(feed: Feeder) -> None:
    conn = connect(feed, heartbeat=4, now=0.0)
    channel = open_channel(conn, feed, now=0.0)
    now = 0.0
    for i in range(20):
        now += 3.0
        feed(conn, deliver(channel, b"x", delivery_tag=i + 1), now)
        conn.handle_timers(now)
        conn.data_to_send()
        assert conn.next_deadline() is not None
        assert conn.next_deadline() <= now + 2  # type: ignore[operator]
    assert conn.is_open


def test_paused_reading_suspends_the_dead_peer_deadline(feed: Feeder) -> None:
    # The front stops reading while its consumers catch up: the broker's
    # silence is then ours, not a dead peer; heartbeats still go out.
    conn = connect(feed, heartbeat=10, now=0.0)
    conn.reading_paused(True, 1.0)
    assert conn.next_deadline() == 5.0  # only the send deadline
    for now in (5.0, 10.0, 15.0, 100.0):
        conn.handle_timers(now)
        assert sent_bytes(conn) == HEARTBEAT_FRAME
        assert conn.is_open
    assert conn.next_deadline() == 105.0
    conn.reading_paused(True, 101.0)  # again: nothing changes
    assert conn.next_deadline() == 105.0
    # Reading again restarts the dead-peer clock from now.
    conn.reading_paused(False, 102.0)
    assert conn.next_deadline() == 105.0
    conn.handle_timers(121.9)
    assert sent_bytes(conn) == HEARTBEAT_FRAME
    assert conn.is_open
    assert conn.next_deadline() == 122.0
    conn.handle_timers(122.0)
    assert isinstance(terminal_error(conn), HeartbeatTimeout)


def test_resuming_reading_that_was_not_paused_changes_nothing() -> None:
    conn = connect(heartbeat=10, now=0.0)
    conn.reading_paused(False, 15.0)
    assert conn.next_deadline() == 5.0
    conn.handle_timers(20.0)
    assert isinstance(terminal_error(conn), HeartbeatTimeout)


def test_heartbeat_0_means_no_deadline(feed: Feeder) -> None:
    conn = connect(feed, heartbeat=0)
    assert conn.heartbeat == 0
    assert conn.next_deadline() is None
    conn.handle_timers(1e9)
    assert conn.data_to_send() == []
    assert conn.events_received() == []
    assert conn.is_open


def test_no_deadline_during_the_handshake() -> None:
    conn = new(heartbeat=5)
    assert conn.next_deadline() is None
    conn.initiate(0.0)
    conn.receive_data(start(), 0.0)
    assert conn.next_deadline() is None
    conn.handle_timers(1e6)
    conn.receive_data(tune(heartbeat=5), 1e6)
    conn.data_to_send()
    assert conn.next_deadline() == 1e6 + 2.5
    conn.receive_data(method(0, spec.ConnectionOpenOk()), 1e6 + 1)
    assert conn.next_deadline() == 1e6 + 2.5


def test_heartbeats_while_closing() -> None:
    conn = connect(heartbeat=10, now=0.0)
    conn.close()
    conn.data_to_send()
    conn.handle_timers(5.0)
    assert sent_bytes(conn) == HEARTBEAT_FRAME
    conn.handle_timers(20.0)
    assert isinstance(terminal_error(conn), HeartbeatTimeout)


# -- broker-initiated methods ------------------------------------------------------------


@pytest.mark.parametrize("active", [False, True])
def test_channel_flow(active: bool, feed: Feeder) -> None:
    conn = connect(feed)
    channel = open_channel(conn, feed)
    conn.call(channel, spec.QueueDeclare("q"))  # flow is not a reply
    sent_methods(conn)
    feed(conn, method(channel, spec.ChannelFlow(active=active)))
    assert sent_methods(conn) == [(channel, spec.ChannelFlowOk(active=active))]
    assert conn.events_received() == [ev.ChannelFlowChanged(channel, active)]
    feed(conn, method(channel, spec.QueueDeclareOk("q", 0, 0)))
    assert [type(e) for e in conn.events_received()] == [ev.ReplyReceived]


@pytest.mark.parametrize("no_wait", [False, True])
def test_consumer_cancelled_by_the_broker(no_wait: bool, feed: Feeder) -> None:
    conn = connect(feed)
    channel = open_channel(conn, feed)
    feed(conn, method(channel, spec.BasicCancel("amq.ctag-1", no_wait=no_wait)))
    assert conn.events_received() == [ev.ConsumerCancelled(channel, "amq.ctag-1")]
    expected = [] if no_wait else [(channel, spec.BasicCancelOk("amq.ctag-1"))]
    assert sent_methods(conn) == expected


def test_connection_blocked_and_unblocked(feed: Feeder) -> None:
    conn = connect(feed)
    assert conn.blocked is False
    feed(conn, method(0, spec.ConnectionBlocked("low on memory")))
    assert conn.events_received() == [ev.ConnectionBlocked("low on memory")]
    assert conn.blocked is True
    feed(conn, method(0, spec.ConnectionBlocked("low on disk")))
    assert conn.events_received() == [ev.ConnectionBlocked("low on disk")]
    feed(conn, method(0, spec.ConnectionUnblocked()))
    assert conn.events_received() == [ev.ConnectionUnblocked()]
    assert conn.blocked is False
    assert conn.data_to_send() == []


def test_update_secret(feed: Feeder) -> None:
    conn = connect(feed)
    conn.call(0, spec.ConnectionUpdateSecret(b"new-token", "expiry"))
    conn.call(0, spec.ConnectionUpdateSecret(b"newer-token", "expiry"))
    assert sent_methods(conn) == [
        (0, spec.ConnectionUpdateSecret(b"new-token", "expiry"))
    ]
    feed(conn, method(0, spec.ConnectionUpdateSecretOk()))
    assert conn.events_received() == [
        ev.ReplyReceived(0, spec.ConnectionUpdateSecretOk())
    ]
    assert sent_methods(conn) == [
        (0, spec.ConnectionUpdateSecret(b"newer-token", "expiry"))
    ]
    feed(conn, method(0, spec.ConnectionUpdateSecretOk()))
    assert conn.events_received() == [
        ev.ReplyReceived(0, spec.ConnectionUpdateSecretOk())
    ]
    feed(conn, method(0, spec.ConnectionUpdateSecretOk()))  # unsolicited
    assert_failed(conn, FrameSequenceError, 505)


@pytest.mark.parametrize(
    "data",
    [
        method(0, spec.ConnectionStart(0, 9, b"PLAIN", b"en_US")),
        tune(),
        method(0, spec.ConnectionOpenOk()),
        method(0, spec.ConnectionSecure(b"x")),
        method(0, spec.ConnectionCloseOk()),
        method(0, spec.ChannelOpenOk()),
        method(0, spec.QueueDeclareOk("q", 0, 0)),
    ],
)
def test_unexpected_method_on_channel_0_after_open_is_505(
    data: bytes, feed: Feeder
) -> None:
    conn = connect(feed)
    feed(conn, data)
    assert_failed(conn, FrameSequenceError, 505)


# -- end of the transport -----------------------------------------------------------------


@pytest.mark.parametrize("stage", HANDSHAKE_STAGES, ids=lambda s: s.value)
def test_eof_during_the_handshake(stage: ConnectionState, feed: Feeder) -> None:
    conn = new()
    _to_stage(conn, stage, feed)
    conn.receive_eof()
    error = terminal_error(conn)
    assert type(error) is ConnectionLost
    # The hint fits the stage: credentials only once they were sent.
    if stage is ConnectionState.AWAIT_START:
        assert "before connection.start" in str(error)
        assert "credentials" not in str(error)
    elif stage is ConnectionState.AWAIT_TUNE:
        assert "credentials" in str(error)
    assert conn.data_to_send() == []
    assert_dead(conn)


def test_eof_when_open(feed: Feeder) -> None:
    conn = connect(feed)
    open_channel(conn, feed)
    conn.receive_eof()
    assert type(terminal_error(conn)) is ConnectionLost
    assert_dead(conn)


def test_eof_after_the_client_closed_is_clean(feed: Feeder) -> None:
    conn = connect(feed)
    conn.close()
    conn.data_to_send()
    conn.receive_eof()
    assert terminal_error(conn) is None


def test_eof_after_the_broker_closed_changes_nothing(feed: Feeder) -> None:
    conn = connect(feed)
    feed(conn, method(0, spec.ConnectionClose(320, "shutdown")))
    assert isinstance(terminal_error(conn), spec.ConnectionForcedError)
    conn.receive_eof()
    assert conn.events_received() == []
    assert isinstance(conn.error, spec.ConnectionForcedError)


def test_connection_lost() -> None:
    conn = connect()
    conn.connection_lost("connection reset by peer")
    error = terminal_error(conn)
    assert type(error) is ConnectionLost
    assert str(error) == "connection reset by peer"
    with pytest.raises(ConnectionLost):
        conn.open_channel()
    assert_dead(conn)


# -- garbage from the peer ------------------------------------------------------------------


GARBAGE = {
    "bad-frame-end": raw_frame(8, 0, b"", end=0x00),
    "bad-frame-end-on-a-method": method(0, spec.ConnectionBlocked("x"))[:-1] + b"\x00",
    "unknown-frame-type-4": raw_frame(4, 0, b""),
    "unknown-frame-type-0": raw_frame(0, 0, b""),
    "zeros": b"\x00" * 16,
    "http-response": b"HTTP/1.1 400 Bad Request\r\n\r\n",
    "undecodable-method-payload": raw_frame(
        1, 0, struct.pack(">HH", 10, 50) + b"\x01\x40"
    ),
    "method-payload-too-long": raw_frame(1, 0, struct.pack(">HH", 10, 61) + b"extra"),
    "method-payload-too-short": raw_frame(1, 0, b"\x00\x0a"),
    "unknown-method": raw_frame(1, 0, struct.pack(">HH", 10, 99)),
    "unknown-class": raw_frame(1, 1, struct.pack(">HH", 99, 10)),
    "heartbeat-on-a-channel": raw_frame(8, 1, b""),
    "heartbeat-with-payload": raw_frame(8, 0, b"x"),
    "header-too-short": raw_frame(2, 1, b"\x00\x3c"),
    "undecodable-properties": raw_frame(
        2, 1, struct.pack(">HHQH", 60, 0, 1, 0x8000) + b"\x09text"
    ),
    "over-frame-max": raw_frame(3, 1, b"x" * 131072),
    "bad-table": raw_frame(
        1,
        0,
        struct.pack(">HH", 10, 10)
        + b"\x00\x09"
        + struct.pack(">I", 3)
        + b"\x01kZ"
        + b"\x00\x00\x00\x00" * 2,
    ),
}


@pytest.mark.parametrize("garbage", GARBAGE.values(), ids=GARBAGE.keys())
def test_garbage_when_open_is_a_frame_error(garbage: bytes, feed: Feeder) -> None:
    conn = connect(feed)
    channel = open_channel(conn, feed)
    conn.call(channel, spec.QueueDeclare("q"))
    sent_methods(conn)
    feed(conn, garbage)
    assert_failed(conn, FrameDecodeError, 501)


@pytest.mark.parametrize("garbage", GARBAGE.values(), ids=GARBAGE.keys())
@pytest.mark.parametrize("stage", HANDSHAKE_STAGES, ids=lambda s: s.value)
def test_garbage_during_the_handshake_is_a_frame_error(
    garbage: bytes, stage: ConnectionState
) -> None:
    conn = new()
    _to_stage(conn, stage, Feeder())
    conn.receive_data(garbage, 0.0)
    assert_failed(conn, FrameDecodeError, 501)


def test_frames_before_garbage_in_one_chunk() -> None:
    # The reader drops the good frames of a failing chunk: the connection is
    # going down anyway, and only the terminal event matters.
    conn = connect()
    conn.receive_data(
        method(0, spec.ConnectionBlocked("x")) + raw_frame(9, 0, b""), 0.0
    )
    assert_failed(conn, FrameDecodeError, 501)


def test_garbage_while_closing() -> None:
    conn = connect()
    conn.close()
    sent_methods(conn)
    conn.receive_data(raw_frame(9, 0, b""), 0.0)
    assert_failed(conn, FrameDecodeError, 501)


def test_a_long_error_text_fits_a_shortstr() -> None:
    conn = connect()
    conn.receive_data(raw_frame(1, 0, struct.pack(">HH", 10, 10) + b"\xff" * 600), 0.0)
    [(_, close)] = sent_methods(conn)
    assert isinstance(close, spec.ConnectionClose)
    assert len(close.reply_text.encode()) <= 255
    assert isinstance(terminal_error(conn), FrameDecodeError)


def test_partial_frame_then_eof() -> None:
    conn = connect()
    conn.receive_data(method(0, spec.ConnectionBlocked("x"))[:5], 0.0)
    assert conn.events_received() == []
    conn.receive_eof()
    assert type(terminal_error(conn)) is ConnectionLost


def test_empty_data_is_nothing() -> None:
    conn = connect()
    conn.receive_data(b"", 0.0)
    conn.receive_data(memoryview(b""), 0.0)
    assert conn.events_received() == []
    assert conn.data_to_send() == []
    assert conn.is_open


def test_bytearray_and_memoryview_input() -> None:
    conn = connect()
    channel = open_channel(conn)
    data = deliver(channel, b"view")
    conn.receive_data(bytearray(data[:10]), 0.0)
    conn.receive_data(memoryview(data)[10:], 0.0)
    [delivery] = conn.events_received()
    assert isinstance(delivery, ev.DeliveryReceived)
    assert delivery.body == b"view"


def test_channel_state_enum_is_exported() -> None:
    assert {s.value for s in ChannelState} == {"opening", "open", "closing"}
