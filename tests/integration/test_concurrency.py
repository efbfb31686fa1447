"""Many channels, many concurrent RPCs, many unconfirmed publishes."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from amqp_client.spec import (
    BasicQosOk,
    ExchangeDeclareOk,
    QueueDeclareOk,
    QueuePurgeOk,
)

import amqp_client
from tests.integration.helpers import Front, resources, within

pytestmark = pytest.mark.integration

CHANNELS = 200
RPCS_PER_CHANNEL = 20
CONFIRMS = 10_000


async def many_channels_scenario(front: Front) -> None:
    async with front.connect() as conn:
        channels = await within(
            asyncio.gather(*(conn.channel() for _ in range(CHANNELS))), 30
        )
        assert sorted(ch.channel_id for ch in channels) == list(range(1, CHANNELS + 1))
        queues = await within(
            asyncio.gather(*(ch.queue_declare("", exclusive=True) for ch in channels)),
            30,
        )
        names = [ok.queue for ok in queues]
        assert len(set(names)) == CHANNELS

        async def rpc(ch: Any, queue: str, i: int) -> tuple[Any, Any]:
            kind = i % 4
            if kind == 0:
                reply = await ch.queue_declare(queue, passive=True)
                assert isinstance(reply, QueueDeclareOk)
                assert reply.queue == queue
            elif kind == 1:
                reply = await ch.basic_qos(prefetch_count=i)
                assert isinstance(reply, BasicQosOk)
            elif kind == 2:
                reply = await ch.exchange_declare("amq.direct", "direct", passive=True)
                assert isinstance(reply, ExchangeDeclareOk)
            else:
                reply = await ch.queue_purge(queue)
                assert isinstance(reply, QueuePurgeOk)
                assert reply.message_count == 0
            return ch.channel_id, type(reply)

        calls = [
            rpc(ch, queue, i)
            for i in range(RPCS_PER_CHANNEL)
            for ch, queue in zip(channels, names, strict=True)
        ]
        results = await within(asyncio.gather(*calls), 60)
        assert len(results) == CHANNELS * RPCS_PER_CHANNEL
        assert all(ch.is_open for ch in channels)
        await within(asyncio.gather(*(ch.close() for ch in channels)), 30)
        assert conn.is_open


def test_200_channels_20_concurrent_rpcs_each(front: Front) -> None:
    front.run(many_channels_scenario, timeout=120)


async def channel_id_reuse_scenario(front: Front) -> None:
    async with front.connect() as conn:
        channels = [await conn.channel() for _ in range(6)]
        assert [ch.channel_id for ch in channels] == [1, 2, 3, 4, 5, 6]
        await channels[3].close()  # id 4
        await channels[1].close()  # id 2
        await channels[4].close()  # id 5
        reopened = [await conn.channel() for _ in range(4)]
        assert [ch.channel_id for ch in reopened] == [2, 4, 5, 7]
        # A channel the broker closed (404) frees its id as well.
        broken = reopened[0]
        with pytest.raises(amqp_client.NotFoundError):
            await broken.queue_declare("amq.no-such-queue-here", passive=True)
        again = await conn.channel()
        assert again.channel_id == 2
        for ch in (again, *reopened[1:], channels[0], channels[2], channels[5]):
            await ch.basic_qos(prefetch_count=1)  # all usable


def test_channel_ids_are_reused_lowest_first(front: Front) -> None:
    front.run(channel_id_reuse_scenario)


async def many_confirms_scenario(front: Front) -> None:
    async with resources(front) as res, front.connect() as conn:
        queue = res.queue()
        ch = await conn.channel()
        await ch.queue_declare(queue)
        await ch.confirm_select()
        confirmed: list[tuple[int, bool]] = []
        ch.add_on_confirm_callback(lambda tag, acked: confirmed.append((tag, acked)))
        confirmations = []
        for i in range(CONFIRMS):
            confirmations.append(await ch.basic_publish(b"%d" % i, routing_key=queue))
        tags = [c.delivery_tag for c in confirmations]
        assert tags == list(range(1, CONFIRMS + 1))
        results = await within(
            asyncio.gather(*(within(c, 60) for c in confirmations)), 60
        )
        assert results == [None] * CONFIRMS
        assert all(c.done() for c in confirmations)
        assert sorted(tag for tag, _ in confirmed) == tags
        assert all(acked for _, acked in confirmed)
        ok = await ch.queue_declare(queue, passive=True)
        assert ok.message_count == CONFIRMS
        purged = await ch.queue_purge(queue)
        assert purged.message_count == CONFIRMS


def test_10000_confirms_resolve(front: Front) -> None:
    front.run(many_confirms_scenario, timeout=90)
