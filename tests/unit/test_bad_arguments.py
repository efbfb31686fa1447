"""Bad arguments raise ``TypeError``/``ValueError`` naming the field, and no
byte reaches the wire (DESIGN.md §4 "Errors").

The cases are generated from the ``FIELDS`` descriptors of every method the
client sends (a method whose generated docstring says "sent by the client"),
so a method added to an overlay is covered with no change here. Each case
goes the way the fronts send it, through a sans-IO core that finished a
scripted handshake and has a channel open:

* channel methods: construct the method, then ``core.call`` (a synchronous
  request) or ``core.send`` (no reply); basic.publish goes through
  ``core.basic_publish``, which takes the fields as arguments and makes no
  method object (the publish tests below also try ``core.publish`` with a
  constructed method);
* channel.close and connection.close: ``core.close_channel`` and
  ``core.close``, which build the method from their arguments;
* connection.update-secret: ``core.call`` on channel 0;
* the handshake's methods (start-ok, tune-ok, open): the fronts take those
  values as ``connect()`` keywords, validated by
  ``uri.ConnectionParameters.with_overrides`` before any socket exists; the
  SASL fields (mechanism, response) come from ``amqp_client.auth``, so only
  the method's own constructor is checked for them.

Every bad value must raise the expected type with a message naming the
field (and, inside a field table, the key path such as
``arguments['a']['b']``); afterwards the core has queued nothing, emitted
no event, and still works: a valid request goes out at once.

The core encodes each request when it is issued, even one that must wait
behind another on its channel, checks that publish's properties are
``BasicProperties``, and checks its own handshake arguments in its
constructor: the tests below that cover those came first, as pinned bugs.
"""

from __future__ import annotations

import datetime
import decimal
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from amqp_client import auth, spec, uri
from amqp_client._spec_base import Field, Method, check_int
from amqp_client.protocol import Connection, ConnectionState
from amqp_client.protocol import events as ev
from tests.support.scripted_peer import (
    connect,
    method,
    open_channel,
    sent_frames,
    sent_methods,
    valid_kwargs,
)

# -- which methods the client sends --------------------------------------------------------

_SENDERS = re.compile(r"; sent by the (client and server|client|server);")


def senders(cls: type[Method]) -> str:
    """Who sends ``cls``, from its generated docstring (the spec's chassis)."""
    match = _SENDERS.search(" ".join((cls.__doc__ or "").split()))
    assert match is not None, f"{cls.NAME}: no 'sent by' line in its docstring"
    return match.group(1)


CLIENT_SENT: tuple[type[Method], ...] = tuple(
    cls for cls in spec.METHODS.values() if "client" in senders(cls)
)

#: The handshake methods' fields the fronts take as connect() keywords.
CONNECT_KEYWORDS = {
    (spec.ConnectionOpen, "virtual_host"): "vhost",
    (spec.ConnectionStartOk, "client_properties"): "client_properties",
    (spec.ConnectionStartOk, "locale"): "locale",
    (spec.ConnectionTuneOk, "channel_max"): "channel_max",
    (spec.ConnectionTuneOk, "frame_max"): "frame_max",
    (spec.ConnectionTuneOk, "heartbeat"): "heartbeat",
}

#: Handshake methods the core builds itself (from connect() keywords and
#: the SASL mechanism); the user never passes them to call/send.
HANDSHAKE = (
    spec.ConnectionStartOk,
    spec.ConnectionSecureOk,
    spec.ConnectionTuneOk,
    spec.ConnectionOpen,
)


def route(cls: type[Method], field: Field) -> str:
    """How the fronts send ``cls`` (see the module docstring)."""
    if (cls, field.name) in CONNECT_KEYWORDS:
        return "connect"
    if cls in HANDSHAKE:
        return "construct"
    if cls is spec.ConnectionClose:
        return "close"
    if cls is spec.ChannelClose:
        return "close_channel"
    if cls is spec.ConnectionUpdateSecret:
        return "call0"
    if cls.CLASS_ID == spec.ConnectionStart.CLASS_ID:
        raise AssertionError(f"no route for {cls.NAME}: a new connection method?")
    if cls.HAS_CONTENT:
        return "publish"
    return "call" if cls.RESPONSES else "send"


# -- bad values by AMQP type -----------------------------------------------------------------


@dataclass(frozen=True)
class Bad:
    """A bad value, the exception it must raise, and the key path (inside a
    field table) the message must show after the field name."""

    label: str
    value: Any
    error: type[Exception]
    path: str = ""


def _self_containing() -> dict[str, Any]:
    table: dict[str, Any] = {"a": 1}
    table["self"] = table
    return table


_INT_BITS = {"octet": 8, "short": 16, "long": 32, "longlong": 64}
_OLD = datetime.datetime(1969, 12, 31, 23, 59, tzinfo=datetime.UTC)

BAD_VALUES: dict[str, list[Bad]] = {
    "shortstr": [
        Bad("int", 5, TypeError),
        Bad("bytes", b"name", TypeError),
        Bad("256-ascii-bytes", "a" * 256, ValueError),
        Bad("256-utf8-bytes", "\u00e9" * 128, ValueError),
        Bad("lone-surrogate", "\ud800", ValueError),
    ],
    "longstr": [
        Bad("str", "text", TypeError),
        Bad("int", 5, TypeError),
    ],
    **{
        amqp_type: [
            Bad("str", "1", TypeError),
            Bad("float", 1.5, TypeError),
            # bool is an int subclass; True for a tag or a count is a mistake.
            Bad("bool", True, TypeError),
            Bad("negative", -1, ValueError),
            Bad("max+1", 1 << bits, ValueError),
        ]
        for amqp_type, bits in _INT_BITS.items()
    },
    "bit": [
        Bad("str", "yes", TypeError),
        Bad("int-2", 2, TypeError),
        Bad("none", None, TypeError),
    ],
    "table": [
        Bad("list", [("a", 1)], TypeError),
        Bad("str", "a=1", TypeError),
        Bad("object", {"a": object()}, TypeError, "['a']"),
        Bad("nested-set", {"a": {"b": {1, 2}}}, TypeError, "['a']['b']"),
        Bad("int-over-int64-in-array", {"a": [1, 2**64]}, ValueError, "['a'][1]"),
        Bad("int-key", {"ok": 1, 1: "x"}, TypeError),
        Bad("256-byte-key", {"k" * 256: 1}, ValueError),
        Bad("lone-surrogate", {"a": {"b": "\ud800"}}, ValueError, "['a']['b']"),
        Bad("datetime-before-1970", {"when": _OLD}, ValueError, "['when']"),
        Bad("decimal-scale", {"d": decimal.Decimal("1e-300")}, ValueError, "['d']"),
        Bad("contains-itself", _self_containing(), ValueError, "['self']"),
    ],
    "timestamp": [
        Bad("str", "2020-01-01", TypeError),
        Bad("float", 1.5, TypeError),
        Bad("negative", -1, ValueError),
        Bad("over-uint64", 2**64, ValueError),
        Bad("datetime-before-1970", _OLD, ValueError),
    ],
}


# -- the core, set up as the fronts have it ----------------------------------------------------


def open_core() -> tuple[Connection, int]:
    """A core after a scripted handshake, with channel 1 open; drained."""
    conn = connect()
    return conn, open_channel(conn)


def issue(
    conn: Connection, channel: int, cls: type[Method], kwargs: dict[str, Any]
) -> None:
    """Send ``cls(**kwargs)`` the way the fronts do (see :func:`route`)."""
    how = route(cls, cls.FIELDS[0])
    if how == "close":
        conn.close(**kwargs)
    elif how == "close_channel":
        conn.close_channel(channel, **kwargs)
    elif how == "call0":
        conn.call(0, cls(**kwargs))
    elif how == "publish":
        assert cls is spec.BasicPublish, f"{cls.NAME}: a new client content method?"
        conn.basic_publish(channel, b"body", None, **kwargs)
    elif how == "call":
        conn.call(channel, cls(**kwargs))
    else:
        conn.send(channel, cls(**kwargs))


def assert_nothing_sent_and_still_works(conn: Connection, channel: int) -> None:
    """No byte and no event came of the bad call; a valid request goes out
    at once (so no half-made request is pending or queued)."""
    assert conn.data_to_send() == []
    assert conn.events_received() == []
    assert conn.state is ConnectionState.OPEN
    assert conn.channel_is_open(channel)
    qos = spec.BasicQos(prefetch_count=7)
    conn.call(channel, qos)
    assert sent_methods(conn) == [(channel, qos)]


def assert_names(exc: BaseException, *names: str) -> None:
    message = str(exc)
    assert any(name in message for name in names), (names, message)


# -- the cases ----------------------------------------------------------------------------------


def method_cases() -> Iterator[Any]:
    for cls in CLIENT_SENT:
        for field in cls.FIELDS:
            for bad in BAD_VALUES[field.type]:
                yield pytest.param(
                    cls, field, bad, id=f"{cls.NAME}.{field.name}-{bad.label}"
                )


#: Bad values tried behind a pending request: two of each type (the
#: scalar ones fail in the constructor; the table ones only in encode()).
PIPELINED_LABELS = frozenset(
    {
        "int",
        "256-ascii-bytes",
        "str",
        "negative",
        "int-2",
        "object",
        "int-over-int64-in-array",
    }
)


def pipelined_cases() -> Iterator[Any]:
    for cls in CLIENT_SENT:
        for field in cls.FIELDS:
            if route(cls, field) not in ("call", "send"):
                continue
            # A request with no-wait set is sent with send(), as the fronts do.
            no_wait = (
                [False, True] if "no_wait" in {f.name for f in cls.FIELDS} else [False]
            )
            for flag in no_wait:
                for bad in BAD_VALUES[field.type]:
                    if bad.label not in PIPELINED_LABELS or (
                        flag and field.name == "no_wait"
                    ):
                        continue
                    suffix = "-no-wait" if flag else ""
                    yield pytest.param(
                        cls,
                        field,
                        bad,
                        flag,
                        id=f"{cls.NAME}.{field.name}-{bad.label}{suffix}",
                    )


def property_cases() -> Iterator[Any]:
    for field in spec.BasicProperties.FIELDS:
        for bad in BAD_VALUES[field.type]:
            yield pytest.param(field, bad, id=f"{field.name}-{bad.label}")


# -- tests ------------------------------------------------------------------------------------------


def test_the_client_sent_methods_are_found() -> None:
    names = {cls.NAME for cls in CLIENT_SENT}
    assert {
        "queue.declare",
        "basic.publish",
        "basic.ack",
        "channel.close",
        "connection.update-secret",
        "connection.start-ok",
    } <= names
    assert not names & {"basic.deliver", "queue.declare-ok", "connection.start"}
    # Every client-sent method with fields gets cases; every field type has
    # bad values.
    assert all(f.type in BAD_VALUES for cls in CLIENT_SENT for f in cls.FIELDS)
    assert sum(1 for _ in method_cases()) > 300


@pytest.mark.parametrize(("cls", "field", "bad"), list(method_cases()))
def test_bad_field_raises_and_sends_nothing(
    cls: type[Method], field: Field, bad: Bad
) -> None:
    how = route(cls, field)
    if how == "connect":
        keyword = CONNECT_KEYWORDS[cls, field.name]
        params = uri.parse_url("amqp://guest:guest@localhost/")
        with pytest.raises(bad.error) as info:
            params.with_overrides(**{keyword: bad.value})
        assert_names(info.value, f"{keyword}{bad.path}", f"{field.name}{bad.path}")
        return
    kwargs = {**valid_kwargs(cls), field.name: bad.value}
    if how == "construct":
        with pytest.raises(bad.error) as info:
            cls(**kwargs).encode()
        assert_names(info.value, f"{field.name}{bad.path}")
        return
    conn, channel = open_core()
    with pytest.raises(bad.error) as info:
        issue(conn, channel, cls, kwargs)
    assert_names(info.value, f"{field.name}{bad.path}")
    assert_nothing_sent_and_still_works(conn, channel)


@pytest.mark.parametrize(("cls", "field", "bad", "no_wait"), list(pipelined_cases()))
def test_bad_field_behind_a_pending_request(
    cls: type[Method], field: Field, bad: Bad, no_wait: bool
) -> None:
    """Requests already wait on the channel (asyncio.gather of requests,
    two threads on one blocking channel): one for its reply, one queued
    behind it. The bad request must still raise at once, and the replies to
    the others must be processed normally afterwards."""
    conn, channel = open_core()
    first, second = spec.QueueDeclare("first"), spec.QueueDeclare("second")
    conn.call(channel, first)
    conn.call(channel, second)  # queued behind the first
    assert sent_methods(conn) == [(channel, first)]
    kwargs = {**valid_kwargs(cls), field.name: bad.value}
    with pytest.raises(bad.error) as info:
        if no_wait:
            conn.send(channel, cls(**{**kwargs, "no_wait": True}))
        else:
            issue(conn, channel, cls, kwargs)
    assert_names(info.value, f"{field.name}{bad.path}")
    assert conn.data_to_send() == []
    for name, nxt in (("first", [(channel, second)]), ("second", [])):
        reply = spec.QueueDeclareOk(name, 0, 0)
        conn.receive_data(method(channel, reply), 1.0)  # must not raise
        assert conn.events_received() == [ev.ReplyReceived(channel, reply)]
        assert sent_methods(conn) == nxt
    assert_nothing_sent_and_still_works(conn, channel)


def publish(
    conn: Connection, channel: int, how: str, properties: Any, body: Any
) -> int | None:
    """basic.publish as the fronts send it (``core.basic_publish``, no method
    object) or with a constructed method (``core.publish``)."""
    if how == "fields":
        return conn.basic_publish(channel, body, properties, "", "q")
    return conn.publish(channel, spec.BasicPublish("", "q"), properties, body)


PUBLISH_WAYS = pytest.mark.parametrize("how", ["fields", "method"])


@PUBLISH_WAYS
@pytest.mark.parametrize(("field", "bad"), list(property_cases()))
def test_bad_property_raises_and_sends_nothing(
    field: Field, bad: Bad, how: str
) -> None:
    conn, channel = open_core()
    with pytest.raises(bad.error) as info:
        properties = spec.BasicProperties(**{field.name: bad.value})
        publish(conn, channel, how, properties, b"body")
    assert_names(info.value, f"{field.name}{bad.path}")
    assert_nothing_sent_and_still_works(conn, channel)


@pytest.mark.parametrize(
    "body",
    ["text", 5, None, [1, 2], 1.5],
    ids=["str", "int", "none", "list", "float"],
)
@PUBLISH_WAYS
def test_body_that_is_not_bytes_raises_type_error(body: Any, how: str) -> None:
    conn, channel = open_core()
    with pytest.raises(TypeError, match="body"):
        publish(conn, channel, how, None, body)
    assert_nothing_sent_and_still_works(conn, channel)


@PUBLISH_WAYS
def test_a_refused_publish_takes_no_delivery_tag(how: str) -> None:
    """In confirm mode a publish that raised must not count: the next one
    is still delivery tag 1, as the broker numbers it."""
    conn, channel = open_core()
    conn.call(channel, spec.ConfirmSelect())
    conn.receive_data(method(channel, spec.ConfirmSelectOk()), 0.0)
    conn.data_to_send()
    conn.events_received()
    bad = spec.BasicProperties(headers={"x": object()})
    with pytest.raises(TypeError, match=r"headers\['x'\]"):
        publish(conn, channel, how, bad, b"body")
    assert conn.data_to_send() == []
    assert conn.unconfirmed(channel) == []
    tag = publish(conn, channel, how, None, b"body")
    assert tag == 1
    assert len(sent_frames(conn)) == 3  # method, header, body


@pytest.mark.parametrize(
    "properties",
    [{"content_type": "text/plain"}, spec.BasicQos(prefetch_count=1)],
    ids=["dict", "a-method"],
)
@PUBLISH_WAYS
def test_properties_that_are_not_basic_properties_raise_type_error(
    properties: Any, how: str
) -> None:
    conn, channel = open_core()
    with pytest.raises(TypeError, match="properties"):
        publish(conn, channel, how, properties, b"body")
    assert_nothing_sent_and_still_works(conn, channel)


@pytest.mark.parametrize(
    ("keyword", "value", "error", "path"),
    [
        ("client_properties", {"x": object()}, TypeError, "client_properties['x']"),
        ("client_properties", [("a", 1)], TypeError, "client_properties"),
        ("locale", "x" * 256, ValueError, "locale"),
        ("heartbeat", 1.5, TypeError, "heartbeat"),
        ("channel_max", "1", TypeError, "channel_max"),
    ],
    ids=[
        "client_properties-object",
        "client_properties-list",
        "locale-256",
        "heartbeat-float",
        "channel_max-str",
    ],
)
def test_core_checks_its_handshake_arguments_up_front(
    keyword: str, value: Any, error: type[Exception], path: str
) -> None:
    """The exact type, and a message that opens with the field (and the key
    path inside a table)."""
    with pytest.raises(error, match=rf"^{re.escape(path)}[ :]") as info:
        Connection(mechanism=auth.Plain("guest", "guest"), **{keyword: value})
    assert type(info.value) is error


def test_a_bad_value_set_after_construction_raises_at_call() -> None:
    """Methods are mutable: a bad value assigned later is caught by encode()
    when the core writes the frame, still before any byte, naming the field."""
    conn, channel = open_core()
    declare = spec.QueueDeclare("q")
    declare.queue = "q" * 300
    with pytest.raises(ValueError, match="queue"):
        conn.call(channel, declare)
    bind = spec.QueueBind("q", "ex")
    bind.arguments = {"a": {"b": object()}}
    with pytest.raises(TypeError, match=r"arguments\['a'\]\['b'\]"):
        conn.call(channel, bind)
    ack = spec.BasicAck(1)
    ack.delivery_tag = -1
    with pytest.raises(ValueError, match="delivery_tag"):
        conn.send(channel, ack)
    assert_nothing_sent_and_still_works(conn, channel)


@pytest.mark.parametrize(
    "make",
    [
        lambda: spec.BasicAck(True),
        lambda: spec.BasicAck(delivery_tag=False),
        lambda: spec.BasicQos(prefetch_count=True),
        lambda: spec.BasicProperties(priority=True),
        lambda: spec.BasicProperties(delivery_mode=False),
        lambda: check_int(True, "n", "octet"),
    ],
    ids=[
        "ack-positional",
        "ack-false",
        "qos",
        "priority",
        "delivery_mode",
        "check_int",
    ],
)
def test_bool_is_not_an_amqp_integer(make: Any) -> None:
    """bool is an int subclass, so an ``isinstance(n, int)`` check lets
    ``True`` through as 1; every integer field refuses it instead."""
    with pytest.raises(TypeError, match="must be int, not bool"):
        make()


def test_int_subclasses_other_than_bool_are_converted() -> None:
    """An IntEnum (ReplyCode) is still a number: taken, stored as a plain int."""
    close = spec.ChannelClose(spec.ReplyCode.NOT_FOUND, "gone", 0, 0)
    assert type(close.reply_code) is int
    assert close.reply_code == 404
    assert check_int(spec.ReplyCode.NOT_FOUND, "n", "short") == 404
