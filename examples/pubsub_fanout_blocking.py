"""Publish/subscribe (blocking): a fanout exchange copies every message to
every subscriber.

Two subscribers each declare an exclusive, server-named queue (the broker
picks the name and deletes the queue when its connection closes) and bind
it to a fanout exchange. The publisher sends MESSAGES log lines to the
exchange, with no routing key: each subscriber must receive every one of
them, in order. The program prints what each subscriber got, deletes the
exchange and exits (1 if a message is missing).

Run it against a broker (``make broker`` starts one on localhost)::

    python examples/pubsub_fanout_blocking.py
    AMQP_URL=amqp://user:pass@host:5672/vhost python examples/pubsub_fanout_blocking.py
"""

from __future__ import annotations

import os
import sys
import uuid

from amqp_client import blocking

URL = os.environ.get("AMQP_URL", "amqp://guest:guest@localhost:5672/%2f")
MESSAGES = 5
#: The longest any single step may wait for the broker, seconds.
TIMEOUT = 10


def subscribe(name: str, conn: blocking.Connection, exchange: str) -> blocking.Consumer:
    """A subscriber: its own channel and exclusive queue, bound to the exchange."""
    ch: blocking.Channel = conn.channel(timeout=TIMEOUT)
    ok = ch.queue_declare("", exclusive=True, timeout=TIMEOUT)  # the broker names it
    ch.queue_bind(ok.queue, exchange, timeout=TIMEOUT)  # a fanout ignores keys
    print(f"{name}: queue {ok.queue} bound to {exchange}")
    # no_ack: the broker counts a message delivered as soon as it sends it,
    # which suits a log tail; see work_queue_*.py for acknowledgements.
    return ch.basic_consume(ok.queue, no_ack=True, timeout=TIMEOUT)


def receive(name: str, consumer: blocking.Consumer) -> list[bytes]:
    """Take MESSAGES deliveries from the consumer (they wait in its buffer)."""
    bodies: list[bytes] = []
    while len(bodies) < MESSAGES:
        delivery = consumer.get(timeout=TIMEOUT)
        if delivery is None:  # the consumer was cancelled
            break
        print(f"  {name} got {delivery.body.decode()!r}")
        bodies.append(delivery.body)
    consumer.cancel(timeout=TIMEOUT)
    return bodies


def main() -> int:
    exchange = f"amqp-client-example.logs.{uuid.uuid4().hex[:8]}"
    with blocking.connect(URL, connection_timeout=TIMEOUT) as conn:
        publisher: blocking.Channel = conn.channel(timeout=TIMEOUT)
        publisher.exchange_declare(exchange, "fanout", timeout=TIMEOUT)
        print(f"declared the fanout exchange {exchange}")
        try:
            # Subscribe first: a fanout exchange drops what no queue is bound to.
            subscribers = {
                name: subscribe(name, conn, exchange)
                for name in ("subscriber-1", "subscriber-2")
            }

            sent = [f"log line {i}".encode() for i in range(1, MESSAGES + 1)]
            for body in sent:
                publisher.basic_publish(body, exchange=exchange)
            print(f"published {MESSAGES} messages to {exchange}")

            received = {
                name: receive(name, consumer) for name, consumer in subscribers.items()
            }
        finally:
            publisher.exchange_delete(exchange, timeout=TIMEOUT)
            print(f"deleted {exchange}")

    for name, bodies in received.items():
        if bodies != sent:
            print(f"FAILED: {name} got {bodies}, not {sent}", file=sys.stderr)
            return 1
    print(f"each of the {len(received)} subscribers got all {MESSAGES} messages")
    return 0


if __name__ == "__main__":
    sys.exit(main())
