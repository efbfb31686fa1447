"""RPC over direct reply-to (asyncio): a fib(n) server and a client, in one process.

The server consumes a request queue and answers each request by publishing
fib(n) to the request's ``reply_to`` with its ``correlation_id``. The client
uses RabbitMQ's direct reply-to: it consumes the pseudo-queue
``amq.rabbitmq.reply-to`` (with ``no_ack=True``, which direct reply-to
requires) and publishes requests with ``reply_to="amq.rabbitmq.reply-to"``
on the same channel; the broker routes the answers straight back to that
consumer, with no reply queue to declare. The client keeps one future per
correlation id, so many calls can be in flight at once and answers are
matched whatever their order. Server and client use separate connections,
as they would in separate programs. The program checks every answer,
deletes the request queue and exits (1 on a wrong answer).

Run it against a broker (``make broker`` starts one on localhost)::

    python examples/rpc_aio.py
    AMQP_URL=amqp://user:pass@host:5672/vhost python examples/rpc_aio.py
"""

from __future__ import annotations

import asyncio
import os
import sys
import uuid

import amqp_client

URL = os.environ.get("AMQP_URL", "amqp://guest:guest@localhost:5672/%2f")
REPLY_TO = "amq.rabbitmq.reply-to"
#: Deadline of the whole program, seconds: nothing can wait longer.
DEADLINE = 30
#: How long one call waits for its answer, seconds.
CALL_TIMEOUT = 10


def fib(n: int) -> int:
    a, b = 0, 1
    for _ in range(n):
        a, b = b, a + b
    return a


async def serve(ch: amqp_client.Channel, requests: amqp_client.Consumer) -> int:
    """Answer requests until the consumer is cancelled; return how many."""
    served = 0
    async for request in requests:
        n = int(request.body)
        reply_to = request.properties.reply_to
        if reply_to is None:  # nobody to answer: drop it
            await request.reject(requeue=False)
            continue
        print(f"  server: fib({n}) = {fib(n)}")
        await ch.basic_publish(
            str(fib(n)).encode(),
            routing_key=reply_to,  # the broker's name for the client's consumer
            properties=amqp_client.BasicProperties(
                correlation_id=request.properties.correlation_id
            ),
        )
        await request.ack()
        served += 1
    return served


class FibClient:
    """Calls the server; any number of calls may be in flight at once."""

    def __init__(self, ch: amqp_client.Channel, request_queue: str) -> None:
        self._ch = ch
        self._request_queue = request_queue
        self._pending: dict[str, asyncio.Future[int]] = {}
        self._replies: amqp_client.Consumer | None = None
        self._reader: asyncio.Task[None] | None = None

    async def start(self) -> None:
        # Consume the pseudo-queue before the first request names it in reply_to.
        self._replies = await self._ch.basic_consume(REPLY_TO, no_ack=True)
        self._reader = asyncio.create_task(self._read(self._replies))

    async def _read(self, replies: amqp_client.Consumer) -> None:
        async for reply in replies:
            future = self._pending.pop(reply.properties.correlation_id or "", None)
            if future is not None and not future.done():
                future.set_result(int(reply.body))

    async def call(self, n: int) -> int:
        correlation_id = uuid.uuid4().hex
        future: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._pending[correlation_id] = future
        try:
            await self._ch.basic_publish(
                str(n).encode(),
                routing_key=self._request_queue,
                properties=amqp_client.BasicProperties(
                    reply_to=REPLY_TO, correlation_id=correlation_id
                ),
            )
            async with asyncio.timeout(CALL_TIMEOUT):
                return await future
        finally:
            self._pending.pop(correlation_id, None)

    async def close(self) -> None:
        if self._replies is not None:
            await self._replies.cancel()
        if self._reader is not None:
            await self._reader


async def main() -> int:
    request_queue = f"amqp-client-example.rpc.{uuid.uuid4().hex[:8]}"
    numbers = [*range(11), 30, 60, 90]
    async with (
        asyncio.timeout(DEADLINE),
        amqp_client.connect(URL, connection_name="fib server") as server_conn,
        amqp_client.connect(URL, connection_name="fib client") as client_conn,
    ):
        server_ch: amqp_client.Channel = await server_conn.channel()
        await server_ch.queue_declare(request_queue)
        try:
            await server_ch.basic_qos(prefetch_count=10)
            requests = await server_ch.basic_consume(request_queue)
            server = asyncio.create_task(serve(server_ch, requests))
            print(f"server: serving fib(n) on {request_queue}")

            client = FibClient(await client_conn.channel(), request_queue)
            await client.start()
            print(f"client: calling fib(n) for n in {numbers}, all at once")
            answers = await asyncio.gather(*(client.call(n) for n in numbers))
            for n, answer in zip(numbers, answers, strict=True):
                print(f"client: fib({n}) -> {answer}")
            await client.close()

            await requests.cancel()
            served = await server
        finally:
            await server_ch.queue_delete(request_queue)
            print(f"deleted {request_queue}")

    wrong = [
        (n, answer)
        for n, answer in zip(numbers, answers, strict=True)
        if answer != fib(n)
    ]
    if wrong or served != len(numbers):
        print(
            f"FAILED: wrong answers {wrong}, {served} requests served", file=sys.stderr
        )
        return 1
    print(f"all {len(numbers)} calls answered correctly over direct reply-to")
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
