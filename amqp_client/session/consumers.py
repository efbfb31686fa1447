"""Consumers and the accounting of buffered deliveries.

A delivery that arrived but was not handed to the application yet is
*buffered*: it counts against the connection's :class:`DeliveryBudget`
(bytes of bodies and messages). When either passes its limit the front
stops reading the socket; when both are back at half, it reads again.
Every way out of a buffer releases its share: handed out, the consumer
cancelled or ended (either side), the channel closed, the connection lost.

A consumer that ends with deliveries it never handed out returns them to
the broker (basic.reject with requeue) unless it is no_ack: they would
otherwise stay unacked, and so invisible to other consumers, until the
channel closes. A no_ack consumer's deliveries already belong to the
application: it still yields them after it ended, but they no longer hold
the read pause.

No I/O and no waiting here: the front wakes its readers through
``ConsumerSession.wake``.
"""

from __future__ import annotations

import functools
import inspect
import logging
from collections import deque
from collections.abc import Callable
from typing import Generic, TypeVar

from amqp_client import checks
from amqp_client._delivery import DeliveryData, Processing
from amqp_client.errors import AMQPError
from amqp_client.session.link import Waiter
from amqp_client.spec import BasicConsume

__all__ = [
    "DEFAULT_MAX_BUFFERED_BYTES",
    "DEFAULT_MAX_BUFFERED_MESSAGES",
    "ConsumerSession",
    "DeliveryBudget",
    "check_callback",
    "finish_callback",
]

_log = logging.getLogger("amqp_client")

D = TypeVar("D", bound=DeliveryData)

#: Bytes of message bodies a connection buffers for its consumers before
#: it stops reading (``connect(max_buffered_bytes=...)``).
DEFAULT_MAX_BUFFERED_BYTES = 64 * 1024 * 1024
#: Messages a connection buffers before it stops reading
#: (``connect(max_buffered_messages=...)``).
DEFAULT_MAX_BUFFERED_MESSAGES = 20_000


def _nothing() -> None:
    return None


def check_callback(callback: object, concurrency: object, coroutine: bool) -> None:
    """Check basic_consume's ``callback`` and ``concurrency`` before
    anything is sent. ``coroutine``: the front wants a coroutine function.

    Raises:
        TypeError: not callable (or, for asyncio, not a coroutine
            function); a concurrency that is not an int (bool refused).
        ValueError: a concurrency below 1.
    """
    if type(concurrency) is bool or not isinstance(concurrency, int):
        raise TypeError(f"concurrency: expected int, got {type(concurrency).__name__}")
    if concurrency < 1:
        raise ValueError(f"concurrency: must be at least 1, got {concurrency}")
    if callback is None:
        if concurrency != 1:
            raise ValueError("concurrency: needs a callback")
        return
    if not callable(callback):
        raise TypeError(f"callback: expected a callable, got {type(callback).__name__}")
    if coroutine and not _is_coroutine_function(callback):
        raise TypeError(
            f"callback: expected a coroutine function (async def), got {callback!r}"
        )
    if not coroutine and _is_coroutine_function(callback):
        raise TypeError(
            f"callback: {callback!r} is a coroutine function; the blocking "
            "client calls a plain function (use amqp_client.aio for async def)"
        )


def finish_callback(
    processing: Processing,
    consumer_tag: str,
    delivery_tag: int,
    exc: BaseException | None,
) -> None:
    """A consumer callback ended (``exc``: what it raised, or None): settle
    its delivery through ``processing`` (ack, or reject), logging a failed
    callback with its delivery tag, and an ack that could not be sent (the
    channel or connection is gone; the broker redelivers the message).
    Both fronts' workers end each callback here."""
    if isinstance(exc, Exception):
        _log.error(
            "consumer %r: callback failed on delivery %d; rejected it (requeue=False)",
            consumer_tag,
            delivery_tag,
            exc_info=exc,
        )
    try:
        if exc is None:
            processing.exit(None, None, None)
        else:
            processing.exit(type(exc), exc, exc.__traceback__)
    except Exception as error:
        _log.warning(
            "consumer %r: could not ack delivery %d: %s",
            consumer_tag,
            delivery_tag,
            error,
        )


def _is_coroutine_function(callback: object) -> bool:
    # A partial of a coroutine function, or an object whose __call__ is one,
    # counts too.
    while isinstance(callback, functools.partial):
        callback = callback.func
    if inspect.iscoroutinefunction(callback):
        return True
    call = getattr(type(callback), "__call__", None)  # noqa: B004
    return inspect.iscoroutinefunction(call)


class DeliveryBudget:
    """What a connection's consumers hold, against two limits.

    ``over`` turns True when bytes or messages pass their limit and False
    again only when both are at or below half (hysteresis, so reading does
    not flap on every delivery).
    """

    __slots__ = ("max_bytes", "max_messages", "messages", "on_change", "over", "size")

    def __init__(
        self,
        max_bytes: int = DEFAULT_MAX_BUFFERED_BYTES,
        max_messages: int = DEFAULT_MAX_BUFFERED_MESSAGES,
    ) -> None:
        self.max_bytes = checks.at_least_one("max_buffered_bytes", max_bytes)
        self.max_messages = checks.at_least_one("max_buffered_messages", max_messages)
        self.messages = 0
        self.size = 0
        #: Whether reading should pause for the consumers to catch up (set
        #: here only; an attribute, not a property: it is read on every
        #: request and reply).
        self.over = False
        #: Called when ``over`` changes (the connection reconsiders reading).
        self.on_change: Callable[[], None] = _nothing

    def __repr__(self) -> str:
        return (
            f"<DeliveryBudget {self.messages}/{self.max_messages} messages, "
            f"{self.size}/{self.max_bytes} bytes>"
        )

    def add(self, size: int) -> None:
        self.messages += 1
        self.size += size
        if not self.over and (
            self.messages >= self.max_messages or self.size >= self.max_bytes
        ):
            self.over = True
            self.on_change()

    def release(self, messages: int, size: int) -> None:
        self.messages -= messages
        self.size -= size
        if (
            self.over
            and self.messages <= self.max_messages // 2
            and self.size <= self.max_bytes // 2
        ):
            self.over = False
            self.on_change()


class ConsumerSession(Generic[D]):
    """One consumer's state: its buffered deliveries and how it ended.

    Attributes:
        queue: the queue it consumes from (renamed with a server-named
            queue on recovery).
        consumer_tag: the broker's tag ("" until consume-ok).
        method: the basic.consume that started it (recovery repeats it).
        active: consume-ok arrived and no cancel was asked for yet.
        ended: it was cancelled (either side) or its channel ended.
        error: what ended it, when the channel closed with an error.
        wake: set by the front: called when a delivery or the end arrives.
    """

    __slots__ = (
        "_budget",
        "_idle_waiters",
        "_items",
        "_sizes",
        "abandon",
        "abandoned",
        "active",
        "consumer_tag",
        "ended",
        "error",
        "method",
        "queue",
        "wake",
        "workers",
    )

    def __init__(self, method: BasicConsume, budget: DeliveryBudget) -> None:
        self.method = method
        self.queue = method.queue
        self.consumer_tag = method.consumer_tag
        self.active = False
        self.ended = False
        self.error: AMQPError | None = None
        self.wake: Callable[[], None] = _nothing  # the front sets its own
        #: A callback consumer's workers (tasks or threads) still running.
        self.workers = 0
        #: Set by a callback consumer's front: stop waiting for the
        #: callbacks in flight (close past its timeout; asyncio cancels them).
        self.abandon: Callable[[], None] = _nothing
        self._idle_waiters: list[Waiter[None]] = []
        #: Its basic_consume() gave up before consume-ok (see
        #: ChannelSession.abandon_consumer).
        self.abandoned = False
        self._budget = budget
        # Made at the first delivery: an empty deque is 760 bytes, more than
        # the rest of a consumer's state, and many consumers never get one.
        self._items: deque[D] | None = None
        self._sizes = 0  # bytes still counted against the budget

    def __repr__(self) -> str:
        state = "ended" if self.ended else "active" if self.active else "starting"
        return (
            f"<ConsumerSession {self.consumer_tag!r} on {self.queue!r} {state}, "
            f"{self.buffered} buffered>"
        )

    @property
    def no_ack(self) -> bool:
        return self.method.no_ack

    @property
    def buffered(self) -> int:
        """Deliveries received and not handed out yet."""
        items = self._items
        return len(items) if items is not None else 0

    def push(self, delivery: D) -> None:
        """A delivery for this consumer arrived."""
        size = len(delivery.body)
        items = self._items
        if items is None:
            items = self._items = deque()
        items.append(delivery)
        self._sizes += size
        self._budget.add(size)
        self.wake()

    def take(self) -> D | None:
        """The next delivery to hand out (its share released), or None."""
        items = self._items
        if not items:
            return None
        delivery = items.popleft()
        if not self.ended or not self.no_ack:
            size = len(delivery.body)
            self._sizes -= size
            self._budget.release(1, size)
        return delivery

    def end(self, error: AMQPError | None = None) -> list[int]:
        """The consumer is over: cancelled (either side) or its channel
        ended. Returns the delivery tags to hand back to the broker (its
        buffered deliveries, unless no_ack). Idempotent."""
        if self.ended:
            return []
        self.ended = True
        self.active = False
        self.error = error
        items = self._items or ()
        self._budget.release(len(items), self._sizes)
        self._sizes = 0
        tags: list[int] = []
        if not self.no_ack:
            tags = [delivery.delivery_tag for delivery in items]
            self._items = None
            if tags:
                _log.debug(
                    "consumer %r ended with %d deliveries never handed out; "
                    "returning them to the broker",
                    self.consumer_tag,
                    len(tags),
                )
        self.wake()
        return tags

    def drop_buffered(self) -> None:
        """The connection was lost and will be recovered: the buffered
        deliveries' tags are dead (the broker redelivers them); a no_ack
        consumer keeps its own."""
        if self.no_ack:
            return
        self._budget.release(self.buffered, self._sizes)
        self._sizes = 0
        self._items = None

    # --- a callback consumer's workers ---------------------------------------------------

    def worker_exited(self) -> None:
        """One of its workers is done (or no longer counted: it is the one
        that closes the channel or connection)."""
        self.workers -= 1
        if self.workers <= 0:
            self.stop_waiting()

    def stop_waiting(self) -> None:
        """Resolve the idle waiters now (the connection was lost: a
        graceful close has nothing left to wait for)."""
        waiters, self._idle_waiters = self._idle_waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)

    def when_idle(self, waiter: Waiter[None]) -> None:
        """Resolve ``waiter`` once no worker runs."""
        if self.workers <= 0:
            waiter.set_result(None)
        else:
            self._idle_waiters.append(waiter)
