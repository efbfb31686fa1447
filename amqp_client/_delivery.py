"""The data part of deliveries, returned messages and confirmations.

Both fronts build on these: the asyncio ``Delivery`` adds coroutine
``ack``/``nack``/``reject``, the blocking one plain methods. Nothing here
does I/O; each front's ``Delivery`` acknowledges through its own channel.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from contextlib import AbstractContextManager
from types import TracebackType
from typing import TYPE_CHECKING

from amqp_client._spec_base import Method
from amqp_client.spec import BasicAck, BasicProperties, BasicReject

if TYPE_CHECKING:
    from opentelemetry.context import Context

    from amqp_client._otel import DeliveryTrace

__all__ = [
    "DeliveryData",
    "Processing",
    "ReturnedMessage",
    "attach_trace",
    "trace_of",
]

_log = logging.getLogger("amqp_client")


class DeliveryData:
    """A message delivered by basic.deliver or basic.get-ok.

    Attributes:
        body: the message body.
        properties: its content properties.
        delivery_tag: the channel-local tag to acknowledge it with.
        redelivered: the broker delivered it before.
        exchange: the exchange it was published to.
        routing_key: the routing key it was published with.
        consumer_tag: the consumer it was delivered to ("" for basic.get).
        message_count: messages left in the queue (basic.get only, else None).
    """

    __slots__ = (
        "_channel",
        "_epoch",
        "_settled",
        "_trace",
        "body",
        "consumer_tag",
        "delivery_tag",
        "exchange",
        "message_count",
        "properties",
        "redelivered",
        "routing_key",
    )

    def __init__(
        self,
        channel: object,
        body: bytes,
        properties: BasicProperties,
        delivery_tag: int,
        redelivered: bool,
        exchange: str,
        routing_key: str,
        consumer_tag: str = "",
        message_count: int | None = None,
        epoch: int = 0,
        no_ack: bool = False,
    ) -> None:
        self._channel = channel
        # The channel's connection epoch when it arrived: a delivery from
        # before a recovery has a dead tag (see amqp_client.session.channel).
        self._epoch = epoch
        # What telemetry knows of it (amqp_client.telemetry); None when off.
        self._trace: DeliveryTrace | None = None
        # A no_ack delivery is settled as the broker sends it: settling it
        # again would close the channel (406, unknown delivery tag).
        self._settled = no_ack
        self.body = body
        self.properties = properties
        self.delivery_tag = delivery_tag
        self.redelivered = redelivered
        self.exchange = exchange
        self.routing_key = routing_key
        self.consumer_tag = consumer_tag
        self.message_count = message_count

    @property
    def trace_context(self) -> Context | None:
        """The OpenTelemetry context extracted from the message's headers
        (its producer's span): None when telemetry is off, no SDK is
        configured, or the message carried none."""
        record = self._trace
        return None if record is None else record.context

    @property
    def settled(self) -> bool:
        """Whether nothing is left to tell the broker about this message:
        acked, nacked or rejected through this object, or delivered to a
        no_ack consumer (or basic.get with no_ack), which the broker counts
        as settled when it sends it. A ``multiple=True`` settle of a later
        delivery, or a bare ``ch.basic_ack``, is not tracked here."""
        return self._settled

    def __repr__(self) -> str:
        body = self.body if len(self.body) <= 32 else self.body[:32] + b"..."
        return (
            f"{type(self).__name__}(delivery_tag={self.delivery_tag}, "
            f"exchange={self.exchange!r}, routing_key={self.routing_key!r}, "
            f"redelivered={self.redelivered}, body={body!r})"
        )


def attach_trace(delivery: DeliveryData, record: DeliveryTrace | None) -> None:
    """Give a delivery what telemetry recorded of its arrival."""
    delivery._trace = record


def trace_of(delivery: DeliveryData) -> DeliveryTrace | None:
    """What telemetry recorded of a delivery's arrival (None: nothing)."""
    return delivery._trace


class Processing:
    """What ``delivery.process(requeue)`` does around the code inside it;
    each front wraps it in its own (async) context manager.

    On entry it enters ``span`` (the channel's processing hook, see
    ``ChannelSession.process_span``). On a clean exit it acks the delivery;
    on an exception it rejects it (``requeue`` as given) and lets the
    exception go on. An interruption that is not an ``Exception``
    (``asyncio.CancelledError``, ``KeyboardInterrupt``: the work was
    stopped, not refused) rejects with requeue=True so the message is not
    lost. It sends nothing when the delivery is already settled (the code
    inside acked, nacked or rejected it, or the consumer is no_ack).
    """

    __slots__ = ("_delivery", "_requeue", "_settle", "_span")

    def __init__(
        self,
        delivery: DeliveryData,
        requeue: bool,
        settle: Callable[[Method, int], None],
        span: AbstractContextManager[object],
    ) -> None:
        if requeue is not True and requeue is not False:
            raise TypeError(f"requeue: expected bool, got {type(requeue).__name__}")
        self._delivery = delivery
        self._requeue = requeue
        self._settle = settle
        self._span = span

    def enter(self) -> None:
        self._span.__enter__()

    def exit(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Settle the delivery by the outcome; then leave the span.

        Raises:
            ChannelClosed, ConnectionClosed: the ack could not be sent (the
                tag is dead; the broker redelivers the message). When the
                code inside raised, its exception goes on instead and this
                one is only logged.
        """
        try:
            delivery = self._delivery
            if delivery._settled:
                return
            method: Method
            if exc is None:
                method = BasicAck(delivery.delivery_tag)
            else:
                requeue = self._requeue or not isinstance(exc, Exception)
                method = BasicReject(delivery.delivery_tag, requeue=requeue)
            delivery._settled = True
            if exc is None:
                self._settle(method, delivery._epoch)
                return
            try:
                self._settle(method, delivery._epoch)
            except Exception as error:
                _log.debug(
                    "could not reject delivery %d after %r: %s",
                    delivery.delivery_tag,
                    exc,
                    error,
                )
        finally:
            self._span.__exit__(exc_type, exc, tb)


class ReturnedMessage:
    """A message the broker returned (basic.return): unroutable mandatory."""

    __slots__ = (
        "body",
        "exchange",
        "properties",
        "reply_code",
        "reply_text",
        "routing_key",
    )

    def __init__(
        self,
        reply_code: int,
        reply_text: str,
        exchange: str,
        routing_key: str,
        properties: BasicProperties,
        body: bytes,
    ) -> None:
        self.reply_code = reply_code
        self.reply_text = reply_text
        self.exchange = exchange
        self.routing_key = routing_key
        self.properties = properties
        self.body = body

    def __repr__(self) -> str:
        return (
            f"ReturnedMessage(({self.reply_code}) {self.reply_text}, "
            f"exchange={self.exchange!r}, routing_key={self.routing_key!r}, "
            f"{len(self.body)} bytes)"
        )

    def __reduce__(self) -> tuple[type[ReturnedMessage], tuple[object, ...]]:
        return (
            type(self),
            (
                self.reply_code,
                self.reply_text,
                self.exchange,
                self.routing_key,
                self.properties,
                self.body,
            ),
        )
