"""Connection options and message properties against the real broker."""

from __future__ import annotations

import asyncio
import datetime
import decimal

import pytest

import amqp_client
from amqp_client import BasicProperties
from tests.integration.helpers import Front, amqp_url, next_delivery, unique, within

pytestmark = pytest.mark.integration


async def options_scenario(front: Front) -> None:
    async with front.connect(
        auth_mechanism="AMQPLAIN",
        channel_max=3,
        frame_max=65536,
        heartbeat=20,
        connection_name=unique("conn"),
        client_properties={"product": "integration-test", "x-test": 1},
        locale="en_US",
    ) as conn:
        assert conn.is_open
        assert "amqp://guest:***@" in repr(conn)
        assert ":guest@" not in repr(conn)
        assert conn.server_properties["product"] == "RabbitMQ"
        capabilities = conn.server_properties["capabilities"]
        assert capabilities["publisher_confirms"] is True
        assert (conn.channel_max, conn.frame_max, conn.heartbeat) == (3, 65536, 20)
        channels = [await conn.channel() for _ in range(3)]
        with pytest.raises(amqp_client.UsageError):
            await conn.channel()
        await channels[1].close()
        again = await conn.channel()
        assert again.channel_id == 2


def test_connection_options(front: Front) -> None:
    front.run(options_scenario)


async def external_mechanism_scenario(front: Front) -> None:
    with pytest.raises(amqp_client.AuthenticationError) as info:
        await within(front.connect(auth_mechanism="EXTERNAL"))
    assert "EXTERNAL" in str(info.value)


def test_unoffered_auth_mechanism(front: Front) -> None:
    front.run(external_mechanism_scenario)


async def heartbeat_zero_scenario(front: Front) -> None:
    # RabbitMQ's negotiation (DESIGN, tune): if either side says 0 the larger
    # value wins, so heartbeat=0 (or None) takes the broker's proposal.
    async with front.connect(amqp_url()) as plain:
        broker_value = plain.heartbeat
    assert broker_value > 0
    async with front.connect(amqp_url(), heartbeat=0) as conn:
        assert conn.heartbeat == broker_value


def test_heartbeat_zero_takes_the_brokers_value(front: Front) -> None:
    front.run(heartbeat_zero_scenario)


async def url_scenario(front: Front) -> None:
    url = amqp_url()
    sep = "&" if "?" in url else "?"
    async with front.connect(
        url + sep + "heartbeat=7&frame_max=8192&channel_max=9&connection_timeout=5000"
    ) as conn:
        assert (conn.heartbeat, conn.frame_max, conn.channel_max) == (7, 8192, 9)
    # keyword arguments override the URL
    async with front.connect(url + sep + "heartbeat=7", heartbeat=11) as conn:
        assert conn.heartbeat == 11


def test_url_query_options(front: Front) -> None:
    front.run(url_scenario)


async def properties_scenario(front: Front) -> None:
    headers = {
        "str": "héllo",
        "int": 42,
        "neg": -7,
        "big": 2**40,
        "true": True,
        "false": False,
        "float": 1.5,
        "bytes": b"\x00\xff",
        "none": None,
        "dec": decimal.Decimal("3.14"),
        "ts": datetime.datetime(2024, 1, 2, 3, 4, 5, tzinfo=datetime.UTC),
        "list": [1, "a", [2, {"x": 1}], None],
        "table": {"k": {"n": [True]}},
    }
    props = BasicProperties(
        content_type="application/x-test",
        content_encoding="gzip",
        headers=headers,
        delivery_mode=2,
        priority=9,
        correlation_id="corr",
        reply_to="reply",
        expiration="60000",
        message_id="mid",
        timestamp=datetime.datetime(2024, 5, 6, 7, 8, 9, tzinfo=datetime.UTC),
        type="kind",
        user_id="guest",
        app_id="app",
    )
    async with front.connect() as conn:
        ch = await conn.channel()
        queue = (await ch.queue_declare("", exclusive=True)).queue
        await ch.basic_publish(b"body", routing_key=queue, properties=props)
        async with await ch.basic_consume(queue, no_ack=True) as consumer:
            delivery = await next_delivery(consumer)
        got = delivery.properties
        assert got == props
        for key, value in headers.items():
            assert type(got.headers[key]) is type(value), key
        # user_id must match the login (406 on the channel).
        await ch.basic_publish(
            b"x", routing_key=queue, properties=BasicProperties(user_id="mallory")
        )
        with pytest.raises(amqp_client.PreconditionFailedError):
            await within(ch.basic_qos(prefetch_count=1))
        assert conn.is_open


def test_properties_round_trip(front: Front) -> None:
    front.run(properties_scenario)


async def exclusivity_scenario(front: Front) -> None:
    async with front.connect() as conn, front.connect() as other:
        ch = await conn.channel()
        queue = (await ch.queue_declare(unique("excl"), exclusive=True)).queue
        och = await other.channel()
        with pytest.raises(amqp_client.ResourceLockedError) as info:
            await och.queue_declare(queue, passive=True)
        assert info.value.reply_code == 405
        await ch.basic_consume(queue, exclusive=True)
        ch2 = await conn.channel()
        with pytest.raises(amqp_client.AccessRefusedError) as refused:
            await ch2.basic_consume(queue)
        assert refused.value.reply_code == 403
        assert ch.is_open and conn.is_open and other.is_open
    # The exclusive queue went with its connection.
    async with front.connect() as conn:
        ch = await conn.channel()
        with pytest.raises(amqp_client.NotFoundError):
            await ch.queue_declare(queue, passive=True)


def test_exclusive_queue_and_consumer(front: Front) -> None:
    front.run(exclusivity_scenario)


async def consumer_on_clean_close_scenario(front: Front) -> None:
    conn = await within(front.connect())
    ch = await conn.channel()
    queue = (await ch.queue_declare("", exclusive=True)).queue
    consumer = await ch.basic_consume(queue)
    waiting = asyncio.ensure_future(anext(consumer))
    await asyncio.sleep(0.05)
    await conn.close()
    # The channel closed without an error: iteration just ends.
    with pytest.raises(StopAsyncIteration):
        await within(waiting)


async def consumer_on_channel_close_scenario(front: Front) -> None:
    async with front.connect() as conn:
        ch = await conn.channel()
        queue = (await ch.queue_declare("", exclusive=True)).queue
        consumer = await ch.basic_consume(queue)
        waiting = asyncio.ensure_future(anext(consumer))
        await asyncio.sleep(0.05)
        await ch.close()
        with pytest.raises(StopAsyncIteration):
            await within(waiting)


def test_channel_close_ends_consumer_iteration(front: Front) -> None:
    front.run(consumer_on_channel_close_scenario)


def test_clean_connection_close_ends_consumer_iteration(front: Front) -> None:
    front.run(consumer_on_clean_close_scenario)


async def tls_to_plain_port_scenario(front: Front) -> None:
    # amqps:// verifies by default and speaks TLS: against the plain AMQP
    # port the handshake fails, cleanly typed, with the address.
    url = amqp_url().replace("amqp://", "amqps://", 1)
    with pytest.raises(amqp_client.ConnectionLost) as info:
        await within(front.connect(url, connection_timeout=5), 10)
    assert "127.0.0.1:5672" in str(info.value)


def test_amqps_against_a_plain_port_fails_typed(front: Front) -> None:
    front.run(tls_to_plain_port_scenario)


async def empty_queue_name_scenario(front: Front) -> None:
    # AMQP 0-9-1: an empty queue name in queue.bind, basic.consume or
    # queue.delete means the queue declared last on the channel. Recovery
    # must record them under that queue's name, or it would restore a
    # binding of "" (refused) and a consumer of "".
    exchange = unique("last-queue")
    async with front.connect(recover=True) as conn:
        ch = await conn.channel()
        await ch.exchange_declare(exchange, "direct", auto_delete=True)
        ok = await ch.queue_declare("", exclusive=True)
        await ch.queue_bind("", exchange, "rk")
        consumer = await ch.basic_consume("")
        assert consumer.queue == ok.queue
        topology = conn.topology
        assert topology.queues == [ok.queue]
        assert topology.bindings == [(ok.queue, exchange, "rk")]
        await ch.basic_publish(b"x", exchange=exchange, routing_key="rk")
        delivery = await next_delivery(consumer)
        await delivery.ack()
        await ch.queue_unbind("", exchange, "rk")
        assert topology.bindings == []
        await consumer.cancel()
        await ch.queue_delete("")
        assert topology.queues == []
        await ch.exchange_delete(exchange)


def test_empty_queue_name_means_the_last_declared_queue(front: Front) -> None:
    front.run(empty_queue_name_scenario)
