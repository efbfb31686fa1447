"""Blocking channels, consumers, deliveries and confirmations.

``Channel`` is the generated ``ChannelMethods`` with its hooks filled in;
all channel state lives in its :class:`~amqp_client.session.channel.ChannelSession`,
which is only touched under the connection's lock. This module makes
waiters and blocks on them (outside the lock), with the same names and
parameters as the asyncio front. Every call that waits takes ``timeout``
and raises ``TimeoutError`` when it passes.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import queue
import threading
import time
from collections.abc import Callable, Collection, Iterator
from contextlib import AbstractContextManager
from types import TracebackType
from typing import TYPE_CHECKING, Protocol, TypeVar

from amqp_client._delivery import DeliveryData, Processing
from amqp_client._spec_base import Method, check_timeout
from amqp_client.blocking._waiter import Waiter
from amqp_client.errors import AMQPError, UsageError
from amqp_client.session.api import ChannelInfo, ConsumerInfo
from amqp_client.session.channel import ChannelSession, check_publish
from amqp_client.session.connection import ConnectionSession
from amqp_client.session.consumers import (
    ConsumerSession,
    check_callback,
    finish_callback,
)
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
from amqp_client.spec.api import ReplyT

if TYPE_CHECKING:
    from amqp_client.blocking.connection import Connection

__all__ = [
    "BlockingLink",
    "Channel",
    "Confirmation",
    "Consumer",
    "Delivery",
    "DeliveryCallback",
    "Process",
    "drain",
    "open_channel",
]

log = logging.getLogger("amqp_client.blocking")

T = TypeVar("T")

#: What ``basic_consume(callback=...)`` takes: a function called with each
#: delivery (its result is ignored).
DeliveryCallback = Callable[["Delivery"], object]


class _Worker(threading.local):
    """The callback consumer whose worker thread this is (None elsewhere):
    a close from inside a callback does not wait for its own callback."""

    consumer: Consumer | None = None


_WORKER = _Worker()


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

    def wait_for(self, waiter: Waiter[T], timeout: float | None) -> bool:
        """Wait (lock not held) until ``waiter`` is settled, at most
        ``timeout`` seconds; whether it is. The waiting thread reads the
        socket itself when it can (see the connection's ``lead``)."""

    def following(self) -> AbstractContextManager[None]:
        """Around a wait (lock not held) for input another thread reads:
        the I/O thread reads at once instead of after its rest."""

    def read_until(self, done: Callable[[], bool], deadline: float | None) -> bool:
        """Read the socket on this thread (lock not held) until ``done()``
        or ``deadline`` (``time.monotonic()``), if no other thread than the
        I/O thread is reading; whether this thread read."""


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
        self._settled = True

    def nack(self, multiple: bool = False, requeue: bool = True) -> None:
        """Reject this message (and all before it if ``multiple``).

        Raises:
            ChannelClosed: the channel closed; the delivery tag is dead.
        """
        self._channel._settle(
            BasicNack(self.delivery_tag, multiple=multiple, requeue=requeue),
            self._epoch,
        )
        self._settled = True

    def reject(self, requeue: bool = True) -> None:
        """Reject this one message.

        Raises:
            ChannelClosed: the channel closed; the delivery tag is dead.
        """
        self._channel._settle(
            BasicReject(self.delivery_tag, requeue=requeue), self._epoch
        )
        self._settled = True

    def process(self, requeue: bool = False) -> Process:
        """``with delivery.process():`` acks the message when the block
        ends normally; when it raises, rejects it (``requeue`` as given)
        and the exception goes on. It sends nothing when the block settled
        the message itself (``ack``/``nack``/``reject``) or the consumer is
        no_ack (:attr:`settled`). A block stopped by ``KeyboardInterrupt``
        or ``SystemExit`` rejects with requeue=True: the work was
        interrupted, the message is not lost.

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
    """The context manager ``Delivery.process()`` returns."""

    __slots__ = ()

    _delivery: Delivery

    def __enter__(self) -> Delivery:
        self.enter()
        return self._delivery

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.exit(exc_type, exc, tb)


class Confirmation:
    """The broker's verdict on one publish in confirm mode.

    ``wait()`` returns when the broker acks; raises ``MessageNacked`` on a
    nack, ``MessageReturned`` when a mandatory publish came back, the
    channel's or connection's error if either closes first, and
    ``TimeoutError`` when ``timeout`` passes (the outcome stays pending for
    a later ``wait()``).
    """

    __slots__ = ("_future", "_link", "delivery_tag")

    def __init__(
        self, future: Waiter[None], delivery_tag: int, link: BlockingLink
    ) -> None:
        self._future = future
        self._link = link
        self.delivery_tag = delivery_tag

    def wait(self, timeout: float | None = None) -> None:
        timeout = check_timeout(timeout)
        if not self._link.wait_for(self._future, timeout):
            raise TimeoutError(
                f"no confirmation of #{self.delivery_tag} within {timeout} s"
            )
        self._future.result(0)

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

    With ``basic_consume(callback=fn, concurrency=n)`` it is not iterated:
    ``n`` worker threads (one dispatch thread when ``n`` is 1; never the
    I/O thread) hand each delivery to ``fn`` inside ``delivery.process()``,
    so at most ``n`` run at once.
    """

    __slots__ = (
        "_callback",
        "_channel",
        "_concurrency",
        "_lock",
        "_signal",
        "_state",
        "_take_lock",
        "_threads",
        "_waiting",
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
        self._lock = channel._link.lock
        # A reader with nothing to take waits on this (outside the lock);
        # the I/O thread puts a token when it pushes to a waiting reader.
        self._signal: queue.SimpleQueue[None] = queue.SimpleQueue()
        self._waiting = False
        self._callback = callback
        self._concurrency = concurrency
        # Workers take deliveries one at a time (one reader on the buffer).
        self._take_lock = threading.Lock()
        self._threads: list[threading.Thread] = []
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
            UsageError: the consumer hands its deliveries to a callback.
        """
        timeout = check_timeout(timeout)
        if self._callback is not None:
            raise UsageError("this consumer hands its deliveries to its callback")
        return self._get(timeout)

    def _get(self, timeout: float | None) -> Delivery | None:
        state = self._state
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            if not state.buffered and not state.ended:
                # Read the socket here while nothing is buffered, when no
                # other thread does: no hand-off from the I/O thread.
                if self._channel._link.read_until(self._arrived, deadline):
                    if self._arrived():
                        continue
                    if deadline is not None and time.monotonic() >= deadline:
                        raise TimeoutError(f"no delivery within {timeout} s")
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

    def _arrived(self) -> bool:
        state = self._state
        return bool(state.buffered) or state.ended

    def _wait_token(self, deadline: float | None, timeout: float | None) -> None:
        remaining = None if deadline is None else deadline - time.monotonic()
        try:
            if remaining is not None and remaining <= 0:
                raise queue.Empty
            with self._channel._link.following():
                self._signal.get(timeout=remaining)
        except queue.Empty:
            self._waiting = False
            state = self._state
            if not state.buffered and not state.ended:
                raise TimeoutError(f"no delivery within {timeout} s") from None

    def cancel(self, *, timeout: float | None = None) -> None:
        """Stop the consumer (basic.cancel); iteration ends, and deliveries
        not handed out yet go back to the broker. With a callback, it also
        waits until the callbacks in flight are done (not the one calling
        it). Idempotent.

        Raises:
            TimeoutError: no cancel-ok, or callbacks still running, after
                ``timeout``.
        """
        timeout = check_timeout(timeout)
        deadline = None if timeout is None else time.monotonic() + timeout
        state = self._state
        if state.active and self._channel.is_open:
            state.active = False
            self._channel.basic_cancel(state.consumer_tag, timeout=timeout)
        current = threading.current_thread()
        for thread in self._threads:
            if thread is current:
                continue
            remaining = None if deadline is None else deadline - time.monotonic()
            thread.join(None if remaining is None else max(0.0, remaining))
            if thread.is_alive():
                raise TimeoutError(
                    f"callbacks of consumer {state.consumer_tag!r} still running "
                    f"after {timeout} s"
                )

    # --- callbacks ---------------------------------------------------------------------

    def _start(self) -> None:
        """Start the worker threads (after consume-ok)."""
        with self._lock:
            self._channel._state.start_callbacks(self._state, self._concurrency)
        for number in range(self._concurrency):
            thread = threading.Thread(
                target=self._work,
                name=f"amqp-consumer {self._state.consumer_tag} #{number}",
                daemon=True,
            )
            self._threads.append(thread)
            thread.start()

    def _work(self) -> None:
        _WORKER.consumer = self
        try:
            while True:
                with self._take_lock:
                    delivery = self._next()
                if delivery is None:
                    return
                self._run(delivery)
        finally:
            if _WORKER.consumer is self:
                _WORKER.consumer = None
                with self._lock:
                    self._channel._state.worker_exited(self._state)

    def _next(self) -> Delivery | None:
        try:
            return self._get(None)
        except AMQPError as error:
            log.warning("consumer %r ended: %s", self._state.consumer_tag, error)
            return None

    def _run(self, delivery: Delivery) -> None:
        callback = self._callback
        assert callback is not None
        processing = delivery.process()
        processing.enter()
        try:
            callback(delivery)
        except BaseException as exc:
            tag = self._state.consumer_tag
            finish_callback(processing, tag, delivery.delivery_tag, exc)
            if not isinstance(exc, Exception):
                raise  # KeyboardInterrupt, SystemExit: the worker ends
            return
        finish_callback(
            processing, self._state.consumer_tag, delivery.delivery_tag, None
        )

    def _detach(self) -> None:
        """This worker closes its own channel or connection: no one waits
        for it (it would wait for itself)."""
        _WORKER.consumer = None
        with self._lock:
            self._channel._state.worker_exited(self._state)

    def __enter__(self) -> Consumer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.cancel()


class Channel(
    ChannelInfo[Delivery],
    ChannelMethods[Confirmation | None, Delivery, Consumer, DeliveryCallback],
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
        """Close the channel gracefully: cancel its consumers, let the
        callbacks in flight finish and the outstanding confirms arrive (at
        most ``timeout`` seconds; callbacks still running then go on, but
        their acks fail), then the channel.close handshake (at most
        ``timeout`` again). Idempotent.

        Raises:
            TimeoutError: no close-ok within ``timeout``.
            UsageError: called on the I/O thread.
        """
        timeout = check_timeout(timeout)
        self._link.check_not_io_thread()
        if timeout != 0:
            drain(self._link.lock, [self._state], timeout)
        closed: Waiter[None] = Waiter()
        with self._link.lock:
            if not self._state.close(reply_code, reply_text):
                return
            self._state.closed_waiters.append(closed)
        result(self._link, closed, timeout, f"channel {self.channel_id} close")

    def __enter__(self) -> Channel:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def flow(self, active: bool, *, timeout: float | None = None) -> bool:
        """Ask the broker to pause (False) or resume (True) deliveries."""
        return self.channel_flow(active=active, timeout=timeout).active

    # --- generated API hooks ---------------------------------------------------------

    def _rpc(
        self, method: Method, timeout: float | None, reply: type[ReplyT]
    ) -> ReplyT:
        result = self._request(method, timeout)
        assert isinstance(result, reply)
        return result

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
        return Confirmation(waiter, tag, link)

    def _get(self, method: BasicGet, timeout: float | None) -> Delivery | None:
        reply = self._request(method, timeout)
        assert reply is None or isinstance(reply, Delivery)
        return reply

    def _consume(
        self,
        method: BasicConsume,
        timeout: float | None,
        callback: DeliveryCallback | None,
        concurrency: int,
    ) -> Consumer:
        check_callback(callback, concurrency, coroutine=False)
        state = self._state.new_consumer(method)
        consumer = Consumer(self, state, callback, concurrency)
        try:
            self._request(method, timeout, state)
        except BaseException:
            with self._link.lock:
                self._state.abandon_consumer(state)
            raise
        if callback is not None:
            consumer._start()
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
        return result(self._link, waiter, timeout, method.NAME)

    def _settle(self, method: Method, epoch: int) -> None:
        with self._link.lock:
            self._state.settle(method, epoch)


def result(
    link: BlockingLink, waiter: Waiter[T], timeout: float | None, what: str
) -> T:
    """Wait for a request's outcome, at most ``timeout`` seconds.

    Raises:
        TimeoutError: none within ``timeout``; the request keeps its place,
            so later replies still match their requests.
    """
    if not link.wait_for(waiter, timeout):
        with link.lock:  # the I/O thread settles waiters under it
            cancelled = waiter.cancel()  # its reply, if it comes, is dropped
        if cancelled:
            raise TimeoutError(f"no reply to {what} within {timeout} s")
    return waiter.result(0)


def drain(
    lock: threading.Lock,
    channels: Collection[ChannelSession[Delivery]],
    timeout: float | None,
) -> None:
    """A graceful close's first step on ``channels``: cancel their
    consumers, then wait at most ``timeout`` seconds for the cancels, the
    callbacks in flight and the outstanding confirms (callbacks still
    running then are left to finish; their acks fail). A callback closing
    its own channel or connection is not waited for."""
    worker = _WORKER.consumer
    if worker is not None and worker._channel._state in channels:
        worker._detach()
    with lock:
        waiters: list[Waiter[Reply]] = []
        for state in channels:
            waiters += state.drain(Waiter[Reply])
    deadline = None if timeout is None else time.monotonic() + timeout
    for waiter in waiters:
        remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
        # The outcome does not matter here, only that it came.
        with contextlib.suppress(Exception):
            waiter.result(remaining)
        if not waiter.done():
            log.warning(
                "closing with callbacks or confirms still pending after %s s", timeout
            )
            with lock:
                for state in channels:
                    state.abandon_callbacks()
            return


def open_channel(
    link: BlockingLink, opened: AnyWaiter[None], *, recorded: bool = True
) -> tuple[Channel, ChannelSession[Delivery]]:
    """Open a channel (lock held; its open-ok resolves ``opened``): the
    user's object and its state, for the connection that drives it."""
    channel = Channel(link, opened, recorded)
    return channel, channel._state
