"""What both fronts share above the sans-IO core: event routing and the
bookkeeping of confirmations and returns.

No I/O and no waiting here: each front resolves its own kind of waiter
(an ``asyncio.Future`` or a ``concurrent.futures.Future``); this module
only decides which waiter gets which outcome.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Generic, TypeVar

from amqp_client._delivery import ReturnedMessage
from amqp_client.errors import AMQPError, MessageNacked, MessageReturned
from amqp_client.protocol import events as ev

__all__ = ["ConfirmTracker", "Outcome", "dispatch"]

W = TypeVar("W")

#: A waiter's outcome: None for success, else the exception to raise.
Outcome = tuple[W, AMQPError | None]


class ConfirmTracker(Generic[W]):
    """Waiters of confirm-mode publishes on one channel, by delivery tag.

    A basic.return carries no delivery tag; it is matched to the oldest
    unconfirmed mandatory publish with the same exchange, routing key and
    body (the broker returns messages in publish order, each before its
    confirm), so that publish's waiter raises ``MessageReturned``.
    """

    __slots__ = ("_mandatory", "_returned", "_waiters")

    def __init__(self) -> None:
        self._waiters: dict[int, W] = {}
        self._mandatory: dict[int, tuple[str, str, object]] = {}
        self._returned: dict[int, ReturnedMessage] = {}

    def __len__(self) -> int:
        return len(self._waiters)

    def add(
        self,
        tag: int,
        waiter: W,
        mandatory: bool = False,
        exchange: str = "",
        routing_key: str = "",
        body: object = b"",
    ) -> None:
        self._waiters[tag] = waiter
        if mandatory:
            self._mandatory[tag] = (exchange, routing_key, body)

    def returned(self, event: ev.ReturnReceived) -> ReturnedMessage:
        """Record a basic.return; returns the message for callbacks."""
        method = event.method
        message = ReturnedMessage(
            method.reply_code,
            method.reply_text,
            method.exchange,
            method.routing_key,
            event.properties,
            event.body,
        )
        for tag, (exchange, routing_key, body) in self._mandatory.items():
            if (
                tag not in self._returned
                and exchange == method.exchange
                and routing_key == method.routing_key
                and body == event.body
            ):
                self._returned[tag] = message
                break
        return message

    def confirmed(self, tags: Sequence[int], acked: bool) -> list[Outcome[W]]:
        """The waiters these confirms settle, with their outcomes."""
        outcomes: list[Outcome[W]] = []
        waiters = self._waiters
        for tag in tags:
            waiter = waiters.pop(tag, None)
            returned = None
            if self._mandatory:
                self._mandatory.pop(tag, None)
                returned = self._returned.pop(tag, None)
            if waiter is None:
                continue
            error: AMQPError | None = None
            if returned is not None:
                error = MessageReturned(
                    returned.reply_code, returned.reply_text, returned
                )
            elif not acked:
                error = MessageNacked(tag)
            outcomes.append((waiter, error))
        return outcomes

    def fail_all(self) -> list[W]:
        """Every waiter still pending (the channel is gone)."""
        waiters = list(self._waiters.values())
        self._waiters.clear()
        self._mandatory.clear()
        self._returned.clear()
        return waiters


class EventSink:
    """What a front's connection implements to receive routed events."""

    _channels: dict[int, Any]

    def _on_opened(self, event: ev.ConnectionOpened) -> None:
        raise NotImplementedError

    def _on_terminated(self, error: AMQPError | None) -> None:
        raise NotImplementedError

    def _on_blocked(self, reason: str) -> None:
        raise NotImplementedError

    def _on_unblocked(self) -> None:
        raise NotImplementedError

    def _on_channel_opened(self, channel_id: int) -> None:
        raise NotImplementedError

    def _on_channel_terminated(self, channel_id: int, error: AMQPError | None) -> None:
        raise NotImplementedError

    def _on_control_reply(self, method: Any) -> None:
        raise NotImplementedError


def dispatch(sink: EventSink, events: list[ev.Event]) -> None:
    """Route core events, in order, to the connection and its channels.

    Channels implement ``_on_reply``, ``_on_delivery``, ``_on_confirm``,
    ``_on_return``, ``_on_server_cancel`` and ``_on_flow``.
    """
    channels = sink._channels
    for event in events:
        kind = type(event)
        if kind is ev.DeliveryReceived:
            channel = channels.get(event.channel)  # type: ignore[union-attr]
            if channel is not None:
                channel._on_delivery(event)
        elif kind is ev.PublishAcked or kind is ev.PublishNacked:
            channel = channels.get(event.channel)  # type: ignore[union-attr]
            if channel is not None:
                channel._on_confirm(event.delivery_tags, kind is ev.PublishAcked)  # type: ignore[union-attr]
        elif kind is ev.ReplyReceived or kind is ev.GetReceived:
            if event.channel == 0:  # type: ignore[union-attr]
                sink._on_control_reply(event.method)  # type: ignore[union-attr]
            else:
                channel = channels.get(event.channel)  # type: ignore[union-attr]
                if channel is not None:
                    channel._on_reply(event)
        elif kind is ev.ReturnReceived:
            channel = channels.get(event.channel)  # type: ignore[union-attr]
            if channel is not None:
                channel._on_return(event)
        elif kind is ev.ChannelOpened:
            sink._on_channel_opened(event.channel)  # type: ignore[union-attr]
        elif kind is ev.ChannelTerminated:
            sink._on_channel_terminated(event.channel, event.error)  # type: ignore[union-attr]
        elif kind is ev.ConsumerCancelled:
            channel = channels.get(event.channel)  # type: ignore[union-attr]
            if channel is not None:
                channel._on_server_cancel(event.consumer_tag)  # type: ignore[union-attr]
        elif kind is ev.ChannelFlowChanged:
            channel = channels.get(event.channel)  # type: ignore[union-attr]
            if channel is not None:
                channel._on_flow(event.active)  # type: ignore[union-attr]
        elif kind is ev.ConnectionOpened:
            sink._on_opened(event)  # type: ignore[arg-type]
        elif kind is ev.ConnectionBlocked:
            sink._on_blocked(event.reason)  # type: ignore[union-attr]
        elif kind is ev.ConnectionUnblocked:
            sink._on_unblocked()
        elif kind is ev.ConnectionTerminated:
            sink._on_terminated(event.error)  # type: ignore[union-attr]


def run_callbacks(
    callbacks: Sequence[Callable[..., object]], log: Any, *args: object
) -> None:
    """Call each callback; a failing one is logged and does not stop the rest."""
    for callback in list(callbacks):
        try:
            callback(*args)
        except Exception:
            log.exception("callback %r failed", callback)
