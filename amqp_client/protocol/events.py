"""What the sans-IO core tells its front: frozen, slotted, past-tense events.

The core appends events as it processes input; the front takes them with
``Connection.events_received()`` and acts on them in order (resolve a
waiter, hand a delivery to a consumer, run a callback). Names say what
happened and never reuse an exception's name.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from amqp_client._spec_base import Method
from amqp_client.errors import AMQPError, ChannelClosed, ConnectionClosed
from amqp_client.spec import (
    BasicDeliver,
    BasicGetOk,
    BasicProperties,
    BasicReturn,
)

__all__ = [
    "ChannelFlowChanged",
    "ChannelOpened",
    "ChannelTerminated",
    "ConnectionBlocked",
    "ConnectionOpened",
    "ConnectionTerminated",
    "ConnectionUnblocked",
    "ConsumerCancelled",
    "DeliveryReceived",
    "Event",
    "GetReceived",
    "PublishAcked",
    "PublishNacked",
    "ReplyReceived",
    "ReturnReceived",
]


@dataclass(frozen=True, slots=True)
class ConnectionOpened:
    """connection.open-ok arrived: the connection is usable."""

    server_properties: dict[str, Any]
    channel_max: int
    frame_max: int
    heartbeat: int


@dataclass(frozen=True, slots=True)
class ConnectionTerminated:
    """The connection is over. ``error`` is None after a clean close the
    client asked for; otherwise what ended it (a ``ConnectionClosed``
    subclass from the broker, ``ConnectionLost``, ``HeartbeatTimeout``, a
    ``ProtocolError`` for bytes the peer got wrong)."""

    error: AMQPError | None


@dataclass(frozen=True, slots=True)
class ConnectionBlocked:
    """connection.blocked: the broker stops reading publishes (an alarm)."""

    reason: str


@dataclass(frozen=True, slots=True)
class ConnectionUnblocked:
    """connection.unblocked: publishing may resume."""


@dataclass(frozen=True, slots=True)
class ChannelOpened:
    """channel.open-ok arrived for ``channel``."""

    channel: int


@dataclass(frozen=True, slots=True)
class ChannelTerminated:
    """The channel is closed and its id free again. ``error`` is None after a
    close the client asked for without a reason; otherwise the broker's
    channel.close as a ``ChannelClosed`` subclass, or the connection's
    terminal error. Every request still pending on it has failed."""

    channel: int
    error: ChannelClosed | ConnectionClosed | AMQPError | None


@dataclass(frozen=True, slots=True)
class ReplyReceived:
    """The reply to the oldest pending request on ``channel``.

    Requests on a channel are answered in the order they were made, so the
    front matches replies with a FIFO per channel.
    """

    channel: int
    method: Method


@dataclass(frozen=True, slots=True)
class GetReceived:
    """basic.get-ok with its content: the reply to a pending basic.get."""

    channel: int
    method: BasicGetOk
    properties: BasicProperties
    body: bytes


@dataclass(frozen=True, slots=True)
class DeliveryReceived:
    """A basic.deliver with its content, for the consumer with its tag."""

    channel: int
    method: BasicDeliver
    properties: BasicProperties
    body: bytes


@dataclass(frozen=True, slots=True)
class ReturnReceived:
    """basic.return: a mandatory (or immediate) message came back."""

    channel: int
    method: BasicReturn
    properties: BasicProperties
    body: bytes


@dataclass(frozen=True, slots=True)
class PublishAcked:
    """The broker confirmed these publishes (basic.ack, maybe ``multiple``)."""

    channel: int
    delivery_tags: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class PublishNacked:
    """The broker refused these publishes (basic.nack)."""

    channel: int
    delivery_tags: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class ChannelFlowChanged:
    """The broker sent channel.flow: stop (False) or resume (True) content."""

    channel: int
    active: bool


@dataclass(frozen=True, slots=True)
class ConsumerCancelled:
    """The broker cancelled a consumer (queue deleted, node down...)."""

    channel: int
    consumer_tag: str


Event = (
    ConnectionOpened
    | ConnectionTerminated
    | ConnectionBlocked
    | ConnectionUnblocked
    | ChannelOpened
    | ChannelTerminated
    | ReplyReceived
    | GetReceived
    | DeliveryReceived
    | ReturnReceived
    | PublishAcked
    | PublishNacked
    | ChannelFlowChanged
    | ConsumerCancelled
)
