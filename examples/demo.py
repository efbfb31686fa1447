"""Publish and consume a few thousand messages with confirms; print the rate.

Run with ``make demo`` (which makes sure a broker listens first) or
``python examples/demo.py [AMQP_URL]``.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
import uuid

import amqp_client

COUNT = 5_000


async def main(url: str) -> None:
    async with amqp_client.connect(url, connection_name="amqp-client demo") as conn:
        print(
            f"connected to RabbitMQ {conn.server_version} (heartbeat {conn.heartbeat} s)"
        )
        async with await conn.channel() as ch:
            queue = (
                await ch.queue_declare(f"demo-{uuid.uuid4().hex[:8]}", exclusive=True)
            ).queue
            await ch.confirm_select()
            props = amqp_client.BasicProperties(
                content_type="text/plain", delivery_mode=2
            )

            start = time.perf_counter()
            confirmations = []
            for i in range(COUNT):
                confirmation = await ch.basic_publish(
                    f"message {i}".encode(), routing_key=queue, properties=props
                )
                assert confirmation is not None
                confirmations.append(confirmation)
            await asyncio.gather(*confirmations)
            published = time.perf_counter() - start
            print(
                f"published {COUNT:,} messages to {queue}, all confirmed by the broker, "
                f"in {published:.2f} s ({COUNT / published:,.0f} msg/s)"
            )

            await ch.basic_qos(prefetch_count=500)
            start = time.perf_counter()
            received = 0
            async with await ch.basic_consume(queue) as consumer:
                async for delivery in consumer:
                    assert delivery.body == f"message {received}".encode()
                    await delivery.ack()
                    received += 1
                    if received == COUNT:
                        break
            consumed = time.perf_counter() - start
            print(
                f"consumed and acked {received:,} messages, in order, "
                f"in {consumed:.2f} s ({received / consumed:,.0f} msg/s)"
            )
    print("closed the channel and the connection cleanly")


if __name__ == "__main__":
    target = sys.argv[1] if len(sys.argv) > 1 else os.environ.get("AMQP_URL", "amqp://")
    asyncio.run(main(target))
