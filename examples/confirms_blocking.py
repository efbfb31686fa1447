"""Publisher confirms at speed (blocking): a sliding window of confirmations.

In confirm mode the broker acknowledges every publish; waiting for each
before sending the next costs a round trip per message. Instead this keeps
the confirmations of the last WINDOW publishes in a deque and, once the
window is full, waits only for the oldest before publishing the next, so up
to WINDOW messages are unconfirmed at any time and the round trips overlap.
A nack raises ``MessageNacked`` from ``wait()`` (a real publisher would send
those again). It prints the rate, checks that the queue holds every message,
deletes the queue and exits (1 if a message is missing).

Run it against a broker (``make broker`` starts one on localhost)::

    python examples/confirms_blocking.py
    AMQP_URL=amqp://user:pass@host:5672/vhost python examples/confirms_blocking.py
"""

from __future__ import annotations

import os
import sys
import time
import uuid
from collections import deque

from amqp_client import blocking

URL = os.environ.get("AMQP_URL", "amqp://guest:guest@localhost:5672/%2f")
MESSAGES = 20_000
#: Publishes unconfirmed at most.
WINDOW = 1_000
#: The longest any single step may wait for the broker, seconds.
TIMEOUT = 10


def main() -> int:
    queue = f"amqp-client-example.confirms.{uuid.uuid4().hex[:8]}"
    body = b"x" * 100
    with blocking.connect(URL, connection_timeout=TIMEOUT) as conn:
        ch: blocking.Channel = conn.channel(timeout=TIMEOUT)
        # exclusive: the broker deletes the queue should this program die first.
        ch.queue_declare(queue, exclusive=True, timeout=TIMEOUT)
        ch.confirm_select(timeout=TIMEOUT)
        print(
            f"publishing {MESSAGES:,} messages to {queue}, {WINDOW:,} unconfirmed at most"
        )
        try:
            start = time.perf_counter()
            unconfirmed: deque[blocking.Confirmation] = deque()
            for _ in range(MESSAGES):
                if len(unconfirmed) == WINDOW:
                    # raises MessageNacked on a nack
                    unconfirmed.popleft().wait(timeout=TIMEOUT)
                confirmation = ch.basic_publish(body, routing_key=queue)
                assert confirmation is not None  # confirm mode
                unconfirmed.append(confirmation)
            while unconfirmed:
                unconfirmed.popleft().wait(timeout=TIMEOUT)
            elapsed = time.perf_counter() - start
            print(
                f"all {MESSAGES:,} confirmed in {elapsed:.2f} s "
                f"({MESSAGES / elapsed:,.0f} msg/s)"
            )
        finally:
            deleted = ch.queue_delete(queue, timeout=TIMEOUT)
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
    sys.exit(main())
