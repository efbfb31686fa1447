"""Message bodies split over many frames, at the frame boundary, and empty."""

from __future__ import annotations

import hashlib
import random

import pytest

from amqp_client import BasicProperties
from tests.integration.helpers import Front, next_delivery, resources, within

pytestmark = pytest.mark.integration

FRAME_MAX = 131072
#: A body frame carries frame_max minus the 8 octets of frame header and end.
FRAME_OVERHEAD = 8


async def bodies_scenario(front: Front) -> None:
    rng = random.Random(0x5EED)
    big = rng.randbytes(10 * 1024 * 1024)
    exact = rng.randbytes(FRAME_MAX - FRAME_OVERHEAD)
    bodies = [
        big,
        exact,
        b"",
        exact + b"!",  # one byte into a second frame
        rng.randbytes(FRAME_MAX - FRAME_OVERHEAD - 1),
    ]
    async with resources(front) as res, front.connect(frame_max=FRAME_MAX) as conn:
        assert conn.frame_max == FRAME_MAX
        queue = res.queue()
        ch = await conn.channel()
        await ch.queue_declare(queue)
        await ch.confirm_select()
        for index, body in enumerate(bodies):
            confirmation = await ch.basic_publish(
                body,
                routing_key=queue,
                properties=BasicProperties(message_id=str(index)),
            )
            await within(confirmation, 30)
        async with await ch.basic_consume(queue) as consumer:
            for index, body in enumerate(bodies):
                delivery = await next_delivery(consumer, 30)
                assert delivery.properties.message_id == str(index)
                assert len(delivery.body) == len(body)
                assert hashlib.sha256(delivery.body).digest() == (
                    hashlib.sha256(body).digest()
                )
                assert delivery.body == body
                await delivery.ack()
        # basic.get assembles multi-frame content too.
        await ch.basic_publish(big[: 3 * FRAME_MAX + 5], routing_key=queue)
        got = None
        while got is None:
            got = await within(ch.basic_get(queue, no_ack=True))
        assert got.body == big[: 3 * FRAME_MAX + 5]
        assert isinstance(got.body, bytes)


def test_large_exact_and_empty_bodies(front: Front) -> None:
    front.run(bodies_scenario, timeout=90)


async def small_frame_max_scenario(front: Front) -> None:
    """The smallest frame_max RabbitMQ accepts (4096) still carries a
    body of many frames, and the value is negotiated down to it."""
    body = random.Random(7).randbytes(100_000)
    async with resources(front) as res, front.connect(frame_max=4096) as conn:
        assert conn.frame_max == 4096
        queue = res.queue()
        ch = await conn.channel()
        await ch.queue_declare(queue)
        await ch.basic_publish(body, routing_key=queue)
        got = None
        while got is None:
            got = await within(ch.basic_get(queue, no_ack=True))
        assert got.body == body


def test_small_frame_max(front: Front) -> None:
    front.run(small_frame_max_scenario)


async def sixteen_mib_scenario(front: Front) -> None:
    """16 MiB through the broker and back, byte-identical: the publish
    written as views of the body (never joined with its frame heads), the
    delivery joined once from its frames; and a 100 KiB body, which fits
    one frame whole but is still written as a view of its own."""
    rng = random.Random(16)
    big = rng.randbytes(16 * 1024 * 1024)
    one_frame = rng.randbytes(100 * 1024)
    headers = {"x-size": len(big), "x-note": "sixteen"}
    async with resources(front) as res, front.connect(frame_max=FRAME_MAX) as conn:
        queue = res.queue()
        ch = await conn.channel()
        await ch.queue_declare(queue)
        await ch.confirm_select()
        for body in (big, one_frame):
            await within(
                await ch.basic_publish(
                    body, routing_key=queue, properties=BasicProperties(headers=headers)
                ),
                60,
            )
        async with await ch.basic_consume(queue) as consumer:
            for body in (big, one_frame):
                delivery = await next_delivery(consumer, 60)
                assert isinstance(delivery.body, bytes)
                assert len(delivery.body) == len(body)
                assert delivery.body == body
                assert delivery.properties.headers == headers
                await delivery.ack()


def test_sixteen_mib_round_trip(front: Front) -> None:
    front.run(sixteen_mib_scenario, timeout=120)
