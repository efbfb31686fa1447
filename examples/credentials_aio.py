"""Credentials that change, and what a connection tells about itself (asyncio).

A token source hands out credentials that expire two seconds after they
are issued, as an OAuth2 server or a Vault lease would (here the token is
the URL's own password, so the example runs on any broker). The client
takes a provider, ``connect(credentials=tokens.fetch)``: it asks it before
connecting (and before every recovery attempt), and again at 80% of each
token's lifetime, sending the new one with connection.update-secret on the
open connection. The program prints what the connection tells about itself,
publishes with confirms while two refreshes happen, consumes everything
back, and exits 1 if a refresh failed, the connection dropped or a message
went missing.

Run it against a broker (``make broker`` starts one on localhost)::

    python examples/credentials_aio.py
"""

from __future__ import annotations

import asyncio
import datetime
import os
import sys

import amqp_client
from amqp_client import Credentials
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

    async def fetch(self) -> Credentials:
        await asyncio.sleep(0.01)  # the round trip to the token endpoint
        self.issued += 1
        expires = datetime.datetime.now(datetime.UTC) + LIFETIME
        print(f"issued token #{self.issued}, valid until {expires:%H:%M:%S.%f}")
        return Credentials(self.username, self.secret, expires_at=expires)


async def main() -> int:
    params = parse_url(URL)
    tokens = TokenSource(params.username, params.password)
    problems: list[str] = []
    async with amqp_client.connect(URL, credentials=tokens.fetch, recover=True) as conn:
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
        ch = await conn.channel()
        queue = (await ch.queue_declare("", exclusive=True)).queue
        await ch.confirm_select()
        sent = 0
        async with asyncio.timeout(TIMEOUT):
            while tokens.issued < 3:  # the first token and two refreshes
                confirmation = await ch.basic_publish(b"%d" % sent, routing_key=queue)
                assert confirmation is not None
                await confirmation
                sent += 1
                await asyncio.sleep(0.1)
        bodies = []
        while (delivery := await ch.basic_get(queue, no_ack=True)) is not None:
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
    sys.exit(asyncio.run(main()))
