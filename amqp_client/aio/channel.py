"""asyncio channels, consumers, deliveries and confirmations.

``Channel`` is the generated ``AsyncChannelMethods`` with its hooks filled
in; all channel state lives in its :class:`~amqp_client.session.channel.ChannelSession`.
This module only makes futures, awaits them, and waits (through its
connection's :class:`AsyncLink`) while publishing must wait.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import AsyncIterator, Callable, Generator
from typing import TYPE_CHECKING, Protocol, TypeVar

from amqp_client._delivery import DeliveryData
from amqp_client._spec_base import Method, check_timeout
from amqp_client.session.api import ChannelInfo, ConsumerInfo
from amqp_client.session.channel import ChannelSession, check_publish
from amqp_client.session.connection import ConnectionSession
from amqp_client.session.consumers import ConsumerSession
from amqp_client.session.link import Reply, Waiter
from amqp_client.spec import (
    AsyncChannelMethods,
    BasicAck,
    BasicConsume,
    BasicGet,
    BasicNack,
    BasicProperties,
    BasicReject,
    ReplyCode,
)

if TYPE_CHECKING:
    from amqp_client.aio.connection import Connection

__all__ = [
    "AsyncLink",
    "Channel",
    "Confirmation",
    "Consumer",
    "Delivery",
    "open_channel",
]

log = logging.getLogger("amqp_client.aio")

T = TypeVar("T")


class AsyncLink(Protocol):
    """What an asyncio channel needs from its connection."""

    @property
    def loop(self) -> asyncio.AbstractEventLoop: ...

    @property
    def session(self) -> ConnectionSession[Delivery]: ...

    @property
    def connection(self) -> Connection:
        """The user's connection object."""

    def publishable(self, channel: ChannelSession[Delivery]) -> bool:
        """Whether a publish on ``channel`` may go now: the connection is
        up, not blocked, its transport writable, the channel not paused."""

    async def wait_until(
        self, ready: Callable[[], bool], timeout: float | None, what: str
    ) -> None:
        """Wait until ``ready()`` (checked at each state change).

        Raises:
            TimeoutError: ``what`` did not happen within ``timeout``.
        """

    async def until_ready(self, timeout: float | None) -> None:
        """Raise if the connection is over; wait while it recovers."""


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
        """Reject this message (and all before it if ``multiple``).

        Raises:
            ChannelClosed: the channel closed; the delivery tag is dead.
        """
        self._channel._settle(
            BasicNack(self.delivery_tag, multiple=multiple, requeue=requeue),
            self._epoch,
        )

    async def reject(self, requeue: bool = True) -> None:
        """Reject this one message.

        Raises:
            ChannelClosed: the channel closed; the delivery tag is dead.
        """
        self._channel._settle(
            BasicReject(self.delivery_tag, requeue=requeue), self._epoch
        )


class Confirmation:
    """The broker's verdict on one publish in confirm mode; await it.

    Resolves to None when the broker acks; raises ``MessageNacked`` on a
    nack, ``MessageReturned`` when a mandatory publish came back, and the
    channel's or connection's error if either closes first. Awaiting it
    under a timeout (``asyncio.wait_for``) or from a task that is cancelled
    never changes its outcome for anyone else.
    """

    __slots__ = ("_future", "delivery_tag")

    def __init__(self, future: asyncio.Future[None], delivery_tag: int) -> None:
        self._future = future
        self.delivery_tag = delivery_tag

    def __await__(self) -> Generator[object, None, None]:
        future = self._future
        if future.done():
            return future.__await__()
        # A waiter cancelled by its own timeout or task cancels the shield,
        # never the shared future that holds the broker's verdict.
        return asyncio.shield(future).__await__()

    def done(self) -> bool:
        return self._future.done()

    def __repr__(self) -> str:
        state = "pending"
        if self._future.done():
            state = "failed" if self._future.exception() else "acked"
        return f"<Confirmation #{self.delivery_tag} {state}>"


def _retrieve(future: asyncio.Future[None]) -> None:
    # A publisher may never await its confirmations; mark the exception as
    # seen so asyncio does not log "exception was never retrieved".
    if not future.cancelled():
        future.exception()


class Consumer(ConsumerInfo[Delivery]):
    """An async iterator of deliveries from ``basic_consume``.

    Iteration ends after a cancel from either side (``cancel()``, or the
    broker's basic.cancel); it raises the channel's error if the channel
    closes with one. ``async with`` cancels on exit. Deliveries it received
    but never handed out go back to the broker (requeued) when it ends,
    unless it is no_ack.
    """

    __slots__ = ("_channel", "_state", "_waiter")

    def __init__(self, channel: Channel, state: ConsumerSession[Delivery]) -> None:
        self._channel = channel
        self._state = state
        self._waiter: asyncio.Future[None] | None = None
        state.wake = self._wake

    def __aiter__(self) -> AsyncIterator[Delivery]:
        return self

    async def __anext__(self) -> Delivery:
        state = self._state
        delivery = state.take()
        while delivery is None:
            if state.ended:
                error = state.error
                if error is not None:
                    state.error = None  # raised once; then the iteration is over
                    raise error
                raise StopAsyncIteration
            waiter = self._channel._loop.create_future()
            self._waiter = waiter
            try:
                await waiter
            finally:
                self._waiter = None
            delivery = state.take()
        return delivery

    async def cancel(self, *, timeout: float | None = None) -> None:
        """Stop the consumer (basic.cancel); iteration ends, and deliveries
        not handed out yet go back to the broker. Idempotent.

        Raises:
            TimeoutError: no cancel-ok within ``timeout``.
        """
        timeout = check_timeout(timeout)
        state = self._state
        if state.active and self._channel.is_open:
            state.active = False
            await self._channel.basic_cancel(state.consumer_tag, timeout=timeout)

    async def __aenter__(self) -> Consumer:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.cancel()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)


class Channel(
    ChannelInfo[Delivery], AsyncChannelMethods[Confirmation | None, Delivery, Consumer]
):
    """An AMQP channel for asyncio programs; open one with
    ``await connection.channel()``. Every generated method of
    :class:`amqp_client.spec.AsyncChannelMethods` is available.
    """

    __slots__ = ("_link", "_loop", "_state")

    def __init__(self, link: AsyncLink, opened: Waiter[None], recorded: bool) -> None:
        self._link = link
        self._loop = link.loop
        self._state: ChannelSession[Delivery] = link.session.open_channel(
            functools.partial(Delivery, self), opened, recorded=recorded
        )

    @property
    def connection(self) -> Connection:
        """The connection this channel belongs to."""
        return self._link.connection

    async def close(
        self, reply_code: int = ReplyCode.REPLY_SUCCESS, reply_text: str = ""
    ) -> None:
        """Close the channel (channel.close handshake). Idempotent."""
        state = self._state
        if not state.close(reply_code, reply_text):
            return
        closed: asyncio.Future[None] = self._loop.create_future()
        state.closed_waiters.append(closed)
        await asyncio.shield(closed)

    async def __aenter__(self) -> Channel:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def flow(self, active: bool, *, timeout: float | None = None) -> bool:
        """Ask the broker to pause (False) or resume (True) deliveries."""
        reply = await self.channel_flow(active=active, timeout=timeout)
        return reply.active

    # --- generated API hooks ---------------------------------------------------------

    async def _rpc(self, method: Method, timeout: float | None) -> Method:
        reply = await self._request(method, timeout)
        assert isinstance(reply, Method)
        return reply

    async def _send(self, method: Method) -> None:
        state = self._state
        state.check_open()
        if state.connection.recovering:
            await self._link.until_ready(None)
        state.send(method)

    async def _publish(
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
        if not link.publishable(state):
            state.check_open()
            # Bad arguments fail now, not after the wait.
            check_publish(body, exchange, routing_key, mandatory, immediate, properties)
            await link.wait_until(
                lambda: state.error is not None or link.publishable(state),
                timeout,
                "publishing could not go on",
            )
        tag = state.publish(
            body, properties, exchange, routing_key, mandatory, immediate
        )
        if tag is None:
            return None
        future: asyncio.Future[None] = self._loop.create_future()
        future.add_done_callback(_retrieve)
        state.track(tag, future, mandatory, exchange, routing_key, bytes(body))
        return Confirmation(future, tag)

    async def _get(self, method: BasicGet, timeout: float | None) -> Delivery | None:
        reply = await self._request(method, timeout)
        assert reply is None or isinstance(reply, Delivery)
        return reply

    async def _consume(self, method: BasicConsume, timeout: float | None) -> Consumer:
        consumer = Consumer(self, self._state.new_consumer(method))
        await self._request(method, timeout, consumer._state)
        return consumer

    # --- plumbing --------------------------------------------------------------------

    async def _request(
        self,
        method: Method,
        timeout: float | None,
        consumer: ConsumerSession[Delivery] | None = None,
    ) -> Reply:
        state = self._state
        state.check_open()
        if state.connection.recovering:
            await self._link.until_ready(timeout)
        waiter: asyncio.Future[Reply] = self._loop.create_future()
        state.request(method, waiter, consumer=consumer)
        return await wait(waiter, timeout, method.NAME)

    def _settle(self, method: Method, epoch: int) -> None:
        self._state.settle(method, epoch)


async def wait(waiter: asyncio.Future[T], timeout: float | None, what: str) -> T:
    """Await a request's reply, at most ``timeout`` seconds.

    Raises:
        TimeoutError: no reply within ``timeout``; the request keeps its
            place, so later replies still match their requests.
    """
    if timeout is None:
        return await waiter
    try:
        return await asyncio.wait_for(asyncio.shield(waiter), timeout)
    except TimeoutError:
        waiter.cancel()  # its reply, if it comes, is dropped
        raise TimeoutError(f"no reply to {what} within {timeout} s") from None


def open_channel(
    link: AsyncLink, opened: Waiter[None], *, recorded: bool = True
) -> tuple[Channel, ChannelSession[Delivery]]:
    """Open a channel (its open-ok resolves ``opened``): the user's object
    and its state, for the connection that drives it."""
    channel = Channel(link, opened, recorded)
    return channel, channel._state
