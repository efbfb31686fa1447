"""How many bytes each front asks one socket read for (``next_read_size``).

A read of 128 KiB or more is a fresh mmap in glibc until the process has
freed a block that large: two page faults per round trip even when the
reply is 100 bytes. Both fronts therefore read 64 KiB at a time, and
256 KiB while reads come back full (bulk input: 1 MiB bodies).
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

import amqp_client
import amqp_client.aio.connection as aio_connection
import amqp_client.blocking.connection as blocking_connection
from amqp_client import blocking
from amqp_client.session.link import READ_LARGE, READ_SMALL, next_read_size
from tests.integration.helpers import STEP, amqp_url, unique

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
BODY = b"x" * (1 << 20)  # a body that arrives in reads that come back full
ROUND_TRIPS = 50


def test_reads_grow_while_they_come_back_full() -> None:
    assert next_read_size(READ_SMALL, 100) == READ_SMALL
    assert next_read_size(READ_SMALL, READ_SMALL) == READ_LARGE
    assert next_read_size(READ_LARGE, READ_LARGE) == READ_LARGE
    assert next_read_size(READ_LARGE, READ_LARGE - 1) == READ_SMALL
    assert next_read_size(READ_LARGE, 0) == READ_SMALL  # (end of input)
    assert READ_SMALL < 128 * 1024 <= READ_LARGE  # glibc's mmap threshold


@pytest.fixture
def asked(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[int]]:
    """The size every read of either front asked for, in order."""
    sizes: list[int] = []

    def recording(size: int, got: int) -> int:
        sizes.append(size)
        return next_read_size(size, got)

    for module in (aio_connection, blocking_connection):
        monkeypatch.setattr(module, "next_read_size", recording)
    yield sizes


def _phases(asked: list[int], run: Callable[[Callable[[], None]], None]) -> None:
    """``run(mark)`` does round trips, bulk input, round trips, calling
    ``mark()`` between the phases; each phase's reads are checked."""
    marks: list[int] = []
    run(lambda: marks.append(len(asked)))
    first, bulk, last = asked[: marks[0]], asked[marks[0] : marks[1]], asked[marks[1] :]
    assert len(first) >= ROUND_TRIPS and len(last) >= ROUND_TRIPS
    assert set(first[1:]) == {READ_SMALL}, first  # (the first: before the change)
    assert READ_LARGE in bulk, bulk
    # Back to small reads once the bulk input is over (at most one large
    # read after it, the one that came back short).
    assert set(last[1:]) == {READ_SMALL}, last


def test_blocking_reads_small_for_replies_large_for_bulk(asked: list[int]) -> None:
    def run(mark: Callable[[], None]) -> None:
        queue = unique("read-size")
        with blocking.connect(amqp_url(), connection_timeout=STEP) as conn:
            ch = conn.channel(timeout=STEP)
            ch.queue_declare(queue, exclusive=True, timeout=STEP)
            for _ in range(ROUND_TRIPS):
                ch.queue_declare(queue, passive=True, timeout=STEP)
            mark()
            for _ in range(4):
                ch.basic_publish(BODY, routing_key=queue)
            got = 0
            while got < 4:
                delivery = ch.basic_get(queue, no_ack=True, timeout=STEP)
                got += delivery is not None
            mark()
            for _ in range(ROUND_TRIPS):
                ch.queue_declare(queue, passive=True, timeout=STEP)

    _phases(asked, run)


def test_asyncio_reads_small_for_replies_large_for_bulk(asked: list[int]) -> None:
    async def scenario(mark: Callable[[], None]) -> None:
        queue = unique("read-size")
        async with amqp_client.connect(amqp_url()) as conn:
            ch = await conn.channel()
            await ch.queue_declare(queue, exclusive=True)
            for _ in range(ROUND_TRIPS):
                await ch.queue_declare(queue, passive=True)
            mark()
            for _ in range(4):
                await ch.basic_publish(BODY, routing_key=queue)
            got = 0
            while got < 4:
                got += await ch.basic_get(queue, no_ack=True) is not None
            mark()
            for _ in range(ROUND_TRIPS):
                await ch.queue_declare(queue, passive=True)

    _phases(asked, lambda mark: asyncio.run(asyncio.wait_for(scenario(mark), 60)))


#: A fresh process (so no earlier test has raised glibc's mmap threshold)
#: makes 500 round trips and prints the page faults they took.
_FAULTS = textwrap.dedent(
    """
    import asyncio, resource, sys
    import amqp_client
    from amqp_client import blocking

    def faults():
        return resource.getrusage(resource.RUSAGE_SELF).ru_minflt

    url, queue, front = sys.argv[1:4]
    if front == "blocking":
        with blocking.connect(url, connection_timeout=10) as conn:
            ch = conn.channel(timeout=10)
            ch.queue_declare(queue, exclusive=True, timeout=10)
            ch.queue_declare(queue, passive=True, timeout=10)
            before = faults()
            for _ in range(500):
                ch.queue_declare(queue, passive=True, timeout=10)
            print(faults() - before)
    else:
        async def main():
            async with amqp_client.connect(url) as conn:
                ch = await conn.channel()
                await ch.queue_declare(queue, exclusive=True)
                await ch.queue_declare(queue, passive=True)
                before = faults()
                for _ in range(500):
                    await ch.queue_declare(queue, passive=True)
                print(faults() - before)
        asyncio.run(asyncio.wait_for(main(), 60))
    """
)


@pytest.mark.skipif(sys.platform != "linux", reason="glibc's mmap threshold")
@pytest.mark.parametrize("front", ["aio", "blocking"])
def test_round_trips_take_no_page_faults(front: str) -> None:
    proc = subprocess.run(
        [sys.executable, "-c", _FAULTS, amqp_url(), unique("read-faults"), front],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    faults = int(proc.stdout.split()[-1])
    # With 256 KiB reads: two a round trip (about 1,000). A few may come
    # from the heap growing or the I/O thread's rests.
    assert faults < 100, f"{faults} page faults in 500 round trips"
