"""A consumer that rides through a lost connection (asyncio).

The consumer connects with ``recover=True``. To show recovery without
harming the broker, it reaches the broker through a small TCP relay in
this program, which cuts every connection once the first batch has been
consumed. The connection notices, reconnects with backoff, reopens its
channel with the same prefetch, redeclares the queue and restarts the
consumer under the same tag: the same ``async for`` loop goes on and gets
the second batch, published after the cut. Deliveries not acked before the
cut come again (``redelivered``); acking an old one is a no-op, since its
delivery tag died with the old connection. The program checks that every
message arrived, deletes the queue and exits (1 on failure).

Run it against a broker (``make broker`` starts one on localhost)::

    python examples/recovering_consumer_aio.py
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
import uuid
from urllib.parse import urlsplit

import amqp_client
from amqp_client.uri import parse_url

URL = os.environ.get("AMQP_URL", "amqp://guest:guest@localhost:5672/%2f")
BATCH = 10
DEADLINE = 30


class Relay:
    """Forwards TCP connections to the broker; ``cut()`` drops them all."""

    def __init__(self, host: str, port: int) -> None:
        self.target = (host, port)
        self.transports: list[asyncio.WriteTransport] = []
        self.server: asyncio.Server | None = None

    async def start(self) -> int:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return int(self.server.sockets[0].getsockname()[1])

    async def _serve(
        self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter
    ) -> None:
        broker_r, broker_w = await asyncio.open_connection(*self.target)
        self.transports += [client_w.transport, broker_w.transport]

        async def pipe(
            reader: asyncio.StreamReader, writer: asyncio.StreamWriter
        ) -> None:
            try:
                while data := await reader.read(65536):
                    writer.write(data)
                    await writer.drain()
            except ConnectionError:
                pass
            finally:
                writer.transport.abort()

        await asyncio.gather(pipe(client_r, broker_w), pipe(broker_r, client_w))

    def cut(self) -> None:
        for transport in self.transports:
            transport.abort()
        self.transports.clear()

    async def close(self) -> None:
        self.cut()
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()


def through(url: str, port: int) -> str:
    """``url`` with its host and port replaced by the relay's."""
    parts = urlsplit(url)
    userinfo, _, _ = parts.netloc.rpartition("@")
    netloc = f"{userinfo}@127.0.0.1:{port}" if userinfo else f"127.0.0.1:{port}"
    return parts._replace(netloc=netloc).geturl()


async def main() -> int:
    # The client logs the loss and the recovery (warnings): show them.
    logging.basicConfig(stream=sys.stdout, format="log: %(message)s")
    params = parse_url(URL)
    relay = Relay(params.host, params.port)
    port = await relay.start()
    queue = f"amqp-client-example.recovering.{uuid.uuid4().hex[:8]}"
    seen: set[int] = set()
    redelivered = 0
    try:
        async with (
            asyncio.timeout(DEADLINE),
            amqp_client.connect(URL) as publisher,
            amqp_client.connect(
                through(URL, port),
                recover=True,
                recovery_delay=0.1,
                recovery_max_delay=1.0,
            ) as conn,
        ):
            recovered = asyncio.Event()
            conn.add_on_lost_callback(lambda error: print(f"connection lost: {error}"))

            def on_recovered() -> None:
                print("recovered: channel, queue and consumer restored")
                recovered.set()

            conn.add_on_recovered_callback(on_recovered)
            ch = await conn.channel()
            await ch.basic_qos(prefetch_count=5)
            await ch.queue_declare(queue, arguments={"x-expires": 60_000})
            consumer = await ch.basic_consume(queue)

            pub = await publisher.channel()
            await pub.confirm_select()

            async def publish(first: int) -> None:
                confirmations = []
                for n in range(first, first + BATCH):
                    confirmation = await pub.basic_publish(
                        str(n).encode(), routing_key=queue
                    )
                    assert confirmation is not None  # the channel is in confirm mode
                    confirmations.append(confirmation)
                await asyncio.gather(*confirmations)

            await publish(0)
            async for delivery in consumer:
                number = int(delivery.body)
                redelivered += delivery.redelivered
                seen.add(number)
                await delivery.ack()
                if len(seen) == BATCH and not recovered.is_set():
                    print(f"consumed the first {BATCH}; cutting the connection")
                    relay.cut()
                    await recovered.wait()
                    await publish(BATCH)
                if len(seen) == 2 * BATCH:
                    break
            print(f"consumer tag kept: {consumer.consumer_tag}")
            await pub.queue_delete(queue)
    finally:
        await relay.close()
    if seen != set(range(2 * BATCH)):
        print(
            f"FAILED: missing {sorted(set(range(2 * BATCH)) - seen)}", file=sys.stderr
        )
        return 1
    print(
        f"the consumer rode through the cut and got all {2 * BATCH} messages "
        f"({redelivered} redelivered)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
