"""Quorum queues and streams, declared with plain ``arguments`` (no special
API): both fronts against the shared broker.

* A quorum queue (``x-queue-type: quorum``, durable) takes confirmed
  publishes, delivers them in order to a consumer with a prefetch, counts
  a requeued delivery in ``x-delivery-count`` (which only quorum queues
  do), and is empty once everything is acked.
* A stream (``x-queue-type: stream``, durable) gets N messages published
  with confirms before any consumer exists; a consumer with
  ``basic_qos(prefetch_count=...)`` smaller than N and
  ``x-stream-offset: first`` receives every one of them, in order, each
  with its ``x-stream-offset`` header, as long as it acks (streams need
  manual acks and a prefetch: RabbitMQ refuses a consumer without one).

Streams need RabbitMQ 3.9 or later; the shared broker of this project is
3.10 (Debian bookworm's ``rabbitmq-server``). Every name is unique and
deleted at the end (streams and quorum queues are durable).
"""

from __future__ import annotations

from typing import Any

import pytest

import amqp_client
from amqp_client import BasicProperties
from tests.integration.helpers import (
    Front,
    next_delivery,
    resources,
    within,
)

pytestmark = pytest.mark.integration

#: Messages in each scenario; more than the prefetch, so acks must flow.
COUNT = 40
PREFETCH = 7


def _version(conn: Any) -> tuple[int, ...]:
    text = str(conn.server_properties.get("version", "0"))
    return tuple(int(part) for part in text.split(".")[:2] if part.isdigit())


async def _publish_confirmed(ch: Any, queue: str, prefix: str) -> None:
    await ch.confirm_select()
    confirmations = [
        await ch.basic_publish(
            f"{prefix}-{i}".encode(),
            routing_key=queue,
            properties=BasicProperties(message_id=str(i), delivery_mode=2),
        )
        for i in range(COUNT)
    ]
    for confirmation in confirmations:
        assert await within(confirmation) is None  # acked, not nacked


async def quorum_scenario(front: Front) -> None:
    async with resources(front) as res:
        queue = res.queue("quorum")
        async with front.connect() as conn:
            ch = await conn.channel()
            ok = await ch.queue_declare(
                queue, durable=True, arguments={"x-queue-type": "quorum"}
            )
            assert ok.queue == queue and ok.message_count == 0
            await _publish_confirmed(ch, queue, "q")
            ok = await ch.queue_declare(queue, passive=True)
            assert ok.message_count == COUNT

            # Really a quorum queue: declaring it as classic is refused.
            other = await conn.channel()
            with pytest.raises(amqp_client.PreconditionFailedError):
                await other.queue_declare(
                    queue, durable=True, arguments={"x-queue-type": "classic"}
                )

            consuming = await conn.channel()
            await consuming.basic_qos(prefetch_count=PREFETCH)
            async with await consuming.basic_consume(queue) as consumer:
                first = await next_delivery(consumer)
                assert first.body == b"q-0"
                assert not first.redelivered
                await first.nack(requeue=True)
                received: list[bytes] = []
                while len(received) < COUNT:
                    delivery = await next_delivery(consumer)
                    if delivery.body == b"q-0":
                        # Requeued: quorum queues count deliveries.
                        assert delivery.redelivered
                        headers = delivery.properties.headers or {}
                        assert headers.get("x-delivery-count") == 1, headers
                    received.append(delivery.body)
                    await delivery.ack()
            assert sorted(received) == sorted(f"q-{i}".encode() for i in range(COUNT))
            # Apart from the requeued one, in publish order.
            rest = [body for body in received if body != b"q-0"]
            assert rest == [f"q-{i}".encode() for i in range(1, COUNT)]
            ok = await ch.queue_declare(queue, passive=True)
            assert ok.message_count == 0


def test_quorum_queue(front: Front) -> None:
    front.run(quorum_scenario)


async def stream_scenario(front: Front) -> None:
    async with resources(front) as res:
        stream = res.queue("stream")
        async with front.connect() as conn:
            if _version(conn) < (3, 9):
                pytest.fail(f"RabbitMQ {_version(conn)} has no streams (3.9+)")
            ch = await conn.channel()
            await ch.queue_declare(
                stream, durable=True, arguments={"x-queue-type": "stream"}
            )
            # Everything is published (and confirmed) before any consumer.
            await _publish_confirmed(ch, stream, "s")

            # A stream consumer must have a prefetch: refused without one.
            bare = await conn.channel()
            with pytest.raises(amqp_client.PreconditionFailedError):
                await bare.basic_consume(stream, arguments={"x-stream-offset": "first"})

            reader = await conn.channel()
            await reader.basic_qos(prefetch_count=PREFETCH)
            bodies: list[bytes] = []
            offsets: list[int] = []
            async with await reader.basic_consume(
                stream, arguments={"x-stream-offset": "first"}
            ) as consumer:
                for _ in range(COUNT):
                    delivery = await next_delivery(consumer)
                    bodies.append(delivery.body)
                    assert delivery.properties.message_id == str(len(bodies) - 1)
                    offsets.append(
                        (delivery.properties.headers or {})["x-stream-offset"]
                    )
                    await delivery.ack()
            assert bodies == [f"s-{i}".encode() for i in range(COUNT)]
            assert offsets == sorted(offsets) and len(set(offsets)) == COUNT
            # A stream keeps its messages: a second reader from "first" sees
            # them again (the first one's acks removed nothing).
            again = await conn.channel()
            await again.basic_qos(prefetch_count=PREFETCH)
            async with await again.basic_consume(
                stream, arguments={"x-stream-offset": "first"}
            ) as consumer:
                delivery = await next_delivery(consumer)
                assert delivery.body == b"s-0"
                await delivery.ack()


def test_stream_from_the_first_offset(front: Front) -> None:
    front.run(stream_scenario)
