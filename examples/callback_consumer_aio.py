"""Consumer callbacks (asyncio): a handler per message, N at a time, and a
graceful close.

``basic_consume(queue, callback=handle, concurrency=4)`` hands each
delivery to the coroutine ``handle`` inside ``delivery.process()``: it is
acked when ``handle`` returns, rejected (requeue=False, so the queue's
dead-letter queue gets it) when it raises, and the consumer goes on. At
most 4 run at once. ``conn.close(timeout=...)`` first cancels the consumer
(what it had not handed out goes back to the queue), lets the handlers in
flight finish, then closes. The program publishes ORDERS orders, one of
them malformed, checks that each good one was handled once, never more
than 4 at a time, that the bad one was dead-lettered, and that close
waited for the last handler; then deletes its queues and exits (1 on
failure).

Run it against a broker (``make broker`` starts one on localhost)::

    python examples/callback_consumer_aio.py
"""

from __future__ import annotations

import asyncio
import os
import sys
import uuid

import amqp_client

URL = os.environ.get("AMQP_URL", "amqp://guest:guest@localhost:5672/%2f")
ORDERS = 40
CONCURRENCY = 4
#: Deadline of the whole program, seconds: nothing can wait longer.
DEADLINE = 30


async def main() -> int:
    suffix = uuid.uuid4().hex[:8]
    queue = f"amqp-client-example.orders.{suffix}"
    dead = f"amqp-client-example.orders-dead.{suffix}"
    handled: list[int] = []
    in_flight = 0
    most = 0
    all_handled = asyncio.Event()

    async def handle(delivery: amqp_client.Delivery) -> None:
        """One order: raises on a malformed one (it is then rejected)."""
        nonlocal in_flight, most
        in_flight += 1
        most = max(most, in_flight)
        try:
            order = int(delivery.body)  # ValueError on b"garbage"
            await asyncio.sleep(0.02)  # the "work"
            handled.append(order)
            if len(handled) == ORDERS - 1:
                all_handled.set()
        finally:
            in_flight -= 1

    async with asyncio.timeout(DEADLINE):
        conn = await amqp_client.connect(URL)
        ch: amqp_client.Channel = await conn.channel()
        await ch.queue_declare(dead, arguments={"x-expires": 60_000})
        await ch.queue_declare(
            queue,
            arguments={
                "x-expires": 60_000,
                "x-dead-letter-exchange": "",
                "x-dead-letter-routing-key": dead,
            },
        )
        for order in range(1, ORDERS + 1):
            body = b"garbage" if order == 13 else str(order).encode()
            await ch.basic_publish(body, routing_key=queue)
        print(f"published {ORDERS} orders (order 13 is malformed)")

        await ch.basic_consume(queue, callback=handle, concurrency=CONCURRENCY)
        await all_handled.wait()
        await ch.basic_publish(b"1000", routing_key=queue)  # one more, in flight
        while in_flight == 0 and len(handled) < ORDERS:
            await asyncio.sleep(0.001)
        await conn.close(timeout=5)  # waits for the handler in flight
        print(f"closed after {len(handled)} orders; at most {most} ran at once")

        async with amqp_client.connect(URL) as check:
            ch = await check.channel()
            dead_count = (await ch.queue_declare(dead, passive=True)).message_count
            left = (await ch.queue_declare(queue, passive=True)).message_count
            await ch.queue_delete(queue)
            await ch.queue_delete(dead)
            print(f"deleted {queue} and {dead}")

    good = sorted(handled)
    expected = [n for n in range(1, ORDERS + 1) if n != 13] + [1000]
    if good != expected or most > CONCURRENCY or dead_count != 1 or left != 0:
        print(
            f"FAILED: handled {good}, at most {most} at once, "
            f"{dead_count} dead-lettered, {left} left",
            file=sys.stderr,
        )
        return 1
    print(
        f"all {ORDERS} orders handled, at most {CONCURRENCY} at a time, "
        "the bad one dead-lettered, and close waited for the last"
    )
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
