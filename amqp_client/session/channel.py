"""Per-channel state both fronts share: requests and their waiters,
consumers, confirmations and returns, channel.flow, and what recovery
must restore on the channel.

A :class:`ChannelSession` is driven from two sides. Its front channel
issues commands (``request``, ``send``, ``publish``, ``settle``, ``close``)
with waiters it made; the router hands it the core's events for its id
(``on_reply``, ``on_delivery``, ...), and it resolves those waiters.
Replies come in request order on a channel (the core queues a request
behind the one outstanding), so waiters are a FIFO.

What a request means beyond its reply is applied here, as its reply is
routed and before any event that follows: consume-ok registers the
consumer, cancel-ok ends it, qos, confirm.select and tx.select are
remembered for recovery, declarations and bindings go to the topology
record. So no front overrides a generated method to add them.

No I/O, no waiting, no clock. The blocking front calls every method with
its connection lock held.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from contextlib import AbstractContextManager, nullcontext
from typing import TYPE_CHECKING, Generic, TypeVar

from amqp_client._delivery import DeliveryData, ReturnedMessage, attach_trace
from amqp_client._spec_base import Method
from amqp_client.errors import (
    AMQPError,
    ChannelClosed,
    MessageNacked,
    MessageReturned,
    UsageError,
)
from amqp_client.protocol import events as ev
from amqp_client.session.consumers import ConsumerSession
from amqp_client.session.link import Callback, DeliveryFactory, Reply, Waiter
from amqp_client.session.recovery import consume_again, with_fields
from amqp_client.spec import (
    BasicCancel,
    BasicConsume,
    BasicConsumeOk,
    BasicGet,
    BasicGetEmpty,
    BasicProperties,
    BasicPublish,
    BasicQos,
    BasicReject,
    ConfirmSelect,
    QueueBind,
    QueueDeclareOk,
    QueueDelete,
    QueueUnbind,
    ReplyCode,
    TxSelect,
)
from amqp_client.telemetry import processing

if TYPE_CHECKING:
    from amqp_client._otel import PublishTrace, Telemetry
    from amqp_client.session.connection import ConnectionSession

__all__ = [
    "GRACEFUL_CLOSE_TIMEOUT",
    "ChannelCallbacks",
    "ChannelSession",
    "ConfirmTracker",
    "check_publish",
]

_log = logging.getLogger("amqp_client")

D = TypeVar("D", bound=DeliveryData)

#: How long a connection's ``close()`` waits by default for the callbacks
#: in flight and the outstanding confirms (seconds).
GRACEFUL_CLOSE_TIMEOUT = 10.0

#: A front's waiter, as a graceful close makes them.
W = TypeVar("W", bound=Waiter[Reply])

#: What ``process_span`` returns until telemetry plugs in.
_NO_SPAN: AbstractContextManager[object] = nullcontext()

#: A confirm-mode publish's waiter: resolved with None on ack.
ConfirmWaiter = Waiter[None]


class ConfirmTracker:
    """Waiters of confirm-mode publishes on one channel, by delivery tag.

    A basic.return carries no delivery tag; it is matched to the oldest
    unconfirmed mandatory publish with the same exchange, routing key and
    body (the broker returns messages in publish order, each before its
    confirm), so that publish's waiter raises ``MessageReturned``.
    """

    __slots__ = ("_mandatory", "_returned", "_waiters")

    def __init__(self) -> None:
        self._waiters: dict[int, ConfirmWaiter] = {}
        self._mandatory: dict[int, tuple[str, str, bytes]] = {}
        self._returned: dict[int, ReturnedMessage] = {}

    def __len__(self) -> int:
        return len(self._waiters)

    def add(
        self,
        tag: int,
        waiter: ConfirmWaiter,
        mandatory: bool = False,
        exchange: str = "",
        routing_key: str = "",
        body: bytes = b"",
    ) -> None:
        self._waiters[tag] = waiter
        if mandatory:
            self._mandatory[tag] = (exchange, routing_key, body)

    def returned_message(self, tag: int) -> ReturnedMessage | None:
        """The return matched to the unconfirmed publish ``tag``, if any."""
        return self._returned.get(tag)

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

    def confirmed(self, tags: Sequence[int], acked: bool) -> None:
        """Settle the waiters of these confirms."""
        waiters = self._waiters
        for tag in tags:
            waiter = waiters.pop(tag, None)
            returned = None
            if self._mandatory:
                self._mandatory.pop(tag, None)
                returned = self._returned.pop(tag, None)
            if waiter is None or waiter.done():
                continue
            if returned is not None:
                waiter.set_exception(
                    MessageReturned(returned.reply_code, returned.reply_text, returned)
                )
            elif not acked:
                waiter.set_exception(MessageNacked(tag))
            else:
                waiter.set_result(None)

    def fail_all(self, failure: AMQPError) -> None:
        """Fail every waiter still pending (the channel or connection is gone)."""
        waiters = list(self._waiters.values())
        self._waiters.clear()
        self._mandatory.clear()
        self._returned.clear()
        _fail(waiters, failure)


def _fail(waiters: Iterable[Waiter[None]], failure: BaseException) -> None:
    """Fail each waiter not done yet (a ``Waiter[Reply]`` takes None too)."""
    for waiter in waiters:
        if not waiter.done():
            waiter.set_exception(failure)


def check_publish(
    body: object,
    exchange: str,
    routing_key: str,
    mandatory: bool,
    immediate: bool,
    properties: object,
) -> None:
    """Check a publish's arguments without sending it: what a front does
    before it waits (blocked, channel.flow, a full socket, recovery), so a
    bad argument fails at once. (The publish itself checks them again, on
    its fast path.)

    Raises:
        TypeError, ValueError: a bad argument.
    """
    BasicPublish(exchange, routing_key, mandatory=mandatory, immediate=immediate)
    if not isinstance(body, bytes | bytearray | memoryview):
        raise TypeError(f"body must be bytes, not {type(body).__name__}")
    if properties is not None and not isinstance(properties, BasicProperties):
        raise TypeError(
            f"properties must be BasicProperties or None, not {type(properties).__name__}"
        )


class _Unheeded:
    """The waiter of a request nobody waits for."""

    __slots__ = ("_done",)

    def __init__(self) -> None:
        self._done = False

    def done(self) -> bool:
        return self._done

    def set_result(self, result: Reply, /) -> None:
        self._done = True

    def set_exception(self, exception: BaseException, /) -> None:
        self._done = True


class ChannelCallbacks:
    """The user callbacks registered on one channel."""

    __slots__ = ("cancel", "close", "confirm", "flow", "returned")

    def __init__(self) -> None:
        self.returned: list[Callback] = []
        self.confirm: list[Callback] = []
        self.close: list[Callback] = []
        self.flow: list[Callback] = []
        self.cancel: list[Callback] = []


class _Pending(Generic[D]):
    """A request waiting for its reply."""

    __slots__ = ("consumer", "method", "recorded", "waiter")

    def __init__(
        self,
        waiter: Waiter[Reply],
        method: Method,
        recorded: bool,
        consumer: ConsumerSession[D] | None,
    ) -> None:
        self.waiter = waiter
        self.method = method
        self.recorded = recorded
        self.consumer = consumer


class ChannelSession(Generic[D]):
    """One channel's state above the core, shared by both fronts.

    Args:
        connection: the connection's session (commands go to its core).
        channel_id: the channel's id.
        make_delivery: builds the front's ``Delivery``.
        recorded: whether what succeeds here is recorded for recovery
            (False for recovery's own channel).
    """

    def __init__(
        self,
        connection: ConnectionSession[D],
        channel_id: int,
        make_delivery: DeliveryFactory[D],
        *,
        recorded: bool = True,
    ) -> None:
        self.connection = connection
        self.channel_id = channel_id
        self.make_delivery = make_delivery
        self.callbacks = ChannelCallbacks()
        self.consumers: dict[str, ConsumerSession[D]] = {}
        self.confirms = ConfirmTracker()
        #: The connection's telemetry (None: off, or not installed).
        self.telemetry: Telemetry | None = connection.telemetry
        #: Traced confirm-mode publishes, by delivery tag.
        self._traced: dict[int, PublishTrace] = {}
        self.flow_active = True
        #: What later use raises, once the channel is over.
        self.error: AMQPError | None = None
        #: The channel is over (closed by either side, or its connection).
        self.terminated = False
        #: channel.open-ok arrived.
        self.opened = False
        #: close() sent channel.close: a loss before close-ok ends the channel.
        self.closing = False
        #: Its channel() call gave up before open-ok: close it on arrival.
        self.abandoned = False
        #: Bumped at each connection loss: tells stale delivery tags apart.
        self.epoch = 0
        self.recorded = recorded
        #: Resolved (with None) when the channel is over: close() waits on one.
        self.closed_waiters: list[Waiter[None]] = []
        self._pending: deque[_Pending[D]] = deque()
        # What a recovering connection restores on this channel.
        self._qos: dict[bool, BasicQos] = {}
        self._confirm_mode = False
        self._tx_mode = False
        # The queue declared last on this channel: what an empty queue name
        # means in later methods (AMQP 0-9-1 queue.bind, field queue).
        self._last_queue = ""
        #: Consumers with a callback whose workers may still run (they
        #: stay here after the consumer ended, until its workers are done).
        self.callback_consumers: list[ConsumerSession[D]] = []
        #: Resolved when no publish awaits its confirm (a draining close).
        self._confirmed_waiters: list[Waiter[None]] = []

    def __repr__(self) -> str:
        state = (
            "terminated" if self.terminated else "open" if self.opened else "opening"
        )
        return f"<ChannelSession {self.channel_id} {state}>"

    @property
    def is_open(self) -> bool:
        return self.error is None and not self.terminated

    @property
    def awaiting_reply(self) -> bool:
        """A request on this channel waits for its reply, or a publish for
        its confirm: whoever waits for it may be the one that would take
        the buffered deliveries (a consumer that publishes with confirms),
        so reading goes on."""
        return bool(self._pending) or self.closing or len(self.confirms) > 0

    # --- commands (from the front) ---------------------------------------------------

    def check_open(self) -> None:
        """Raise what closed the channel, if it is closed."""
        if self.error is not None:
            raise self.error

    def request(
        self,
        method: Method,
        waiter: Waiter[Reply],
        *,
        consumer: ConsumerSession[D] | None = None,
        internal: bool = False,
    ) -> None:
        """Send a request; ``waiter`` gets its reply. ``internal`` requests
        (recovery's own replays) are not recorded again.

        Raises:
            ChannelClosed, ConnectionClosed: the channel or connection is over.
            UsageError: the method cannot be sent this way.
        """
        self.check_open()
        try:
            self.connection.core.call(self.channel_id, method)
        except UsageError:
            self._raise_closed()
            raise
        connection = self.connection
        recorded = not internal and self._records()
        self._pending.append(_Pending(waiter, method, recorded, consumer))
        if connection.reading_paused:
            connection.reading_may_change()  # a reply is awaited: read on
        connection.flush(urgent=True)

    def send(self, method: Method) -> None:
        """Send a method that waits for no reply (or no-wait)."""
        self.check_open()
        try:
            self.connection.core.send(self.channel_id, method)
        except UsageError:
            self._raise_closed()
            raise
        self._applied(method, None, self._records())
        self.connection.flush(urgent=True)

    def publish(
        self,
        body: bytes,
        properties: BasicProperties | None,
        exchange: str,
        routing_key: str,
        mandatory: bool,
        immediate: bool,
    ) -> int | None:
        """Send basic.publish with its content; its delivery tag in
        confirm mode (then call :meth:`track`), else None.

        Raises:
            TypeError, ValueError: a bad argument; nothing was sent.
        """
        self.check_open()
        telemetry = self.telemetry
        record: PublishTrace | None = None
        if telemetry is not None and telemetry.wants_publish():
            # Its span, the trace context in its headers, its metrics (see
            # amqp_client._otel). A bad argument fails as it would untraced,
            # before any span starts.
            check_publish(body, exchange, routing_key, mandatory, immediate, properties)
            properties, record = telemetry.publish_start(
                memoryview(body).nbytes, properties, exchange, routing_key
            )
        try:
            tag = self.connection.core.basic_publish(
                self.channel_id,
                body,
                properties,
                exchange,
                routing_key,
                mandatory,
                immediate,
            )
        except BaseException as exc:
            if record is not None and telemetry is not None:
                telemetry.publish_failed(record, exc)
            if isinstance(exc, UsageError):
                self._raise_closed()
            raise
        self.connection.flush(False, len(body) + 64)
        if record is not None and telemetry is not None:
            telemetry.publish_written(record, tag is not None)
            if tag is not None:
                self._traced[tag] = record
        return tag

    def track(
        self,
        tag: int,
        waiter: ConfirmWaiter,
        mandatory: bool,
        exchange: str,
        routing_key: str,
        body: bytes,
    ) -> None:
        """Resolve ``waiter`` with the broker's confirm of ``tag``."""
        self.confirms.add(tag, waiter, mandatory, exchange, routing_key, body)

    def settle(self, method: Method, epoch: int) -> None:
        """Send an ack, nack or reject for a delivery of ``epoch``: a
        delivery from before a connection loss is not settled (its tag is
        dead; the broker redelivers the message)."""
        self.check_open()
        if epoch != self.epoch:
            _log.warning(
                "not settling a delivery received on channel %d before the "
                "connection was lost; the broker redelivers it",
                self.channel_id,
            )
            return
        try:
            self.connection.core.send(self.channel_id, method)
        except UsageError:
            self._raise_closed()
            raise
        self.connection.flush(urgent=False)

    def close(self, reply_code: int, reply_text: str) -> bool:
        """Start the close handshake; False when there is nothing to close
        with (the connection is down)."""
        core = self.connection.core
        if self.terminated:
            return False
        if core.is_closed:
            if self.connection.recovering:
                # Nothing to hand-shake with: the channel is just not restored.
                self.drop()
            return False
        self.closing = True
        core.close_channel(self.channel_id, reply_code, reply_text)
        self.connection.flush(urgent=True)
        self.connection.reading_may_change()  # close-ok is awaited: read on
        return True

    def new_consumer(self, method: BasicConsume) -> ConsumerSession[D]:
        """The state of a consumer that ``request(method)`` will start."""
        return ConsumerSession(method, self.connection.budget)

    def end_consumer(
        self, consumer_tag: str, error: AMQPError | None = None
    ) -> ConsumerSession[D] | None:
        """End a consumer: its buffered deliveries are released, and handed
        back to the broker when the channel is still open."""
        consumer = self.consumers.pop(consumer_tag, None)
        if consumer is None:
            return None
        self.connection.consumer_removed(consumer.queue)
        tags = consumer.end(error)
        if (
            tags
            and self.is_open
            and self.connection.core.channel_is_open(self.channel_id)
        ):
            core = self.connection.core
            for tag in tags:
                core.send(self.channel_id, BasicReject(tag, requeue=True))
            self.connection.flush(urgent=False)
        self.connection.reading_may_change()
        return consumer

    def process_span(self, delivery: D) -> AbstractContextManager[object]:
        """What ``delivery.process()`` (and so every consumer callback)
        enters around the application's code, and leaves after the
        delivery is settled, with the code's exception if it raised:
        telemetry's CONSUMER span and the messaging.process.duration
        metric (``amqp_client.telemetry.processing``), a no-op when
        telemetry is off."""
        if self.telemetry is None:
            return _NO_SPAN
        return processing(delivery)

    def drain(self, make_waiter: Callable[[], W]) -> list[W]:
        """The first step of a graceful close: cancel every consumer
        (basic.cancel), and return waiters (made by ``make_waiter``) that
        resolve when the cancels are answered, the callbacks in flight
        are done and every publish has its confirm. Sends nothing on a
        channel that is not open or a connection that is not up."""
        if not self.is_open or not self.connection.is_open:
            return []
        waiters: list[W] = []
        for consumer in list(self.consumers.values()):
            if consumer.active:
                consumer.active = False
                waiter = make_waiter()
                self.request(BasicCancel(consumer.consumer_tag), waiter)
                waiters.append(waiter)
        for consumer in self.callback_consumers:
            waiter = make_waiter()
            consumer.when_idle(waiter)
            waiters.append(waiter)
        if self.confirms:
            waiter = make_waiter()
            self._confirmed_waiters.append(waiter)
            waiters.append(waiter)
        return waiters

    def abandon_consumer(self, consumer: ConsumerSession[D]) -> None:
        """Its basic_consume() gave up (a timeout, a cancelled task) before
        consume-ok: nobody holds the consumer, so cancel it (no-wait) as
        soon as it exists; its deliveries go back to the queue."""
        consumer.abandoned = True
        if consumer.active and self.is_open and self.connection.is_open:
            consumer.active = False
            # Not no-wait: what the broker delivers before its cancel-ok is
            # still buffered, and handed back when cancel-ok ends it.
            self.request(BasicCancel(consumer.consumer_tag), _Unheeded())

    def start_callbacks(self, consumer: ConsumerSession[D], workers: int) -> None:
        """A callback consumer starts ``workers`` workers (tasks or threads)."""
        consumer.workers = workers
        self.callback_consumers.append(consumer)

    def worker_exited(self, consumer: ConsumerSession[D]) -> None:
        """One of a callback consumer's workers is done, or no longer
        waited for (it is the one closing the channel or connection)."""
        consumer.worker_exited()
        if consumer.workers <= 0 and consumer in self.callback_consumers:
            self.callback_consumers.remove(consumer)

    def abandon_callbacks(self) -> None:
        """A graceful close ran out of time: stop waiting for callbacks."""
        for consumer in list(self.callback_consumers):
            consumer.abandon()

    def _all_confirmed(self) -> None:
        waiters, self._confirmed_waiters = self._confirmed_waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)

    def _raise_closed(self) -> None:
        """The core refused a command: raise the channel's or the
        connection's error when that is why."""
        self.connection.check_open()
        self.check_open()

    # --- events (from the router) ------------------------------------------------------

    def on_opened(self) -> None:
        self.opened = True
        if self.abandoned:
            # Nobody waits for this channel any more (its channel() call was
            # cancelled or timed out): close it, which frees its id.
            self.close(ReplyCode.REPLY_SUCCESS, "")

    def on_reply(self, event: ev.ReplyReceived | ev.GetReceived) -> None:
        result: Reply
        if isinstance(event, ev.GetReceived):
            method = event.method
            asked = self._pending[0].method if self._pending else None
            result = self.make_delivery(
                event.body,
                event.properties,
                method.delivery_tag,
                method.redelivered,
                method.exchange,
                method.routing_key,
                "",
                method.message_count,
                self.epoch,
                isinstance(asked, BasicGet) and asked.no_ack,
            )
        elif isinstance(event.method, BasicGetEmpty):
            result = None
        else:
            result = event.method
        if not self._pending:
            return
        pending = self._pending.popleft()
        telemetry = self.telemetry
        if (
            telemetry is not None
            and isinstance(result, DeliveryData)
            and isinstance(pending.method, BasicGet)
        ):
            attach_trace(
                result,
                telemetry.delivered(result.properties, pending.method.queue, True),
            )
        if isinstance(result, Method):
            self._applied(pending.method, result, pending.recorded, pending.consumer)
        waiter = pending.waiter
        if not waiter.done():
            waiter.set_result(result)
        # (Whether reading may pause again is decided once for all these
        # events, at the end of the connection's handle_events.)

    def on_delivery(self, event: ev.DeliveryReceived) -> None:
        method = event.method
        consumer = self.consumers.get(method.consumer_tag)
        if consumer is None:
            # The broker sends nothing for a consumer after its cancel-ok or
            # its own basic.cancel; not knowing whether the consumer was
            # no_ack, the client cannot settle it (a reject of a no_ack
            # delivery would close the channel).
            _log.warning(
                "delivery for unknown consumer %r on channel %d",
                method.consumer_tag,
                self.channel_id,
            )
            return
        delivery = self.make_delivery(
            event.body,
            event.properties,
            method.delivery_tag,
            method.redelivered,
            method.exchange,
            method.routing_key,
            method.consumer_tag,
            None,
            self.epoch,
            consumer.no_ack,
        )
        telemetry = self.telemetry
        if telemetry is not None:
            record = telemetry.delivered(event.properties, consumer.queue, False)
            if record is not None:
                attach_trace(delivery, record)
        consumer.push(delivery)

    def on_confirm(self, tags: tuple[int, ...], acked: bool) -> None:
        # Callbacks are handed over before waiters wake, so a thread woken by
        # its confirmation finds the callback already queued (blocking front).
        if self.callbacks.confirm:
            for tag in tags:
                self.connection.run_callbacks(self.callbacks.confirm, tag, acked)
        traced = self._traced
        if traced and self.telemetry is not None:
            for tag in tags:
                record = traced.pop(tag, None)
                if record is not None:
                    self.telemetry.publish_confirmed(
                        record, acked, self.confirms.returned_message(tag)
                    )
        self.confirms.confirmed(tags, acked)
        if self._confirmed_waiters and not self.confirms:
            self._all_confirmed()

    def on_return(self, event: ev.ReturnReceived) -> None:
        message = self.confirms.returned(event)
        self.connection.run_callbacks(self.callbacks.returned, message)

    def on_server_cancel(self, consumer_tag: str) -> None:
        consumer = self.end_consumer(consumer_tag)
        if consumer is not None and self._records():
            self.connection.consumer_gone(consumer.queue)
        self.connection.run_callbacks(self.callbacks.cancel, consumer_tag)

    def on_flow(self, active: bool) -> None:
        self.flow_active = active
        self.connection.state_changed()
        self.connection.run_callbacks(self.callbacks.flow, active)

    def on_terminated(
        self, error: AMQPError | None, failure: AMQPError | None = None
    ) -> None:
        """The channel is gone. ``error`` is what closed it (None for a
        clean close: consumers then just end); ``failure`` what pending
        calls and later use raise (default: ``error``, or ChannelClosed)."""
        if self.terminated:
            return
        failure = (
            failure
            or error
            or ChannelClosed(
                ReplyCode.REPLY_SUCCESS, f"channel {self.channel_id} is closed"
            )
        )
        self.terminated = True
        self.error = failure
        # Callbacks are handed over first, then close() and the other
        # waiters wake (a blocking close() that returns finds its close
        # callbacks already queued).
        self.connection.run_callbacks(self.callbacks.close, error)
        self._fail_waiters(failure)
        for tag in list(self.consumers):
            self.end_consumer(tag, error)
        self.flow_active = True
        closed, self.closed_waiters = self.closed_waiters, []
        for waiter in closed:
            if not waiter.done():
                waiter.set_result(None)
        self.connection.state_changed()

    # --- recovery ------------------------------------------------------------------------

    def _records(self) -> bool:
        """Whether what succeeds on this channel is recorded for recovery."""
        return self.recorded and self.connection.topology is not None

    def interrupt(self, failure: AMQPError) -> None:
        """The connection is lost and will be recovered: what waited fails
        with ``failure`` (retryable); the channel and its consumers stay,
        their buffered deliveries dropped (dead tags)."""
        if self.terminated:
            return
        if self.closing or not self.opened:
            # Its close handshake (or its opening) went down with the
            # connection: it is gone on the broker, so it is not restored.
            self.drop()
            return
        self.epoch += 1
        self._fail_waiters(failure)
        for consumer in self.consumers.values():
            consumer.drop_buffered()
        for consumer in self.callback_consumers:
            consumer.stop_waiting()  # a graceful close in progress goes on
        self.flow_active = True
        self.connection.reading_may_change()

    def drop(self) -> None:
        """Forget the channel without a close handshake (its connection is
        gone): it is not restored, and it ends as if closed cleanly."""
        self.connection.router.remove(self)
        self.on_terminated(None)

    def session_methods(self) -> list[Method]:
        """The requests that put a reopened channel back in its modes."""
        methods: list[Method] = [self._qos[key] for key in sorted(self._qos)]
        if self._confirm_mode:
            methods.append(ConfirmSelect())
        if self._tx_mode:
            methods.append(TxSelect())
        return methods

    def consumers_to_restore(self) -> list[tuple[ConsumerSession[D], BasicConsume]]:
        """Each consumer, with the basic.consume that restores it."""
        return [
            (consumer, consume_again(consumer.method, consumer.queue, tag))
            for tag, consumer in self.consumers.items()
        ]

    def restore_consumer(
        self, consumer: ConsumerSession[D], waiter: Waiter[Reply]
    ) -> None:
        """Replay a consumer's basic.consume (recovery); it is registered
        again as its consume-ok is routed."""
        method = consume_again(consumer.method, consumer.queue, consumer.consumer_tag)
        if self.consumers.pop(consumer.consumer_tag, None) is not None:
            self.connection.consumer_removed(consumer.queue)
        self.request(method, waiter, consumer=consumer, internal=True)

    def queue_renamed(self, old: str, new: str) -> None:
        for consumer in self.consumers.values():
            if consumer.queue == old:
                consumer.queue = new
        if self._last_queue == old:
            self._last_queue = new

    def _fail_waiters(self, failure: AMQPError) -> None:
        """Fail the pending requests and unconfirmed publishes."""
        waiters = [pending.waiter for pending in self._pending]
        self._pending.clear()
        _fail(waiters, failure)
        self.confirms.fail_all(failure)
        if self._traced:
            traced = list(self._traced.values())
            self._traced.clear()
            if self.telemetry is not None:
                for record in traced:
                    self.telemetry.publish_lost(record, failure)
        self._all_confirmed()
        self.connection.reading_may_change()

    # --- what a reply means beyond itself ------------------------------------------------

    def _applied(
        self,
        method: Method,
        reply: Method | None,
        recorded: bool,
        consumer: ConsumerSession[D] | None = None,
    ) -> None:
        """``method`` succeeded (``reply`` None: sent with no reply)."""
        if isinstance(reply, BasicConsumeOk) and consumer is not None:
            if consumer.queue == "" and self._last_queue:
                consumer.queue = self._last_queue  # as the broker took ""
            consumer.consumer_tag = reply.consumer_tag
            consumer.active = True
            if self.consumers.get(reply.consumer_tag) is not consumer:
                previous = self.consumers.get(reply.consumer_tag)
                if previous is not None:
                    self.connection.consumer_removed(previous.queue)
                self.connection.consumer_added(consumer.queue)
            self.consumers[reply.consumer_tag] = consumer
            if consumer.abandoned:
                self.abandon_consumer(consumer)
            return
        if isinstance(method, BasicCancel):
            ended = self.end_consumer(method.consumer_tag)
            if ended is not None and recorded:
                self.connection.consumer_gone(ended.queue)
            return
        if isinstance(reply, QueueDeclareOk):
            self._last_queue = reply.queue
        if not recorded:
            return
        if isinstance(method, BasicQos):
            self._qos[method.global_] = method
        elif isinstance(method, ConfirmSelect):
            self._confirm_mode = True
        elif isinstance(method, TxSelect):
            self._tx_mode = True
        else:
            if (
                isinstance(method, QueueBind | QueueUnbind | QueueDelete)
                and method.queue == ""
                and self._last_queue
            ):
                # AMQP 0-9-1: an empty queue name means the queue declared
                # last on the channel; record it under that name.
                method = with_fields(method, queue=self._last_queue)
            self.connection.record(method, reply)
