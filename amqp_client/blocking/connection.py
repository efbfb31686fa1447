"""The blocking front: a socket, one I/O thread, and the sans-IO core.

Threads and who does what:

* the **I/O thread** (one per connection) owns the selector: it reads the
  socket, feeds the core, writes what user threads could not write at
  once, answers heartbeats at the core's deadlines, and resolves waiters
  and fills consumer queues. It never runs user code, so a slow callback
  or a user thread asleep between two calls cannot starve heartbeats;
* **user threads** take the connection lock only to issue a command to
  the core and write its bytes (non-blocking; what does not fit is left
  for the I/O thread), then wait on a future without the lock;
* the **callback thread** runs user callbacks (returns, confirms, closes,
  flow, blocked...) in order, without the lock; a blocking call made from
  a callback works, because replies are resolved by the I/O thread.

No protocol logic here: that is :mod:`amqp_client.protocol`.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import queue
import selectors
import socket
import ssl as _ssl
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
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
from amqp_client._recovery import connect_arguments as _arguments
from amqp_client._spec_base import Method
from amqp_client.blocking._waiter import Waiter
from amqp_client.errors import (
    AMQPError,
    ChannelClosed,
    ConnectionClosed,
    ConnectionLost,
    UsageError,
)
from amqp_client.protocol import Connection as ProtocolConnection
from amqp_client.protocol import events as ev
from amqp_client.spec import ConnectionMethods

__all__ = ["Connection", "connect"]

log = logging.getLogger("amqp_client.blocking")

Callback = Callable[..., object]

_RECV_SIZE = 256 * 1024
#: Bytes waiting for the socket above which publishers wait (and below
#: which they go on).
_WRITE_HIGH = 4 << 20
_WRITE_LOW = 1 << 20
#: Non-urgent output above which the writing thread writes it itself.
_WRITE_DIRECT = 256 * 1024
#: Undelivered messages (all consumers) above which the I/O thread stops
#: reading, and below which it reads again.
_READ_HIGH = 20_000
_READ_LOW = 5_000
_CLOSE_TIMEOUT = 10.0
_STOP = object()


class Connection(ConnectionMethods, EventSink, RecoveryEvents):
    """An AMQP connection for threaded programs. Create it with :func:`connect`.

    Any number of threads may use it, each with its own channel, and
    several threads may publish on one channel. Use it as a context
    manager (it closes on exceptions too) or call :meth:`close` from any
    thread.
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
        self._core = new_core(self._params)
        self._lock = threading.Lock()
        self._sock: socket.socket | None = None
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self._out: deque[memoryview] = deque()
        self._out_bytes = 0
        self._bytes_written = 0
        self._commands = 0  # commands user threads issued (a statistic)
        self._wake_pending = False
        # The last write stopped short: the broker is not reading as fast
        # as we publish. Publishers then leave writing to the I/O thread
        # (which waits for the socket to drain) instead of each trying.
        self._socket_full = False
        self._can_gather = False  # sendmsg works on plain sockets only
        self._writable = threading.Condition(self._lock)
        self._channels: dict[int, Any] = {}
        self._opening: dict[int, Waiter[None]] = {}
        self._opened: Waiter[None] = Waiter()
        self._closed = threading.Event()
        self._finished = False
        self._finish_lock = threading.Lock()
        self._close_error: AMQPError | None = None
        self._control_waiters: deque[Waiter[Method]] = deque()
        self._io_thread: threading.Thread | None = None
        self._stopping = False
        self._buffered = 0
        self._reading_paused = False
        self._callbacks: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._callback_thread: threading.Thread | None = None
        self._close_callbacks: list[Callback] = []
        self._blocked_callbacks: list[Callback] = []
        self._unblocked_callbacks: list[Callback] = []
        # Recovery (see amqp_client._recovery). ``_ready`` is clear while
        # the connection is down and being restored: calls wait on it.
        self._init_recovery(recovery)
        self._connecting = False
        self._closing = False
        self._ready = threading.Event()
        self._ready.set()
        self._recovery_thread: threading.Thread | None = None
        self._wake_recovery = threading.Event()

    def __repr__(self) -> str:
        return (
            f"<amqp_client.blocking.Connection {self._params.redacted_url()} "
            f"{self._core.state.value}>"
        )

    # --- public -------------------------------------------------------------------

    @property
    def is_open(self) -> bool:
        return self._core.is_open and self._ready.is_set() and not self._closed.is_set()

    @property
    def is_closed(self) -> bool:
        return self._closed.is_set()

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

    def channel(self, *, timeout: float | None = None) -> Any:
        """Open a channel on the lowest free id.

        Raises:
            ConnectionClosed: the connection is closed.
            UsageError: all channel ids are in use, or called from the I/O thread.
            TimeoutError: no channel.open-ok within ``timeout``.
        """
        from amqp_client.blocking.channel import Channel

        self._check_not_io_thread()
        self._until_ready(timeout)
        with self._lock:
            self._check_open()
            channel_id = self._core.open_channel()
            opened: Waiter[None] = Waiter()
            self._opening[channel_id] = opened
            channel = Channel(self, channel_id)
            self._channels[channel_id] = channel
            self._flush_locked()
        opened.result(timeout)
        return channel

    def close(self, reply_code: int = 200, reply_text: str = "") -> None:
        """Close the connection from any thread; idempotent. Waits at most
        10 s for the broker's close-ok, then drops the socket. On a
        recovering connection it also stops recovery."""
        if (
            self._io_thread is not None
            and threading.current_thread() is self._io_thread
        ):
            raise UsageError("close() from the I/O thread")
        self._closing = True
        self._wake_recovery.set()
        recovery = self._recovery_thread
        if recovery is not None and recovery is not threading.current_thread():
            recovery.join(_CLOSE_TIMEOUT + 5)
        events: list[ev.Event] = []
        down = False
        with self._lock:
            if not self._closed.is_set():
                if self._core.is_closed or self._connecting:
                    down = True
                else:
                    self._core.close(reply_code, reply_text)
                    self._flush_locked()
                    events = self._core.events_received()
        if down:
            self._abort_attempt("closed by the application")
            self._finish(None)
        if events:
            dispatch(self, events)
        if not self._closed.wait(_CLOSE_TIMEOUT):
            log.warning(
                "no connection.close-ok within %.0f s; dropping the socket",
                _CLOSE_TIMEOUT,
            )
            with self._lock:
                self._core.connection_lost("close timed out")
                events = self._core.events_received()
            dispatch(self, events)
        self._shutdown()

    def wait_closed(self, timeout: float | None = None) -> AMQPError | None:
        """Wait until the connection is over; return its terminal error
        (None after a clean close).

        Raises:
            TimeoutError: still open after ``timeout`` seconds.
        """
        if not self._closed.wait(timeout):
            raise TimeoutError(f"the connection is still open after {timeout} s")
        return self._close_error

    def add_on_close_callback(self, callback: Callback) -> None:
        """``callback(error)`` when the connection is over (None if clean)."""
        self._close_callbacks.append(callback)

    def add_on_blocked_callback(self, callback: Callback) -> None:
        """``callback(reason)`` on connection.blocked."""
        self._blocked_callbacks.append(callback)

    def add_on_unblocked_callback(self, callback: Callback) -> None:
        """``callback()`` on connection.unblocked."""
        self._unblocked_callbacks.append(callback)

    def _emit_connection(self, callbacks: list[Callback], *args: object) -> None:
        self._call_soon(callbacks, *args)

    def __enter__(self) -> Connection:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- generated API hooks (connection-level methods) ------------------------------

    def _rpc(self, method: Method, timeout: float | None) -> Method:
        self._check_not_io_thread()
        self._until_ready(timeout)
        waiter: Waiter[Method] = Waiter()
        with self._lock:
            self._check_open()
            self._core.call(0, method)
            self._control_waiters.append(waiter)
            self._flush_locked()
        return waiter.result(timeout)

    def _send(self, method: Method) -> None:
        self._until_ready()
        with self._lock:
            self._check_open()
            self._core.send(0, method)
            self._flush_locked()

    def _publish(self, method: Method, body: bytes, properties: Any) -> Any:
        raise UsageError("publishing happens on a channel")

    # --- opening and the I/O thread -----------------------------------------------------------

    def _establish(self, order: Sequence[uri.ConnectionParameters]) -> None:
        """Open a socket and an AMQP connection to the first endpoint of
        ``order`` that answers."""
        failures: list[tuple[str, BaseException]] = []
        self._connecting = True
        try:
            for params in order:
                if self._closing:
                    raise ConnectionLost("the connection was closed by the application")
                try:
                    self._connect_to(params)
                except (ConnectionLost, TimeoutError) as exc:
                    failures.append((params.address, exc))
                    continue
                return
        finally:
            self._connecting = False
        raise connect_error(failures)

    def _connect_to(self, params: uri.ConnectionParameters) -> None:
        timeout = params.connection_timeout
        deadline = None if timeout is None else time.monotonic() + timeout
        try:
            sock = socket.create_connection((params.host, params.port), timeout=timeout)
        except TimeoutError:
            raise TimeoutError(
                f"connecting to {params.address} timed out after {timeout} s"
            ) from None
        except OSError as exc:
            raise ConnectionLost(
                f"cannot connect to {params.address}: {exc.strerror or exc}"
            ) from exc
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if params.tls:
                context = params.ssl_context or _ssl.create_default_context()
                sock = context.wrap_socket(sock, server_hostname=params.host)
            sock.setblocking(False)
        except TimeoutError:
            sock.close()
            raise TimeoutError(
                f"the TLS handshake with {params.address} timed out after {timeout} s"
            ) from None
        except OSError as exc:  # ssl.SSLError included: a bad certificate...
            sock.close()
            raise ConnectionLost(
                f"cannot connect to {params.address}: {exc.strerror or exc}"
            ) from exc
        except BaseException:
            sock.close()
            raise
        core = new_core(params)
        with self._lock:
            if self._closing:
                # close() came meanwhile (it looks under this lock): do not
                # bring up a connection it will not close.
                sock.close()
                raise ConnectionLost("the connection was closed by the application")
            self._params = params
            self._core = core
            self._opened = Waiter()
            self._sock = sock
            self._out.clear()
            self._out_bytes = 0
            self._socket_full = False
            self._can_gather = not isinstance(sock, _ssl.SSLSocket) and hasattr(
                sock, "sendmsg"
            )
            core.initiate(time.monotonic())
            if self._reading_paused:
                core.reading_paused(True, time.monotonic())
            self._flush_locked(from_io=True)
        self._io_thread = threading.Thread(
            target=self._io_loop,
            args=(sock, core),
            name=f"amqp-io {params.address}",
            daemon=True,
        )
        self._io_thread.start()
        remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
        try:
            self._opened.result(remaining)
        except TimeoutError:
            self._abort_attempt(f"connecting to {params.address} timed out")
            raise TimeoutError(
                f"connecting to {params.address} timed out after {timeout} s"
            ) from None
        except BaseException:
            self._abort_attempt(f"connecting to {params.address} failed")
            raise

    def _abort_attempt(self, reason: str) -> None:
        """Drop the current socket (if any) and wait for its I/O thread."""
        with self._lock:
            self._core.connection_lost(reason)
            events = self._core.events_received()
        if events:
            dispatch(self, events)
        self._wake()
        thread = self._io_thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(5)

    def _io_loop(self, sock: socket.socket, core: ProtocolConnection) -> None:
        selector = selectors.DefaultSelector()
        selector.register(self._wake_r, selectors.EVENT_READ)
        interest = selectors.EVENT_READ
        selector.register(sock, interest)
        try:
            while not self._stopping:
                with self._lock:
                    events = core.events_received() if core.is_closed else None
                if events is not None:
                    # Dropped before this loop ran (a failed first write, a
                    # failed attempt, close()): what it said still counts.
                    if events:
                        dispatch(self, events)
                    break
                with self._lock:
                    want = 0 if self._reading_paused else selectors.EVENT_READ
                    if self._out:
                        want |= selectors.EVENT_WRITE
                    deadline = core.next_deadline()
                if want != interest:
                    if want:
                        if interest:
                            selector.modify(sock, want)
                        else:
                            selector.register(sock, want)
                    else:
                        selector.unregister(sock)
                    interest = want
                timeout = (
                    None if deadline is None else max(0.0, deadline - time.monotonic())
                )
                ready = selector.select(timeout)
                data = b""
                eof = False
                failure = ""
                for key, mask in ready:
                    if key.fileobj is self._wake_r:
                        try:
                            while self._wake_r.recv(4096):
                                pass
                        except (BlockingIOError, InterruptedError):
                            pass
                        continue
                    if mask & selectors.EVENT_READ:
                        try:
                            data = sock.recv(_RECV_SIZE)
                            eof = not data
                        except (
                            BlockingIOError,
                            InterruptedError,
                            _ssl.SSLWantReadError,
                        ):
                            pass
                        except OSError as exc:
                            failure = str(exc)
                with self._lock:
                    self._wake_pending = False
                    now = time.monotonic()
                    if data:
                        core.receive_data(data, now)
                    elif eof:
                        core.receive_eof()
                    elif failure:
                        core.connection_lost(
                            f"connection to {self._params.address} lost: {failure}"
                        )
                    core.handle_timers(now)
                    self._flush_locked(from_io=True)
                    events = core.events_received()
                if events:
                    dispatch(self, events)
                if core.is_closed:
                    with self._lock:
                        self._write_some()  # the close or close-ok frame
                    break
        except Exception:
            log.exception("the I/O thread failed")
            with self._lock:
                core.connection_lost("internal error in the I/O thread")
                events = core.events_received()
            dispatch(self, events)
        finally:
            selector.close()
            with contextlib.suppress(OSError):
                sock.close()

    def _shutdown(self) -> None:
        """Stop the threads and close the sockets (idempotent)."""
        self._stopping = True
        self._closing = True
        self._wake_recovery.set()
        self._wake()
        recovery = self._recovery_thread
        if recovery is not None and recovery is not threading.current_thread():
            recovery.join(5)
        thread = self._io_thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(5)
        self._callbacks.put(_STOP)
        cb_thread = self._callback_thread
        if cb_thread is not None and cb_thread is not threading.current_thread():
            cb_thread.join(5)
        self._close_sockets()

    def _close_sockets(self) -> None:
        for sock in (self._sock, self._wake_r, self._wake_w):
            if sock is not None:
                with contextlib.suppress(OSError):
                    sock.close()

    # --- writing (the caller holds the lock) -------------------------------------------------

    def _flush_locked(self, from_io: bool = False, urgent: bool = True) -> None:
        """Move the core's output to the socket (the caller holds the lock).

        ``urgent`` output (requests whose caller will wait for a reply) is
        written at once. Publishes and acks are not urgent: they are left
        to the I/O thread, woken once for all that gathers meanwhile, which
        writes them with one ``sendmsg`` instead of a syscall each.
        """
        data = self._core.data_to_send()
        for buf in data:
            view = memoryview(buf)
            self._out.append(view)
            self._out_bytes += view.nbytes
        if from_io:
            if self._out:
                self._write_some()
            return
        self._commands += 1
        if urgent or (self._out_bytes >= _WRITE_DIRECT and not self._socket_full):
            if self._out:
                self._write_some()
            if self._out or not data:
                # The I/O thread must write the rest, or take a new
                # heartbeat deadline into account.
                self._wake()
        elif self._out and not self._wake_pending:
            self._wake_pending = True
            self._wake()

    def _write_some(self) -> None:
        sock = self._sock
        out = self._out
        if sock is None:
            return
        gather = self._can_gather
        try:
            while out:
                if gather and len(out) > 1:
                    sent = sock.sendmsg(list(itertools.islice(out, 512)))
                else:
                    sent = sock.send(out[0])
                self._out_bytes -= sent
                self._bytes_written += sent
                while sent:
                    view = out[0]
                    if sent >= view.nbytes:
                        sent -= view.nbytes
                        out.popleft()
                    else:
                        out[0] = view[sent:]
                        sent = 0
                        break
                else:
                    continue
                self._socket_full = True
                break  # a partial write: the socket buffer is full
        except (
            BlockingIOError,
            InterruptedError,
            _ssl.SSLWantWriteError,
            _ssl.SSLWantReadError,
        ):
            self._socket_full = True
        except OSError as exc:
            out.clear()
            self._out_bytes = 0
            self._core.connection_lost(
                f"connection to {self._params.address} lost: {_tls_alert(sock, exc)}"
            )
        if not out:
            self._socket_full = False
        if self._out_bytes <= _WRITE_LOW:
            self._writable.notify_all()

    def _wake(self) -> None:
        with contextlib.suppress(BlockingIOError, InterruptedError, OSError):
            self._wake_w.send(b"\0")

    def _held_back(self) -> bool:
        """Whether the broker blocks us or the socket is full."""
        return self._core.blocked or self._out_bytes > _WRITE_HIGH

    def _must_wait(self) -> bool:
        """Whether a publish now would wait: for recovery, for the broker to
        unblock us, or for the socket to drain."""
        return not self._ready.is_set() or self._held_back()

    def _wait_writable(self) -> None:
        """Wait (lock held) while the broker blocks us or the socket is full."""
        while self._held_back() and not self._closed.is_set() and self._ready.is_set():
            self._writable.wait(1.0)

    def _check_open(self) -> None:
        if self._closed.is_set():
            error = self._close_error
            raise (
                error
                if error is not None
                else ConnectionClosed(200, "the connection is closed")
            )
        if self._core.is_closed:
            error = self._core.error
            if self._recovery is not None and not self._closing:
                raise lost_error(error)
            raise (
                error
                if error is not None
                else ConnectionClosed(200, "the connection is closed")
            )

    def _until_ready(self, timeout: float | None = None) -> None:
        """Raise if the connection is over; wait (at most ``timeout``)
        while it recovers."""
        self._check_open_or_recovering()
        if not self._ready.is_set():
            if not self._ready.wait(timeout):
                raise TimeoutError(f"the connection did not recover within {timeout} s")
            self._check_open()

    def _check_open_or_recovering(self) -> None:
        if self._closed.is_set() or self._ready.is_set():
            self._check_open()

    def _check_not_io_thread(self) -> None:
        if (
            self._io_thread is not None
            and threading.current_thread() is self._io_thread
        ):
            raise UsageError(
                "a blocking call on the connection's I/O thread would deadlock"
            )

    def _delivery_buffered(self, count: int) -> None:
        """Consumers gained (count > 0) or handed out messages."""
        with self._lock:
            self._buffered += count
            if not self._reading_paused and self._buffered >= _READ_HIGH:
                self._reading_paused = True
                self._core.reading_paused(True, time.monotonic())
            elif self._reading_paused and self._buffered <= _READ_LOW:
                self._reading_paused = False
                self._core.reading_paused(False, time.monotonic())
                self._wake()

    # --- callbacks on their own thread --------------------------------------------------------

    def _call_soon(self, callbacks: list[Callback], *args: object) -> None:
        if not callbacks:
            return
        if self._callback_thread is None:
            self._callback_thread = threading.Thread(
                target=self._callback_loop,
                name=f"amqp-callbacks {self._params.address}",
                daemon=True,
            )
            self._callback_thread.start()
        self._callbacks.put((list(callbacks), args))

    def _drain_callbacks(self, timeout: float | None = None) -> bool:
        """Wait until every callback queued so far has run (tests use it to
        observe callbacks in order). False if ``timeout`` passed first."""
        thread = self._callback_thread
        if thread is None or threading.current_thread() is thread:
            return True
        done = threading.Event()
        self._callbacks.put(([done.set], ()))
        deadline = None if timeout is None else time.monotonic() + timeout
        while not done.wait(0.05):
            if not thread.is_alive():
                return True  # stopped: everything queued before it ran
            if deadline is not None and time.monotonic() >= deadline:
                return False
        return True

    def _callback_loop(self) -> None:
        while True:
            item = self._callbacks.get()
            if item is _STOP:
                # Run what was queued before the stop (close callbacks).
                while True:
                    try:
                        item = self._callbacks.get_nowait()
                    except queue.Empty:
                        return
                    if item is not _STOP:
                        run_callbacks(item[0], log, *item[1])
            callbacks, args = item
            run_callbacks(callbacks, log, *args)

    # --- routed events (I/O thread, lock not held) ------------------------------------------------

    def _on_opened(self, event: ev.ConnectionOpened) -> None:
        if not self._opened.done():
            self._opened.set_result(None)

    def _on_blocked(self, reason: str) -> None:
        self._call_soon(self._blocked_callbacks, reason)

    def _on_unblocked(self) -> None:
        with self._lock:
            self._writable.notify_all()
        self._call_soon(self._unblocked_callbacks)

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
        while self._control_waiters:
            waiter = self._control_waiters.popleft()
            if not waiter.done():
                waiter.set_result(method)
                return

    def _on_terminated(self, error: AMQPError | None) -> None:
        recovery = self._recovery_thread
        if self._connecting or (
            recovery is not None and recovery.is_alive() and not self._closing
        ):
            # An attempt (or a restore) failed; _establish / _recover go on.
            # (During close() an attempt's end is close()'s to finish.)
            self._interrupt(error)
            return
        if self._recovery is not None and not self._closing and is_recoverable(error):
            self._ready.clear()
            self._interrupt(error)
            self._start_recovery(error)
            return
        self._finish(error)

    def _finish(self, error: AMQPError | None) -> None:
        """The connection is over for good. Idempotent (and thread-safe):
        the first call decides the terminal error."""
        with self._finish_lock:
            if self._finished:
                return
            self._finished = True
        failure = (
            error if error is not None else ConnectionClosed(200, "connection closed")
        )
        self._close_error = error
        self._fail_pending(failure, failure)
        channels = list(self._channels.values())
        self._channels.clear()
        for channel in channels:
            channel._on_terminated(error, failure)
        # Queue the close callbacks before anyone can see the connection
        # closed: close() stops the callback thread once it does.
        self._call_soon(self._close_callbacks, error)
        self._closed.set()
        self._ready.set()  # wake waiters; they will see the error
        with self._lock:
            self._writable.notify_all()

    def _fail_pending(self, opening: AMQPError, failure: AMQPError) -> None:
        """Fail the open handshake (with ``opening``), the channels being
        opened and the connection-level requests (with ``failure``)."""
        if not self._opened.done():
            self._opened.set_exception(opening)
        opening_waiters = list(self._opening.values())
        self._opening.clear()
        fail_all(opening_waiters, failure)
        control = list(self._control_waiters)
        self._control_waiters.clear()
        fail_all(control, failure)

    # --- recovery ----------------------------------------------------------------------------

    def _interrupt(self, error: AMQPError | None) -> None:
        """This socket is gone but the connection lives on: fail what
        waited on it and keep the channels for the next socket."""
        failure = lost_error(error)
        self._fail_pending(error or failure, failure)
        for channel in list(self._channels.values()):
            channel._interrupt(failure)
        with self._lock:
            self._writable.notify_all()

    def _start_recovery(self, error: AMQPError | None) -> None:
        log.warning("%s; recovering", error)
        self._wake_recovery.clear()
        self._emit_connection(self._lost_callbacks, lost_error(error))
        self._recovery_thread = threading.Thread(
            target=self._recover,
            name=f"amqp-recovery {self._params.address}",
            daemon=True,
        )
        self._recovery_thread.start()

    def _recover(self) -> None:
        """The recovery thread: ends in recovery, in _finish, or (after
        close()) with the connection finished or left open for close()'s
        handshake; never with callers waiting on ``_ready`` for good."""
        try:
            self._reconnect()
        except Exception as exc:
            # A bug, or a callback's: never leave callers waiting for a
            # recovery that will not come.
            log.exception("recovery failed")
            failure = ConnectionLost(f"recovery failed: {exc!r}")
            failure.__cause__ = exc
            if not self._core.is_closed:
                self._abort_attempt(f"recovery failed: {exc!r}")
            self._give_up(failure)
            return
        if self._closing and self._core.is_closed:
            # close() may have stopped waiting for this thread: end the
            # connection (close() does the same; the first one counts).
            # An open connection is left to close()'s handshake.
            self._finish(None)

    def _reconnect(self) -> None:
        assert self._recovery is not None
        options = self._recovery
        backoff = Backoff(options.initial_delay, options.max_delay)
        order = recovery_order(self._endpoints, self._params)
        attempts = 0
        # The I/O thread of the lost socket is finishing: let it.
        thread = self._io_thread
        if thread is not None:
            thread.join(5)
        while not self._closing:
            delay = backoff.next()
            if delay and self._wake_recovery.wait(delay):
                return  # close()
            if self._closing:
                return
            attempts += 1
            try:
                self._establish(order)
                self._restore()
            except (AMQPError, OSError, TimeoutError) as exc:
                if self._closing:
                    return
                log.warning("recovery attempt %d failed: %s", attempts, exc)
                if not self._core.is_closed:
                    self._abort_attempt(f"recovery failed: {exc}")
                if gives_up(options, attempts):
                    log.error("giving up recovery after %d attempts", attempts)
                    self._give_up(give_up_error(exc))
                    return
                continue
            if self._closing:
                return
            log.info("connection recovered (%s)", self._params.address)
            self._ready.set()
            self._emit_connection(self._recovered_callbacks)
            return

    def _give_up(self, error: AMQPError) -> None:
        """Recovery is over and failed: the connection ends with ``error``."""
        self._recovery_thread = None
        self._finish(error)
        self._stopping = True
        self._wake()

    def _restore(self) -> None:
        """Reopen the channels (qos, confirm and tx mode), redeclare the
        topology, restart the consumers."""
        timeout = restore_timeout(self._params)
        channels = [self._channels[cid] for cid in sorted(self._channels)]
        for channel in channels:
            if channel._error is not None:
                continue  # closed by the application meanwhile
            self._reopen(channel, timeout)
            for method in channel._session_methods():
                channel._request(method, timeout, None, internal=True)
        if self._topology is not None:
            self._restore_topology(timeout)
        for channel in channels:
            for consumer, method in channel._consumers_to_restore():
                try:
                    channel._request(
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

    def _reopen(self, channel: Any, timeout: float) -> None:
        channel_id = channel.channel_id
        opened: Waiter[None] = Waiter()
        with self._lock:
            self._check_open()
            self._core.open_channel(channel_id)
            self._opening[channel_id] = opened
            self._flush_locked()
        opened.result(timeout)
        with self._lock:
            channel._resume(self._core)

    def _restore_topology(self, timeout: float) -> None:
        assert self._topology is not None
        helper: Any = None
        try:
            for step in self._topology.steps():
                if helper is None or not helper.is_open:
                    helper = self._helper_channel(timeout)
                try:
                    reply = helper._request(step.method, timeout, None, internal=True)
                except ChannelClosed as exc:
                    self._recovery_failed(step.entity, exc)
                    continue
                if step.on_reply is not None:
                    step.on_reply(reply)
            if helper is not None and helper.is_open:
                # A real close: on the new connection, the broker would
                # otherwise keep it open for good.
                helper.close(timeout=timeout)
        finally:
            if helper is not None:
                helper._drop()  # whatever failed: never restore it as ours

    def _helper_channel(self, timeout: float) -> Any:
        from amqp_client.blocking.channel import Channel

        opened: Waiter[None] = Waiter()
        with self._lock:
            self._check_open()
            channel_id = self._core.open_channel()
            self._opening[channel_id] = opened
            channel = Channel(self, channel_id)
            channel._recorded = False
            self._channels[channel_id] = channel
            self._flush_locked()
        opened.result(timeout)
        return channel


def _tls_alert(sock: socket.socket, error: OSError) -> OSError:
    """The TLS alert that explains a failed write, if the peer sent one.

    A TLS 1.3 server refuses a client certificate with an alert after the
    client's side of the handshake is done; a write then fails with a bare
    EOF, while the reason ("unknown ca", "certificate expired") waits in
    the receive buffer.
    """
    if not isinstance(sock, _ssl.SSLSocket):
        return error
    try:
        sock.recv(1)
    except _ssl.SSLError as alert:
        if "ALERT" in str(alert).upper():
            return alert
    except OSError:
        pass
    return error


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
) -> Connection:
    """Connect to a broker and return an open :class:`Connection`.

    Keyword arguments override what the URL says. The default URL is
    ``amqp://guest:guest@localhost:5672/%2f``. Several brokers, ``shuffle``
    and ``recover=True`` (with its ``recovery_*`` settings) work as in
    :func:`amqp_client.connect`; recovery runs on a thread of its own.

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
    connection = Connection(params, recovery)
    try:
        connection._establish(connection._endpoints)
    except BaseException:
        connection._closing = True
        connection._shutdown()
        raise
    return connection
