"""Consumer callbacks (blocking): a handler per message on worker threads,
N at a time, and a graceful close.

``basic_consume(queue, callback=handle, concurrency=4)`` runs ``handle``
on 4 worker threads of the consumer (one dispatch thread with the default
concurrency=1; never the connection's I/O thread), each delivery inside
``delivery.process()``: acked when ``handle`` returns, rejected
(requeue=False, so the queue's dead-letter queue gets it) when it raises,
and the consumer goes on. ``conn.close(timeout=...)`` first cancels the
consumer (what it had not handed out goes back to the queue), lets the
handlers in flight finish, then closes. The program publishes ORDERS
orders, one of them malformed, checks that each good one was handled
once, never more than 4 at a time, that the bad one was dead-lettered,
and that close waited for the last handler; then deletes its queues and
exits (1 on failure).

Run it against a broker (``make broker`` starts one on localhost)::

    python examples/callback_consumer_blocking.py
"""

from __future__ import annotations

import os
import sys
import threading
import time
import uuid

from amqp_client import blocking

URL = os.environ.get("AMQP_URL", "amqp://guest:guest@localhost:5672/%2f")
ORDERS = 40
CONCURRENCY = 4
#: Seconds the program waits for its handlers at most.
DEADLINE = 30


def main() -> int:
    suffix = uuid.uuid4().hex[:8]
    queue = f"amqp-client-example.orders.{suffix}"
    dead = f"amqp-client-example.orders-dead.{suffix}"
    lock = threading.Lock()
    handled: list[int] = []
    in_flight = 0
    most = 0
    all_handled = threading.Event()

    def handle(delivery: blocking.Delivery) -> None:
        """One order, on a worker thread: raises on a malformed one (it is
        then rejected)."""
        nonlocal in_flight, most
        with lock:
            in_flight += 1
            most = max(most, in_flight)
        try:
            order = int(delivery.body)  # ValueError on b"garbage"
            time.sleep(0.02)  # the "work"
            with lock:
                handled.append(order)
                if len(handled) == ORDERS - 1:
                    all_handled.set()
        finally:
            with lock:
                in_flight -= 1

    conn = blocking.connect(URL, connection_timeout=10)
    ch = conn.channel()
    ch.queue_declare(dead, arguments={"x-expires": 60_000})
    ch.queue_declare(
        queue,
        arguments={
            "x-expires": 60_000,
            "x-dead-letter-exchange": "",
            "x-dead-letter-routing-key": dead,
        },
    )
    for order in range(1, ORDERS + 1):
        body = b"garbage" if order == 13 else str(order).encode()
        ch.basic_publish(body, routing_key=queue)
    print(f"published {ORDERS} orders (order 13 is malformed)")

    ch.basic_consume(queue, callback=handle, concurrency=CONCURRENCY)
    finished = all_handled.wait(DEADLINE)
    ch.basic_publish(b"1000", routing_key=queue)  # one more, in flight
    deadline = time.monotonic() + DEADLINE
    while in_flight == 0 and len(handled) < ORDERS and time.monotonic() < deadline:
        time.sleep(0.001)
    conn.close(timeout=5)  # cancels the consumer, waits for the handler
    print(f"closed after {len(handled)} orders; at most {most} ran at once")

    with blocking.connect(URL, connection_timeout=10) as check:
        ch = check.channel()
        dead_count = ch.queue_declare(dead, passive=True).message_count
        left = ch.queue_declare(queue, passive=True).message_count
        ch.queue_delete(queue)
        ch.queue_delete(dead)
        print(f"deleted {queue} and {dead}")

    good = sorted(handled)
    expected = [n for n in range(1, ORDERS + 1) if n != 13] + [1000]
    if (
        not finished
        or good != expected
        or most > CONCURRENCY
        or dead_count != 1
        or left != 0
    ):
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
    sys.exit(main())
