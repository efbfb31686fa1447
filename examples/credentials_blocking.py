"""Credentials that change, and what a connection tells about itself (blocking).

The same as credentials_aio.py with the threaded client: the provider is
a plain function (a method here), called before connecting, before every
recovery attempt, and at 80% of each token's lifetime on the connection's
refresh thread, which sends the new token with connection.update-secret.
The program prints what the connection tells about itself, publishes with
confirms while two refreshes happen, consumes everything back, and exits
1 if a refresh failed, the connection dropped or a message went missing.

Run it against a broker (``make broker`` starts one on localhost)::

    python examples/credentials_blocking.py
"""

from __future__ import annotations

import datetime
import os
import sys
import threading
import time

from amqp_client import Credentials, blocking
from amqp_client.uri import parse_url

URL = os.environ.get("AMQP_URL", "amqp://guest:guest@localhost:5672/%2f")
LIFETIME = datetime.timedelta(seconds=2)
TIMEOUT = 10.0


class TokenSource:
    """Stands in for a token endpoint: each token is valid for LIFETIME."""

    def __init__(self, username: str, secret: str) -> None:
        self.username = username
        self.secret = secret
        self.issued = 0
        self.lock = threading.Lock()  # called from the client's threads

    def fetch(self) -> Credentials:
        time.sleep(0.01)  # the round trip to the token endpoint
        with self.lock:
            self.issued += 1
            number = self.issued
        expires = datetime.datetime.now(datetime.UTC) + LIFETIME
        print(f"issued token #{number}, valid until {expires:%H:%M:%S.%f}")
        return Credentials(self.username, self.secret, expires_at=expires)


def main() -> int:
    params = parse_url(URL)
    tokens = TokenSource(params.username, params.password)
    problems: list[str] = []
    with blocking.connect(URL, credentials=tokens.fetch, recover=True) as conn:
        conn.add_on_credentials_error_callback(
            lambda error: problems.append(f"refresh failed: {error}")
        )
        conn.add_on_lost_callback(lambda error: problems.append(f"lost: {error}"))
        print(
            f"connected to RabbitMQ {conn.server_version} (cluster "
            f"{conn.server_properties.get('cluster_name')!r}) at {conn.peer_address} "
            f"from {conn.local_address}"
        )
        print(
            f"negotiated: heartbeat {conn.heartbeat} s, frame_max {conn.frame_max}, "
            f"channel_max {conn.channel_max}; open={conn.is_open}, "
            f"blocked={conn.is_blocked}"
        )
        ch = conn.channel(timeout=TIMEOUT)
        queue = ch.queue_declare("", exclusive=True, timeout=TIMEOUT).queue
        ch.confirm_select(timeout=TIMEOUT)
        sent = 0
        deadline = time.monotonic() + TIMEOUT
        while tokens.issued < 3:  # the first token and two refreshes
            if time.monotonic() > deadline:
                problems.append(f"only {tokens.issued} tokens in {TIMEOUT} s")
                break
            confirmation = ch.basic_publish(b"%d" % sent, routing_key=queue)
            assert confirmation is not None
            confirmation.wait(TIMEOUT)
            sent += 1
            time.sleep(0.1)
        bodies = []
        while (
            delivery := ch.basic_get(queue, no_ack=True, timeout=TIMEOUT)
        ) is not None:
            bodies.append(delivery.body)
        print(f"published {sent} confirmed messages, got {len(bodies)} back")
        print(f"channel open={ch.is_open}; connection open={conn.is_open}")
        if bodies != [b"%d" % n for n in range(sent)] or not conn.is_open:
            problems.append(f"{sent} sent, {len(bodies)} received, open={conn.is_open}")
    if problems:
        print("FAILED:", *problems, sep="\n  ", file=sys.stderr)
        return 1
    print(
        "refreshed the credentials twice with update-secret; the connection never dropped"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
