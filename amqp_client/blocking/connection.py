"""The blocking front: a socket, one I/O thread, and the session layer.

Threads and who does what:

* the **I/O thread** (one per connection) owns the selector: it reads the
  socket, feeds the core, writes what user threads could not write at
  once, answers heartbeats at the core's deadlines, and routes the core's
  events (which resolves waiters and fills consumer buffers). It never
  runs user code, so a slow callback or a user thread asleep between two
  calls cannot starve heartbeats;
* **user threads** take the connection lock only to issue a command and
  write its bytes (non-blocking; what does not fit is left for the I/O
  thread), then wait for the reply without the lock. A thread waiting for
  a reply reads the socket itself when no other thread is doing so
  (leader/follower, see ``lead``): the I/O thread steps aside until the
  reply is in, so the reply reaches its caller without a thread switch;
* the **callback thread** runs user callbacks (returns, confirms, closes,
  flow, blocked...) in order, without the lock; a blocking call made from
  a callback works, because replies are resolved by the I/O thread.

One lock guards the session and its core; every session call is made with
it held. A second, ``read_lock``, is held by whichever thread reads the
socket (the I/O thread, or a leading caller); it is never taken with the
first held. No protocol or session logic here: that is
:mod:`amqp_client.protocol` and :mod:`amqp_client.session`.
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
from collections.abc import Callable, Iterator, Sequence
from typing import Any, TypeVar, Unpack

from amqp_client import uri
from amqp_client._spec_base import Method, check_timeout
from amqp_client.auth import Credentials
from amqp_client.blocking._waiter import Waiter
from amqp_client.blocking.channel import Channel, Delivery, drain, open_channel, result
from amqp_client.errors import (
    AMQPError,
    ChannelClosed,
    ConnectionLost,
    CredentialsError,
    UsageError,
)
from amqp_client.protocol import Connection as Core
from amqp_client.session.api import ConnectionInfo
from amqp_client.session.channel import GRACEFUL_CLOSE_TIMEOUT, ChannelSession
from amqp_client.session.connect import (
    ConnectKeywords,
    ConnectOptions,
    connect_plan,
    parse_connect,
)
from amqp_client.session.connection import ConnectionSession, Ending
from amqp_client.session.credentials import Fetch, is_async_provider, refresh_plan
from amqp_client.session.link import (
    READ_SMALL,
    Callback,
    Reply,
    next_read_size,
    run_callbacks,
)
from amqp_client.session.link import Waiter as AnyWaiter
from amqp_client.session.recovery import Sleep, recovery_loop, restore_timeout
from amqp_client.session.restore import Restorer
from amqp_client.spec import ConnectionMethods, ReplyCode
from amqp_client.spec.api import ReplyT

__all__ = ["Connection", "connect"]

log = logging.getLogger("amqp_client.blocking")

#: Bytes waiting for the socket above which publishers wait (and below
#: which they go on).
_WRITE_HIGH = 4 << 20
_WRITE_LOW = 1 << 20
#: Non-urgent output above which the writing thread writes it itself.
_WRITE_DIRECT = 256 * 1024
_CLOSE_TIMEOUT = 10.0
#: How long the I/O thread leaves reading to callers after one took its
#: reply, unless a thread waits for input or output waits to be written
#: meanwhile: a program making one request after another then reads every
#: reply itself, without waking the I/O thread twice a request. Input
#: nobody waits for (deliveries to a busy consumer, confirms nobody waits
#: on, a broker's close) waits that long at most.
_LEAD_GRACE = 0.002
_STOP = object()

T = TypeVar("T")


class _Driver:
    """The I/O side of one connection: implements the session's
    ``FrontHooks`` and the channels' ``BlockingLink``."""

    def __init__(
        self,
        connection: Connection,
        endpoints: Sequence[uri.ConnectionParameters],
        options: ConnectOptions,
    ) -> None:
        self.connection = connection
        self.lock = threading.Lock()
        self.changed = threading.Condition(self.lock)
        self.waiting = 0  # threads in wait_until (waiting on ``changed``)
        self.session: ConnectionSession[Delivery] = ConnectionSession(
            endpoints, options, self
        )
        self.sock: socket.socket | None = None
        self.wake_r, self.wake_w = socket.socketpair()
        self.wake_r.setblocking(False)
        self.wake_w.setblocking(False)
        self.out: deque[memoryview] = deque()
        self.out_bytes = 0
        self.commands = 0  # commands user threads issued (a statistic)
        self.wake_pending = False
        # The last write stopped short: the broker is not reading as fast
        # as we publish. Publishers then leave writing to the I/O thread
        # (which waits for the socket to drain) instead of each trying.
        self.socket_full = False
        self.can_gather = False  # sendmsg works on plain sockets only
        self.closed = threading.Event()
        self.io_thread: threading.Thread | None = None
        self.io_ident: int | None = None
        self.stopping = False
        self.callbacks: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self.callback_thread: threading.Thread | None = None
        self.recovery_thread: threading.Thread | None = None
        self.wake_recovery = threading.Event()
        self.refresh_thread: threading.Thread | None = None
        self.refresh_stop = threading.Event()
        # Readers to wake once the reading thread releases the lock.
        self.deferred: list[Callable[[], None]] = []
        # Reading the socket (see ``lead``): held by the thread that reads.
        self.read_lock = threading.Lock()
        self.reader_ident: int | None = None
        self.selector: selectors.BaseSelector | None = None
        self.interest = 0  # what ``selector`` watches the socket for
        self.read_size = READ_SMALL  # the next recv's (``next_read_size``)
        self.busy_poll = options.busy_poll  # see ``poll``
        self.polled = 0  # inputs a caller found busy-polling (a statistic)
        self.leading = False  # a caller reads (or is about to): lock held
        self.lead_ended = 0.0  # when the last caller stopped reading
        self.followers = 0  # threads waiting for input someone else reads
        self.lead_over = threading.Condition(self.lock)

    # --- FrontHooks (lock held) ---------------------------------------------------------

    def flush(self, urgent: bool, size: int = 0) -> None:
        """Move the core's output to the socket.

        ``urgent`` output (requests whose caller will wait for a reply) is
        written at once. Publishes and acks are not urgent: they are left
        to the I/O thread, woken once for all that gathers meanwhile, which
        writes them with one ``sendmsg`` instead of a syscall each.
        """
        data = self.session.core.data_to_send()
        for buf in data:
            view = memoryview(buf)
            self.out.append(view)
            self.out_bytes += view.nbytes
        if self.reader_ident == threading.get_ident():
            return  # the reading thread writes after it handled its input
        self.commands += 1
        if urgent or (self.out_bytes >= _WRITE_DIRECT and not self.socket_full):
            if self.out:
                self.write_some()
            if self.out or not data:
                # The I/O thread must write the rest, or take a new
                # heartbeat deadline into account.
                self.wake()
        elif self.out and not self.wake_pending:
            self.wake_pending = True
            self.wake()
            if self.lead_ended and not self.leading:
                # The I/O thread rests after a caller's read: it writes
                # this now, not at the end of its rest.
                self.lead_over.notify_all()

    def run_callbacks(self, callbacks: Sequence[Callback], *args: object) -> None:
        if self.callback_thread is None:
            self.callback_thread = threading.Thread(
                target=self.callback_loop,
                name=f"amqp-callbacks {self.session.params.address}",
                daemon=True,
            )
            self.callback_thread.start()
        self.callbacks.put((list(callbacks), args))

    def state_changed(self) -> None:
        self.changed.notify_all()

    def pause_reading(self, paused: bool) -> None:
        if not paused:
            self.wake()  # the I/O thread reconsiders what it selects

    def now(self) -> float:
        return time.monotonic()

    # --- BlockingLink -----------------------------------------------------------------------

    def publishable(self, channel: ChannelSession[Delivery]) -> bool:
        session = self.session
        return (
            self.out_bytes <= _WRITE_HIGH
            and channel.flow_active
            and not session.recovering
            and not session.core.blocked
        )

    def wait_until(
        self, ready: Callable[[], bool], timeout: float | None, what: str
    ) -> None:
        self.waiting += 1
        try:
            if not self.changed.wait_for(ready, timeout):
                raise TimeoutError(f"{what} within {timeout} s")
        finally:
            self.waiting -= 1

    def until_ready(self, timeout: float | None) -> None:
        session = self.session
        with self.lock:
            if session.recovering and not session.finished:
                self.wait_until(
                    lambda: not session.recovering or session.finished,
                    timeout,
                    "the connection did not recover",
                )
            session.check_open()

    def wake_later(self, wake: Callable[[], None]) -> None:
        if self.reader_ident == threading.get_ident():
            self.deferred.append(wake)
        else:
            wake()

    def check_not_io_thread(self) -> None:
        if self.io_ident == threading.get_ident():
            raise UsageError(
                "a blocking call on the connection's I/O thread would deadlock"
            )

    # --- writing (lock held) ---------------------------------------------------------------

    def write_some(self) -> None:
        sock = self.sock
        out = self.out
        if sock is None:
            return
        gather = self.can_gather
        try:
            while out:
                if gather and len(out) > 1:
                    sent = sock.sendmsg(list(itertools.islice(out, 512)))
                else:
                    sent = sock.send(out[0])
                self.out_bytes -= sent
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
                self.socket_full = True
                break  # a partial write: the socket buffer is full
        except (
            BlockingIOError,
            InterruptedError,
            _ssl.SSLWantWriteError,
            _ssl.SSLWantReadError,
        ):
            self.socket_full = True
        except OSError as exc:
            out.clear()
            self.out_bytes = 0
            self.session.core.connection_lost(
                f"connection to {self.session.params.address} lost: "
                f"{_tls_alert(sock, exc)}"
            )
            self.wake()  # the I/O thread routes the ending
        if not out:
            self.socket_full = False
        if self.waiting and self.out_bytes <= _WRITE_LOW:
            self.changed.notify_all()  # a publisher may wait for room

    def wake(self) -> None:
        with contextlib.suppress(BlockingIOError, InterruptedError, OSError):
            self.wake_w.send(b"\0")

    # --- events (lock held) ------------------------------------------------------------------

    def handle_events(self) -> None:
        """Route the core's events; act on the connection's ending."""
        ending = self.session.handle_events()
        if ending is Ending.RECOVER or ending is Ending.CLOSED:
            self.refresh_stop.set()
        if ending is Ending.RECOVER:
            self.wake_recovery.clear()
            self.recovery_thread = threading.Thread(
                target=self.recover,
                name=f"amqp-recovery {self.session.params.address}",
                daemon=True,
            )
            self.recovery_thread.start()
        elif ending is Ending.CLOSED:
            self.closed.set()

    def end(self, error: AMQPError | None) -> None:
        """End the connection for good with ``error`` (lock held)."""
        self.session.finish(error)
        if not self.session.core.is_closed:
            self.session.core.connection_lost("the connection is over")
            self.handle_events()
        self.closed.set()
        self.stopping = True
        self.wake()

    # --- the I/O thread ----------------------------------------------------------------------

    def io_loop(self, sock: socket.socket, core: Core) -> None:
        self.io_ident = threading.get_ident()
        selector = selectors.DefaultSelector()
        selector.register(self.wake_r, selectors.EVENT_READ)
        selector.register(sock, selectors.EVENT_READ)
        with self.read_lock:
            self.selector = selector
            self.interest = selectors.EVENT_READ
        try:
            while not self.stopping:
                if self.leading or self.lead_ended:
                    self.rest()
                    continue
                with self.read_lock:
                    self.reader_ident = self.io_ident
                    try:
                        if not self.read_once(sock, core, None):
                            break
                    finally:
                        self.reader_ident = None
        except Exception:
            log.exception("the I/O thread failed")
            with self.lock:
                core.connection_lost("internal error in the I/O thread")
                if core is self.session.core:
                    self.handle_events()
        finally:
            self.io_ident = None
            with self.read_lock:
                if self.selector is selector:
                    self.selector = None
                with self.lock:
                    deferred, self.deferred = self.deferred, []
            for wake in deferred:
                wake()
            selector.close()
            with contextlib.suppress(OSError):
                sock.close()

    def read_once(self, sock: socket.socket, core: Core, limit: float | None) -> bool:
        """One turn of reading (``read_lock`` held): wait for input (at
        most ``limit`` seconds, and no later than the core's next timer),
        feed it to the core, route the events, write what they produced.
        False once reading this socket is over."""
        selector = self.selector
        assert selector is not None
        with self.lock:
            if core is not self.session.core:
                return False  # an attempt after ours has begun
            if core.is_closed:
                # Dropped outside this loop (a failed write, an attempt
                # given up, close()): what it said counts.
                self.handle_events()
                deferred, self.deferred = self.deferred, []
                for wake in deferred:
                    wake()
                return False
            want = 0 if self.session.reading_paused else selectors.EVENT_READ
            if self.out:
                want |= selectors.EVENT_WRITE
            deadline = core.next_deadline()
        interest = self.interest
        if want != interest:
            if want:
                if interest:
                    selector.modify(sock, want)
                else:
                    selector.register(sock, want)
            else:
                selector.unregister(sock)
            self.interest = want
        timeout = limit
        if deadline is not None:
            left = max(0.0, deadline - time.monotonic())
            timeout = left if timeout is None else min(timeout, left)
        data, eof, failure = self.poll(selector, sock, timeout)
        with self.lock:
            if core is not self.session.core:
                return False
            self.wake_pending = False
            now = time.monotonic()
            try:
                if data:
                    core.receive_data(data, now)
                elif eof:
                    core.receive_eof()
                elif failure:
                    core.connection_lost(
                        f"connection to {self.session.params.address} lost: {failure}"
                    )
                core.handle_timers(now)  # (also the core's clock for what it sends)
                self.handle_events()
            except BaseException:
                # Input half routed (a bug, or a KeyboardInterrupt in a
                # leading main thread): the connection cannot be trusted.
                if core is self.session.core and not core.is_closed:
                    core.connection_lost("interrupted while routing input")
                    self.handle_events()
                raise
            self.flush_out(core)  # replies, acks, a close or close-ok
            closed = core.is_closed
            if closed:
                self.handle_events()  # a write that failed just now
            deferred, self.deferred = self.deferred, []
        for wake in deferred:
            wake()
        return not closed

    def rest(self) -> None:
        """The I/O thread, while callers read: wait until none has for
        ``_LEAD_GRACE`` seconds, a thread waits for input nobody reads, or
        output waits for the I/O thread (an ack, a publish)."""
        with self.lock:
            while not self.stopping:
                if self.leading:
                    self.lead_over.wait(_LEAD_GRACE)  # (and see ``stopping``)
                    continue
                left = self.lead_ended + _LEAD_GRACE - time.monotonic()
                if left <= 0 or self.followers or self.out:
                    break
                self.lead_over.wait(left)
            self.lead_ended = 0.0

    # --- a caller reads its own reply (leader/follower) ---------------------------------

    def wait_for(self, waiter: Waiter[T], timeout: float | None) -> bool:
        """Wait until ``waiter`` is settled, at most ``timeout`` seconds.

        The waiting thread becomes the reader when no other caller is
        (``read_until``): the reply is then read, decoded and routed on the
        thread that waits for it, with no hand-off from the I/O thread.
        Otherwise it waits for whoever reads to settle it.
        """
        if waiter.settled:
            return True
        if timeout == 0:
            return waiter.wait(0)
        deadline = None if timeout is None else time.monotonic() + timeout
        self.read_until(waiter.done, deadline)
        if waiter.settled:
            return True
        remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
        with self.following():
            return waiter.wait(remaining)

    @contextlib.contextmanager
    def following(self) -> Iterator[None]:
        """Around a wait for input that another thread reads: the I/O
        thread reads at once, not after its rest (``_LEAD_GRACE``)."""
        with self.lock:
            self.followers += 1
            if not self.leading:
                self.lead_over.notify_all()
        try:
            yield
        finally:
            with self.lock:
                self.followers -= 1

    def read_until(self, done: Callable[[], bool], deadline: float | None) -> bool:
        """Read the socket on this thread until ``done()``, ``deadline``
        (a ``time.monotonic()`` value) or the end of this socket, if no
        other caller is reading; whether this thread read."""
        if not self.take_lead(deadline):
            return False
        try:
            # Read (``read_lock`` held) until done, the deadline, or the
            # end of reading this socket. A deadline already past still
            # reads once, without waiting: a caller polling with timeout=0
            # gets what the socket holds (it also keeps the I/O thread
            # resting, so nobody else would read it).
            sock = self.sock
            core = self.session.core
            if sock is not None and self.selector is not None:
                while not done() and not self.stopping:
                    limit = None
                    if deadline is not None:
                        limit = max(0.0, deadline - time.monotonic())
                    if not self.read_once(sock, core, limit) or limit == 0.0:
                        break
        finally:
            self.end_lead()
        return True

    def take_lead(self, deadline: float | None) -> bool:
        """Become the reader: the I/O thread steps aside at the end of its
        current turn (it is woken for that). False when another caller
        leads, or reading cannot be taken over now."""
        me = threading.get_ident()
        if me == self.io_ident or me == self.reader_ident:
            return False
        with self.lock:
            if self.leading or self.selector is None or self.session.core.is_closed:
                return False
            self.leading = True
        if self.read_lock.acquire(blocking=False):
            self.reader_ident = me
            return True
        self.wake()  # the I/O thread ends its turn and waits for us
        timeout = -1.0 if deadline is None else max(0.0, deadline - time.monotonic())
        if self.read_lock.acquire(timeout=timeout):
            self.reader_ident = me
            return True
        with self.lock:
            # Never led: ``lead_ended`` stays, so the I/O thread reads on
            # at once (a new one would have it rest, and a caller polling
            # with timeout=0 would keep it resting).
            self.leading = False
            self.lead_over.notify_all()
        return False

    def end_lead(self) -> None:
        self.reader_ident = None
        self.read_lock.release()
        with self.lock:
            self.leading = False
            self.lead_ended = time.monotonic()
            if self.followers or self.stopping:
                self.lead_over.notify_all()  # they wait for input: read it now

    def flush_out(self, core: Core) -> None:
        """Write what the core produced from the I/O thread (lock held)."""
        data = core.data_to_send()
        if not data and not self.out:
            return
        for buf in data:
            view = memoryview(buf)
            self.out.append(view)
            self.out_bytes += view.nbytes
        if self.out:
            self.write_some()

    def poll(
        self,
        selector: selectors.BaseSelector,
        sock: socket.socket,
        timeout: float | None,
    ) -> tuple[bytes, bool, str]:
        """Wait for the socket (or a wake-up); what it read.

        A caller reading its own reply (not the I/O thread) with
        ``busy_poll`` set polls first, for at most that long, before it
        sleeps in ``select``: on a machine where waking a sleeping thread
        (or an idle virtual CPU) takes tens of microseconds, a reply that
        comes within the spin is read that much sooner, for the CPU time
        of the spin.
        """
        data = b""
        eof = False
        failure = ""
        events: list[tuple[selectors.SelectorKey, int]] = []
        budget = self.busy_poll
        if budget and timeout != 0 and self.reader_ident != self.io_ident:
            start = time.monotonic()
            end = start + (budget if timeout is None else min(budget, timeout))
            while not (events := selector.select(0)):
                if time.monotonic() >= end:
                    break
            if not events and timeout is not None:
                timeout = max(0.0, timeout - (time.monotonic() - start))
        polled = bool(events)
        if not polled:
            events = selector.select(timeout)
        for key, mask in events:
            if key.fileobj is self.wake_r:
                try:
                    while self.wake_r.recv(4096):
                        pass
                except (BlockingIOError, InterruptedError):
                    pass
                continue
            if mask & selectors.EVENT_READ:
                if self.leading and self.reader_ident == self.io_ident:
                    continue  # a caller takes over: the input is its to read
                try:
                    size = self.read_size
                    data = sock.recv(size)
                    self.read_size = next_read_size(size, len(data))
                    eof = not data
                    if polled and data:
                        self.polled += 1
                except (BlockingIOError, InterruptedError, _ssl.SSLWantReadError):
                    pass
                except OSError as exc:
                    failure = str(exc)
        # A writable socket is written to with the rest, under the lock,
        # right after (flush_out): one pass, one lock.
        return data, eof, failure

    def callback_loop(self) -> None:
        while True:
            item = self.callbacks.get()
            if item is _STOP:
                # Run what was queued before the stop (close callbacks).
                while True:
                    try:
                        item = self.callbacks.get_nowait()
                    except queue.Empty:
                        return
                    if item is not _STOP:
                        run_callbacks(item[0], log, *item[1])
            callbacks, args = item
            run_callbacks(callbacks, log, *args)

    def drain_callbacks(self, timeout: float | None = None) -> bool:
        """Wait until every callback queued so far has run (tests use it to
        observe callbacks in order). False if ``timeout`` passed first."""
        thread = self.callback_thread
        if thread is None or threading.current_thread() is thread:
            return True
        done = threading.Event()
        self.callbacks.put(([done.set], ()))
        deadline = None if timeout is None else time.monotonic() + timeout
        while not done.wait(0.05):
            if not thread.is_alive():
                return True  # stopped: everything queued before it ran
            if deadline is not None and time.monotonic() >= deadline:
                return False
        return True

    # --- connecting ---------------------------------------------------------------------------

    def establish(self, order: Sequence[uri.ConnectionParameters]) -> None:
        """Ask the credentials provider (if any), then open a socket and an
        AMQP connection to the first endpoint of ``order`` that answers
        (see ``connect_plan``).

        Raises:
            CredentialsError: the provider failed (reported meanwhile).
        """
        session = self.session
        if session.credentials.provider is not None:
            credentials = self.ask_provider(order[0])
            with self.lock:
                session.credentials.obtained(credentials, time.monotonic())
        plan = connect_plan(order, lambda: session.closing)
        session.connecting = True
        try:
            params = next(plan)
            while True:
                failure: BaseException | None = None
                try:
                    self.connect_to(params)
                except (ConnectionLost, TimeoutError) as exc:
                    failure = exc
                try:
                    params = plan.send(failure)
                except StopIteration:
                    return
        finally:
            session.connecting = False

    def connect_to(self, params: uri.ConnectionParameters) -> None:
        timeout = params.connection_timeout
        deadline = None if timeout is None else time.monotonic() + timeout
        sock = _open_socket(params, timeout)
        opened: Waiter[None] = Waiter()
        with self.lock:
            if self.session.closing:
                # close() came meanwhile (it looks under this lock): do not
                # bring up a connection it will not close.
                sock.close()
                raise ConnectionLost("the connection was closed by the application")
            core = self.session.new_attempt(params, opened)
            self.sock = sock
            self.out.clear()
            self.out_bytes = 0
            self.socket_full = False
            self.can_gather = not isinstance(sock, _ssl.SSLSocket) and hasattr(
                sock, "sendmsg"
            )
            self.session.initiate(time.monotonic())
            self.flush_out(core)
        self.io_thread = threading.Thread(
            target=self.io_loop,
            args=(sock, core),
            name=f"amqp-io {params.address}",
            daemon=True,
        )
        self.io_thread.start()
        remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
        try:
            opened.result(remaining)
        except TimeoutError:
            self.abort_attempt(f"connecting to {params.address} timed out")
            raise TimeoutError(
                f"connecting to {params.address} timed out after {timeout} s"
            ) from None
        except BaseException:
            self.abort_attempt(f"connecting to {params.address} failed")
            raise
        with self.lock:
            self.session.reading_may_change()

    def abort_attempt(self, reason: str) -> None:
        """Drop the current socket (if any) and wait for its I/O thread."""
        with self.lock:
            self.session.core.connection_lost(reason)
            self.handle_events()
        self.wake()
        thread = self.io_thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(5)

    # --- credentials (the refresh on its own thread) ----------------------------------------

    def ask_provider(self, params: uri.ConnectionParameters) -> Credentials:
        """The credentials provider's answer, within ``state.timeout``
        seconds: it runs on a thread of its own, so one that hangs is
        left behind (a daemon) instead of hanging the caller.

        Raises:
            CredentialsError: it raised, answered something unusable or
                not in time (reported meanwhile).
        """
        state = self.session.credentials
        provider = state.provider
        assert provider is not None
        outcome: list[tuple[object, Exception | None]] = []
        done = threading.Event()

        def ask() -> None:
            try:
                outcome.append((provider(), None))
            except Exception as exc:
                outcome.append((None, exc))
            finally:
                done.set()

        threading.Thread(
            target=ask, name="amqp-credentials-provider", daemon=True
        ).start()
        answer: object = None
        failure: Exception | None = state.no_answer()
        if done.wait(state.timeout):
            answer, failure = outcome[0]
        with self.lock:
            if failure is None:
                try:
                    return state.accept(answer, params)
                except CredentialsError as exc:
                    failure = exc
            raise state.failed(failure)  # its cause: the provider's error

    def start_refresh(self) -> None:
        """The connection is open: refresh its credentials before they
        expire (see ``refresh_plan``) on a thread of its own, until the
        connection is lost or closed."""
        self.refresh_stop.set()
        session = self.session
        if session.credentials.refresh_due is None or session.closing:
            return
        stop = self.refresh_stop = threading.Event()
        self.refresh_thread = threading.Thread(
            target=self.refresh,
            args=(stop,),
            name=f"amqp-credentials {self.session.params.address}",
            daemon=True,
        )
        self.refresh_thread.start()

    def refresh(self, stop: threading.Event) -> None:
        """The refresh thread: drives ``refresh_plan`` until ``stop``."""
        state = self.session.credentials
        plan = refresh_plan(state, time.monotonic)
        try:
            with self.lock:
                step = next(plan)
            while not stop.is_set():
                outcome: Credentials | BaseException | None = None
                if isinstance(step, Sleep):
                    if stop.wait(step.delay):
                        return
                elif isinstance(step, Fetch):
                    try:
                        outcome = self.ask_provider(self.session.params)
                    except CredentialsError as exc:
                        outcome = exc
                else:
                    try:
                        self.connection.update_secret(
                            step.method.new_secret,
                            step.method.reason,
                            timeout=step.timeout,
                        )
                    except (AMQPError, TimeoutError) as exc:
                        outcome = exc
                with self.lock:
                    if stop.is_set():
                        return  # lost or closed meanwhile: not a failure
                    step = plan.send(outcome)
        except StopIteration:
            return
        except Exception:
            log.exception("the credentials refresh failed")

    # --- recovery (its own thread) ----------------------------------------------------------

    def recover(self) -> None:
        """The recovery thread: ends in recovery, in ``end``, or (after
        close()) with the connection finished or left open for close()'s
        handshake; never with callers waiting for good."""
        session = self.session
        try:
            self.reconnect()
        except AMQPError as exc:  # recovery gave up
            with self.lock:
                self.end(exc)
        except Exception as exc:
            # A bug, or a callback's: never leave callers waiting for a
            # recovery that will not come.
            log.exception("recovery failed")
            failure = ConnectionLost(f"recovery failed: {exc!r}")
            failure.__cause__ = exc
            if not session.core.is_closed:
                self.abort_attempt(f"recovery failed: {exc!r}")
            with self.lock:
                self.end(failure)
        finally:
            self.recovery_thread = None

    def reconnect(self) -> None:
        session = self.session
        assert session.recovery is not None
        # The I/O thread of the lost socket is finishing: let it.
        thread = self.io_thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(5)
        plan = recovery_loop(session.recovery, session.endpoints, session.params)
        step = next(plan)
        while not session.closing:
            failure: BaseException | None = None
            if isinstance(step, Sleep):
                if self.wake_recovery.wait(step.delay) or session.closing:
                    return  # close()
            else:
                try:
                    self.establish(step.order)
                    self.restore()
                except (AMQPError, OSError, TimeoutError) as exc:
                    if session.closing:
                        return
                    if not session.core.is_closed:
                        self.abort_attempt(f"recovery failed: {exc}")
                    failure = exc
            try:
                step = plan.send(failure)
            except StopIteration:
                if not session.closing:
                    with self.lock:
                        session.recovered()
                    self.start_refresh()
                return

    def restore(self) -> None:
        """Reopen the channels, redeclare the topology, restart the
        consumers (see ``restore_plan``)."""
        timeout = restore_timeout(self.session.params)
        restorer = Restorer(self.session, self.open_helper)
        try:
            while True:
                waiter: Waiter[Reply] = Waiter()
                with self.lock:
                    if not restorer.start(waiter):
                        return
                try:
                    outcome = result(self, waiter, timeout, "recovery")
                except ChannelClosed as exc:
                    with self.lock:
                        restorer.failed(exc)
                else:
                    with self.lock:
                        restorer.finished(outcome)
        finally:
            with self.lock:
                restorer.close()

    def open_helper(self, opened: AnyWaiter[None]) -> ChannelSession[Delivery]:
        return open_channel(self, opened, recorded=False)[1]

    # --- shutting down -------------------------------------------------------------------------

    def shutdown(self) -> None:
        """Stop the threads and close the sockets (idempotent)."""
        self.stopping = True
        self.session.closing = True
        self.wake_recovery.set()
        self.refresh_stop.set()
        self.wake()
        current = threading.current_thread()
        for thread in (self.recovery_thread, self.refresh_thread, self.io_thread):
            if thread is not None and thread is not current:
                thread.join(5)
        self.callbacks.put(_STOP)
        cb_thread = self.callback_thread
        if cb_thread is not None and cb_thread is not current:
            cb_thread.join(5)
        for sock in (self.sock, self.wake_r, self.wake_w):
            if sock is not None:
                with contextlib.suppress(OSError):
                    sock.close()


def _open_socket(
    params: uri.ConnectionParameters, timeout: float | None
) -> socket.socket:
    """A connected, non-blocking socket (TLS-wrapped for amqps)."""
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
            sock = context.wrap_socket(
                sock, server_hostname=params.server_hostname or params.host
            )
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
    return sock


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


class Connection(ConnectionInfo[Delivery], ConnectionMethods):
    """An AMQP connection for threaded programs. Create it with :func:`connect`.

    Any number of threads may use it, each with its own channel, and
    several threads may publish on one channel. Use it as a context
    manager (it closes on exceptions too) or call :meth:`close` from any
    thread.
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
    def local_address(self) -> tuple[str, int] | None:
        """The socket's own (host, port), None while not connected."""
        return _address(self._driver.sock, local=True)

    @property
    def peer_address(self) -> tuple[str, int] | None:
        """The broker's (host, port), None while not connected."""
        return _address(self._driver.sock, local=False)

    def channel(self, *, timeout: float | None = None) -> Channel:
        """Open a channel on the lowest free id.

        A call that times out before channel.open-ok leaves nothing behind:
        the channel is closed as soon as it opens.

        Raises:
            ConnectionClosed: the connection is closed.
            UsageError: all channel ids are in use, or called from the I/O thread.
            TimeoutError: no channel.open-ok within ``timeout``.
        """
        timeout = check_timeout(timeout)
        driver = self._driver
        driver.check_not_io_thread()
        driver.until_ready(timeout)
        opened: Waiter[None] = Waiter()
        with driver.lock:
            channel, state = open_channel(driver, opened)
        try:
            result(driver, opened, timeout, "channel.open")
        except BaseException:
            with driver.lock:
                state.abandoned = True
                if state.opened:
                    state.close(ReplyCode.REPLY_SUCCESS, "")
            raise
        return channel

    def close(
        self,
        reply_code: int = ReplyCode.REPLY_SUCCESS,
        reply_text: str = "",
        *,
        timeout: float | None = GRACEFUL_CLOSE_TIMEOUT,
    ) -> None:
        """Close the connection gracefully from any thread, then hand-shake
        with the broker and close the socket; idempotent.

        Gracefully: every consumer is cancelled (basic.cancel; deliveries
        not handed out go back to the queue), then close waits at most
        ``timeout`` seconds (default 10; None: as long as it takes; 0: not
        at all) for the callbacks in flight to finish and every publish to
        get its confirm; callbacks still running then go on, but their
        acks fail (the broker redelivers). A callback that closes the
        connection is not waited for. Then it waits at most 10 s for the
        broker's close-ok, then drops the socket. On a recovering
        connection it only stops recovery.

        Raises:
            TypeError, ValueError: a bad ``timeout``.
            UsageError: called on the I/O thread.
        """
        timeout = check_timeout(timeout)
        driver = self._driver
        session = self._session
        driver.check_not_io_thread()
        if timeout != 0 and session.is_open and not session.closing:
            with driver.lock:
                channels = list(session.router)
            drain(driver.lock, channels, timeout)
        with driver.lock:
            session.closing = True
        driver.wake_recovery.set()
        recovery = driver.recovery_thread
        if recovery is not None and recovery is not threading.current_thread():
            recovery.join(_CLOSE_TIMEOUT + 5)
        with driver.lock:
            handshake = session.close(reply_code, reply_text)
            if not handshake:
                driver.end(None)
        if handshake and not driver.closed.wait(_CLOSE_TIMEOUT):
            log.warning(
                "no connection.close-ok within %.0f s; dropping the socket",
                _CLOSE_TIMEOUT,
            )
            with driver.lock:
                session.core.connection_lost("close timed out")
                driver.handle_events()
        driver.shutdown()

    def wait_closed(self, timeout: float | None = None) -> AMQPError | None:
        """Wait until the connection is over; return its terminal error
        (None after a clean close).

        Raises:
            TimeoutError: still open after ``timeout`` seconds.
        """
        if not self._driver.closed.wait(check_timeout(timeout)):
            raise TimeoutError(f"the connection is still open after {timeout} s")
        return self._session.close_error

    def __enter__(self) -> Connection:
        return self

    def _drain_callbacks(self, timeout: float | None = None) -> bool:
        """Wait until every callback queued so far has run (tests use it to
        observe callbacks in order). False if ``timeout`` passed first."""
        return self._driver.drain_callbacks(timeout)

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- generated API hooks (connection-level methods) ------------------------------

    def _rpc(
        self, method: Method, timeout: float | None, reply: type[ReplyT]
    ) -> ReplyT:
        driver = self._driver
        driver.check_not_io_thread()
        driver.until_ready(timeout)
        waiter: Waiter[Reply] = Waiter()
        with driver.lock:
            self._session.call(method, waiter)
        outcome = result(driver, waiter, timeout, method.NAME)
        assert isinstance(outcome, reply)
        return outcome

    def _send(self, method: Method) -> None:
        self._driver.until_ready(None)
        with self._driver.lock:
            self._session.send(method)


def _address(sock: socket.socket | None, *, local: bool) -> tuple[str, int] | None:
    if sock is None:
        return None
    try:
        address = sock.getsockname() if local else sock.getpeername()
    except OSError:
        return None
    if isinstance(address, tuple) and len(address) >= 2:
        return (str(address[0]), int(address[1]))
    return None


def connect(
    url: str | Sequence[str] | None = None, **keywords: Unpack[ConnectKeywords]
) -> Connection:
    """Connect to a broker and return an open :class:`Connection`.

    Keyword arguments override what the URL says. The default URL is
    ``amqp://guest:guest@localhost:5672/%2f``. Several brokers, ``shuffle``,
    ``recover=True`` (with its ``recovery_*`` settings) and the delivery
    buffer limits work as in :func:`amqp_client.connect`; recovery runs on
    a thread of its own. So does ``max_message_size`` (default 128 MiB,
    RabbitMQ 3.x's own default; RabbitMQ 4.x lowered its own to 16 MiB): a
    content header declaring a larger body ends the connection with
    frame-error (501) and ``FrameDecodeError`` before the body is buffered.
    So does ``busy_poll=`` (seconds, at most 0.01; 0, the default, is
    off): a thread that waits for a reply, a confirmation or a delivery
    reads the socket itself while no other thread does, and then polls it
    for up to that long before it sleeps, TLS included; its CPU is busy
    meanwhile.
    Telemetry (``telemetry``, ``tracer_provider``, ``meter_provider``) too:
    see :mod:`amqp_client.telemetry`.
    ``credentials=`` works as there too: a provider is a plain function
    here (a coroutine function is a TypeError), called on a short-lived
    thread of its own and waited for at most 30 s (or connection_timeout,
    if longer); the refresh runs on a thread of its own.

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
    if is_async_provider(options.credentials):
        raise TypeError(
            "credentials: an async provider needs the asyncio client "
            "(amqp_client.connect); give the blocking client a plain function"
        )
    connection = Connection(params, options)
    driver = connection._driver
    try:
        driver.establish(params)
    except BaseException:
        driver.shutdown()
        raise
    driver.start_refresh()
    return connection
