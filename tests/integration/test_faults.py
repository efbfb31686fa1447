"""Broker failures, each on a RabbitMQ node of the test's own (broker_node):
a frozen node (heartbeat timeout), a memory alarm (connection.blocked),
a killed node. The shared broker is never touched."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from amqp_client.spec import QueueDeclareOk, QueuePurgeOk

import amqp_client
from tests.integration.helpers import Front, next_delivery, within
from tests.support.broker import BrokerNode

pytestmark = pytest.mark.fault


async def heartbeat_timeout_scenario(front: Front, node: BrokerNode) -> None:
    closed: list[object] = []
    conn = await within(front.connect(node.url, heartbeat=1), 30)
    try:
        conn.add_on_close_callback(closed.append)
        assert conn.heartbeat == 1
        ch = await within(conn.channel())
        queue = (await within(ch.queue_declare("", exclusive=True))).queue
        consumer = await within(ch.basic_consume(queue))
        await within(ch.confirm_select())

        await asyncio.to_thread(node.pause)
        began = time.monotonic()
        try:
            pending_rpc = asyncio.ensure_future(ch.queue_declare(queue, passive=True))
            confirmation = await ch.basic_publish(b"x", routing_key=queue)
            pending_delivery = asyncio.ensure_future(anext(consumer))
            error = await within(conn.closed, 5)
            elapsed = time.monotonic() - began
        finally:
            await asyncio.to_thread(node.resume)
        assert isinstance(error, amqp_client.HeartbeatTimeout)
        assert isinstance(error, amqp_client.ConnectionLost)
        assert elapsed < 3.0, f"detected after {elapsed:.1f} s"
        assert closed == [error]
        assert not conn.is_open
        for pending in (pending_rpc, confirmation, pending_delivery):
            with pytest.raises(amqp_client.HeartbeatTimeout):
                await within(pending, 1)
        with pytest.raises(amqp_client.HeartbeatTimeout):
            await conn.channel()
    finally:
        await within(conn.close())
    # The resumed node is healthy again.
    async with front.connect(node.url) as conn2:
        ch2 = await within(conn2.channel())
        await within(ch2.basic_qos(prefetch_count=1))


def test_frozen_node_is_heartbeat_timeout(
    front: Front, module_broker_node: BrokerNode
) -> None:
    # Pause and resume leave the node healthy: the module's node will do.
    front.run(heartbeat_timeout_scenario, module_broker_node)


async def rpc_timeout_scenario(front: Front, node: BrokerNode) -> None:
    """A call's timeout passes while the node is frozen; the late reply is
    dropped and later calls still get their own replies."""
    async with front.connect(node.url) as conn:  # default heartbeat: 60 s
        ch = await within(conn.channel())
        queue = (await within(ch.queue_declare("", exclusive=True))).queue
        await asyncio.to_thread(node.pause)
        try:
            began = time.monotonic()
            with pytest.raises(TimeoutError):
                await ch.queue_declare(queue, passive=True, timeout=0.5)
            assert time.monotonic() - began < 2.0
            with pytest.raises(TimeoutError):
                await ch.basic_qos(prefetch_count=5, timeout=0.2)
            later = asyncio.ensure_future(ch.queue_purge(queue))
        finally:
            await asyncio.to_thread(node.resume)
        purged = await within(later)
        assert isinstance(purged, QueuePurgeOk)
        assert purged.message_count == 0
        ok = await within(ch.queue_declare(queue, passive=True))
        assert isinstance(ok, QueueDeclareOk)
        assert ok.queue == queue
        got = await within(ch.basic_get(queue))
        assert got is None
        assert ch.is_open and conn.is_open


def test_rpc_timeout_keeps_replies_in_order(
    front: Front, module_broker_node: BrokerNode
) -> None:
    front.run(rpc_timeout_scenario, module_broker_node)


async def memory_alarm_scenario(front: Front, node: BrokerNode) -> None:
    events: list[tuple[str, Any]] = []
    blocked = asyncio.Event()
    unblocked = asyncio.Event()

    def on_blocked(reason: str) -> None:
        events.append(("blocked", reason))
        blocked.set()

    def on_unblocked() -> None:
        events.append(("unblocked", None))
        unblocked.set()

    async with front.connect(node.url) as conn:
        conn.add_on_blocked_callback(on_blocked)
        conn.add_on_unblocked_callback(on_unblocked)
        ch = await within(conn.channel())
        queue = (await within(ch.queue_declare("", exclusive=True))).queue
        await within(ch.confirm_select())
        await within(await ch.basic_publish(b"before", routing_key=queue))
        assert not conn.blocked

        await asyncio.to_thread(node.set_memory_alarm, True)
        try:
            # RabbitMQ blocks a connection (and says connection.blocked) when
            # it next publishes under the alarm; that publish is held there.
            trigger = await within(ch.basic_publish(b"trigger", routing_key=queue))
            await within(blocked.wait(), 15)
            assert conn.blocked and conn.is_blocked and conn.is_open
            assert events[0][0] == "blocked"
            assert "memory" in events[0][1].lower()
            # Now the client itself holds further publishes back.
            publishing = asyncio.ensure_future(
                ch.basic_publish(b"during", routing_key=queue)
            )
            await asyncio.sleep(1.0)
            assert not publishing.done(), "publish went through a blocked connection"
            assert not trigger.done()
            assert conn.is_open and not unblocked.is_set()
        finally:
            await asyncio.to_thread(node.set_memory_alarm, False)
        await within(unblocked.wait(), 15)
        assert not conn.blocked and not conn.is_blocked
        assert [kind for kind, _ in events] == ["blocked", "unblocked"]
        confirmation = await within(publishing, 10)
        await within(trigger)
        await within(confirmation)
        got = [await within(ch.basic_get(queue, no_ack=True)) for _ in range(3)]
        bodies = [d.body for d in got if d is not None]
        assert bodies == [b"before", b"trigger", b"during"]


def test_memory_alarm_blocks_publishing(front: Front, broker_node: BrokerNode) -> None:
    front.run(memory_alarm_scenario, broker_node, timeout=90)


async def killed_node_scenario(front: Front, node: BrokerNode) -> None:
    closed: list[object] = []
    conn = await within(front.connect(node.url), 30)
    try:
        conn.add_on_close_callback(closed.append)
        ch = await within(conn.channel())
        other = await within(conn.channel())
        cancel_events: list[str] = []
        other.add_on_cancel_callback(cancel_events.append)
        queue = (await within(ch.queue_declare("", exclusive=True))).queue
        consumer = await within(other.basic_consume(queue))
        await within(ch.confirm_select())
        await ch.basic_publish(b"one", routing_key=queue)
        first = await next_delivery(consumer)  # consumer works, holds an unacked
        assert first.body == b"one"

        # Freeze the node so that the calls below stay pending, then kill it.
        await asyncio.to_thread(node.pause)
        pending_rpc = asyncio.ensure_future(ch.queue_declare(queue, passive=True))
        pending_get = asyncio.ensure_future(other.basic_get(queue))
        confirmations = [
            await ch.basic_publish(b"%d" % i, routing_key=queue) for i in range(5)
        ]
        pending_delivery = asyncio.ensure_future(anext(consumer))
        await asyncio.sleep(0.2)
        assert not any(f.done() for f in (pending_rpc, pending_get, pending_delivery))
        await asyncio.to_thread(node.kill)
        began = time.monotonic()
        error = await within(conn.closed, 5)
        assert time.monotonic() - began < 2.0
        assert isinstance(error, amqp_client.ConnectionLost)
        assert not isinstance(error, amqp_client.HeartbeatTimeout)
        assert node.address[0] in str(error) and str(node.port) in str(error)
        assert closed == [error]
        for pending in (pending_rpc, pending_get, *confirmations, pending_delivery):
            with pytest.raises(amqp_client.ConnectionLost):
                await within(pending, 1)
        assert ch.is_closed and other.is_closed
        with pytest.raises(amqp_client.ConnectionLost):
            await first.ack()
        with pytest.raises(amqp_client.ConnectionLost):
            await ch.basic_publish(b"late", routing_key=queue)
        with pytest.raises(amqp_client.ConnectionLost):
            await conn.channel()
        assert cancel_events == []
    finally:
        await within(conn.close())


def test_killed_node_fails_everything_pending(
    front: Front, broker_node: BrokerNode
) -> None:
    front.run(killed_node_scenario, broker_node)
