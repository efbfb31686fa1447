"""Tests of the fault-injecting proxy (tests/support/proxy.py) with a plain
echo server: no broker. Every socket operation has a timeout."""

from __future__ import annotations

import hashlib
import os
import socket
import socketserver
import threading
import time
from collections.abc import Iterator

import pytest

from tests.support.proxy import (
    CLIENT_TO_SERVER,
    SERVER_TO_CLIENT,
    Proxy,
    ProxyError,
)

TIMEOUT = 5.0


class _EchoHandler(socketserver.BaseRequestHandler):
    server: EchoServer

    def handle(self) -> None:
        sock: socket.socket = self.request
        sock.settimeout(30)
        self.server.connections += 1
        try:
            while data := sock.recv(65536):
                self.server.received += len(data)
                sock.sendall(data)
            self.server.endings.append("eof")
        except OSError as exc:
            self.server.endings.append(type(exc).__name__)


class EchoServer(socketserver.ThreadingTCPServer):
    """Echoes every byte back; counts connections, records how each ended."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _EchoHandler)
        self.connections = 0
        self.received = 0
        self.endings: list[str] = []
        self.thread = threading.Thread(target=self.serve_forever, args=(0.05,))

    @property
    def address(self) -> tuple[str, int]:
        host, port = self.server_address[:2]
        return str(host), int(port)


@pytest.fixture
def echo() -> Iterator[EchoServer]:
    server = EchoServer()
    server.thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        server.thread.join(TIMEOUT)


@pytest.fixture
def proxy(echo: EchoServer) -> Iterator[Proxy]:
    with Proxy(echo.address, record=True) as proxy:
        yield proxy


def connect(proxy: Proxy) -> socket.socket:
    sock = socket.create_connection(proxy.address, timeout=TIMEOUT)
    sock.settimeout(TIMEOUT)
    return sock


def recv_exactly(sock: socket.socket, count: int) -> bytes:
    data = bytearray()
    while len(data) < count:
        chunk = sock.recv(count - len(data))
        if not chunk:
            raise ConnectionError(f"EOF after {len(data)} of {count} bytes")
        data += chunk
    return bytes(data)


def recv_until_closed(sock: socket.socket) -> tuple[bytes, str]:
    """Everything until the connection ends, and how it ended."""
    data = bytearray()
    try:
        while chunk := sock.recv(65536):
            data += chunk
    except ConnectionResetError:
        return bytes(data), "reset"
    return bytes(data), "eof"


def wait_for(predicate: object, timeout: float = TIMEOUT) -> None:
    assert callable(predicate)
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"not true within {timeout} s: {predicate}")
        time.sleep(0.01)


def test_forwards_both_ways_and_counts(proxy: Proxy, echo: EchoServer) -> None:
    payload = os.urandom(300_000)
    with connect(proxy) as sock:
        sock.sendall(payload)
        assert recv_exactly(sock, len(payload)) == payload
    counters = proxy.counters()
    assert counters[CLIENT_TO_SERVER] == len(payload)
    assert counters[SERVER_TO_CLIENT] == len(payload)
    assert counters["accepted"] == 1
    assert proxy.transcript(CLIENT_TO_SERVER) == payload
    wait_for(lambda: proxy.counters()["open"] == 0)
    wait_for(lambda: echo.endings == ["eof"])


def test_stall_reads_nothing_and_loses_nothing(proxy: Proxy, echo: EchoServer) -> None:
    size = 16 * 1024 * 1024
    payload = os.urandom(size)
    with connect(proxy) as sock:
        sock.sendall(b"warm")
        assert recv_exactly(sock, 4) == b"warm"
        proxy.stall()
        sent = threading.Event()
        errors: list[BaseException] = []

        def send() -> None:
            try:
                sock.sendall(payload)
                sent.set()
            except BaseException as exc:
                errors.append(exc)

        sender = threading.Thread(target=send)
        sender.start()
        try:
            time.sleep(0.5)
            # The proxy neither read nor forwarded a byte: the kernel buffers
            # fill up and the sender is held back (TCP backpressure).
            counters = proxy.counters()
            assert counters[f"read_{CLIENT_TO_SERVER}"] == 4
            assert counters[CLIENT_TO_SERVER] == 4
            assert echo.received == 4
            assert not sent.is_set(), "16 MiB went somewhere during a stall"
            proxy.resume()
            got = recv_exactly(sock, size)
        finally:
            sender.join(TIMEOUT)
        assert not errors
        assert sent.is_set()
    assert hashlib.sha256(got).digest() == hashlib.sha256(payload).digest()
    assert proxy.forwarded(CLIENT_TO_SERVER) == size + 4
    assert proxy.forwarded(SERVER_TO_CLIENT) == size + 4


def test_stall_holds_what_was_already_sent(proxy: Proxy) -> None:
    with connect(proxy) as sock:
        sock.sendall(b"x")
        assert recv_exactly(sock, 1) == b"x"
        proxy.stall()
        sock.sendall(b"held")
        sock.settimeout(0.3)
        with pytest.raises(TimeoutError):
            sock.recv(10)
        sock.settimeout(TIMEOUT)
        proxy.resume()
        assert recv_exactly(sock, 4) == b"held"


@pytest.mark.parametrize("rst", [False, True])
def test_cut_closes_both_sides(proxy: Proxy, echo: EchoServer, rst: bool) -> None:
    with connect(proxy) as sock:
        sock.sendall(b"hello")
        assert recv_exactly(sock, 5) == b"hello"
        assert proxy.cut(rst=rst) == 1
        data, how = recv_until_closed(sock)
        assert data == b""
        assert how == ("reset" if rst else "eof")
    wait_for(lambda: len(echo.endings) == 1)
    assert echo.endings == ["ConnectionResetError" if rst else "eof"]
    assert proxy.counters()["open"] == 0
    with connect(proxy) as again:  # new connections still work
        again.sendall(b"more")
        assert recv_exactly(again, 4) == b"more"


@pytest.mark.parametrize("direction", [CLIENT_TO_SERVER, SERVER_TO_CLIENT])
@pytest.mark.parametrize("rst", [False, True])
def test_cut_after_exact_bytes(
    proxy: Proxy, echo: EchoServer, direction: str, rst: bool
) -> None:
    payload = os.urandom(50_000)
    with connect(proxy) as sock:
        sock.sendall(b"12345")
        assert recv_exactly(sock, 5) == b"12345"
        done = proxy.cut_after(direction, 12_345, rst=rst)  # type: ignore[arg-type]
        assert not done.done()
        sock.sendall(payload)
        assert done.result(TIMEOUT) == 5 + 12_345
        data, how = recv_until_closed(sock)
    assert proxy.transcript(direction) == b"12345" + payload[:12_345]  # type: ignore[arg-type]
    wait_for(lambda: len(echo.endings) == 1)
    if direction == SERVER_TO_CLIENT:
        # The client got exactly 12,345 more bytes, then the end.
        assert data == payload[:12_345]
        if not rst:
            assert how == "eof"
    else:
        # The echo server got exactly 12,345 more bytes; what it echoed
        # back was cut off on the way (both sides close at once).
        assert echo.received == 5 + 12_345
        assert payload.startswith(data)
        assert len(data) <= 12_345


def test_cut_after_without_connection_fails(proxy: Proxy) -> None:
    with pytest.raises(ProxyError, match="no connection"):
        proxy.cut_after(SERVER_TO_CLIENT, 10)


def test_slow_rate_and_delay(proxy: Proxy) -> None:
    with connect(proxy) as sock:
        proxy.slow(bytes_per_second=100_000)
        began = time.monotonic()
        sock.sendall(b"r" * 30_000)
        assert recv_exactly(sock, 30_000) == b"r" * 30_000
        # 30,000 bytes each way at 100,000 B/s per direction: >= 0.3 s.
        assert time.monotonic() - began >= 0.25
        proxy.slow(delay=0.2)
        began = time.monotonic()
        sock.sendall(b"d")
        assert recv_exactly(sock, 1) == b"d"
        # Held 0.2 s on the way in and again on the way out.
        assert time.monotonic() - began >= 0.38
        proxy.slow()
        began = time.monotonic()
        sock.sendall(b"f" * 300_000)
        assert recv_exactly(sock, 300_000) == b"f" * 300_000
        # At the old rate this would take >= 3 s.
        assert time.monotonic() - began < 1.5


def test_refuse_close_and_unlisten(proxy: Proxy, echo: EchoServer) -> None:
    proxy.refuse(True)
    with connect(proxy) as sock:
        data, _ = recv_until_closed(sock)
        assert data == b""
    assert proxy.counters()["refused"] == 1
    proxy.refuse(True, mode="unlisten")
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(proxy.address, timeout=TIMEOUT).close()
    proxy.refuse(False)
    with connect(proxy) as sock:
        sock.sendall(b"back")
        assert recv_exactly(sock, 4) == b"back"
    # Only the last one reached the echo server (the refused ones never did),
    # and it ended with the client's close.
    wait_for(lambda: len(echo.endings) == 1)
    assert echo.connections == 1
    assert echo.endings == ["eof"]


def test_close_leaves_nothing(echo: EchoServer) -> None:
    before = set(threading.enumerate())
    proxy = Proxy(echo.address).start()
    sock = connect(proxy)
    sock.sendall(b"x")
    assert recv_exactly(sock, 1) == b"x"
    proxy.stall()
    address = proxy.address
    proxy.close()
    data, _ = recv_until_closed(sock)
    assert data == b""
    sock.close()
    wait_for(lambda: len(echo.endings) == 1)  # the echo server's handler ends
    wait_for(lambda: set(threading.enumerate()) == before)
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(address, timeout=TIMEOUT).close()
    with pytest.raises(ProxyError):
        proxy.stall()
    proxy.close()  # idempotent


def test_url_points_at_the_proxy(proxy: Proxy) -> None:
    url = "amqp://guest:secret@broker.example:5672/%2f?heartbeat=2"
    assert proxy.url(url) == (
        f"amqp://guest:secret@127.0.0.1:{proxy.port}/%2f?heartbeat=2"
    )
    assert proxy.url("amqp://h/") == f"amqp://127.0.0.1:{proxy.port}/"
