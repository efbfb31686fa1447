"""Work queue (asyncio): two workers share tasks, with prefetch and manual acks.

A producer publishes TASKS persistent messages to a task queue (in confirm
mode, so it knows the broker has them). Two workers, each on its own channel
with ``basic_qos(prefetch_count=1)``, consume the queue and ack each task only
after finishing it: the broker hands a worker its next task only once it has
acked the last one, so the faster worker does more (fair dispatch), and a task
whose worker dies before acking goes to the other one. worker-2 is made twice
as slow to show it. The program checks that every task was done exactly once
by someone, prints who did what, deletes the queue and exits (1 on failure).

Run it against a broker (``make broker`` starts one on localhost)::

    python examples/work_queue_aio.py
    AMQP_URL=amqp://user:pass@host:5672/vhost python examples/work_queue_aio.py
"""

from __future__ import annotations

import asyncio
import os
import sys
import uuid
from collections import Counter

import amqp_client

URL = os.environ.get("AMQP_URL", "amqp://guest:guest@localhost:5672/%2f")
TASKS = 20
#: Seconds one unit of work takes; worker-2 takes twice as long.
WORK = 0.01
#: Deadline of the whole program, seconds: nothing can wait longer.
DEADLINE = 30


async def worker(
    name: str,
    slowness: int,
    consumer: amqp_client.Consumer,
    done: list[tuple[int, str]],
    all_done: asyncio.Event,
) -> None:
    """Do each task the consumer hands out, then ack it; stop when the
    consumer is cancelled."""
    async for delivery in consumer:
        task = int(delivery.body.decode().split()[1])
        await asyncio.sleep(WORK * slowness)  # the "work"
        done.append((task, name))
        print(f"  {name}: did task {task}")
        await delivery.ack()  # only now may the broker forget the task
        if len({task for task, _ in done}) == TASKS:
            all_done.set()


async def main() -> int:
    queue = f"amqp-client-example.tasks.{uuid.uuid4().hex[:8]}"
    async with asyncio.timeout(DEADLINE), amqp_client.connect(URL) as conn:
        producer: amqp_client.Channel = await conn.channel()
        # durable: the queue survives a broker restart. x-expires only makes
        # the broker drop it should this program die before deleting it.
        await producer.queue_declare(
            queue, durable=True, arguments={"x-expires": 60_000}
        )
        print(f"declared the task queue {queue}")
        try:
            done: list[tuple[int, str]] = []
            all_done = asyncio.Event()
            workers = []
            consumers = []
            for number, slowness in ((1, 1), (2, 2)):
                ch: amqp_client.Channel = await conn.channel()
                await ch.basic_qos(prefetch_count=1)  # one unacked task at a time
                consumer = await ch.basic_consume(queue)
                consumers.append(consumer)
                workers.append(
                    asyncio.create_task(
                        worker(f"worker-{number}", slowness, consumer, done, all_done)
                    )
                )
            print("started worker-1 and worker-2 (prefetch_count=1, manual acks)")

            await producer.confirm_select()
            persistent = amqp_client.BasicProperties(delivery_mode=2)
            confirmations = []
            for task in range(1, TASKS + 1):
                confirmation = await producer.basic_publish(
                    f"task {task}".encode(), routing_key=queue, properties=persistent
                )
                assert confirmation is not None  # confirm mode
                confirmations.append(confirmation)
            await asyncio.gather(*confirmations)
            print(f"published {TASKS} tasks, all confirmed by the broker")

            await all_done.wait()
            for consumer in consumers:
                await consumer.cancel()  # ends the worker's `async for`
            await asyncio.gather(*workers)
        finally:
            await producer.queue_delete(queue)
            print(f"deleted {queue}")

    per_worker = Counter(name for _, name in done)
    print(
        f"tasks per worker: worker-1 {per_worker['worker-1']}, "
        f"worker-2 {per_worker['worker-2']} (worker-2 is twice as slow)"
    )
    tasks = sorted(task for task, _ in done)
    if tasks != list(range(1, TASKS + 1)) or len(per_worker) != 2:
        print(
            f"FAILED: tasks done {tasks}, per worker {dict(per_worker)}",
            file=sys.stderr,
        )
        return 1
    print(f"all {TASKS} tasks done, shared by both workers")
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
