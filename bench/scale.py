"""Scale benchmark against a real RabbitMQ: many connections, channels, consumers.

Scenarios (sizes of a full run; ``--quick`` and ``--tiny`` use smaller ones):

conns     N connections (1, 100, 1,000), one channel each, in one process.
chans     C channels (1, 100, 1,000) on one connection.
cons      M consumers (100, 10,000) on one channel, all on one queue.

For each (scenario, size, client) a child process (``--worker``):

* opens the items one after another, timing each (the time to open the
  Nth item, not only the total: "first" and "last" are the mean open time
  of the first and the last tenth of the items, in wall-clock time and in
  this process's CPU time (all its threads; the CPU figures leave out the
  broker's work and most of the machine's other load); a last/first ratio
  well above 1 is a cost that grows with N);
* measures what they hold: the process's **RSS** delta (``VmRSS``, after
  ``gc.collect()``) over N, its threads and file descriptors, and in a
  second pass with ``tracemalloc`` on (up to 100 items, closed again) the
  **Python heap** per item (``tracemalloc`` sees Python allocations only:
  not thread stacks, not the C library's or the kernel's socket buffers);
* publishes ``P`` messages of 128 B without confirms spread round-robin
  over the channels (conns, chans; timed until a neutral helper connection
  counts all P in the queue, as bench/e2e.py W1) or through the one
  channel to the M consumers (cons, no_ack; timed until the consumers
  together received P);
* closes everything (timed) and deletes its queue.

Clients: amqp_client (asyncio), amqp_client.blocking, aio-pika, pika; and,
only when named in ``--clients``, ``amqp_client.blocking@256k``: the
blocking front with ``threading.stack_size(256 KiB)`` set by this script in
its child before any connection (a measurement of what a smaller I/O
thread stack would change; the library does not set it).

Runs are interleaved: for each (scenario, size) every client runs in turn,
the order reversed at every other size, so drift in the machine's load
hits all alike. The file-descriptor limit is raised to its hard limit in
every child (1,000 connections need over 1,000 fds).

Not a test: nothing here asserts a timing (tests/integration/test_bench_scale.py
runs ``--tiny`` so the script cannot rot).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime
import gc
import json
import os
import platform
import resource
import subprocess
import sys
import threading
import time
import tracemalloc
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from e2e import DEFAULT_URL, Admin, BenchError, _versions, collect_child

RESULT_MARK = "SCALE-RESULT "
BODY = bytes(i & 0xFF for i in range(128))
HEAP_ITEMS = 100  # items opened again with tracemalloc on
CLIENTS = ("amqp_client", "amqp_client.blocking", "aio-pika", "pika")
SMALL_STACK = "amqp_client.blocking@256k"
POLL_INTERVAL = 0.005


@dataclass(frozen=True)
class Mode:
    sizes: dict[str, tuple[int, ...]]
    messages: int  # P


MODES = {
    "full": Mode({"conns": (1, 100, 1000), "chans": (1, 100, 1000),
                  "cons": (100, 10_000)}, 20_000),
    "quick": Mode({"conns": (1, 100), "chans": (1, 100), "cons": (1000,)}, 2_000),
    "tiny": Mode({"conns": (3,), "chans": (3,), "cons": (5,)}, 30),
}  # fmt: skip


# --- measuring ----------------------------------------------------------------------


def _status(key: str) -> int:
    """A kB figure of /proc/self/status (VmRSS, VmSize), in bytes."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024
    return 0


def _fds() -> int:
    return len(os.listdir("/proc/self/fd"))


@dataclass
class Snapshot:
    rss: int
    vm: int
    threads: int
    fds: int

    @classmethod
    def take(cls) -> Snapshot:
        gc.collect()
        return cls(_status("VmRSS"), _status("VmSize"), threading.active_count(),
                   _fds())  # fmt: skip


def raise_fd_limit() -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


#: Items opened so far in this child (a failure says where it stopped).
OPENED = [0]


class Opener:
    """Times each item's opening."""

    def __init__(self) -> None:
        self.times: list[float] = []
        self.cpu: list[float] = []
        self._cpu0 = 0.0
        OPENED[0] = 0

    def start(self) -> float:
        self._cpu0 = time.process_time()
        return time.perf_counter()

    def done(self, t0: float) -> None:
        self.times.append(time.perf_counter() - t0)
        self.cpu.append(time.process_time() - self._cpu0)
        OPENED[0] += 1

    def figures(self) -> dict[str, float]:
        def tenths(t: list[float]) -> tuple[float, float]:
            k = max(1, len(t) // 10)
            return sum(t[:k]) / k * 1e6, sum(t[-k:]) / k * 1e6

        first, last = tenths(self.times)
        cpu_first, cpu_last = tenths(self.cpu)
        return {
            "open_s": sum(self.times),
            "first_us": first,
            "last_us": last,
            "cpu_first_us": cpu_first,
            "cpu_last_us": cpu_last,
        }


# --- the clients ----------------------------------------------------------------------
#
# Each client family implements one coroutine (asyncio) or function (sync) per
# scenario. ``ctx`` carries the queue, sizes, the clock and the results.


@dataclass
class Ctx:
    url: str
    queue: str
    n: int
    messages: int
    timeout: float
    admin: Admin
    out: dict[str, Any]
    deadline: float = 0.0

    def __post_init__(self) -> None:
        self.deadline = time.monotonic() + self.timeout

    def remaining(self) -> float:
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError(f"scenario exceeded its {self.timeout:.0f} s deadline")
        return left

    def measured(self, before: Snapshot, n: int) -> None:
        after = Snapshot.take()
        self.out.update(
            rss_per_item=(after.rss - before.rss) / n,
            vm_per_item=(after.vm - before.vm) / n,
            threads=after.threads - before.threads,
            fds=after.fds - before.fds,
        )

    def heap(self, per_item: float) -> None:
        self.out["heap_per_item"] = per_item

    def wait_count(self) -> None:
        while self.admin.count(self.queue) < self.messages:
            self.remaining()
            time.sleep(POLL_INTERVAL)

    async def wait_count_async(self) -> None:
        while await asyncio.to_thread(self.admin.count, self.queue) < self.messages:
            self.remaining()
            await asyncio.sleep(POLL_INTERVAL)

    def rate(self, t0: float) -> None:
        self.out["publish_per_s"] = self.messages / (time.perf_counter() - t0)


def _traced(fn: Callable[[], int]) -> float:
    """Python heap per item of what ``fn`` opens (it returns how many)."""
    gc.collect()
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        k = fn()
        gc.collect()
        return (tracemalloc.get_traced_memory()[0] - base) / k
    finally:
        tracemalloc.stop()


async def _atraced(fn: Callable[[], Any]) -> tuple[float, Any]:
    gc.collect()
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        k, keep = await fn()
        gc.collect()
        return (tracemalloc.get_traced_memory()[0] - base) / k, keep
    finally:
        tracemalloc.stop()


# amqp_client, asyncio ----------------------------------------------------------------


async def ac_conns(ctx: Ctx) -> None:
    import amqp_client

    warm = await amqp_client.connect(ctx.url)
    await (await warm.channel()).close()
    await warm.close()
    before = Snapshot.take()
    opener = Opener()
    conns, chans = [], []
    try:
        for _ in range(ctx.n):
            t0 = opener.start()
            conn = await amqp_client.connect(ctx.url)
            conns.append(conn)
            chans.append(await conn.channel())
            opener.done(t0)
        ctx.out.update(opener.figures())
        ctx.measured(before, ctx.n)
        t0 = time.perf_counter()
        for i in range(ctx.messages):
            await chans[i % ctx.n].basic_publish(BODY, routing_key=ctx.queue)
        await ctx.wait_count_async()
        ctx.rate(t0)
    finally:
        t0 = time.perf_counter()
        for conn in conns:
            await conn.close()
        ctx.out["close_s"] = time.perf_counter() - t0

    async def more() -> tuple[int, list[Any]]:
        k = min(ctx.n, HEAP_ITEMS)
        keep = []
        for _ in range(k):
            conn = await amqp_client.connect(ctx.url)
            keep.append((conn, await conn.channel()))
        return k, keep

    per, keep = await _atraced(more)
    ctx.heap(per)
    for conn, _ in keep:
        await conn.close()


async def ac_chans(ctx: Ctx) -> None:
    import amqp_client

    async with amqp_client.connect(ctx.url) as conn:
        if ctx.n > conn.channel_max:
            raise BenchError(f"{ctx.n} channels > channel_max {conn.channel_max}")
        await (await conn.channel()).close()
        before = Snapshot.take()
        opener = Opener()
        chans = []
        for _ in range(ctx.n):
            t0 = opener.start()
            chans.append(await conn.channel())
            opener.done(t0)
        ctx.out.update(opener.figures())
        ctx.measured(before, ctx.n)
        t0 = time.perf_counter()
        for i in range(ctx.messages):
            await chans[i % ctx.n].basic_publish(BODY, routing_key=ctx.queue)
        await ctx.wait_count_async()
        ctx.rate(t0)
        t0 = time.perf_counter()
        for ch in chans:
            await ch.close()
        ctx.out["close_s"] = time.perf_counter() - t0

        async def more() -> tuple[int, list[Any]]:
            k = min(ctx.n, HEAP_ITEMS)
            return k, [await conn.channel() for _ in range(k)]

        per, keep = await _atraced(more)
        ctx.heap(per)
        for ch in keep:
            await ch.close()


async def ac_cons(ctx: Ctx) -> None:
    import amqp_client

    async with amqp_client.connect(ctx.url) as conn:
        ch = await conn.channel()
        await (await ch.basic_consume(ctx.queue, no_ack=True)).cancel()
        before = Snapshot.take()
        opener = Opener()
        consumers = []
        for _ in range(ctx.n):
            t0 = opener.start()
            consumers.append(await ch.basic_consume(ctx.queue, no_ack=True))
            opener.done(t0)
        ctx.out.update(opener.figures())
        ctx.measured(before, ctx.n)
        got = 0
        done = asyncio.Event()

        async def read(consumer: Any) -> None:
            nonlocal got
            async for _ in consumer:
                got += 1
                if got == ctx.messages:
                    done.set()

        readers = [asyncio.create_task(read(c)) for c in consumers]
        t0 = time.perf_counter()
        for _ in range(ctx.messages):
            await ch.basic_publish(BODY, routing_key=ctx.queue)
        await asyncio.wait_for(done.wait(), ctx.remaining())
        ctx.rate(t0)
        t0 = time.perf_counter()
        for c in consumers:
            await c.cancel()
        ctx.out["close_s"] = time.perf_counter() - t0
        await asyncio.gather(*readers)

        async def more() -> tuple[int, list[Any]]:
            k = min(ctx.n, HEAP_ITEMS)
            return k, [await ch.basic_consume(ctx.queue, no_ack=True) for _ in range(k)]

        per, keep = await _atraced(more)
        ctx.heap(per)
        for c in keep:
            await c.cancel()


# aio-pika ------------------------------------------------------------------------------


async def ap_connect(ctx: Ctx) -> Any:
    import aio_pika

    return await aio_pika.connect(ctx.url, timeout=30)


async def ap_conns(ctx: Ctx) -> None:
    from aio_pika import Message

    warm = await ap_connect(ctx)
    await (await warm.channel(publisher_confirms=False)).close()
    await warm.close()
    before = Snapshot.take()
    opener = Opener()
    conns, chans = [], []
    try:
        for _ in range(ctx.n):
            t0 = opener.start()
            conn = await ap_connect(ctx)
            conns.append(conn)
            chans.append(await conn.channel(publisher_confirms=False))
            opener.done(t0)
        ctx.out.update(opener.figures())
        ctx.measured(before, ctx.n)
        t0 = time.perf_counter()
        for i in range(ctx.messages):
            await chans[i % ctx.n].default_exchange.publish(Message(BODY), ctx.queue)
        await ctx.wait_count_async()
        ctx.rate(t0)
    finally:
        t0 = time.perf_counter()
        for conn in conns:
            await conn.close()
        ctx.out["close_s"] = time.perf_counter() - t0

    async def more() -> tuple[int, list[Any]]:
        k = min(ctx.n, HEAP_ITEMS)
        keep = []
        for _ in range(k):
            conn = await ap_connect(ctx)
            keep.append((conn, await conn.channel(publisher_confirms=False)))
        return k, keep

    per, keep = await _atraced(more)
    ctx.heap(per)
    for conn, _ in keep:
        await conn.close()


async def ap_chans(ctx: Ctx) -> None:
    from aio_pika import Message

    conn = await ap_connect(ctx)
    try:
        await (await conn.channel(publisher_confirms=False)).close()
        before = Snapshot.take()
        opener = Opener()
        chans = []
        for _ in range(ctx.n):
            t0 = opener.start()
            chans.append(await conn.channel(publisher_confirms=False))
            opener.done(t0)
        ctx.out.update(opener.figures())
        ctx.measured(before, ctx.n)
        t0 = time.perf_counter()
        for i in range(ctx.messages):
            await chans[i % ctx.n].default_exchange.publish(Message(BODY), ctx.queue)
        await ctx.wait_count_async()
        ctx.rate(t0)
        t0 = time.perf_counter()
        for ch in chans:
            await ch.close()
        ctx.out["close_s"] = time.perf_counter() - t0

        async def more() -> tuple[int, list[Any]]:
            k = min(ctx.n, HEAP_ITEMS)
            return k, [await conn.channel(publisher_confirms=False) for _ in range(k)]

        per, keep = await _atraced(more)
        ctx.heap(per)
        for ch in keep:
            await ch.close()
    finally:
        await conn.close()


async def ap_cons(ctx: Ctx) -> None:
    from aio_pika import Message

    conn = await ap_connect(ctx)
    try:
        ch = await conn.channel(publisher_confirms=False)
        queue = await ch.get_queue(ctx.queue, ensure=False)
        got = 0
        done = asyncio.Event()

        async def on_message(_message: Any) -> None:
            nonlocal got
            got += 1
            if got == ctx.messages:
                done.set()

        await queue.cancel(await queue.consume(on_message, no_ack=True))
        before = Snapshot.take()
        opener = Opener()
        tags = []
        for _ in range(ctx.n):
            t0 = opener.start()
            tags.append(await queue.consume(on_message, no_ack=True))
            opener.done(t0)
        ctx.out.update(opener.figures())
        ctx.measured(before, ctx.n)
        t0 = time.perf_counter()
        for _ in range(ctx.messages):
            await ch.default_exchange.publish(Message(BODY), ctx.queue)
        await asyncio.wait_for(done.wait(), ctx.remaining())
        ctx.rate(t0)
        t0 = time.perf_counter()
        for tag in tags:
            await queue.cancel(tag)
        ctx.out["close_s"] = time.perf_counter() - t0

        async def more() -> tuple[int, list[Any]]:
            k = min(ctx.n, HEAP_ITEMS)
            return k, [await queue.consume(on_message, no_ack=True) for _ in range(k)]

        per, keep = await _atraced(more)
        ctx.heap(per)
        for tag in keep:
            await queue.cancel(tag)
    finally:
        await conn.close()


# amqp_client, blocking -----------------------------------------------------------------


def bl_conns(ctx: Ctx) -> None:
    from amqp_client import blocking

    with blocking.connect(ctx.url) as warm:
        warm.channel().close()
    before = Snapshot.take()
    opener = Opener()
    conns, chans = [], []
    try:
        for _ in range(ctx.n):
            t0 = opener.start()
            conn = blocking.connect(ctx.url)
            conns.append(conn)
            chans.append(conn.channel())
            opener.done(t0)
        ctx.out.update(opener.figures())
        ctx.measured(before, ctx.n)
        t0 = time.perf_counter()
        for i in range(ctx.messages):
            chans[i % ctx.n].basic_publish(BODY, routing_key=ctx.queue)
        ctx.wait_count()
        ctx.rate(t0)
    finally:
        t0 = time.perf_counter()
        for conn in conns:
            conn.close()
        ctx.out["close_s"] = time.perf_counter() - t0
    keep: list[Any] = []

    def more() -> int:
        k = min(ctx.n, HEAP_ITEMS)
        for _ in range(k):
            conn = blocking.connect(ctx.url)
            keep.append((conn, conn.channel()))
        return k

    ctx.heap(_traced(more))
    for conn, _ in keep:
        conn.close()


def bl_chans(ctx: Ctx) -> None:
    from amqp_client import blocking

    with blocking.connect(ctx.url) as conn:
        if ctx.n > conn.channel_max:
            raise BenchError(f"{ctx.n} channels > channel_max {conn.channel_max}")
        conn.channel().close()
        before = Snapshot.take()
        opener = Opener()
        chans = []
        for _ in range(ctx.n):
            t0 = opener.start()
            chans.append(conn.channel())
            opener.done(t0)
        ctx.out.update(opener.figures())
        ctx.measured(before, ctx.n)
        t0 = time.perf_counter()
        for i in range(ctx.messages):
            chans[i % ctx.n].basic_publish(BODY, routing_key=ctx.queue)
        ctx.wait_count()
        ctx.rate(t0)
        t0 = time.perf_counter()
        for ch in chans:
            ch.close()
        ctx.out["close_s"] = time.perf_counter() - t0
        keep: list[Any] = []

        def more() -> int:
            k = min(ctx.n, HEAP_ITEMS)
            keep.extend(conn.channel() for _ in range(k))
            return k

        ctx.heap(_traced(more))
        for ch in keep:
            ch.close()


def bl_cons(ctx: Ctx) -> None:
    from amqp_client import blocking

    with blocking.connect(ctx.url) as conn:
        ch = conn.channel()
        ch.basic_consume(ctx.queue, no_ack=True).cancel()
        before = Snapshot.take()
        opener = Opener()
        consumers = []
        for _ in range(ctx.n):
            t0 = opener.start()
            consumers.append(ch.basic_consume(ctx.queue, no_ack=True))
            opener.done(t0)
        ctx.out.update(opener.figures())
        ctx.measured(before, ctx.n)
        t0 = time.perf_counter()
        for _ in range(ctx.messages):
            ch.basic_publish(BODY, routing_key=ctx.queue)
        got = 0
        while got < ctx.messages:  # one reader thread visits every consumer
            ctx.remaining()
            for consumer in consumers:
                try:
                    while consumer.get(timeout=0) is not None:
                        got += 1
                except TimeoutError:
                    pass
        ctx.rate(t0)
        t0 = time.perf_counter()
        for consumer in consumers:
            consumer.cancel()
        ctx.out["close_s"] = time.perf_counter() - t0
        keep: list[Any] = []

        def more() -> int:
            k = min(ctx.n, HEAP_ITEMS)
            keep.extend(ch.basic_consume(ctx.queue, no_ack=True) for _ in range(k))
            return k

        ctx.heap(_traced(more))
        for consumer in keep:
            consumer.cancel()


# pika ------------------------------------------------------------------------------------


def pk_connect(ctx: Ctx) -> Any:
    import pika

    return pika.BlockingConnection(pika.URLParameters(ctx.url))


def pk_conns(ctx: Ctx) -> None:
    warm = pk_connect(ctx)
    warm.channel().close()
    warm.close()
    before = Snapshot.take()
    opener = Opener()
    conns, chans = [], []
    try:
        for _ in range(ctx.n):
            t0 = opener.start()
            conn = pk_connect(ctx)
            conns.append(conn)
            chans.append(conn.channel())
            opener.done(t0)
        ctx.out.update(opener.figures())
        ctx.measured(before, ctx.n)
        t0 = time.perf_counter()
        for i in range(ctx.messages):
            chans[i % ctx.n].basic_publish("", ctx.queue, BODY)
        ctx.wait_count()
        ctx.rate(t0)
    finally:
        t0 = time.perf_counter()
        for conn in conns:
            with contextlib.suppress(Exception):
                conn.close()
        ctx.out["close_s"] = time.perf_counter() - t0
    keep: list[Any] = []

    def more() -> int:
        k = min(ctx.n, HEAP_ITEMS)
        for _ in range(k):
            conn = pk_connect(ctx)
            keep.append((conn, conn.channel()))
        return k

    ctx.heap(_traced(more))
    for conn, _ in keep:
        conn.close()


def pk_chans(ctx: Ctx) -> None:
    conn = pk_connect(ctx)
    try:
        conn.channel().close()
        before = Snapshot.take()
        opener = Opener()
        chans = []
        for _ in range(ctx.n):
            t0 = opener.start()
            chans.append(conn.channel())
            opener.done(t0)
        ctx.out.update(opener.figures())
        ctx.measured(before, ctx.n)
        t0 = time.perf_counter()
        for i in range(ctx.messages):
            chans[i % ctx.n].basic_publish("", ctx.queue, BODY)
        ctx.wait_count()
        ctx.rate(t0)
        t0 = time.perf_counter()
        for ch in chans:
            ch.close()
        ctx.out["close_s"] = time.perf_counter() - t0
        keep: list[Any] = []

        def more() -> int:
            k = min(ctx.n, HEAP_ITEMS)
            keep.extend(conn.channel() for _ in range(k))
            return k

        ctx.heap(_traced(more))
        for ch in keep:
            ch.close()
    finally:
        with contextlib.suppress(Exception):
            conn.close()


def pk_cons(ctx: Ctx) -> None:
    conn = pk_connect(ctx)
    try:
        ch = conn.channel()
        got = 0

        def on_message(*_args: Any) -> None:
            nonlocal got
            got += 1

        ch.basic_cancel(ch.basic_consume(ctx.queue, on_message, auto_ack=True))
        before = Snapshot.take()
        opener = Opener()
        tags = []
        for _ in range(ctx.n):
            t0 = opener.start()
            tags.append(ch.basic_consume(ctx.queue, on_message, auto_ack=True))
            opener.done(t0)
        ctx.out.update(opener.figures())
        ctx.measured(before, ctx.n)
        t0 = time.perf_counter()
        for _ in range(ctx.messages):
            ch.basic_publish("", ctx.queue, BODY)
        while got < ctx.messages:
            conn.process_data_events(time_limit=min(0.1, ctx.remaining()))
        ctx.rate(t0)
        t0 = time.perf_counter()
        for tag in tags:
            ch.basic_cancel(tag)
        ctx.out["close_s"] = time.perf_counter() - t0
        keep: list[Any] = []

        def more() -> int:
            k = min(ctx.n, HEAP_ITEMS)
            keep.extend(
                ch.basic_consume(ctx.queue, on_message, auto_ack=True) for _ in range(k)
            )
            return k

        ctx.heap(_traced(more))
        for tag in keep:
            ch.basic_cancel(tag)
    finally:
        with contextlib.suppress(Exception):
            conn.close()


RUNNERS: dict[str, dict[str, Callable[[Ctx], Any]]] = {
    "amqp_client": {"conns": ac_conns, "chans": ac_chans, "cons": ac_cons},
    "amqp_client.blocking": {"conns": bl_conns, "chans": bl_chans, "cons": bl_cons},
    SMALL_STACK: {"conns": bl_conns, "chans": bl_chans, "cons": bl_cons},
    "aio-pika": {"conns": ap_conns, "chans": ap_chans, "cons": ap_cons},
    "pika": {"conns": pk_conns, "chans": pk_chans, "cons": pk_cons},
}


# --- the child --------------------------------------------------------------------------


def run_worker(job: dict[str, Any]) -> dict[str, Any]:
    fd_limit = raise_fd_limit()
    if job["client"] == SMALL_STACK:
        threading.stack_size(256 * 1024)
    admin = Admin(job["url"])
    queue = job["queue"]
    out: dict[str, Any] = {"fd_limit": fd_limit}
    try:
        admin.declare(queue)
        ctx = Ctx(job["url"], queue, job["n"], job["messages"], job["timeout"],
                  admin, out)  # fmt: skip
        runner = RUNNERS[job["client"]][job["scenario"]]
        t0 = time.perf_counter()
        result = runner(ctx)
        if asyncio.iscoroutine(result):
            asyncio.run(result)
        out["wall_s"] = time.perf_counter() - t0
        return out
    finally:
        with contextlib.suppress(Exception):
            admin.delete(queue)
        admin.close()


def worker_main(arg: str) -> int:
    try:
        res = {"ok": True, **run_worker(json.loads(arg))}
    except BaseException as exc:  # report anything, the parent decides
        text = f"{str(exc) or type(exc).__name__} (after {OPENED[0]} opened)"
        res = {"ok": False, "error": f"{type(exc).__name__}: {text}"[:300]}
    print(RESULT_MARK + json.dumps(res), flush=True)
    return 0 if res["ok"] else 1


# --- the parent -------------------------------------------------------------------------


def run_child(job: dict[str, Any], hard_timeout: float) -> dict[str, Any]:
    cmd = [sys.executable, os.path.abspath(__file__), "--worker", json.dumps(job)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)  # fmt: skip
    return collect_child(proc, job, hard_timeout, RESULT_MARK)


TITLES = {
    "conns": "{n:,} connections, one channel each; publish {p:,} x 128 B round-robin",
    "chans": "{n:,} channels on one connection; publish {p:,} x 128 B round-robin",
    "cons": "{n:,} consumers on one channel, one queue; {p:,} x 128 B through them",
}
UNITS = {"conns": "conn", "chans": "chan", "cons": "cons"}


def _kib(v: float | None) -> str:
    return "-" if v is None else f"{v / 1024:,.1f}"


def print_table(
    scenario: str, n: int, p: int, cells: dict[str, dict[str, Any]]
) -> None:
    unit = UNITS[scenario]
    print(f"\n{scenario}: {TITLES[scenario].format(n=n, p=p)}")
    print(f"{'client':<27}{'open s':>8}{'first us':>10}{'last us':>10}{'l/f':>6}"
          f"{'cpu first':>10}{'cpu last':>9}"
          f"{'RSS KiB/' + unit:>15}{'heap KiB/' + unit:>16}{'threads':>8}"
          f"{'fds':>6}{'msg/s':>9}{'close s':>9}")  # fmt: skip
    for client, r in cells.items():
        if not r["ok"]:
            print(f"{client:<27}FAILED {r['error']}")
            continue
        growth = r["last_us"] / r["first_us"] if r["first_us"] else 0.0
        print(f"{client:<27}{r['open_s']:>8.3f}{r['first_us']:>10,.0f}"
              f"{r['last_us']:>10,.0f}{growth:>6.2f}{r['cpu_first_us']:>10,.0f}"
              f"{r['cpu_last_us']:>9,.0f}{_kib(r['rss_per_item']):>15}"
              f"{_kib(r.get('heap_per_item')):>16}{r['threads']:>8}{r['fds']:>6}"
              f"{r['publish_per_s']:>9,.0f}{r['close_s']:>9.3f}")  # fmt: skip
    sys.stdout.flush()


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--url", default=os.environ.get("AMQP_URL", DEFAULT_URL))
    size = ap.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_true", help="smaller sizes (~1 min)")
    size.add_argument("--tiny", action="store_true", help="a few items: smoke test")
    ap.add_argument("--clients", default=",".join(CLIENTS),
                    help=f"comma-separated, from: {', '.join(RUNNERS)}")  # fmt: skip
    ap.add_argument("--scenarios", default="conns,chans,cons")
    ap.add_argument("--timeout", type=float, default=300.0,
                    help="deadline of one child's scenario, s")  # fmt: skip
    ap.add_argument("--json", metavar="FILE", help="also write the figures as JSON")
    ap.add_argument(
        "--own-broker",
        action="store_true",
        help="start a throw-away RabbitMQ node (tests/support/broker.py) with this "
        "process's fd limit raised to its hard limit, and run against it: a "
        "broker started with the common 1,024 fds takes only ~830 connections",
    )
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker is not None:
        return worker_main(args.worker)
    if args.own_broker:
        raise_fd_limit()  # the node inherits it
        sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        from tests.support.broker import BrokerNode

        with BrokerNode() as node:
            print(f"own broker node {node.nodename} on port {node.port}", flush=True)
            args.url = node.url
            return run(ap, args)
    return run(ap, args)


def run(ap: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    """The parent's run: every (scenario, size, client) in a child."""
    clients = [c.strip() for c in args.clients.split(",") if c.strip()]
    scenarios = [s.strip() for s in args.scenarios.split(",") if s.strip()]
    for c in clients:
        if c not in RUNNERS:
            ap.error(f"unknown client {c!r}; known: {', '.join(RUNNERS)}")
    for s in scenarios:
        if s not in TITLES:
            ap.error(f"unknown scenario {s!r}; known: {', '.join(TITLES)}")
    mode = MODES["tiny" if args.tiny else "quick" if args.quick else "full"]
    try:
        admin = Admin(args.url)
    except Exception as exc:
        print(f"cannot connect to {args.url.split('@')[-1]}: {exc}", file=sys.stderr)
        return 2
    broker = admin.server_version
    admin.close()
    raise_fd_limit()
    meta: dict[str, Any] = {
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "broker": f"RabbitMQ {broker}",
        "cpus": os.cpu_count(),
        "loadavg_start": os.getloadavg(),
        "platform": platform.platform(),
        "versions": _versions(),
        "messages": mode.messages,
    }
    print(f"scale bench: RabbitMQ {broker}, {meta['cpus']} CPUs, Python "
          f"{meta['versions']['python']}, load {meta['loadavg_start'][0]:.1f}; "
          "RSS: VmRSS delta / N; heap: tracemalloc / item (<= 100 items)",
          flush=True)  # fmt: skip
    tag = uuid.uuid4().hex[:8]
    results: dict[str, Any] = {}
    flip = False
    for scenario in scenarios:
        for n in mode.sizes[scenario]:
            cells: dict[str, dict[str, Any]] = {}
            order = clients[::-1] if flip else clients
            flip = not flip
            for client in order:
                job = {
                    "client": client,
                    "scenario": scenario,
                    "n": n,
                    "messages": mode.messages,
                    "url": args.url,
                    "timeout": args.timeout,
                    "queue": f"bench-scale-{tag}-{scenario}-{n}-{uuid.uuid4().hex[:6]}",
                }
                res = run_child(job, args.timeout * 2 + 60)
                if not res["ok"]:
                    print(f"  {scenario} {n} {client}: FAILED {res['error']}",
                          file=sys.stderr, flush=True)  # fmt: skip
                cells[client] = res
            cells = {c: cells[c] for c in clients}
            print_table(scenario, n, mode.messages, cells)
            results[f"{scenario}/{n}"] = cells
    meta["loadavg_end"] = os.getloadavg()
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"meta": meta, "results": results}, f, indent=2)
    failed = [f"{k}/{c}" for k, cells in results.items()
              for c, r in cells.items() if not r["ok"]]  # fmt: skip
    if failed:
        print(f"\nfailed: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
