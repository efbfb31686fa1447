"""The public surface both fronts' connections, channels and consumers
share, written once: introspection properties and callback registration.

Each front's class derives from one of these and adds what waits (``close``,
``channel``, iteration...). Everything here only reads or registers on the
session objects; nothing waits and nothing does I/O.
"""

from __future__ import annotations

import types
from collections.abc import Mapping
from typing import Generic, TypeVar

from amqp_client._delivery import DeliveryData
from amqp_client.errors import AMQPError
from amqp_client.session.channel import ChannelSession
from amqp_client.session.connection import ConnectionSession
from amqp_client.session.consumers import ConsumerSession
from amqp_client.session.link import Callback
from amqp_client.session.recovery import Topology
from amqp_client.wire import FieldValue

__all__ = ["ChannelInfo", "ConnectionInfo", "ConsumerInfo"]

D = TypeVar("D", bound=DeliveryData)


def _public_name(obj: object) -> str:
    """``amqp_client.aio.Channel`` for an ``amqp_client.aio.channel.Channel``."""
    cls = type(obj)
    return f"{cls.__module__.rpartition('.')[0]}.{cls.__qualname__}"


class ConnectionInfo(Generic[D]):
    """What a connection tells about itself, and its callbacks."""

    __slots__ = ()

    _session: ConnectionSession[D]

    def __repr__(self) -> str:
        session = self._session
        return f"<{_public_name(self)} {session.params.redacted_url()} {session.state}>"

    @property
    def is_open(self) -> bool:
        """Open and usable (not closed, not recovering)."""
        return self._session.is_open

    @property
    def is_closed(self) -> bool:
        """Over for good."""
        return self._session.finished

    @property
    def is_recovering(self) -> bool:
        """The connection is down and being restored."""
        return self._session.recovering

    @property
    def is_blocked(self) -> bool:
        """The broker has blocked publishing (connection.blocked)."""
        return self._session.core.blocked

    @property
    def blocked(self) -> bool:
        """The same as :attr:`is_blocked`."""
        return self._session.core.blocked

    @property
    def server_properties(self) -> Mapping[str, FieldValue]:
        """What the broker said about itself in connection.start (a
        read-only view): ``product``, ``version``, ``platform``,
        ``capabilities`` (a dict), ``cluster_name``... Empty before the
        first connection.start."""
        return types.MappingProxyType(self._session.core.server_properties)

    @property
    def server_version(self) -> str:
        """The broker's version (``"3.10.8"``): ``server_properties``'
        ``version``, or "" if it did not say."""
        version = self._session.core.server_properties.get("version", "")
        if isinstance(version, bytes):
            return version.decode("utf-8", "replace")
        return str(version)

    @property
    def heartbeat(self) -> int:
        """The negotiated heartbeat interval, seconds (0: off)."""
        return self._session.core.heartbeat

    @property
    def frame_max(self) -> int:
        """The negotiated largest frame, bytes."""
        return self._session.core.frame_max

    @property
    def channel_max(self) -> int:
        """The negotiated highest channel id."""
        return self._session.core.channel_max

    @property
    def topology(self) -> Topology | None:
        """What a recovering connection restores (None without recovery)."""
        return self._session.topology

    def add_on_close_callback(self, callback: Callback) -> None:
        """``callback(error)`` when the connection is over (None if clean)."""
        self._session.callbacks.close.append(callback)

    def add_on_blocked_callback(self, callback: Callback) -> None:
        """``callback(reason)`` on connection.blocked."""
        self._session.callbacks.blocked.append(callback)

    def add_on_unblocked_callback(self, callback: Callback) -> None:
        """``callback()`` on connection.unblocked."""
        self._session.callbacks.unblocked.append(callback)

    def add_on_lost_callback(self, callback: Callback) -> None:
        """``callback(error)`` when a recovering connection loses its
        broker and starts to reconnect."""
        self._session.callbacks.lost.append(callback)

    def add_on_recovered_callback(self, callback: Callback) -> None:
        """``callback()`` when a recovering connection is back: channels,
        topology and consumers restored."""
        self._session.callbacks.recovered.append(callback)

    def add_on_recovery_error_callback(self, callback: Callback) -> None:
        """``callback(entity, error)`` when something recorded (a queue, a
        binding, a consumer...) could not be restored; recovery goes on
        without it. ``entity`` describes it (``"queue 'tasks'"``)."""
        self._session.callbacks.recovery_error.append(callback)

    def add_on_credentials_error_callback(self, callback: Callback) -> None:
        """``callback(error)`` when the credentials provider fails (a
        ``CredentialsError``, its cause the provider's exception) or a
        refresh's connection.update-secret does (its error). Neither closes
        the connection: a refresh is retried with backoff, a recovery
        attempt is retried by recovery."""
        self._session.callbacks.credentials_error.append(callback)


class ChannelInfo(Generic[D]):
    """What a channel tells about itself, and its callbacks."""

    __slots__ = ()

    _state: ChannelSession[D]

    def __repr__(self) -> str:
        state = "open" if self.is_open else "closed"
        return f"<{_public_name(self)} {self.channel_id} {state}>"

    @property
    def channel_id(self) -> int:
        """The channel's number on its connection."""
        return self._state.channel_id

    @property
    def is_open(self) -> bool:
        """Open and usable (on a recovering connection: also while the
        connection is down, as the channel is reopened on recovery)."""
        return self._state.is_open

    @property
    def is_closed(self) -> bool:
        """Not open: closed by the client or the broker."""
        return not self._state.is_open

    @property
    def error(self) -> AMQPError | None:
        """What closed the channel (None while it is open)."""
        return self._state.error

    def add_on_return_callback(self, callback: Callback) -> None:
        """``callback(returned_message)`` for each basic.return."""
        self._state.callbacks.returned.append(callback)

    def add_on_confirm_callback(self, callback: Callback) -> None:
        """``callback(delivery_tag, acked)`` for each confirmed publish."""
        self._state.callbacks.confirm.append(callback)

    def add_on_close_callback(self, callback: Callback) -> None:
        """``callback(error)`` when the channel closes (None if clean)."""
        self._state.callbacks.close.append(callback)

    def add_on_flow_callback(self, callback: Callback) -> None:
        """``callback(active)`` when the broker sends channel.flow."""
        self._state.callbacks.flow.append(callback)

    def add_on_cancel_callback(self, callback: Callback) -> None:
        """``callback(consumer_tag)`` when the broker cancels a consumer."""
        self._state.callbacks.cancel.append(callback)


class ConsumerInfo(Generic[D]):
    """What a consumer tells about itself."""

    __slots__ = ()

    _state: ConsumerSession[D]

    def __repr__(self) -> str:
        return f"<Consumer {self.consumer_tag!r} on {self.queue!r}>"

    @property
    def consumer_tag(self) -> str:
        """The broker's tag for this consumer."""
        return self._state.consumer_tag

    @property
    def queue(self) -> str:
        """The queue it consumes from."""
        return self._state.queue

    @property
    def is_active(self) -> bool:
        """Started and not cancelled or ended."""
        return self._state.active
