"""Publish/subscribe (asyncio): a fanout exchange copies every message to
every subscriber.

Two subscribers each declare an exclusive, server-named queue (the broker
picks the name and deletes the queue when its connection closes) and bind
it to a fanout exchange. The publisher sends MESSAGES log lines to the
exchange, with no routing key: each subscriber must receive every one of
them, in order. The program prints what each subscriber got, deletes the
exchange and exits (1 if a message is missing).

Run it against a broker (``make broker`` starts one on localhost)::

    python examples/pubsub_fanout_aio.py
    AMQP_URL=amqp://user:pass@host:5672/vhost python examples/pubsub_fanout_aio.py
"""

from __future__ import annotations

import asyncio
import os
import sys
import uuid

import amqp_client

URL = os.environ.get("AMQP_URL", "amqp://guest:guest@localhost:5672/%2f")
MESSAGES = 5
#: Deadline of the whole program, seconds: nothing can wait longer.
DEADLINE = 30


async def subscribe(
    name: str, conn: amqp_client.Connection, exchange: str
) -> amqp_client.Consumer:
    """A subscriber: its own channel and exclusive queue, bound to the exchange."""
    ch: amqp_client.Channel = await conn.channel()
    ok = await ch.queue_declare("", exclusive=True)  # the broker names it
    await ch.queue_bind(ok.queue, exchange)  # a fanout ignores routing keys
    print(f"{name}: queue {ok.queue} bound to {exchange}")
    # no_ack: the broker counts a message delivered as soon as it sends it,
    # which suits a log tail; see work_queue_*.py for acknowledgements.
    return await ch.basic_consume(ok.queue, no_ack=True)


async def receive(name: str, consumer: amqp_client.Consumer) -> list[bytes]:
    """Take MESSAGES deliveries from the consumer."""
    bodies: list[bytes] = []
    async for delivery in consumer:
        print(f"  {name} got {delivery.body.decode()!r}")
        bodies.append(delivery.body)
        if len(bodies) == MESSAGES:
            break
    await consumer.cancel()
    return bodies


async def main() -> int:
    exchange = f"amqp-client-example.logs.{uuid.uuid4().hex[:8]}"
    async with asyncio.timeout(DEADLINE), amqp_client.connect(URL) as conn:
        publisher: amqp_client.Channel = await conn.channel()
        await publisher.exchange_declare(exchange, "fanout")
        print(f"declared the fanout exchange {exchange}")
        try:
            # Subscribe first: a fanout exchange drops what no queue is bound to.
            subscribers = {
                name: await subscribe(name, conn, exchange)
                for name in ("subscriber-1", "subscriber-2")
            }
            receiving = {
                name: asyncio.create_task(receive(name, consumer))
                for name, consumer in subscribers.items()
            }

            sent = [f"log line {i}".encode() for i in range(1, MESSAGES + 1)]
            for body in sent:
                await publisher.basic_publish(body, exchange=exchange)
            print(f"published {MESSAGES} messages to {exchange}")

            received = {name: await task for name, task in receiving.items()}
        finally:
            await publisher.exchange_delete(exchange)
            print(f"deleted {exchange}")

    for name, bodies in received.items():
        if bodies != sent:
            print(f"FAILED: {name} got {bodies}, not {sent}", file=sys.stderr)
            return 1
    print(f"each of the {len(received)} subscribers got all {MESSAGES} messages")
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
