"""asyncio channels, consumers, deliveries and confirmations.

``Channel`` is the generated ``AsyncChannelMethods`` with its hooks filled
in; all channel state lives in its :class:`~amqp_client.session.channel.ChannelSession`.
This module only makes futures, awaits them, and waits (through its
connection's :class:`AsyncLink`) while publishing must wait.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import logging
from collections.abc import (
    AsyncIterator,
    Awaitable,
    Callable,
    Collection,
    Generator,
)
from types import TracebackType
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from amqp_client._delivery import DeliveryData, Processing
from amqp_client._spec_base import Method, check_timeout
from amqp_client.errors import AMQPError, UsageError
from amqp_client.session.api import ChannelInfo, ConsumerInfo
from amqp_client.session.channel import ChannelSession, check_publish
from amqp_client.session.connection import ConnectionSession
from amqp_client.session.consumers import (
    ConsumerSession,
    check_callback,
    finish_callback,
)
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
from amqp_client.spec.api import ReplyT

if TYPE_CHECKING:
    from amqp_client.aio.connection import Connection

__all__ = [
    "AsyncLink",
    "Channel",
    "Confirmation",
    "Consumer",
    "Delivery",
    "DeliveryCallback",
    "Process",
    "drain",
    "open_channel",
]

log = logging.getLogger("amqp_client.aio")

T = TypeVar("T")

#: What ``basic_consume(callback=...)`` takes: a coroutine function called
#: with each delivery (its result is ignored).
DeliveryCallback = Callable[["Delivery"], Awaitable[object]]

#: The callback consumer whose worker task this is (None elsewhere): a
#: close from inside a callback does not wait for its own callback.
_WORKER: contextvars.ContextVar[Consumer | None] = contextvars.ContextVar(
    "amqp_client_aio_worker", default=None
)


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

    @property
    def busy_poll(self) -> float:
        """``connect(busy_poll=)``: 0 when waits never poll."""

    async def poll_for(
        self, waiter: asyncio.Future[Any], timeout: float | None
    ) -> None:
        """Read the socket on this task for at most ``busy_poll`` seconds
        (and ``timeout``), until ``waiter`` is settled; one loop turn
        follows when it is."""


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
        self._settled = True

    async def nack(self, multiple: bool = False, requeue: bool = True) -> None:
        """Reject this message (and all before it if ``multiple``).

        Raises:
            ChannelClosed: the channel closed; the delivery tag is dead.
        """
        self._channel._settle(
            BasicNack(self.delivery_tag, multiple=multiple, requeue=requeue),
            self._epoch,
        )
        self._settled = True

    async def reject(self, requeue: bool = True) -> None:
        """Reject this one message.

        Raises:
            ChannelClosed: the channel closed; the delivery tag is dead.
        """
        self._channel._settle(
            BasicReject(self.delivery_tag, requeue=requeue), self._epoch
        )
        self._settled = True

    def process(self, requeue: bool = False) -> Process:
        """``async with delivery.process():`` acks the message when the
        block ends normally; when it raises, rejects it (``requeue`` as
        given) and the exception goes on. It sends nothing when the block
        settled the message itself (``ack``/``nack``/``reject``) or the
        consumer is no_ack (:attr:`settled`). A block stopped by
        cancellation rejects with requeue=True: the work was interrupted,
        the message is not lost.

        Raises:
            TypeError: ``requeue`` is not a bool.
            ChannelClosed, ConnectionClosed: (on exit) the ack could not be
                sent; the broker redelivers the message.
        """
        channel = self._channel
        return Process(
            self, requeue, channel._settle, channel._state.process_span(self)
        )


class Process(Processing):
    """The async context manager ``Delivery.process()`` returns."""

    __slots__ = ()

    _delivery: Delivery

    async def __aenter__(self) -> Delivery:
        self.enter()
        return self._delivery

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.exit(exc_type, exc, tb)


class Confirmation:
    """The broker's verdict on one publish in confirm mode; await it.

    Resolves to None when the broker acks; raises ``MessageNacked`` on a
    nack, ``MessageReturned`` when a mandatory publish came back, and the
    channel's or connection's error if either closes first. Awaiting it
    under a timeout (``asyncio.wait_for``) or from a task that is cancelled
    never changes its outcome for anyone else.
    """

    __slots__ = ("_future", "_link", "delivery_tag")

    def __init__(
        self,
        future: asyncio.Future[None],
        delivery_tag: int,
        link: AsyncLink | None = None,
    ) -> None:
        self._future = future
        self.delivery_tag = delivery_tag
        self._link = link  # its connection when busy_poll is on, else None

    def __await__(self) -> Generator[object, None, None]:
        future = self._future
        if self._link is not None and not future.done():
            return self._polled(self._link).__await__()
        if future.done():
            return future.__await__()
        # A waiter cancelled by its own timeout or task cancels the shield,
        # never the shared future that holds the broker's verdict.
        return asyncio.shield(future).__await__()

    async def _polled(self, link: AsyncLink) -> None:
        future = self._future
        await link.poll_for(future, None)
        await (future if future.done() else asyncio.shield(future))

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


class Consumer(ConsumerInfo[Delivery]):
    """An async iterator of deliveries from ``basic_consume``.

    Iteration ends after a cancel from either side (``cancel()``, or the
    broker's basic.cancel); it raises the channel's error if the channel
    closes with one. ``async with`` cancels on exit. Deliveries it received
    but never handed out go back to the broker (requeued) when it ends,
    unless it is no_ack.

    With ``basic_consume(callback=fn, concurrency=n)`` it is not iterated:
    ``n`` worker tasks hand each delivery to ``fn`` inside
    ``delivery.process()``, so at most ``n`` run at once.
    """

    __slots__ = (
        "_callback",
        "_channel",
        "_concurrency",
        "_state",
        "_take_lock",
        "_tasks",
        "_waiter",
    )

    def __init__(
        self,
        channel: Channel,
        state: ConsumerSession[Delivery],
        callback: DeliveryCallback | None = None,
        concurrency: int = 1,
    ) -> None:
        self._channel = channel
        self._state = state
        self._waiter: asyncio.Future[None] | None = None
        self._callback = callback
        self._concurrency = concurrency
        self._tasks: set[asyncio.Task[None]] = set()
        # Workers take deliveries one at a time (one waiter on the buffer).
        self._take_lock = asyncio.Lock() if concurrency > 1 else None
        state.wake = self._wake

    def __aiter__(self) -> AsyncIterator[Delivery]:
        return self

    async def __anext__(self) -> Delivery:
        if self._callback is not None:
            raise UsageError("this consumer hands its deliveries to its callback")
        return await self._take()

    async def _take(self) -> Delivery:
        state = self._state
        delivery = state.take()
        while delivery is None:
            if state.ended:
                error = state.error
                if error is not None:
                    state.error = None  # raised once; then the iteration is over
                    raise error
                raise StopAsyncIteration
            channel = self._channel
            waiter = channel._loop.create_future()
            self._waiter = waiter
            try:
                if channel._link.busy_poll:
                    await channel._link.poll_for(waiter, None)
                await waiter
            finally:
                self._waiter = None
            delivery = state.take()
        return delivery

    async def cancel(self, *, timeout: float | None = None) -> None:
        """Stop the consumer (basic.cancel); iteration ends, and deliveries
        not handed out yet go back to the broker. With a callback, it also
        waits until the callbacks in flight are done (not the one calling
        it). Idempotent.

        Raises:
            TimeoutError: no cancel-ok, or callbacks still running, after
                ``timeout``.
        """
        timeout = check_timeout(timeout)
        loop = self._channel._loop
        deadline = None if timeout is None else loop.time() + timeout
        state = self._state
        if state.active and self._channel.is_open:
            state.active = False
            await self._channel.basic_cancel(state.consumer_tag, timeout=timeout)
        others = self._tasks - {asyncio.current_task()}
        if others:
            remaining = None if deadline is None else max(0.0, deadline - loop.time())
            _, running = await asyncio.wait(others, timeout=remaining)
            if running:
                raise TimeoutError(
                    f"{len(running)} callbacks of consumer {state.consumer_tag!r} "
                    f"still running after {timeout} s"
                )

    # --- callbacks ---------------------------------------------------------------------

    def _start(self) -> None:
        """Start the worker tasks (after consume-ok)."""
        channel = self._channel
        channel._state.start_callbacks(self._state, self._concurrency)
        self._state.abandon = self._abandon
        for number in range(self._concurrency):
            task = channel._loop.create_task(
                self._work(),
                name=f"amqp-consumer {self._state.consumer_tag} #{number}",
            )
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _work(self) -> None:
        _WORKER.set(self)
        try:
            while True:
                lock = self._take_lock
                if lock is None:
                    delivery = await self._next()
                else:
                    async with lock:
                        delivery = await self._next()
                if delivery is None:
                    return
                await self._run(delivery)
        finally:
            if _WORKER.get() is self:
                self._channel._state.worker_exited(self._state)

    async def _next(self) -> Delivery | None:
        try:
            return await self._take()
        except StopAsyncIteration:
            return None
        except AMQPError as error:
            log.warning("consumer %r ended: %s", self._state.consumer_tag, error)
            return None

    async def _run(self, delivery: Delivery) -> None:
        callback = self._callback
        assert callback is not None
        processing = delivery.process()
        processing.enter()
        try:
            await callback(delivery)
        except BaseException as exc:
            tag = self._state.consumer_tag
            finish_callback(processing, tag, delivery.delivery_tag, exc)
            if not isinstance(exc, Exception):
                raise  # cancelled: the worker ends
            return
        finish_callback(
            processing, self._state.consumer_tag, delivery.delivery_tag, None
        )

    def _detach(self) -> None:
        """This worker closes its own channel or connection: no one waits
        for it (it would wait for itself)."""
        _WORKER.set(None)
        self._channel._state.worker_exited(self._state)

    def _abandon(self) -> None:
        current = asyncio.current_task()
        for task in list(self._tasks):
            if task is not current:
                task.cancel()

    async def __aenter__(self) -> Consumer:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.cancel()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)


class Channel(
    ChannelInfo[Delivery],
    AsyncChannelMethods[Confirmation | None, Delivery, Consumer, DeliveryCallback],
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
        self,
        reply_code: int = ReplyCode.REPLY_SUCCESS,
        reply_text: str = "",
        *,
        timeout: float | None = None,
    ) -> None:
        """Close the channel gracefully: cancel its consumers, let the
        callbacks in flight finish and the outstanding confirms arrive (at
        most ``timeout`` seconds; then the callbacks still running are
        cancelled), then the channel.close handshake (at most ``timeout``
        again). Idempotent.

        Raises:
            TimeoutError: no close-ok within ``timeout``.
        """
        timeout = check_timeout(timeout)
        state = self._state
        if timeout != 0:
            await drain(self._loop, [state], timeout)
        if not state.close(reply_code, reply_text):
            return
        closed: asyncio.Future[None] = self._loop.create_future()
        state.closed_waiters.append(closed)
        if timeout is None:
            await asyncio.shield(closed)
        else:
            await wait(closed, timeout, f"channel {state.channel_id} close")

    async def __aenter__(self) -> Channel:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def flow(self, active: bool, *, timeout: float | None = None) -> bool:
        """Ask the broker to pause (False) or resume (True) deliveries."""
        reply = await self.channel_flow(active=active, timeout=timeout)
        return reply.active

    # --- generated API hooks ---------------------------------------------------------

    async def _rpc(
        self, method: Method, timeout: float | None, reply: type[ReplyT]
    ) -> ReplyT:
        result = await self._request(method, timeout)
        assert isinstance(result, reply)
        return result

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
        return Confirmation(future, tag, link if link.busy_poll else None)

    async def _get(self, method: BasicGet, timeout: float | None) -> Delivery | None:
        reply = await self._request(method, timeout)
        assert reply is None or isinstance(reply, Delivery)
        return reply

    async def _consume(
        self,
        method: BasicConsume,
        timeout: float | None,
        callback: DeliveryCallback | None,
        concurrency: int,
    ) -> Consumer:
        check_callback(callback, concurrency, coroutine=True)
        state = self._state.new_consumer(method)
        consumer = Consumer(self, state, callback, concurrency)
        try:
            await self._request(method, timeout, state)
        except BaseException:
            self._state.abandon_consumer(state)
            raise
        if callback is not None:
            consumer._start()
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
        link = self._link
        if link.busy_poll:
            await link.poll_for(waiter, timeout)
        if timeout is None:
            return await waiter  # (what wait() does, without its frame)
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


async def drain(
    loop: asyncio.AbstractEventLoop,
    channels: Collection[ChannelSession[Delivery]],
    timeout: float | None,
) -> None:
    """A graceful close's first step on ``channels``: cancel their
    consumers, then wait at most ``timeout`` seconds for the cancels, the
    callbacks in flight and the outstanding confirms; past it, cancel the
    callbacks still running. A callback closing its own channel or
    connection is not waited for."""
    worker = _WORKER.get()
    if worker is not None and worker._channel._state in channels:
        worker._detach()

    def make() -> asyncio.Future[Reply]:
        future: asyncio.Future[Reply] = loop.create_future()
        future.add_done_callback(_retrieve)
        return future

    waiters: list[asyncio.Future[Reply]] = []
    for state in channels:
        waiters += state.drain(make)
    if not waiters:
        return
    _, pending = await asyncio.wait(waiters, timeout=timeout)
    if pending:
        log.warning(
            "closing with callbacks or confirms still pending after %s s", timeout
        )
        for state in channels:
            state.abandon_callbacks()


def open_channel(
    link: AsyncLink, opened: Waiter[None], *, recorded: bool = True
) -> tuple[Channel, ChannelSession[Delivery]]:
    """Open a channel (its open-ok resolves ``opened``): the user's object
    and its state, for the connection that drives it."""
    channel = Channel(link, opened, recorded)
    return channel, channel._state
