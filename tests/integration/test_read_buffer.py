"""Both fronts read into a buffer they reuse, never into a fresh bytes
object per read: ``socket.recv(256 KiB)`` makes an object above glibc's
mmap threshold, which is mapped, faulted in and unmapped on every read
(about 30 us a read on the development machine). The asyncio front's
connections on one loop share one buffer, so each read must be taken out
of it before the next one lands: large bodies read by several connections
at once arrive intact.
"""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import Iterator

import pytest

import amqp_client
import amqp_client.blocking
from tests.integration.helpers import amqp_url, event_loop_factory, unique

pytestmark = pytest.mark.integration


#: glibc's default mmap threshold: a fresh object this large is mapped.
MMAP_THRESHOLD = 128 * 1024


@pytest.fixture
def no_fresh_reads(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[int]]:
    """A socket.recv of a large fresh object fails the test (small ones,
    such as the blocking front's wake-up pipe, are left alone)."""
    calls: list[int] = []
    real = socket.socket.recv

    def recv(self: socket.socket, size: int, *args: int) -> bytes:
        if size >= MMAP_THRESHOLD:
            calls.append(size)
            raise AssertionError(f"socket.recv({size}) on a client connection")
        return real(self, size, *args)

    monkeypatch.setattr(socket.socket, "recv", recv)
    yield calls
    assert calls == []


def test_blocking_front_reads_into_its_buffer(no_fresh_reads: list[int]) -> None:
    with amqp_client.blocking.connect(amqp_url()) as conn:
        ch = conn.channel()
        queue = ch.queue_declare(unique("read-buffer"), exclusive=True).queue
        for _ in range(20):
            ch.queue_declare(queue, passive=True)
        body = os.urandom(600_000)  # more than one read's worth
        ch.basic_publish(body, routing_key=queue)
        got = ch.basic_get(queue, no_ack=True, timeout=10)
        assert got is not None and got.body == body


def test_asyncio_front_reads_into_the_loops_buffer(no_fresh_reads: list[int]) -> None:
    async def scenario() -> None:
        async with await amqp_client.connect(amqp_url()) as conn:
            ch = await conn.channel()
            queue = (
                await ch.queue_declare(unique("read-buffer"), exclusive=True)
            ).queue
            for _ in range(20):
                await ch.queue_declare(queue, passive=True)

    with asyncio.Runner(loop_factory=event_loop_factory()) as runner:
        runner.run(scenario())


def test_connections_of_one_loop_share_the_buffer_safely() -> None:
    """Three connections consume large, distinct bodies at the same time on
    one loop (their reads interleave in the shared buffer)."""
    bodies = [os.urandom(300_000 + 1000 * i) for i in range(12)]

    async def consume(queue: str, expected: list[bytes]) -> list[bytes]:
        async with await amqp_client.connect(amqp_url()) as conn:
            ch = await conn.channel()
            await ch.basic_qos(prefetch_count=4)
            got: list[bytes] = []
            async with await ch.basic_consume(queue) as consumer:
                async for delivery in consumer:
                    got.append(delivery.body)
                    await delivery.ack()
                    if len(got) == len(expected):
                        break
            return got

    async def scenario() -> None:
        async with await amqp_client.connect(amqp_url()) as conn:
            ch = await conn.channel()
            queues = []
            for i in range(3):
                q = (
                    await ch.queue_declare(
                        unique(f"read-buffer-{i}"),
                        auto_delete=True,
                        arguments={"x-expires": 60_000},
                    )
                ).queue
                queues.append(q)
            for i, body in enumerate(bodies):
                await ch.basic_publish(body, routing_key=queues[i % 3])
            results = await asyncio.wait_for(
                asyncio.gather(
                    *(consume(q, bodies[i::3]) for i, q in enumerate(queues))
                ),
                60,
            )
            for i, got in enumerate(results):
                assert got == bodies[i::3]

    with asyncio.Runner(loop_factory=event_loop_factory()) as runner:
        runner.run(scenario())
