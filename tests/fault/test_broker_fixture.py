"""Tests of the throw-away broker node itself (tests/support/broker.py).

Each test starts its own RabbitMQ node and breaks only that one: pause,
kill, stop, restart, memory alarm. The shared broker (``AMQP_URL`` or
127.0.0.1:5672) is never stopped or signalled; every test checks it still
answers the AMQP protocol header afterwards.
"""

from __future__ import annotations

import contextlib
import os
import socket
import struct
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pika
import pytest

from tests.support import broker as broker_module
from tests.support.broker import BrokerNode, BrokerNotInstalledError

pytestmark = pytest.mark.fault

PROTOCOL_HEADER = b"AMQP\x00\x00\x09\x01"
ROOT = Path(__file__).resolve().parents[2]


def shared_broker_address() -> tuple[str, int]:
    url = urlsplit(os.environ.get("AMQP_URL", "amqp://127.0.0.1:5672/"))
    return url.hostname or "127.0.0.1", url.port or 5672


def read_connection_start(address: tuple[str, int], timeout: float = 5.0) -> bytes:
    """Send the protocol header; return the connection.start frame payload."""
    with socket.create_connection(address, timeout=timeout) as sock:
        sock.sendall(PROTOCOL_HEADER)
        header = recv_exactly(sock, 7)
        frame_type, channel, size = struct.unpack(">BHI", header)
        assert frame_type == 1, f"not a method frame: {header!r}"
        assert channel == 0
        payload = recv_exactly(sock, size + 1)
    assert payload[-1:] == b"\xce", "frame-end octet missing"
    assert payload[:4] == b"\x00\x0a\x00\x0a", "not connection.start (10, 10)"
    return payload[:-1]


def recv_exactly(sock: socket.socket, count: int) -> bytes:
    data = b""
    while len(data) < count:
        chunk = sock.recv(count - len(data))
        if not chunk:
            raise ConnectionError(f"EOF after {len(data)} of {count} bytes")
        data += chunk
    return data


def assert_refused(address: tuple[str, int]) -> None:
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(address, timeout=2.0).close()


def listener_pid(port: int) -> int | None:
    """Pid of the process listening on 127.0.0.1/0.0.0.0:``port``, or None
    if /proc does not tell us (another user's process and we are not root)."""
    inodes: set[str] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError), open(table) as lines:
            for line in list(lines)[1:]:
                fields = line.split()
                if fields[1].endswith(f":{port:04X}") and fields[3] == "0A":
                    inodes.add(f"socket:[{fields[9]}]")
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        with contextlib.suppress(OSError):
            for fd in os.listdir(f"/proc/{entry}/fd"):
                with contextlib.suppress(OSError):
                    if os.readlink(f"/proc/{entry}/fd/{fd}") in inodes:
                        return int(entry)
    return None


def shared_broker_identity() -> tuple[bytes, int | None]:
    """What must not change: its connection.start and its OS process."""
    address = shared_broker_address()
    return read_connection_start(address), listener_pid(address[1])


@pytest.fixture(autouse=True)
def shared_broker_untouched() -> Iterator[None]:
    """The shared broker answers before and after every test here, from the
    same OS process (when /proc lets us see it)."""
    address = shared_broker_address()
    try:
        before = shared_broker_identity()
    except OSError as exc:
        pytest.fail(
            f"shared broker {address} is not answering before the test "
            f"(run `make broker`): {exc!r}",
            pytrace=False,
        )
    yield
    assert shared_broker_identity() == before, "the shared broker was touched"


def test_handshake_and_isolation(broker_node: BrokerNode) -> None:
    node = broker_node
    assert node.port != shared_broker_address()[1]
    assert node.nodename.startswith(f"amqptest-{os.getpid()}-")
    assert node.nodename.endswith("@localhost")
    payload = read_connection_start(node.address)
    assert b"RabbitMQ" in payload
    assert node.url == f"amqp://guest:guest@127.0.0.1:{node.port}/%2F"
    # Our own node answers rabbitmqctl with our own cookie; no plugins.
    status = node.rabbitmqctl("status").stdout
    assert node.nodename in status
    assert str(node.base_dir) in node.eval("rabbit_mnesia:dir().")
    assert node.eval("rabbit_plugins:active().") == "[]"
    assert node.last_start_seconds is not None
    assert node.last_start_seconds < 60


def test_pause_times_out_then_resume(broker_node: BrokerNode) -> None:
    node = broker_node
    established = socket.create_connection(node.address, timeout=1.0)
    try:
        node.pause()
        assert node.paused
        # The kernel still completes the TCP handshake (listen backlog), but
        # the VM reads and answers nothing.
        established.sendall(PROTOCOL_HEADER)
        with pytest.raises(TimeoutError):
            established.recv(1)
        read_connection_start(shared_broker_address())  # not paused
        with (
            pytest.raises(TimeoutError),
            socket.create_connection(node.address, timeout=1.0) as sock,
        ):
            sock.sendall(PROTOCOL_HEADER)
            sock.recv(1)
        node.resume()
        assert not node.paused
        established.settimeout(5.0)
        assert established.recv(1) == b"\x01"  # answered after the resume
    finally:
        established.close()
    read_connection_start(node.address)
    assert node.eval("ok.") == "ok"


def test_kill_refuses_then_restart_accepts(broker_node: BrokerNode) -> None:
    node = broker_node
    beams = node.beam_pids()
    assert beams
    port = node.port
    node.kill()
    assert not node.running
    assert node.last_stop_seconds is not None
    assert node.last_stop_seconds < 10
    assert all(not broker_module._alive(pid) for pid in beams)
    assert_refused(node.address)
    read_connection_start(shared_broker_address())  # not killed
    node.restart()
    assert node.port == port
    assert node.beam_pids() and node.beam_pids() != beams
    read_connection_start(node.address)


def test_graceful_stop_keeps_data_over_restart(broker_node: BrokerNode) -> None:
    node = broker_node
    node.rabbitmqctl("add_vhost", "kept-over-restart")
    node.stop()
    assert not node.running
    assert_refused(node.address)
    node.start()
    read_connection_start(node.address)
    assert "kept-over-restart" in node.rabbitmqctl("list_vhosts").stdout


def test_memory_alarm_blocks_publishers(broker_node: BrokerNode) -> None:
    node = broker_node
    assert not node.memory_alarm_active()
    events: list[str] = []
    params = pika.URLParameters(node.url)
    params.blocked_connection_timeout = 30
    connection = pika.BlockingConnection(params)
    try:
        connection.add_on_connection_blocked_callback(
            lambda _conn, frame: events.append(type(frame.method).__name__)
        )
        connection.add_on_connection_unblocked_callback(
            lambda _conn, frame: events.append(type(frame.method).__name__)
        )
        channel = connection.channel()
        node.set_memory_alarm(True)
        assert node.memory_alarm_active()
        assert "resource_limit,memory" in node.alarms()
        channel.basic_publish("", "amqptest-nowhere", b"x")
        deadline = time.monotonic() + 10
        while "Blocked" not in events and time.monotonic() < deadline:
            connection.process_data_events(time_limit=0.2)
        assert events == ["Blocked"]
        node.set_memory_alarm(False)
        assert not node.memory_alarm_active()
        deadline = time.monotonic() + 10
        while "Unblocked" not in events and time.monotonic() < deadline:
            connection.process_data_events(time_limit=0.2)
        assert events == ["Blocked", "Unblocked"]
    finally:
        connection.close()


def test_close_kills_paused_node_and_removes_dir() -> None:
    node = BrokerNode()
    try:
        node.start()
        tree = broker_module._process_tree(node.beam_pids()[0])
        node.pause()
    finally:
        node.close()
    assert not node.base_dir.exists()
    assert all(not broker_module._alive(pid) for pid in tree)
    assert_refused(node.address)
    assert node not in broker_module._live
    node.close()  # idempotent


WATCHDOG_SCRIPT = textwrap.dedent(
    """
    import os, sys
    sys.path.insert(0, sys.argv[1])
    from tests.support.broker import BrokerNode
    node = BrokerNode()
    node.start()
    print(node.port, node.base_dir, *node.beam_pids(), flush=True)
    node.pause()
    os._exit(0)  # no close(), no atexit: only the watchdog is left
    """
)


def test_watchdog_kills_node_of_dead_test_process() -> None:
    proc = subprocess.run(
        [sys.executable, "-c", WATCHDOG_SCRIPT, str(ROOT)],
        capture_output=True,
        text=True,
        timeout=90,
        check=True,
    )
    port, base_dir, *beams = proc.stdout.split()
    assert beams
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and (
        any(broker_module._alive(int(pid)) for pid in beams) or Path(base_dir).exists()
    ):
        time.sleep(0.1)
    assert not any(broker_module._alive(int(pid)) for pid in beams)
    assert not Path(base_dir).exists()
    assert_refused(("127.0.0.1", int(port)))


def test_missing_installation_fails_not_skips(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from tests.conftest import _start_node

    monkeypatch.setenv(broker_module.SBIN_ENV, "/nonexistent")
    monkeypatch.setenv("PATH", "/nonexistent")
    monkeypatch.setattr(broker_module, "_SBIN_CANDIDATES", ())
    with pytest.raises(BrokerNotInstalledError, match="not installed"):
        broker_module.find_rabbitmq_sbin()
    with pytest.raises(pytest.fail.Exception, match="not installed"):
        _start_node()
