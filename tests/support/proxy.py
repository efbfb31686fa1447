"""A fault-injecting TCP proxy between a client and a broker, for tests.

:class:`Proxy` listens on 127.0.0.1 (a free port) and forwards each
accepted connection to a target address (the shared broker, or a node of
the test's own). It runs on its own asyncio event loop in a daemon thread,
so asyncio tests and blocking-front tests use it alike, and every control
can be called from any thread but the proxy's own::

    with Proxy(("127.0.0.1", 5672)) as proxy:
        conn = connect(proxy.url(amqp_url()), heartbeat=2)
        proxy.stall()            # nothing moves; sockets stay open
        proxy.resume()           # everything moves again; nothing was lost
        proxy.slow(bytes_per_second=50_000)  # or slow(delay=0.2); slow() undoes
        done = proxy.cut_after(SERVER_TO_CLIENT, 10_000)  # mid-frame cut
        proxy.cut(rst=True)      # every current connection, both sides
        proxy.refuse(True)       # accept-and-close new connections
    # the loop thread is gone, every socket closed

Rules, which every change to this module must keep:

* **Nothing is lost or reordered** unless a cut says so: bytes are forwarded
  in order, and stall/resume or slow only delay them.
* **A stall reads nothing.** ``stall()`` stops reading every socket (TCP
  backpressure reaches the peers) and stops writing what is buffered; at
  most one read that the loop had already picked up is kept for ``resume()``.
  Outside a stall, a direction reads while it buffers less than
  ``_READ_HIGH`` bytes.
* **A cut is exact.** ``cut_after(direction, n)`` forwards exactly ``n``
  more bytes in that direction, waits until the peer's kernel has them
  (the proxy's socket has no unsent or unacknowledged data), then closes both
  sides of that connection (with RST when asked).
* **Every control is bounded**: it runs on the proxy's loop and the caller
  waits at most ``timeout`` seconds (:class:`ProxyError` after that). Calling
  one from the proxy's own thread raises instead of deadlocking.
* **Nothing is left behind**: :meth:`Proxy.close` (and the context manager)
  closes the listener and every connection, stops the loop and joins its
  thread; a thread that does not end in time is an error.

Linux only where it says so: the exact cut reads ``SIOCOUTQ`` (TIOCOUTQ).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import fcntl
import socket
import struct
import termios
import threading
import time
from collections import deque
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Final, Literal, Self, TypeVar
from urllib.parse import urlsplit, urlunsplit

__all__ = [
    "CLIENT_TO_SERVER",
    "SERVER_TO_CLIENT",
    "Direction",
    "Proxy",
    "ProxyError",
]

Direction = Literal["client_to_server", "server_to_client"]
#: Bytes the client sends (to the broker).
CLIENT_TO_SERVER: Final = "client_to_server"
#: Bytes the broker sends (to the client).
SERVER_TO_CLIENT: Final = "server_to_client"
DIRECTIONS: Final[tuple[Direction, Direction]] = (CLIENT_TO_SERVER, SERVER_TO_CLIENT)

HOST = "127.0.0.1"
#: Default bound of each control call, seconds.
CONTROL_TIMEOUT = 10.0
#: Connecting to the target gives up after this many seconds.
CONNECT_TIMEOUT = 10.0
#: A direction stops reading above this many buffered bytes and reads
#: again below _READ_LOW.
_READ_HIGH = 256 * 1024
_READ_LOW = 64 * 1024
#: Under ``slow(bytes_per_second=...)`` bytes go out in pieces of about
#: this share of a second's worth.
_SLOW_SLICE = 0.02
#: How long an exact cut waits for the peer's kernel to take the bytes.
_CUT_DRAIN_TIMEOUT = 5.0
#: How long close() waits for sockets to close and for the thread to end.
_CLOSE_TIMEOUT = 5.0

T = TypeVar("T")
Role = Literal["client", "server"]


class ProxyError(RuntimeError):
    """A control failed or timed out, or the proxy is closed."""


def _unsent(sock: Any) -> int:
    """Bytes in a socket's send queue not yet acknowledged by the peer
    (Linux ``SIOCOUTQ``); 0 when that cannot be read."""
    try:
        raw = fcntl.ioctl(sock.fileno(), termios.TIOCOUTQ, b"\0\0\0\0")
    except (OSError, ValueError):
        return 0
    return int(struct.unpack("i", raw)[0])


@dataclass
class _Flow:
    """One direction of one proxied connection."""

    direction: Direction
    src: Role
    dst: Role
    # (arrival time, bytes): views, so that slicing a large read is free
    chunks: deque[tuple[float, memoryview]] = field(default_factory=deque)
    buffered: int = 0
    eof: bool = False  # the source is finished; close dst once drained
    forwarded: int = 0
    budget: int | None = None  # cut after this many more bytes
    cutting: bool = False  # the budget is spent; the cut is under way
    cut_rst: bool = False
    cut_done: concurrent.futures.Future[int] | None = None
    transcript: bytearray | None = None
    wake: asyncio.Event = field(default_factory=asyncio.Event)


class _Side(asyncio.Protocol):
    """One socket of a proxied connection; reports everything to its pipe."""

    def __init__(self, pipe: _Pipe, role: Role) -> None:
        self.pipe = pipe
        self.role = role

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.pipe.side_made(self.role, transport)

    def data_received(self, data: bytes) -> None:
        self.pipe.received(self.role, data)

    def eof_received(self) -> bool | None:
        self.pipe.finished(self.role)
        return False  # close our side; the pipe closes the other once drained

    def connection_lost(self, exc: Exception | None) -> None:
        self.pipe.side_lost(self.role)

    def pause_writing(self) -> None:
        self.pipe.writable[self.role] = False

    def resume_writing(self) -> None:
        self.pipe.writable[self.role] = True
        self.pipe.wake_all()


class _Pipe:
    """A client connection and its connection to the target."""

    def __init__(self, proxy: Proxy, index: int, record: bool) -> None:
        self.proxy = proxy
        self.index = index
        self.transports: dict[Role, asyncio.Transport | None] = {
            "client": None,
            "server": None,
        }
        self.writable: dict[Role, bool] = {"client": True, "server": True}
        self.flows: dict[Direction, _Flow] = {
            CLIENT_TO_SERVER: _Flow(CLIENT_TO_SERVER, "client", "server"),
            SERVER_TO_CLIENT: _Flow(SERVER_TO_CLIENT, "server", "client"),
        }
        if record:
            for flow in self.flows.values():
                flow.transcript = bytearray()
        self.tasks: list[asyncio.Task[None]] = []
        self.connecting: asyncio.Task[None] | None = None
        self.closed = False

    # --- events from the sockets ------------------------------------------------

    def side_made(self, role: Role, transport: asyncio.Transport) -> None:
        self.transports[role] = transport
        self.proxy._live_transports.add(transport)
        if self.closed:
            transport.abort()
            return
        self.update_reading()
        self.wake_all()

    def received(self, role: Role, data: bytes) -> None:
        flow = self.flows[CLIENT_TO_SERVER if role == "client" else SERVER_TO_CLIENT]
        flow.chunks.append((time.monotonic(), memoryview(data)))
        flow.buffered += len(data)
        self.proxy._read[flow.direction] += len(data)
        self.update_reading()
        flow.wake.set()

    def finished(self, role: Role) -> None:
        flow = self.flows[CLIENT_TO_SERVER if role == "client" else SERVER_TO_CLIENT]
        flow.eof = True
        flow.wake.set()

    def side_lost(self, role: Role) -> None:
        transport = self.transports[role]
        if transport is not None:
            self.proxy._live_transports.discard(transport)
        self.finished(role)
        # Nothing more can go to this side: the flow towards it is over.
        towards = self.flows[CLIENT_TO_SERVER if role == "server" else SERVER_TO_CLIENT]
        towards.chunks.clear()
        towards.buffered = 0
        towards.wake.set()
        self.maybe_done()

    def maybe_done(self) -> None:
        """Forget the pipe once both sides are closing (or the target was
        never reached)."""
        if self.closed:
            return
        client, server = self.transports["client"], self.transports["server"]
        if client is not None and not client.is_closing():
            return
        if server is not None and not server.is_closing():
            return
        if (
            server is None
            and self.connecting is not None
            and not self.connecting.done()
        ):
            return
        self.abort()  # closing transports are left to finish closing

    # --- control ---------------------------------------------------------------------

    def wake_all(self) -> None:
        for flow in self.flows.values():
            flow.wake.set()

    def update_reading(self) -> None:
        """Read a socket unless stalled or its direction buffers too much."""
        for flow in self.flows.values():
            transport = self.transports[flow.src]
            if transport is None or transport.is_closing():
                continue
            if self.proxy._stalled or flow.cutting or flow.buffered >= _READ_HIGH:
                transport.pause_reading()
            elif flow.buffered <= _READ_LOW:
                transport.resume_reading()

    def abort(self, rst: bool = False) -> None:
        """Close both sides at once (buffered bytes are dropped)."""
        if not self.closed:
            self.closed = True
            self.proxy._pipes.discard(self)
        for transport in self.transports.values():
            if transport is None or transport.is_closing():
                continue
            if rst:
                sock = transport.get_extra_info("socket")
                if sock is not None:
                    with contextlib.suppress(OSError):
                        sock.setsockopt(
                            socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
                        )
            transport.abort()
        for flow in self.flows.values():
            flow.chunks.clear()
            flow.buffered = 0
            flow.wake.set()
            done = flow.cut_done
            if done is not None and not done.done():
                done.set_exception(
                    ProxyError(
                        f"connection #{self.index} closed after {flow.forwarded} "
                        f"bytes {flow.direction}, before the cut"
                    )
                )
        current = asyncio.current_task()
        for task in self.tasks:
            if task is not current:
                task.cancel()

    # --- forwarding ------------------------------------------------------------------------

    async def pump(self, flow: _Flow) -> None:
        """Move one direction's bytes, honouring stall, slow and cut_after."""
        try:
            await self._pump(flow)
        finally:
            self.maybe_done()

    async def _pump(self, flow: _Flow) -> None:
        proxy = self.proxy
        while not self.closed:
            dst = self.transports[flow.dst]
            if dst is not None and dst.is_closing():
                return
            if (
                proxy._stalled
                or dst is None
                or not self.writable[flow.dst]
                or (not flow.chunks and not flow.eof)
            ):
                flow.wake.clear()
                await flow.wake.wait()
                continue
            if not flow.chunks:  # eof, all forwarded
                dst.close()  # a FIN after what is still in its buffer
                return
            arrived, chunk = flow.chunks[0]
            if proxy._delay > 0:
                wait = arrived + proxy._delay - time.monotonic()
                if wait > 0:
                    await self._nap(flow, wait)
                    continue
            size = len(chunk)
            rate = proxy._rate
            if rate is not None:
                size = min(size, max(1, int(rate * _SLOW_SLICE)))
            if flow.budget is not None:
                size = min(size, flow.budget)
            piece = chunk if size == len(chunk) else chunk[:size]
            if size == len(chunk):
                flow.chunks.popleft()
            else:
                flow.chunks[0] = (arrived, chunk[size:])
            flow.buffered -= size
            dst.write(piece)
            flow.forwarded += size
            proxy._forwarded[flow.direction] += size
            if flow.transcript is not None:
                flow.transcript += piece
            self.update_reading()
            if flow.budget is not None:
                flow.budget -= size
                if flow.budget == 0:
                    await self._cut_now(flow)
                    return
            if rate is not None:
                await self._nap(flow, size / rate)

    async def _nap(self, flow: _Flow, seconds: float) -> None:
        """Sleep, but wake early for a control (stall, slow, cut, close)."""
        flow.wake.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(flow.wake.wait(), seconds)

    async def _cut_now(self, flow: _Flow) -> None:
        """The budget is spent: let the bytes reach the peer, then cut."""
        flow.cutting = True
        flow.budget = None
        self.update_reading()
        dst = self.transports[flow.dst]
        deadline = time.monotonic() + _CUT_DRAIN_TIMEOUT
        if dst is not None:
            sock = dst.get_extra_info("socket")
            while time.monotonic() < deadline and not dst.is_closing():
                if dst.get_write_buffer_size() == 0 and (
                    sock is None or _unsent(sock) == 0
                ):
                    break
                await asyncio.sleep(0.001)
        done = flow.cut_done
        flow.cut_done = None
        self.abort(rst=flow.cut_rst)
        if done is not None and not done.done():
            done.set_result(flow.forwarded)


class Proxy:
    """A TCP proxy to ``target`` with fault controls (see the module docstring).

    Args:
        target: (host, port) every accepted connection is forwarded to.
        port: port to listen on (127.0.0.1); 0 picks a free one.
        record: keep every byte forwarded, per connection and direction,
            for :meth:`transcript` (tests that must see where a cut fell).
    """

    def __init__(
        self, target: tuple[str, int], *, port: int = 0, record: bool = False
    ) -> None:
        self.target = target
        self.record = record
        self._port = port
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: asyncio.Server | None = None
        self._pipes: set[_Pipe] = set()
        self._all_pipes: list[_Pipe] = []
        self._live_transports: set[asyncio.Transport] = set()
        self._stalled = False
        self._rate: float | None = None
        self._delay = 0.0
        self._refusing = False
        self._refused = 0
        self._forwarded: dict[Direction, int] = dict.fromkeys(DIRECTIONS, 0)
        self._read: dict[Direction, int] = dict.fromkeys(DIRECTIONS, 0)
        self._closed = False

    # --- lifecycle ------------------------------------------------------------------

    def start(self) -> Self:
        """Start the loop thread and listen. Idempotent."""
        if self._closed:
            raise ProxyError("the proxy is closed")
        if self._thread is not None:
            return self
        loop = asyncio.new_event_loop()
        ready = threading.Event()

        def run() -> None:
            asyncio.set_event_loop(loop)
            loop.call_soon(ready.set)
            try:
                loop.run_forever()
            finally:
                loop.close()

        self._loop = loop
        self._thread = threading.Thread(
            target=run, name=f"test-proxy->{self.target[1]}", daemon=True
        )
        self._thread.start()
        if not ready.wait(CONTROL_TIMEOUT):
            raise ProxyError("the proxy's loop did not start")
        try:
            self._call(self._listen)
        except BaseException:
            self.close()
            raise
        return self

    def close(self) -> None:
        """Close the listener and every connection, stop the loop, join the
        thread. Idempotent. Raises ProxyError if the thread does not end."""
        if self._closed:
            return
        self._closed = True
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        if threading.current_thread() is thread:
            raise ProxyError("close() from the proxy's own thread")
        with contextlib.suppress(ProxyError, concurrent.futures.TimeoutError):
            asyncio.run_coroutine_threadsafe(self._shutdown(), loop).result(
                _CLOSE_TIMEOUT + 1
            )
        with contextlib.suppress(RuntimeError):  # the loop already closed
            loop.call_soon_threadsafe(loop.stop)
        thread.join(_CLOSE_TIMEOUT)
        if thread.is_alive():
            raise ProxyError(f"the proxy's thread {thread.name} did not end")

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self._closed else "stalled" if self._stalled else "open"
        return f"<Proxy :{self._port} -> {self.target[0]}:{self.target[1]} {state}>"

    # --- where it listens -----------------------------------------------------------

    @property
    def port(self) -> int:
        return self._port

    @property
    def address(self) -> tuple[str, int]:
        return (HOST, self._port)

    def url(self, url: str) -> str:
        """``url`` (amqp://user:pass@host:port/vhost?...) pointed at the proxy."""
        parts = urlsplit(url)
        userinfo, _, _ = parts.netloc.rpartition("@")
        netloc = f"{userinfo}@" if userinfo else ""
        netloc += f"{HOST}:{self._port}"
        return urlunsplit(parts._replace(netloc=netloc))

    # --- controls (any thread) ---------------------------------------------------------

    def cut(self, *, rst: bool = False, timeout: float = CONTROL_TIMEOUT) -> int:
        """Close every current connection at once, both sides (buffered bytes
        are dropped); with ``rst`` the sockets reset (SO_LINGER 0) instead of
        closing with a FIN. Returns how many connections were cut."""

        async def cut() -> int:
            pipes = list(self._pipes)
            for pipe in pipes:
                pipe.abort(rst=rst)
            return len(pipes)

        return self._call(cut, timeout)

    def stall(self, *, timeout: float = CONTROL_TIMEOUT) -> None:
        """Stop forwarding both ways (and reading), keeping every socket open;
        new connections are stalled too. Undo with :meth:`resume`."""

        async def stall() -> None:
            self._stalled = True
            for pipe in list(self._pipes):
                pipe.update_reading()

        self._call(stall, timeout)

    def resume(self, *, timeout: float = CONTROL_TIMEOUT) -> None:
        """Forward again after :meth:`stall`; nothing was lost meanwhile."""

        async def resume() -> None:
            self._stalled = False
            for pipe in list(self._pipes):
                pipe.update_reading()
                pipe.wake_all()

        self._call(resume, timeout)

    def slow(
        self,
        bytes_per_second: float | None = None,
        *,
        delay: float = 0.0,
        timeout: float = CONTROL_TIMEOUT,
    ) -> None:
        """Limit each direction of each connection to ``bytes_per_second``
        and/or hold every byte ``delay`` seconds before forwarding it.
        ``slow()`` restores full speed."""
        if bytes_per_second is not None and bytes_per_second <= 0:
            raise ValueError("bytes_per_second must be > 0")
        if delay < 0:
            raise ValueError("delay must be >= 0")

        async def slow() -> None:
            self._rate = bytes_per_second
            self._delay = delay
            for pipe in list(self._pipes):
                pipe.wake_all()

        self._call(slow, timeout)

    def refuse(
        self,
        on: bool = True,
        *,
        mode: Literal["close", "unlisten"] = "close",
        timeout: float = CONTROL_TIMEOUT,
    ) -> None:
        """Refuse new connections (current ones are left alone).

        ``mode="close"`` accepts and closes each at once (the client sees
        EOF, or a reset if it had already sent something); ``mode="unlisten"`` closes the listening socket (the client
        sees ECONNREFUSED). ``refuse(False)`` listens and forwards again, on
        the same port.
        """

        async def refuse() -> None:
            if on:
                self._refusing = True
                if mode == "unlisten" and self._server is not None:
                    # close() stops listening at once; wait_closed() would
                    # also wait for the open connections (Python >= 3.12).
                    server, self._server = self._server, None
                    server.close()
            else:
                self._refusing = False
                if self._server is None:
                    await self._listen()

        self._call(refuse, timeout)

    def cut_after(
        self,
        direction: Direction,
        nbytes: int,
        *,
        rst: bool = False,
        timeout: float = CONTROL_TIMEOUT,
    ) -> concurrent.futures.Future[int]:
        """Cut each current connection after exactly ``nbytes`` more bytes in
        ``direction`` (both sides close once the peer's kernel has them; RST
        with ``rst``).

        Returns a future that resolves, when the (first) cut happened, to the
        bytes forwarded in ``direction`` on that connection in all; it fails
        with ProxyError if the connection ends before. Connections made later
        are not affected. Raises ProxyError if there is no connection.
        """
        if direction not in DIRECTIONS:
            raise ValueError(f"direction must be one of {DIRECTIONS}")
        if nbytes < 1:
            raise ValueError("nbytes must be >= 1")
        result: concurrent.futures.Future[int] = concurrent.futures.Future()

        async def arm() -> None:
            pipes = [pipe for pipe in self._pipes if not pipe.closed]
            if not pipes:
                raise ProxyError("cut_after: no connection to cut")
            for pipe in pipes:
                flow = pipe.flows[direction]
                flow.budget = nbytes
                flow.cut_rst = rst
                mine: concurrent.futures.Future[int] = concurrent.futures.Future()
                mine.add_done_callback(_forward_first(result))
                flow.cut_done = mine
                flow.wake.set()

        self._call(arm, timeout)
        return result

    # --- what happened (any thread) ------------------------------------------------------

    def forwarded(
        self, direction: Direction, *, timeout: float = CONTROL_TIMEOUT
    ) -> int:
        """Bytes forwarded in ``direction`` so far, all connections."""

        async def read() -> int:
            return self._forwarded[direction]

        return self._call(read, timeout)

    def counters(self, *, timeout: float = CONTROL_TIMEOUT) -> dict[str, int]:
        """Bytes forwarded per direction (keyed by direction), bytes read from
        the sockets per direction (``read_<direction>``: forwarded or still
        buffered), connections accepted (refused ones included), refused,
        and still open."""

        async def read() -> dict[str, int]:
            counts: dict[str, int] = {d: n for d, n in self._forwarded.items()}
            counts.update({f"read_{d}": n for d, n in self._read.items()})
            counts["accepted"] = len(self._all_pipes)
            counts["refused"] = self._refused
            counts["open"] = len(self._pipes)
            return counts

        return self._call(read, timeout)

    def transcript(
        self, direction: Direction, index: int = -1, *, timeout: float = CONTROL_TIMEOUT
    ) -> bytes:
        """Every byte forwarded in ``direction`` on connection ``index``
        (in order of acceptance; -1 is the latest). Needs ``record=True``."""
        if not self.record:
            raise ProxyError("transcript() needs Proxy(record=True)")

        async def read() -> bytes:
            if not self._all_pipes:
                raise ProxyError("no connection yet")
            transcript = self._all_pipes[index].flows[direction].transcript
            assert transcript is not None
            return bytes(transcript)

        return self._call(read, timeout)

    # --- on the loop ----------------------------------------------------------------------

    def _call(
        self, fn: Callable[[], Coroutine[Any, Any, T]], timeout: float = CONTROL_TIMEOUT
    ) -> T:
        """Run ``fn()`` on the proxy's loop; wait at most ``timeout``."""
        loop, thread = self._loop, self._thread
        if self._closed or loop is None or thread is None:
            raise ProxyError("the proxy is not running")
        if threading.current_thread() is thread:
            raise ProxyError("a proxy control called from the proxy's own thread")
        future = asyncio.run_coroutine_threadsafe(fn(), loop)
        try:
            return future.result(timeout)
        except concurrent.futures.TimeoutError:
            future.cancel()
            raise ProxyError(f"proxy control timed out after {timeout} s") from None

    async def _listen(self) -> None:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            self._accept, HOST, self._port, reuse_address=True
        )
        self._port = self._server.sockets[0].getsockname()[1]

    def _accept(self) -> asyncio.Protocol:
        index = len(self._all_pipes)
        pipe = _Pipe(self, index, self.record)
        self._all_pipes.append(pipe)
        if self._refusing:
            self._refused += 1
            pipe.closed = True  # side_made closes the socket at once
        else:
            self._pipes.add(pipe)
            loop = asyncio.get_running_loop()
            pipe.connecting = loop.create_task(self._connect(pipe))
            pipe.tasks.append(pipe.connecting)
            for flow in pipe.flows.values():
                pipe.tasks.append(loop.create_task(pipe.pump(flow)))
        return _Side(pipe, "client")

    async def _connect(self, pipe: _Pipe) -> None:
        loop = asyncio.get_running_loop()
        host, port = self.target
        try:
            async with asyncio.timeout(CONNECT_TIMEOUT):
                await loop.create_connection(lambda: _Side(pipe, "server"), host, port)
        except (OSError, TimeoutError):
            pipe.abort()

    async def _shutdown(self) -> None:
        # Stop listening, drop the connections, and only then wait for the
        # server: from Python 3.12 on, wait_closed() also waits for every
        # connection it accepted to close.
        server, self._server = self._server, None
        if server is not None:
            server.close()
        tasks: list[asyncio.Task[None]] = []
        for pipe in list(self._pipes) + self._all_pipes:
            pipe.abort()
            tasks.extend(pipe.tasks)
        await asyncio.gather(*tasks, return_exceptions=True)
        if server is not None:
            async with asyncio.timeout(_CLOSE_TIMEOUT):
                await server.wait_closed()
        deadline = time.monotonic() + _CLOSE_TIMEOUT
        while self._live_transports and time.monotonic() < deadline:
            await asyncio.sleep(0.005)


def _forward_first(
    result: concurrent.futures.Future[int],
) -> Callable[[concurrent.futures.Future[int]], None]:
    """Copy the first settled per-connection cut into ``result``: a result
    wins over an earlier failure only while ``result`` is still pending."""

    def copy(done: concurrent.futures.Future[int]) -> None:
        if result.done():
            return
        error = done.exception()
        with contextlib.suppress(concurrent.futures.InvalidStateError):
            if error is None:
                result.set_result(done.result())
            else:
                result.set_exception(error)

    return copy
