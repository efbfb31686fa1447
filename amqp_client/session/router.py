"""From channel id to channel: the only way the connection reaches its
channels, and the routing of the core's events to them.

No I/O here.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Generic, TypeVar

from amqp_client._delivery import DeliveryData
from amqp_client.protocol import events as ev
from amqp_client.session.channel import ChannelSession

__all__ = ["ConnectionEvent", "Router"]

D = TypeVar("D", bound=DeliveryData)

#: The events that concern the connection itself, not one channel.
ConnectionEvent = (
    ev.ConnectionOpened
    | ev.ConnectionTerminated
    | ev.ConnectionBlocked
    | ev.ConnectionUnblocked
)


class Router(Generic[D]):
    """The channels of one connection, by id."""

    __slots__ = ("_channels",)

    def __init__(self) -> None:
        self._channels: dict[int, ChannelSession[D]] = {}

    def __len__(self) -> int:
        return len(self._channels)

    def __iter__(self) -> Iterator[ChannelSession[D]]:
        """The channels, by id (a copy: routing may remove some)."""
        return iter([self._channels[key] for key in sorted(self._channels)])

    def get(self, channel_id: int) -> ChannelSession[D] | None:
        return self._channels.get(channel_id)

    def add(self, channel: ChannelSession[D]) -> None:
        self._channels[channel.channel_id] = channel

    def remove(self, channel: ChannelSession[D]) -> None:
        if self._channels.get(channel.channel_id) is channel:
            del self._channels[channel.channel_id]

    def clear(self) -> list[ChannelSession[D]]:
        """Forget every channel; returns them, by id."""
        channels = list(self)
        self._channels.clear()
        return channels

    def route(
        self, events: list[ev.Event]
    ) -> list[
        ConnectionEvent | ev.ChannelOpened | ev.ChannelTerminated | ev.ReplyReceived
    ]:
        """Hand each channel event to its channel, in order. Returns, in
        order, what the connection itself must act on: connection events,
        channel opens and ends (their waiters are the connection's), and
        replies on channel 0."""
        rest: list[
            ConnectionEvent | ev.ChannelOpened | ev.ChannelTerminated | ev.ReplyReceived
        ] = []
        channels = self._channels
        for event in events:
            # The most frequent first: this runs for every delivery.
            if isinstance(event, ev.DeliveryReceived):
                channel = channels.get(event.channel)
                if channel is not None:
                    channel.on_delivery(event)
            elif isinstance(event, ev.PublishAcked | ev.PublishNacked):
                channel = channels.get(event.channel)
                if channel is not None:
                    channel.on_confirm(
                        event.delivery_tags, isinstance(event, ev.PublishAcked)
                    )
            elif isinstance(event, ev.ReplyReceived | ev.GetReceived):
                if event.channel == 0:
                    if isinstance(event, ev.ReplyReceived):
                        rest.append(event)
                else:
                    channel = channels.get(event.channel)
                    if channel is not None:
                        channel.on_reply(event)
            elif isinstance(event, ev.ReturnReceived):
                channel = channels.get(event.channel)
                if channel is not None:
                    channel.on_return(event)
            elif isinstance(event, ev.ConsumerCancelled):
                channel = channels.get(event.channel)
                if channel is not None:
                    channel.on_server_cancel(event.consumer_tag)
            elif isinstance(event, ev.ChannelFlowChanged):
                channel = channels.get(event.channel)
                if channel is not None:
                    channel.on_flow(event.active)
            else:
                rest.append(event)
        return rest
