"""Work queue (blocking): two worker threads share tasks, with prefetch and acks.

A producer publishes TASKS persistent messages to a task queue (in confirm
mode, so it knows the broker has them). Two worker threads, each on its own
channel with ``basic_qos(prefetch_count=1)``, consume the queue and ack each
task only after finishing it: the broker hands a worker its next task only
once it has acked the last one, so the faster worker does more (fair
dispatch), and a task whose worker dies before acking goes to the other one.
worker-2 is made twice as slow to show it. The program checks that every task
was done exactly once by someone, prints who did what, deletes the queue and
exits (1 on failure).

Run it against a broker (``make broker`` starts one on localhost)::

    python examples/work_queue_blocking.py
    AMQP_URL=amqp://user:pass@host:5672/vhost python examples/work_queue_blocking.py
"""

from __future__ import annotations

import os
import sys
import threading
import time
import uuid
from collections import Counter

import amqp_client
from amqp_client import blocking

URL = os.environ.get("AMQP_URL", "amqp://guest:guest@localhost:5672/%2f")
TASKS = 20
#: Seconds one unit of work takes; worker-2 takes twice as long.
WORK = 0.01
#: The longest any single step may wait for the broker, seconds.
TIMEOUT = 10


def worker(
    name: str,
    slowness: int,
    consumer: blocking.Consumer,
    done: list[tuple[int, str]],
    all_done: threading.Event,
    lock: threading.Lock,
) -> None:
    """Do each task the consumer hands out, then ack it; stop when the
    consumer is cancelled (get() returns None)."""
    while (delivery := consumer.get(timeout=TIMEOUT)) is not None:
        task = int(delivery.body.decode().split()[1])
        time.sleep(WORK * slowness)  # the "work"
        with lock:
            done.append((task, name))
            finished = len({task for task, _ in done}) == TASKS
        print(f"  {name}: did task {task}")
        delivery.ack()  # only now may the broker forget the task
        if finished:
            all_done.set()


def main() -> int:
    queue = f"amqp-client-example.tasks.{uuid.uuid4().hex[:8]}"
    with blocking.connect(URL, connection_timeout=TIMEOUT) as conn:
        producer: blocking.Channel = conn.channel(timeout=TIMEOUT)
        # durable: the queue survives a broker restart. x-expires only makes
        # the broker drop it should this program die before deleting it.
        producer.queue_declare(
            queue, durable=True, arguments={"x-expires": 60_000}, timeout=TIMEOUT
        )
        print(f"declared the task queue {queue}")
        try:
            done: list[tuple[int, str]] = []
            lock = threading.Lock()
            all_done = threading.Event()
            threads = []
            consumers = []
            for number, slowness in ((1, 1), (2, 2)):
                ch: blocking.Channel = conn.channel(timeout=TIMEOUT)
                # one unacked task at a time
                ch.basic_qos(prefetch_count=1, timeout=TIMEOUT)
                consumer = ch.basic_consume(queue, timeout=TIMEOUT)
                consumers.append(consumer)
                thread = threading.Thread(
                    target=worker,
                    args=(f"worker-{number}", slowness, consumer, done, all_done, lock),
                )
                thread.start()
                threads.append(thread)
            print("started worker-1 and worker-2 (prefetch_count=1, manual acks)")

            producer.confirm_select(timeout=TIMEOUT)
            persistent = amqp_client.BasicProperties(delivery_mode=2)
            confirmations = []
            for task in range(1, TASKS + 1):
                confirmation = producer.basic_publish(
                    f"task {task}".encode(), routing_key=queue, properties=persistent
                )
                assert confirmation is not None  # confirm mode
                confirmations.append(confirmation)
            for confirmation in confirmations:
                confirmation.wait(timeout=TIMEOUT)
            print(f"published {TASKS} tasks, all confirmed by the broker")

            all_done.wait(timeout=TIMEOUT)
            for consumer in consumers:
                consumer.cancel(timeout=TIMEOUT)  # the worker's get() returns None
            for thread in threads:
                thread.join(timeout=TIMEOUT)
        finally:
            producer.queue_delete(queue, timeout=TIMEOUT)
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
    if any(thread.is_alive() for thread in threads):
        print("FAILED: a worker did not stop", file=sys.stderr)
        return 1
    print(f"all {TASKS} tasks done, shared by both workers")
    return 0


if __name__ == "__main__":
    sys.exit(main())
