"""Blocking channels, consumers, deliveries and confirmations.

``Channel`` is the generated ``ChannelMethods`` plus publishing (with
confirmations and returns), consuming, basic.get and closing, with the
same names and parameters as the asyncio front. Every call that waits on
the broker takes ``timeout`` and raises ``TimeoutError`` when it passes.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, Literal, overload

from amqp_client._delivery import DeliveryData
from amqp_client._front import ChannelEvents
from amqp_client._spec_base import Method, Properties
from amqp_client.blocking._waiter import Waiter
from amqp_client.errors import AMQPError, UsageError
from amqp_client.spec import (
    BasicAck,
    BasicCancel,
    BasicCancelOk,
    BasicConsume,
    BasicGet,
    BasicNack,
    BasicProperties,
    BasicPublish,
    BasicReject,
    ChannelMethods,
)

if TYPE_CHECKING:
    from amqp_client.blocking.connection import Connection

__all__ = ["Channel", "Confirmation", "Consumer", "Delivery"]

log = logging.getLogger("amqp_client.blocking")

Callback = Callable[..., object]
_END = object()


class Delivery(DeliveryData):
    """A delivered message (see :class:`amqp_client._delivery.DeliveryData`)."""

    __slots__ = ()

    _channel: Channel

    def ack(self, multiple: bool = False) -> None:
        """Acknowledge this message (and all before it if ``multiple``).

        Raises:
            ChannelClosed: the channel closed; the delivery tag is dead.
        """
        self._channel._settle(
            BasicAck(self.delivery_tag, multiple=multiple), self._epoch
        )

    def nack(self, multiple: bool = False, requeue: bool = True) -> None:
        """Reject this message (and all before it if ``multiple``)."""
        self._channel._settle(
            BasicNack(self.delivery_tag, multiple=multiple, requeue=requeue),
            self._epoch,
        )

    def reject(self, requeue: bool = True) -> None:
        """Reject this one message."""
        self._channel._settle(
            BasicReject(self.delivery_tag, requeue=requeue), self._epoch
        )


class Confirmation:
    """The broker's verdict on one publish in confirm mode.

    ``wait()`` returns when the broker acks; raises ``MessageNacked`` on a
    nack, ``MessageReturned`` when a mandatory publish came back, the
    channel's or connection's error if either closes first, and
    ``TimeoutError`` when ``timeout`` passes.
    """

    __slots__ = ("_future", "delivery_tag")

    def __init__(self, future: Waiter[None], delivery_tag: int) -> None:
        self._future = future
        self.delivery_tag = delivery_tag

    def wait(self, timeout: float | None = None) -> None:
        self._future.result(timeout)

    def done(self) -> bool:
        return self._future.done()

    def __repr__(self) -> str:
        state = "pending"
        if self._future.done():
            state = "failed" if self._future.exception() else "acked"
        return f"<Confirmation #{self.delivery_tag} {state}>"


class Consumer:
    """An iterator of deliveries from ``basic_consume``; ``get(timeout)``
    takes one. Iteration ends after a cancel from either side; it raises
    the channel's error if the channel closes with one. ``with`` cancels on
    exit.
    """

    def __init__(self, channel: Channel, queue_name: str) -> None:
        self._channel = channel
        self.queue = queue_name
        self.consumer_tag = ""
        self._items: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._active = False
        self._ended = False
        self._failed = False
        self._no_ack = False
        self._method: BasicConsume | None = None

    def __repr__(self) -> str:
        return f"<Consumer {self.consumer_tag!r} on {self.queue!r}>"

    def __iter__(self) -> Iterator[Delivery]:
        return self

    def __next__(self) -> Delivery:
        delivery = self.get()
        if delivery is None:
            raise StopIteration
        return delivery

    def get(self, timeout: float | None = None) -> Delivery | None:
        """The next delivery; None once the consumer has ended.

        Raises:
            TimeoutError: nothing arrived within ``timeout`` seconds.
            ChannelClosed, ConnectionClosed: the channel or connection
                closed with an error.
        """
        while not self._ended:
            try:
                item = self._items.get(timeout=timeout)
            except queue.Empty:
                raise TimeoutError(f"no delivery within {timeout} s") from None
            if item is _END:
                self._ended = True
                return None
            if isinstance(item, BaseException):
                self._ended = True
                raise item
            self._channel._connection._delivery_buffered(-1)
            if not self._no_ack and (
                self._failed or item._epoch != self._channel._epoch
            ):
                # Queued before the channel failed or the connection was
                # lost: it can no longer be acked and the broker
                # redelivers it.
                continue
            return item  # type: ignore[no-any-return]
        return None

    def cancel(self, timeout: float | None = None) -> None:
        """Stop the consumer (basic.cancel); iteration ends after the
        deliveries already received. Idempotent."""
        if self._active and self._channel.is_open:
            self._active = False
            self._channel.basic_cancel(self.consumer_tag, timeout=timeout)

    def __enter__(self) -> Consumer:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._channel.is_open and self._channel._connection.is_open:
            self.cancel()

    def _push(self, item: Any) -> None:
        self._items.put(item)

    def _end(self, error: BaseException | None = None) -> None:
        self._active = False
        self._failed = error is not None
        self._items.put(error if error is not None else _END)

    def _drop_unacked(self) -> None:
        """Nothing to do now: get() skips deliveries of an older epoch."""


class Channel(ChannelMethods, ChannelEvents):
    """An AMQP channel for threaded programs; open one with
    ``connection.channel()``. Every generated method of
    :class:`amqp_client.spec.ChannelMethods` is available.
    """

    _delivery_class = Delivery
    _connection: Connection

    def __init__(self, connection: Connection, channel_id: int) -> None:
        self._connection = connection
        self._core = connection._core
        self._lock = connection._lock
        self.channel_id = channel_id
        self._init_events()
        self._terminated = threading.Event()
        self._flow = threading.Event()
        self._flow.set()

    def __repr__(self) -> str:
        state = "open" if self.is_open else "closed"
        return f"<amqp_client.blocking.Channel {self.channel_id} {state}>"

    # --- public -----------------------------------------------------------------

    @property
    def is_open(self) -> bool:
        return self._error is None and not self._terminated.is_set()

    @property
    def is_closed(self) -> bool:
        return not self.is_open

    @property
    def connection(self) -> Connection:
        return self._connection

    def close(
        self,
        reply_code: int = 200,
        reply_text: str = "",
        *,
        timeout: float | None = None,
    ) -> None:
        """Close the channel (channel.close handshake). Idempotent."""
        if self._terminated.is_set() or self._connection.is_closed:
            return
        self._connection._check_not_io_thread()
        with self._lock:
            gone = self._core.is_closed
            if not gone:
                self._closing = True
                self._core.close_channel(self.channel_id, reply_code, reply_text)
                self._connection._flush_locked()
        if gone:
            # Its connection is gone: nothing to hand-shake with. A
            # recovering connection just does not restore it. (A channel
            # already on the new connection, such as recovery's own,
            # does hand-shake: else the broker would keep it open.)
            if self._connection.is_recovering:
                self._drop()
            return
        if not self._terminated.wait(timeout):
            raise TimeoutError(
                f"channel {self.channel_id} did not close within {timeout} s"
            )

    def __enter__(self) -> Channel:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._connection.is_open:
            self.close()

    def basic_publish(
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

        Thread-safe: the frames of concurrent publishes never interleave.
        Waits while the broker blocks the connection, the socket's write
        buffer is full, or the broker paused the channel (channel.flow).

        Raises:
            ChannelClosed, ConnectionClosed: the channel or connection is closed.
            TypeError, ValueError: bad arguments; nothing is sent.
        """
        if self._error is not None:
            raise self._error
        connection = self._connection
        if not self._flow.is_set() or connection._must_wait():
            # Bad arguments fail now, not after the wait.
            BasicPublish(
                exchange, routing_key, mandatory=mandatory, immediate=immediate
            )
            self._flow.wait()
        while True:
            if not connection._ready.is_set():
                connection._until_ready()
            with self._lock:
                connection._wait_writable()
                if self._error is not None:
                    raise self._error
                if not connection._ready.is_set():
                    continue  # lost while waiting: wait for recovery
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
                future: Waiter[None] | None = None
                if tag is not None:
                    future = Waiter()
                    self._confirms.add(
                        tag, future, mandatory, exchange, routing_key, body
                    )
                connection._flush_locked(urgent=False)
                break
        if future is None or tag is None:
            return None
        return Confirmation(future, tag)

    def basic_consume(  # type: ignore[override]
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
        """Start a consumer on ``queue`` and return it (an iterator).

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
        self._request(method, timeout, self._consumer_registered(consumer))
        return consumer

    @overload
    def basic_cancel(
        self,
        consumer_tag: str = "",
        *,
        no_wait: Literal[False] = False,
        timeout: float | None = None,
    ) -> BasicCancelOk: ...

    @overload
    def basic_cancel(
        self,
        consumer_tag: str = "",
        *,
        no_wait: Literal[True],
        timeout: float | None = None,
    ) -> None: ...

    def basic_cancel(
        self,
        consumer_tag: str = "",
        *,
        no_wait: bool = False,
        timeout: float | None = None,
    ) -> BasicCancelOk | None:
        """Cancel a consumer; its iteration ends after what was delivered."""
        method = BasicCancel(consumer_tag, no_wait=no_wait)
        if no_wait:
            self._send(method)
            self._end_consumer(consumer_tag)
            return None

        reply = self._request(method, timeout, self._consumer_cancelled(consumer_tag))
        assert isinstance(reply, BasicCancelOk)
        return reply

    def basic_get(
        self, queue: str = "", *, no_ack: bool = False, timeout: float | None = None
    ) -> Delivery | None:
        """Fetch one message; None when the queue is empty."""
        return self._request(BasicGet(queue, no_ack=no_ack), timeout, None)  # type: ignore[no-any-return]

    def flow(self, active: bool, *, timeout: float | None = None) -> bool:
        """Ask the broker to pause (False) or resume (True) deliveries."""
        return self.channel_flow(active=active, timeout=timeout).active

    # --- generated API hooks --------------------------------------------------------

    def _rpc(self, method: Method, timeout: float | None) -> Method:
        return self._request(method, timeout, None)  # type: ignore[no-any-return]

    def _send(self, method: Method) -> None:
        if self._error is not None:
            raise self._error
        self._connection._until_ready()
        with self._lock:
            try:
                self._core.send(self.channel_id, method)
            except UsageError:
                self._connection._check_open()
                raise
            if self._records():
                self._note(method, None)
            self._connection._flush_locked()

    def _publish(
        self, method: Method, body: bytes, properties: Properties | None
    ) -> Any:
        assert isinstance(method, BasicPublish)
        assert properties is None or isinstance(properties, BasicProperties)
        return self.basic_publish(
            body,
            exchange=method.exchange,
            routing_key=method.routing_key,
            mandatory=method.mandatory,
            immediate=method.immediate,
            properties=properties,
        )

    def _request(
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
        self._connection._check_not_io_thread()
        if not internal:
            if not self._connection._ready.is_set():
                self._connection._until_ready(timeout)
                if self._error is not None:
                    raise self._error
            hook = self._recording(method, hook)
        waiter: Waiter[Any] = Waiter()
        with self._lock:
            try:
                self._core.call(self.channel_id, method)
            except UsageError:
                self._connection._check_open()
                if self._error is not None:
                    raise self._error from None
                raise
            self._waiters.append((waiter, hook))
            self._connection._flush_locked()
        try:
            return waiter.result(timeout)
        except TimeoutError:
            # The reply may still come: the waiter keeps its FIFO slot so
            # that later replies still match their requests.
            waiter.cancel()
            raise TimeoutError(
                f"no reply to {method.NAME} within {timeout} s"
            ) from None

    def _settle(self, method: Method, epoch: int) -> None:
        if self._error is not None:
            raise self._error
        if self._stale(epoch):
            return
        with self._lock:
            if self._stale(epoch):
                return
            self._core.send(self.channel_id, method)
            self._connection._flush_locked(urgent=False)

    # --- events (I/O thread, lock not held) -----------------------------------------------

    # --- ChannelEvents hooks -----------------------------------------------------

    def _emit(self, callbacks: list[Callback], *args: object) -> None:
        self._connection._call_soon(callbacks, *args)

    def _resume(self, core: Any) -> None:
        """The channel is open again on a new connection (recovery); the
        caller holds the lock."""
        self._core = core

    def _mark_terminated(self, error: AMQPError | None) -> None:
        self._terminated.set()
