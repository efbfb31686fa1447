"""The blocking front's callers read their own replies (leader/follower).

A thread that waits for a reply becomes the socket's reader while no other
caller is: the I/O thread steps aside, and the reply is read, decoded and
routed on the waiting thread (no hand-off between threads). These tests
check who reads, and that everything the I/O thread does goes on while a
caller leads: heartbeats, deliveries to consumers, replies to other
threads, timeouts, and the connection's loss. Against a scripted broker.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest

from amqp_client import blocking, spec
from amqp_client.errors import ConnectionLost
from tests.support.socket_peer import (
    STEP,
    ScriptedBroker,
    ScriptedConnection,
    wait_until,
)


@pytest.fixture
def broker() -> Iterator[ScriptedBroker]:
    with ScriptedBroker() as scripted:
        yield scripted


def spy_readers(conn: blocking.Connection) -> list[int]:
    """The thread of each turn of reading from now on."""
    readers: list[int] = []
    driver = conn._driver
    read_once = driver.read_once

    def spy(*args: Any) -> bool:
        readers.append(threading.get_ident())
        return read_once(*args)

    driver.read_once = spy  # type: ignore[method-assign,assignment]  # a spy on one instance
    return readers


def in_thread(target: Any) -> tuple[threading.Thread, list[Any]]:
    """Run ``target`` on a thread; its outcome lands in the list."""
    outcome: list[Any] = []

    def run() -> None:
        try:
            outcome.append(target())
        except BaseException as exc:  # the test inspects it
            outcome.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, outcome


def test_a_caller_reads_its_own_reply(broker: ScriptedBroker) -> None:
    with blocking.connect(broker.url, connection_timeout=STEP) as conn:
        peer = broker.wait_connection()
        ch = conn.channel(timeout=STEP)
        readers = spy_readers(conn)
        # The reply goes out once the caller reads (a reply that comes
        # before it has taken over is read by the I/O thread, which is
        # right too, and the test could not tell).
        peer.hold(spec.QueueDeclare)

        def release_when_leading() -> int:
            wait_until(lambda: _leading(conn), what="the caller to lead")
            return peer.release(spec.QueueDeclare)

        thread, released = in_thread(release_when_leading)
        assert ch.queue_declare("q", passive=True, timeout=STEP).queue == "q"
        thread.join(STEP)
        assert released == [1]
        assert threading.get_ident() in readers
        # The I/O thread takes over again once the caller has its reply: a
        # delivery is read while no thread waits for anything.
        peer = broker.wait_connection()
        consumer = ch.basic_consume("q", timeout=STEP)
        peer.deliver(ch.channel_id, consumer.consumer_tag, b"pushed")
        wait_until(lambda: bool(consumer._state.buffered), what="the delivery")
        delivery = consumer.get(timeout=STEP)
        assert delivery is not None and delivery.body == b"pushed"


def test_a_consumer_with_nothing_buffered_reads_for_itself(
    broker: ScriptedBroker,
) -> None:
    with blocking.connect(broker.url, connection_timeout=STEP) as conn:
        peer = broker.wait_connection()
        ch = conn.channel(timeout=STEP)
        consumer = ch.basic_consume("q", timeout=STEP)
        readers = spy_readers(conn)

        def push_later() -> None:
            wait_until(lambda: _leading(conn), what="a leading consumer")
            peer.deliver(ch.channel_id, consumer.consumer_tag, b"for me")

        thread, _ = in_thread(push_later)
        delivery = consumer.get(timeout=STEP)
        thread.join(STEP)
        assert delivery is not None and delivery.body == b"for me"
        assert threading.get_ident() in readers
        # Nothing arrives: get() times out after reading for itself, and
        # the I/O thread reads again.
        with pytest.raises(TimeoutError, match="no delivery"):
            consumer.get(timeout=0.1)
        assert not _leading(conn)


def test_heartbeats_go_on_while_a_caller_waits(broker: ScriptedBroker) -> None:
    broker.heartbeat = 1
    with blocking.connect(broker.url, connection_timeout=STEP) as conn:
        peer = broker.wait_connection()
        ch = conn.channel(timeout=STEP)
        readers = spy_readers(conn)
        peer.hold(spec.QueueDeclare)
        start = peer.heartbeats

        def release_after_two_heartbeats() -> int:
            peer.wait_for(lambda: peer.heartbeats >= start + 2, timeout=3 * STEP)
            return peer.release(spec.QueueDeclare)

        thread, released = in_thread(release_after_two_heartbeats)
        ok = ch.queue_declare("q", passive=True, timeout=4 * STEP)
        thread.join(STEP)
        assert released == [1]
        assert ok.queue == "q"
        # The caller read on while it waited: a turn per heartbeat timer,
        # then the one with its reply.
        assert readers.count(threading.get_ident()) >= 3


def test_a_leader_routes_deliveries_and_other_threads_replies(
    broker: ScriptedBroker,
) -> None:
    with blocking.connect(broker.url, connection_timeout=STEP) as conn:
        peer = broker.wait_connection()
        slow = conn.channel(timeout=STEP)
        other = conn.channel(timeout=STEP)
        consumer = other.basic_consume("q", timeout=STEP)
        readers = spy_readers(conn)
        peer.hold(spec.QueueDeclare)
        leader, declared = in_thread(
            lambda: slow.queue_declare("q", passive=True, timeout=4 * STEP)
        )
        peer.wait_method(spec.QueueDeclare)
        wait_until(lambda: _leading(conn), what="the leader")

        # While that thread leads: a delivery reaches the consumer, and
        # another thread's request gets its reply.
        peer.deliver(other.channel_id, consumer.consumer_tag, b"while leading")
        delivery = consumer.get(timeout=STEP)
        assert delivery is not None and delivery.body == b"while leading"
        other.basic_qos(prefetch_count=5, timeout=STEP)
        assert leader.is_alive()

        peer.release(spec.QueueDeclare)
        leader.join(STEP)
        assert not isinstance(declared[0], BaseException)
        assert leader.ident in readers


def _leading(conn: blocking.Connection) -> bool:
    return conn._driver.leading


def test_a_leader_that_times_out_hands_reading_back(broker: ScriptedBroker) -> None:
    with blocking.connect(broker.url, connection_timeout=STEP) as conn:
        peer = broker.wait_connection()
        ch = conn.channel(timeout=STEP)
        consumer = ch.basic_consume("q", timeout=STEP)
        peer.hold(spec.QueueDeclare)
        with pytest.raises(TimeoutError, match=r"queue\.declare"):
            ch.queue_declare("q", passive=True, timeout=0.2)
        assert not _leading(conn)
        # The I/O thread reads again: a delivery arrives with no caller
        # waiting for a reply.
        peer.deliver(ch.channel_id, consumer.consumer_tag, b"after")
        delivery = consumer.get(timeout=STEP)
        assert delivery is not None and delivery.body == b"after"
        # The late reply is dropped, and later requests match their replies.
        peer.release(spec.QueueDeclare)
        assert ch.queue_declare("q", passive=True, timeout=STEP).queue == "q"


def test_a_leader_sees_the_connection_lost(broker: ScriptedBroker) -> None:
    with blocking.connect(broker.url, connection_timeout=STEP) as conn:
        peer: ScriptedConnection = broker.wait_connection()
        ch = conn.channel(timeout=STEP)
        peer.hold(spec.QueueDeclare)
        leader, outcome = in_thread(
            lambda: ch.queue_declare("q", passive=True, timeout=4 * STEP)
        )
        peer.wait_method(spec.QueueDeclare)
        peer.drop()
        leader.join(STEP)
        assert not leader.is_alive()
        assert isinstance(outcome[0], ConnectionLost)
        assert conn.wait_closed(STEP) is not None


def test_requests_in_a_row_leave_the_io_thread_asleep(broker: ScriptedBroker) -> None:
    # Between two requests of one thread the I/O thread rests (a caller
    # reads every reply itself) instead of taking a turn per request: the
    # turns it takes here are the few its rests run out in, on a busy machine.
    with blocking.connect(broker.url, connection_timeout=STEP) as conn:
        ch = conn.channel(timeout=STEP)
        ch.queue_declare("q", passive=True, timeout=STEP)
        readers = spy_readers(conn)
        for _ in range(50):
            ch.queue_declare("q", passive=True, timeout=STEP)
        io_turns = sum(1 for reader in readers if reader != threading.get_ident())
        assert io_turns < 25, f"{io_turns} turns of the I/O thread in 50 requests"


def test_output_cuts_the_io_threads_rest_short(
    broker: ScriptedBroker, monkeypatch: pytest.MonkeyPatch
) -> None:
    # An ack made while the I/O thread rests (after a consumer read for
    # itself) is written at once, not when the rest ends: here the rest
    # would last longer than the broker waits for the ack.
    from amqp_client.blocking import connection as blocking_connection

    monkeypatch.setattr(blocking_connection, "_LEAD_GRACE", 10 * STEP)
    with blocking.connect(broker.url, connection_timeout=STEP) as conn:
        peer = broker.wait_connection()
        ch = conn.channel(timeout=STEP)
        consumer = ch.basic_consume("q", timeout=STEP)

        def push_later() -> None:
            wait_until(lambda: _leading(conn), what="a leading consumer")
            peer.deliver(ch.channel_id, consumer.consumer_tag, b"ack me")

        thread, _ = in_thread(push_later)
        delivery = consumer.get(timeout=STEP)
        thread.join(STEP)
        assert delivery is not None
        assert conn._driver.lead_ended  # the I/O thread rests
        delivery.ack()
        acked = peer.wait_method(spec.BasicAck, timeout=STEP)
        assert acked.delivery_tag == delivery.delivery_tag


def test_polling_with_a_zero_timeout_reads_what_arrived(broker: ScriptedBroker) -> None:
    # get(timeout=0) in a loop, as a program that visits many consumers
    # does: each call reads what the socket holds without waiting, and does
    # not keep the I/O thread resting either (each call used to take the
    # lead, read nothing and end it, so nobody read at all).
    with blocking.connect(broker.url, connection_timeout=STEP) as conn:
        peer = broker.wait_connection()
        ch = conn.channel(timeout=STEP)
        consumers = [ch.basic_consume("q", timeout=STEP) for _ in range(3)]
        for index in range(30):
            consumer = consumers[index % 3]
            peer.deliver(ch.channel_id, consumer.consumer_tag, b"%d" % index)
        got: list[bytes] = []
        polls = 0
        while len(got) < 30 and polls < 30_000:
            for consumer in consumers:
                polls += 1
                try:
                    while (delivery := consumer.get(timeout=0)) is not None:
                        got.append(delivery.body)
                except TimeoutError:
                    pass
        assert sorted(got, key=int) == [b"%d" % i for i in range(30)], polls


def test_a_zero_timeout_read_reads_without_waiting(broker: ScriptedBroker) -> None:
    with blocking.connect(broker.url, connection_timeout=STEP) as conn:
        peer = broker.wait_connection()
        ch = conn.channel(timeout=STEP)
        consumer = ch.basic_consume("q", timeout=STEP)
        readers = spy_readers(conn)
        with pytest.raises(TimeoutError):
            consumer.get(timeout=0)
        assert threading.get_ident() in readers  # it looked at the socket
        assert not _leading(conn)
        peer.deliver(ch.channel_id, consumer.consumer_tag, b"later")
        delivery = consumer.get(timeout=STEP)
        assert delivery is not None and delivery.body == b"later"
