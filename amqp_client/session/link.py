"""The small protocols at the seams of the session layer.

* :class:`Waiter`: what the session resolves (an ``asyncio.Future`` or the
  blocking front's ``Waiter``); the front creates it and waits on it.
* :class:`FrontHooks`: what the connection's session asks of its front:
  write what the core produced, run user callbacks, wake what waits.
* :class:`DeliveryFactory`: how a channel's session makes the front's own
  ``Delivery`` (whose ``ack`` is a coroutine in one front, a plain call in
  the other).
* :func:`next_read_size`: how many bytes a front asks the socket for.

Nothing here does I/O.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Protocol, TypeVar

from amqp_client._delivery import DeliveryData
from amqp_client._spec_base import Method

if TYPE_CHECKING:
    from amqp_client.spec import BasicProperties

__all__ = [
    "Callback",
    "run_callbacks",
    "DeliveryFactory",
    "FrontHooks",
    "READ_LARGE",
    "READ_SMALL",
    "Reply",
    "Waiter",
    "next_read_size",
]

T_contra = TypeVar("T_contra", contravariant=True)
D_co = TypeVar("D_co", bound=DeliveryData, covariant=True)

#: What a front asks one socket read for. A small read stays below glibc's
#: mmap threshold (128 KiB until the process frees a larger block), so its
#: buffer comes from the heap and is reused. A read of 128 KiB or more is
#: a fresh mmap each time: two page faults even when all it gets is a
#: 100-byte reply, which cost a round trip 10-25 µs on a VM.
READ_SMALL = 64 * 1024
#: After a read that filled its buffer (bulk input): fewer, larger reads.
READ_LARGE = 256 * 1024


def next_read_size(asked: int, got: int) -> int:
    """The size of the next read, after one that asked ``asked`` bytes and
    got ``got``: large while reads come back full, small otherwise."""
    return READ_LARGE if got >= asked else READ_SMALL


#: A user callback: called with the event's values, its result ignored.
Callback = Callable[..., object]

#: What a request's waiter gets: the reply method, a delivery (basic.get-ok),
#: or None (basic.get-empty, or a request that waits for nothing).
Reply = Method | DeliveryData | None


class Waiter(Protocol[T_contra]):
    """A one-shot result the session resolves and a front waits on."""

    def done(self) -> bool: ...

    def set_result(self, result: T_contra, /) -> None: ...

    def set_exception(self, exception: BaseException, /) -> None: ...


class FrontHooks(Protocol):
    """What the connection's session asks of the front that drives it."""

    def flush(self, urgent: bool, size: int = 0) -> None:
        """Write what the core has produced (``urgent``: a request that
        someone waits for; else it may be coalesced with what follows;
        ``size``: about how many bytes the command added)."""

    def run_callbacks(self, callbacks: Sequence[Callback], *args: object) -> None:
        """Run user callbacks, the front's way (at once on the event loop,
        or in order on the blocking front's callback thread)."""

    def state_changed(self) -> None:
        """Something publishers or readers wait on changed: blocked or
        unblocked, channel.flow, a channel or the connection ended."""

    def pause_reading(self, paused: bool) -> None:
        """Stop (True) or resume (False) reading the transport: consumers
        hold more than the delivery budget allows, and no reply is awaited."""

    def now(self) -> float:
        """The front's monotonic clock, in seconds (the core's time base)."""


class DeliveryFactory(Protocol[D_co]):
    """Makes the front's ``Delivery`` for a basic.deliver or basic.get-ok."""

    def __call__(
        self,
        body: bytes,
        properties: BasicProperties,
        delivery_tag: int,
        redelivered: bool,
        exchange: str,
        routing_key: str,
        consumer_tag: str,
        message_count: int | None,
        epoch: int,
        no_ack: bool,
    ) -> D_co: ...


def run_callbacks(
    callbacks: Sequence[Callback], log: logging.Logger, *args: object
) -> None:
    """Call each callback; a failing one is logged and does not stop the rest."""
    for callback in list(callbacks):
        try:
            callback(*args)
        except Exception:
            log.exception("callback %r failed", callback)
