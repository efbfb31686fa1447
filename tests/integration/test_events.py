"""Broker-initiated events: returns, confirms, consumer cancel notifications,
direct reply-to, heartbeats."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from amqp_client.spec import ConfirmSelectOk

import amqp_client
from amqp_client import BasicProperties
from tests.integration.helpers import (
    Front,
    first_call,
    next_delivery,
    resources,
    unique,
    within,
)

pytestmark = pytest.mark.integration


async def mandatory_return_scenario(front: Front) -> None:
    async with resources(front) as res, front.connect() as conn:
        queue = res.queue()
        ch = await conn.channel()
        await ch.queue_declare(queue)
        returned: list[Any] = []
        ch.add_on_return_callback(returned.append)
        assert isinstance(await ch.confirm_select(), ConfirmSelectOk)
        unroutable = unique("nowhere")
        props = BasicProperties(message_id="m-1", headers={"h": 1})

        # Routable mandatory publishes before and after: acked as usual.
        before = await ch.basic_publish(b"ok-1", routing_key=queue, mandatory=True)
        lost = await ch.basic_publish(
            b"lost body", routing_key=unroutable, mandatory=True, properties=props
        )
        after = await ch.basic_publish(b"ok-2", routing_key=queue, mandatory=True)
        assert await within(before) is None
        with pytest.raises(amqp_client.MessageReturned) as info:
            await within(lost)
        assert await within(after) is None

        error = info.value
        assert error.reply_code == 312  # NO_ROUTE
        assert "NO_ROUTE" in error.reply_text
        message: Any = error.message
        assert message.body == b"lost body"
        assert message.routing_key == unroutable
        assert message.exchange == ""
        assert message.properties.message_id == "m-1"
        assert dict(message.properties.headers) == {"h": 1}
        assert len(returned) == 1
        assert returned[0].body == b"lost body"
        assert returned[0].routing_key == unroutable
        assert returned[0].reply_code == 312

        # A non-mandatory unroutable publish is silently dropped (acked).
        dropped = await ch.basic_publish(b"dropped", routing_key=unroutable)
        assert await within(dropped) is None
        assert len(returned) == 1
        assert ch.is_open


def test_mandatory_unroutable_raises_message_returned(front: Front) -> None:
    front.run(mandatory_return_scenario)


async def return_without_confirms_scenario(front: Front) -> None:
    async with front.connect() as conn:
        ch = await conn.channel()
        got: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        ch.add_on_return_callback(first_call(got))
        key = unique("nowhere")
        assert await ch.basic_publish(b"back", routing_key=key, mandatory=True) is None
        message = await within(got)
        assert (message.body, message.routing_key) == (b"back", key)
        assert message.reply_code == 312


def test_return_callback_without_confirm_mode(front: Front) -> None:
    front.run(return_without_confirms_scenario)


async def confirm_nowait_scenario(front: Front) -> None:
    async with resources(front) as res, front.connect() as conn:
        queue = res.queue()
        ch = await conn.channel()
        await ch.queue_declare(queue)
        # nowait: no confirm.select-ok comes, so nothing may wait for one.
        assert await within(ch.confirm_select(nowait=True), 3) is None
        confirmation = await ch.basic_publish(b"c", routing_key=queue)
        assert confirmation is not None
        assert confirmation.delivery_tag == 1
        assert await within(confirmation) is None
        ok = await within(ch.queue_declare(queue, passive=True))
        assert ok.message_count == 1


def test_confirm_select_nowait(front: Front) -> None:
    front.run(confirm_nowait_scenario)


async def confirm_after_tx_scenario(front: Front) -> None:
    async with front.connect() as conn:
        tx = await conn.channel()
        await tx.tx_select()
        # confirm.select on a transactional channel is refused (406).
        with pytest.raises(amqp_client.PreconditionFailedError):
            await within(tx.confirm_select())
        assert tx.is_closed
        ch = await conn.channel()
        assert isinstance(await ch.confirm_select(), ConfirmSelectOk)
        with pytest.raises(amqp_client.PreconditionFailedError):
            await within(ch.tx_select())
        assert conn.is_open


def test_confirm_and_tx_are_exclusive(front: Front) -> None:
    front.run(confirm_after_tx_scenario)


async def queue_deleted_under_consumer_scenario(front: Front) -> None:
    async with resources(front) as res, front.connect() as conn:
        queue = res.queue()
        ch = await conn.channel()
        await ch.queue_declare(queue)
        cancelled: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        ch.add_on_cancel_callback(first_call(cancelled))
        consumer = await ch.basic_consume(queue)
        await ch.basic_publish(b"before", routing_key=queue)
        first = await next_delivery(consumer)
        assert first.body == b"before"
        await first.ack()

        admin = await conn.channel()
        await admin.queue_delete(queue)
        assert await within(cancelled) == consumer.consumer_tag
        with pytest.raises(StopAsyncIteration):
            await within(anext(consumer))
        await consumer.cancel()  # nothing left to cancel; no error
        # The channel lives on.
        assert ch.is_open
        ok = await ch.queue_declare("", exclusive=True)
        assert ok.queue


def test_queue_deleted_under_consumer_ends_iteration(front: Front) -> None:
    front.run(queue_deleted_under_consumer_scenario)


async def direct_reply_to_scenario(front: Front) -> None:
    async with resources(front) as res, front.connect() as conn:
        rpc_queue = res.queue("rpc")
        server_ch = await conn.channel()
        await server_ch.queue_declare(rpc_queue)
        server = await server_ch.basic_consume(rpc_queue)

        async def serve(count: int) -> None:
            for _ in range(count):
                request = await next_delivery(server)
                reply_to = request.properties.reply_to
                assert reply_to.startswith("amq.rabbitmq.reply-to.")
                await server_ch.basic_publish(
                    request.body.upper(),
                    routing_key=reply_to,
                    properties=BasicProperties(
                        correlation_id=request.properties.correlation_id
                    ),
                )
                await request.ack()

        server_task = asyncio.ensure_future(serve(3))
        try:
            client_ch = await conn.channel()
            replies = await client_ch.basic_consume(
                "amq.rabbitmq.reply-to", no_ack=True
            )
            answers = {}
            for i, word in enumerate((b"alpha", b"beta", b"gamma")):
                await client_ch.basic_publish(
                    word,
                    routing_key=rpc_queue,
                    properties=BasicProperties(
                        reply_to="amq.rabbitmq.reply-to", correlation_id=str(i)
                    ),
                )
            for _ in range(3):
                reply = await next_delivery(replies)
                answers[reply.properties.correlation_id] = reply.body
            assert answers == {"0": b"ALPHA", "1": b"BETA", "2": b"GAMMA"}
            await within(server_task)
            await replies.cancel()
            await server.cancel()
        finally:
            server_task.cancel()
            await asyncio.gather(server_task, return_exceptions=True)


def test_direct_reply_to_round_trip(front: Front) -> None:
    front.run(direct_reply_to_scenario)


async def idle_heartbeat_scenario(front: Front) -> None:
    closed: list[object] = []
    async with front.connect(heartbeat=1) as conn:
        conn.add_on_close_callback(closed.append)
        assert conn.heartbeat == 1
        await asyncio.sleep(5.0)  # the broker drops us after ~2 s of silence
        assert conn.is_open
        assert not conn.closed.done()
        ch = await within(conn.channel())
        await within(ch.basic_qos(prefetch_count=1))
    assert closed == [None]


def test_heartbeat_keeps_idle_connection_open(front: Front) -> None:
    front.run(idle_heartbeat_scenario)


async def nack_scenario(front: Front) -> None:
    """A queue that rejects publishes when full makes the broker nack."""
    async with front.connect() as conn:
        ch = await conn.channel()
        ok = await ch.queue_declare(
            "",
            exclusive=True,
            arguments={"x-max-length": 1, "x-overflow": "reject-publish"},
        )
        await ch.confirm_select()
        verdicts: list[tuple[int, bool]] = []
        ch.add_on_confirm_callback(lambda tag, acked: verdicts.append((tag, acked)))
        kept = await ch.basic_publish(b"1", routing_key=ok.queue)
        rejected = await ch.basic_publish(b"2", routing_key=ok.queue)
        assert await within(kept) is None
        with pytest.raises(amqp_client.MessageNacked) as info:
            await within(rejected)
        assert info.value.delivery_tag == rejected.delivery_tag == 2
        assert verdicts == [(1, True), (2, False)]
        assert ch.is_open


def test_broker_nack_raises_message_nacked(front: Front) -> None:
    front.run(nack_scenario)


async def immediate_scenario(front: Front) -> None:
    """RabbitMQ does not implement immediate=True: 540 on the connection."""
    async with front.connect() as conn:
        ch = await conn.channel()
        await ch.basic_publish(b"i", routing_key=unique("q"), immediate=True)
        error = await within(conn.closed)
        assert isinstance(error, amqp_client.AMQPNotImplementedError)
        assert (error.reply_code, error.class_id, error.method_id) == (540, 60, 40)
        with pytest.raises(amqp_client.AMQPNotImplementedError):
            await ch.basic_publish(b"again")


def test_immediate_publish_is_not_implemented(front: Front) -> None:
    front.run(immediate_scenario)
