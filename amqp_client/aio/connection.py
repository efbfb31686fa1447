"""The asyncio front: an ``asyncio.Protocol`` driving the sans-IO core.

This module moves bytes between the transport and
:class:`amqp_client.protocol.Connection`, schedules the core's heartbeat
deadline with ``loop.call_at`` and turns core events into futures,
callbacks and consumer queues. It holds no protocol rules of its own.

Backpressure, both ways:

* publishing waits while the broker has blocked the connection
  (connection.blocked) or the transport's write buffer is above its
  high-water mark (``pause_writing``);
* when consumers hold more undelivered messages than ``_READ_HIGH`` the
  transport stops reading until the application catches up.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl as _ssl
from collections.abc import Awaitable, Callable, Generator, Mapping, Sequence
from typing import Any

from amqp_client import uri
from amqp_client._front import (
    EventSink,
    RecoveryEvents,
    dispatch,
    fail_all,
    new_core,
    run_callbacks,
)
from amqp_client._recovery import (
    Backoff,
    RecoveryOptions,
    connect_error,
    give_up_error,
    gives_up,
    is_recoverable,
    lost_error,
    recovery_order,
    restore_timeout,
)
from amqp_client._recovery import (
    connect_arguments as _arguments,
)
from amqp_client._spec_base import Method
from amqp_client.errors import (
    AMQPError,
    ChannelClosed,
    ConnectionClosed,
    ConnectionLost,
    UsageError,
)
from amqp_client.protocol import events as ev
from amqp_client.spec import AsyncConnectionMethods

__all__ = ["Connection", "connect"]

log = logging.getLogger("amqp_client.aio")

#: Undelivered messages (all consumers of a connection) above which the
#: transport stops reading, and below which it reads again.
_READ_HIGH = 20_000
_READ_LOW = 5_000

#: Bytes of publishes (and acks) buffered before they are handed to the
#: transport at once instead of at the end of the current loop iteration.
#: Small enough that the transport's high-water mark (and so publish
#: backpressure) takes effect before much piles up.
_FLUSH_BYTES = 64 * 1024

#: How long close() waits for the broker's close-ok.
_CLOSE_TIMEOUT = 10.0

Callback = Callable[..., object]


class _Protocol(asyncio.Protocol):
    """The transport side: bytes in and out, nothing else."""

    def __init__(self, connection: Connection) -> None:
        self._connection = connection

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._connection._on_transport(transport)

    def data_received(self, data: bytes) -> None:
        self._connection._on_data(data)

    def eof_received(self) -> bool | None:
        self._connection._on_eof()
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self._connection._on_lost(exc)

    def pause_writing(self) -> None:
        self._connection._writable_transport = False
        self._connection._update_writable()

    def resume_writing(self) -> None:
        self._connection._writable_transport = True
        self._connection._update_writable()


class Connection(AsyncConnectionMethods, EventSink, RecoveryEvents):
    """An AMQP connection for asyncio programs. Create it with :func:`connect`.

    Use it as an async context manager, open channels with
    :meth:`channel`, close it with :meth:`close`. ``await conn.closed``
    resolves (to the terminal error, or None after a clean close) when the
    connection is over.
    """

    def __init__(
        self,
        params: uri.ConnectionParameters | Sequence[uri.ConnectionParameters],
        recovery: RecoveryOptions | None = None,
    ) -> None:
        self._endpoints = (
            [params] if isinstance(params, uri.ConnectionParameters) else list(params)
        )
        self._params = self._endpoints[0]
        self._loop = asyncio.get_running_loop()
        self._core = new_core(self._params)
        self._transport: asyncio.Transport | None = None
        self._opened: asyncio.Future[None] = self._loop.create_future()
        self._closed: asyncio.Future[AMQPError | None] = self._loop.create_future()
        self._finished = False
        self._transport_gone: asyncio.Future[None] = self._loop.create_future()
        self._channels: dict[int, Any] = {}
        self._opening: dict[int, asyncio.Future[None]] = {}
        self._control_waiters: list[asyncio.Future[Method]] = []
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at: float | None = None
        self._flush_handle: asyncio.Handle | None = None
        self._unflushed = 0
        self._writable_transport = True
        self._writable = asyncio.Event()
        self._writable.set()
        self._buffered = 0
        self._reading_paused = False
        self._close_callbacks: list[Callback] = []
        self._on_blocked_callbacks: list[Callback] = []
        self._on_unblocked_callbacks: list[Callback] = []
        # Recovery (see amqp_client._recovery). ``_ready`` is clear while
        # the connection is down and being restored: calls wait on it.
        self._init_recovery(recovery)
        self._connecting = False
        self._closing = False
        self._ready = asyncio.Event()
        self._ready.set()
        self._recovery_task: asyncio.Task[None] | None = None
        self._wake_recovery = asyncio.Event()

    # --- public -------------------------------------------------------------------

    def __repr__(self) -> str:
        state = self._core.state.value
        return f"<amqp_client.aio.Connection {self._params.redacted_url()} {state}>"

    @property
    def is_open(self) -> bool:
        return self._core.is_open

    @property
    def is_closed(self) -> bool:
        return self._closed.done()

    @property
    def closed(self) -> asyncio.Future[AMQPError | None]:
        """Resolves when the connection is over, to its terminal error (None
        after a clean close)."""
        return self._closed

    @property
    def server_properties(self) -> dict[str, Any]:
        return self._core.server_properties

    @property
    def blocked(self) -> bool:
        """The broker has blocked publishing (connection.blocked)."""
        return self._core.blocked

    @property
    def heartbeat(self) -> int:
        return self._core.heartbeat

    @property
    def frame_max(self) -> int:
        return self._core.frame_max

    @property
    def channel_max(self) -> int:
        return self._core.channel_max

    async def channel(self) -> Any:
        """Open a channel on the lowest free id.

        Raises:
            ConnectionClosed: the connection is closed.
            UsageError: all channel ids are in use.
        """
        from amqp_client.aio.channel import Channel

        await self._until_ready()
        channel_id = self._core.open_channel()
        opened: asyncio.Future[None] = self._loop.create_future()
        self._opening[channel_id] = opened
        channel = Channel(self, channel_id)
        self._channels[channel_id] = channel
        self._flush()
        try:
            await opened
        except BaseException:
            self._opening.pop(channel_id, None)
            raise
        return channel

    async def close(self, reply_code: int = 200, reply_text: str = "") -> None:
        """Close the connection (handshake with the broker, then the socket).

        Idempotent. Waits at most 10 s for the broker's close-ok. On a
        recovering connection it also stops recovery.
        """
        if self._closed.done():
            return
        self._closing = True
        self._wake_recovery.set()
        task = self._recovery_task
        if task is not None and not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._core.is_closed or self._connecting:
            # Down, or between attempts: nothing to hand-shake with.
            self._core.connection_lost("closed by the application")
            self._dispatch()
            self._finish(None)
            await self._close_transport()
            return
        self._core.close(reply_code, reply_text)
        self._after_command()
        try:
            await asyncio.wait_for(asyncio.shield(self._closed), _CLOSE_TIMEOUT)
        except TimeoutError:
            log.warning(
                "no connection.close-ok within %.0f s; dropping the socket",
                _CLOSE_TIMEOUT,
            )
            self._core.connection_lost("close timed out")
            self._dispatch()
        finally:
            await self._close_transport()

    async def _close_transport(self) -> None:
        """Close the transport and wait (briefly) until its socket is really
        closed: a TLS transport first exchanges close_notify, and a loop
        that ends before would leave the socket to the garbage collector."""
        transport = self._transport
        if transport is None:
            return
        transport.close()
        if not self._transport_gone.done():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(self._transport_gone), 2.0)

    def wait_closed(self) -> Awaitable[AMQPError | None]:
        """The same as ``await conn.closed``."""
        return asyncio.shield(self._closed)

    def add_on_close_callback(self, callback: Callback) -> None:
        """``callback(error)`` when the connection is over (None if clean)."""
        self._close_callbacks.append(callback)

    def add_on_blocked_callback(self, callback: Callback) -> None:
        """``callback(reason)`` on connection.blocked."""
        self._on_blocked_callbacks.append(callback)

    def add_on_unblocked_callback(self, callback: Callback) -> None:
        """``callback()`` on connection.unblocked."""
        self._on_unblocked_callbacks.append(callback)

    def _emit_connection(self, callbacks: list[Callback], *args: object) -> None:
        run_callbacks(callbacks, log, *args)

    async def __aenter__(self) -> Connection:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # --- generated API hooks (connection-level methods) -----------------------------

    async def _rpc(self, method: Method, timeout: float | None) -> Method:
        await self._until_ready(timeout)
        waiter: asyncio.Future[Method] = self._loop.create_future()
        self._control_waiters.append(waiter)
        self._core.call(0, method)
        self._after_command()
        reply: Method = await _wait(waiter, timeout)
        return reply

    async def _send(self, method: Method) -> None:
        await self._until_ready()
        self._core.send(0, method)
        self._after_command()

    async def _publish(self, method: Method, body: bytes, properties: Any) -> Any:
        raise UsageError("publishing happens on a channel")

    # --- plumbing used by channels ----------------------------------------------------------

    def _check_open(self) -> None:
        if self._closed.done():
            error = self._closed.result()
            raise (
                error
                if error is not None
                else ConnectionClosed(200, "the connection is closed")
            )

    async def _until_ready(self, timeout: float | None = None) -> None:
        """Raise if the connection is over; wait (at most ``timeout``)
        while it recovers."""
        self._check_open()
        if not self._ready.is_set():
            try:
                await asyncio.wait_for(self._ready.wait(), timeout)
            except TimeoutError:
                raise TimeoutError(
                    f"the connection did not recover within {timeout} s"
                ) from None
            self._check_open()

    def _after_command(self) -> None:
        """A command produced bytes: write them and act on any events."""
        self._flush()
        self._dispatch()

    def _flush(self) -> None:
        if self._flush_handle is not None:
            self._flush_handle.cancel()
            self._flush_handle = None
        self._unflushed = 0
        data = self._core.data_to_send()
        transport = self._transport
        if data and transport is not None and not transport.is_closing():
            if len(data) == 1:
                transport.write(data[0])  # a request: no list to join
            else:
                transport.writelines(data)
        self._reschedule()

    def _flush_later(self, size: int = 64) -> None:
        """Coalesce the writes of many small publishes (and acks) into one
        per loop turn; ``size`` is roughly how many bytes were added."""
        self._unflushed += size
        if self._unflushed >= _FLUSH_BYTES:
            self._flush()
        elif self._flush_handle is None:
            self._flush_handle = self._loop.call_soon(self._flush)

    def _update_writable(self) -> None:
        if self._writable_transport and not self._core.blocked:
            self._writable.set()
        else:
            self._writable.clear()

    def _delivery_buffered(self, count: int) -> None:
        """Consumers gained (count > 0) or handed out messages."""
        self._buffered += count
        transport = self._transport
        if transport is None:
            return
        if not self._reading_paused and self._buffered >= _READ_HIGH:
            self._reading_paused = True
            transport.pause_reading()
            self._core.reading_paused(True, self._loop.time())
            self._reschedule()
        elif self._reading_paused and self._buffered <= _READ_LOW:
            self._reading_paused = False
            if not transport.is_closing():
                transport.resume_reading()
            self._core.reading_paused(False, self._loop.time())
            self._reschedule()

    def _reschedule(self) -> None:
        deadline = self._core.next_deadline()
        if deadline == self._timer_at:
            return
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._timer_at = deadline
        if deadline is not None:
            self._timer = self._loop.call_at(deadline, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        self._timer_at = None
        self._core.handle_timers(self._loop.time())
        self._after_command()

    # --- transport callbacks -------------------------------------------------------------

    def _on_transport(self, transport: asyncio.Transport) -> None:
        self._transport = transport
        transport.set_write_buffer_limits(high=1 << 20, low=1 << 18)
        self._core.initiate(self._loop.time())
        self._flush()

    def _on_data(self, data: bytes) -> None:
        self._core.receive_data(data, self._loop.time())
        self._after_command()

    def _on_eof(self) -> None:
        self._core.receive_eof()
        self._after_command()

    def _on_lost(self, exc: Exception | None) -> None:
        if not self._transport_gone.done():
            self._transport_gone.set_result(None)
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        reason = f"connection to {self._params.address} lost"
        if exc is not None:
            reason += f": {exc}"
        self._core.connection_lost(reason)
        self._dispatch()

    # --- events ------------------------------------------------------------------------------

    def _dispatch(self) -> None:
        events = self._core.events_received()
        if events:
            dispatch(self, events)

    # --- routed events (see amqp_client._front.dispatch) ---------------------------

    def _on_opened(self, event: ev.ConnectionOpened) -> None:
        if not self._opened.done():
            self._opened.set_result(None)

    def _on_blocked(self, reason: str) -> None:
        self._update_writable()
        run_callbacks(self._on_blocked_callbacks, log, reason)

    def _on_unblocked(self) -> None:
        self._update_writable()
        run_callbacks(self._on_unblocked_callbacks, log)

    def _on_channel_opened(self, channel_id: int) -> None:
        opened = self._opening.pop(channel_id, None)
        if opened is not None and not opened.done():
            opened.set_result(None)

    def _on_channel_terminated(self, channel_id: int, error: AMQPError | None) -> None:
        channel = self._channels.pop(channel_id, None)
        opened = self._opening.pop(channel_id, None)
        if opened is not None and not opened.done():
            opened.set_exception(error or ConnectionClosed(200, "channel closed"))
        if channel is not None:
            channel._on_terminated(error)

    def _on_control_reply(self, method: Method) -> None:
        self._resolve_control(method)

    def _resolve_control(self, method: Method) -> None:
        while self._control_waiters:
            waiter = self._control_waiters.pop(0)
            if not waiter.done():
                waiter.set_result(method)
                return

    def _on_terminated(self, error: AMQPError | None) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        task = self._recovery_task
        if self._connecting or (task is not None and not task.done()):
            # An attempt (or a restore) failed; _establish / _recover go on.
            self._interrupt(error)
            return
        if self._recovery is not None and not self._closing and is_recoverable(error):
            self._interrupt(error)
            self._start_recovery(error)
            return
        self._finish(error)

    def _finish(self, error: AMQPError | None) -> None:
        """The connection is over for good. Idempotent: the first call
        decides the terminal error."""
        if self._finished:
            return
        self._finished = True
        failure = (
            error if error is not None else ConnectionClosed(200, "connection closed")
        )
        self._fail_pending(failure, failure)
        channels = list(self._channels.values())
        self._channels.clear()
        for channel in channels:
            channel._on_terminated(error, failure)
        self._writable.set()  # wake blocked publishers; they will see the error
        if not self._closed.done():
            self._closed.set_result(error)
        self._ready.set()  # wake waiters; they will see the error
        self._shut_transport()
        run_callbacks(self._close_callbacks, log, error)

    def _fail_pending(self, opening: AMQPError, failure: AMQPError) -> None:
        """Fail the open handshake (with ``opening``), the channels being
        opened and the connection-level requests (with ``failure``)."""
        if not self._opened.done():
            self._opened.set_exception(opening)
            self._opened.exception()  # nobody may wait for it any more
        fail_all(self._opening.values(), failure)
        self._opening.clear()
        fail_all(self._control_waiters, failure)
        self._control_waiters.clear()

    def _shut_transport(self) -> None:
        if self._transport is not None:
            # Let the close (or close-ok) frame go out first.
            data = self._core.data_to_send()
            if data and not self._transport.is_closing():
                self._transport.writelines(data)
            self._transport.close()

    # --- recovery ----------------------------------------------------------------------------

    def _interrupt(self, error: AMQPError | None) -> None:
        """This transport is gone but the connection lives on: fail what
        waited on it and keep the channels for the next transport."""
        failure = lost_error(error)
        self._fail_pending(error or failure, failure)
        for channel in list(self._channels.values()):
            channel._interrupt(failure)
        self._writable.set()
        self._shut_transport()

    def _start_recovery(self, error: AMQPError | None) -> None:
        log.warning("%s; recovering", error)
        self._ready.clear()
        self._wake_recovery.clear()
        self._emit_connection(self._lost_callbacks, lost_error(error))
        self._recovery_task = self._loop.create_task(self._recover())

    async def _recover(self) -> None:
        """The recovery task. close() cancels it (and then ends the
        connection itself); anything else ends in recovery or in _finish."""
        try:
            await self._reconnect()
        except Exception as exc:
            # A bug, or a callback's: never leave callers waiting for a
            # recovery that will not come.
            log.exception("recovery failed")
            failure = ConnectionLost(f"recovery failed: {exc!r}")
            failure.__cause__ = exc
            if not self._core.is_closed:
                self._core.connection_lost(f"recovery failed: {exc!r}")
                self._dispatch()
            self._finish(failure)

    async def _reconnect(self) -> None:
        assert self._recovery is not None
        options = self._recovery
        backoff = Backoff(options.initial_delay, options.max_delay)
        order = recovery_order(self._endpoints, self._params)
        attempts = 0
        while not self._closing:
            delay = backoff.next()
            if delay:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake_recovery.wait(), delay)
                if self._closing:
                    return
            attempts += 1
            try:
                await self._establish(order)
                await self._restore()
            except (AMQPError, OSError, TimeoutError) as exc:
                log.warning("recovery attempt %d failed: %s", attempts, exc)
                if not self._core.is_closed:
                    self._core.connection_lost(f"recovery failed: {exc}")
                    self._dispatch()
                if gives_up(options, attempts):
                    log.error("giving up recovery after %d attempts", attempts)
                    self._finish(give_up_error(exc))
                    return
                continue
            log.info("connection recovered (%s)", self._params.address)
            self._ready.set()
            self._emit_connection(self._recovered_callbacks)
            return

    async def _establish(self, order: Sequence[uri.ConnectionParameters]) -> None:
        """Open a transport and an AMQP connection to the first endpoint of
        ``order`` that answers."""
        failures: list[tuple[str, BaseException]] = []
        self._connecting = True
        try:
            for params in order:
                if self._closing:
                    raise ConnectionLost("the connection was closed by the application")
                try:
                    await self._connect_to(params)
                except (ConnectionLost, TimeoutError) as exc:
                    failures.append((params.address, exc))
                    continue
                return
        finally:
            self._connecting = False
        raise connect_error(failures)

    async def _connect_to(self, params: uri.ConnectionParameters) -> None:
        self._params = params
        self._core = new_core(params)
        self._opened = self._loop.create_future()
        self._transport_gone = self._loop.create_future()
        self._transport = None
        self._writable_transport = True
        self._reading_paused = False
        ssl_context: _ssl.SSLContext | None = None
        if params.tls:
            ssl_context = params.ssl_context or _ssl.create_default_context()
        timeout = params.connection_timeout
        try:
            async with asyncio.timeout(timeout):
                try:
                    await self._loop.create_connection(
                        lambda: _Protocol(self),
                        params.host,
                        params.port,
                        ssl=ssl_context,
                        server_hostname=params.host if ssl_context else None,
                    )
                except OSError as exc:
                    # asyncio closes the socket of a failed TLS handshake on
                    # a later loop turn; give it those turns, so no unclosed
                    # transport is left for the garbage collector to report.
                    for _ in range(3):
                        await asyncio.sleep(0)
                    raise ConnectionLost(
                        f"cannot connect to {params.address}: {exc.strerror or exc}"
                    ) from exc
                await self._opened
        except TimeoutError:
            await self._drop_attempt(f"connecting to {params.address} timed out")
            raise TimeoutError(
                f"connecting to {params.address} timed out after {timeout} s"
            ) from None
        except BaseException:
            await self._drop_attempt(f"connecting to {params.address} failed")
            raise
        if self._buffered >= _READ_HIGH and self._transport is not None:
            self._delivery_buffered(0)

    async def _drop_attempt(self, reason: str) -> None:
        """Give up this attempt's transport, and wait (briefly) until its
        socket is closed: a failed attempt needs no TLS close_notify, and
        a socket left to a loop that ends soon would leak."""
        if not self._core.is_closed:
            self._core.connection_lost(reason)
            self._dispatch()
        transport = self._transport
        if transport is not None:
            transport.abort()
            if not self._transport_gone.done():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(asyncio.shield(self._transport_gone), 1.0)

    async def _restore(self) -> None:
        """Reopen the channels (qos, confirm and tx mode), redeclare the
        topology, restart the consumers."""
        from amqp_client.aio.channel import Channel

        channels: list[Channel] = [
            self._channels[cid] for cid in sorted(self._channels)
        ]
        timeout = restore_timeout(self._params)
        for channel in channels:
            if channel._error is not None:
                continue  # closed by the application meanwhile
            await self._reopen(channel, timeout)
            for method in channel._session_methods():
                await channel._request(method, timeout, None, internal=True)
        if self._topology is not None:
            await self._restore_topology(timeout)
        for channel in channels:
            for consumer, method in channel._consumers_to_restore():
                try:
                    await channel._request(
                        method,
                        timeout,
                        channel._consumer_registered(consumer),
                        internal=True,
                    )
                except ChannelClosed as exc:
                    self._recovery_failed(f"consumer {consumer.consumer_tag!r}", exc)
                    consumer._end(exc)
                    if channel._error is not None:
                        break

    async def _reopen(self, channel: Any, timeout: float) -> None:
        await self._opened_on_core(self._core.open_channel(channel.channel_id), timeout)
        channel._resume(self._core)

    async def _restore_topology(self, timeout: float) -> None:
        from amqp_client.aio.channel import Channel

        assert self._topology is not None
        helper: Channel | None = None
        try:
            for step in self._topology.steps():
                if helper is None or not helper.is_open:
                    helper = await self._helper_channel(timeout)
                try:
                    reply = await helper._request(
                        step.method, timeout, None, internal=True
                    )
                except ChannelClosed as exc:
                    self._recovery_failed(step.entity, exc)
                    continue
                if step.on_reply is not None:
                    step.on_reply(reply)
            if helper is not None and helper.is_open:
                # A real close: on the new connection, the broker would
                # otherwise keep it open for good.
                await asyncio.wait_for(helper.close(), timeout)
        finally:
            if helper is not None:
                helper._drop()  # whatever failed: never restore it as ours

    async def _helper_channel(self, timeout: float) -> Any:
        """A channel of recovery's own, not recorded and not restored."""
        from amqp_client.aio.channel import Channel

        channel_id = self._core.open_channel()
        channel = Channel(self, channel_id)
        channel._recorded = False
        self._channels[channel_id] = channel
        await self._opened_on_core(channel_id, timeout)
        return channel

    async def _opened_on_core(self, channel_id: int, timeout: float) -> None:
        """Send the channel.open the core queued and wait for open-ok."""
        opened: asyncio.Future[None] = self._loop.create_future()
        self._opening[channel_id] = opened
        self._flush()
        await _wait(opened, timeout)


async def _wait(waiter: asyncio.Future[Any], timeout: float | None) -> Any:
    if timeout is None:
        return await waiter
    try:
        return await asyncio.wait_for(asyncio.shield(waiter), timeout)
    except TimeoutError:
        # The reply may still come: the waiter stays in its FIFO slot so that
        # later replies keep matching their requests.
        waiter.cancel()
        raise


class _Connect:
    """What :func:`connect` returns: awaitable, and an async context manager."""

    def __init__(
        self,
        params: Sequence[uri.ConnectionParameters],
        recovery: RecoveryOptions | None,
    ) -> None:
        self._params = params
        self._recovery = recovery
        self._connection: Connection | None = None

    def __await__(self) -> Generator[Any, None, Connection]:
        return self._open().__await__()

    async def __aenter__(self) -> Connection:
        self._connection = await self._open()
        return self._connection

    async def __aexit__(self, *exc: object) -> None:
        if self._connection is not None:
            await self._connection.close()

    async def _open(self) -> Connection:
        connection = Connection(self._params, self._recovery)
        await connection._establish(connection._endpoints)
        return connection


def connect(
    url: str | Sequence[str] | None = None,
    *,
    hosts: Sequence[str] | None = None,
    shuffle: bool = False,
    recover: bool = False,
    recovery_delay: float = 0.5,
    recovery_max_delay: float = 10.0,
    recovery_attempts: int | None = None,
    heartbeat: int | None = None,
    frame_max: int | None = None,
    channel_max: int | None = None,
    ssl: _ssl.SSLContext | None = None,
    auth_mechanism: str | None = None,
    client_properties: Mapping[str, Any] | None = None,
    connection_name: str | None = None,
    connection_timeout: float | None = None,
    locale: str | None = None,
) -> _Connect:
    """Connect to a broker: ``conn = await connect(url)`` or
    ``async with connect(url) as conn``.

    Keyword arguments override what the URL says. The default URL is
    ``amqp://guest:guest@localhost:5672/%2f``.

    Several brokers (a cluster): pass a list of URLs, or one URL and
    ``hosts=["node2:5672", "node3"]`` (which take that URL's credentials,
    vhost and options). They are tried in order (``shuffle=True``: in
    random order), each within connection_timeout; the error says which
    addresses failed and why.

    ``recover=True`` makes the connection survive the loss of its broker:
    it reconnects (across the brokers, with exponential backoff from
    ``recovery_delay`` up to ``recovery_max_delay`` seconds, with jitter,
    at most ``recovery_attempts`` times in a row, or until ``close()``)
    and restores its channels (qos, confirm and tx mode), the exchanges,
    queues and bindings declared through it, and its consumers (same tags;
    their iterators keep yielding). Calls pending at the loss, and
    publishes not yet confirmed, raise ``ConnectionLost`` (retry them);
    calls made while it recovers wait until it is back. Deliveries from
    before the loss are not acked on the new connection (the broker
    redelivers them). See ``add_on_lost_callback``,
    ``add_on_recovered_callback`` and ``add_on_recovery_error_callback``.

    Raises:
        ValueError: a malformed URL or argument (before anything is sent).
        AuthenticationError: the broker refused the credentials.
        ConnectionClosed: the broker refused the connection (a subclass
            such as NotAllowedError for an unknown vhost).
        ConnectionLost: the TCP connection could not be made or broke.
        TimeoutError: connection_timeout passed.
    """
    params, recovery = _arguments(
        url,
        hosts,
        shuffle,
        recover,
        recovery_delay,
        recovery_max_delay,
        recovery_attempts,
        heartbeat=heartbeat,
        frame_max=frame_max,
        channel_max=channel_max,
        ssl=ssl,
        auth_mechanism=auth_mechanism,
        client_properties=client_properties,
        connection_name=connection_name,
        connection_timeout=connection_timeout,
        locale=locale,
    )
    return _Connect(params, recovery)
