"""A consumer backlog larger than the client's read-pause threshold: the
client stops reading from the socket and starts again as the application
catches up, without losing, reordering or misreading anything."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from tests.integration.helpers import Front, within

pytestmark = pytest.mark.integration

#: More than the asyncio front's read-pause threshold (20,000 buffered
#: deliveries), so that reading really pauses.
BACKLOG = 21_000


async def fill(ch: Any, queue: str, count: int) -> None:
    await ch.confirm_select()
    confirmations = [
        await ch.basic_publish(b"%d" % i, routing_key=queue) for i in range(count)
    ]
    await within(asyncio.gather(*confirmations), 60)


async def backlog_scenario(front: Front) -> None:
    async with front.connect() as conn:
        ch = await conn.channel()
        queue = (await ch.queue_declare("", exclusive=True)).queue
        await fill(ch, queue, BACKLOG)
        consumer = await ch.basic_consume(queue)
        await asyncio.sleep(1.0)  # the broker pushes everything; we do not read
        assert conn.is_open
        async with asyncio.timeout(60):
            for i in range(BACKLOG):
                last = await anext(consumer)
                assert last.body == b"%d" % i
        await last.ack(multiple=True)
        await consumer.cancel()
        assert (await ch.queue_declare(queue, passive=True)).message_count == 0


def test_large_consumer_backlog(front: Front) -> None:
    front.run(backlog_scenario, timeout=90)


async def backlog_heartbeat_scenario(front: Front) -> None:
    async with front.connect(heartbeat=1) as conn:
        ch = await conn.channel()
        queue = (await ch.queue_declare("", exclusive=True)).queue
        await fill(ch, queue, BACKLOG)
        consumer = await ch.basic_consume(queue, no_ack=True)
        # The application is busy for a few heartbeat intervals. The broker
        # keeps sending heartbeats; they wait in the socket while the client
        # does not read. That is not a dead broker.
        await asyncio.sleep(3.0)
        assert not conn.closed.done(), conn.closed.result()
        async with asyncio.timeout(60):
            for i in range(BACKLOG):
                delivery = await anext(consumer)
                assert delivery.body == b"%d" % i
        assert conn.is_open


def test_paused_reading_is_not_a_heartbeat_timeout(front: Front) -> None:
    front.run(backlog_heartbeat_scenario, timeout=90)
