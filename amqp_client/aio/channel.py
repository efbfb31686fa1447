"""asyncio channels, consumers, deliveries and confirmations.

``Channel`` is the generated ``AsyncChannelMethods`` plus what needs more
than send-and-await-reply: publishing (with confirmations and returns),
consuming, basic.get and closing. Replies are matched to requests by the
core's per-channel FIFO order; this module only keeps the futures.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import AsyncIterator, Callable, Generator, Mapping
from typing import TYPE_CHECKING, Any, Literal, overload

from amqp_client._delivery import DeliveryData
from amqp_client._front import ChannelEvents, run_callbacks
from amqp_client._spec_base import Method, Properties
from amqp_client.aio.connection import _wait
from amqp_client.errors import (
    AMQPError,
    UsageError,
)
from amqp_client.spec import (
    AsyncChannelMethods,
    BasicAck,
    BasicCancel,
    BasicCancelOk,
    BasicConsume,
    BasicGet,
    BasicNack,
    BasicProperties,
    BasicPublish,
    BasicReject,
)

if TYPE_CHECKING:
    from amqp_client.aio.connection import Connection

__all__ = ["Channel", "Confirmation", "Consumer", "Delivery"]

log = logging.getLogger("amqp_client.aio")

Callback = Callable[..., object]
_END = object()  # ends a consumer's iteration


class Delivery(DeliveryData):
    """A delivered message (see :class:`amqp_client._delivery.DeliveryData`)."""

    __slots__ = ()

    _channel: Channel

    async def ack(self, multiple: bool = False) -> None:
        """Acknowledge this message (and all before it if ``multiple``).

        Raises:
            ChannelClosed: the channel closed; the delivery tag is dead.
        """
        self._channel._settle(
            BasicAck(self.delivery_tag, multiple=multiple), self._epoch
        )

    async def nack(self, multiple: bool = False, requeue: bool = True) -> None:
        """Reject this message (and all before it if ``multiple``)."""
        self._channel._settle(
            BasicNack(self.delivery_tag, multiple=multiple, requeue=requeue),
            self._epoch,
        )

    async def reject(self, requeue: bool = True) -> None:
        """Reject this one message."""
        self._channel._settle(
            BasicReject(self.delivery_tag, requeue=requeue), self._epoch
        )


class Confirmation:
    """The broker's verdict on one publish in confirm mode; await it.

    Resolves to None when the broker acks; raises ``MessageNacked`` on a
    nack, ``MessageReturned`` when a mandatory publish came back, and the
    channel's or connection's error if either closes first.
    """

    __slots__ = ("_future", "delivery_tag")

    def __init__(self, future: asyncio.Future[None], delivery_tag: int) -> None:
        self._future = future
        self.delivery_tag = delivery_tag

    def __await__(self) -> Generator[Any, None, None]:
        return self._future.__await__()

    def done(self) -> bool:
        return self._future.done()

    def __repr__(self) -> str:
        state = "pending"
        if self._future.done():
            state = "failed" if self._future.exception() else "acked"
        return f"<Confirmation #{self.delivery_tag} {state}>"


def _retrieve(future: asyncio.Future[Any]) -> None:
    # A publisher may never await its confirmations; mark the exception as
    # seen so asyncio does not log "exception was never retrieved".
    if not future.cancelled():
        future.exception()


class Consumer:
    """An async iterator of deliveries from ``basic_consume``.

    Iteration ends after a cancel from either side (``cancel()`` or the
    broker's basic.cancel); it raises the channel's error if the channel
    closes with one. ``async with`` cancels on exit.
    """

    def __init__(self, channel: Channel, queue: str) -> None:
        self._channel = channel
        self.queue = queue
        self.consumer_tag = ""
        self._items: deque[Any] = deque()
        self._waiter: asyncio.Future[None] | None = None
        self._active = False
        self._ended = False
        self._no_ack = False
        self._method: BasicConsume | None = None

    def __repr__(self) -> str:
        return f"<Consumer {self.consumer_tag!r} on {self.queue!r}>"

    def __aiter__(self) -> AsyncIterator[Delivery]:
        return self

    async def __anext__(self) -> Delivery:
        while not self._items:
            if self._ended:
                raise StopAsyncIteration
            waiter = self._channel._loop.create_future()
            self._waiter = waiter
            try:
                await waiter
            finally:
                self._waiter = None
        item = self._items.popleft()
        if item is _END:
            self._ended = True
            self._items.clear()
            raise StopAsyncIteration
        if isinstance(item, BaseException):
            self._ended = True
            raise item
        self._channel._connection._delivery_buffered(-1)
        return item  # type: ignore[no-any-return]

    async def cancel(self) -> None:
        """Stop the consumer (basic.cancel); iteration ends after the
        deliveries already received. Idempotent."""
        if self._active and self._channel.is_open:
            self._active = False
            await self._channel.basic_cancel(self.consumer_tag)

    async def __aenter__(self) -> Consumer:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.cancel()

    def _push(self, item: Any) -> None:
        self._items.append(item)
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _end(self, error: BaseException | None = None) -> None:
        self._active = False
        if error is not None:
            self._drop_unacked()
        self._push(error if error is not None else _END)

    def _drop_unacked(self) -> None:
        """Deliveries queued before a failure can no longer be acked; the
        broker redelivers them. (no_ack ones are the application's already
        and stay.)"""
        if self._no_ack:
            return
        dropped = sum(1 for item in self._items if isinstance(item, Delivery))
        self._items = deque(
            item for item in self._items if not isinstance(item, Delivery)
        )
        self._channel._connection._delivery_buffered(-dropped)


class Channel(AsyncChannelMethods, ChannelEvents):
    """An AMQP channel for asyncio programs; open one with
    ``await connection.channel()``. Every generated method of
    :class:`amqp_client.spec.AsyncChannelMethods` is available.
    """

    _delivery_class = Delivery
    _connection: Connection

    def __init__(self, connection: Connection, channel_id: int) -> None:
        self._connection = connection
        self._core = connection._core
        self._loop = connection._loop
        self.channel_id = channel_id
        self._init_events()
        self._terminated: asyncio.Future[AMQPError | None] = self._loop.create_future()
        self._flow = asyncio.Event()
        self._flow.set()

    def __repr__(self) -> str:
        state = "open" if self.is_open else "closed"
        return f"<amqp_client.aio.Channel {self.channel_id} {state}>"

    # --- public -----------------------------------------------------------------

    @property
    def is_open(self) -> bool:
        return self._error is None and not self._terminated.done()

    @property
    def is_closed(self) -> bool:
        return not self.is_open

    @property
    def connection(self) -> Connection:
        return self._connection

    async def close(self, reply_code: int = 200, reply_text: str = "") -> None:
        """Close the channel (channel.close handshake). Idempotent."""
        if self._terminated.done():
            return
        if self._connection.is_closed:
            return
        if self._core.is_closed:
            # Its connection is gone: nothing to hand-shake with. A
            # recovering connection just does not restore it. (A channel
            # already on the new connection, such as recovery's own,
            # does hand-shake: else the broker would keep it open.)
            if self._connection.is_recovering:
                self._drop()
            return
        self._closing = True
        self._core.close_channel(self.channel_id, reply_code, reply_text)
        self._connection._after_command()
        await asyncio.shield(self._terminated)

    async def __aenter__(self) -> Channel:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def basic_publish(
        self,
        body: bytes,
        *,
        exchange: str = "",
        routing_key: str = "",
        mandatory: bool = False,
        immediate: bool = False,
        properties: BasicProperties | None = None,
    ) -> Confirmation | None:
        """Publish a message; in confirm mode, return its :class:`Confirmation`.

        Waits while the broker blocks the connection, the transport's write
        buffer is full, or the broker paused the channel (channel.flow).

        Raises:
            ChannelClosed, ConnectionClosed: the channel or connection is closed.
            TypeError, ValueError: bad arguments; nothing is sent.
        """
        if self._error is not None:
            raise self._error
        connection = self._connection
        if not (
            connection._ready.is_set()
            and connection._writable.is_set()
            and self._flow.is_set()
        ):
            # Bad arguments fail now, not after the wait.
            BasicPublish(
                exchange, routing_key, mandatory=mandatory, immediate=immediate
            )
            await self._until_publishable()
        if self._error is not None:
            raise self._error
        try:
            tag = self._core.basic_publish(
                self.channel_id,
                body,
                properties,
                exchange,
                routing_key,
                mandatory,
                immediate,
            )
        except UsageError:
            connection._check_open()
            raise
        connection._flush_later(len(body) + 64)
        if tag is None:
            return None
        future: asyncio.Future[None] = self._loop.create_future()
        future.add_done_callback(_retrieve)
        self._confirms.add(tag, future, mandatory, exchange, routing_key, body)
        return Confirmation(future, tag)

    async def _until_publishable(self) -> None:
        """Wait until the connection is up (recovered), writable and the
        channel not paused by channel.flow. Each is checked again after any
        wait: a loss wakes the writers (``_interrupt`` sets both events),
        and they must then wait for recovery, not publish on the dead
        connection."""
        connection = self._connection
        while self._error is None:
            if not connection._ready.is_set():
                await connection._until_ready()
            elif not connection._writable.is_set():
                await connection._writable.wait()
            elif not self._flow.is_set():
                await self._flow.wait()
            else:
                return

    async def basic_consume(  # type: ignore[override]
        self,
        queue: str = "",
        *,
        consumer_tag: str = "",
        no_local: bool = False,
        no_ack: bool = False,
        exclusive: bool = False,
        arguments: Mapping[str, Any] | None = None,
        timeout: float | None = None,
    ) -> Consumer:
        """Start a consumer on ``queue`` and return it (an async iterator).

        Raises:
            ChannelClosed: e.g. NotFoundError for a missing queue; the
                channel is closed then.
        """
        consumer = Consumer(self, queue)
        consumer._no_ack = no_ack
        method = BasicConsume(
            queue,
            consumer_tag,
            no_local=no_local,
            no_ack=no_ack,
            exclusive=exclusive,
            arguments=arguments,
        )
        consumer._method = method
        await self._request(method, timeout, self._consumer_registered(consumer))
        return consumer

    @overload
    async def basic_cancel(
        self,
        consumer_tag: str = "",
        *,
        no_wait: Literal[False] = False,
        timeout: float | None = None,
    ) -> BasicCancelOk: ...

    @overload
    async def basic_cancel(
        self,
        consumer_tag: str = "",
        *,
        no_wait: Literal[True],
        timeout: float | None = None,
    ) -> None: ...

    async def basic_cancel(
        self,
        consumer_tag: str = "",
        *,
        no_wait: bool = False,
        timeout: float | None = None,
    ) -> BasicCancelOk | None:
        """Cancel a consumer; its iteration ends after what was delivered."""
        method = BasicCancel(consumer_tag, no_wait=no_wait)
        if no_wait:
            await self._send(method)
            self._end_consumer(consumer_tag)
            return None

        reply = await self._request(
            method, timeout, self._consumer_cancelled(consumer_tag)
        )
        assert isinstance(reply, BasicCancelOk)
        return reply

    async def basic_get(
        self, queue: str = "", *, no_ack: bool = False, timeout: float | None = None
    ) -> Delivery | None:
        """Fetch one message; None when the queue is empty."""
        return await self._request(BasicGet(queue, no_ack=no_ack), timeout, None)  # type: ignore[no-any-return]

    async def flow(self, active: bool, *, timeout: float | None = None) -> bool:
        """Ask the broker to pause (False) or resume (True) deliveries."""
        reply = await self.channel_flow(active=active, timeout=timeout)
        return reply.active

    # --- generated API hooks --------------------------------------------------------

    async def _rpc(self, method: Method, timeout: float | None) -> Method:
        return await self._request(method, timeout, None)  # type: ignore[no-any-return]

    async def _send(self, method: Method) -> None:
        if self._error is not None:
            raise self._error
        if not self._connection._ready.is_set():
            await self._connection._until_ready()
            if self._error is not None:
                raise self._error
        try:
            self._core.send(self.channel_id, method)
        except UsageError:
            self._connection._check_open()
            raise
        if self._records():
            self._note(method, None)
        self._connection._after_command()

    async def _publish(
        self, method: Method, body: bytes, properties: Properties | None
    ) -> Any:
        assert isinstance(method, BasicPublish)
        assert properties is None or isinstance(properties, BasicProperties)
        return await self.basic_publish(
            body,
            exchange=method.exchange,
            routing_key=method.routing_key,
            mandatory=method.mandatory,
            immediate=method.immediate,
            properties=properties,
        )

    async def _request(
        self,
        method: Method,
        timeout: float | None,
        hook: Callable[[Any], Any] | None,
        *,
        internal: bool = False,
    ) -> Any:
        """Send a request and wait for its reply. ``internal`` requests
        (recovery's own) neither wait for recovery nor get recorded."""
        if self._error is not None:
            raise self._error
        if not internal:
            if not self._connection._ready.is_set():
                await self._connection._until_ready(timeout)
                if self._error is not None:
                    raise self._error
            hook = self._recording(method, hook)
        try:
            self._core.call(self.channel_id, method)
        except UsageError:
            self._connection._check_open()
            raise
        waiter: asyncio.Future[Any] = self._loop.create_future()
        self._waiters.append((waiter, hook))
        self._connection._after_command()
        return await _wait(waiter, timeout)

    def _settle(self, method: Method, epoch: int) -> None:
        if self._error is not None:
            raise self._error
        if self._stale(epoch):
            return
        self._core.send(self.channel_id, method)
        self._connection._flush_later()

    # --- events from the connection ----------------------------------------------------

    # --- ChannelEvents hooks -----------------------------------------------------

    def _emit(self, callbacks: list[Callback], *args: object) -> None:
        run_callbacks(callbacks, log, *args)

    def _resume(self, core: Any) -> None:
        """The channel is open again on a new connection (recovery)."""
        self._core = core

    def _mark_terminated(self, error: AMQPError | None) -> None:
        if not self._terminated.done():
            self._terminated.set_result(error)
