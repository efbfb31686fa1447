"""Connection recovery and several endpoints, on RabbitMQ nodes of the
tests' own (the shared broker is never touched). Both fronts."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from amqp_client.spec import BasicProperties

import amqp_client
from tests.integration.helpers import Front, first_call, next_delivery, unique, within
from tests.support.broker import BrokerNode, free_ports

pytestmark = pytest.mark.fault

FAST = {"recovery_delay": 0.2, "recovery_max_delay": 1.0}


def _events(conn: Any) -> dict[str, asyncio.Future[Any]]:
    loop = asyncio.get_running_loop()
    events: dict[str, asyncio.Future[Any]] = {
        name: loop.create_future() for name in ("lost", "recovered")
    }
    conn.add_on_lost_callback(first_call(events["lost"]))
    conn.add_on_recovered_callback(first_call(events["recovered"]))
    return events


async def restore_scenario(front: Front, node: BrokerNode, graceful: bool) -> None:
    conn = await within(front.connect(node.url, recover=True, **FAST), 30)
    try:
        events = _events(conn)
        failed: list[tuple[str, Any]] = []
        conn.add_on_recovery_error_callback(lambda *a: failed.append(a))
        ch = await within(conn.channel())
        await within(ch.basic_qos(prefetch_count=5))
        await within(ch.confirm_select())
        exchange = unique("x")
        upstream = unique("up")
        await within(ch.exchange_declare(exchange, "direct"))
        await within(ch.exchange_declare(upstream, "fanout"))
        await within(ch.exchange_bind(exchange, upstream, "rk"))
        old = (await within(ch.queue_declare("", exclusive=True))).queue
        await within(ch.queue_bind(old, exchange, "rk"))
        consumer = await within(ch.basic_consume(old))
        tag = consumer.consumer_tag

        await within(ch.basic_publish(b"before", exchange=upstream, routing_key="rk"))
        first = await next_delivery(consumer)
        assert first.body == b"before"
        await first.ack()

        # An unacked delivery when the broker goes.
        await within(ch.basic_publish(b"unacked", exchange=exchange, routing_key="rk"))
        unacked = await next_delivery(consumer)
        if graceful:
            await asyncio.to_thread(node.restart, graceful=True)
        else:
            await asyncio.to_thread(node.kill)
            await asyncio.to_thread(node.start)
        lost = await within(events["lost"], 30)
        assert isinstance(lost, amqp_client.ConnectionLost)
        await within(events["recovered"], 60)
        assert not conn.is_recovering
        assert failed == []

        # The exclusive server-named queue came back under a new name; the
        # binding and the consumer followed it; the channel is still in
        # confirm mode (the publish below returns a confirmation).
        assert consumer.queue != old
        assert consumer.consumer_tag == tag
        topology = conn.topology
        assert consumer.queue in topology.queues and old not in topology.queues
        assert (consumer.queue, exchange, "rk") in topology.bindings
        await unacked.ack()  # a dead tag: not sent (it would close the channel)
        confirmation = await within(
            ch.basic_publish(b"after", exchange=upstream, routing_key="rk")
        )
        assert confirmation is not None
        await within(confirmation)
        second = await next_delivery(consumer)
        assert second.body == b"after"
        await second.ack()
        assert ch.is_open

        # Deleting through the client removes it from recovery.
        await within(ch.exchange_unbind(exchange, upstream, "rk"))
        await within(ch.exchange_delete(upstream))
        assert upstream not in conn.topology.exchanges
        assert conn.topology.exchange_bindings == []
        await within(consumer.cancel())
        await within(ch.queue_delete(consumer.queue))
        await within(ch.exchange_delete(exchange))
        assert conn.topology.queues == []
        assert conn.topology.exchanges == []
        assert conn.topology.bindings == []
    finally:
        await within(conn.close())


@pytest.mark.parametrize("graceful", [True, False], ids=["restart", "kill"])
def test_recovery_restores_channels_topology_and_consumers(
    front: Front, broker_node: BrokerNode, graceful: bool
) -> None:
    front.run(restore_scenario, broker_node, graceful, timeout=110)


async def pending_scenario(front: Front, node: BrokerNode) -> None:
    conn = await within(front.connect(node.url, recover=True, **FAST), 30)
    try:
        events = _events(conn)
        ch = await within(conn.channel())
        await within(ch.confirm_select())
        queue = unique("durable")
        await within(ch.queue_declare(queue, durable=True))
        props = BasicProperties(delivery_mode=2)
        await within(
            await within(ch.basic_publish(b"kept", routing_key=queue, properties=props))
        )
        consumer = await within(ch.basic_consume(queue))
        delivery = await next_delivery(consumer)
        assert delivery.body == b"kept"
        # The kill below can come within milliseconds of the declaration,
        # before Mnesia has written it out: the node then boots with no
        # queue (its log says "Recovering 0 queues"), the client's restore
        # declares a new, empty one, and nothing can come again. Make the
        # broker's own durability no part of what is tested.
        await asyncio.to_thread(node.eval, "mnesia:dump_log().")
        await asyncio.to_thread(node.pause)
        # Published while the broker is frozen: never confirmed.
        confirmation = await within(ch.basic_publish(b"lost", routing_key=queue))
        await asyncio.to_thread(node.kill)
        with pytest.raises(amqp_client.ConnectionLost):
            await within(confirmation, 30)
        await asyncio.to_thread(node.start)
        await within(events["recovered"], 60)
        await delivery.ack()  # stale: ignored
        again = await next_delivery(consumer, 30)
        assert again.body == b"kept"
        await again.ack()
        await within(ch.queue_delete(queue))
    finally:
        await within(conn.close())


def test_pending_confirms_fail_and_stale_deliveries_come_again(
    front: Front, broker_node: BrokerNode
) -> None:
    front.run(pending_scenario, broker_node, timeout=110)


async def close_while_recovering_scenario(front: Front, node: BrokerNode) -> None:
    conn = await within(front.connect(node.url, recover=True, **FAST), 30)
    try:
        events = _events(conn)
        ch = await within(conn.channel())
        await asyncio.to_thread(node.stop)
        await within(events["lost"], 30)
        assert conn.is_recovering
        # A call made meanwhile waits for recovery; close() ends both.
        waiting = asyncio.ensure_future(ch.queue_declare("", exclusive=True))
        await asyncio.sleep(0.5)
        assert not waiting.done()
        began = time.monotonic()
        await within(conn.close(), 15)
        assert time.monotonic() - began < 5
        assert await within(conn.closed) is None
        with pytest.raises(amqp_client.ConnectionClosed):
            await within(waiting)
        assert not events["recovered"].done()
    finally:
        await within(conn.close())


def test_close_stops_recovery(front: Front, broker_node: BrokerNode) -> None:
    front.run(close_while_recovering_scenario, broker_node, timeout=110)


async def endpoints_scenario(front: Front, node: BrokerNode) -> None:
    dead = [f"127.0.0.1:{port}" for port in free_ports(2)]
    conn = await within(
        front.connect(
            f"amqp://guest:guest@{dead[0]}/%2f",
            hosts=[dead[1], f"127.0.0.1:{node.address[1]}"],
        ),
        30,
    )
    try:
        ch = await within(conn.channel())
        await within(ch.queue_declare("", exclusive=True))
    finally:
        await within(conn.close())
    with pytest.raises(amqp_client.ConnectionLost) as info:
        await within(
            front.connect([f"amqp://guest:guest@{address}/%2f" for address in dead]), 30
        )
    message = str(info.value)
    assert all(address in message for address in dead), message
    # The failures are listed in the order tried: the URLs' order.
    assert message.index(f"{dead[0]}: ") < message.index(f"{dead[1]}: "), message
    assert "guest:guest" not in message


def test_several_endpoints_tried_in_order(
    front: Front, broker_node: BrokerNode
) -> None:
    front.run(endpoints_scenario, broker_node, timeout=60)


async def channel_closed_while_down_scenario(front: Front, node: BrokerNode) -> None:
    conn = await within(front.connect(node.url, recover=True, **FAST), 30)
    try:
        events = _events(conn)
        keep = await within(conn.channel())
        drop = await within(conn.channel())
        await asyncio.to_thread(node.stop)
        await within(events["lost"], 30)
        await within(drop.close(), 5)  # no broker to hand-shake with
        assert drop.is_closed
        await asyncio.to_thread(node.start)
        await within(events["recovered"], 60)
        assert keep.is_open and drop.is_closed
        await within(keep.queue_declare("", exclusive=True))
        with pytest.raises(amqp_client.ChannelClosed):
            await within(drop.queue_declare("", exclusive=True))
        # Its id is free again on the new connection.
        again = await within(conn.channel())
        assert again.channel_id == drop.channel_id
    finally:
        await within(conn.close())


def test_a_channel_closed_while_down_is_not_restored(
    front: Front, broker_node: BrokerNode
) -> None:
    front.run(channel_closed_while_down_scenario, broker_node, timeout=110)
