"""Publisher confirms at speed (asyncio): many confirmations in flight at once.

In confirm mode the broker acknowledges every publish; waiting for each
before sending the next costs a round trip per message. Instead this
publishes MESSAGES messages in windows of WINDOW: it sends a whole window,
then awaits all of its confirmations together (``asyncio.gather``), so up
to WINDOW messages are unconfirmed at any time and the round trips overlap.
A nack raises ``MessageNacked`` from the confirmation (a real publisher
would send those again). It prints the rate, checks that the queue holds
every message, deletes the queue and exits (1 if a message is missing).

Run it against a broker (``make broker`` starts one on localhost)::

    python examples/confirms_aio.py
    AMQP_URL=amqp://user:pass@host:5672/vhost python examples/confirms_aio.py
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
import uuid

import amqp_client

URL = os.environ.get("AMQP_URL", "amqp://guest:guest@localhost:5672/%2f")
MESSAGES = 20_000
#: Publishes sent before waiting for their confirmations.
WINDOW = 1_000
#: Deadline of the whole program, seconds: nothing can wait longer.
DEADLINE = 60


async def main() -> int:
    queue = f"amqp-client-example.confirms.{uuid.uuid4().hex[:8]}"
    body = b"x" * 100
    async with asyncio.timeout(DEADLINE), amqp_client.connect(URL) as conn:
        ch: amqp_client.Channel = await conn.channel()
        # exclusive: the broker deletes the queue should this program die first.
        await ch.queue_declare(queue, exclusive=True)
        await ch.confirm_select()
        print(
            f"publishing {MESSAGES:,} messages to {queue}, {WINDOW:,} unconfirmed at most"
        )
        try:
            start = time.perf_counter()
            for first in range(0, MESSAGES, WINDOW):
                window = []
                for _ in range(first, min(first + WINDOW, MESSAGES)):
                    confirmation = await ch.basic_publish(body, routing_key=queue)
                    assert confirmation is not None  # confirm mode
                    window.append(confirmation)
                await asyncio.gather(*window)  # raises MessageNacked on a nack
            elapsed = time.perf_counter() - start
            print(
                f"all {MESSAGES:,} confirmed in {elapsed:.2f} s "
                f"({MESSAGES / elapsed:,.0f} msg/s)"
            )
        finally:
            deleted = await ch.queue_delete(queue)
            print(f"deleted {queue}, which held {deleted.message_count:,} messages")

    if deleted.message_count != MESSAGES:
        print(
            f"FAILED: the queue held {deleted.message_count:,}, not {MESSAGES:,}",
            file=sys.stderr,
        )
        return 1
    print(f"the broker confirmed and held every one of the {MESSAGES:,} messages")
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
