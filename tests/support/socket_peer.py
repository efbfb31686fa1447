"""A scripted AMQP 0-9-1 broker on a real socket, for unit tests of the fronts.

For unit tests only: integration tests talk to a real RabbitMQ. Where
:mod:`tests.support.scripted_peer` feeds bytes straight into the sans-IO
core, this module puts the same broker bytes (built with the generated
codecs, through ``scripted_peer``'s builders) on a TCP socket, so that the
asyncio and blocking fronts are exercised whole: their transports, read
pauses, timers and threads.

A :class:`ScriptedBroker` listens on 127.0.0.1 (an ephemeral port; its
:attr:`~ScriptedBroker.url` is what ``connect()`` takes) and accepts any
number of connections, one after the other or at once (a recovering client
comes back on a second one). Each accepted socket is a
:class:`ScriptedConnection` that

* performs the handshake (start / start-ok / tune / tune-ok / open /
  open-ok) and answers the client's requests as RabbitMQ would, with the
  reply the spec lists for each (channel.open-ok, queue.declare-ok with the
  name or a generated ``amq.gen-N``, basic.consume-ok with the tag or a
  generated ``amq.ctag-N``, basic.cancel-ok, basic.qos-ok,
  confirm.select-ok, channel.close-ok, connection.close-ok followed by the
  end of the stream, basic.get-empty, and the spec's first response, with
  default fields, for any other synchronous method); a no-wait request gets
  no reply, and :meth:`~ScriptedConnection.hold` keeps the replies to one
  method back until :meth:`~ScriptedConnection.release`;
* records every method the client sent, in order, with the content of
  basic.publish (:attr:`~ScriptedConnection.received`), so a test can
  assert e.g. which basic.reject frames went out;
* pushes broker-initiated traffic on demand: basic.deliver with its
  content (:meth:`~ScriptedConnection.deliver`), publisher confirms
  (:meth:`~ScriptedConnection.ack`), a server-sent basic.cancel or
  channel.close, any method (:meth:`~ScriptedConnection.send`), and the
  loss of the TCP connection (:meth:`~ScriptedConnection.drop`).

Threads: one accepting thread per broker; a reading and a writing thread
per connection, so a push never blocks the test (a client that paused
reading only stalls the writing thread) and a reply never waits for a push
to be read. Every wait is bounded: the ``wait_*`` methods take a timeout
(default :data:`STEP`) and fail with an ``AssertionError`` that lists what
was received; every socket operation has a timeout. ``close()`` (or leaving
the ``with`` block) shuts every socket and joins every thread.

Usable from both kinds of test: the ``wait_*`` methods block the calling
thread (a blocking test), their ``*_async`` twins poll with
``asyncio.sleep`` (an asyncio test, whose event loop must keep running);
pushes only queue bytes and never block. :func:`wait_until` and
:func:`wait_until_async` poll any predicate the same way (for the client's
own state).

Usage::

    with ScriptedBroker() as broker:
        with amqp_client.blocking.connect(broker.url) as conn:
            peer = broker.wait_connection()
            ch = conn.channel()
            consumer = ch.basic_consume("q")
            peer.deliver(ch.channel_id, consumer.consumer_tag, b"hi")
            assert consumer.get(timeout=1).body == b"hi"
            peer.wait_method(spec.BasicAck)
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import itertools
import queue
import select
import socket
import threading
import time
from collections.abc import Callable
from types import TracebackType
from typing import Any, Final, TypeVar

from amqp_client import spec
from amqp_client._spec_base import Method, Properties
from amqp_client.errors import FrameDecodeError
from amqp_client.frames import (
    PROTOCOL_HEADER,
    BodyFrame,
    ContentFrame,
    FrameReader,
    HeaderFrame,
    HeartbeatFrame,
    MethodFrame,
)
from tests.support import scripted_peer as sp

__all__ = [
    "STEP",
    "Received",
    "ScriptedBroker",
    "ScriptedConnection",
    "wait_until",
    "wait_until_async",
]

#: Default bound of every wait, seconds.
STEP: Final = 2.0
#: How often the threads look at their stop flag, seconds.
_TICK: Final = 0.02
#: How often the asynchronous waits poll, seconds.
_POLL: Final = 0.002
#: Bound of one socket operation (a send to a client that stopped reading).
_SOCKET_TIMEOUT: Final = 10.0
#: Bound of joining a thread at close.
_JOIN_TIMEOUT: Final = 5.0

_M = TypeVar("_M", bound=Method)


# --- waiting ---------------------------------------------------------------------------


def wait_until(
    predicate: Callable[[], bool],
    *,
    timeout: float = STEP,
    what: str = "the condition",
    detail: Callable[[], str] = lambda: "",
) -> None:
    """Block until ``predicate()`` is true, polling.

    Raises:
        AssertionError: still false after ``timeout`` seconds (the message
            says ``what`` and ``detail()``).
    """
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() >= deadline:
            raise AssertionError(_timed_out(what, timeout, detail()))
        time.sleep(_POLL)


async def wait_until_async(
    predicate: Callable[[], bool],
    *,
    timeout: float = STEP,
    what: str = "the condition",
    detail: Callable[[], str] = lambda: "",
) -> None:
    """:func:`wait_until` for a coroutine: the event loop runs meanwhile.

    Raises:
        AssertionError: still false after ``timeout`` seconds.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        if loop.time() >= deadline:
            raise AssertionError(_timed_out(what, timeout, detail()))
        await asyncio.sleep(_POLL)


def _timed_out(what: str, timeout: float, detail: str) -> str:
    message = f"timed out after {timeout} s waiting for {what}"
    return f"{message}; {detail}" if detail else message


# --- what the client sent --------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Received:
    """One method the client sent, with its content for basic.publish."""

    channel: int
    method: Method
    properties: spec.BasicProperties | None = None
    body: bytes | None = None

    @property
    def name(self) -> str:
        """The method's name (``"queue.declare"``)."""
        return self.method.NAME

    def __repr__(self) -> str:
        content = "" if self.body is None else f" +{len(self.body)} bytes"
        return f"<{self.channel}: {self.method!r}{content}>"


@dataclasses.dataclass
class _Content:
    """A basic.publish being assembled from its frames."""

    method: Method
    properties: spec.BasicProperties | None = None
    size: int = -1
    parts: list[bytes] = dataclasses.field(default_factory=list)
    received: int = 0


# --- one connection --------------------------------------------------------------------


class ScriptedConnection:
    """One client connection accepted by a :class:`ScriptedBroker`.

    Created by the broker; tests get it from
    :meth:`ScriptedBroker.wait_connection`.
    """

    def __init__(self, sock: socket.socket, broker: ScriptedBroker, index: int) -> None:
        self.broker = broker
        #: The connection's place in the broker's accept order (0 first).
        self.index = index
        self._sock = sock
        self._cond = threading.Condition()
        self._received: list[Received] = []
        #: Unexpected failures of this connection's threads (a peer bug, or
        #: a client that sent garbage); the broker's close() reports them.
        self.errors: list[BaseException] = []
        self._out: queue.SimpleQueue[bytes | None] = queue.SimpleQueue()
        self._stop = threading.Event()
        self._eof = False
        self._opened = False
        self._header = b""
        self._reader = FrameReader(0)
        self._content: dict[int, _Content] = {}
        self._held_types: set[type[Method]] = set()
        self._held: list[Received] = []
        self._delivery_tags: dict[int, int] = {}
        self._published: dict[int, int] = {}
        self._queue_names = itertools.count(1)
        #: Heartbeat frames the client sent.
        self.heartbeats = 0
        self._consumer_tags = itertools.count(1)
        sock.settimeout(_SOCKET_TIMEOUT)
        self._threads = [
            threading.Thread(
                target=self._read_loop, name=f"scripted-peer-read-{index}", daemon=True
            ),
            threading.Thread(
                target=self._write_loop,
                name=f"scripted-peer-write-{index}",
                daemon=True,
            ),
        ]
        for thread in self._threads:
            thread.start()

    def __repr__(self) -> str:
        state = "closed" if self._eof else "open" if self._opened else "handshake"
        return f"<ScriptedConnection #{self.index} {state}, {len(self._received)} received>"

    # --- what the client sent ------------------------------------------------------

    @property
    def received(self) -> list[Received]:
        """Every method the client sent so far, in order (a copy)."""
        with self._cond:
            return list(self._received)

    def methods(
        self, kind: type[Method] | None = None, channel: int | None = None
    ) -> list[Received]:
        """What the client sent, only methods of ``kind`` and/or on
        ``channel`` when given."""
        with self._cond:
            return [
                item
                for item in self._received
                if (kind is None or isinstance(item.method, kind))
                and (channel is None or item.channel == channel)
            ]

    def sent(self, kind: type[_M], channel: int | None = None) -> list[_M]:
        """The methods of ``kind`` the client sent (on ``channel``), typed."""
        found: list[_M] = []
        for item in self.methods(kind, channel):
            assert isinstance(item.method, kind)
            found.append(item.method)
        return found

    def names(self, start: int = 0) -> list[tuple[int, str]]:
        """(channel, method name) of each method received from ``start`` on."""
        return [(item.channel, item.name) for item in self.received[start:]]

    @property
    def opened(self) -> bool:
        """The handshake got as far as connection.open-ok."""
        return self._opened

    @property
    def closed(self) -> bool:
        """The client's side of the stream ended (or the socket is gone)."""
        return self._eof

    # --- waiting ----------------------------------------------------------------------

    def wait_for(
        self,
        predicate: Callable[[], bool],
        *,
        timeout: float = STEP,
        what: str = "the condition",
    ) -> None:
        """Block until ``predicate()`` (called with this connection's lock
        held, so it may read :meth:`methods`) is true.

        Raises:
            AssertionError: not within ``timeout``; lists what was received.
        """
        with self._cond:
            if not self._cond.wait_for(predicate, timeout):
                raise AssertionError(_timed_out(what, timeout, self._describe()))

    async def wait_for_async(
        self,
        predicate: Callable[[], bool],
        *,
        timeout: float = STEP,
        what: str = "the condition",
    ) -> None:
        """:meth:`wait_for` for a coroutine (polls; the loop runs meanwhile)."""

        def check() -> bool:
            with self._cond:
                return predicate()

        await wait_until_async(check, timeout=timeout, what=what, detail=self._describe)

    def wait_method(
        self,
        kind: type[_M],
        channel: int | None = None,
        *,
        count: int = 1,
        timeout: float = STEP,
    ) -> _M:
        """Block until the client sent ``count`` methods of ``kind`` (on
        ``channel``); return the ``count``-th.

        Raises:
            AssertionError: not within ``timeout``.
        """
        self.wait_for(
            lambda: len(self.methods(kind, channel)) >= count,
            timeout=timeout,
            what=_what(kind, channel, count),
        )
        return self.sent(kind, channel)[count - 1]

    async def wait_method_async(
        self,
        kind: type[_M],
        channel: int | None = None,
        *,
        count: int = 1,
        timeout: float = STEP,
    ) -> _M:
        """:meth:`wait_method` for a coroutine."""
        await self.wait_for_async(
            lambda: len(self.methods(kind, channel)) >= count,
            timeout=timeout,
            what=_what(kind, channel, count),
        )
        return self.sent(kind, channel)[count - 1]

    def wait_open(self, timeout: float = STEP) -> None:
        """Block until the handshake is done (connection.open-ok sent)."""
        self.wait_for(lambda: self._opened, timeout=timeout, what="connection.open")

    async def wait_open_async(self, timeout: float = STEP) -> None:
        await self.wait_for_async(
            lambda: self._opened, timeout=timeout, what="connection.open"
        )

    def _describe(self) -> str:
        with self._cond:
            shown = self._received[-30:]
            skipped = len(self._received) - len(shown)
        head = f"({skipped} earlier) " if skipped else ""
        return f"connection #{self.index} received {head}{shown!r}"

    # --- pushing ----------------------------------------------------------------------

    def send(self, channel: int, method: Method) -> None:
        """Send one method frame (any method: the script's own choice)."""
        self.send_raw(sp.method(channel, method))

    def send_raw(self, data: bytes) -> None:
        """Queue bytes for the client, after everything queued before."""
        self._out.put(data)

    def deliver(
        self,
        channel: int,
        consumer_tag: str,
        body: bytes,
        *,
        delivery_tag: int | None = None,
        redelivered: bool = False,
        exchange: str = "",
        routing_key: str = "q",
        properties: Properties | None = None,
    ) -> int:
        """Push basic.deliver with its content header and body frames;
        returns its delivery tag (by default the channel's next one, from 1
        after each channel.open)."""
        with self._cond:
            if delivery_tag is None:
                delivery_tag = self._delivery_tags.get(channel, 0) + 1
            self._delivery_tags[channel] = max(
                delivery_tag, self._delivery_tags.get(channel, 0)
            )
        method = spec.BasicDeliver(
            consumer_tag,
            delivery_tag,
            redelivered=redelivered,
            exchange=exchange,
            routing_key=routing_key,
        )
        self.send_raw(
            sp.content(
                channel, method, body, properties, frame_max=self.broker.frame_max
            )
        )
        return delivery_tag

    def ack(self, channel: int, delivery_tag: int, *, multiple: bool = False) -> None:
        """Push a publisher confirm (basic.ack from the broker)."""
        self.send(channel, spec.BasicAck(delivery_tag, multiple=multiple))

    def nack(self, channel: int, delivery_tag: int, *, multiple: bool = False) -> None:
        """Push a negative publisher confirm (basic.nack from the broker)."""
        self.send(channel, spec.BasicNack(delivery_tag, multiple=multiple))

    def published(self, channel: int) -> int:
        """How many basic.publish the client completed on ``channel`` since
        it was (last) opened: the confirm tags run from 1 to this."""
        with self._cond:
            return self._published.get(channel, 0)

    def cancel_consumer(self, channel: int, consumer_tag: str) -> None:
        """Push a server-sent basic.cancel (RabbitMQ's consumer cancel
        notification); the client answers cancel-ok."""
        self.send(channel, spec.BasicCancel(consumer_tag))

    def close_channel(
        self,
        channel: int,
        reply_code: int = 406,
        reply_text: str = "PRECONDITION_FAILED - scripted",
        *,
        class_id: int = 0,
        method_id: int = 0,
    ) -> None:
        """Push a server-sent channel.close (a soft error); the client
        answers close-ok."""
        self.send(
            channel, spec.ChannelClose(reply_code, reply_text, class_id, method_id)
        )

    def hold(self, kind: type[Method]) -> None:
        """Answer no request of ``kind`` until :meth:`release` (a slow
        broker). Requests already answered are not affected."""
        with self._cond:
            self._held_types.add(kind)

    def release(self, kind: type[Method]) -> int:
        """Send the replies held back for ``kind``, in order, and answer
        such requests at once again; returns how many were sent."""
        with self._cond:
            self._held_types.discard(kind)
            held = [item for item in self._held if isinstance(item.method, kind)]
            self._held = [
                item for item in self._held if not isinstance(item.method, kind)
            ]
            for item in held:
                self._answer(item)
        return len(held)

    def drop(self) -> None:
        """Cut the TCP connection without a close handshake (the broker
        went away); the threads end and the socket is closed."""
        self.close()

    def close(self) -> None:
        """Shut the socket, join the threads, close it. Idempotent."""
        self._stop.set()
        with contextlib.suppress(OSError):
            self._sock.shutdown(socket.SHUT_RDWR)
        current = threading.current_thread()
        for thread in self._threads:
            if thread is not current:
                thread.join(_JOIN_TIMEOUT)
                if thread.is_alive():
                    self.errors.append(RuntimeError(f"{thread.name} did not stop"))
        self._sock.close()
        with self._cond:
            self._eof = True
            self._cond.notify_all()

    # --- the threads --------------------------------------------------------------------

    def _read_loop(self) -> None:
        sock = self._sock
        try:
            while not self._stop.is_set():
                if self._read_paused:  # pause_reading(): leave it in the socket
                    self._stop.wait(_TICK)
                    continue
                readable, _, _ = select.select([sock], [], [], _TICK)
                if not readable:
                    continue
                data = sock.recv(1 << 16)
                if not data:
                    break
                self._feed(data)
        except OSError:
            pass  # shut down under us (close or drop)
        except BaseException as exc:  # a peer bug or client garbage
            self.errors.append(exc)
        finally:
            with self._cond:
                self._eof = True
                self._cond.notify_all()

    def _write_loop(self) -> None:
        sock = self._sock
        while not self._stop.is_set():
            try:
                item = self._out.get(timeout=_TICK)
            except queue.Empty:
                continue
            try:
                if item is None:
                    sock.shutdown(socket.SHUT_WR)  # after connection.close-ok
                else:
                    sock.sendall(item)
            except OSError:
                return  # the client is gone, or close() shut the socket

    # --- input --------------------------------------------------------------------------

    def _feed(self, data: bytes) -> None:
        if len(self._header) < len(PROTOCOL_HEADER):
            need = len(PROTOCOL_HEADER) - len(self._header)
            self._header += data[:need]
            data = data[need:]
            if len(self._header) < len(PROTOCOL_HEADER):
                return
            if self._header != PROTOCOL_HEADER:
                raise FrameDecodeError(f"bad protocol header {self._header!r}")
            self.send_raw(sp.start())
        if not data:
            return
        for frame in self._reader.feed(data):
            self._on_frame(frame)

    def _on_frame(
        self,
        frame: MethodFrame | HeaderFrame | BodyFrame | HeartbeatFrame | ContentFrame,
    ) -> None:
        if isinstance(frame, HeartbeatFrame):
            with self._cond:
                self.heartbeats += 1
                self._cond.notify_all()
            return
        if isinstance(frame, MethodFrame):
            method = frame.method
            assert isinstance(method, Method)
            if method.HAS_CONTENT:
                self._content[frame.channel] = _Content(method)
            else:
                self._record(Received(frame.channel, method))
            return
        content = self._content.get(frame.channel)
        if content is None:
            raise FrameDecodeError(f"{frame!r} without a content method before it")
        if isinstance(frame, HeaderFrame):
            assert isinstance(frame.properties, spec.BasicProperties)
            content.properties = frame.properties
            content.size = frame.body_size
        elif isinstance(frame, BodyFrame):
            content.parts.append(bytes(frame.payload))
            content.received += len(frame.payload)
        else:  # never made: the reader does not coalesce
            raise FrameDecodeError(f"unexpected {frame!r}")
        if content.received >= content.size >= 0:
            del self._content[frame.channel]
            self._record(
                Received(
                    frame.channel,
                    content.method,
                    content.properties,
                    b"".join(content.parts),
                )
            )

    def _record(self, item: Received) -> None:
        with self._cond:
            self._received.append(item)
            if isinstance(item.method, spec.ChannelOpen):
                # A (re)opened channel numbers deliveries and publishes from 1.
                self._delivery_tags.pop(item.channel, None)
                self._published.pop(item.channel, None)
            elif isinstance(item.method, spec.BasicPublish):
                self._published[item.channel] = self._published.get(item.channel, 0) + 1
            if type(item.method) in self._held_types:
                self._held.append(item)
            else:
                self._answer(item)
            self._cond.notify_all()

    # --- the script -------------------------------------------------------------------

    def _answer(self, item: Received) -> None:
        """Send what RabbitMQ would answer to ``item`` (lock held)."""
        method = item.method
        channel = item.channel
        if isinstance(method, spec.ConnectionStartOk):
            broker = self.broker
            self.send_raw(
                sp.tune(broker.channel_max, broker.frame_max, broker.heartbeat)
            )
        elif isinstance(method, spec.ConnectionOpen):
            self.send(0, spec.ConnectionOpenOk())
            self._opened = True
        elif isinstance(method, spec.ConnectionClose):
            self.send(0, spec.ConnectionCloseOk())
            self._out.put(None)  # then end the stream, as RabbitMQ does
        elif isinstance(method, spec.ConnectionCloseOk):
            self._out.put(None)  # the close this script sent is done
        elif isinstance(method, spec.QueueDeclare):
            if not method.no_wait:
                name = method.queue or f"amq.gen-{next(self._queue_names)}"
                self.send(channel, spec.QueueDeclareOk(name, 0, 0))
        elif isinstance(method, spec.BasicConsume):
            if not method.no_wait:
                tag = method.consumer_tag or f"amq.ctag-{next(self._consumer_tags)}"
                self.send(channel, spec.BasicConsumeOk(tag))
        elif isinstance(method, spec.BasicCancel):
            if not method.no_wait:
                self.send(channel, spec.BasicCancelOk(method.consumer_tag))
        elif isinstance(method, spec.BasicGet):
            self.send(channel, spec.BasicGetEmpty())
        elif isinstance(method, spec.ChannelFlow):
            self.send(channel, spec.ChannelFlowOk(active=method.active))
        elif method.RESPONSES and not _no_wait(method):
            # channel.open, channel.close, basic.qos, confirm.select,
            # exchange.declare, queue.bind...: the spec's first answer.
            response = method.RESPONSES[0]
            reply: Any = response(**sp.valid_kwargs(response))
            self.send(channel, reply)

    # --- flow control: what makes a publisher wait --------------------------------------

    #: Set by :meth:`pause_reading`: the reading thread leaves the client's
    #: bytes in the socket.
    _read_paused: bool = False

    def block(self, reason: str = "low on memory") -> None:
        """Push connection.blocked (a RabbitMQ resource alarm): the client
        must stop publishing until :meth:`unblock`."""
        self.send(0, spec.ConnectionBlocked(reason))

    def unblock(self) -> None:
        """Push connection.unblocked: the alarm is over."""
        self.send(0, spec.ConnectionUnblocked())

    def flow(self, channel: int, active: bool) -> None:
        """Push channel.flow: the broker pauses (``active=False``) or
        resumes publishing on ``channel``; the client answers flow-ok."""
        self.send(channel, spec.ChannelFlow(active=active))

    def pause_reading(self, receive_buffer: int = 1 << 16) -> None:
        """Stop reading the socket (a broker that does not keep up): the
        client's bytes stay in the kernel's buffers until they are full,
        then in the client's own. At most one read the reading thread has
        already started is still taken in. ``receive_buffer`` caps this
        socket's receive buffer (``SO_RCVBUF``; the kernel doubles it), so
        that the buffers fill after a few MiB rather than tens of MiB.
        Pushes still go out. :meth:`resume_reading` undoes it."""
        with contextlib.suppress(OSError):
            self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
        self._read_paused = True

    def resume_reading(self) -> None:
        """Read the socket again (see :meth:`pause_reading`)."""
        self._read_paused = False

    def pending_content(self) -> list[int]:
        """The channels on which a content-carrying method (basic.publish)
        came in without all of its content header and body frames yet: a
        half-written message, once the client has nothing more in flight."""
        return sorted(self._content.copy())


def _no_wait(method: Method) -> bool:
    return bool(getattr(method, "no_wait", False) or getattr(method, "nowait", False))


def _what(kind: type[Method], channel: int | None, count: int) -> str:
    where = "" if channel is None else f" on channel {channel}"
    return f"{count} x {getattr(kind, 'NAME', kind.__name__)}{where}"


# --- the listener ----------------------------------------------------------------------


class ScriptedBroker:
    """A fake broker listening on 127.0.0.1 (see the module docstring).

    Args:
        frame_max, channel_max, heartbeat: what connection.tune proposes
            (heartbeat off by default: these tests run well under a second).
    """

    def __init__(
        self, *, frame_max: int = 131072, channel_max: int = 2047, heartbeat: int = 0
    ) -> None:
        self.frame_max = frame_max
        self.channel_max = channel_max
        self.heartbeat = heartbeat
        self._cond = threading.Condition()
        self._connections: list[ScriptedConnection] = []
        self._stop = threading.Event()
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            self._listener.bind(("127.0.0.1", 0))
            self._listener.listen(8)
            self._listener.settimeout(_TICK)
        except BaseException:
            self._listener.close()
            raise
        self.port: int = self._listener.getsockname()[1]
        self._thread = threading.Thread(
            target=self._accept_loop, name="scripted-broker-accept", daemon=True
        )
        self._thread.start()

    def __repr__(self) -> str:
        return f"<ScriptedBroker 127.0.0.1:{self.port}, {len(self._connections)} connections>"

    @property
    def url(self) -> str:
        """The URL a client connects with."""
        return f"amqp://guest:guest@127.0.0.1:{self.port}/%2f"

    @property
    def connections(self) -> list[ScriptedConnection]:
        """The connections accepted so far, in order (a copy)."""
        with self._cond:
            return list(self._connections)

    def wait_connection(
        self, index: int = 0, timeout: float = STEP
    ) -> ScriptedConnection:
        """Block until the ``index``-th connection (0: the first) is
        accepted and its handshake done; return it.

        Raises:
            AssertionError: not within ``timeout``.
        """
        deadline = time.monotonic() + timeout
        with self._cond:
            if not self._cond.wait_for(lambda: len(self._connections) > index, timeout):
                raise AssertionError(
                    _timed_out(f"connection #{index}", timeout, repr(self))
                )
            connection = self._connections[index]
        connection.wait_open(max(0.0, deadline - time.monotonic()))
        return connection

    async def wait_connection_async(
        self, index: int = 0, timeout: float = STEP
    ) -> ScriptedConnection:
        """:meth:`wait_connection` for a coroutine."""
        await wait_until_async(
            lambda: len(self.connections) > index and self.connections[index].opened,
            timeout=timeout,
            what=f"connection #{index} to open",
            detail=lambda: repr(self.connections),
        )
        return self.connections[index]

    def _accept_loop(self) -> None:
        index = 0
        while not self._stop.is_set():
            try:
                sock, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return  # the listener was closed
            with self._cond:
                if self._stop.is_set():
                    sock.close()
                    return
                self._connections.append(ScriptedConnection(sock, self, index))
                index += 1
                self._cond.notify_all()

    def close(self) -> None:
        """Stop accepting, close every connection, join every thread.

        Raises:
            AssertionError: a connection's thread failed (a bug in this
                script, or bytes from the client it could not decode).
        """
        self._stop.set()
        self._thread.join(_JOIN_TIMEOUT)
        self._listener.close()
        errors: list[BaseException] = []
        for connection in self.connections:
            connection.close()
            errors += connection.errors
        if errors:
            raise AssertionError(f"the scripted broker failed: {errors!r}") from errors[
                0
            ]

    def __enter__(self) -> ScriptedBroker:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
