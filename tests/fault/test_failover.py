"""Failover in a three-node cluster, both fronts (issue #5's acceptance).

A quorum queue; a publisher in confirm mode that re-publishes whatever
failed (a ConnectionLost on its Confirmation, a nack); a consumer with
recovery on. During 20,000 messages the node each of them is connected to
is killed, twice (and booted again in between, so the queue keeps its
majority). Every confirmed message must be consumed at least once;
duplicates (redeliveries of messages whose ack died with a connection,
re-publishes of messages whose confirm did) are counted and reported.
"""

from __future__ import annotations

import asyncio
import collections
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from amqp_client.spec import BasicProperties

import amqp_client
from amqp_client import blocking
from amqp_client.errors import ChannelClosed, ConnectionClosed, MessageNacked
from tests.integration.helpers import unique
from tests.support.cluster import BrokerCluster

pytestmark = [pytest.mark.fault, pytest.mark.slow]

MESSAGES = 20_000
WINDOW = 500
#: Kill the node(s) in use when this many messages are confirmed.
KILL_AT = (4_000, 11_000)
DEADLINE = 240.0
OPTIONS: dict[str, Any] = {
    "recover": True,
    "recovery_delay": 0.2,
    "recovery_max_delay": 2.0,
    "heartbeat": 5,
    "connection_timeout": 5,
}
QUORUM = {"x-queue-type": "quorum"}
#: What a failed publish raises; the publisher sends the message again.
RETRY = (ConnectionClosed, ChannelClosed, MessageNacked, TimeoutError)


@dataclass
class Tally:
    confirmed: set[int] = field(default_factory=set)
    received: collections.Counter[int] = field(default_factory=collections.Counter)
    republished: int = 0
    kills: list[str] = field(default_factory=list)
    recoveries: collections.Counter[str] = field(default_factory=collections.Counter)
    #: Set as each kill happens: the publisher does not run far past a
    #: KILL_AT mark before its kill, so both kills land mid-stream.
    killed: list[threading.Event] = field(
        default_factory=lambda: [threading.Event() for _ in KILL_AT]
    )

    def gate(self) -> None:
        for mark, event in zip(KILL_AT, self.killed, strict=True):
            if len(self.confirmed) >= mark + 2 * WINDOW:
                assert event.wait(120), f"no kill at {mark}"

    @property
    def duplicates(self) -> int:
        return sum(count - 1 for count in self.received.values())

    def report(self, front: str) -> str:
        return (
            f"{front}: {len(self.confirmed)} confirmed, {len(self.received)} "
            f"distinct consumed, {self.duplicates} duplicates, "
            f"{self.republished} re-published, kills {self.kills}, "
            f"recoveries {dict(self.recoveries)}"
        )


def _node_of(cluster: BrokerCluster, conn: Any) -> int:
    port = conn._session.params.port
    for index, node in enumerate(cluster.nodes):
        if node.address[1] == port:
            return index
    raise AssertionError(f"{conn!r} is on no node of the cluster")


def _killer(
    cluster: BrokerCluster,
    tally: Tally,
    conns: dict[str, Any],
    recovered: dict[str, threading.Event],
    errors: list[BaseException],
) -> Callable[[], None]:
    """Kill the node(s) the connections use at each KILL_AT mark, wait for
    both to recover, boot the node(s) again (whatever failed: the module's
    cluster must stay whole). Runs on a thread of its own; what it raises
    goes to ``errors``."""

    def run() -> None:
        try:
            for mark in KILL_AT:
                deadline = time.monotonic() + DEADLINE
                while len(tally.confirmed) < mark:
                    if time.monotonic() > deadline:
                        return
                    time.sleep(0.01)
                kill_and_boot(mark)
        except BaseException as exc:  # reported by the test after join()
            errors.append(exc)

    def kill_and_boot(mark: int) -> None:
        victims = sorted({_node_of(cluster, conn) for conn in conns.values()})
        for event in recovered.values():
            event.clear()
        try:
            for index in victims:
                tally.kills.append(f"node{index}@{len(tally.confirmed)}")
                cluster.kill(index)
            tally.killed[KILL_AT.index(mark)].set()
            for name, conn in conns.items():
                if _node_of(cluster, conn) in victims or conn.is_recovering:
                    assert recovered[name].wait(60), f"{name} did not recover"
        finally:
            for index in victims:
                if not cluster.nodes[index].running:
                    try:
                        cluster.start_node(index)
                    except BaseException as exc:  # boot the others too
                        errors.append(exc)

    return run


def _joined(thread: threading.Thread, errors: list[BaseException]) -> None:
    """Wait for ``thread`` (bounded); it must have ended without errors."""
    thread.join(120)
    assert not thread.is_alive(), f"{thread.name} still running"
    assert not errors, errors


# --- asyncio --------------------------------------------------------------------------


async def aio_failover(cluster: BrokerCluster, tally: Tally) -> None:
    queue = unique("quorum")
    urls = cluster.urls
    recovered = {"publisher": threading.Event(), "consumer": threading.Event()}
    killer_errors: list[BaseException] = []
    async with (
        amqp_client.connect(urls, **OPTIONS) as pub_conn,
        amqp_client.connect(urls, **OPTIONS) as con_conn,
    ):
        for name, conn in (("publisher", pub_conn), ("consumer", con_conn)):
            conn.add_on_recovered_callback(_on_recovered(name, tally, recovered))
        pub = await pub_conn.channel()
        await pub.confirm_select()
        await pub.queue_declare(queue, durable=True, arguments=QUORUM)
        con = await con_conn.channel()
        await con.basic_qos(prefetch_count=200)
        await con.queue_declare(queue, durable=True, arguments=QUORUM)
        consumer = await con.basic_consume(queue)
        killer = threading.Thread(
            target=_killer(
                cluster,
                tally,
                {"publisher": pub_conn, "consumer": con_conn},
                recovered,
                killer_errors,
            ),
            name="failover-killer",
            daemon=True,
        )
        killer.start()

        async def consume() -> None:
            async for delivery in consumer:
                tally.received[int(delivery.body)] += 1
                await delivery.ack()
                if len(tally.received) == MESSAGES:
                    return

        consuming = asyncio.ensure_future(consume())
        props = BasicProperties(delivery_mode=2)
        todo = collections.deque(range(MESSAGES))
        while todo:
            await asyncio.to_thread(tally.gate)
            batch = [todo.popleft() for _ in range(min(WINDOW, len(todo)))]
            sent: list[tuple[int, Any]] = []
            for number in batch:
                try:
                    confirmation = await pub.basic_publish(
                        str(number).encode(), routing_key=queue, properties=props
                    )
                except RETRY:
                    todo.append(number)
                    tally.republished += 1
                    continue
                sent.append((number, confirmation))
            outcomes = await asyncio.gather(
                *(asyncio.wait_for(c, 60) for _, c in sent), return_exceptions=True
            )
            for (number, _), outcome in zip(sent, outcomes, strict=True):
                if outcome is None:
                    tally.confirmed.add(number)
                elif isinstance(outcome, RETRY):
                    todo.append(number)
                    tally.republished += 1
                else:
                    raise outcome
        await asyncio.wait_for(consuming, 120)
        await asyncio.to_thread(_joined, killer, killer_errors)
        await pub.queue_delete(queue)


def _on_recovered(
    name: str, tally: Tally, recovered: dict[str, threading.Event]
) -> Callable[[], None]:
    def callback() -> None:
        tally.recoveries[name] += 1
        recovered[name].set()

    return callback


# --- blocking --------------------------------------------------------------------------


def blocking_failover(cluster: BrokerCluster, tally: Tally) -> None:
    queue = unique("quorum")
    urls = cluster.urls
    recovered = {"publisher": threading.Event(), "consumer": threading.Event()}
    killer_errors: list[BaseException] = []
    with (
        blocking.connect(urls, **OPTIONS) as pub_conn,
        blocking.connect(urls, **OPTIONS) as con_conn,
    ):
        for name, conn in (("publisher", pub_conn), ("consumer", con_conn)):
            conn.add_on_recovered_callback(_on_recovered(name, tally, recovered))
        pub = pub_conn.channel()
        pub.confirm_select()
        pub.queue_declare(queue, durable=True, arguments=QUORUM)
        con = con_conn.channel()
        con.basic_qos(prefetch_count=200)
        con.queue_declare(queue, durable=True, arguments=QUORUM)
        consumer = con.basic_consume(queue)
        killer = threading.Thread(
            target=_killer(
                cluster,
                tally,
                {"publisher": pub_conn, "consumer": con_conn},
                recovered,
                killer_errors,
            ),
            name="failover-killer",
            daemon=True,
        )
        killer.start()
        failure: list[BaseException] = []

        def consume() -> None:
            try:
                deadline = time.monotonic() + DEADLINE
                while len(tally.received) < MESSAGES:
                    delivery = consumer.get(max(0.1, deadline - time.monotonic()))
                    if delivery is None:
                        return
                    tally.received[int(delivery.body)] += 1
                    delivery.ack()
            except BaseException as exc:
                failure.append(exc)

        consuming = threading.Thread(
            target=consume, name="failover-consumer", daemon=True
        )
        consuming.start()
        props = BasicProperties(delivery_mode=2)
        todo = collections.deque(range(MESSAGES))
        while todo:
            tally.gate()
            batch = [todo.popleft() for _ in range(min(WINDOW, len(todo)))]
            sent: list[tuple[int, Any]] = []
            for number in batch:
                try:
                    confirmation = pub.basic_publish(
                        str(number).encode(), routing_key=queue, properties=props
                    )
                except RETRY:
                    todo.append(number)
                    tally.republished += 1
                    continue
                sent.append((number, confirmation))
            for number, confirmation in sent:
                try:
                    confirmation.wait(60)
                except RETRY:
                    todo.append(number)
                    tally.republished += 1
                else:
                    tally.confirmed.add(number)
        _joined(consuming, failure)
        _joined(killer, killer_errors)
        pub.queue_delete(queue)


@pytest.mark.timeout(600)
@pytest.mark.parametrize("front", ["aio", "blocking"])
def test_cluster_failover_loses_nothing_confirmed(
    rabbit_cluster: BrokerCluster,
    front: str,
    record_property: Callable[[str, object], None],
    capsys: pytest.CaptureFixture[str],
) -> None:
    tally = Tally()
    began = time.monotonic()
    if front == "aio":
        asyncio.run(asyncio.wait_for(aio_failover(rabbit_cluster, tally), DEADLINE))
    else:
        blocking_failover(rabbit_cluster, tally)
    report = tally.report(front) + f", {time.monotonic() - began:.0f} s"
    record_property("failover", report)
    with capsys.disabled():
        print(f"\n{report}")
    # (Every kill came before the last confirm: Tally.gate holds the
    # publisher back until it happened.)
    assert len(tally.kills) >= len(KILL_AT), report
    assert tally.recoveries["publisher"] >= len(KILL_AT), report
    assert tally.recoveries["consumer"] >= len(KILL_AT), report
    assert tally.confirmed == set(range(MESSAGES)), report
    missing = tally.confirmed - set(tally.received)
    assert not missing, f"{len(missing)} confirmed messages lost; {report}"
