"""The sans-IO AMQP 0-9-1 connection: bytes and a clock in, bytes and events out.

This module holds all protocol logic of amqp-client and does no I/O: it
never imports socket, asyncio, threading, selectors or time (a test walks
its imports). The fronts (``amqp_client.aio``, ``amqp_client.blocking``)
feed it what the transport reads (``receive_data(data, now)``,
``receive_eof()``), wake it at ``next_deadline()`` (``handle_timers(now)``),
write what ``data_to_send()`` returns and act on ``events_received()``.

Commands (``open_channel``, ``call``, ``send``, ``publish``,
``close_channel``, ``close``) raise ``UsageError``/``ValueError``/
``TypeError`` at once for misuse or bad arguments and produce no bytes then.
Garbage from the peer never raises out of ``receive_data``: the core queues
connection.close with frame-error (501) or unexpected-frame (505), emits
``ConnectionTerminated`` carrying the typed error, and is CLOSED.

Rules it enforces (AMQP 0-9-1 §2.3, §4.2 and RabbitMQ's extensions):

* one synchronous request outstanding per channel; later requests, and the
  asynchronous methods and publishes made after them, wait in order;
* a reply is matched against the spec's responses of the outstanding
  request; any other reply is a 505;
* content is method, header, then body frames up to the body size, with no
  other frame of the same channel in between (505 otherwise);
* no frame larger than the negotiated frame_max (never unbounded: 0 on
  both sides becomes ``CLIENT_FRAME_MAX``) and no content header declaring
  more than ``max_message_size``: both are frame-error (501);
* publisher confirms number publishes from 1 after confirm.select;
* heartbeats: one is sent after half the negotiated interval without
  output; no input for two intervals is ``HeartbeatTimeout``.
"""

from __future__ import annotations

import heapq
import logging
import platform
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, cast

from amqp_client import auth, checks, spec
from amqp_client._spec_base import Method, Properties
from amqp_client.auth import Mechanism
from amqp_client.errors import (
    AMQPError,
    AuthenticationError,
    ConnectionLost,
    FrameDecodeError,
    FrameSequenceError,
    HeartbeatTimeout,
    ProtocolError,
    UsageError,
)
from amqp_client.frames import (
    FRAME_MIN_SIZE,
    HEARTBEAT_FRAME,
    PROTOCOL_HEADER,
    BodyFrame,
    ContentFrame,
    FrameReader,
    HeaderFrame,
    HeartbeatFrame,
    MethodFrame,
    content_frames,
    method_frame,
)
from amqp_client.protocol import events as ev
from amqp_client.protocol.states import (
    ACCEPTS,
    ChannelState,
    ConnectionState,
    ContentState,
)
from amqp_client.spec import ReplyCode

__all__ = [
    "CLIENT_FRAME_MAX",
    "DEFAULT_MAX_MESSAGE_SIZE",
    "Connection",
    "Mechanism",
    "negotiate",
]

log = logging.getLogger("amqp_client.protocol")

#: Largest channel id AMQP can carry; channel_max 0 means "no limit".
CHANNEL_MAX_LIMIT = 65535

#: Before connection.tune, RabbitMQ's own frames are small; accept up to its
#: default frame_max so a large server-properties table is not an error.
_PRE_TUNE_FRAME_MAX = 131072

#: The client's own frame_max (1 MiB), asked for in connection.tune-ok when
#: both sides said 0 ("no limit"): a broker must not make the client accept
#: 4 GiB frames. AMQP 0-9-1 §4.2.3 (connection.tune-ok, frame-max) lets the
#: client lower the server's value; RabbitMQ's default is 128 KiB.
CLIENT_FRAME_MAX = 1024 * 1024

#: The largest message body the client accepts by default (128 MiB,
#: RabbitMQ 3.x's own default max_message_size; RabbitMQ 4.x lowered its
#: own to 16 MiB). ``connect(max_message_size=...)`` changes it.
DEFAULT_MAX_MESSAGE_SIZE = 128 * 1024 * 1024

_CAPABILITIES: dict[str, object] = {
    "publisher_confirms": True,
    "exchange_exchange_bindings": True,
    "basic.nack": True,
    "consumer_cancel_notify": True,
    "connection.blocked": True,
    "authentication_failure_close": True,
    "per_consumer_qos": True,
    "direct_reply_to": True,
}

#: The classes whose methods :meth:`Connection._check_fits` looks at more
#: closely (connection's belong on channel 0, channel's open and close go
#: through open_channel()/close_channel()); any other class's methods need
#: no check beyond an open channel.
_CLASSES_CHECKED = frozenset({spec.ConnectionStart.CLASS_ID, spec.ChannelOpen.CLASS_ID})

#: Methods the broker sends on its own initiative on a channel; any other
#: method must be the reply to an outstanding request.
_SERVER_INITIATED = frozenset(
    {
        spec.BasicDeliver,
        spec.BasicReturn,
        spec.BasicAck,
        spec.BasicNack,
        spec.BasicCancel,
        spec.ChannelFlow,
        spec.ChannelClose,
    }
)


def negotiate(client: int, server: int, *, heartbeat: bool = False) -> int:
    """RabbitMQ's tune negotiation.

    channel_max and frame_max: the smaller non-zero value (0 means "no
    limit"). heartbeat: if either side is 0 the larger, else the smaller.
    """
    if heartbeat:
        return (
            max(client, server) if client == 0 or server == 0 else min(client, server)
        )
    if client == 0 or server == 0:
        return max(client, server)
    return min(client, server)


def _version() -> str:
    from amqp_client._version import __version__

    return __version__


class _Channel:
    """Per-channel protocol state (the front holds the user-facing object)."""

    __slots__ = (
        "body_size",
        "close_reason",
        "confirming",
        "content",
        "content_method",
        "content_properties",
        "held",
        "id",
        "next_tag",
        "parts",
        "pending",
        "received",
        "state",
        "unconfirmed",
    )

    def __init__(self, channel_id: int, state: ChannelState) -> None:
        self.id = channel_id
        self.state = state
        # Reply classes of the outstanding synchronous request, or None.
        self.pending: tuple[type[Method], ...] | None = None
        # What waits behind it, in order: a method to call, a method to send,
        # or ready frames (a publish).
        self.held: deque[_Held] = deque()
        self.content = ContentState.IDLE
        self.content_method: Method | None = None
        self.content_properties: Properties | None = None
        self.body_size = 0
        self.received = 0
        self.parts: list[bytes | memoryview] = []
        self.confirming = False
        self.next_tag = 1
        self.unconfirmed: dict[int, None] = {}
        self.close_reason: AMQPError | None = None


@dataclass(frozen=True, slots=True)
class _Held:
    """Frames that wait behind a channel's outstanding request, and the
    replies to await once they are written (None: a send or a publish)."""

    buffers: list[bytes | memoryview]
    awaits: tuple[type[Method], ...] | None = None


#: basic.publish's frames straight from its arguments (generated).
_publish_frames = spec.BasicPublish.frames


class Connection:
    """One AMQP connection's protocol state machine.

    Args:
        mechanism: the SASL mechanism (``amqp_client.auth``).
        vhost: the virtual host to open.
        heartbeat: wanted heartbeat in seconds; None or 0 takes the broker's.
        frame_max: wanted frame_max; 0 takes the broker's, and when the
            broker says 0 ("no limit") too, :data:`CLIENT_FRAME_MAX` (1 MiB)
            is sent in tune-ok and enforced on every frame received.
        channel_max: wanted channel_max; 0 takes the broker's.
        client_properties: extra client properties (merged over the defaults).
        connection_name: shown in the management UI.
        locale: the locale for broker messages.
        max_message_size: the largest body a content header may declare
            (basic.deliver, basic.get-ok, basic.return); a larger one ends
            the connection with ``FrameDecodeError`` (frame-error, 501)
            before any of the body is buffered. Default
            :data:`DEFAULT_MAX_MESSAGE_SIZE` (128 MiB).

    Raises:
        TypeError: an argument of the wrong type (a bool for an int too).
        ValueError: an argument out of range (``max_message_size`` < 1,
            frame_max, channel_max or heartbeat outside the wire's range),
            or a vhost, locale or client property that does not encode.
    """

    def __init__(
        self,
        *,
        mechanism: Mechanism,
        vhost: str = "/",
        heartbeat: int | None = None,
        frame_max: int = 0,
        channel_max: int = 0,
        client_properties: Mapping[str, Any] | None = None,
        connection_name: str | None = None,
        locale: str = "en_US",
        max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE,
    ) -> None:
        spec.ConnectionOpen(vhost)  # validates the vhost before any byte
        checks.optional_integer("heartbeat", heartbeat, 0, checks.U16_MAX)
        checks.frame_max(frame_max)
        checks.integer("channel_max", channel_max, 0, CHANNEL_MAX_LIMIT)
        if client_properties is not None and not isinstance(client_properties, Mapping):
            raise checks.type_error("client_properties", "a mapping", client_properties)
        checks.at_least_one("max_message_size", max_message_size)
        self._mechanism = mechanism
        self._vhost = vhost
        self._want_heartbeat = heartbeat or 0
        self._want_frame_max = frame_max
        self._want_channel_max = channel_max
        self._max_message_size = max_message_size
        self._locale = locale
        self._client_properties = self._build_client_properties(
            client_properties, connection_name
        )
        # Encode start-ok's fields now: a bad locale or client property
        # raises here, not when connection.start arrives.
        spec.ConnectionStartOk(
            mechanism.name, b"", locale, client_properties=self._client_properties
        ).encode()
        self.state = ConnectionState.INITIAL
        self._reader = FrameReader(_PRE_TUNE_FRAME_MAX, coalesce=True)
        self._out: list[bytes | memoryview] = []
        self._events: list[ev.Event] = []
        self._channels: dict[int, _Channel] = {}
        self._control = _Channel(0, ChannelState.OPEN)
        self._free_ids: list[int] = []
        self._next_id = 1
        self.channel_max = channel_max or CHANNEL_MAX_LIMIT
        self.frame_max = frame_max or _PRE_TUNE_FRAME_MAX
        self.heartbeat = 0
        self.server_properties: dict[str, Any] = {}
        self.blocked = False
        self.error: AMQPError | None = None
        self._close_reason: AMQPError | None = None
        self._now = 0.0
        self._last_received = 0.0
        self._last_sent = 0.0
        self._closing_by_client = False
        self._reading_paused = False

    # --- outputs ----------------------------------------------------------------

    def data_to_send(self) -> list[bytes | memoryview]:
        """Buffers to write, in order (large bodies are not copied)."""
        out = self._out
        if out:
            self._out = []
            self._last_sent = self._now
        return out

    def events_received(self) -> list[ev.Event]:
        """Events since the last call, in order."""
        events = self._events
        self._events = []
        return events

    def next_deadline(self) -> float | None:
        """When :meth:`handle_timers` must run next (heartbeats), or None."""
        if not self.heartbeat or self.state in (
            ConnectionState.INITIAL,
            ConnectionState.CLOSED,
        ):
            return None
        send_at = self._last_sent + self.heartbeat / 2
        if self._reading_paused:
            return send_at
        dead_at = self._last_received + 2 * self.heartbeat
        return min(send_at, dead_at)

    @property
    def is_open(self) -> bool:
        return self.state is ConnectionState.OPEN

    @property
    def is_closed(self) -> bool:
        return self.state is ConnectionState.CLOSED

    # --- inputs -----------------------------------------------------------------

    def initiate(self, now: float) -> None:
        """Start the handshake: queue the protocol header (§4.2.2)."""
        if self.state is not ConnectionState.INITIAL:
            raise UsageError("the connection was already initiated")
        self._now = self._last_received = self._last_sent = now
        self._out.append(PROTOCOL_HEADER)
        self.state = ConnectionState.AWAIT_START

    def receive_data(self, data: bytes | bytearray | memoryview, now: float) -> None:
        """Feed bytes read from the transport. Never raises for peer garbage."""
        self._now = self._last_received = now
        if self.state is ConnectionState.CLOSED or not data:
            return
        try:
            frames = self._reader.feed(data)
        except ProtocolError as exc:
            self._fail(exc)
            return
        try:
            closed = ConnectionState.CLOSED
            for frame in frames:
                self._handle_frame(frame)
                if self.state is closed:
                    break
        except ProtocolError as exc:
            self._fail(exc)

    def receive_eof(self) -> None:
        """The transport reached end of file (or broke)."""
        if self.state is ConnectionState.CLOSED:
            return
        if self.state is ConnectionState.CLOSING and self._closing_by_client:
            # The broker may drop the socket right after close-ok, or
            # without it: the close the client asked for is done either way.
            self._terminate(self._close_reason)
            return
        if self.state is ConnectionState.AWAIT_START:
            # Before connection.start: a peer that does not speak AMQP
            # 0-9-1, or the network (a proxy, a load balancer) let go.
            self._terminate(
                ConnectionLost(
                    "the connection closed before connection.start (not an "
                    "AMQP 0-9-1 broker, or the network dropped it)"
                )
            )
            return
        if self.state is ConnectionState.AWAIT_TUNE:
            # RabbitMQ drops the socket after start-ok for bad credentials
            # when the client does not offer authentication_failure_close.
            self._terminate(
                ConnectionLost(
                    "the broker closed the connection after the credentials "
                    "were sent (await-tune); wrong credentials?"
                )
            )
            return
        self._terminate(ConnectionLost("the broker closed the connection"))

    def reading_paused(self, paused: bool, now: float) -> None:
        """The front stopped (True) or resumed (False) reading the transport
        on purpose (its consumers fell behind). While it does not read, the
        broker's silence says nothing about its health, so the dead-peer
        deadline waits; heartbeats are still sent."""
        self._now = now
        if paused != self._reading_paused:
            self._reading_paused = paused
            if not paused:
                self._last_received = now

    def connection_lost(self, reason: str) -> None:
        """The front's transport failed (reset, timeout...)."""
        if self.state is not ConnectionState.CLOSED:
            self._terminate(ConnectionLost(reason))

    def handle_timers(self, now: float) -> None:
        """Send a heartbeat or declare the peer dead, as the clock says."""
        self._now = now
        if not self.heartbeat or self.state in (
            ConnectionState.INITIAL,
            ConnectionState.CLOSED,
        ):
            return
        if not self._reading_paused and now - self._last_received >= 2 * self.heartbeat:
            log.warning(
                "no data from the broker for %.1f s (heartbeat %d s): connection dead",
                now - self._last_received,
                self.heartbeat,
            )
            self._terminate(
                HeartbeatTimeout(
                    f"no data from the broker for {now - self._last_received:.1f} s "
                    f"(heartbeat {self.heartbeat} s)"
                )
            )
            return
        if now - self._last_sent >= self.heartbeat / 2:
            self._out.append(HEARTBEAT_FRAME)

    # --- commands ---------------------------------------------------------------

    def open_channel(self, channel_id: int | None = None) -> int:
        """Open the lowest free channel id, or ``channel_id`` (a recovering
        front reopens each channel on the id it had); ``ChannelOpened``
        follows."""
        self._require_open()
        if channel_id is not None:
            self._claim_channel_id(channel_id)
        elif self._free_ids:
            channel_id = heapq.heappop(self._free_ids)
        elif self._next_id <= self.channel_max:
            channel_id = self._next_id
            self._next_id += 1
        else:
            raise UsageError(
                f"all {self.channel_max} channels of this connection are in use"
            )
        self._channels[channel_id] = _Channel(channel_id, ChannelState.OPENING)
        self._write(method_frame(channel_id, spec.ChannelOpen()))
        return channel_id

    def _claim_channel_id(self, channel_id: int) -> None:
        if not 1 <= channel_id <= self.channel_max:
            raise UsageError(
                f"channel id {channel_id} is outside 1..{self.channel_max}"
            )
        if channel_id in self._channels:
            raise UsageError(f"channel {channel_id} is in use")
        if channel_id >= self._next_id:
            for free in range(self._next_id, channel_id):
                heapq.heappush(self._free_ids, free)
            self._next_id = channel_id + 1
        else:
            self._free_ids.remove(channel_id)
            heapq.heapify(self._free_ids)

    def _check_fits(self, channel: int, method: Method) -> None:
        """Refuse, before any byte, a method that cannot go where it was
        asked to: connection-class methods only on channel 0 (and only
        update-secret there: the rest are the handshake's and close()'s),
        no other class on channel 0, and channel.open/close only through
        open_channel()/close_channel()."""
        if channel == 0:
            if not isinstance(method, spec.ConnectionUpdateSecret):
                raise UsageError(f"{method.NAME} cannot be sent on channel 0 this way")
        elif method.CLASS_ID == spec.ConnectionStart.CLASS_ID:
            raise UsageError(
                f"{method.NAME} belongs on channel 0, not channel {channel}"
            )
        elif isinstance(method, spec.ChannelOpen | spec.ChannelClose):
            raise UsageError(f"use open_channel()/close_channel(), not {method.NAME}")

    def call(self, channel: int, method: Method) -> None:
        """Send a synchronous request; its reply comes as ``ReplyReceived``
        (``GetReceived`` for basic.get-ok) after the replies to earlier
        requests on the same channel.

        Raises:
            UsageError: the channel is not open, or the method has no reply.
        """
        if not method.RESPONSES:
            raise UsageError(f"{method.NAME} has no reply; use send()")
        ch = self._open_channel(channel, method)
        # Encode now, even when the request must wait behind another: a bad
        # argument raises to the caller here, never later out of
        # receive_data when the earlier reply arrives.
        frame = method_frame(channel, method)
        if isinstance(method, spec.ConfirmSelect):
            self._start_confirms(ch)
        if ch.pending is None and not ch.held:
            self._write(frame)
            ch.pending = method.RESPONSES
        else:
            ch.held.append(_Held([frame], method.RESPONSES))

    def send(self, channel: int, method: Method) -> None:
        """Send a method that expects no reply (or one sent with no-wait)."""
        if method.HAS_CONTENT:
            raise UsageError(f"{method.NAME} carries content; use publish()")
        ch = self._open_channel(channel, method)
        frame = method_frame(channel, method)  # before anything changes (see call)
        if isinstance(method, spec.ConfirmSelect):
            self._start_confirms(ch)
        if ch.held:
            ch.held.append(_Held([frame]))
        else:
            self._write(frame)

    def publish(
        self,
        channel: int,
        method: Method,
        properties: Properties | None,
        body: bytes | bytearray | memoryview,
    ) -> int | None:
        """Send a content-carrying method (basic.publish) with its content.

        Returns:
            The publish's delivery tag in confirm mode, else None.

        Raises:
            UsageError: the channel is not open.
            TypeError, ValueError: bad body or properties; nothing is sent.
        """
        if not method.HAS_CONTENT:
            raise UsageError(f"{method.NAME} carries no content; use send()")
        if properties is not None and not isinstance(properties, spec.BasicProperties):
            raise TypeError(
                "properties must be BasicProperties or None, not "
                f"{type(properties).__name__}"
            )
        ch = self._content_channel(channel)
        frames = content_frames(channel, method, properties, body, self.frame_max)
        return self._send_content(ch, frames)

    def basic_publish(
        self,
        channel: int,
        body: bytes | bytearray | memoryview,
        properties: spec.BasicProperties | None = None,
        exchange: str = "",
        routing_key: str = "",
        mandatory: bool = False,
        immediate: bool = False,
    ) -> int | None:
        """Send basic.publish with its content, made from the arguments.

        What ``publish(channel, BasicPublish(...), properties, body)`` does,
        without making the method object: the fronts' publish path.

        Returns:
            The publish's delivery tag in confirm mode, else None.

        Raises:
            UsageError: the channel is not open.
            TypeError, ValueError: a bad argument, body or properties;
                nothing is sent.
        """
        ch = self._content_channel(channel)
        frames = _publish_frames(
            channel,
            self.frame_max,
            properties,
            body,
            exchange,
            routing_key,
            mandatory=mandatory,
            immediate=immediate,
        )
        return self._send_content(ch, frames)

    def _content_channel(self, channel: int) -> _Channel:
        """The open channel a publish goes to (UsageError if it is not)."""
        ch = self._channels.get(channel)
        if (
            ch is None
            or ch.state is not ChannelState.OPEN
            or self.state is not ConnectionState.OPEN
        ):
            return self._usable(channel)
        return ch

    def _send_content(
        self, ch: _Channel, frames: list[bytes | memoryview]
    ) -> int | None:
        if ch.held:
            ch.held.append(_Held(frames))
        else:
            self._out.extend(frames)
        if ch.confirming:
            tag = ch.next_tag
            ch.next_tag = tag + 1
            ch.unconfirmed[tag] = None
            return tag
        return None

    def close_channel(
        self,
        channel: int,
        reply_code: int = ReplyCode.REPLY_SUCCESS,
        reply_text: str = "",
        class_id: int = 0,
        method_id: int = 0,
    ) -> None:
        """Start the channel close handshake; ``ChannelTerminated`` follows."""
        self._require_open()
        ch = self._channels.get(channel)
        if ch is None or ch.state is ChannelState.CLOSING:
            return
        close = spec.ChannelClose(reply_code, reply_text, class_id, method_id)
        ch.state = ChannelState.CLOSING
        ch.held.clear()
        if reply_code != ReplyCode.REPLY_SUCCESS:
            ch.close_reason = spec.channel_error(
                reply_code, reply_text, class_id, method_id
            )
        self._write(method_frame(channel, close))

    def close(
        self,
        reply_code: int = ReplyCode.REPLY_SUCCESS,
        reply_text: str = "",
        class_id: int = 0,
        method_id: int = 0,
    ) -> None:
        """Start the connection close handshake; ``ConnectionTerminated``
        follows close-ok (the front also gives up after a timeout)."""
        if self.state in (ConnectionState.CLOSED, ConnectionState.CLOSING):
            return
        if self.state is ConnectionState.INITIAL:
            self._terminate(None)
            return
        close = spec.ConnectionClose(reply_code, reply_text, class_id, method_id)
        self._closing_by_client = True
        if reply_code != ReplyCode.REPLY_SUCCESS:
            self._close_reason = spec.connection_error(
                reply_code, reply_text, class_id, method_id
            )
        self.state = ConnectionState.CLOSING
        self._write(method_frame(0, close))

    def unconfirmed(self, channel: int) -> list[int]:
        """Delivery tags still waiting for a confirm on ``channel``."""
        ch = self._channels.get(channel)
        return list(ch.unconfirmed) if ch is not None else []

    def channel_is_open(self, channel: int) -> bool:
        ch = self._channels.get(channel)
        return ch is not None and ch.state is ChannelState.OPEN

    # --- internals: commands ---------------------------------------------------------

    def _write(self, data: bytes) -> None:
        self._out.append(data)

    def _require_open(self) -> None:
        if self.state is not ConnectionState.OPEN:
            if self.error is not None:
                raise self.error
            raise UsageError(f"the connection is {self.state.value}, not open")

    def _open_channel(self, channel: int, method: Method) -> _Channel:
        """The open channel ``method`` may be sent on: :meth:`_check_fits`
        and :meth:`_usable` in one, the common case (an open channel of an
        open connection, a method of a class other than connection and
        channel's open and close) decided with two lookups."""
        ch = self._channels.get(channel)
        if (
            ch is not None
            and ch.state is ChannelState.OPEN
            and self.state is ConnectionState.OPEN
            and method.CLASS_ID not in _CLASSES_CHECKED
        ):
            return ch
        self._check_fits(channel, method)
        return self._usable(channel)

    def _usable(self, channel: int) -> _Channel:
        if channel == 0:
            self._require_open()
            return self._control
        self._require_open()
        ch = self._channels.get(channel)
        if ch is None:
            raise UsageError(f"channel {channel} is not open")
        if ch.state is not ChannelState.OPEN:
            raise UsageError(f"channel {channel} is {ch.state.value}")
        return ch

    def _start_confirms(self, ch: _Channel) -> None:
        # Everything after confirm.select on this channel is counted (the
        # broker numbers publishes from the select on, and everything on a
        # channel stays in order), so counting starts at the request.
        if not ch.confirming:
            ch.confirming = True
            ch.next_tag = 1

    def _drain(self, ch: _Channel) -> None:
        """Send what waited behind a request, up to the next request."""
        held = ch.held
        while held and ch.pending is None:
            item = held.popleft()
            self._out.extend(item.buffers)
            if item.awaits is not None:
                ch.pending = item.awaits

    # --- internals: input -------------------------------------------------------------

    def _handle_frame(
        self,
        frame: MethodFrame | HeaderFrame | BodyFrame | HeartbeatFrame | ContentFrame,
    ) -> None:
        channel = frame.channel
        if type(frame) is MethodFrame and channel:
            # The common case first: a method on an open channel (a reply,
            # a confirm), with the checks of the general path below.
            ch = self._channels.get(channel)
            if ch is not None and self.state is ConnectionState.OPEN:
                method = cast(Method, frame.method)
                if ch.content is not ContentState.IDLE:
                    self._check_between_contents(ch, method)
                self._handle_channel_method(ch, method)
                return
        if channel == 0:
            if isinstance(frame, MethodFrame | ContentFrame):
                self._handle_connection_method(cast(Method, frame.method))
                if isinstance(frame, ContentFrame):  # what its header would say
                    raise FrameSequenceError(
                        "a HeaderFrame on channel 0, which carries no content"
                    )
            elif not isinstance(frame, HeartbeatFrame):
                raise FrameSequenceError(
                    f"a {type(frame).__name__} on channel 0, which carries no content"
                )
            return
        if (
            self.state is not ConnectionState.OPEN
            and self.state is not ConnectionState.CLOSING
        ):
            raise FrameSequenceError(
                f"a frame on channel {channel} before the connection is open"
            )
        if self.state is ConnectionState.CLOSING:
            return  # after connection.close only close/close-ok count (§4.2.3.2)
        ch = self._channels.get(channel)
        if ch is None:
            raise FrameSequenceError(f"a frame on channel {channel}, which is not open")
        if isinstance(frame, ContentFrame):
            # What the three frames would do, in their order: the reader
            # only joins a method to a header of its class and a body of
            # the header's size, so the checks below still decide.
            method = cast(Method, frame.method)
            self._check_between_contents(ch, method)
            self._handle_channel_method(ch, method)
            body = frame.body
            self._handle_header(
                ch, method.CLASS_ID, len(body), cast(Properties, frame.properties)
            )
            if body:
                self._handle_body(ch, body)
        elif isinstance(frame, MethodFrame):
            method = cast(Method, frame.method)
            self._check_between_contents(ch, method)
            self._handle_channel_method(ch, method)
        elif isinstance(frame, HeaderFrame):
            self._handle_header(
                ch,
                frame.class_id,
                frame.body_size,
                cast(Properties, frame.properties),
            )
        elif isinstance(frame, BodyFrame):
            self._handle_body(ch, frame.payload)

    def _check_between_contents(self, ch: _Channel, method: Method) -> None:
        if ch.content is not ContentState.IDLE:
            raise FrameSequenceError(
                f"{method.NAME} on channel {ch.id} in the middle of "
                f"content (expected a content {ch.content.value[6:]} frame)"
            )

    def _handle_connection_method(self, method: Method) -> None:
        kind = type(method)
        if kind not in ACCEPTS[self.state]:
            if self.state is ConnectionState.CLOSING:
                return  # discarded while closing
            raise FrameSequenceError(
                f"unexpected {method.NAME} on channel 0 while the connection is "
                f"{self.state.value}"
            )
        if kind is spec.ConnectionStart:
            assert isinstance(method, spec.ConnectionStart)
            self._on_start(method)
        elif kind is spec.ConnectionSecure:
            assert isinstance(method, spec.ConnectionSecure)
            self._write(
                method_frame(
                    0,
                    spec.ConnectionSecureOk(
                        self._mechanism.challenge(method.challenge)
                    ),
                )
            )
        elif kind is spec.ConnectionTune:
            assert isinstance(method, spec.ConnectionTune)
            self._on_tune(method)
        elif kind is spec.ConnectionOpenOk:
            self.state = ConnectionState.OPEN
            log.debug("connection open (vhost %r)", self._vhost)
            self._events.append(
                ev.ConnectionOpened(
                    self.server_properties,
                    self.channel_max,
                    self.frame_max,
                    self.heartbeat,
                )
            )
        elif kind is spec.ConnectionClose:
            assert isinstance(method, spec.ConnectionClose)
            self._on_connection_close(method)
        elif kind is spec.ConnectionCloseOk:
            self._terminate(self._close_reason)
        elif kind is spec.ConnectionBlocked:
            assert isinstance(method, spec.ConnectionBlocked)
            self.blocked = True
            log.info("the broker blocked the connection: %s", method.reason)
            self._events.append(ev.ConnectionBlocked(method.reason))
        elif kind is spec.ConnectionUnblocked:
            self.blocked = False
            log.info("the broker unblocked the connection")
            self._events.append(ev.ConnectionUnblocked())
        else:  # a reply on channel 0 (update-secret-ok)
            self._reply(self._control, method)

    def _on_start(self, start: spec.ConnectionStart) -> None:
        if (start.version_major, start.version_minor) != (0, 9):
            raise FrameSequenceError(
                f"the broker speaks AMQP {start.version_major}-{start.version_minor}, "
                "not 0-9-1"
            )
        self.server_properties = start.server_properties
        try:
            name = auth.choose(start.mechanisms, self._mechanism.name)
        except AuthenticationError as exc:
            self._terminate(exc)
            return
        self._write(
            method_frame(
                0,
                spec.ConnectionStartOk(
                    name,
                    self._mechanism.response(),
                    self._locale,
                    client_properties=self._client_properties,
                ),
            )
        )
        self.state = ConnectionState.AWAIT_TUNE

    def _on_tune(self, tune: spec.ConnectionTune) -> None:
        self.channel_max = (
            negotiate(self._want_channel_max, tune.channel_max) or CHANNEL_MAX_LIMIT
        )
        self.channel_max = min(self.channel_max, CHANNEL_MAX_LIMIT)
        # Both sides saying 0 ("no limit") would let the broker send frames
        # of up to 4 GiB: ask for the client's own maximum instead, so both
        # sides agree on a bound the reader enforces (501 above it).
        frame_max = negotiate(self._want_frame_max, tune.frame_max) or CLIENT_FRAME_MAX
        self.frame_max = max(frame_max, FRAME_MIN_SIZE)
        self.heartbeat = negotiate(self._want_heartbeat, tune.heartbeat, heartbeat=True)
        self._reader.frame_max = self.frame_max
        self._write(
            method_frame(
                0,
                spec.ConnectionTuneOk(self.channel_max, self.frame_max, self.heartbeat),
            )
        )
        self._write(method_frame(0, spec.ConnectionOpen(self._vhost)))
        self.state = ConnectionState.AWAIT_OPEN_OK
        log.debug(
            "tuned: channel_max=%d frame_max=%d heartbeat=%d",
            self.channel_max,
            self.frame_max,
            self.heartbeat,
        )

    def _on_connection_close(self, close: spec.ConnectionClose) -> None:
        self._write(method_frame(0, spec.ConnectionCloseOk()))
        handshake = self.state in (
            ConnectionState.AWAIT_START,
            ConnectionState.AWAIT_TUNE,
            ConnectionState.AWAIT_OPEN_OK,
        )
        if self._closing_by_client and self.state is ConnectionState.CLOSING:
            self._terminate(self._close_reason)  # a simultaneous close
            return
        error: AMQPError
        if handshake and close.reply_code == ReplyCode.ACCESS_REFUSED:
            error = AuthenticationError(
                ReplyCode.ACCESS_REFUSED,
                close.reply_text,
                close.class_id,
                close.method_id,
            )
        else:
            error = spec.connection_error(
                close.reply_code, close.reply_text, close.class_id, close.method_id
            )
        if handshake:
            # The caller of connect() gets this error raised: no warning too.
            log.info("the broker refused the connection: %s", error)
        else:
            log.warning("the broker closed the connection: %s", error)
        self._terminate(error)

    def _handle_channel_method(self, ch: _Channel, method: Method) -> None:
        kind = type(method)
        if ch.state is ChannelState.CLOSING:
            if kind is spec.ChannelCloseOk:
                self._free(ch, ch.close_reason)
            elif kind is spec.ChannelClose:
                self._write(method_frame(ch.id, spec.ChannelCloseOk()))
                self._free(ch, ch.close_reason)
            elif method.HAS_CONTENT:
                self._start_content(ch, method)  # assembled, then dropped
            return
        if ch.state is ChannelState.OPENING and kind is not spec.ChannelClose:
            # Before open-ok nothing else can be meant for this channel: it
            # has no consumers, publishes or requests yet. (The broker may
            # still refuse the open with channel.close.)
            if kind is not spec.ChannelOpenOk:
                raise FrameSequenceError(
                    f"{method.NAME} on channel {ch.id} before channel.open-ok"
                )
            ch.state = ChannelState.OPEN
            self._events.append(ev.ChannelOpened(ch.id))
            return
        if kind is spec.BasicDeliver or kind is spec.BasicReturn:
            self._start_content(ch, method)
        elif kind is spec.BasicAck or kind is spec.BasicNack:
            self._on_confirm(ch, method)
        elif kind in _SERVER_INITIATED:
            if kind is spec.ChannelClose:
                assert isinstance(method, spec.ChannelClose)
                self._write(method_frame(ch.id, spec.ChannelCloseOk()))
                error = spec.channel_error(
                    method.reply_code,
                    method.reply_text,
                    method.class_id,
                    method.method_id,
                )
                log.info("the broker closed channel %d: %s", ch.id, error)
                self._free(ch, error)
            elif kind is spec.BasicCancel:
                assert isinstance(method, spec.BasicCancel)
                if not method.no_wait:
                    self._write(
                        method_frame(ch.id, spec.BasicCancelOk(method.consumer_tag))
                    )
                self._events.append(ev.ConsumerCancelled(ch.id, method.consumer_tag))
            elif kind is spec.ChannelFlow:
                assert isinstance(method, spec.ChannelFlow)
                self._write(
                    method_frame(ch.id, spec.ChannelFlowOk(active=method.active))
                )
                self._events.append(ev.ChannelFlowChanged(ch.id, method.active))
        elif method.HAS_CONTENT:  # basic.get-ok: a reply with content
            if ch.pending is None or kind not in ch.pending:
                raise FrameSequenceError(
                    f"unexpected {method.NAME} on channel {ch.id}: no basic.get is pending"
                )
            self._start_content(ch, method)
        else:
            self._reply(ch, method)

    def _reply(self, ch: _Channel, method: Method) -> None:
        pending = ch.pending
        if pending is None or type(method) not in pending:
            expected = " or ".join(c.NAME for c in pending) if pending else "no reply"
            raise FrameSequenceError(
                f"unexpected {method.NAME} on channel {ch.id} (expected {expected})"
            )
        ch.pending = None
        self._events.append(ev.ReplyReceived(ch.id, method))
        if ch.held:
            self._drain(ch)

    def _on_confirm(self, ch: _Channel, method: Method) -> None:
        assert isinstance(method, spec.BasicAck | spec.BasicNack)
        if not ch.confirming:
            raise FrameSequenceError(
                f"{method.NAME} from the broker on channel {ch.id}, which is not "
                "in confirm mode"
            )
        tag = method.delivery_tag
        unconfirmed = ch.unconfirmed
        if method.multiple:
            tags = []
            for pending_tag in unconfirmed:
                # multiple with delivery-tag 0 means "everything so far"
                # (AMQP 0-9-1 basic.ack, field multiple).
                if tag and pending_tag > tag:
                    break
                tags.append(pending_tag)
            for pending_tag in tags:
                del unconfirmed[pending_tag]
            confirmed = tuple(tags)
        elif tag in unconfirmed:
            del unconfirmed[tag]
            confirmed = (tag,)
        else:
            log.debug("confirm for unknown delivery tag %d on channel %d", tag, ch.id)
            return
        if not confirmed:
            return
        if isinstance(method, spec.BasicAck):
            self._events.append(ev.PublishAcked(ch.id, confirmed))
        else:
            self._events.append(ev.PublishNacked(ch.id, confirmed))

    def _start_content(self, ch: _Channel, method: Method) -> None:
        ch.content = ContentState.AWAIT_HEADER
        ch.content_method = method

    def _handle_header(
        self, ch: _Channel, class_id: int, body_size: int, properties: Properties
    ) -> None:
        if ch.content is not ContentState.AWAIT_HEADER:
            raise FrameSequenceError(
                f"a content header on channel {ch.id} without a content method before it"
            )
        method = ch.content_method
        assert method is not None
        if class_id != method.CLASS_ID:
            raise FrameSequenceError(
                f"content header of class {class_id} after {method.NAME}"
            )
        if body_size > self._max_message_size:
            # Refused before any body frame is buffered: the declared size is
            # the broker's word, and a 64-bit one (§4.2.6.1).
            raise FrameDecodeError(
                f"{method.NAME} on channel {ch.id} declares a body of "
                f"{body_size} bytes, over max_message_size "
                f"({self._max_message_size} bytes)"
            )
        ch.content_properties = properties
        ch.body_size = body_size
        ch.received = 0
        ch.parts = []
        if body_size == 0:
            self._finish_content(ch, b"")
        else:
            ch.content = ContentState.AWAIT_BODY

    def _handle_body(self, ch: _Channel, payload: bytes | memoryview) -> None:
        if ch.content is not ContentState.AWAIT_BODY:
            raise FrameSequenceError(
                f"a content body frame on channel {ch.id} without a header before it"
            )
        received = ch.received + len(payload)
        if received > ch.body_size:
            raise FrameDecodeError(
                f"content body on channel {ch.id} exceeds its declared size "
                f"({received} > {ch.body_size})"
            )
        if received == ch.body_size:
            # The body is assembled once, at its declared size: one join of
            # the frames' payloads (views of what was read, for large ones).
            if ch.parts:
                ch.parts.append(payload)
                body = b"".join(ch.parts)
                ch.parts = []
            else:
                body = payload if isinstance(payload, bytes) else bytes(payload)
            self._finish_content(ch, body)
        else:
            ch.parts.append(payload)
            ch.received = received

    def _finish_content(self, ch: _Channel, body: bytes) -> None:
        method = ch.content_method
        properties = ch.content_properties
        ch.content = ContentState.IDLE
        ch.content_method = None
        ch.content_properties = None
        assert isinstance(properties, spec.BasicProperties)
        if ch.state is ChannelState.CLOSING:
            return
        if isinstance(method, spec.BasicDeliver):
            self._events.append(ev.DeliveryReceived(ch.id, method, properties, body))
        elif isinstance(method, spec.BasicReturn):
            self._events.append(ev.ReturnReceived(ch.id, method, properties, body))
        elif isinstance(method, spec.BasicGetOk):
            ch.pending = None
            self._events.append(ev.GetReceived(ch.id, method, properties, body))
            self._drain(ch)

    # --- internals: endings -------------------------------------------------------------

    def _free(self, ch: _Channel, error: AMQPError | None) -> None:
        del self._channels[ch.id]
        heapq.heappush(self._free_ids, ch.id)
        self._events.append(ev.ChannelTerminated(ch.id, error))

    def _fail(self, error: ProtocolError) -> None:
        """The peer broke the protocol: close with its code, then stop."""
        log.error("protocol error, closing the connection: %s", error)
        text = str(error)[:255].encode("utf-8")[:255].decode("utf-8", "ignore")
        self._out.append(
            method_frame(0, spec.ConnectionClose(error.reply_code, text, 0, 0))
        )
        self._terminate(error)

    def _terminate(self, error: AMQPError | None) -> None:
        if self.state is ConnectionState.CLOSED:
            return
        self.state = ConnectionState.CLOSED
        self.error = error
        self._channels.clear()
        self._events.append(ev.ConnectionTerminated(error))

    # --- client properties ----------------------------------------------------------------

    @staticmethod
    def _build_client_properties(
        extra: Mapping[str, Any] | None, connection_name: str | None
    ) -> dict[str, Any]:
        props: dict[str, Any] = {
            "product": "amqp-client",
            "version": _version(),
            "platform": f"Python {platform.python_version()}",
            "information": "https://pypi.org/project/amqp-client/",
            "capabilities": dict(_CAPABILITIES),
        }
        if connection_name is not None:
            props["connection_name"] = connection_name
        if extra:
            for key, value in extra.items():
                if key == "capabilities" and isinstance(value, Mapping):
                    props["capabilities"].update(value)
                else:
                    props[key] = value
        return props
