"""The connection's session: one sans-IO core at a time (a new one per
connection attempt), the router to its channels, delivery accounting and
the read pause, connection-level requests, and how the connection ends.

A front owns one :class:`ConnectionSession` and drives it: it feeds the
core bytes and the time, calls :meth:`ConnectionSession.handle_events`
after each input or command, and acts on the :class:`Ending` it may
return (start recovery, or close its transport). The session calls back
through :class:`~amqp_client.session.link.FrontHooks` (write, run
callbacks, wake waiters, pause reading).

No sockets, no asyncio, no threads, no clock of its own. The blocking
front calls every method with its connection lock held.
"""

from __future__ import annotations

import enum
import logging
from collections import deque
from collections.abc import Sequence
from typing import Generic, TypeVar

from amqp_client import auth, uri
from amqp_client._delivery import DeliveryData
from amqp_client._spec_base import Method
from amqp_client.errors import AMQPError, ConnectionClosed
from amqp_client.protocol import Connection as Core
from amqp_client.protocol import events as ev
from amqp_client.protocol.core import DEFAULT_MAX_MESSAGE_SIZE
from amqp_client.session.channel import ChannelSession
from amqp_client.session.connect import ConnectOptions
from amqp_client.session.consumers import DeliveryBudget
from amqp_client.session.credentials import CredentialsState
from amqp_client.session.link import (
    Callback,
    DeliveryFactory,
    FrontHooks,
    Reply,
    Waiter,
)
from amqp_client.session.recovery import (
    Topology,
    is_recoverable,
    lost_error,
    restore_timeout,
)
from amqp_client.session.router import Router
from amqp_client.spec import (
    ConnectionUpdateSecret,
    ConnectionUpdateSecretOk,
    ReplyCode,
)
from amqp_client.telemetry import make_telemetry

__all__ = ["ConnectionCallbacks", "ConnectionSession", "Ending", "new_core"]

_log = logging.getLogger("amqp_client")

D = TypeVar("D", bound=DeliveryData)


def new_core(
    params: uri.ConnectionParameters,
    max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE,
) -> Core:
    """The sans-IO connection for one attempt to reach ``params``, refusing
    content that declares more than ``max_message_size`` bytes.

    Raises:
        TypeError, ValueError: a parameter the core does not accept.
    """
    return Core(
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
        max_message_size=max_message_size,
    )


class Ending(enum.Enum):
    """What a front does when its core's connection ended."""

    #: A connection attempt (or the restore after it) failed; the connect
    #: or recovery loop that made it goes on.
    ATTEMPT_FAILED = "attempt failed"
    #: Lost, and recovery is on: start the recovery loop.
    RECOVER = "recover"
    #: Over for good: close the transport, wake everything.
    CLOSED = "closed"


class ConnectionCallbacks:
    """The user callbacks registered on a connection."""

    __slots__ = (
        "blocked",
        "close",
        "credentials_error",
        "lost",
        "recovered",
        "recovery_error",
        "unblocked",
    )

    def __init__(self) -> None:
        self.close: list[Callback] = []
        self.blocked: list[Callback] = []
        self.unblocked: list[Callback] = []
        self.lost: list[Callback] = []
        self.recovered: list[Callback] = []
        self.recovery_error: list[Callback] = []
        self.credentials_error: list[Callback] = []


class ConnectionSession(Generic[D]):
    """Everything about one connection that is not I/O or waiting.

    Args:
        endpoints: the brokers to try, in order.
        options: recovery and the delivery-buffer limits.
        hooks: the front that drives this session.
    """

    def __init__(
        self,
        endpoints: Sequence[uri.ConnectionParameters],
        options: ConnectOptions,
        hooks: FrontHooks,
    ) -> None:
        self.endpoints = list(endpoints)
        self.params = self.endpoints[0]
        self.options = options
        self.hooks = hooks
        self.core = new_core(self.params, options.max_message_size)
        self.router: Router[D] = Router()
        self.budget = DeliveryBudget(
            options.max_buffered_bytes, options.max_buffered_messages
        )
        self.budget.on_change = self.reading_may_change
        # Live consumers per queue name, over all channels.
        self._consumers_on: dict[str, int] = {}
        self.recovery = options.recovery
        self.topology: Topology | None = None
        if self.recovery is not None:
            self.topology = Topology()
            self.topology.on_rename = self._queue_renamed
        self.callbacks = ConnectionCallbacks()
        #: OpenTelemetry reporting; None when off or not installed.
        self.telemetry = make_telemetry(
            options.telemetry,
            options.tracer_provider,
            options.meter_provider,
            self._buffered_bytes,
        )
        if self.telemetry is not None:
            self.telemetry.set_server(self.params.host, self.params.port)
        #: Who logs in, from where, and when to refresh.
        self.credentials = CredentialsState(options.credentials, options.backoff)
        self.credentials.report = self.credentials_failed
        self.credentials.timeout = restore_timeout(self.params)
        #: The current attempt's open handshake.
        self.opened: Waiter[None] | None = None
        #: Channels waiting for channel.open-ok, by id.
        self.opening: dict[int, Waiter[None]] = {}
        #: Requests on channel 0 (update-secret), in order, with their waiters.
        self.control: deque[tuple[Method, Waiter[Reply]]] = deque()
        self.reading_paused = False
        #: An attempt to connect is under way.
        self.connecting = False
        #: Down and being restored: calls wait until it is back.
        self.recovering = False
        #: The application asked to close.
        self.closing = False
        #: Over for good; ``close_error`` is why (None after a clean close).
        self.finished = False
        self.close_error: AMQPError | None = None

    def __repr__(self) -> str:
        return f"<ConnectionSession {self.params.redacted_url()} {self.state}>"

    @property
    def state(self) -> str:
        if self.finished:
            return "closed"
        if self.recovering:
            return "recovering"
        return self.core.state.value

    @property
    def is_open(self) -> bool:
        return self.core.is_open and not self.recovering and not self.finished

    # --- what channels ask of their connection ------------------------------------------

    def flush(self, urgent: bool, size: int = 0) -> None:
        self.hooks.flush(urgent, size)

    def run_callbacks(self, callbacks: Sequence[Callback], *args: object) -> None:
        if callbacks:
            self.hooks.run_callbacks(callbacks, *args)

    def state_changed(self) -> None:
        self.hooks.state_changed()

    def check_open(self) -> None:
        """Raise the connection's error if it is over, or down without
        recovery (a recovering one raises a retryable ConnectionLost).

        Raises:
            ConnectionClosed: the connection is over (its error, or code 200).
        """
        if self.finished:
            error = self.close_error
            raise (
                error
                if error is not None
                else ConnectionClosed(
                    ReplyCode.REPLY_SUCCESS, "the connection is closed"
                )
            )
        if self.core.is_closed:
            error = self.core.error
            if self.recovery is not None and not self.closing:
                raise lost_error(error)
            raise (
                error
                if error is not None
                else ConnectionClosed(
                    ReplyCode.REPLY_SUCCESS, "the connection is closed"
                )
            )

    def record(self, method: Method, reply: Method | None) -> None:
        """A request that succeeded, for the topology record."""
        if self.topology is not None:
            self.topology.record(method, reply)

    def consumer_added(self, queue: str) -> None:
        """A consumer on ``queue`` started (consume-ok) on some channel."""
        counts = self._consumers_on
        counts[queue] = counts.get(queue, 0) + 1

    def consumer_removed(self, queue: str) -> None:
        """A consumer on ``queue`` left its channel (ended, or taken out to
        be consumed again by recovery)."""
        counts = self._consumers_on
        left = counts.get(queue, 0) - 1
        if left > 0:
            counts[queue] = left
        else:
            counts.pop(queue, None)

    def consumer_gone(self, queue: str) -> None:
        """A consumer on ``queue`` was cancelled (either side): RabbitMQ
        deletes an auto-delete queue with its last consumer, so recovery
        must not bring it back. O(1): the live consumers are counted per
        queue, not looked for on every channel (cancelling M consumers of
        M auto-delete queues visited M x M consumers)."""
        topology = self.topology
        if topology is None or not topology.is_auto_delete(queue):
            return
        if queue not in self._consumers_on:
            topology.forget_queue(queue)

    def recovery_failed(self, entity: str, error: BaseException) -> None:
        """Something recorded could not be restored; recovery goes on."""
        _log.warning("could not restore %s: %s", entity, error)
        self.run_callbacks(self.callbacks.recovery_error, entity, error)

    def _buffered_bytes(self) -> int:
        return self.budget.size

    def credentials_failed(self, error: BaseException) -> None:
        """The credentials provider failed, or a refresh did; the
        connection goes on (a connection attempt fails with ``error``)."""
        _log.warning("credentials: %s", error)
        self.run_callbacks(self.callbacks.credentials_error, error)

    def _queue_renamed(self, old: str, new: str) -> None:
        for channel in self.router:
            channel.queue_renamed(old, new)
        count = self._consumers_on.pop(old, 0)
        if count:
            self._consumers_on[new] = self._consumers_on.get(new, 0) + count

    # --- the read pause --------------------------------------------------------------------

    def _awaiting_reply(self) -> bool:
        if self.opening or self.control:
            return True
        if self.closing and not self.core.is_closed:
            return True  # close-ok
        if self.opened is not None and not self.opened.done():
            return True
        return any(channel.awaiting_reply for channel in self.router)

    def reading_may_change(self) -> None:
        """Pause reading while consumers hold more than the budget allows,
        unless a reply is awaited: replies are never stuck behind a pause."""
        if not self.budget.over and not self.reading_paused:
            return  # the common case, decided without a call
        pause = self.budget.over and not self._awaiting_reply()
        if pause != self.reading_paused:
            self.reading_paused = pause
            self.core.reading_paused(pause, self.hooks.now())
            self.hooks.pause_reading(pause)

    # --- commands ---------------------------------------------------------------------------

    def new_attempt(
        self, params: uri.ConnectionParameters, opened: Waiter[None]
    ) -> Core:
        """A fresh core for one attempt to reach ``params``, logging in with
        the credentials of :attr:`credentials`; ``opened`` resolves at its
        connection.open-ok. :meth:`initiate` starts it once the transport
        is there."""
        core = new_core(self.credentials.apply(params), self.options.max_message_size)
        self.params = params
        self.core = core
        if self.telemetry is not None:
            self.telemetry.set_server(params.host, params.port)
        self.opened = opened
        return core

    def initiate(self, now: float) -> None:
        """The transport is connected: queue the protocol header. Reading
        goes on during the handshake (a reply is awaited)."""
        self.core.initiate(now)
        self.reading_paused = False

    def open_channel(
        self,
        make_delivery: DeliveryFactory[D],
        waiter: Waiter[None],
        *,
        recorded: bool = True,
    ) -> ChannelSession[D]:
        """Open a channel on the lowest free id; ``waiter`` resolves at
        open-ok.

        Raises:
            ConnectionClosed: the connection is over.
            UsageError: every channel id is in use.
        """
        self.check_open()
        channel_id = self.core.open_channel()
        channel = ChannelSession(self, channel_id, make_delivery, recorded=recorded)
        self.router.add(channel)
        self.opening[channel_id] = waiter
        self.flush(urgent=True)
        self.reading_may_change()
        return channel

    def reopen(self, channel: ChannelSession[D], waiter: Waiter[None]) -> None:
        """Open ``channel`` again, on its id, on the current core (recovery)."""
        self.check_open()
        self.core.open_channel(channel.channel_id)
        self.opening[channel.channel_id] = waiter
        self.flush(urgent=True)
        self.reading_may_change()

    def call(self, method: Method, waiter: Waiter[Reply]) -> None:
        """A request on channel 0 (connection.update-secret)."""
        self.check_open()
        self.core.call(0, method)
        self.control.append((method, waiter))
        self.flush(urgent=True)
        self.reading_may_change()

    def send(self, method: Method) -> None:
        """A method on channel 0 that waits for nothing."""
        self.check_open()
        self.core.send(0, method)
        self.flush(urgent=True)

    def close(self, reply_code: int, reply_text: str) -> bool:
        """Start the close handshake; False when the connection is down
        (then :meth:`finish` ends it; there is nothing to hand-shake with)."""
        self.closing = True
        if self.finished:
            return False
        if self.core.is_closed or self.connecting or self.recovering:
            return False
        self.core.close(reply_code, reply_text)
        self.flush(urgent=True)
        self.reading_may_change()
        return True

    # --- events --------------------------------------------------------------------------

    def handle_events(self) -> Ending | None:
        """Act on what the core produced; the connection's ending, if it
        ended in these events."""
        events = self.core.events_received()
        if not events:
            return None
        ending: Ending | None = None
        for event in self.router.route(events):
            if isinstance(event, ev.ReplyReceived):
                self._on_control_reply(event.method)
            elif isinstance(event, ev.ChannelOpened):
                self._on_channel_opened(event.channel)
            elif isinstance(event, ev.ChannelTerminated):
                self._on_channel_terminated(event.channel, event.error)
            elif isinstance(event, ev.ConnectionOpened):
                if self.opened is not None and not self.opened.done():
                    self.opened.set_result(None)
            elif isinstance(event, ev.ConnectionBlocked):
                if self.telemetry is not None:
                    self.telemetry.blocked(self.hooks.now())
                self.state_changed()
                self.run_callbacks(self.callbacks.blocked, event.reason)
            elif isinstance(event, ev.ConnectionUnblocked):
                if self.telemetry is not None:
                    self.telemetry.unblocked(self.hooks.now())
                self.state_changed()
                self.run_callbacks(self.callbacks.unblocked)
            else:
                ending = self._on_terminated(event.error)
        self.reading_may_change()
        return ending

    def _on_control_reply(self, method: Method) -> None:
        if not self.control:
            return
        request, waiter = self.control.popleft()
        # Remembered whether or not the caller still waits: the broker took
        # it, so a later attempt (recovery) logs in with it.
        if isinstance(request, ConnectionUpdateSecret) and isinstance(
            method, ConnectionUpdateSecretOk
        ):
            self.credentials.secret_accepted(request.new_secret)
        if not waiter.done():
            waiter.set_result(method)

    def _on_channel_opened(self, channel_id: int) -> None:
        channel = self.router.get(channel_id)
        if channel is not None:
            channel.on_opened()
        waiter = self.opening.pop(channel_id, None)
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _on_channel_terminated(self, channel_id: int, error: AMQPError | None) -> None:
        channel = self.router.get(channel_id)
        waiter = self.opening.pop(channel_id, None)
        if waiter is not None and not waiter.done():
            waiter.set_exception(
                error or ConnectionClosed(ReplyCode.REPLY_SUCCESS, "channel closed")
            )
        if channel is not None:
            self.router.remove(channel)
            channel.on_terminated(error)

    def _on_terminated(self, error: AMQPError | None) -> Ending:
        if self.finished:
            return Ending.CLOSED  # a core dropped after the end: nothing to do
        if self.connecting or (self.recovering and not self.closing):
            self.interrupt(error)
            return Ending.ATTEMPT_FAILED
        if self.recovery is not None and not self.closing and is_recoverable(error):
            _log.warning("%s; recovering", error)
            self.interrupt(error)
            self.recovering = True
            self.run_callbacks(self.callbacks.lost, lost_error(error))
            return Ending.RECOVER
        self.finish(error)
        return Ending.CLOSED

    # --- endings ----------------------------------------------------------------------------

    def _fail_pending(self, opening: AMQPError, failure: AMQPError) -> None:
        """Fail the open handshake (with ``opening``), the channels being
        opened and the connection-level requests (with ``failure``)."""
        if self.opened is not None and not self.opened.done():
            self.opened.set_exception(opening)
        waiters: list[Waiter[None]] = [
            *self.opening.values(),
            *(waiter for _, waiter in self.control),
        ]
        self.opening.clear()
        self.control.clear()
        for waiter in waiters:
            if not waiter.done():
                waiter.set_exception(failure)

    def interrupt(self, error: AMQPError | None) -> None:
        """This core's connection is gone but the connection lives on: fail
        what waited on it and keep the channels for the next one."""
        failure = lost_error(error)
        if self.telemetry is not None:
            self.telemetry.unblocked(self.hooks.now())  # a new core starts unblocked
        self._fail_pending(error or failure, failure)
        for channel in self.router:
            channel.interrupt(failure)
        self.state_changed()

    def recovered(self) -> None:
        """The recovery loop restored everything."""
        _log.info("connection recovered (%s)", self.params.address)
        self.recovering = False
        if self.telemetry is not None:
            self.telemetry.recovered()
        self.state_changed()
        self.run_callbacks(self.callbacks.recovered)

    def finish(self, error: AMQPError | None) -> bool:
        """The connection is over for good. Idempotent: the first call
        decides the terminal error; False for the later ones."""
        if self.finished:
            return False
        self.finished = True
        self.recovering = False
        self.close_error = error
        if self.telemetry is not None:
            self.telemetry.unblocked(self.hooks.now())
            self.telemetry.closed()
        failure = (
            error
            if error is not None
            else ConnectionClosed(ReplyCode.REPLY_SUCCESS, "connection closed")
        )
        self._fail_pending(failure, failure)
        for channel in self.router.clear():
            channel.on_terminated(error, failure)
        # Queued before anyone can see the connection closed (the blocking
        # front stops its callback thread once it does).
        self.run_callbacks(self.callbacks.close, error)
        self.state_changed()
        return True
