"""Topic routing (asyncio): bindings with wildcards pick which queues get what.

A topic exchange routes on dot-separated routing keys: in a binding, ``*``
stands for exactly one word and ``#`` for zero or more. Two queues are bound:
"kern" with ``kern.*`` and "critical" with ``*.critical``. Messages go out
with routing keys such as ``kern.critical`` (both queues), ``kern.info``
(kern only), ``app.critical`` (critical only), and ``app.info`` and
``kern.disk.info``, which match no binding: they are published with
``mandatory=True``, so the broker returns them and their confirmation
raises ``MessageReturned``. The program then empties each queue with
basic.get, prints which queue got what, checks it against the expected
routing, deletes what it declared and exits (1 on a mismatch).

Run it against a broker (``make broker`` starts one on localhost)::

    python examples/topic_routing_aio.py
    AMQP_URL=amqp://user:pass@host:5672/vhost python examples/topic_routing_aio.py
"""

from __future__ import annotations

import asyncio
import os
import sys
import uuid

import amqp_client

URL = os.environ.get("AMQP_URL", "amqp://guest:guest@localhost:5672/%2f")
#: Deadline of the whole program, seconds: nothing can wait longer.
DEADLINE = 30

#: queue -> its binding key
BINDINGS = {"kern": "kern.*", "critical": "*.critical"}
#: routing key -> the queues it must reach (none: returned to the publisher)
EXPECTED = {
    "kern.critical": {"kern", "critical"},
    "kern.info": {"kern"},
    "app.critical": {"critical"},
    "app.info": set(),
    "kern.disk.info": set(),  # `*` matches one word, not two
}


async def main() -> int:
    run = uuid.uuid4().hex[:8]
    exchange = f"amqp-client-example.topic.{run}"
    queues = {name: f"amqp-client-example.{name}.{run}" for name in BINDINGS}
    got: dict[str, set[str]] = {name: set() for name in BINDINGS}
    returned: set[str] = set()
    async with asyncio.timeout(DEADLINE), amqp_client.connect(URL) as conn:
        ch: amqp_client.Channel = await conn.channel()
        await ch.exchange_declare(exchange, "topic")
        print(f"declared the topic exchange {exchange}")
        try:
            for name, binding in BINDINGS.items():
                await ch.queue_declare(queues[name], exclusive=True)
                await ch.queue_bind(queues[name], exchange, binding)
                print(f"bound queue {name!r} with {binding!r}")

            await ch.confirm_select()
            for key in EXPECTED:
                confirmation = await ch.basic_publish(
                    f"event {key}".encode(),
                    exchange=exchange,
                    routing_key=key,
                    mandatory=True,  # come back if no queue matches
                )
                assert confirmation is not None  # confirm mode
                try:
                    await confirmation
                    print(f"published {key!r}: routed")
                except amqp_client.MessageReturned as returned_message:
                    print(f"published {key!r}: returned, {returned_message}")
                    returned.add(key)

            # Every routed message is in its queues once confirmed: basic.get
            # empties each queue without waiting.
            for name, queue in queues.items():
                while (delivery := await ch.basic_get(queue, no_ack=True)) is not None:
                    got[name].add(delivery.routing_key)
                print(f"queue {name!r} got {sorted(got[name])}")
        finally:
            for queue in queues.values():
                await ch.queue_delete(queue)
            await ch.exchange_delete(exchange)
            print(f"deleted the queues and {exchange}")

    for name in BINDINGS:
        expected = {key for key, targets in EXPECTED.items() if name in targets}
        if got[name] != expected:
            print(
                f"FAILED: queue {name!r} got {sorted(got[name])}, not {sorted(expected)}",
                file=sys.stderr,
            )
            return 1
    unroutable = {key for key, targets in EXPECTED.items() if not targets}
    if returned != unroutable:
        print(
            f"FAILED: returned {sorted(returned)}, not {sorted(unroutable)}",
            file=sys.stderr,
        )
        return 1
    print("every message reached exactly the queues its routing key matches")
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
