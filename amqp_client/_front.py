"""What both fronts share above the sans-IO core: event routing and the
bookkeeping of confirmations and returns.

No I/O and no waiting here: each front resolves its own kind of waiter
(an ``asyncio.Future`` or a ``concurrent.futures.Future``); this module
only decides which waiter gets which outcome.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Generic, TypeVar

from amqp_client import auth, uri
from amqp_client._delivery import DeliveryData, ReturnedMessage
from amqp_client._recovery import RecoveryOptions, Topology, consume_again, with_fields
from amqp_client.errors import AMQPError, ChannelClosed, MessageNacked, MessageReturned
from amqp_client.protocol import Connection as ProtocolConnection
from amqp_client.protocol import events as ev
from amqp_client.spec import (
    BasicCancel,
    BasicConsume,
    BasicConsumeOk,
    BasicGetEmpty,
    BasicQos,
    ConfirmSelect,
    QueueBind,
    QueueDeclareOk,
    QueueDelete,
    QueueUnbind,
    TxSelect,
)

__all__ = [
    "ChannelEvents",
    "ConfirmTracker",
    "EventSink",
    "Outcome",
    "RecoveryEvents",
    "dispatch",
    "fail_all",
    "new_core",
]

_log = logging.getLogger("amqp_client")

W = TypeVar("W")

#: A waiter's outcome: None for success, else the exception to raise.
Outcome = tuple[W, AMQPError | None]


def new_core(params: uri.ConnectionParameters) -> ProtocolConnection:
    """The sans-IO connection for one attempt to reach ``params``."""
    return ProtocolConnection(
        mechanism=auth.mechanism_for(
            params.auth_mechanism, params.username, params.password
        ),
        vhost=params.vhost,
        heartbeat=params.heartbeat,
        frame_max=params.frame_max or 0,
        channel_max=params.channel_max or 0,
        client_properties=params.client_properties,
        connection_name=params.connection_name,
        locale=params.locale,
    )


def fail_all(waiters: Iterable[Any], failure: BaseException) -> None:
    """Fail every waiter not done yet (futures or blocking Waiters)."""
    for waiter in waiters:
        if not waiter.done():
            waiter.set_exception(failure)


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


class RecoveryEvents:
    """What both fronts' connections share for recovery: the recorded
    topology, the callbacks and their registration. A front implements
    ``_emit_connection`` (run callbacks its way) and sets ``_ready`` (an
    ``asyncio.Event`` or a ``threading.Event``) and ``is_closed``."""

    _channels: dict[int, Any]
    _ready: Any

    @property
    def is_closed(self) -> bool:
        raise NotImplementedError

    def _init_recovery(self, recovery: RecoveryOptions | None) -> None:
        self._recovery = recovery
        self._topology: Topology | None = None
        if recovery is not None:
            self._topology = Topology()
            self._topology.on_rename = self._on_queue_renamed
        self._lost_callbacks: list[Callable[..., object]] = []
        self._recovered_callbacks: list[Callable[..., object]] = []
        self._recovery_error_callbacks: list[Callable[..., object]] = []

    def _emit_connection(
        self, callbacks: list[Callable[..., object]], *args: object
    ) -> None:
        raise NotImplementedError

    def add_on_lost_callback(self, callback: Callable[..., object]) -> None:
        """``callback(error)`` when a recovering connection loses its
        broker and starts to reconnect."""
        self._lost_callbacks.append(callback)

    def add_on_recovered_callback(self, callback: Callable[..., object]) -> None:
        """``callback()`` when a recovering connection is back: channels,
        topology and consumers restored."""
        self._recovered_callbacks.append(callback)

    def add_on_recovery_error_callback(self, callback: Callable[..., object]) -> None:
        """``callback(entity, error)`` when something recorded (a queue, a
        binding, a consumer...) could not be restored; recovery goes on
        without it. ``entity`` describes it (``"queue 'tasks'"``)."""
        self._recovery_error_callbacks.append(callback)

    @property
    def is_recovering(self) -> bool:
        """The connection is down and being restored."""
        return not self._ready.is_set() and not self.is_closed

    @property
    def topology(self) -> Topology | None:
        """What a recovering connection restores (None without recovery)."""
        return self._topology

    def _recovery_failed(self, entity: str, error: BaseException) -> None:
        _log.warning("could not restore %s: %s", entity, error)
        self._emit_connection(self._recovery_error_callbacks, entity, error)

    def _on_queue_renamed(self, old: str, new: str) -> None:
        for channel in list(self._channels.values()):
            channel._queue_renamed(old, new)

    def _record(self, method: Any, reply: Any) -> None:
        if self._topology is not None:
            self._topology.record(method, reply)

    def _consumer_gone(self, consumer: Any) -> None:
        """The client cancelled ``consumer``: RabbitMQ deletes an
        auto-delete queue with its last consumer, so recovery must not
        bring that queue back."""
        topology = self._topology
        queue = consumer.queue
        if topology is None or not topology.is_auto_delete(queue):
            return
        for channel in self._channels.values():
            for other in channel._consumers.values():
                if other is not consumer and other.queue == queue:
                    return
        topology.forget_queue(queue)


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


class ChannelEvents:
    """What both fronts' channels do with the core's events.

    A front's channel sets ``_delivery_class`` and implements ``_emit``
    (run user callbacks: at once on the event loop, or on the blocking
    front's callback thread) and ``_mark_terminated``. Waiters are the
    front's own kind (``asyncio.Future`` or the blocking ``Waiter``); both
    offer ``done``, ``set_result`` and ``set_exception``.
    """

    _delivery_class: type[DeliveryData]
    channel_id: int
    _connection: Any
    _waiters: deque[tuple[Any, Callable[[Any], Any] | None]]
    _error: AMQPError | None
    _consumers: dict[str, Any]
    _confirms: ConfirmTracker[Any]
    _flow: Any  # asyncio.Event or threading.Event

    def _init_events(self) -> None:
        self._waiters = deque()
        self._error = None
        self._consumers = {}
        self._confirms = ConfirmTracker()
        self._return_callbacks: list[Callable[..., object]] = []
        self._confirm_callbacks: list[Callable[..., object]] = []
        self._close_callbacks: list[Callable[..., object]] = []
        self._flow_callbacks: list[Callable[..., object]] = []
        self._cancel_callbacks: list[Callable[..., object]] = []
        # What a recovering connection restores on this channel, and the
        # epoch (bumped at each loss) that tells stale delivery tags apart.
        self._epoch = 0
        self._recorded = True
        self._qos: dict[bool, BasicQos] = {}
        self._confirm_mode = False
        self._tx_mode = False
        # The queue declared last on this channel (recorded only when
        # recovering): what an empty queue name means in later methods.
        self._last_queue = ""
        # close() sent channel.close: a loss before close-ok ends the channel.
        self._closing = False

    def _emit(self, callbacks: list[Callable[..., object]], *args: object) -> None:
        raise NotImplementedError

    def _mark_terminated(self, error: AMQPError | None) -> None:
        raise NotImplementedError

    # --- callbacks ----------------------------------------------------------------

    def add_on_return_callback(self, callback: Callable[..., object]) -> None:
        """``callback(returned_message)`` for each basic.return."""
        self._return_callbacks.append(callback)

    def add_on_confirm_callback(self, callback: Callable[..., object]) -> None:
        """``callback(delivery_tag, acked)`` for each confirmed publish."""
        self._confirm_callbacks.append(callback)

    def add_on_close_callback(self, callback: Callable[..., object]) -> None:
        """``callback(error)`` when the channel closes (None if clean)."""
        self._close_callbacks.append(callback)

    def add_on_flow_callback(self, callback: Callable[..., object]) -> None:
        """``callback(active)`` when the broker sends channel.flow."""
        self._flow_callbacks.append(callback)

    def add_on_cancel_callback(self, callback: Callable[..., object]) -> None:
        """``callback(consumer_tag)`` when the broker cancels a consumer."""
        self._cancel_callbacks.append(callback)

    # --- recovery ------------------------------------------------------------------

    def _records(self) -> bool:
        """Whether what succeeds on this channel is recorded for recovery:
        on a recovering connection, unless it is recovery's own channel."""
        return self._recorded and self._connection._topology is not None

    def _recording(
        self, method: Any, hook: Callable[[Any], Any] | None
    ) -> Callable[[Any], Any] | None:
        """Wrap a request's hook so that its success is recorded for
        recovery (in reply order), or return ``hook`` if nothing is."""
        if not self._records():
            return hook

        def record(reply: Any) -> Any:
            self._note(method, reply)
            return hook(reply) if hook is not None else reply

        return record

    def _note(self, method: Any, reply: Any) -> None:
        if isinstance(method, BasicCancel):
            consumer = self._consumers.get(method.consumer_tag)
            if consumer is not None:
                self._connection._consumer_gone(consumer)
        elif isinstance(method, BasicQos):
            self._qos[method.global_] = method
        elif isinstance(method, ConfirmSelect):
            self._confirm_mode = True
        elif isinstance(method, TxSelect):
            self._tx_mode = True
        else:
            if isinstance(reply, QueueDeclareOk):
                self._last_queue = reply.queue
            elif (
                isinstance(method, QueueBind | QueueUnbind | QueueDelete)
                and method.queue == ""
                and self._last_queue
            ):
                # AMQP 0-9-1: an empty queue name means the queue declared
                # last on the channel; record the binding under its name.
                method = with_fields(method, queue=self._last_queue)
            self._connection._record(method, reply)

    def _session_methods(self) -> list[Any]:
        """The requests that put a reopened channel back in its modes."""
        methods: list[Any] = [self._qos[key] for key in sorted(self._qos)]
        if self._confirm_mode:
            methods.append(ConfirmSelect())
        if self._tx_mode:
            methods.append(TxSelect())
        return methods

    def _consumers_to_restore(self) -> list[tuple[Any, BasicConsume]]:
        return [
            (consumer, consume_again(consumer._method, consumer.queue, tag))
            for tag, consumer in self._consumers.items()
        ]

    def _queue_renamed(self, old: str, new: str) -> None:
        for consumer in self._consumers.values():
            if consumer.queue == old:
                consumer.queue = new
        if self._last_queue == old:
            self._last_queue = new

    def _stale(self, epoch: int) -> bool:
        """Whether a delivery of ``epoch`` came before the connection was
        lost: its tag is dead, and the broker redelivers the message."""
        if epoch == self._epoch:
            return False
        _log.warning(
            "not settling a delivery received on channel %d before the "
            "connection was lost; the broker redelivers it",
            self.channel_id,
        )
        return True

    def _fail_waiters(self, failure: AMQPError) -> None:
        """Fail the pending requests and unconfirmed publishes."""
        waiters = [waiter for waiter, _ in self._waiters]
        self._waiters.clear()
        fail_all(waiters, failure)
        fail_all(self._confirms.fail_all(), failure)

    def _drop(self) -> None:
        """Forget the channel without a close handshake (its connection is
        gone): it is not restored, and it ends as if closed cleanly."""
        if self._connection._channels.get(self.channel_id) is self:
            del self._connection._channels[self.channel_id]
        self._on_terminated(None)

    def _interrupt(self, failure: AMQPError) -> None:
        """The connection is lost and will be recovered: what waited fails
        with ``failure`` (retryable), the channel and its consumers stay."""
        if self._error is not None:
            return
        if self._closing:
            # Its close handshake went down with the connection: the channel
            # is gone on the broker, so close() is over and it is not restored.
            self._drop()
            return
        self._epoch += 1
        self._fail_waiters(failure)
        for consumer in self._consumers.values():
            consumer._drop_unacked()
        self._flow.set()

    # --- hooks that run as a reply is dispatched ----------------------------------

    def _consumer_registered(self, consumer: Any) -> Callable[[Any], Any]:
        """The hook of a basic.consume request: registers the consumer as
        its consume-ok is dispatched, before any delivery that follows."""

        def registered(reply: Any) -> Any:
            assert isinstance(reply, BasicConsumeOk)
            if consumer.queue == "" and self._last_queue:
                consumer.queue = self._last_queue  # as the broker took ""
            consumer.consumer_tag = reply.consumer_tag
            consumer._active = True
            self._consumers[reply.consumer_tag] = consumer
            return reply

        return registered

    def _consumer_cancelled(self, consumer_tag: str) -> Callable[[Any], Any]:
        """The hook of a basic.cancel request: ends the consumer."""

        def cancelled(reply: Any) -> Any:
            self._end_consumer(consumer_tag)
            return reply

        return cancelled

    # --- events --------------------------------------------------------------------

    def _on_reply(self, event: ev.ReplyReceived | ev.GetReceived) -> None:
        result: Any
        if isinstance(event, ev.GetReceived):
            method = event.method
            result = self._delivery_class(
                self,
                event.body,
                event.properties,
                method.delivery_tag,
                method.redelivered,
                method.exchange,
                method.routing_key,
                "",
                method.message_count,
            )
            result._epoch = self._epoch
        else:
            result = None if isinstance(event.method, BasicGetEmpty) else event.method
        if self._waiters:
            waiter, hook = self._waiters.popleft()
            if hook is not None:
                result = hook(result)
            if not waiter.done():
                waiter.set_result(result)

    def _on_delivery(self, event: ev.DeliveryReceived) -> None:
        method = event.method
        consumer = self._consumers.get(method.consumer_tag)
        if consumer is None:
            _log.warning(
                "delivery for unknown consumer %r on channel %d",
                method.consumer_tag,
                self.channel_id,
            )
            return
        self._connection._delivery_buffered(1)
        delivery = self._delivery_class(
            self,
            event.body,
            event.properties,
            method.delivery_tag,
            method.redelivered,
            method.exchange,
            method.routing_key,
            method.consumer_tag,
        )
        delivery._epoch = self._epoch
        consumer._push(delivery)

    def _on_confirm(self, tags: tuple[int, ...], acked: bool) -> None:
        # Callbacks are handed over before waiters wake, so a thread woken by
        # its confirmation finds the callback already queued (blocking front).
        if self._confirm_callbacks:
            for tag in tags:
                self._emit(self._confirm_callbacks, tag, acked)
        for waiter, error in self._confirms.confirmed(tags, acked):
            if not waiter.done():
                if error is None:
                    waiter.set_result(None)
                else:
                    waiter.set_exception(error)

    def _on_return(self, event: ev.ReturnReceived) -> None:
        self._emit(self._return_callbacks, self._confirms.returned(event))

    def _on_server_cancel(self, consumer_tag: str) -> None:
        self._end_consumer(consumer_tag)
        self._emit(self._cancel_callbacks, consumer_tag)

    def _on_flow(self, active: bool) -> None:
        if active:
            self._flow.set()
        else:
            self._flow.clear()
        self._emit(self._flow_callbacks, active)

    def _end_consumer(self, consumer_tag: str) -> None:
        consumer = self._consumers.pop(consumer_tag, None)
        if consumer is not None:
            consumer._end()

    def _on_terminated(
        self, error: AMQPError | None, failure: AMQPError | None = None
    ) -> None:
        """The channel is gone. ``error`` is what closed it (None for a
        clean close: consumers then just end); ``failure`` what pending
        calls and later use raise (default: ``error``, or ChannelClosed)."""
        if self._error is not None:
            return
        failure = (
            failure
            or error
            or ChannelClosed(200, f"channel {self.channel_id} is closed")
        )
        self._error = failure
        # As in _on_confirm: callbacks are handed over first, then close()
        # and the other waiters wake (a blocking close() that returns finds
        # its close callbacks already queued).
        self._emit(self._close_callbacks, error)
        self._mark_terminated(error)
        self._fail_waiters(failure)
        consumers = list(self._consumers.values())
        self._consumers.clear()
        for consumer in consumers:
            consumer._end(error)
        self._flow.set()
