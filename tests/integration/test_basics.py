"""The everyday API against a real broker: declare, bind, publish, get,
consume, acknowledge, transactions, QoS, closing (DESIGN.md §4)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from amqp_client.spec import (
    BasicCancelOk,
    BasicQosOk,
    ExchangeBindOk,
    ExchangeDeclareOk,
    ExchangeDeleteOk,
    ExchangeUnbindOk,
    QueueBindOk,
    QueueDeclareOk,
    QueueDeleteOk,
    QueuePurgeOk,
    QueueUnbindOk,
    TxCommitOk,
    TxRollbackOk,
    TxSelectOk,
)

import amqp_client
from amqp_client import BasicProperties
from tests.integration.helpers import (
    Front,
    amqp_url,
    next_delivery,
    no_delivery,
    ready_count,
    resources,
    wait_count,
    within,
)

pytestmark = pytest.mark.integration


# --- DESIGN §4's example, as written (with a unique exchange name) ------------


async def example_flow(front: Front) -> None:
    async with resources(front) as res:
        logs = res.exchange("logs")
        async with front.connect(url_with_query("heartbeat=30")) as conn:
            assert conn.heartbeat == 30
            ch = await conn.channel()
            await ch.exchange_declare(logs, "fanout", durable=True)
            ok = await ch.queue_declare("", exclusive=True)
            assert isinstance(ok, QueueDeclareOk)
            assert ok.queue.startswith("amq.gen-")
            await ch.queue_bind(ok.queue, logs, routing_key="")
            await ch.basic_publish(
                b"hi",
                exchange=logs,
                routing_key="",
                properties=amqp_client.BasicProperties(content_type="text/plain"),
            )
            async with await ch.basic_consume(ok.queue) as consumer:
                async with asyncio.timeout(10):
                    async for delivery in consumer:
                        await delivery.ack()
                        break
            assert delivery.body == b"hi"
            assert delivery.properties.content_type == "text/plain"
            assert delivery.exchange == logs
            assert delivery.routing_key == ""
            assert delivery.consumer_tag == consumer.consumer_tag
            assert delivery.redelivered is False
            assert await ready_count(conn, ok.queue) == 0


def url_with_query(query: str) -> str:
    url = amqp_url()
    return url + ("&" if "?" in url else "?") + query


def test_design_example_flow(front: Front) -> None:
    front.run(example_flow)


# --- basic.get ----------------------------------------------------------------


async def get_scenario(front: Front) -> None:
    async with resources(front) as res, front.connect() as conn:
        queue = res.queue()
        ch = await conn.channel()
        await ch.queue_declare(queue)
        assert await ch.basic_get(queue) is None  # empty: basic.get-empty
        props = BasicProperties(
            content_type="application/json",
            correlation_id="c-1",
            headers={"k": "v", "n": 7},
            delivery_mode=2,
            priority=3,
        )
        for body in (b"one", b"two", b"three"):
            await ch.basic_publish(body, routing_key=queue, properties=props)
        first = await within(_get_when_ready(ch, queue))
        assert first.body == b"one"
        assert first.message_count == 2  # left in the queue
        assert first.routing_key == queue
        assert first.exchange == ""
        assert first.redelivered is False
        assert first.consumer_tag == ""
        assert first.properties.content_type == "application/json"
        assert first.properties.correlation_id == "c-1"
        assert dict(first.properties.headers) == {"k": "v", "n": 7}
        assert first.properties.delivery_mode == 2
        assert first.properties.priority == 3
        await first.ack()
        second = await ch.basic_get(queue, no_ack=True)
        assert second is not None
        assert (second.body, second.message_count) == (b"two", 1)
        third = await ch.basic_get(queue, no_ack=True)
        assert third is not None
        assert (third.body, third.message_count) == (b"three", 0)
        assert await ch.basic_get(queue) is None
        ok = await ch.queue_delete(queue)
        assert isinstance(ok, QueueDeleteOk)
        assert ok.message_count == 0


async def _get_when_ready(ch: Any, queue: str) -> Any:
    """basic.get until a message is there (publishing is asynchronous)."""
    while True:
        delivery = await ch.basic_get(queue)
        if delivery is not None:
            return delivery
        await asyncio.sleep(0.01)


def test_basic_get_returns_delivery_or_none(front: Front) -> None:
    front.run(get_scenario)


# --- consumers ------------------------------------------------------------------


async def consumer_scenario(front: Front) -> None:
    async with resources(front) as res, front.connect() as conn:
        queue = res.queue()
        ch = await conn.channel()
        await ch.queue_declare(queue)
        async with await ch.basic_consume(queue, consumer_tag="ctag-1") as consumer:
            assert consumer.consumer_tag == "ctag-1"
            for i in range(3):
                await ch.basic_publish(b"m%d" % i, routing_key=queue)
            bodies = []
            for _ in range(3):
                delivery = await next_delivery(consumer)
                bodies.append(delivery.body)
                await delivery.ack()
            assert bodies == [b"m0", b"m1", b"m2"]
        # async with cancelled the consumer: iteration is over, and new
        # messages stay in the queue.
        with pytest.raises(StopAsyncIteration):
            await within(anext(consumer))
        await ch.basic_publish(b"after", routing_key=queue)
        got = await within(_get_when_ready(ch, queue))
        assert got.body == b"after"
        await got.ack()

        # basic_cancel by tag (the spec method) ends iteration too.
        consumer2 = await ch.basic_consume(queue)
        assert consumer2.consumer_tag.startswith("amq.ctag-")
        ok = await ch.basic_cancel(consumer2.consumer_tag)
        assert isinstance(ok, BasicCancelOk)
        assert ok.consumer_tag == consumer2.consumer_tag
        with pytest.raises(StopAsyncIteration):
            await within(anext(consumer2))

        # cancel() is idempotent; a consumer on a missing queue is a 404.
        await consumer2.cancel()
        with pytest.raises(amqp_client.NotFoundError):
            await ch.basic_consume(queue + ".missing")
        assert ch.is_closed


def test_consumer_async_with_cancels(front: Front) -> None:
    front.run(consumer_scenario)


async def no_ack_consumer_scenario(front: Front) -> None:
    async with resources(front) as res, front.connect() as conn:
        queue = res.queue()
        ch = await conn.channel()
        await ch.queue_declare(queue)
        async with await ch.basic_consume(queue, no_ack=True) as consumer:
            await ch.basic_publish(b"x", routing_key=queue)
            delivery = await next_delivery(consumer)
            assert delivery.body == b"x"
        # Nothing is unacked: closing the channel requeues nothing.
        await ch.close()
        assert await ready_count(conn, queue) == 0


def test_no_ack_consumer(front: Front) -> None:
    front.run(no_ack_consumer_scenario)


# --- ack / nack / reject ------------------------------------------------------------


async def settle_scenario(front: Front) -> None:
    async with resources(front) as res, front.connect() as conn:
        queue = res.queue()
        ch = await conn.channel()
        await ch.queue_declare(queue)
        await ch.basic_publish(b"a", routing_key=queue)
        await ch.basic_publish(b"b", routing_key=queue)

        # reject(requeue=True) puts it back, at the head: redelivered.
        first = await within(_get_when_ready(ch, queue))
        assert (first.body, first.redelivered) == (b"a", False)
        await first.reject(requeue=True)
        again = await within(_get_when_ready(ch, queue))
        assert (again.body, again.redelivered) == (b"a", True)
        # nack(requeue=True) too.
        await again.nack(requeue=True)
        third = await within(_get_when_ready(ch, queue))
        assert (third.body, third.redelivered) == (b"a", True)
        # nack(requeue=False) drops it.
        await third.nack(requeue=False)
        b = await within(_get_when_ready(ch, queue))
        assert (b.body, b.redelivered) == (b"b", False)
        # reject(requeue=False) drops it.
        await b.reject(requeue=False)
        assert await ch.basic_get(queue) is None
        assert await ready_count(conn, queue) == 0

        # ack(multiple=True) settles every earlier delivery of the channel.
        for body in (b"1", b"2", b"3"):
            await ch.basic_publish(body, routing_key=queue)
        got = [await within(_get_when_ready(ch, queue)) for _ in range(3)]
        await got[-1].ack(multiple=True)
        await ch.close()  # nothing unacked left to requeue
        assert await ready_count(conn, queue) == 0


def test_ack_nack_reject_semantics(front: Front) -> None:
    front.run(settle_scenario)


async def spec_settle_scenario(front: Front) -> None:
    """The generated basic_ack/basic_nack/basic_reject with delivery tags."""
    async with resources(front) as res, front.connect() as conn:
        queue = res.queue()
        ch = await conn.channel()
        await ch.queue_declare(queue)
        for body in (b"1", b"2", b"3", b"4", b"5"):
            await ch.basic_publish(body, routing_key=queue)
        got = [await within(_get_when_ready(ch, queue)) for _ in range(5)]
        assert [d.body for d in got] == [b"1", b"2", b"3", b"4", b"5"]
        await ch.basic_ack(got[0].delivery_tag)  # 1 acked
        await ch.basic_reject(got[1].delivery_tag, requeue=True)  # 2 back
        await ch.basic_nack(got[2].delivery_tag, requeue=False)  # 3 dropped
        # 4 and 5: nack multiple with requeue puts both back.
        await ch.basic_nack(got[4].delivery_tag, multiple=True, requeue=True)
        back = [await within(_get_when_ready(ch, queue)) for _ in range(3)]
        assert sorted(d.body for d in back) == [b"2", b"4", b"5"]
        assert all(d.redelivered for d in back)
        await ch.basic_reject(back[0].delivery_tag)  # spec default: drop
        await ch.basic_ack(back[2].delivery_tag, multiple=True)
        assert await ch.basic_get(queue) is None
        await ch.close()
        assert await ready_count(conn, queue) == 0


def test_spec_ack_nack_reject_by_tag(front: Front) -> None:
    front.run(spec_settle_scenario)


async def recover_scenario(front: Front) -> None:
    async with resources(front) as res, front.connect() as conn:
        queue = res.queue()
        ch = await conn.channel()
        await ch.queue_declare(queue)
        await ch.basic_publish(b"r", routing_key=queue)
        first = await within(_get_when_ready(ch, queue))
        assert first.redelivered is False
        # basic.recover requeue=True: unacked deliveries go back to the queue.
        await ch.basic_recover(requeue=True)
        second = await within(_get_when_ready(ch, queue))
        assert (second.body, second.redelivered) == (b"r", True)
        # basic.recover-async requeue=True: the same, without a reply; the
        # next method on the channel is handled after it.
        await ch.basic_recover_async(requeue=True)
        third = await within(_get_when_ready(ch, queue))
        assert (third.body, third.redelivered) == (b"r", True)
        await third.ack()
        assert ch.is_open


def test_basic_recover_requeue(front: Front) -> None:
    front.run(recover_scenario)


async def recover_no_requeue_scenario(front: Front, use_async: bool) -> None:
    """RabbitMQ implements neither recover nor recover-async with
    requeue=False: it closes the connection with 540 NOT_IMPLEMENTED."""
    async with front.connect() as conn:
        ch = await conn.channel()
        if use_async:
            await ch.basic_recover_async(requeue=False)
            error = await within(conn.closed)
        else:
            with pytest.raises(amqp_client.AMQPNotImplementedError) as info:
                await within(ch.basic_recover(requeue=False))
            error = await within(conn.closed)
            assert error is info.value
        assert isinstance(error, amqp_client.AMQPNotImplementedError)
        assert isinstance(error, amqp_client.ConnectionClosed)
        assert error.reply_code == 540
        assert (error.class_id, error.method_id) == (60, 100 if use_async else 110)
        assert not conn.is_open
        with pytest.raises(amqp_client.AMQPNotImplementedError):
            await conn.channel()


@pytest.mark.parametrize("use_async", [False, True], ids=["recover", "recover_async"])
def test_basic_recover_without_requeue_is_not_implemented(
    front: Front, use_async: bool
) -> None:
    front.run(recover_no_requeue_scenario, use_async)


# --- channel.flow -------------------------------------------------------------------


async def flow_scenario(front: Front) -> None:
    async with front.connect() as conn:
        ch = await conn.channel()
        ok = await ch.channel_flow(active=True)
        assert ok.active is True
        assert await ch.flow(True) is True
        assert ch.is_open


def test_channel_flow_active(front: Front) -> None:
    front.run(flow_scenario)


async def flow_off_scenario(front: Front) -> None:
    """RabbitMQ refuses channel.flow active=false from a client: it closes
    the connection with 540 NOT_IMPLEMENTED."""
    async with front.connect() as conn:
        ch = await conn.channel()
        other = await conn.channel()
        with pytest.raises(amqp_client.AMQPNotImplementedError) as info:
            await within(ch.channel_flow(active=False))
        assert info.value.reply_code == 540
        assert (info.value.class_id, info.value.method_id) == (20, 20)
        assert await within(conn.closed) is info.value
        assert ch.is_closed and other.is_closed
        with pytest.raises(amqp_client.AMQPNotImplementedError):
            await other.basic_qos(0, 1)


def test_channel_flow_inactive_is_not_implemented(front: Front) -> None:
    front.run(flow_off_scenario)


# --- exchanges and bindings ------------------------------------------------------------


async def exchange_scenario(front: Front) -> None:
    async with resources(front) as res, front.connect() as conn:
        src, dst = res.exchange("src"), res.exchange("dst")
        queue = res.queue()
        ch = await conn.channel()
        assert isinstance(await ch.exchange_declare(src, "topic"), ExchangeDeclareOk)
        assert await ch.exchange_declare(dst, "fanout", no_wait=True) is None
        # passive declare checks that it exists (the no-wait declare above too).
        assert isinstance(
            await ch.exchange_declare(dst, "fanout", passive=True), ExchangeDeclareOk
        )
        await ch.queue_declare(queue)
        assert isinstance(await ch.queue_bind(queue, dst), QueueBindOk)
        assert isinstance(await ch.exchange_bind(dst, src, "a.#"), ExchangeBindOk)
        await ch.confirm_select()

        async def published(routing_key: str, exchange: str = src) -> None:
            confirmation = await ch.basic_publish(
                routing_key.encode(), exchange=exchange, routing_key=routing_key
            )
            await within(confirmation)  # routed (or dropped) by now

        await published("a.b")
        await published("b.a")  # does not match a.#
        assert await ready_count(conn, queue) == 1
        assert isinstance(await ch.exchange_unbind(dst, src, "a.#"), ExchangeUnbindOk)
        await published("a.c")
        assert await ready_count(conn, queue) == 1
        # exchange.bind / unbind with no_wait; a later RPC orders after them.
        assert await ch.exchange_bind(dst, src, "#", no_wait=True) is None
        await published("z")
        assert await ready_count(conn, queue) == 2
        assert await ch.exchange_unbind(dst, src, "#", no_wait=True) is None
        await published("y")
        assert await ready_count(conn, queue) == 2

        # queue.unbind: the direct route is gone.
        assert isinstance(await ch.queue_unbind(queue, dst), QueueUnbindOk)
        await published("lost", dst)
        assert await ready_count(conn, queue) == 2
        assert await ch.queue_bind(queue, dst, no_wait=True) is None
        await published("found", dst)
        assert await ready_count(conn, queue) == 3

        # exchange.delete if-unused refuses while dst has a binding (406),
        # which closes that channel only.
        with pytest.raises(amqp_client.PreconditionFailedError):
            await ch.exchange_delete(dst, if_unused=True)
        assert ch.is_closed
        ch = await conn.channel()
        assert isinstance(await ch.exchange_delete(src), ExchangeDeleteOk)
        assert await ch.exchange_delete(dst, no_wait=True) is None
        with pytest.raises(amqp_client.NotFoundError) as info:
            await ch.exchange_declare(dst, "fanout", passive=True)
        assert info.value.reply_code == 404
        assert conn.is_open


def test_exchanges_and_bindings(front: Front) -> None:
    front.run(exchange_scenario)


async def queue_scenario(front: Front) -> None:
    async with resources(front) as res, front.connect() as conn:
        queue, queue2 = res.queue(), res.queue()
        ch = await conn.channel()
        ok = await ch.queue_declare(queue, durable=True, arguments={"x-max-length": 50})
        assert (ok.queue, ok.message_count, ok.consumer_count) == (queue, 0, 0)
        assert await ch.queue_declare(queue2, no_wait=True) is None
        for i in range(4):
            await ch.basic_publish(b"%d" % i, routing_key=queue)
        ok = await ch.queue_declare(queue, passive=True)
        while ok.message_count < 4:  # publishes are asynchronous
            await asyncio.sleep(0.01)
            ok = await ch.queue_declare(queue, passive=True)
        assert ok.message_count == 4
        purged = await ch.queue_purge(queue)
        assert isinstance(purged, QueuePurgeOk)
        assert purged.message_count == 4
        await ch.basic_publish(b"x", routing_key=queue)
        assert await ch.queue_purge(queue, no_wait=True) is None
        assert (await ch.queue_declare(queue, passive=True)).message_count == 0

        consumer = await ch.basic_consume(queue)
        assert (await ch.queue_declare(queue, passive=True)).consumer_count == 1
        # queue.delete if-unused refuses while a consumer is on it (406).
        with pytest.raises(amqp_client.PreconditionFailedError):
            await ch.queue_delete(queue, if_unused=True)
        ch = await conn.channel()
        await ch.basic_publish(b"x", routing_key=queue)
        while (await ch.queue_declare(queue, passive=True)).message_count < 1:
            await asyncio.sleep(0.01)
        # ... and if-empty while it holds a message.
        with pytest.raises(amqp_client.PreconditionFailedError):
            await ch.queue_delete(queue, if_empty=True)
        ch = await conn.channel()
        deleted = await ch.queue_delete(queue)
        assert deleted.message_count == 1
        assert await ch.queue_delete(queue2, no_wait=True) is None
        with pytest.raises(amqp_client.NotFoundError):
            await ch.queue_declare(queue2, passive=True)
        del consumer


def test_queue_declare_purge_delete(front: Front) -> None:
    front.run(queue_scenario)


# --- transactions ---------------------------------------------------------------------


async def tx_scenario(front: Front) -> None:
    async with resources(front) as res, front.connect() as conn:
        queue = res.queue()
        ch = await conn.channel()
        await ch.queue_declare(queue)
        assert isinstance(await ch.tx_select(), TxSelectOk)
        await ch.basic_publish(b"t1", routing_key=queue)
        await ch.basic_publish(b"t2", routing_key=queue)
        # Nothing is visible before the commit.
        assert await ready_count(conn, queue) == 0
        assert isinstance(await ch.tx_commit(), TxCommitOk)
        assert await ready_count(conn, queue) == 2
        await ch.basic_publish(b"t3", routing_key=queue)
        assert isinstance(await ch.tx_rollback(), TxRollbackOk)
        assert await ready_count(conn, queue) == 2

        # Acks are transactional too: a rolled-back ack leaves the message
        # unacked (a channel close requeues it); a committed one removes it.
        got = await ch.basic_get(queue)
        assert got is not None and got.body == b"t1"
        await got.ack()
        await ch.tx_rollback()
        await ch.close()
        await wait_count(conn, queue, 2)  # the broker requeues asynchronously
        ch = await conn.channel()
        await ch.tx_select()
        got = await ch.basic_get(queue)
        assert got is not None
        await got.ack()
        await ch.tx_commit()
        await ch.close()
        assert await ready_count(conn, queue) == 1

        # tx.commit without tx.select is a 406 on that channel.
        ch = await conn.channel()
        with pytest.raises(amqp_client.PreconditionFailedError):
            await ch.tx_commit()


def test_tx_commit_and_rollback(front: Front) -> None:
    front.run(tx_scenario)


# --- QoS ---------------------------------------------------------------------------------


async def qos_scenario(front: Front) -> None:
    async with resources(front) as res, front.connect() as conn:
        queue = res.queue()
        ch = await conn.channel()
        await ch.queue_declare(queue)
        assert isinstance(await ch.basic_qos(prefetch_count=3), BasicQosOk)
        for i in range(10):
            await ch.basic_publish(b"%d" % i, routing_key=queue)
        while await ready_count(conn, queue) < 10:
            await asyncio.sleep(0.01)
        async with await ch.basic_consume(queue) as consumer:
            got = [await next_delivery(consumer) for _ in range(3)]
            await no_delivery(consumer, 0.5)
            assert await ready_count(conn, queue) == 7
            await got[0].ack()
            got.append(await next_delivery(consumer))
            await no_delivery(consumer, 0.3)
            assert await ready_count(conn, queue) == 6
            await got[-1].ack(multiple=True)  # settles all four
            got += [await next_delivery(consumer) for _ in range(3)]
            await no_delivery(consumer, 0.3)
            assert [d.body for d in got] == [b"%d" % i for i in range(7)]
            for delivery in got[4:]:
                await delivery.ack()
            rest = [await next_delivery(consumer) for _ in range(3)]
            for delivery in rest:
                await delivery.ack()
        assert await ready_count(conn, queue) == 0


def test_basic_qos_limits_unacked(front: Front) -> None:
    front.run(qos_scenario)


# --- closing ---------------------------------------------------------------------------------


async def close_scenario(front: Front) -> None:
    conn_events: list[object] = []
    ch_events: list[object] = []
    conn = await within(front.connect())
    conn.add_on_close_callback(conn_events.append)
    ch = await conn.channel()
    ch.add_on_close_callback(ch_events.append)
    async with await conn.channel() as ch2:
        assert ch2.is_open
    assert ch2.is_closed
    await ch.close()
    assert ch_events == [None]  # a clean close
    assert ch.is_closed
    await ch.close()  # idempotent
    assert ch_events == [None]
    with pytest.raises(amqp_client.ChannelClosed):
        await ch.basic_qos(0, 1)
    ch3 = await conn.channel()
    await conn.close()
    assert await within(conn.closed) is None
    assert await within(conn.wait_closed()) is None
    assert conn_events == [None]
    assert conn.is_closed and not conn.is_open
    assert ch3.is_closed
    await conn.close()  # idempotent
    with pytest.raises(amqp_client.ConnectionClosed):
        await conn.channel()
    with pytest.raises(amqp_client.AMQPError):
        await ch3.queue_declare("", exclusive=True)


def test_clean_close_and_callbacks(front: Front) -> None:
    front.run(close_scenario)


async def channel_error_callback_scenario(front: Front) -> None:
    async with front.connect() as conn:
        events: list[object] = []
        ch = await conn.channel()
        ch.add_on_close_callback(events.append)
        with pytest.raises(amqp_client.NotFoundError) as info:
            await ch.queue_declare("amq.missing." + str(id(ch)), passive=True)
        assert events == [info.value]
        assert conn.is_open


def test_channel_error_fires_close_callback(front: Front) -> None:
    front.run(channel_error_callback_scenario)
