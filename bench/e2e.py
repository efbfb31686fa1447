"""End-to-end benchmark against a real RabbitMQ: amqp_client and its peers.

The peers are the Python clients pika, aio-pika, py-amqp and AMQPStorm, and
the Go client amqp091-go; "vs best peer" compares with the best of them.

Workloads (N for a full run; ``--quick`` divides every N by 10 and does 1 run):

W1  publish 100,000 x 128 B without confirms, timed until the broker counts
    them all (passive queue.declare polled from a separate connection).
W2  the same with publisher confirms, at most 1,000 unconfirmed at a time.
    A client that only offers per-publish confirmation is measured that way
    and the output says so (see ``Adapter.confirm_mode``).
W3  consume 100,000 x 128 B from a queue filled beforehand (outside the
    timing), basic.qos prefetch_count 1,000, one basic.ack per message.
W4  2,000 passive queue.declare round trips on one channel: p50 and p99.
W5  200 x 1 MiB published without confirms, then consumed (prefetch 1,000,
    one ack each); MB/s = 200 MiB / (publish + consume time), in 10^6 bytes.

The runs of a workload are always interleaved: run 1 of every client, then
run 2 in the reverse order, and so on, so that drift in the load of a
shared machine between the start and the end of a workload hits every
client alike instead of the ones that happen to run last.

Every (client, workload, run) runs in its own child process (``--worker``)
on a fresh, uniquely named, non-durable queue that the child deletes at the
end (and the parent again if the child failed; ``x-expires`` is the last
resort). A child gets a deadline for every wait and is killed when it
overruns, and a failing client is reported as failed while the run goes on.
The queue setup, prefill and broker-count polling are done by one neutral
helper connection (pika), the same for every client. CPU share is the
child's process CPU time over the timed wall time, minus the CPU the
polling helper spent; the broker runs on the same cores, so a client that
keeps the CPU busy also slows the broker.

amqp091-go runs as bench/go/main.go, a Go worker built once per run with
the local toolchain, offline, against Debian's packaged source (``make
bench-go`` installs both; ``--build-go`` only builds). Its Python worker
child stays the wrapper, exactly as for the Python clients (helper
connection, clock, CPU share), and drives the Go worker over a pipe
(``GoAdapter`` says how the figures stay the same measurement). Without Go
or the library the client is reported as unavailable, with the reason, in
every table it was asked for (the exit status is then 1, as for a failure).

Not a test: timings are never asserted, only message counts.
``python bench/e2e.py --help`` lists the options.

``--baseline DIR`` compares the code in this tree with an older checkout of
the project (built in place: ``pip install -e`` or ``setup.py build_ext
--inplace``) in the same run on the same machine. ``amqp_client@base`` and
``amqp_client.blocking@base`` are then the same adapters run with DIR's
code: their children get a shim directory first on ``PYTHONPATH`` whose
``amqp_client`` is a directory of symlinks to DIR's package, plus the
sub-packages DIR's ``pyproject.toml`` maps elsewhere (``amqp_client.spec``
is ``generated/``), and every ``amqp_client`` module such a child loaded is
checked to come from DIR. Each table then gets a "cur/base" column:
current / baseline for the same front (baseline p50 / current p50 in W4),
so above 1.00 means the current code is faster.

Adding a client is one adapter class (sync: the five methods below; asyncio:
subclass ``AsyncAdapter`` and write the five ``a...`` coroutines) plus one
line in ``ADAPTERS``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime
import importlib.metadata
import json
import os
import platform
import select
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import tomllib
import urllib.parse
import uuid
from collections import deque
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from typing import IO, Any, ClassVar, Protocol, TypeVar

DEFAULT_URL = "amqp://guest:guest@127.0.0.1:5672/%2f"

T = TypeVar("T")
WINDOW = 1_000  # W2: most unconfirmed publishes at a time
PREFETCH = 1_000  # W3, W5: basic.qos prefetch_count
POLL_INTERVAL = 0.002  # seconds between two broker-count polls
QUEUE_EXPIRES_MS = 900_000  # x-expires: the broker drops a forgotten queue
RESULT_MARK = "E2E-RESULT "
PEERS = ("pika", "aio-pika", "py-amqp", "AMQPStorm", "amqp091-go")
BASE_SUFFIX = "@base"  # a client run with the --baseline checkout's code
BASELINE_FRONTS = ("amqp_client", "amqp_client.blocking")  # have an @base twin
NOTEL_SUFFIX = "/notel"  # the same front with connect(telemetry=False)
POLL_SUFFIX = "/poll"  # the same front with connect(busy_poll=BUSY_POLL)
#: The spin of the /poll twins, seconds: a few times what a broker on this
#: machine takes to answer a passive queue.declare (30-50 us here).
BUSY_POLL = 200e-6


# --- the context an adapter works in -------------------------------------------


class BenchError(Exception):
    """A workload did not do what it should (wrong count, nack, ...)."""


class Admin:
    """The neutral helper connection (pika, heartbeats off): declares, fills,
    counts and deletes the benchmark queue. Never timed as the client."""

    def __init__(self, url: str) -> None:
        import pika

        params = pika.URLParameters(url)
        params.heartbeat = 0
        params.socket_timeout = 30
        params.blocked_connection_timeout = 60
        self._conn = pika.BlockingConnection(params)
        self._ch = self._conn.channel()
        version = self._conn._impl.server_properties.get("version", "?")
        if isinstance(version, bytes):
            version = version.decode("ascii", "replace")
        self.server_version = str(version)

    def declare(self, queue: str) -> None:
        self._ch.queue_declare(
            queue,
            durable=False,
            auto_delete=False,
            arguments={"x-expires": QUEUE_EXPIRES_MS},
        )

    def count(self, queue: str) -> int:
        ok = self._ch.queue_declare(queue, passive=True)
        return int(ok.method.message_count)

    def fill(self, queue: str, n: int, body: bytes) -> None:
        for _ in range(n):
            self._ch.basic_publish("", queue, body)

    def delete(self, queue: str) -> None:
        self._ch.queue_delete(queue)

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._conn.close()


@dataclass
class Ctx:
    """What an adapter gets: the parameters of the workload, a clock to start
    and stop, and the broker-count wait (sync and async)."""

    url: str
    queue: str
    n: int
    body: bytes
    window: int
    prefetch: int
    timeout: float
    admin: Admin
    deadline: float = 0.0
    t0: float | None = None
    t1: float | None = None
    cpu0: float = 0.0
    cpu1: float = 0.0
    poll_cpu: float = 0.0
    counted: int = -1
    notes: list[str] = field(default_factory=list)
    #: The built amqp091-go worker (bench/go), for GoAdapter; from the job.
    go_worker: str | None = None
    #: CPU seconds another process spent for the client between start() and
    #: stop() (the Go worker), added to this process's own.
    child_cpu: float = 0.0

    def arm(self) -> None:
        self.deadline = time.monotonic() + self.timeout

    def remaining(self) -> float:
        """Seconds left before the deadline; raises TimeoutError past it."""
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError(f"workload exceeded its {self.timeout:.0f} s deadline")
        return left

    def start(self) -> None:
        self.cpu0 = time.process_time()
        self.t0 = time.perf_counter()

    def stop(self) -> None:
        self.t1 = time.perf_counter()
        self.cpu1 = time.process_time()

    def _poll(self) -> int:
        c0 = time.thread_time()
        try:
            return self.admin.count(self.queue)
        finally:
            self.poll_cpu += time.thread_time() - c0

    def _check(self, count: int, n: int) -> bool:
        self.counted = count
        if count > n:
            raise BenchError(f"broker counts {count} messages, {n} were published")
        if count == n:
            return True
        self.remaining()
        return False

    def wait_count(self, n: int) -> None:
        """Block until the broker counts n ready messages in the queue."""
        while not self._check(self._poll(), n):
            time.sleep(POLL_INTERVAL)

    async def wait_count_async(self, n: int) -> None:
        """The same for asyncio adapters: polls in a thread, never blocks the
        loop (which may still be flushing the last publishes)."""
        while not self._check(await asyncio.to_thread(self._poll), n):
            await asyncio.sleep(POLL_INTERVAL)


# --- the adapter interface ------------------------------------------------------


class Adapter(Protocol):
    """One client library. Each method connects (untimed), calls
    ``ctx.start()``, does the workload, calls ``ctx.stop()`` and closes."""

    # Plain class attributes in an adapter (read-only here).
    @property
    def name(self) -> str:
        """The client's name in the tables and in --clients."""
        ...

    @property
    def peer(self) -> bool:
        """True for the peers the ratios are taken against (the Python
        clients and amqp091-go; not this project's fronts)."""
        ...

    @property
    def confirm_mode(self) -> str:
        """How W2 confirms: "window" (up to ctx.window unconfirmed) or what
        the client offers instead ("per-publish")."""
        ...

    @property
    def confirm_note(self) -> str:
        """One line on how W2 confirms (printed under the W2 table)."""
        ...

    @property
    def w2_max(self) -> int | None:
        """W2 publishes at most this many (a per-publish client may be slow)."""
        ...

    def publish(self, ctx: Ctx) -> None:
        """W1: ctx.n x ctx.body, no confirms, then ``ctx.wait_count(ctx.n)``."""
        ...

    def publish_confirmed(self, ctx: Ctx) -> None:
        """W2: as W1 in confirm mode, at most ctx.window unconfirmed."""
        ...

    def consume(self, ctx: Ctx) -> int:
        """W3: consume ctx.n with prefetch ctx.prefetch, ack each; stop the
        clock at the n-th ack; returns the number of messages consumed."""
        ...

    def passive_declare(self, ctx: Ctx) -> list[int]:
        """W4: ctx.n passive queue.declare; returns each latency in ns."""
        ...

    def publish_consume(self, ctx: Ctx) -> int:
        """W5: publish ctx.n x ctx.body without confirms, then consume and ack
        them; returns the number of body bytes consumed."""
        ...


class AsyncAdapter:
    """Base for asyncio clients: every workload runs in ``asyncio.run``."""

    async def apublish(self, ctx: Ctx) -> None:
        raise NotImplementedError

    async def apublish_confirmed(self, ctx: Ctx) -> None:
        raise NotImplementedError

    async def aconsume(self, ctx: Ctx) -> int:
        raise NotImplementedError

    async def apassive_declare(self, ctx: Ctx) -> list[int]:
        raise NotImplementedError

    async def apublish_consume(self, ctx: Ctx) -> int:
        raise NotImplementedError

    #: What makes the event loop (None: asyncio's own).
    loop_factory: Callable[[], asyncio.AbstractEventLoop] | None = None

    def run(self, main: Coroutine[Any, Any, T]) -> T:
        with asyncio.Runner(loop_factory=self.loop_factory) as runner:
            return runner.run(main)

    def publish(self, ctx: Ctx) -> None:
        self.run(self.apublish(ctx))

    def publish_confirmed(self, ctx: Ctx) -> None:
        self.run(self.apublish_confirmed(ctx))

    def consume(self, ctx: Ctx) -> int:
        return self.run(self.aconsume(ctx))

    def passive_declare(self, ctx: Ctx) -> list[int]:
        return self.run(self.apassive_declare(ctx))

    def publish_consume(self, ctx: Ctx) -> int:
        return self.run(self.apublish_consume(ctx))


class ConfirmWindow:
    """Unconfirmed delivery tags of a confirm-mode channel (tags count from 1
    in publish order); for clients that hand over raw basic.ack/nack."""

    def __init__(self) -> None:
        self.next_tag = 1
        self.low = 1  # every tag below has been confirmed
        self.pending: set[int] = set()
        self.nacked = 0

    def sent(self) -> None:
        self.pending.add(self.next_tag)
        self.next_tag += 1

    def on_ack(self, tag: int, multiple: bool) -> None:
        if multiple:
            for t in range(self.low, tag + 1):
                self.pending.discard(t)
            self.low = max(self.low, tag + 1)
        else:
            self.pending.discard(tag)

    def on_nack(self, tag: int, multiple: bool) -> None:
        self.nacked += 1
        self.on_ack(tag, multiple)

    def __len__(self) -> int:
        return len(self.pending)


def _ns() -> int:
    return time.perf_counter_ns()


# --- peers ---------------------------------------------------------------------


class PikaAdapter:
    """pika BlockingConnection."""

    name = "pika"
    peer = True
    confirm_mode = "per-publish"
    confirm_note = (
        "BlockingChannel.confirm_delivery() makes each basic_publish "
        "wait for its own confirm"
    )
    w2_max = None

    def _connect(self, ctx: Ctx) -> Any:
        import pika

        return pika.BlockingConnection(pika.URLParameters(ctx.url))

    def _close(self, conn: Any) -> None:
        with contextlib.suppress(Exception):
            conn.close()

    def _publish(self, ctx: Ctx, confirm: bool) -> None:
        conn = self._connect(ctx)
        try:
            ch = conn.channel()
            if confirm:
                ch.confirm_delivery()  # basic_publish raises on nack
            ctx.start()
            for _ in range(ctx.n):
                ch.basic_publish("", ctx.queue, ctx.body)
            ctx.wait_count(ctx.n)
            ctx.stop()
        finally:
            self._close(conn)

    def publish(self, ctx: Ctx) -> None:
        self._publish(ctx, confirm=False)

    def publish_confirmed(self, ctx: Ctx) -> None:
        self._publish(ctx, confirm=True)

    def _consume(self, ctx: Ctx, conn: Any, ch: Any, n: int) -> int:
        got = 0
        nbytes = 0

        def on_message(ch: Any, method: Any, _props: Any, body: bytes) -> None:
            nonlocal got, nbytes
            ch.basic_ack(method.delivery_tag)
            got += 1
            nbytes += len(body)
            if got == n:
                ctx.stop()
                ch.stop_consuming()

        ch.basic_qos(prefetch_count=ctx.prefetch)
        ch.basic_consume(ctx.queue, on_message)
        conn.call_later(ctx.remaining(), ch.stop_consuming)
        ch.start_consuming()
        if got != n:
            raise BenchError(f"consumed {got} of {n} before the deadline")
        return nbytes

    def consume(self, ctx: Ctx) -> int:
        conn = self._connect(ctx)
        try:
            ch = conn.channel()
            ctx.start()
            nbytes = self._consume(ctx, conn, ch, ctx.n)
            return nbytes // len(ctx.body)
        finally:
            self._close(conn)

    def passive_declare(self, ctx: Ctx) -> list[int]:
        conn = self._connect(ctx)
        try:
            ch = conn.channel()
            lat = []
            ctx.start()
            for _ in range(ctx.n):
                t = _ns()
                ch.queue_declare(ctx.queue, passive=True)
                lat.append(_ns() - t)
            ctx.stop()
            return lat
        finally:
            self._close(conn)

    def publish_consume(self, ctx: Ctx) -> int:
        conn = self._connect(ctx)
        try:
            ch = conn.channel()
            ctx.start()
            for _ in range(ctx.n):
                ch.basic_publish("", ctx.queue, ctx.body)
            return self._consume(ctx, conn, ch, ctx.n)
        finally:
            self._close(conn)


class AioPikaAdapter(AsyncAdapter):
    """aio-pika ``connect`` (not robust), default exchange, ``queue.iterator``."""

    name = "aio-pika"
    peer = True
    confirm_mode = "window"
    confirm_note = "1,000 concurrent publish() coroutines, each awaiting its confirm"
    w2_max = None

    async def _connect(self, ctx: Ctx) -> Any:
        import aio_pika

        return await aio_pika.connect(ctx.url, timeout=30)

    async def _publish(self, ctx: Ctx, channel: Any) -> None:
        from aio_pika import Message

        exchange = channel.default_exchange
        for _ in range(ctx.n):
            await exchange.publish(Message(ctx.body), ctx.queue, mandatory=False)

    async def _consume(self, ctx: Ctx, channel: Any, n: int) -> int:
        await channel.set_qos(prefetch_count=ctx.prefetch)
        queue = await channel.get_queue(ctx.queue, ensure=False)
        got = 0
        nbytes = 0
        async with asyncio.timeout(ctx.remaining()), queue.iterator() as it:
            async for message in it:
                await message.ack()
                got += 1
                nbytes += len(message.body)
                if got == n:
                    ctx.stop()
                    break
        if got != n:
            raise BenchError(f"consumed {got} of {n}")
        return nbytes

    async def apublish(self, ctx: Ctx) -> None:
        async with await self._connect(ctx) as conn:
            channel = await conn.channel(publisher_confirms=False)
            ctx.start()
            await self._publish(ctx, channel)
            await ctx.wait_count_async(ctx.n)
            ctx.stop()

    async def apublish_confirmed(self, ctx: Ctx) -> None:
        from aio_pika import Message

        async with await self._connect(ctx) as conn:
            channel = await conn.channel(publisher_confirms=True)
            exchange = channel.default_exchange
            left = ctx.n

            # ctx.window publishers, each awaiting its confirm before the next:
            # never more than ctx.window unconfirmed. publish raises on a nack.
            async def publisher() -> None:
                nonlocal left
                while left > 0:
                    left -= 1
                    await exchange.publish(
                        Message(ctx.body), ctx.queue, mandatory=False
                    )

            ctx.start()
            async with asyncio.timeout(ctx.remaining()):
                await asyncio.gather(
                    *(publisher() for _ in range(min(ctx.window, ctx.n)))
                )
            await ctx.wait_count_async(ctx.n)
            ctx.stop()

    async def aconsume(self, ctx: Ctx) -> int:
        async with await self._connect(ctx) as conn:
            channel = await conn.channel()
            ctx.start()
            return await self._consume(ctx, channel, ctx.n) // len(ctx.body)

    async def apassive_declare(self, ctx: Ctx) -> list[int]:
        async with await self._connect(ctx) as conn:
            channel = await conn.channel()
            lat = []
            ctx.start()
            for _ in range(ctx.n):
                t = _ns()
                await channel.declare_queue(ctx.queue, passive=True)
                lat.append(_ns() - t)
            ctx.stop()
            return lat

    async def apublish_consume(self, ctx: Ctx) -> int:
        async with await self._connect(ctx) as conn:
            channel = await conn.channel(publisher_confirms=False)
            ctx.start()
            await self._publish(ctx, channel)
            return await self._consume(ctx, channel, ctx.n)


def _url_parts(url: str) -> dict[str, Any]:
    u = urllib.parse.urlsplit(url)
    path = u.path
    vhost = "/" if not path else urllib.parse.unquote(path[1:])
    return {
        "host": u.hostname or "localhost",
        "port": u.port or 5672,
        "user": urllib.parse.unquote(u.username or "guest"),
        "password": urllib.parse.unquote(u.password or "guest"),
        "vhost": vhost,
    }


class PyAmqpAdapter:
    """py-amqp (``amqp.Connection``). W2 uses confirm_select and the channel's
    basic_ack/basic_nack events for a real window; py-amqp's own
    ``confirm_publish=True`` would wait for each confirm."""

    name = "py-amqp"
    peer = True
    confirm_mode = "window"
    confirm_note = (
        "confirm_select + basic_ack/basic_nack channel events "
        "(Connection(confirm_publish=True) would wait per publish)"
    )
    w2_max = None

    def _connect(self, ctx: Ctx) -> Any:
        import amqp

        p = _url_parts(ctx.url)
        conn = amqp.Connection(
            host=f"{p['host']}:{p['port']}",
            userid=p["user"],
            password=p["password"],
            virtual_host=p["vhost"],
            connect_timeout=30,
        )
        conn.connect()
        return conn

    def _close(self, conn: Any) -> None:
        with contextlib.suppress(Exception):
            conn.close()

    def _publish(self, ctx: Ctx, ch: Any) -> None:
        from amqp import Message

        for _ in range(ctx.n):
            ch.basic_publish(Message(ctx.body), exchange="", routing_key=ctx.queue)

    def _consume(self, ctx: Ctx, conn: Any, ch: Any, n: int) -> int:
        got = 0
        nbytes = 0

        def on_message(msg: Any) -> None:
            nonlocal got, nbytes
            ch.basic_ack(msg.delivery_tag)
            got += 1
            nbytes += len(msg.body)
            if got == n:
                ctx.stop()

        ch.basic_qos(prefetch_size=0, prefetch_count=ctx.prefetch, a_global=False)
        ch.basic_consume(ctx.queue, callback=on_message)
        while got < n:
            conn.drain_events(timeout=ctx.remaining())
        return nbytes

    def publish(self, ctx: Ctx) -> None:
        conn = self._connect(ctx)
        try:
            ch = conn.channel()
            ctx.start()
            self._publish(ctx, ch)
            ctx.wait_count(ctx.n)
            ctx.stop()
        finally:
            self._close(conn)

    def publish_confirmed(self, ctx: Ctx) -> None:
        from amqp import Message

        conn = self._connect(ctx)
        try:
            ch = conn.channel()
            ch.confirm_select()
            window = ConfirmWindow()
            ch.events["basic_ack"].add(window.on_ack)
            ch.events["basic_nack"].add(window.on_nack)
            ctx.start()
            for _ in range(ctx.n):
                while len(window) >= ctx.window:
                    conn.drain_events(timeout=ctx.remaining())
                ch.basic_publish(Message(ctx.body), exchange="", routing_key=ctx.queue)
                window.sent()
            while len(window):
                conn.drain_events(timeout=ctx.remaining())
            if window.nacked:
                raise BenchError(f"{window.nacked} basic.nack")
            ctx.wait_count(ctx.n)
            ctx.stop()
        finally:
            self._close(conn)

    def consume(self, ctx: Ctx) -> int:
        conn = self._connect(ctx)
        try:
            ch = conn.channel()
            ctx.start()
            return self._consume(ctx, conn, ch, ctx.n) // len(ctx.body)
        finally:
            self._close(conn)

    def passive_declare(self, ctx: Ctx) -> list[int]:
        conn = self._connect(ctx)
        try:
            ch = conn.channel()
            lat = []
            ctx.start()
            for _ in range(ctx.n):
                t = _ns()
                ch.queue_declare(ctx.queue, passive=True)
                lat.append(_ns() - t)
            ctx.stop()
            return lat
        finally:
            self._close(conn)

    def publish_consume(self, ctx: Ctx) -> int:
        conn = self._connect(ctx)
        try:
            ch = conn.channel()
            ctx.start()
            self._publish(ctx, ch)
            return self._consume(ctx, conn, ch, ctx.n)
        finally:
            self._close(conn)


class AmqpStormAdapter:
    """AMQPStorm ``UriConnection`` (its own I/O thread)."""

    name = "AMQPStorm"
    peer = True
    confirm_mode = "per-publish"
    confirm_note = (
        "after channel.confirm_deliveries() each basic.publish waits for its "
        "confirm, and AMQPStorm polls for replies every 10 ms: N capped at "
        "2,000 (200 with --quick)"
    )
    w2_max = 2_000

    def _connect(self, ctx: Ctx) -> Any:
        from amqpstorm.uri_connection import UriConnection

        return UriConnection(ctx.url)  # RPC timeout: ?timeout=, 30 s

    def _close(self, conn: Any) -> None:
        with contextlib.suppress(Exception):
            conn.close()

    def _consume(self, ctx: Ctx, ch: Any, n: int) -> int:
        got = 0
        nbytes = 0

        def on_message(message: Any) -> None:
            nonlocal got, nbytes
            message.ack()
            got += 1
            nbytes += len(message.body)
            if got == n:
                ctx.stop()

        ch.basic.qos(prefetch_count=ctx.prefetch)
        ch.basic.consume(on_message, ctx.queue, no_ack=False)
        # What channel.start_consuming() does, with a deadline.
        while got < n:
            ctx.remaining()
            ch.process_data_events(auto_decode=False)
        return nbytes

    def _publish(self, ctx: Ctx, confirm: bool) -> None:
        conn = self._connect(ctx)
        try:
            ch = conn.channel()
            if confirm:
                ch.confirm_deliveries()
            ctx.start()
            for _ in range(ctx.n):
                ok = ch.basic.publish(ctx.body, ctx.queue)
                if confirm and not ok:
                    raise BenchError("basic.nack")
            ctx.wait_count(ctx.n)
            ctx.stop()
        finally:
            self._close(conn)

    def publish(self, ctx: Ctx) -> None:
        self._publish(ctx, confirm=False)

    def publish_confirmed(self, ctx: Ctx) -> None:
        self._publish(ctx, confirm=True)

    def consume(self, ctx: Ctx) -> int:
        conn = self._connect(ctx)
        try:
            ch = conn.channel()
            ctx.start()
            return self._consume(ctx, ch, ctx.n) // len(ctx.body)
        finally:
            self._close(conn)

    def passive_declare(self, ctx: Ctx) -> list[int]:
        conn = self._connect(ctx)
        try:
            ch = conn.channel()
            lat = []
            ctx.start()
            for _ in range(ctx.n):
                t = _ns()
                ch.queue.declare(ctx.queue, passive=True)
                lat.append(_ns() - t)
            ctx.stop()
            return lat
        finally:
            self._close(conn)

    def publish_consume(self, ctx: Ctx) -> int:
        conn = self._connect(ctx)
        try:
            ch = conn.channel()
            ctx.start()
            for _ in range(ctx.n):
                ch.basic.publish(ctx.body, ctx.queue)
            return self._consume(ctx, ch, ctx.n)
        finally:
            self._close(conn)


# --- the Go peer: amqp091-go -----------------------------------------------------

#: bench/go: the Go worker's source (main.go, go.mod).
GO_SOURCE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "go")
#: Where the worker is built (build/ is git-ignored; ``make clean`` drops it).
GO_WORKER = os.path.join(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
    "build",
    "bench-go",
    "amqp091-go-worker",
)
GO_CLIENT = "amqp091-go"
GO_DEB = "golang-github-rabbitmq-amqp091-go-dev"  # Debian's amqp091-go source
UNAVAILABLE = "unavailable: "  # how a cell's error says the client never ran
#: An offline, reproducible build: no module proxy, no toolchain download,
#: go.mod never rewritten (its replace points at Debian's source).
GO_BUILD_ENV = {
    "GOPROXY": "off",
    "GOFLAGS": "-mod=readonly",
    "GOTOOLCHAIN": "local",
    "GOWORK": "off",
    "GO111MODULE": "on",
}


class GoProcess:
    """The Go worker of one workload, driven line by line over its stdin and
    stdout (the protocol is in bench/go/main.go); its stderr goes to the
    file ``stderr``, quoted when it dies."""

    def __init__(self, binary: str, spec: dict[str, Any], stderr: IO[bytes]) -> None:
        self._stderr = stderr
        self._buf = b""
        self.proc = subprocess.Popen(
            [binary, json.dumps(spec)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
        )

    def __enter__(self) -> GoProcess:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *rest: object) -> None:
        if exc_type is not None:  # a failed or late workload: no grace
            self.proc.kill()
        self.close()

    def send(self, word: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(word.encode() + b"\n")
        self.proc.stdin.flush()

    def _line(self, ctx: Ctx) -> str:
        assert self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        while b"\n" not in self._buf:
            ready, _, _ = select.select([fd], [], [], ctx.remaining())
            if not ready:
                continue  # ctx.remaining() raises once the deadline is past
            chunk = os.read(fd, 1 << 16)
            if not chunk:
                raise BenchError(f"{GO_CLIENT} worker died: {self._died()}")
            self._buf += chunk
        line, _, self._buf = self._buf.partition(b"\n")
        return line.decode()

    def expect(self, ctx: Ctx, word: str) -> str:
        """Wait (within ctx's deadline) for the worker's next line, which
        must be ``word`` (an ``ERROR`` line raises); returns what follows."""
        line = self._line(ctx)
        head, _, rest = line.partition(" ")
        if head == "ERROR":
            raise BenchError(f"{GO_CLIENT}: {rest}")
        if head != word:
            raise BenchError(f"{GO_CLIENT} worker said {line[:100]!r}, not {word}")
        return rest

    def _died(self) -> str:
        try:
            code = self.proc.wait(10)
        except subprocess.TimeoutExpired:
            return "closed its stdout but did not exit"
        self._stderr.seek(0)
        tail = self._stderr.read().decode(errors="replace").strip().splitlines()
        return f"exit {code}" + (f": {' | '.join(tail[-3:])}"[:300] if tail else "")

    def close(self) -> None:
        """Close its stdin, wait a little for its exit, then kill it."""
        for f in (self.proc.stdin, self.proc.stdout):
            if f is not None:
                with contextlib.suppress(OSError):
                    f.close()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


class GoAdapter:
    """The Go client amqp091-go (``amqp.Dial``, one channel), run by the Go
    worker bench/go/main.go in a process of its own.

    This process stays the wrapper, as for every Python client: run_worker's
    neutral helper connection declares, prefills, polls and deletes the
    queue, and ``ctx.start()`` / ``ctx.stop()`` take the wall time here, at
    the same points of the workload as the Python adapters (the worker is
    told GO just after start(); stop() follows its STOP, or W1/W2's broker
    count). Only the client's part runs in Go, connection setup and close
    outside the clock as elsewhere. The CPU share adds the worker's CPU
    between GO and STOP (getrusage, every thread) to this process's own,
    minus the polling as for everyone. W4's latencies are taken in Go around
    each call, on its monotonic clock. The pipe adds tens of microseconds at
    each end of the timed span, not to W4's round trips."""

    name = GO_CLIENT
    peer = True
    confirm_mode = "window"
    confirm_note = (
        "Confirm(false) + NotifyPublish, which hands confirmations over in "
        "publish order: the oldest received at 1,000 outstanding"
    )
    w2_max = None

    def _run(self, ctx: Ctx, op: str) -> dict[str, Any]:
        if ctx.go_worker is None:
            raise BenchError(f"no {GO_CLIENT} worker in the job (the parent builds it)")
        spec = {
            "op": op,
            "url": ctx.url,
            "queue": ctx.queue,
            "n": ctx.n,
            "body_size": len(ctx.body),
            "window": ctx.window,
            "prefetch": ctx.prefetch,
            "timeout": ctx.remaining(),
        }
        with (
            tempfile.TemporaryFile() as stderr,
            GoProcess(ctx.go_worker, spec, stderr) as go,
        ):
            go.expect(ctx, "READY")
            ctx.start()
            go.send("GO")
            if op in ("publish", "publish_confirmed"):
                go.expect(ctx, "SENT")
                ctx.wait_count(ctx.n)
                ctx.stop()
                go.send("STOP")
            else:
                go.expect(ctx, "STOP")
                ctx.stop()
            res: dict[str, Any] = json.loads(go.expect(ctx, "RESULT"))
        ctx.child_cpu = float(res["cpu_s"])
        return res

    def publish(self, ctx: Ctx) -> None:
        self._run(ctx, "publish")

    def publish_confirmed(self, ctx: Ctx) -> None:
        self._run(ctx, "publish_confirmed")

    def consume(self, ctx: Ctx) -> int:
        return int(self._run(ctx, "consume")["consumed"])

    def passive_declare(self, ctx: Ctx) -> list[int]:
        return [int(ns) for ns in self._run(ctx, "passive_declare")["latencies_ns"]]

    def publish_consume(self, ctx: Ctx) -> int:
        return int(self._run(ctx, "publish_consume")["bytes"])


@dataclass
class GoBuild:
    """What build_go_worker made: the worker's path and versions, or why
    there is none (the client is then reported unavailable)."""

    path: str | None
    reason: str = ""
    versions: dict[str, str] = field(default_factory=dict)


def _go_library() -> str:
    """The amqp091-go source that bench/go/go.mod's replace names."""
    with open(os.path.join(GO_SOURCE, "go.mod")) as f:
        for line in f:
            words = line.split()
            if words[:2] == ["replace", "github.com/rabbitmq/amqp091-go"]:
                return words[-1]
    raise BenchError("bench/go/go.mod has no replace for amqp091-go")


def _go_env() -> dict[str, str]:
    env = {**os.environ, **GO_BUILD_ENV}
    if not any(env.get(k) for k in ("GOCACHE", "XDG_CACHE_HOME", "HOME")):
        env["GOCACHE"] = os.path.join(os.path.dirname(GO_WORKER), "cache")
    return env


def build_go_worker(out: str = GO_WORKER) -> GoBuild:
    """Build bench/go into ``out`` with the local Go toolchain, offline
    (``go build`` only recompiles what changed). Never raises: a missing
    toolchain or library, or a failed build, is a GoBuild with a reason."""
    hint = "`make bench-go` installs it"
    go = shutil.which("go")
    if go is None:
        return GoBuild(None, f"no `go` on PATH ({hint}: Debian's golang-go)")
    try:
        library = _go_library()
    except (OSError, BenchError) as exc:
        return GoBuild(None, str(exc))
    if not os.path.isfile(os.path.join(library, "go.mod")):
        return GoBuild(None, f"amqp091-go source not at {library} ({hint}: {GO_DEB})")
    env = _go_env()
    try:
        proc = subprocess.run(
            [go, "build", "-o", out, "."],
            cwd=GO_SOURCE,
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
        )
        version = subprocess.run(
            [go, "env", "GOVERSION"],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        ).stdout.strip()
    except (OSError, subprocess.TimeoutExpired) as exc:
        return GoBuild(None, f"go build: {exc}")
    if proc.returncode != 0:
        tail = " | ".join(proc.stderr.strip().splitlines()[-3:])
        return GoBuild(None, f"go build failed: {tail}"[:300])
    return GoBuild(
        out,
        versions={"go": version or "?", "amqp091-go": _go_library_version(library)},
    )


def _go_library_version(library: str) -> str:
    """Debian's package version of the amqp091-go source, else its path."""
    try:
        proc = subprocess.run(
            ["dpkg-query", "-W", "-f", "${Version}", GO_DEB],
            capture_output=True,
            text=True,
            timeout=30,
        )
    except (OSError, subprocess.TimeoutExpired):
        return f"source at {library}"
    if proc.returncode != 0 or not proc.stdout.strip():
        return f"source at {library}"
    return f"{proc.stdout.strip()} ({GO_DEB})"


def build_go_main() -> int:
    """``--build-go`` (what ``make bench-go`` runs): build the worker, say
    where and with what, or why not."""
    built = build_go_worker()
    if built.path is None:
        print(f"{GO_CLIENT}: {built.reason}", file=sys.stderr)
        return 1
    versions = ", ".join(f"{k} {v}" for k, v in built.versions.items())
    print(f"{GO_CLIENT} worker: {built.path} ({versions})")
    return 0


# --- project clients -----------------------------------------------------------


class AmqpClientAdapter(AsyncAdapter):
    """This project's asyncio client: ``amqp_client.connect``."""

    name = "amqp_client"
    peer = False
    # Empty: the defaults (telemetry on when opentelemetry-api is installed;
    # a --baseline checkout may not know the keyword).
    connect_keywords: ClassVar[dict[str, Any]] = {}
    confirm_mode = "window"
    confirm_note = "Confirmation objects kept in a deque; the oldest awaited at 1,000"
    w2_max = None

    async def _consume(self, ctx: Ctx, channel: Any, n: int) -> int:
        await channel.basic_qos(prefetch_count=ctx.prefetch)
        got = 0
        nbytes = 0
        async with asyncio.timeout(ctx.remaining()):
            async with await channel.basic_consume(ctx.queue) as consumer:
                async for delivery in consumer:
                    await delivery.ack()
                    got += 1
                    nbytes += len(delivery.body)
                    if got == n:
                        ctx.stop()
                        break
        if got != n:
            raise BenchError(f"consumed {got} of {n}")
        return nbytes

    async def _publish(self, ctx: Ctx, channel: Any) -> None:
        publish = channel.basic_publish
        body, queue = ctx.body, ctx.queue
        for _ in range(ctx.n):
            await publish(body, routing_key=queue)

    async def apublish(self, ctx: Ctx) -> None:
        import amqp_client

        async with amqp_client.connect(ctx.url, **self.connect_keywords) as conn:
            channel = await conn.channel()
            ctx.start()
            await self._publish(ctx, channel)
            await ctx.wait_count_async(ctx.n)
            ctx.stop()

    async def apublish_confirmed(self, ctx: Ctx) -> None:
        import amqp_client

        async with amqp_client.connect(ctx.url, **self.connect_keywords) as conn:
            channel = await conn.channel()
            await channel.confirm_select()
            pending: deque[Any] = deque()
            publish = channel.basic_publish
            body, queue, window = ctx.body, ctx.queue, ctx.window
            ctx.start()
            async with asyncio.timeout(ctx.remaining()):
                for _ in range(ctx.n):
                    if len(pending) >= window:
                        await pending.popleft()
                    pending.append(await publish(body, routing_key=queue))
                for confirmation in pending:
                    await confirmation
            await ctx.wait_count_async(ctx.n)
            ctx.stop()

    async def aconsume(self, ctx: Ctx) -> int:
        import amqp_client

        async with amqp_client.connect(ctx.url, **self.connect_keywords) as conn:
            channel = await conn.channel()
            ctx.start()
            return await self._consume(ctx, channel, ctx.n) // len(ctx.body)

    async def apassive_declare(self, ctx: Ctx) -> list[int]:
        import amqp_client

        async with amqp_client.connect(ctx.url, **self.connect_keywords) as conn:
            channel = await conn.channel()
            declare = channel.queue_declare
            queue = ctx.queue
            lat = []
            ctx.start()
            for _ in range(ctx.n):
                t = _ns()
                await declare(queue, passive=True)
                lat.append(_ns() - t)
            ctx.stop()
            return lat

    async def apublish_consume(self, ctx: Ctx) -> int:
        import amqp_client

        async with amqp_client.connect(ctx.url, **self.connect_keywords) as conn:
            channel = await conn.channel()
            ctx.start()
            await self._publish(ctx, channel)
            return await self._consume(ctx, channel, ctx.n)


class AmqpClientUvloopAdapter(AmqpClientAdapter):
    """This project's asyncio client on a uvloop event loop."""

    name = "amqp_client+uvloop"

    def __init__(self) -> None:
        import uvloop

        self.loop_factory = uvloop.new_event_loop


class AmqpClientBlockingAdapter:
    """This project's blocking client: ``amqp_client.blocking.connect``."""

    name = "amqp_client.blocking"
    peer = False
    connect_keywords: ClassVar[dict[str, Any]] = {}
    confirm_mode = "window"
    confirm_note = "Confirmation objects kept in a deque; the oldest waited at 1,000"
    w2_max = None

    def _connect(self, ctx: Ctx) -> Any:
        from amqp_client import blocking

        return blocking.connect(ctx.url, **self.connect_keywords)

    def _publish(self, ctx: Ctx, channel: Any) -> None:
        publish = channel.basic_publish
        body, queue = ctx.body, ctx.queue
        for _ in range(ctx.n):
            publish(body, routing_key=queue)

    def _consume(self, ctx: Ctx, channel: Any, n: int) -> int:
        channel.basic_qos(prefetch_count=ctx.prefetch)
        got = 0
        nbytes = 0
        with channel.basic_consume(ctx.queue) as consumer:
            while got < n:
                delivery = consumer.get(timeout=ctx.remaining())
                if delivery is None:
                    break
                delivery.ack()
                got += 1
                nbytes += len(delivery.body)
            ctx.stop()
        if got != n:
            raise BenchError(f"consumed {got} of {n}")
        return nbytes

    def publish(self, ctx: Ctx) -> None:
        with self._connect(ctx) as conn:
            channel = conn.channel()
            ctx.start()
            self._publish(ctx, channel)
            ctx.wait_count(ctx.n)
            ctx.stop()

    def publish_confirmed(self, ctx: Ctx) -> None:
        with self._connect(ctx) as conn:
            channel = conn.channel()
            channel.confirm_select()
            pending: deque[Any] = deque()
            publish = channel.basic_publish
            body, queue, window = ctx.body, ctx.queue, ctx.window
            ctx.start()
            for _ in range(ctx.n):
                if len(pending) >= window:
                    pending.popleft().wait(ctx.remaining())
                pending.append(publish(body, routing_key=queue))
            for confirmation in pending:
                confirmation.wait(ctx.remaining())
            ctx.wait_count(ctx.n)
            ctx.stop()

    def consume(self, ctx: Ctx) -> int:
        with self._connect(ctx) as conn:
            channel = conn.channel()
            ctx.start()
            return self._consume(ctx, channel, ctx.n) // len(ctx.body)

    def passive_declare(self, ctx: Ctx) -> list[int]:
        with self._connect(ctx) as conn:
            channel = conn.channel()
            declare = channel.queue_declare
            queue = ctx.queue
            lat = []
            ctx.start()
            for _ in range(ctx.n):
                t = _ns()
                declare(queue, passive=True)
                lat.append(_ns() - t)
            ctx.stop()
            return lat

    def publish_consume(self, ctx: Ctx) -> int:
        with self._connect(ctx) as conn:
            channel = conn.channel()
            ctx.start()
            self._publish(ctx, channel)
            return self._consume(ctx, channel, ctx.n)


class AmqpClientNoTelemetryAdapter(AmqpClientAdapter):
    """``amqp_client`` with ``connect(telemetry=False)``: what telemetry
    costs is ``amqp_client`` (api installed, no SDK) against this."""

    name = "amqp_client" + NOTEL_SUFFIX
    connect_keywords: ClassVar[dict[str, Any]] = {"telemetry": False}


class AmqpClientBlockingNoTelemetryAdapter(AmqpClientBlockingAdapter):
    """``amqp_client.blocking`` with ``connect(telemetry=False)``."""

    name = "amqp_client.blocking" + NOTEL_SUFFIX
    connect_keywords: ClassVar[dict[str, Any]] = {"telemetry": False}


class AmqpClientPollAdapter(AmqpClientAdapter):
    """``amqp_client`` with ``connect(busy_poll=BUSY_POLL)``."""

    name = "amqp_client" + POLL_SUFFIX
    connect_keywords: ClassVar[dict[str, Any]] = {"busy_poll": BUSY_POLL}


class AmqpClientUvloopPollAdapter(AmqpClientUvloopAdapter):
    """``amqp_client`` on uvloop with ``connect(busy_poll=BUSY_POLL)``."""

    name = "amqp_client+uvloop" + POLL_SUFFIX
    connect_keywords: ClassVar[dict[str, Any]] = {"busy_poll": BUSY_POLL}


class AmqpClientBlockingPollAdapter(AmqpClientBlockingAdapter):
    """``amqp_client.blocking`` with ``connect(busy_poll=BUSY_POLL)``."""

    name = "amqp_client.blocking" + POLL_SUFFIX
    connect_keywords: ClassVar[dict[str, Any]] = {"busy_poll": BUSY_POLL}


# The registry: adding a client is one adapter class plus one line here.
ADAPTERS: dict[str, Callable[[], Adapter]] = {
    "pika": PikaAdapter,
    "aio-pika": AioPikaAdapter,
    "py-amqp": PyAmqpAdapter,
    "AMQPStorm": AmqpStormAdapter,
    GO_CLIENT: GoAdapter,
    "amqp_client": AmqpClientAdapter,
    "amqp_client+uvloop": AmqpClientUvloopAdapter,
    "amqp_client.blocking": AmqpClientBlockingAdapter,
    "amqp_client" + POLL_SUFFIX: AmqpClientPollAdapter,
    "amqp_client+uvloop" + POLL_SUFFIX: AmqpClientUvloopPollAdapter,
    "amqp_client.blocking" + POLL_SUFFIX: AmqpClientBlockingPollAdapter,
    "amqp_client" + NOTEL_SUFFIX: AmqpClientNoTelemetryAdapter,
    "amqp_client.blocking" + NOTEL_SUFFIX: AmqpClientBlockingNoTelemetryAdapter,
}
#: Run by default (the /notel twins only with --telemetry-cost or --clients).
DEFAULT_CLIENTS = [c for c in ADAPTERS if not c.endswith(NOTEL_SUFFIX)]


def _adapter(client: str) -> Adapter:
    """The adapter of a client name; ``X@base`` is X's adapter (run by a
    child with the baseline's code)."""
    return ADAPTERS[client.removesuffix(BASE_SUFFIX)]()


# --- --baseline: the same fronts with an older checkout's code -----------------


def _package_dirs(base: str) -> tuple[str, dict[str, str]]:
    """Where a checkout keeps ``amqp_client`` and the sub-packages its
    ``pyproject.toml`` maps elsewhere (``[tool.setuptools] package-dir``):
    (package directory, {sub-package: directory})."""
    dirs: dict[str, str] = {}
    with contextlib.suppress(FileNotFoundError):
        with open(os.path.join(base, "pyproject.toml"), "rb") as f:
            setuptools_cfg = tomllib.load(f).get("tool", {}).get("setuptools", {})
        dirs = dict(setuptools_cfg.get("package-dir", {}))
    root = os.path.join(
        base, dirs.get("amqp_client", os.path.join(dirs.get("", ""), "amqp_client"))
    )
    if not os.path.isfile(os.path.join(root, "__init__.py")):
        raise ValueError(
            f"{base} is not a checkout of this project: no {root}/__init__.py"
        )
    subs: dict[str, str] = {}
    for pkg, where in dirs.items():
        if not pkg.startswith("amqp_client."):
            continue
        sub = pkg.removeprefix("amqp_client.")
        if "." in sub:
            raise ValueError(
                f"{base}: package-dir maps {pkg}, only amqp_client.X is supported"
            )
        subs[sub] = os.path.join(base, where)
    return root, subs


def make_shim(base: str, into: str) -> str:
    """Build in ``into`` a directory that, first on ``PYTHONPATH``, makes
    ``import amqp_client`` (and its mapped sub-packages) load the checkout
    ``base``: ``into/amqp_client`` holds one symlink per entry of base's
    package (its C extension included) plus one per mapped sub-package.
    Returns ``into``. The top-level ``__pycache__`` is left out, so the
    compiled files of the shim's own paths are written in ``into``."""
    root, subs = _package_dirs(base)
    pkg = os.path.join(into, "amqp_client")
    os.mkdir(pkg)
    for entry in sorted(os.listdir(root)):
        if entry != "__pycache__":
            os.symlink(os.path.join(root, entry), os.path.join(pkg, entry))
    for sub, where in subs.items():
        link = os.path.join(pkg, sub)
        if os.path.lexists(link):  # package-dir wins, as in an install
            os.remove(link)
        os.symlink(where, link)
    return into


def _child_env(shim: str | None) -> dict[str, str] | None:
    """A child's environment: the parent's, with the shim first on
    ``PYTHONPATH`` for a baseline child (None: inherit unchanged)."""
    if shim is None:
        return None
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, (shim, env.get("PYTHONPATH"))))
    return env


def _isolate_baseline() -> None:
    """In a baseline child: drop the import finders of an editable install
    (setuptools ``__editable__...``), which would otherwise resolve an
    ``amqp_client.X`` missing from the baseline to this tree's code."""
    sys.meta_path[:] = [
        f
        for f in sys.meta_path
        if not getattr(f, "__module__", "").startswith("__editable__")
    ]


def _check_code_from(base: str) -> str:
    """Fail unless every ``amqp_client`` module loaded in this process comes
    from the checkout ``base``; returns ``amqp_client.__file__``, resolved."""
    top = sys.modules.get("amqp_client")
    if top is None or not getattr(top, "__file__", None):
        raise BenchError("amqp_client was never imported")
    root = os.path.realpath(base) + os.sep
    for name, mod in list(sys.modules.items()):
        if name != "amqp_client" and not name.startswith("amqp_client."):
            continue
        path = getattr(mod, "__file__", None)
        if path and not os.path.realpath(path).startswith(root):
            raise BenchError(f"baseline child loaded {name} from {path}, not {base}")
    return os.path.realpath(str(top.__file__))


def code_origin(base: str | None) -> dict[str, Any]:
    """Run in a child (``--probe``): import the project's fronts one by one
    and say where each comes from (checked to be ``base`` when given) or why
    it does not import, the version, and whether the C speedups are in use."""
    if base is not None:
        _isolate_baseline()
    files: dict[str, str] = {}
    errors: dict[str, str] = {}
    for name in ("amqp_client", "amqp_client.spec", "amqp_client.blocking"):
        try:
            mod = importlib.import_module(name)
        except Exception as exc:
            errors[name] = f"{type(exc).__name__}: {exc}"[:300]
        else:
            files[name] = os.path.realpath(str(mod.__file__))
    wire = sys.modules.get("amqp_client.wire")
    speedups = sys.modules.get("amqp_client._speedups")
    active = getattr(wire, "_c_decode_table", None) is not None
    return {
        "files": files,
        "errors": errors,
        "version": getattr(sys.modules.get("amqp_client"), "__version__", None),
        "speedups": (
            os.path.realpath(str(speedups.__file__)) if active and speedups else None
        ),
        "checked": (
            _check_code_from(base)
            if base is not None and "amqp_client" in files
            else None
        ),
    }


def probe_code(base: str | None, shim: str | None, timeout: float) -> dict[str, Any]:
    """Run ``code_origin`` in a child started as that code's workers are
    (the shim first on ``PYTHONPATH`` for the baseline); its result."""
    cmd = [sys.executable, os.path.abspath(__file__), "--probe"]
    if base is not None:
        cmd += ["--baseline", base]
    try:
        proc = subprocess.run(
            cmd, capture_output=True, text=True, timeout=timeout, env=_child_env(shim)
        )
    except subprocess.TimeoutExpired:
        return {"ok": False, "error": f"probe killed after {timeout:.0f} s"}
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith(RESULT_MARK):
            res: dict[str, Any] = json.loads(line[len(RESULT_MARK) :])
            return res
    tail = " | ".join(proc.stderr.strip().splitlines()[-3:])
    return {"ok": False, "error": f"probe exit {proc.returncode}: {tail}"[:300]}


def probe_main(base: str | None) -> int:
    """The ``--probe`` child: print ``code_origin``'s result line."""
    try:
        res = {"ok": True, **code_origin(base)}
    except BaseException as exc:
        res = {"ok": False, "error": f"{type(exc).__name__}: {exc}"[:300]}
    print(RESULT_MARK + json.dumps(res), flush=True)
    return 0 if res["ok"] else 1


def _git_label(path: str) -> str | None:
    """``git describe --always --dirty`` of a checkout (None: not git)."""
    try:
        out = subprocess.run(
            ["git", "-C", path, "describe", "--always", "--dirty"],
            capture_output=True,
            text=True,
            timeout=30,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return (out.stdout.strip() or None) if out.returncode == 0 else None


def _origin_line(res: dict[str, Any]) -> str:
    """The header line of a probe: where each module came from, or why not."""
    if not res["ok"]:
        return f"probe failed: {res['error']}"
    parts = [f"{name} from {path}" for name, path in res["files"].items()]
    parts += [f"{name} does not import: {err}" for name, err in res["errors"].items()]
    if "amqp_client" in res["files"]:
        parts.insert(0, f"version {res['version'] or '?'}")
        parts.append(f"C speedups {'on' if res['speedups'] else 'off'}")
    return ", ".join(parts)


# --- workloads -----------------------------------------------------------------


@dataclass(frozen=True)
class Workload:
    key: str
    method: str  # the Adapter method
    n: int
    body_size: int
    prefill: bool
    unit: str  # msg/s, us (p50/p99), MB/s
    title: str


WORKLOADS = {
    w.key: w
    for w in (
        Workload("W1", "publish", 100_000, 128, False, "msg/s",
                 "publish {n:,} x {size} B, no confirms, until the broker counts all"),
        Workload("W2", "publish_confirmed", 100_000, 128, False, "msg/s",
                 "publish {n:,} x {size} B with confirms, window {window:,}"),
        Workload("W3", "consume", 100_000, 128, True, "msg/s",
                 "consume {n:,} x {size} B, prefetch {prefetch:,}, ack each"),
        Workload("W4", "passive_declare", 2_000, 0, False, "us",
                 "{n:,} passive queue.declare round trips on one channel"),
        Workload("W5", "publish_consume", 200, 1 << 20, False, "MB/s",
                 "publish {n:,} x 1 MiB (no confirms), then consume (prefetch {prefetch:,}, ack each)"),
    )
}  # fmt: skip


def _body(size: int) -> bytes:
    return bytes(i & 0xFF for i in range(size)) if size else b""


# --- the child: one (client, workload, run) -------------------------------------


def run_worker(job: dict[str, Any]) -> dict[str, Any]:
    wl = WORKLOADS[job["workload"]]
    adapter = _adapter(job["client"])
    n = int(job["n"])
    if wl.key == "W2" and adapter.w2_max is not None:
        n = min(n, max(1, adapter.w2_max // int(job["scale"])))
    body = _body(wl.body_size)
    admin = Admin(job["url"])
    queue = job["queue"]
    try:
        admin.declare(queue)
        ctx = Ctx(
            url=job["url"],
            queue=queue,
            n=n,
            body=body,
            window=WINDOW,
            prefetch=PREFETCH,
            timeout=float(job["timeout"]),
            admin=admin,
            go_worker=job.get("go_worker"),
        )
        if wl.prefill:
            ctx.arm()
            admin.fill(queue, n, body)
            ctx.wait_count(n)
        ctx.arm()
        out = getattr(adapter, wl.method)(ctx)
        if ctx.t0 is None or ctx.t1 is None:
            raise BenchError("the adapter never started or stopped the clock")
        wall = ctx.t1 - ctx.t0
        cpu = max(0.0, ctx.cpu1 - ctx.cpu0 - ctx.poll_cpu) + ctx.child_cpu
        res: dict[str, Any] = {"n": n, "wall_s": wall, "cpu_share": cpu / wall}
        if wl.key in ("W1", "W2"):
            if ctx.counted != n:
                raise BenchError(f"broker counted {ctx.counted}, expected {n}")
            res["value"] = n / wall
        elif wl.key == "W3":
            if out != n:
                raise BenchError(f"consumed {out}, expected {n}")
            res["value"] = n / wall
        elif wl.key == "W4":
            lat = sorted(out)
            if len(lat) != n:
                raise BenchError(f"{len(lat)} round trips, expected {n}")
            res["round_trips"] = len(lat)
            res["p50_us"] = lat[len(lat) // 2] / 1e3
            res["p99_us"] = lat[min(len(lat) - 1, (len(lat) * 99) // 100)] / 1e3
            res["value"] = res["p50_us"]
        elif wl.key == "W5":
            if out != n * len(body):
                raise BenchError(f"consumed {out} bytes, expected {n * len(body)}")
            res["value"] = out / 1e6 / wall
        if job.get("baseline"):
            res["code"] = _check_code_from(job["baseline"])
        return res
    finally:
        with contextlib.suppress(Exception):
            admin.delete(queue)
        admin.close()


def worker_main(arg: str) -> int:
    job = json.loads(arg)
    if job.get("baseline"):
        _isolate_baseline()
    try:
        res = {"ok": True, **run_worker(job)}
    except BaseException as exc:  # report anything, the parent decides
        text = str(exc) or (
            "deadline exceeded" if isinstance(exc, TimeoutError) else ""
        )
        res = {"ok": False, "error": f"{type(exc).__name__}: {text}"[:300]}
    print(RESULT_MARK + json.dumps(res), flush=True)
    return 0 if res["ok"] else 1


# --- the parent -----------------------------------------------------------------


@dataclass
class Cell:
    """All runs of one (workload, client)."""

    runs: list[dict[str, Any]] = field(default_factory=list)
    error: str | None = None

    def median(self, key: str) -> float:
        return float(statistics.median(r[key] for r in self.runs))


def _cleanup(url: str, queue: str) -> None:
    try:
        admin = Admin(url)
    except Exception as exc:
        print(f"  cleanup: cannot connect to delete {queue}: {exc}", file=sys.stderr)
        return
    try:
        admin.delete(queue)
    except Exception as exc:
        print(f"  cleanup: {queue}: {exc}", file=sys.stderr)
    finally:
        admin.close()


def run_child(
    job: dict[str, Any], hard_timeout: float, shim: str | None = None
) -> dict[str, Any]:
    """Run one job in a worker child (with the baseline shim first on
    ``PYTHONPATH`` when given) and return its result line."""
    cmd = [sys.executable, os.path.abspath(__file__), "--worker", json.dumps(job)]
    proc = subprocess.Popen(
        cmd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_child_env(shim),
    )
    return collect_child(proc, job, hard_timeout, RESULT_MARK)


def collect_child(
    proc: subprocess.Popen[str],
    job: dict[str, Any],
    hard_timeout: float,
    mark: str,
) -> dict[str, Any]:
    """Wait (at most ``hard_timeout`` s) for a worker child running ``job``
    and return its result line (the last stdout line starting with
    ``mark``); kill it past the deadline. A job that did not end well has
    its queue deleted. Also used by scale.py."""
    try:
        out, err = proc.communicate(timeout=hard_timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        _cleanup(job["url"], job["queue"])
        return {"ok": False, "error": f"killed after {hard_timeout:.0f} s"}
    except BaseException:
        proc.kill()
        proc.communicate()
        _cleanup(job["url"], job["queue"])
        raise
    for line in reversed(out.splitlines()):
        if line.startswith(mark):
            res: dict[str, Any] = json.loads(line[len(mark) :])
            if not res["ok"]:
                _cleanup(job["url"], job["queue"])
            return res
    _cleanup(job["url"], job["queue"])
    tail = " | ".join(err.strip().splitlines()[-3:])
    return {"ok": False, "error": f"worker exit {proc.returncode}: {tail}"[:300]}


def _fmt_value(wl: Workload, v: float) -> str:
    if wl.unit == "MB/s":
        return f"{v:,.1f}"
    return f"{v:,.0f}"


def _ratio(wl: Workload, v: float, best: float | None) -> str:
    """Speed relative to the fastest peer: >1 is faster than it."""
    if best is None or v <= 0:
        return "-"
    return f"{(best / v if wl.unit == 'us' else v / best):.2f}"


def _best_peer(wl: Workload, cells: dict[str, Cell]) -> tuple[str, float] | None:
    meds = [
        (name, c.median("value"))
        for name, c in cells.items()
        if _adapter(name).peer and c.error is None and c.runs
    ]
    if not meds:
        return None
    pick = min if wl.unit == "us" else max
    return pick(meds, key=lambda m: m[1])


def _vs_baseline(wl: Workload, cells: dict[str, Cell]) -> dict[str, float | None]:
    """Per front that ran with both codes: current / baseline median (W4:
    baseline p50 / current p50), so >1 means the current code is faster;
    None when either side failed."""
    out: dict[str, float | None] = {}
    for front in BASELINE_FRONTS:
        cur, base = cells.get(front), cells.get(front + BASE_SUFFIX)
        if cur is None or base is None:
            continue
        ok = all(c.error is None and c.runs for c in (cur, base))
        vc = cur.median("value") if ok else 0.0
        vb = base.median("value") if ok else 0.0
        out[front] = (
            None if vc <= 0 or vb <= 0 else (vb / vc if wl.unit == "us" else vc / vb)
        )
    return out


def _title(wl: Workload, n: int) -> str:
    size = "1 MiB" if wl.body_size == 1 << 20 else wl.body_size
    return wl.title.format(n=n, size=size, window=WINDOW, prefetch=PREFETCH)


def print_table(
    wl: Workload,
    n: int,
    cells: dict[str, Cell],
    file: Any,
    vs_base: dict[str, float | None] | None = None,
) -> None:
    """One workload's table; with ``vs_base`` (a --baseline run) a
    "cur/base" column on the rows of the current fronts."""
    title = _title(wl, n)
    best = _best_peer(wl, cells)
    notes: list[str] = []
    w = max(22, *(len(name) + 2 for name in cells))
    print(f"\n{wl.key}  {title}", file=file)
    if wl.unit == "us":
        head = f"{'client':<{w}}{'p50 us':>10}{'p99 us':>10}{'total s':>10}"
    else:
        head = f"{'client':<{w}}{wl.unit:>12}{'time s':>10}"
    head += f"{'cpu %':>8}{'vs best peer':>14}"
    if vs_base is not None:
        head += f"{'cur/base':>10}"
    if wl.key == "W2":
        head += "  confirms          N"
    print(head, file=file)
    for name, c in cells.items():
        if c.error is not None or not c.runs:
            status = "" if (c.error or "").startswith(UNAVAILABLE) else "FAILED: "
            print(f"{name:<{w}}{status}{c.error}", file=file)
            continue
        v = c.median("value")
        if wl.unit == "us":
            row = (
                f"{name:<{w}}{c.median('p50_us'):>10,.0f}{c.median('p99_us'):>10,.0f}"
                f"{c.median('wall_s'):>10.3f}"
            )
        else:
            row = f"{name:<{w}}{_fmt_value(wl, v):>12}{c.median('wall_s'):>10.3f}"
        row += f"{100 * c.median('cpu_share'):>7.0f}%"
        row += f"{_ratio(wl, v, best[1] if best else None):>14}"
        if vs_base is not None:
            r = vs_base.get(name)
            row += (
                f"{'' if name not in vs_base else '-' if r is None else f'{r:.2f}':>10}"
            )
        if wl.key == "W2":
            adapter = _adapter(name)
            mode = adapter.confirm_mode
            if mode == "window":
                mode = f"window {WINDOW:,}"
            row += f"  {mode:<14}{int(c.runs[0]['n']):>7,}"
            if not name.endswith(BASE_SUFFIX):
                notes.append(
                    f"  {name}: {adapter.confirm_mode}, {adapter.confirm_note}"
                )
        print(row.rstrip(), file=file)
    for note in notes:
        print(note, file=file)
    if best:
        what = "lowest p50" if wl.unit == "us" else "fastest"
        print(f"(medians of {max(len(c.runs) for c in cells.values())} runs; "
              f"'vs best peer' = speed relative to the {what} peer "
              f"({', '.join(p for p in PEERS if p in cells and cells[p].runs)}), "
              f"{best[0]}; >1 is faster)", file=file)  # fmt: skip
    if vs_base:
        how = "baseline p50 / current p50" if wl.unit == "us" else "current / baseline"
        print(f"('cur/base' = {how} for the same front, X vs X{BASE_SUFFIX}; "
              ">1 means the current code is faster)", file=file)  # fmt: skip


def print_vs_baseline(
    results: dict[str, Any], label: str, fronts: Sequence[str], file: Any
) -> None:
    """The closing summary of a --baseline run: one row per workload, one
    column per front, the "cur/base" ratio or which side failed."""
    if not fronts:
        return
    print(f"\ncurrent code vs baseline {label}: current / baseline "
          "(W4: baseline p50 / current p50); >1 means the current code is faster",
          file=file)  # fmt: skip
    cols = [max(14, len(f) + 2) for f in fronts]
    print(
        f"{'workload':<12}"
        + "".join(f"{f:>{c}}" for f, c in zip(fronts, cols, strict=True)),
        file=file,
    )
    for wkey, r in results.items():
        row = f"{wkey + ' ' + ('p50' if r['unit'] == 'us' else r['unit']):<12}"
        for front, c in zip(fronts, cols, strict=True):
            ratio = r["vs_baseline"].get(front)
            if ratio is not None:
                cell = f"{ratio:.2f}"
            else:
                failed = [  # a ratio is None only when a side failed
                    side
                    for side, name in (
                        ("current", front),
                        ("base", front + BASE_SUFFIX),
                    )
                    if not r["clients"][name]["ok"]
                ]
                cell = f"{failed[0] if len(failed) == 1 else 'both'} failed"
            row += f"{cell:>{c}}"
        print(row, file=file)


def _versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for dist in ("pika", "aio-pika", "aiormq", "amqp", "AMQPStorm", "amqp-client"):
        try:
            out[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            out[dist] = "not installed"
    return out


def _schedule(clients: Sequence[str], runs: int) -> list[tuple[int, str]]:
    """The order of one workload's (run, client) jobs, always interleaved:
    run 1 of every client, run 2 in the reverse order, ..., so that drift in
    the machine's load hits all alike (and no client always runs first)."""
    return [(r, c) for r in range(runs) for c in (clients[::-1] if r % 2 else clients)]


def _with_baseline(clients: Sequence[str]) -> list[str]:
    """The clients of a --baseline run: each current front followed by its
    ``@base`` twin (unless --clients already names it)."""
    return _with_twins(clients, BASE_SUFFIX)


def _with_twins(clients: Sequence[str], suffix: str) -> list[str]:
    """Each of the project's fronts in ``clients`` followed by its twin
    named with ``suffix`` (unless ``clients`` already names it)."""
    out: list[str] = []
    for c in clients:
        out.append(c)
        if c in BASELINE_FRONTS and c + suffix not in clients:
            out.append(c + suffix)
    return out


def _vs_telemetry_off(wl: Workload, cells: dict[str, Cell]) -> dict[str, float | None]:
    """Per front run both ways: telemetry on / off median (W4: off p50 / on
    p50), so below 1 means telemetry costs; None when either side failed."""
    out: dict[str, float | None] = {}
    for front in BASELINE_FRONTS:
        on, off = cells.get(front), cells.get(front + NOTEL_SUFFIX)
        if on is None or off is None:
            continue
        ok = all(c.error is None and c.runs for c in (on, off))
        v_on = on.median("value") if ok else 0.0
        v_off = off.median("value") if ok else 0.0
        out[front] = (
            None
            if v_on <= 0 or v_off <= 0
            else (v_off / v_on if wl.unit == "us" else v_on / v_off)
        )
    return out


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description="End-to-end benchmark of AMQP clients against a real RabbitMQ. "
        "The runs of a workload are interleaved: run 1 of every client, run 2 "
        "in the reverse order, ..."
    )
    ap.add_argument(
        "--url", default=os.environ.get("AMQP_URL", DEFAULT_URL), help="broker URL"
    )
    ap.add_argument(
        "--runs",
        type=int,
        default=None,
        help="runs per cell (3), interleaved over the clients",
    )
    ap.add_argument(
        "--quick", action="store_true", help="every N / 10 and 1 run: a smoke test"
    )
    ap.add_argument(
        "--clients",
        default=",".join(DEFAULT_CLIENTS),
        help=f"comma-separated, from: {', '.join(ADAPTERS)}",
    )
    ap.add_argument(
        "--workloads", default=",".join(WORKLOADS), help="comma-separated W1..W5"
    )
    ap.add_argument(
        "--timeout",
        type=float,
        default=300.0,
        help="deadline of each wait in a run, s (300); a run's process is killed "
        "after 2 x timeout + 60 s",
    )
    ap.add_argument("--json", metavar="FILE", help="also write every figure as JSON")
    ap.add_argument(
        "--baseline",
        metavar="DIR",
        help="DIR is another checkout of this project, built in place: also run "
        f"{' and '.join(BASELINE_FRONTS)} with its code (as X{BASE_SUFFIX}) "
        "and report current / baseline",
    )
    ap.add_argument(
        "--telemetry-cost",
        action="store_true",
        help="also run each amqp_client front of --clients with "
        f"connect(telemetry=False) (as X{NOTEL_SUFFIX}) and "
        "report telemetry on (opentelemetry-api installed, no SDK) / off",
    )
    ap.add_argument(
        "--build-go",
        action="store_true",
        help=f"only build the {GO_CLIENT} worker (bench/go) and say where; "
        "a run builds it itself when it is among --clients",
    )
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    ap.add_argument("--probe", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker is not None:
        return worker_main(args.worker)
    if args.probe:
        return probe_main(args.baseline)
    if args.build_go:
        return build_go_main()

    clients = [c.strip() for c in args.clients.split(",") if c.strip()]
    workloads = [w.strip().upper() for w in args.workloads.split(",") if w.strip()]
    for c in clients:
        front = c.removesuffix(BASE_SUFFIX)
        if front not in ADAPTERS:
            ap.error(f"unknown client {c!r}; known: {', '.join(ADAPTERS)}")
        if c != front and front not in BASELINE_FRONTS:
            ap.error(f"{c}: only {', '.join(BASELINE_FRONTS)} have {BASE_SUFFIX}")
        if c != front and args.baseline is None:
            ap.error(f"{c} needs --baseline DIR")
    for w in workloads:
        if w not in WORKLOADS:
            ap.error(f"unknown workload {w!r}; known: {', '.join(WORKLOADS)}")
    if args.telemetry_cost:
        clients = _with_twins(clients, NOTEL_SUFFIX)
        if not any(c.endswith(NOTEL_SUFFIX) for c in clients):
            ap.error(
                f"--telemetry-cost needs {' or '.join(BASELINE_FRONTS)} in --clients"
            )
    base: str | None = None
    if args.baseline is not None:
        base = os.path.realpath(args.baseline)
        if not os.path.isdir(base):
            ap.error(f"--baseline {args.baseline}: not a directory")
        clients = _with_baseline(clients)
        if not any(c.endswith(BASE_SUFFIX) for c in clients):
            ap.error(f"--baseline needs {' or '.join(BASELINE_FRONTS)} in --clients")
    with contextlib.ExitStack() as stack:
        shim: str | None = None
        if base is not None:
            tmp = stack.enter_context(tempfile.TemporaryDirectory(prefix="e2e-base-"))
            try:
                shim = make_shim(base, tmp)
            except (OSError, ValueError) as exc:
                ap.error(f"--baseline {args.baseline}: {exc}")
        status = run_bench(args, clients, workloads, base, shim)
    return status


def run_bench(
    args: argparse.Namespace,
    clients: list[str],
    workloads: list[str],
    base: str | None,
    shim: str | None,
) -> int:
    """The parent's run: every (workload, client, run) in a child, then the
    tables, the baseline summary and the JSON. Returns the exit status."""
    scale = 10 if args.quick else 1
    runs = args.runs if args.runs is not None else (1 if args.quick else 3)

    try:
        admin = Admin(args.url)
    except Exception as exc:
        print(f"cannot connect to {args.url.split('@')[-1]}: {exc}", file=sys.stderr)
        return 2
    broker = admin.server_version
    admin.close()

    meta: dict[str, Any] = {
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "broker": f"RabbitMQ {broker}",
        "url": args.url.split("@")[-1],
        "cpus": os.cpu_count(),
        "loadavg_start": os.getloadavg(),
        "platform": platform.platform(),
        "versions": _versions(),
        "runs": runs,
        "quick": args.quick,
        "window": WINDOW,
        "prefetch": PREFETCH,
    }
    print(
        f"e2e bench: RabbitMQ {broker} at {meta['url']}, {meta['cpus']} CPUs, "
        f"Python {meta['versions']['python']}, {runs} run(s) per cell"
        + (" (quick: N / 10)" if args.quick else ""),
        flush=True,
    )
    go: GoBuild | None = None
    if GO_CLIENT in clients:  # built once per run, before any child starts
        go = build_go_worker()
        if go.path is None:
            meta["versions"][GO_CLIENT] = UNAVAILABLE + go.reason
            print(f"{GO_CLIENT}: {UNAVAILABLE}{go.reason}", flush=True)
        else:
            meta["versions"].update(go.versions)
            print(f"{GO_CLIENT}: {go.versions[GO_CLIENT]}, {go.versions['go']}, "
                  f"worker {go.path}", flush=True)  # fmt: skip
    base_label = ""
    if base is not None:
        here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        sides = {
            "baseline": (base, probe_code(base, shim, 60.0)),
            "current": (here, probe_code(None, None, 60.0)),
        }
        for side, (where, code) in sides.items():
            meta[side] = {"dir": where, "git": _git_label(where), "code": code}
            runs_it = [
                c
                for c in clients
                if c.removesuffix(BASE_SUFFIX) in BASELINE_FRONTS
                and c.endswith(BASE_SUFFIX) == (side == "baseline")
            ]
            git = meta[side]["git"]
            print(f"{side:<9}{where}{f' (git {git})' if git else ''}: "
                  f"{', '.join(runs_it) or '-'}\n         {_origin_line(code)}",
                  flush=True)  # fmt: skip
        git = meta["baseline"]["git"]
        base_label = base + (f" (git {git})" if git else "")
        probe = meta["baseline"]["code"]
        if not probe["ok"] or "amqp_client" not in probe["files"]:
            print(f"--baseline {base}: its amqp_client does not import in a child",
                  file=sys.stderr)  # fmt: skip
            return 2
    meta["order"] = "interleaved"
    if runs > 1 and len(clients) > 1:
        print("runs interleaved: run 1 of every client, run 2 in the reverse "
              "order, ...", flush=True)  # fmt: skip
    results: dict[str, Any] = {}
    tag = uuid.uuid4().hex[:8]
    for wkey in workloads:
        wl = WORKLOADS[wkey]
        n = max(1, wl.n // scale)
        cells = {client: Cell() for client in clients}
        if go is not None and go.path is None:  # in the tables, never left out
            cells[GO_CLIENT].error = UNAVAILABLE + go.reason
        for r, client in _schedule(clients, runs):
            cell = cells[client]
            if cell.error is not None:
                continue  # a failed client sits out its remaining runs
            safe = client.replace(".", "-").replace("@", "-").replace("/", "-")
            job: dict[str, Any] = {
                "client": client,
                "workload": wkey,
                "n": n,
                "scale": scale,
                "url": args.url,
                "timeout": args.timeout,
                "queue": f"bench-e2e-{tag}-{wkey}-{safe}-{r}-{uuid.uuid4().hex[:6]}",
            }
            on_base = client.endswith(BASE_SUFFIX)
            if on_base:
                job["baseline"] = base
            if client == GO_CLIENT and go is not None:
                job["go_worker"] = go.path
            res = run_child(job, args.timeout * 2 + 60, shim if on_base else None)
            if not res["ok"]:
                cell.error = res["error"]
                print(f"  {wkey} {client} run {r + 1}: FAILED {res['error']}",
                      file=sys.stderr, flush=True)  # fmt: skip
                continue
            cell.runs.append(res)
            v = _fmt_value(wl, res["value"])
            unit = "us p50" if wl.unit == "us" else wl.unit
            print(f"  {wkey} {client} run {r + 1}/{runs}: {v} {unit}, "
                  f"{res['wall_s']:.3f} s, cpu {100 * res['cpu_share']:.0f}%",
                  file=sys.stderr, flush=True)  # fmt: skip
        vs_base = _vs_baseline(wl, cells) if base is not None else None
        print_table(wl, n, cells, sys.stdout, vs_base)
        sys.stdout.flush()
        best = _best_peer(wl, cells)
        results[wkey] = {
            "title": _title(wl, n),
            "n": n,
            "unit": wl.unit,
            "best_peer": best[0] if best else None,
            "clients": {
                name: {
                    "ok": c.error is None,
                    "error": c.error,
                    "confirms": (
                        f"{_adapter(name).confirm_mode}: {_adapter(name).confirm_note}"
                        if wkey == "W2"
                        else None
                    ),
                    "median": {
                        k: c.median(k)
                        for k in ("value", "wall_s", "cpu_share", "p50_us", "p99_us")
                        if c.runs and k in c.runs[0]
                    },
                    "ratio_vs_best_peer": (
                        None
                        if best is None or c.error or not c.runs
                        else (
                            best[1] / c.median("value")
                            if wl.unit == "us"
                            else c.median("value") / best[1]
                        )
                    ),
                    "runs": c.runs,
                }
                for name, c in cells.items()
            },
        }
        if vs_base is not None:
            results[wkey]["vs_baseline"] = vs_base
        vs_off = _vs_telemetry_off(wl, cells)
        if vs_off:
            results[wkey]["telemetry_on_vs_off"] = vs_off
            for front, ratio in vs_off.items():
                shown = "failed" if ratio is None else f"{ratio:.3f}"
                print(f"telemetry on/off, {front}: {shown} "
                      "(on / off; below 1.00: telemetry costs)")  # fmt: skip
    if base is not None:
        fronts = [
            f for f in BASELINE_FRONTS if f in clients and f + BASE_SUFFIX in clients
        ]
        print_vs_baseline(results, base_label, fronts, sys.stdout)
    meta["loadavg_end"] = os.getloadavg()
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"meta": meta, "results": results}, f, indent=2)
        print(f"\nJSON written to {args.json}")
    failed = [
        f"{w}/{name}" + (" (unavailable)" if c["error"].startswith(UNAVAILABLE) else "")
        for w, r in results.items()
        for name, c in r["clients"].items()
        if not c["ok"]
    ]
    if failed:
        print(f"\nfailed: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
