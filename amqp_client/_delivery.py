"""The data part of deliveries, returned messages and confirmations.

Both fronts build on these: the asyncio ``Delivery`` adds coroutine
``ack``/``nack``/``reject``, the blocking one plain methods. Nothing here
does I/O; each front's ``Delivery`` acknowledges through its own channel.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from amqp_client.spec import BasicProperties

if TYPE_CHECKING:
    from opentelemetry.context import Context

    from amqp_client._otel import DeliveryTrace

__all__ = ["DeliveryData", "ReturnedMessage", "attach_trace", "trace_of"]


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
    ) -> None:
        self._channel = channel
        # The channel's connection epoch when it arrived: a delivery from
        # before a recovery has a dead tag (see amqp_client.session.channel).
        self._epoch = epoch
        # What telemetry knows of it (amqp_client.telemetry); None when off.
        self._trace: DeliveryTrace | None = None
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
