"""The asyncio front: an ``asyncio.Protocol`` driving the session layer.

This module moves bytes between the transport and the connection's
:class:`~amqp_client.session.connection.ConnectionSession`, schedules the
core's heartbeat deadline with ``loop.call_at``, makes futures and awaits
them, and drives the connect, recovery and restore plans with coroutines.
It holds no protocol or session rules of its own.

Backpressure, both ways:

* publishing waits while the broker has blocked the connection
  (connection.blocked), the transport's write buffer is above its
  high-water mark (``pause_writing``), channel.flow paused the channel, or
  the connection recovers (``basic_publish(timeout=)`` bounds the wait);
* when consumers hold more than the delivery budget (bytes or messages,
  ``connect(max_buffered_bytes=, max_buffered_messages=)``) the transport
  stops reading, unless a reply is awaited.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import os
import ssl as _ssl
import time
from collections.abc import Awaitable, Callable, Generator, Sequence
from typing import Any, Protocol, TypeGuard, Unpack, cast

from amqp_client import uri
from amqp_client._spec_base import Method, check_timeout
from amqp_client.aio.channel import (
    Channel,
    Delivery,
    _retrieve,
    drain,
    open_channel,
    wait,
)
from amqp_client.auth import Credentials
from amqp_client.errors import (
    AMQPError,
    ChannelClosed,
    ConnectionLost,
    CredentialsError,
)
from amqp_client.frames import JOIN_MAX
from amqp_client.session.api import ConnectionInfo
from amqp_client.session.channel import GRACEFUL_CLOSE_TIMEOUT, ChannelSession
from amqp_client.session.connect import (
    ConnectKeywords,
    ConnectOptions,
    connect_plan,
    parse_connect,
)
from amqp_client.session.connection import ConnectionSession, Ending
from amqp_client.session.credentials import Fetch, refresh_plan
from amqp_client.session.link import (
    READ_SMALL,
    Callback,
    Reply,
    Waiter,
    next_read_size,
    run_callbacks,
)
from amqp_client.session.recovery import Sleep, recovery_loop, restore_timeout
from amqp_client.session.restore import Restorer
from amqp_client.spec import AsyncConnectionMethods, ReplyCode
from amqp_client.spec.api import ReplyT

__all__ = ["Connection", "connect"]

#: The base class's writelines, which joins the buffers into one bytes
#: object: what CPython 3.11's selector transport still uses (3.12 gave it
#: a writelines of its own that keeps the buffers, as uvloop's does).
_JOINING_WRITELINES = asyncio.WriteTransport.writelines


def _write_buffers(
    transport: asyncio.Transport, data: list[bytes | memoryview]
) -> None:
    """Hand the core's output to the transport without joining large bodies.

    The buffers are the small frames (joined by the core, many publishes to
    a buffer) and the large bodies' views (JOIN_MAX or more), which must not
    be copied into one joined bytes object with their frame heads.
    """
    if len(data) > 1:
        if type(transport).writelines is _JOINING_WRITELINES and (
            max(map(len, data)) >= JOIN_MAX
        ):
            # This writelines would join them all: write each large buffer
            # by itself, and the small ones between them together.
            small: list[bytes | memoryview] = []
            for buf in data[:-1]:
                if len(buf) >= JOIN_MAX:
                    if small:
                        transport.writelines(small)
                        small = []
                    transport.write(buf)
                else:
                    small.append(buf)
            if small:
                transport.writelines(small)
        else:
            transport.writelines(data[:-1])
    # The last buffer through write(): on CPython 3.12.0-3.12.2 writelines()
    # never calls pause_writing, so a peer that stops reading would let the
    # buffer grow without bound; write() always checks the high-water mark.
    transport.write(data[-1])


log = logging.getLogger("amqp_client.aio")

#: Bytes of publishes (and acks) buffered before they are handed to the
#: transport at once instead of at the end of the current loop iteration.
#: Small enough that the transport's high-water mark (and so publish
#: backpressure) takes effect before much piles up.
_FLUSH_BYTES = 64 * 1024

#: How long close() waits for the broker's close-ok.
_CLOSE_TIMEOUT = 10.0


class _ReadSized(Protocol):
    """A transport whose reads ask for ``max_size`` bytes: asyncio's own
    selector transport (an attribute it has had since Python 3.4; uvloop's
    transport reads into a buffer of its own and has none)."""

    max_size: int


def _read_sized(transport: object) -> TypeGuard[_ReadSized]:
    return isinstance(getattr(transport, "max_size", None), int)


def _pollable_fd(transport: asyncio.Transport) -> int:
    """The socket ``busy_poll`` may read behind ``transport``: a plain TCP
    transport's on POSIX (asyncio's selector loop or uvloop, which both
    read only when the socket is readable and take an empty read in
    stride); -1 for TLS (its transport holds decrypted input of its own)
    or anything else."""
    if os.name != "posix" or transport.get_extra_info("sslcontext") is not None:
        return -1
    sock = transport.get_extra_info("socket")
    fileno = getattr(sock, "fileno", None)
    if fileno is None:
        return -1
    fd = fileno()
    return fd if isinstance(fd, int) else -1


class _Protocol(asyncio.Protocol):
    """The transport side: bytes in and out, nothing else."""

    def __init__(self, driver: _Driver) -> None:
        self._driver = driver

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # A stream transport; not always an asyncio.Transport subclass
        # (uvloop's is not), so no isinstance check.
        self._driver.on_transport(cast(asyncio.Transport, transport))

    def data_received(self, data: bytes) -> None:
        self._driver.on_data(data)

    def eof_received(self) -> bool | None:
        self._driver.on_eof()
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self._driver.on_lost(exc)

    def pause_writing(self) -> None:
        self._driver.transport_writable = False

    def resume_writing(self) -> None:
        self._driver.transport_writable = True
        self._driver.state_changed()


class _Driver:
    """The I/O side of one connection: implements the session's
    ``FrontHooks`` and the channels' ``AsyncLink``."""

    def __init__(
        self,
        connection: Connection,
        endpoints: Sequence[uri.ConnectionParameters],
        options: ConnectOptions,
    ) -> None:
        self.connection = connection
        self.loop = asyncio.get_running_loop()
        self.session: ConnectionSession[Delivery] = ConnectionSession(
            endpoints, options, self
        )
        self.transport: asyncio.Transport | None = None
        self.transport_gone: asyncio.Future[None] = self.loop.create_future()
        self.transport_writable = True
        self.closed: asyncio.Future[AMQPError | None] = self.loop.create_future()
        self._changed: asyncio.Future[None] | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at: float | None = None
        self._flush_handle: asyncio.Handle | None = None
        self._unflushed = 0
        # The transport, when it lets us size its reads (``_read_sized``).
        self._reads: _ReadSized | None = None
        self.busy_poll = options.busy_poll  # see ``poll_for``
        self._poll_fd = -1  # the socket poll_for reads, or -1: it does not
        self._feeding = False  # on_data runs (poll_for must not nest in it)
        self.polled = 0  # inputs poll_for read (a statistic)
        self.recovery_task: asyncio.Task[None] | None = None
        self.wake_recovery = asyncio.Event()
        self.refresh_task: asyncio.Task[None] | None = None

    # --- FrontHooks ---------------------------------------------------------------------

    def flush(self, urgent: bool, size: int = 0) -> None:
        if urgent:
            self.write()
            return
        # Coalesce the writes of many small publishes (and acks) into one
        # per loop turn.
        self._unflushed += size or 64
        if self._unflushed >= _FLUSH_BYTES:
            self.write()
        elif self._flush_handle is None:
            self._flush_handle = self.loop.call_soon(self.write)

    def run_callbacks(self, callbacks: Sequence[Callback], *args: object) -> None:
        run_callbacks(callbacks, log, *args)

    def state_changed(self) -> None:
        changed = self._changed
        if changed is not None:
            self._changed = None
            if not changed.done():
                changed.set_result(None)

    def pause_reading(self, paused: bool) -> None:
        transport = self.transport
        if transport is None or transport.is_closing():
            return
        if paused:
            transport.pause_reading()
        else:
            transport.resume_reading()
        self.reschedule()

    def now(self) -> float:
        return self.loop.time()

    # --- AsyncLink ------------------------------------------------------------------------

    def publishable(self, channel: ChannelSession[Delivery]) -> bool:
        session = self.session
        return (
            self.transport_writable
            and channel.flow_active
            and not session.recovering
            and not session.core.blocked
        )

    async def wait_until(
        self, ready: Callable[[], bool], timeout: float | None, what: str
    ) -> None:
        deadline = None if timeout is None else self.loop.time() + timeout
        while not ready():
            if self._changed is None:
                self._changed = self.loop.create_future()
            changed = self._changed
            if deadline is None:
                await asyncio.shield(changed)
                continue
            remaining = deadline - self.loop.time()
            try:
                if remaining <= 0:
                    raise TimeoutError
                await asyncio.wait_for(asyncio.shield(changed), remaining)
            except TimeoutError:
                raise TimeoutError(f"{what} within {timeout} s") from None

    async def until_ready(self, timeout: float | None) -> None:
        session = self.session
        if session.recovering and not session.finished:
            await self.wait_until(
                lambda: not session.recovering or session.finished,
                timeout,
                "the connection did not recover",
            )
        session.check_open()

    # --- writing and timers ---------------------------------------------------------------

    def write(self) -> None:
        if self._flush_handle is not None:
            self._flush_handle.cancel()
            self._flush_handle = None
        self._unflushed = 0
        data = self.session.core.data_to_send()
        transport = self.transport
        if data and transport is not None and not transport.is_closing():
            if len(data) == 1:
                transport.write(data[0])
            else:
                _write_buffers(transport, data)
        if self._timer is None:
            self.reschedule()
        # Else the timer is kept: a write or read only moves this core's
        # deadlines later (each attempt starts with no timer, see
        # on_transport), so it fires early, finds nothing due, and sets the
        # next.

    def reschedule(self) -> None:
        """Keep a timer for the core's next deadline. Every write and read
        moves the heartbeat deadlines later; a timer already set for an
        earlier time is kept (it fires early, finds nothing due, and sets
        the next), which spares a timer per round trip."""
        deadline = self.session.core.next_deadline()
        timer_at = self._timer_at
        if deadline is not None and timer_at is not None and timer_at <= deadline:
            return
        self.cancel_timer()
        self._timer_at = deadline
        if deadline is not None:
            self._timer = self.loop.call_at(deadline, self.on_timer)

    def cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer = None
        self._timer_at = None

    def on_timer(self) -> None:
        self._timer = None
        self._timer_at = None
        self.session.core.handle_timers(self.loop.time())
        self.after_input()

    # --- transport callbacks ---------------------------------------------------------------

    def on_transport(self, transport: asyncio.Transport) -> None:
        self.cancel_timer()  # an earlier attempt's, if any
        self.transport = transport
        transport.set_write_buffer_limits(high=1 << 20, low=1 << 18)
        self._reads = None
        if _read_sized(transport):
            self._reads = transport
            transport.max_size = READ_SMALL
        self._poll_fd = _pollable_fd(transport) if self.busy_poll else -1
        self.session.initiate(self.loop.time())
        self.write()

    def on_data(self, data: bytes) -> None:
        reads = self._reads
        if reads is not None:
            size = reads.max_size
            want = next_read_size(size, len(data))
            if want != size:
                reads.max_size = want
        self._feeding = True
        try:
            self.session.core.receive_data(data, self.loop.time())
            self.after_input()
        finally:
            self._feeding = False

    async def poll_for(
        self, waiter: asyncio.Future[Any], timeout: float | None
    ) -> None:
        """``busy_poll``: read the socket on this task until ``waiter`` is
        settled or ``busy_poll`` seconds (at most ``timeout``) pass; the
        caller then awaits ``waiter`` as usual.

        A reply read here skips the loop's sleep in ``select`` and its
        wake-up: tens of microseconds where waking an idle virtual CPU is
        slow. The spin itself never yields (the other tasks wait for at
        most ``busy_poll``), so when it settles ``waiter`` the loop gets
        one turn after it: a task making requests back to back must not
        starve the others (nor the heartbeat timer)."""
        if self.spin(waiter, timeout):
            await asyncio.sleep(0)

    def spin(self, waiter: asyncio.Future[Any], timeout: float | None) -> bool:
        """The spin of ``poll_for``; whether it settled ``waiter``.

        Whatever the socket holds is fed to the core in order, as the
        transport would. Not while the transport's reading is paused (the
        delivery budget), its output waits in its buffer, or input is being
        routed (a task started eagerly from a callback)."""
        fd = self._poll_fd
        transport = self.transport
        if fd < 0 or self._feeding or waiter.done() or transport is None:
            return False
        if self._flush_handle is not None:
            self.write()  # (coalesced output, such as a publish, goes now)
        if (
            transport.is_closing()
            or not transport.is_reading()
            or transport.get_write_buffer_size()
        ):
            return False
        budget = self.busy_poll if timeout is None else min(self.busy_poll, timeout)
        end = time.monotonic() + budget
        while True:
            try:
                data = os.read(fd, READ_SMALL)
            except (BlockingIOError, InterruptedError):
                if time.monotonic() >= end:
                    return False
                continue
            except OSError:
                return False  # the transport's own read reports it
            if not data:
                return False  # end of input: the transport's own read sees it too
            self.polled += 1
            self.on_data(data)
            if waiter.done():
                return True
            if (
                self.transport is not transport
                or transport.is_closing()
                or not transport.is_reading()
            ):
                return False

    def on_eof(self) -> None:
        self.session.core.receive_eof()
        self.after_input()

    def on_lost(self, exc: Exception | None) -> None:
        if not self.transport_gone.done():
            self.transport_gone.set_result(None)
        self.cancel_timer()
        reason = f"connection to {self.session.params.address} lost"
        if exc is not None:
            reason += f": {exc}"
        self.session.core.connection_lost(reason)
        self.after_input()

    def after_input(self) -> None:
        """The core took input or a command: write its output, route its
        events, and act on the connection's ending if it came."""
        self.write()
        ending = self.session.handle_events()
        if ending is None:
            return
        self.cancel_timer()
        self.shut_transport()
        if ending is not Ending.ATTEMPT_FAILED:
            self.stop_refresh()
        if ending is Ending.RECOVER:
            self.wake_recovery.clear()
            self.recovery_task = self.loop.create_task(self.recover())
        elif ending is Ending.CLOSED:
            self.finished()

    def finished(self) -> None:
        """The session is over: resolve ``closed`` (idempotent)."""
        if not self.closed.done():
            self.closed.set_result(self.session.close_error)
        self.shut_transport()

    def end(self, error: AMQPError | None) -> None:
        """End the connection for good with ``error``."""
        self.session.finish(error)
        if not self.session.core.is_closed:
            self.session.core.connection_lost("the connection is over")
            self.after_input()
        self.finished()

    def shut_transport(self) -> None:
        transport = self.transport
        if transport is not None and not transport.is_closing():
            # Let the close (or close-ok) frame go out first.
            data = self.session.core.data_to_send()
            if data:
                transport.writelines(data)
            transport.close()

    async def close_transport(self, timeout: float) -> None:
        """Close the transport and wait (briefly) until its socket is really
        closed: a TLS transport first exchanges close_notify, and a loop
        that ends before would leave the socket to the garbage collector."""
        if self.transport is None:
            return
        self.shut_transport()
        if not self.transport_gone.done():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(self.transport_gone), timeout)

    # --- connecting -----------------------------------------------------------------------

    async def establish(self, order: Sequence[uri.ConnectionParameters]) -> None:
        """Ask the credentials provider (if any), then open a transport and
        an AMQP connection to the first endpoint of ``order`` that answers
        (see ``connect_plan``).

        Raises:
            CredentialsError: the provider failed (reported meanwhile).
        """
        session = self.session
        if session.credentials.provider is not None:
            credentials = await self.ask_provider(order[0])
            session.credentials.obtained(credentials, self.loop.time())
        plan = connect_plan(order, lambda: session.closing)
        session.connecting = True
        try:
            params = next(plan)
            while True:
                failure: BaseException | None = None
                try:
                    await self.connect_to(params)
                except (ConnectionLost, TimeoutError) as exc:
                    failure = exc
                try:
                    params = plan.send(failure)
                except StopIteration:
                    return
        finally:
            session.connecting = False

    async def connect_to(self, params: uri.ConnectionParameters) -> None:
        opened: asyncio.Future[None] = self.loop.create_future()
        # A failed attempt fails it after its waiter gave up: mark it seen.
        opened.add_done_callback(_retrieve)
        self.session.new_attempt(params, opened)
        self.transport_gone = self.loop.create_future()
        self.transport = None
        self.transport_writable = True
        ssl_context: _ssl.SSLContext | None = None
        if params.tls:
            ssl_context = params.ssl_context or _ssl.create_default_context()
        timeout = params.connection_timeout
        try:
            async with asyncio.timeout(timeout):
                try:
                    await self.loop.create_connection(
                        lambda: _Protocol(self),
                        params.host,
                        params.port,
                        ssl=ssl_context,
                        server_hostname=(
                            params.server_hostname or params.host
                            if ssl_context
                            else None
                        ),
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
                await opened
        except TimeoutError:
            await self.drop_attempt(f"connecting to {params.address} timed out")
            raise TimeoutError(
                f"connecting to {params.address} timed out after {timeout} s"
            ) from None
        except BaseException:
            await self.drop_attempt(f"connecting to {params.address} failed")
            raise
        self.session.reading_may_change()

    async def drop_attempt(self, reason: str) -> None:
        """Give up this attempt's transport, and wait (briefly) until its
        socket is closed: a failed attempt needs no TLS close_notify, and
        a socket left to a loop that ends soon would leak."""
        if not self.session.core.is_closed:
            self.session.core.connection_lost(reason)
            self.after_input()
        transport = self.transport
        if transport is not None:
            transport.abort()
            if not self.transport_gone.done():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(asyncio.shield(self.transport_gone), 1.0)

    # --- credentials ----------------------------------------------------------------------

    async def ask_provider(self, params: uri.ConnectionParameters) -> Credentials:
        """The credentials provider's answer (awaited if it is async, for
        at most ``state.timeout`` seconds; a plain function runs on the
        loop, so it should be quick).

        Raises:
            CredentialsError: it raised, answered something unusable or
                not in time (reported meanwhile).
        """
        state = self.session.credentials
        provider = state.provider
        assert provider is not None
        timer = asyncio.timeout(state.timeout)
        try:
            answer: object = provider()
            if inspect.isawaitable(answer):
                async with timer:
                    answer = await answer
            return state.accept(answer, params)
        except Exception as exc:
            failure: Exception = state.no_answer() if timer.expired() else exc
        # Raised here, not in the handler: failed() sets the cause itself.
        raise state.failed(failure)

    def start_refresh(self) -> None:
        """The connection is open: refresh its credentials before they
        expire (see ``refresh_plan``), until it is lost or closed."""
        self.stop_refresh()
        session = self.session
        if session.credentials.refresh_due is not None and not session.closing:
            self.refresh_task = self.loop.create_task(self.refresh())

    def stop_refresh(self) -> asyncio.Task[None] | None:
        """Cancel the refresh task; the task, to await if need be."""
        task, self.refresh_task = self.refresh_task, None
        if task is None or task.done() or task is asyncio.current_task():
            return None
        task.cancel()
        return task

    async def refresh(self) -> None:
        """The refresh task: drives ``refresh_plan``."""
        state = self.session.credentials
        plan = refresh_plan(state, self.loop.time)
        try:
            step = next(plan)
            while True:
                outcome: Credentials | BaseException | None = None
                if isinstance(step, Sleep):
                    await asyncio.sleep(step.delay)
                elif isinstance(step, Fetch):
                    try:
                        outcome = await self.ask_provider(self.session.params)
                    except CredentialsError as exc:
                        outcome = exc
                else:
                    try:
                        await self.connection.update_secret(
                            step.method.new_secret,
                            step.method.reason,
                            timeout=step.timeout,
                        )
                    except (AMQPError, TimeoutError) as exc:
                        outcome = exc
                step = plan.send(outcome)
        except StopIteration:
            return
        except Exception:
            log.exception("the credentials refresh failed")

    # --- recovery -------------------------------------------------------------------------

    async def recover(self) -> None:
        """The recovery task. close() cancels it (and then ends the
        connection itself); anything else ends in recovery or in ``end``."""
        try:
            await self.reconnect()
        except AMQPError as exc:  # recovery gave up
            self.end(exc)
        except Exception as exc:
            # A bug, or a callback's: never leave callers waiting for a
            # recovery that will not come.
            log.exception("recovery failed")
            failure = ConnectionLost(f"recovery failed: {exc!r}")
            failure.__cause__ = exc
            self.end(failure)

    async def reconnect(self) -> None:
        session = self.session
        assert session.recovery is not None
        plan = recovery_loop(session.recovery, session.endpoints, session.params)
        step = next(plan)
        while not session.closing:
            failure: BaseException | None = None
            if isinstance(step, Sleep):
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.wake_recovery.wait(), step.delay)
                if session.closing:
                    return
            else:
                try:
                    await self.establish(step.order)
                    await self.restore()
                except (AMQPError, OSError, TimeoutError) as exc:
                    if not session.core.is_closed:
                        session.core.connection_lost(f"recovery failed: {exc}")
                        self.after_input()
                    failure = exc
            try:
                step = plan.send(failure)
            except StopIteration:
                session.recovered()
                self.start_refresh()
                return

    async def restore(self) -> None:
        """Reopen the channels, redeclare the topology, restart the
        consumers (see ``restore_plan``)."""
        timeout = restore_timeout(self.session.params)
        restorer = Restorer(self.session, self.open_helper)
        try:
            while True:
                waiter: asyncio.Future[Reply] = self.loop.create_future()
                if not restorer.start(waiter):
                    return
                try:
                    restorer.finished(await wait(waiter, timeout, "recovery"))
                except ChannelClosed as exc:
                    restorer.failed(exc)
        finally:
            restorer.close()

    def open_helper(self, opened: Waiter[None]) -> ChannelSession[Delivery]:
        return open_channel(self, opened, recorded=False)[1]


class Connection(ConnectionInfo[Delivery], AsyncConnectionMethods):
    """An AMQP connection for asyncio programs. Create it with :func:`connect`.

    Use it as an async context manager, open channels with
    :meth:`channel`, close it with :meth:`close`. ``await conn.closed``
    resolves (to the terminal error, or None after a clean close) when the
    connection is over.
    """

    def __init__(
        self,
        params: uri.ConnectionParameters | Sequence[uri.ConnectionParameters],
        options: ConnectOptions | None = None,
    ) -> None:
        endpoints = [params] if isinstance(params, uri.ConnectionParameters) else params
        self._driver = _Driver(self, endpoints, options or ConnectOptions())
        self._session = self._driver.session

    @property
    def closed(self) -> asyncio.Future[AMQPError | None]:
        """Resolves when the connection is over, to its terminal error (None
        after a clean close)."""
        return self._driver.closed

    @property
    def local_address(self) -> tuple[str, int] | None:
        """The socket's own (host, port), None while not connected."""
        return _address(self._driver.transport, "sockname")

    @property
    def peer_address(self) -> tuple[str, int] | None:
        """The broker's (host, port), None while not connected."""
        return _address(self._driver.transport, "peername")

    async def channel(self, *, timeout: float | None = None) -> Channel:
        """Open a channel on the lowest free id.

        A call that is cancelled or times out before channel.open-ok leaves
        nothing behind: the channel is closed as soon as it opens.

        Raises:
            ConnectionClosed: the connection is closed.
            UsageError: all channel ids are in use.
            TimeoutError: no channel.open-ok within ``timeout``.
        """
        timeout = check_timeout(timeout)
        driver = self._driver
        await driver.until_ready(timeout)
        opened: asyncio.Future[None] = driver.loop.create_future()
        channel, state = open_channel(driver, opened)
        try:
            await wait(opened, timeout, "channel.open")
        except BaseException:
            state.abandoned = True
            if state.opened:
                state.close(ReplyCode.REPLY_SUCCESS, "")
            raise
        return channel

    async def close(
        self,
        reply_code: int = ReplyCode.REPLY_SUCCESS,
        reply_text: str = "",
        *,
        timeout: float | None = GRACEFUL_CLOSE_TIMEOUT,
    ) -> None:
        """Close the connection gracefully, then hand-shake with the
        broker and close the socket.

        Gracefully: every consumer is cancelled (basic.cancel; deliveries
        not handed out go back to the queue), then close waits at most
        ``timeout`` seconds (default 10; None: as long as it takes; 0: not
        at all) for the callbacks in flight to finish and every publish to
        get its confirm; callbacks still running then are cancelled. A
        callback that closes the connection is not waited for. Then it
        waits at most 10 s for the broker's close-ok. Idempotent. On a
        recovering connection it only stops recovery.

        Raises:
            TypeError, ValueError: a bad ``timeout``.
        """
        timeout = check_timeout(timeout)
        driver = self._driver
        session = self._session
        if driver.closed.done():
            return
        if timeout != 0 and session.is_open and not session.closing:
            await drain(driver.loop, list(session.router), timeout)
        driver.wake_recovery.set()
        task = driver.recovery_task
        handshake = session.close(reply_code, reply_text)
        if task is not None and not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        refresh = driver.stop_refresh()
        if refresh is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await refresh
        if not handshake:
            # Down, or between attempts: nothing to hand-shake with.
            driver.end(None)
            await driver.close_transport(2.0)
            return
        try:
            await asyncio.wait_for(asyncio.shield(driver.closed), _CLOSE_TIMEOUT)
        except TimeoutError:
            log.warning(
                "no connection.close-ok within %.0f s; dropping the socket",
                _CLOSE_TIMEOUT,
            )
            session.core.connection_lost("close timed out")
            driver.after_input()
        finally:
            await driver.close_transport(2.0)

    def wait_closed(self) -> Awaitable[AMQPError | None]:
        """The same as ``await conn.closed``."""
        return asyncio.shield(self._driver.closed)

    async def __aenter__(self) -> Connection:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # --- generated API hooks (connection-level methods) -----------------------------

    async def _rpc(
        self, method: Method, timeout: float | None, reply: type[ReplyT]
    ) -> ReplyT:
        await self._driver.until_ready(timeout)
        driver = self._driver
        waiter: asyncio.Future[Reply] = driver.loop.create_future()
        self._session.call(method, waiter)
        if driver.busy_poll:
            await driver.poll_for(waiter, timeout)
        outcome = await wait(waiter, timeout, method.NAME)
        assert isinstance(outcome, reply)
        return outcome

    async def _send(self, method: Method) -> None:
        await self._driver.until_ready(None)
        self._session.send(method)


def _address(transport: asyncio.Transport | None, key: str) -> tuple[str, int] | None:
    if transport is None or transport.is_closing():
        return None
    address = transport.get_extra_info(key)
    if isinstance(address, tuple) and len(address) >= 2:
        return (str(address[0]), int(address[1]))
    return None


class _Connect:
    """What :func:`connect` returns: awaitable, and an async context manager."""

    def __init__(
        self, params: Sequence[uri.ConnectionParameters], options: ConnectOptions
    ) -> None:
        self._params = params
        self._options = options
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
        connection = Connection(self._params, self._options)
        await connection._driver.establish(self._params)
        connection._driver.start_refresh()
        return connection


def connect(
    url: str | Sequence[str] | None = None, **keywords: Unpack[ConnectKeywords]
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

    ``credentials=`` takes a :class:`~amqp_client.Credentials` (user name,
    password, ``expires_at``) or a provider: a zero-argument function, or
    coroutine function, returning one (an OAuth2 token source, a Vault
    lease). The provider is asked before every connection attempt, the
    first and each recovery attempt, and its answer replaces the URL's user
    name and password. When the answer has ``expires_at``, the client asks
    again at 80% of the lifetime it had left and sends the new password
    with connection.update-secret; a provider that raises (or a refresh
    that fails) is logged, reported to ``add_on_credentials_error_callback``
    and tried again with backoff (``recovery_delay`` up to
    ``recovery_max_delay``, at least 0.1 s), and never closes the
    connection by itself. A coroutine provider has 30 s to answer (or
    connection_timeout, if longer); a plain function runs on the event
    loop, so it should be quick. Without a provider, a secret the broker
    accepted from ``update_secret()`` is what recovery logs in with.

    Deliveries received and not yet handed to the application are bounded:
    when they pass ``max_buffered_bytes`` of bodies (64 MiB) or
    ``max_buffered_messages`` (20,000), the connection stops reading from
    the socket until they are back at half; a reply the client waits for is
    still read. A consumer that ends returns what it never handed out to
    the broker (requeued), unless it is no_ack.

    Nothing the broker sends can make the client allocate without bound. A
    content header (basic.deliver, basic.get-ok, basic.return) declaring
    a body over ``max_message_size`` bytes (default 128 MiB, RabbitMQ 3.x's
    own default; RabbitMQ 4.x lowered its own to 16 MiB) ends the
    connection before any of the body is buffered: it is closed with
    frame-error (501) and fails with ``FrameDecodeError`` naming the
    declared size and the limit. A broker that tunes frame_max to 0 ("no
    limit") gets the client's own maximum, 1 MiB, in connection.tune-ok;
    a larger frame is a frame-error as well.

    ``busy_poll=`` (seconds, at most 0.01; 0, the default, is off) trades
    CPU for latency: a task that awaits a request's reply, a confirmation
    or a consumer's next delivery first reads the socket itself, without
    yielding to the loop, for up to that long, and only then sleeps in the
    loop's ``select``. Where waking a sleeping process takes tens of
    microseconds (a virtual machine's idle CPU), a reply that comes within
    the spin arrives that much sooner: a round trip to a broker on the same
    machine takes about two thirds of the time (bench/README.md), for a
    CPU busy during every wait. Pick a little more than the broker's usual
    reply time (100-500 us on one host or rack); replies that take longer
    gain nothing and cost the spin. The loop's other tasks wait at most
    ``busy_poll`` per spin, and get a turn after every spin that read its
    reply. Plain TCP on POSIX only: over TLS the setting does nothing.

    With ``opentelemetry-api`` installed, the connection reports spans and
    metrics (OpenTelemetry messaging conventions) to the global tracer and
    meter providers, or to ``tracer_provider=`` / ``meter_provider=``;
    ``telemetry=False`` turns it off (the providers are then ignored).
    Without the package nothing of it is imported. See
    :mod:`amqp_client.telemetry`.

    Raises:
        TypeError: an argument of the wrong type (before anything is sent).
        ValueError: a malformed URL or argument (before anything is sent).
        AuthenticationError: the broker refused the credentials.
        ConnectionClosed: the broker refused the connection (a subclass
            such as NotAllowedError for an unknown vhost).
        ConnectionLost: the TCP connection could not be made or broke.
        TimeoutError: connection_timeout passed.
        CredentialsError: the credentials provider raised or returned
            something other than usable Credentials (its error is the cause).
    """
    params, options = parse_connect(url, keywords)
    return _Connect(params, options)
