"""What only the blocking front has to prove (issue: the blocking client).

Heartbeats never starve while user threads sleep; many threads share one
connection and one channel without interleaving frames; a dying broker
wakes every blocked waiter with ConnectionLost; callbacks may make blocking
calls; no socket or thread is left behind (also under ``python -X dev``).
"""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

import amqp_client
from amqp_client import blocking
from tests.integration.helpers import amqp_url, default_sigint, unique
from tests.support.broker import BrokerNode

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def conn() -> Iterator[blocking.Connection]:
    with blocking.connect(amqp_url()) as connection:
        yield connection


def amqp_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith("amqp-")]


def test_close_callbacks_are_queued_before_close_returns() -> None:
    """close() returns once the channel is over; by then its close
    callbacks must be queued, or a caller that drains the callback queue
    right after close() misses them (a test did, now and then). The
    callback thread is held busy, so the queue shows what was handed over."""
    with blocking.connect(amqp_url()) as connection:
        channel = connection.channel()
        channel.add_on_close_callback(lambda error: None)
        entered, gate = threading.Event(), threading.Event()

        def hold() -> None:
            entered.set()
            gate.wait(10)

        driver = connection._driver
        with driver.lock:
            driver.run_callbacks([hold])
        assert entered.wait(5)  # the callback thread is busy, the queue empty
        try:
            channel.close(timeout=5)
            queued = driver.callbacks.qsize()
        finally:
            gate.set()
        assert queued == 1


def test_heartbeats_survive_a_sleeping_user_thread() -> None:
    # The pika complaint: heartbeat=2 and 10 s between two calls.
    with blocking.connect(amqp_url(), heartbeat=2) as connection:
        assert connection.heartbeat == 2
        channel = connection.channel()
        queue = channel.queue_declare(unique("sleepy"), exclusive=True).queue
        time.sleep(10)
        assert connection.is_open
        ok = channel.queue_declare(queue, passive=True, timeout=5)
        assert ok.queue == queue
    assert amqp_threads() == []


def test_threads_publish_on_their_own_and_on_a_shared_channel(
    conn: blocking.Connection,
) -> None:
    own_threads, per_thread = 8, 10_000
    shared_threads, per_shared = 4, 2_500
    setup = conn.channel()
    queue = setup.queue_declare(unique("threads"), exclusive=True).queue
    shared = conn.channel()
    errors: list[BaseException] = []

    def body(label: str, i: int) -> bytes:
        digest = hashlib.sha256(f"{label}:{i}".encode()).hexdigest()
        return f"{label}:{i}:{digest}".encode()

    def publish_own(t: int) -> None:
        try:
            channel = conn.channel()
            for i in range(per_thread):
                channel.basic_publish(body(f"own{t}", i), routing_key=queue)
            channel.close()
        except BaseException as exc:
            errors.append(exc)

    def publish_shared(t: int) -> None:
        try:
            for i in range(per_shared):
                shared.basic_publish(body(f"shared{t}", i), routing_key=queue)
        except BaseException as exc:
            errors.append(exc)

    threads = [
        threading.Thread(target=publish_own, args=(t,)) for t in range(own_threads)
    ]
    threads += [
        threading.Thread(target=publish_shared, args=(t,))
        for t in range(shared_threads)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert not errors, errors
    assert not any(thread.is_alive() for thread in threads)

    expected = own_threads * per_thread + shared_threads * per_shared
    deadline = time.monotonic() + 60
    while setup.queue_declare(queue, passive=True).message_count < expected:
        assert time.monotonic() < deadline, "the broker did not get every message"
        time.sleep(0.2)
    seen: Counter[bytes] = Counter()
    setup.basic_qos(prefetch_count=2000)
    with setup.basic_consume(queue, no_ack=True) as consumer:
        for delivery in consumer:
            label, index, digest = delivery.body.split(b":")
            # Intact: the body checks out against its own digest.
            assert hashlib.sha256(label + b":" + index).hexdigest().encode() == digest
            seen[delivery.body] += 1
            if len(seen) == expected:
                break
    assert len(seen) == expected
    assert max(seen.values()) == 1  # none duplicated
    for t in range(own_threads):
        assert all(seen[body(f"own{t}", i)] == 1 for i in range(0, per_thread, 997))


def test_callback_can_make_blocking_calls(conn: blocking.Connection) -> None:
    channel = conn.channel()
    queue = channel.queue_declare(unique("cb"), exclusive=True).queue
    channel.confirm_select()
    answers: list[object] = []
    done = threading.Event()

    def on_return(message: object) -> None:
        # A blocking RPC from inside a callback: must neither deadlock nor
        # starve the I/O thread.
        answers.append(channel.queue_declare(queue, passive=True, timeout=5))
        answers.append(threading.current_thread().name)
        done.set()

    channel.add_on_return_callback(on_return)
    confirmation = channel.basic_publish(
        b"x", routing_key=unique("nowhere"), mandatory=True
    )
    assert confirmation is not None
    with pytest.raises(amqp_client.MessageReturned):
        confirmation.wait(5)
    assert done.wait(5), "the callback deadlocked"
    assert answers[0].queue == queue  # type: ignore[attr-defined]
    assert str(answers[1]).startswith("amqp-callbacks")


def test_timeouts_raise_timeout_error(broker_node: BrokerNode) -> None:
    with blocking.connect(broker_node.url, heartbeat=30) as connection:
        channel = connection.channel()
        queue = channel.queue_declare(unique("t"), exclusive=True).queue
        with channel.basic_consume(queue) as consumer:
            start = time.monotonic()
            with pytest.raises(TimeoutError):
                consumer.get(timeout=0.3)
            assert time.monotonic() - start < 2
        broker_node.pause()
        try:
            start = time.monotonic()
            with pytest.raises(TimeoutError):
                channel.queue_declare(queue, passive=True, timeout=0.5)
            assert time.monotonic() - start < 3
        finally:
            broker_node.resume()
        # The reply to the timed-out request still arrives and is dropped;
        # the next request gets its own reply.
        assert channel.queue_declare(queue, passive=True, timeout=10).queue == queue


@pytest.mark.fault
def test_killed_node_wakes_every_blocked_waiter(broker_node: BrokerNode) -> None:
    heartbeat = 2
    connection = blocking.connect(broker_node.url, heartbeat=heartbeat)
    channel = connection.channel()
    getter_channel = connection.channel()
    queue = channel.queue_declare(unique("kill"), exclusive=True).queue
    consumer = channel.basic_consume(queue)
    confirm_channel = connection.channel()
    confirm_channel.confirm_select()
    broker_node.pause()  # nothing answers from here on
    confirmation = confirm_channel.basic_publish(b"x", routing_key=queue)
    assert confirmation is not None
    outcomes: dict[str, tuple[type[BaseException], float]] = {}

    def wait_for(name: str, fn: object) -> None:
        try:
            fn()  # type: ignore[operator]
        except BaseException as exc:
            outcomes[name] = (type(exc), time.monotonic())

    waiters = [
        threading.Thread(
            target=wait_for, args=("basic_get", lambda: getter_channel.basic_get(queue))
        ),
        threading.Thread(target=wait_for, args=("consumer.get", consumer.get)),
        threading.Thread(
            target=wait_for, args=("confirmation.wait", confirmation.wait)
        ),
    ]
    for waiter in waiters:
        waiter.start()
    time.sleep(0.5)
    killed = time.monotonic()
    broker_node.kill()
    for waiter in waiters:
        waiter.join(2 * heartbeat + 5)
    assert set(outcomes) == {"basic_get", "consumer.get", "confirmation.wait"}, outcomes
    for name, (kind, when) in outcomes.items():
        assert issubclass(kind, amqp_client.ConnectionLost), (name, kind)
        assert when - killed < 2 * heartbeat, (name, when - killed)
    assert connection.wait_closed(5) is not None
    connection.close()
    assert not any(waiter.is_alive() for waiter in waiters)
    assert amqp_threads() == []


@pytest.mark.fault
def test_paused_node_is_a_heartbeat_timeout(broker_node: BrokerNode) -> None:
    connection = blocking.connect(broker_node.url, heartbeat=1)
    try:
        channel = connection.channel()
        broker_node.pause()
        start = time.monotonic()
        with pytest.raises(amqp_client.HeartbeatTimeout):
            channel.queue_declare(unique("hb"), timeout=10)
        assert time.monotonic() - start < 3
        assert isinstance(connection.wait_closed(1), amqp_client.HeartbeatTimeout)
    finally:
        broker_node.resume()
        connection.close()
    assert amqp_threads() == []


SCRIPT = textwrap.dedent(
    """
    import sys, threading, time
    from amqp_client import blocking
    url = sys.argv[1]
    with blocking.connect(url) as conn:
        ch = conn.channel()
        q = ch.queue_declare("", exclusive=True).queue
        ch.confirm_select()
        for i in range(100):
            ch.basic_publish(b"m%d" % i, routing_key=q).wait(5)
        with ch.basic_consume(q) as consumer:
            for n, d in enumerate(consumer, 1):
                d.ack()
                if n == 100:
                    break
        ch.close()
    try:
        blocking.connect("amqp://guest:guest@127.0.0.1:1/%2f", connection_timeout=2)
    except Exception as exc:
        print(type(exc).__name__)
    left = [t.name for t in threading.enumerate() if t is not threading.main_thread()]
    print("threads left:", left)
    """
)


def test_dev_mode_shows_no_unclosed_socket_or_thread_warning(tmp_path: Path) -> None:
    script = tmp_path / "dev_mode.py"
    script.write_text(SCRIPT)
    result = subprocess.run(
        [
            sys.executable,
            "-X",
            "dev",
            "-W",
            "error::ResourceWarning",
            str(script),
            amqp_url(),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stderr
    assert "ResourceWarning" not in result.stderr
    assert "Warning" not in result.stderr, result.stderr
    assert "ConnectionLost" in result.stdout
    assert "threads left: []" in result.stdout


CONSUME_FOREVER = textwrap.dedent(
    """
    import sys
    from amqp_client import blocking
    with blocking.connect(sys.argv[1]) as conn:
        ch = conn.channel()
        q = ch.queue_declare("", exclusive=True).queue
        print("consuming", flush=True)
        for delivery in ch.basic_consume(q):
            delivery.ack()
    """
)


def test_ctrl_c_in_a_consume_loop_exits_cleanly(tmp_path: Path) -> None:
    script = tmp_path / "consume.py"
    script.write_text(CONSUME_FOREVER)
    process = subprocess.Popen(
        [sys.executable, "-X", "dev", str(script), amqp_url()],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        # Ctrl-C reaches the child even when this run ignores SIGINT (a job
        # started with & from a script does): Python keeps an inherited
        # SIG_IGN and would never raise KeyboardInterrupt.
        preexec_fn=default_sigint,
    )
    try:
        assert process.stdout is not None
        assert process.stdout.readline().strip() == "consuming"
        time.sleep(0.3)
        os.kill(process.pid, signal.SIGINT)
        _, stderr = process.communicate(timeout=15)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode != 0
    assert "KeyboardInterrupt" in stderr
    assert "ResourceWarning" not in stderr
