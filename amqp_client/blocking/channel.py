"""Blocking channels, consumers, deliveries and confirmations.

``Channel`` is the generated ``ChannelMethods`` with its hooks filled in;
all channel state lives in its :class:`~amqp_client.session.channel.ChannelSession`,
which is only touched under the connection's lock. This module makes
waiters and blocks on them (outside the lock), with the same names and
parameters as the asyncio front. Every call that waits takes ``timeout``
and raises ``TimeoutError`` when it passes.
"""

from __future__ import annotations

import functools
import logging
import queue
import threading
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Protocol, TypeVar

from amqp_client._delivery import DeliveryData
from amqp_client._spec_base import Method, check_timeout
from amqp_client.blocking._waiter import Waiter
from amqp_client.session.api import ChannelInfo, ConsumerInfo
from amqp_client.session.channel import ChannelSession, check_publish
from amqp_client.session.connection import ConnectionSession
from amqp_client.session.consumers import ConsumerSession
from amqp_client.session.link import Reply
from amqp_client.session.link import Waiter as AnyWaiter
from amqp_client.spec import (
    BasicAck,
    BasicConsume,
    BasicGet,
    BasicNack,
    BasicProperties,
    BasicReject,
    ChannelMethods,
    ReplyCode,
)

if TYPE_CHECKING:
    from amqp_client.blocking.connection import Connection

__all__ = [
    "BlockingLink",
    "Channel",
    "Confirmation",
    "Consumer",
    "Delivery",
    "open_channel",
]

log = logging.getLogger("amqp_client.blocking")

T = TypeVar("T")


class BlockingLink(Protocol):
    """What a blocking channel needs from its connection."""

    @property
    def lock(self) -> threading.Lock:
        """Guards the connection's session and core."""

    @property
    def session(self) -> ConnectionSession[Delivery]: ...

    @property
    def connection(self) -> Connection:
        """The user's connection object."""

    def publishable(self, channel: ChannelSession[Delivery]) -> bool:
        """Whether a publish on ``channel`` may go now (lock held)."""

    def wait_until(
        self, ready: Callable[[], bool], timeout: float | None, what: str
    ) -> None:
        """Wait, lock held, until ``ready()`` (checked at each state change).

        Raises:
            TimeoutError: ``what`` did not happen within ``timeout``.
        """

    def until_ready(self, timeout: float | None) -> None:
        """Raise if the connection is over; wait while it recovers (lock
        not held)."""

    def check_not_io_thread(self) -> None:
        """Raise UsageError on the connection's I/O thread (it would deadlock)."""

    def wake_later(self, wake: Callable[[], None]) -> None:
        """Call ``wake`` once the lock is released (lock held): a thread
        woken while the I/O thread still holds it would only wait for it."""


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
        """Reject this message (and all before it if ``multiple``).

        Raises:
            ChannelClosed: the channel closed; the delivery tag is dead.
        """
        self._channel._settle(
            BasicNack(self.delivery_tag, multiple=multiple, requeue=requeue),
            self._epoch,
        )

    def reject(self, requeue: bool = True) -> None:
        """Reject this one message.

        Raises:
            ChannelClosed: the channel closed; the delivery tag is dead.
        """
        self._channel._settle(
            BasicReject(self.delivery_tag, requeue=requeue), self._epoch
        )


class Confirmation:
    """The broker's verdict on one publish in confirm mode.

    ``wait()`` returns when the broker acks; raises ``MessageNacked`` on a
    nack, ``MessageReturned`` when a mandatory publish came back, the
    channel's or connection's error if either closes first, and
    ``TimeoutError`` when ``timeout`` passes (the outcome stays pending for
    a later ``wait()``).
    """

    __slots__ = ("_future", "delivery_tag")

    def __init__(self, future: Waiter[None], delivery_tag: int) -> None:
        self._future = future
        self.delivery_tag = delivery_tag

    def wait(self, timeout: float | None = None) -> None:
        self._future.result(check_timeout(timeout))

    def done(self) -> bool:
        return self._future.done()

    def __repr__(self) -> str:
        state = "pending"
        if self._future.done():
            state = "failed" if self._future.exception() else "acked"
        return f"<Confirmation #{self.delivery_tag} {state}>"


class Consumer(ConsumerInfo[Delivery]):
    """An iterator of deliveries from ``basic_consume``; ``get(timeout)``
    takes one. Iteration ends after a cancel from either side; it raises
    the channel's error if the channel closes with one. ``with`` cancels on
    exit. Deliveries it received but never handed out go back to the broker
    (requeued) when it ends, unless it is no_ack.
    """

    __slots__ = ("_channel", "_lock", "_signal", "_state", "_waiting")

    def __init__(self, channel: Channel, state: ConsumerSession[Delivery]) -> None:
        self._channel = channel
        self._state = state
        self._lock = channel._link.lock
        # A reader with nothing to take waits on this (outside the lock);
        # the I/O thread puts a token when it pushes to a waiting reader.
        self._signal: queue.SimpleQueue[None] = queue.SimpleQueue()
        self._waiting = False
        state.wake = self._wake

    def __iter__(self) -> Iterator[Delivery]:
        return self

    def _wake(self) -> None:
        # Called with the lock held, by whoever changed the consumer.
        if self._waiting:
            self._waiting = False
            self._channel._link.wake_later(self._put_token)

    def _put_token(self) -> None:
        self._signal.put(None)

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
        timeout = check_timeout(timeout)
        state = self._state
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            if not state.buffered and not state.ended:
                # Announce the wait, then look again: the I/O thread pushes,
                # then looks at _waiting, so one of the two sees the other
                # (a token too many only makes the loop look again).
                self._waiting = True
                if not state.buffered and not state.ended:
                    self._wait_token(deadline, timeout)
                    continue
                self._waiting = False
            with self._lock:
                delivery = state.take()
                if delivery is not None:
                    return delivery
                if state.ended:
                    error = state.error
                    if error is not None:
                        state.error = None  # raised once; then it is over
                        raise error
                    return None

    def _wait_token(self, deadline: float | None, timeout: float | None) -> None:
        remaining = None if deadline is None else deadline - time.monotonic()
        try:
            if remaining is not None and remaining <= 0:
                raise queue.Empty
            self._signal.get(timeout=remaining)
        except queue.Empty:
            self._waiting = False
            state = self._state
            if not state.buffered and not state.ended:
                raise TimeoutError(f"no delivery within {timeout} s") from None

    def cancel(self, *, timeout: float | None = None) -> None:
        """Stop the consumer (basic.cancel); iteration ends, and deliveries
        not handed out yet go back to the broker. Idempotent.

        Raises:
            TimeoutError: no cancel-ok within ``timeout``.
        """
        timeout = check_timeout(timeout)
        state = self._state
        if state.active and self._channel.is_open:
            state.active = False
            self._channel.basic_cancel(state.consumer_tag, timeout=timeout)

    def __enter__(self) -> Consumer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.cancel()


class Channel(
    ChannelInfo[Delivery], ChannelMethods[Confirmation | None, Delivery, Consumer]
):
    """An AMQP channel for threaded programs; open one with
    ``connection.channel()``. Every generated method of
    :class:`amqp_client.spec.ChannelMethods` is available.
    """

    __slots__ = ("_link", "_state")

    def __init__(
        self, link: BlockingLink, opened: AnyWaiter[None], recorded: bool
    ) -> None:
        self._link = link
        self._state: ChannelSession[Delivery] = link.session.open_channel(
            functools.partial(Delivery, self), opened, recorded=recorded
        )

    @property
    def connection(self) -> Connection:
        """The connection this channel belongs to."""
        return self._link.connection

    def close(
        self,
        reply_code: int = ReplyCode.REPLY_SUCCESS,
        reply_text: str = "",
        *,
        timeout: float | None = None,
    ) -> None:
        """Close the channel (channel.close handshake). Idempotent.

        Raises:
            TimeoutError: no close-ok within ``timeout``.
        """
        timeout = check_timeout(timeout)
        self._link.check_not_io_thread()
        closed: Waiter[None] = Waiter()
        with self._link.lock:
            if not self._state.close(reply_code, reply_text):
                return
            self._state.closed_waiters.append(closed)
        result(closed, timeout, f"channel {self.channel_id} close")

    def __enter__(self) -> Channel:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def flow(self, active: bool, *, timeout: float | None = None) -> bool:
        """Ask the broker to pause (False) or resume (True) deliveries."""
        return self.channel_flow(active=active, timeout=timeout).active

    # --- generated API hooks ---------------------------------------------------------

    def _rpc(self, method: Method, timeout: float | None) -> Method:
        reply = self._request(method, timeout)
        assert isinstance(reply, Method)
        return reply

    def _send(self, method: Method) -> None:
        state = self._state
        state.check_open()
        if state.connection.recovering:
            self._link.until_ready(None)
        with self._link.lock:
            state.send(method)

    def _publish(
        self,
        body: bytes,
        exchange: str,
        routing_key: str,
        mandatory: bool,
        immediate: bool,
        properties: BasicProperties | None,
        timeout: float | None,
    ) -> Confirmation | None:
        state = self._state
        link = self._link
        with link.lock:
            if not link.publishable(state):
                state.check_open()
                # Bad arguments fail now, not after the wait.
                check_publish(
                    body, exchange, routing_key, mandatory, immediate, properties
                )
                link.wait_until(
                    lambda: state.error is not None or link.publishable(state),
                    timeout,
                    "publishing could not go on",
                )
            tag = state.publish(
                body, properties, exchange, routing_key, mandatory, immediate
            )
            if tag is None:
                return None
            waiter: Waiter[None] = Waiter()
            state.track(tag, waiter, mandatory, exchange, routing_key, bytes(body))
        return Confirmation(waiter, tag)

    def _get(self, method: BasicGet, timeout: float | None) -> Delivery | None:
        reply = self._request(method, timeout)
        assert reply is None or isinstance(reply, Delivery)
        return reply

    def _consume(self, method: BasicConsume, timeout: float | None) -> Consumer:
        consumer = Consumer(self, self._state.new_consumer(method))
        self._request(method, timeout, consumer._state)
        return consumer

    # --- plumbing --------------------------------------------------------------------

    def _request(
        self,
        method: Method,
        timeout: float | None,
        consumer: ConsumerSession[Delivery] | None = None,
    ) -> Reply:
        state = self._state
        state.check_open()
        self._link.check_not_io_thread()
        if state.connection.recovering:
            self._link.until_ready(timeout)
        waiter: Waiter[Reply] = Waiter()
        with self._link.lock:
            state.request(method, waiter, consumer=consumer)
        return result(waiter, timeout, method.NAME)

    def _settle(self, method: Method, epoch: int) -> None:
        with self._link.lock:
            self._state.settle(method, epoch)


def result(waiter: Waiter[T], timeout: float | None, what: str) -> T:
    """Wait for a request's outcome, at most ``timeout`` seconds.

    Raises:
        TimeoutError: none within ``timeout``; the request keeps its place,
            so later replies still match their requests.
    """
    try:
        return waiter.result(timeout)
    except TimeoutError:
        if waiter.done():
            raise
        waiter.cancel()  # its reply, if it comes, is dropped
        raise TimeoutError(f"no reply to {what} within {timeout} s") from None


def open_channel(
    link: BlockingLink, opened: AnyWaiter[None], *, recorded: bool = True
) -> tuple[Channel, ChannelSession[Delivery]]:
    """Open a channel (lock held; its open-ok resolves ``opened``): the
    user's object and its state, for the connection that drives it."""
    channel = Channel(link, opened, recorded)
    return channel, channel._state
