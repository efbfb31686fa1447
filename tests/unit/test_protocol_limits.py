"""Unit tests of the core's bounds on what a broker can make it allocate
(issue 14 item 3): frame_max is never unbounded, and a content header that
declares more than ``max_message_size`` ends the connection before any of
the body is buffered.

Scripted bytes in, bytes and events out (``tests.support.scripted_peer``);
tests that take ``feed`` run whole, byte by byte, and with a partial frame
trailing each input.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import Any

import pytest

from amqp_client import auth, spec
from amqp_client.errors import FrameDecodeError
from amqp_client.protocol import Connection, ConnectionState
from amqp_client.protocol import events as ev
from amqp_client.session.connect import parse_connect
from tests.support.scripted_peer import (
    FEED_MODES,
    Feeder,
    body,
    connect,
    content,
    deliver,
    header,
    method,
    open_channel,
    sent_methods,
    start,
    tune,
)

#: The client's own frame_max when both sides say "no limit" (1 MiB), and
#: the default max_message_size (128 MiB): documented numbers, spelled out
#: here (``test_documented_limits`` checks the core agrees).
CLIENT_FRAME_MAX = 1024 * 1024
DEFAULT_MAX_MESSAGE_SIZE = 128 * 1024 * 1024


@pytest.fixture(params=FEED_MODES)
def feed(request: pytest.FixtureRequest) -> Feeder:
    """How scripted bytes reach the connection: whole, bytewise, trailing."""
    return Feeder(request.param)


def new(**kwargs: Any) -> Connection:
    kwargs.setdefault("mechanism", auth.Plain("guest", "guest"))
    return Connection(**kwargs)


def closed_with_501(conn: Connection) -> FrameDecodeError:
    """connection.close with frame-error (501) is the last thing queued, the
    last event is ConnectionTerminated with a FrameDecodeError, and the
    connection is CLOSED. Returns the error."""
    methods = sent_methods(conn)
    assert methods, "no connection.close queued"
    channel, close = methods[-1]
    assert channel == 0
    assert isinstance(close, spec.ConnectionClose)
    assert close.reply_code == 501
    events = conn.events_received()
    assert events and isinstance(events[-1], ev.ConnectionTerminated), events
    error = events[-1].error
    assert isinstance(error, FrameDecodeError), error
    assert error.reply_code == 501
    assert close.reply_text == str(error)[:255]
    assert not any(
        isinstance(e, ev.DeliveryReceived | ev.GetReceived | ev.ReturnReceived)
        for e in events
    ), events
    assert conn.state is ConnectionState.CLOSED
    assert conn.error is error
    return error


# -- frame_max ------------------------------------------------------------------------


def test_documented_limits() -> None:
    from amqp_client.protocol import core

    assert core.CLIENT_FRAME_MAX == CLIENT_FRAME_MAX
    assert core.DEFAULT_MAX_MESSAGE_SIZE == DEFAULT_MAX_MESSAGE_SIZE


def test_tune_frame_max_0_gets_the_clients_maximum_in_tune_ok(feed: Feeder) -> None:
    # Both sides "no limit" (AMQP 0-9-1 §4.2.3: the client may lower it).
    conn = new()
    conn.initiate(0.0)
    feed(conn, start())
    conn.data_to_send()
    feed(conn, tune(2047, 0, 0))
    assert sent_methods(conn) == [
        (0, spec.ConnectionTuneOk(2047, CLIENT_FRAME_MAX, 0)),
        (0, spec.ConnectionOpen("/")),
    ]
    feed(conn, method(0, spec.ConnectionOpenOk()))
    [opened] = conn.events_received()
    assert isinstance(opened, ev.ConnectionOpened)
    assert opened.frame_max == conn.frame_max == CLIENT_FRAME_MAX


def test_frame_over_the_clients_maximum_is_501(feed: Feeder) -> None:
    conn = connect(feed, frame_max=0)
    channel = open_channel(conn, feed)
    payload = CLIENT_FRAME_MAX - 8  # a frame of exactly CLIENT_FRAME_MAX
    feed(conn, method(channel, spec.BasicDeliver("ctag", 1)) + header(channel, 10**7))
    # One byte over: refused from the frame head alone, nothing buffered.
    feed(conn, struct.pack(">BHI", 3, channel, payload + 1))
    error = closed_with_501(conn)
    assert str(CLIENT_FRAME_MAX) in str(error)


def test_frame_of_exactly_the_clients_maximum_is_accepted_one_more_is_not() -> None:
    # Whole only: byte by byte would be a million calls.
    conn = connect(frame_max=0)
    channel = open_channel(conn)
    size = CLIENT_FRAME_MAX - 8
    conn.receive_data(
        method(channel, spec.BasicDeliver("ctag", 1))
        + header(channel, size)
        + body(channel, b"x" * size),
        0.0,
    )
    [delivered] = conn.events_received()
    assert isinstance(delivered, ev.DeliveryReceived)
    assert len(delivered.body) == size
    assert conn.is_open
    conn.receive_data(
        method(channel, spec.BasicDeliver("ctag", 2))
        + header(channel, size + 1)
        + body(channel, b"x" * (size + 1)),
        0.0,
    )
    closed_with_501(conn)


# -- max_message_size -----------------------------------------------------------------

LIMIT = 1000


def _deliver(conn: Connection, channel: int) -> spec.BasicDeliver:
    return spec.BasicDeliver("ctag", 1, "", "q")


def _get_ok(conn: Connection, channel: int) -> spec.BasicGetOk:
    conn.call(channel, spec.BasicGet("q"))
    conn.data_to_send()
    return spec.BasicGetOk(1, "", "q", 0)


def _return(conn: Connection, channel: int) -> spec.BasicReturn:
    return spec.BasicReturn(312, "NO_ROUTE", "", "q")


CONTENT_METHODS: dict[str, Callable[[Connection, int], Any]] = {
    "basic.deliver": _deliver,
    "basic.get-ok": _get_ok,
    "basic.return": _return,
}


@pytest.mark.parametrize("kind", sorted(CONTENT_METHODS))
def test_header_over_max_message_size_closes_before_the_body(
    feed: Feeder, kind: str
) -> None:
    conn = connect(feed, max_message_size=LIMIT)
    channel = open_channel(conn, feed)
    m = CONTENT_METHODS[kind](conn, channel)
    # The method and its header alone: no body frame was ever sent.
    feed(conn, method(channel, m) + header(channel, LIMIT + 1))
    error = closed_with_501(conn)
    text = str(error)
    assert str(LIMIT + 1) in text and str(LIMIT) in text.replace(str(LIMIT + 1), "")
    assert "max_message_size" in text and m.NAME in text
    # The body that follows is not read (the connection is over).
    feed(conn, body(channel, b"x" * (LIMIT + 1)))
    assert conn.events_received() == []
    assert conn.data_to_send() == []


def test_default_limit_refuses_a_huge_declared_size(feed: Feeder) -> None:
    # A broker declaring an 8 EiB body must not make the client wait for,
    # or buffer, any of it.
    conn = connect(feed)
    channel = open_channel(conn, feed)
    declared = 2**63
    feed(
        conn,
        method(channel, spec.BasicDeliver("ctag", 1)) + header(channel, declared),
    )
    error = closed_with_501(conn)
    assert str(declared) in str(error)
    assert str(DEFAULT_MAX_MESSAGE_SIZE) in str(error)


def test_whole_content_over_max_message_size_is_refused(feed: Feeder) -> None:
    # Fed whole, the reader joins method, header and body into one frame:
    # the limit holds on that path too.
    conn = connect(feed, max_message_size=LIMIT)
    channel = open_channel(conn, feed)
    feed(conn, deliver(channel, b"x" * (LIMIT + 1)))
    closed_with_501(conn)


@pytest.mark.parametrize("kind", sorted(CONTENT_METHODS))
def test_exactly_max_message_size_is_accepted(feed: Feeder, kind: str) -> None:
    conn = connect(feed, max_message_size=LIMIT)
    channel = open_channel(conn, feed)
    m = CONTENT_METHODS[kind](conn, channel)
    payload = bytes(range(250)) * (LIMIT // 250)
    feed(conn, content(channel, m, payload))
    [event] = conn.events_received()
    assert isinstance(event, ev.DeliveryReceived | ev.GetReceived | ev.ReturnReceived)
    assert event.body == payload
    assert conn.is_open


@pytest.mark.parametrize(
    ("value", "error", "message"),
    [
        (0, ValueError, "max_message_size: must be at least 1, got 0"),
        (-1, ValueError, "max_message_size: must be at least 1, got -1"),
        (True, TypeError, "max_message_size: expected int, got bool"),
        ("x", TypeError, "max_message_size: expected int, got str"),
        (1.5, TypeError, "max_message_size: expected int, got float"),
        (None, TypeError, "max_message_size: expected int, got NoneType"),
    ],
)
def test_bad_max_message_size_refused_by_the_core(
    value: object, error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        new(max_message_size=value)


@pytest.mark.parametrize(
    ("value", "error", "message"),
    [
        (0, ValueError, "max_message_size: must be at least 1"),
        (True, TypeError, "max_message_size: expected int, got bool"),
        ("x", TypeError, "max_message_size: expected int, got str"),
    ],
)
def test_bad_max_message_size_refused_by_connect(
    value: object, error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        parse_connect(None, {"max_message_size": value})  # type: ignore[typeddict-item]


def test_connect_keyword_reaches_the_options() -> None:
    _, options = parse_connect(None, {"max_message_size": 1024})
    assert options.max_message_size == 1024
    _, options = parse_connect(None, {})
    assert options.max_message_size == DEFAULT_MAX_MESSAGE_SIZE
