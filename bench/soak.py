"""Soak test: publish and consume at a steady rate for minutes; watch memory.

One connection with two channels against a real RabbitMQ (``--url``, else
``$AMQP_URL``, else the local broker): a publisher in confirm mode (at most
``--window`` unconfirmed) paced at ``--rate`` messages per second, and a
consumer (prefetch ``--prefetch``) that acks each delivery. Every body
carries its sequence number, so the consumer checks that messages arrive
exactly once and in order (one queue, one consumer, no requeues).

Every ``--sample`` seconds (10) the process's resident memory (``VmRSS`` in
``/proc/self/status``) is sampled and printed with the counters. At the end
the program prints the RSS after ``--warmup`` seconds (60, "the first
minute"), the RSS at the end and their ratio, and exits with status 1 if the
end is more than ``--max-growth`` (10 %) above the first-minute value, if
any message was lost, duplicated, reordered or nacked, or if the publisher
fell far behind its rate (the broker could not keep up: the figures would
not mean what they say). Status 2: the run itself failed (an exception).

Not a test (``make soak``, not CI). Its queue,
``amqp-client-soak.<random>``, is non-durable, deleted at the end, and has
``x-expires`` as the last resort.

    .venv/bin/python bench/soak.py                      # asyncio, 10 min, 2,000 msg/s
    .venv/bin/python bench/soak.py --front blocking --minutes 5 --rate 1000
"""

from __future__ import annotations

import argparse
import asyncio
import os
import struct
import sys
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import amqp_client
from amqp_client import blocking

DEFAULT_URL = "amqp://guest:guest@127.0.0.1:5672/%2f"
#: The broker drops a forgotten queue this long after its last use.
QUEUE_EXPIRES_MS = 15 * 60 * 1000
#: Publishing is paced in ticks of this many seconds.
TICK = 0.01
#: A step that waits for the broker (declare, the end of the drain) gives
#: up after this many seconds.
STEP_TIMEOUT = 60.0
#: The publisher may lag its schedule by at most this share at the end.
MAX_LAG = 0.05
SEQ = struct.Struct(">Q")


def rss_kib() -> int:
    """This process's resident set size in KiB (``VmRSS``, Linux)."""
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS in /proc/self/status")


@dataclass
class Stats:
    """Counters shared by the publisher, the consumer and the sampler.

    Each counter is written by one thread only (the publisher's or the
    consumer's); the sampler only reads them.
    """

    published: int = 0
    confirmed: int = 0
    nacked: int = 0
    consumed: int = 0
    out_of_order: int = 0
    next_seq: int = 0
    errors: list[str] = field(default_factory=list)

    def on_delivery(self, body: bytes) -> None:
        (seq,) = SEQ.unpack_from(body)
        if seq != self.next_seq:
            self.out_of_order += 1
        self.next_seq = seq + 1
        self.consumed += 1


@dataclass
class Options:
    url: str
    front: str
    minutes: float
    rate: float
    size: int
    window: int
    prefetch: int
    sample: float
    warmup: float
    max_growth: float

    @property
    def seconds(self) -> float:
        return self.minutes * 60.0

    @property
    def total(self) -> int:
        """How many messages the run publishes."""
        return int(self.seconds * self.rate)


def body_for(seq: int, size: int) -> bytes:
    return SEQ.pack(seq) + b"." * max(0, size - SEQ.size)


def due(start: float, rate: float, now: float, total: int) -> int:
    """How many messages the schedule says are published by ``now``."""
    return min(total, int((now - start) * rate))


class Sampler:
    """Samples RSS every ``interval`` seconds and prints a progress line."""

    def __init__(self, options: Options, stats: Stats) -> None:
        self.options = options
        self.stats = stats
        self.samples: list[tuple[float, int]] = []
        self.start = time.monotonic()

    def take(self) -> None:
        elapsed = time.monotonic() - self.start
        rss = rss_kib()
        self.samples.append((elapsed, rss))
        s = self.stats
        print(
            f"  t={elapsed:6.0f} s  rss={rss / 1024:7.1f} MiB  "
            f"published={s.published:>9,}  confirmed={s.confirmed:>9,}  "
            f"consumed={s.consumed:>9,}",
            flush=True,
        )

    def baseline(self) -> tuple[float, int]:
        """The first sample at or after the warm-up."""
        for elapsed, rss in self.samples:
            if elapsed >= self.options.warmup - 0.5:
                return elapsed, rss
        return self.samples[-1]


# --- asyncio ---------------------------------------------------------------------


async def run_aio(options: Options, queue: str, stats: Stats, sampler: Sampler) -> None:
    total = options.total
    async with amqp_client.connect(options.url) as conn:
        setup = await asyncio.wait_for(conn.channel(), STEP_TIMEOUT)
        await asyncio.wait_for(
            setup.queue_declare(queue, arguments={"x-expires": QUEUE_EXPIRES_MS}),
            STEP_TIMEOUT,
        )
        try:
            pub = await asyncio.wait_for(conn.channel(), STEP_TIMEOUT)
            await pub.confirm_select(timeout=STEP_TIMEOUT)
            sub = await asyncio.wait_for(conn.channel(), STEP_TIMEOUT)
            await sub.basic_qos(prefetch_count=options.prefetch, timeout=STEP_TIMEOUT)
            consumer = await sub.basic_consume(queue, timeout=STEP_TIMEOUT)

            async def consume() -> None:
                async for delivery in consumer:
                    stats.on_delivery(delivery.body)
                    await delivery.ack()

            async def sample() -> None:
                while True:
                    await asyncio.sleep(options.sample)
                    sampler.take()

            async def settle(confirmation: Any) -> None:
                try:
                    await asyncio.wait_for(confirmation, STEP_TIMEOUT)
                except amqp_client.MessageNacked:
                    stats.nacked += 1
                else:
                    stats.confirmed += 1

            consuming = asyncio.create_task(consume())
            sampling = asyncio.create_task(sample())
            try:
                window: deque[Any] = deque()
                start = time.monotonic()
                while stats.published < total:
                    target = due(start, options.rate, time.monotonic(), total)
                    while stats.published < target:
                        body = body_for(stats.published, options.size)
                        window.append(await pub.basic_publish(body, routing_key=queue))
                        stats.published += 1
                        while len(window) > options.window or (
                            window and window[0].done()
                        ):
                            await settle(window.popleft())
                    await asyncio.sleep(TICK)
                while window:
                    await settle(window.popleft())
                stats.errors.extend(lag_error(options, start, stats))
                deadline = time.monotonic() + STEP_TIMEOUT
                while stats.consumed < stats.confirmed and time.monotonic() < deadline:
                    if consuming.done():
                        break
                    await asyncio.sleep(0.05)
                if consuming.done() and (exc := consuming.exception()) is not None:
                    raise exc
                sampler.take()
            finally:
                for task in (consuming, sampling):
                    task.cancel()
                await asyncio.gather(consuming, sampling, return_exceptions=True)
                await asyncio.wait_for(consumer.cancel(), STEP_TIMEOUT)
        finally:
            await asyncio.wait_for(setup.queue_delete(queue), STEP_TIMEOUT)


# --- blocking ----------------------------------------------------------------------


def run_blocking(options: Options, queue: str, stats: Stats, sampler: Sampler) -> None:
    total = options.total
    with blocking.connect(options.url) as conn:
        setup = conn.channel(timeout=STEP_TIMEOUT)
        setup.queue_declare(
            queue, arguments={"x-expires": QUEUE_EXPIRES_MS}, timeout=STEP_TIMEOUT
        )
        try:
            pub = conn.channel(timeout=STEP_TIMEOUT)
            pub.confirm_select(timeout=STEP_TIMEOUT)
            sub = conn.channel(timeout=STEP_TIMEOUT)
            sub.basic_qos(prefetch_count=options.prefetch, timeout=STEP_TIMEOUT)
            consumer = sub.basic_consume(queue, timeout=STEP_TIMEOUT)
            stop = threading.Event()
            failure: list[BaseException] = []

            def consume() -> None:
                try:
                    while not stop.is_set():
                        try:
                            delivery = consumer.get(timeout=0.5)
                        except TimeoutError:
                            continue
                        if delivery is None:
                            return
                        stats.on_delivery(delivery.body)
                        delivery.ack()
                except BaseException as exc:  # reported by the main thread
                    failure.append(exc)

            def settle(confirmation: blocking.Confirmation) -> None:
                try:
                    confirmation.wait(STEP_TIMEOUT)
                except amqp_client.MessageNacked:
                    stats.nacked += 1
                else:
                    stats.confirmed += 1

            def publish() -> None:
                try:
                    window: deque[blocking.Confirmation] = deque()
                    start = time.monotonic()
                    while stats.published < total:
                        target = due(start, options.rate, time.monotonic(), total)
                        while stats.published < target:
                            body = body_for(stats.published, options.size)
                            confirmation = pub.basic_publish(body, routing_key=queue)
                            assert confirmation is not None
                            window.append(confirmation)
                            stats.published += 1
                            while len(window) > options.window or (
                                window and window[0].done()
                            ):
                                settle(window.popleft())
                        time.sleep(TICK)
                    while window:
                        settle(window.popleft())
                    stats.errors.extend(lag_error(options, start, stats))
                except BaseException as exc:
                    failure.append(exc)

            consuming = threading.Thread(target=consume, name="soak-consumer")
            publishing = threading.Thread(target=publish, name="soak-publisher")
            consuming.start()
            publishing.start()
            try:
                while publishing.is_alive():
                    publishing.join(options.sample)
                    if publishing.is_alive():
                        sampler.take()
                deadline = time.monotonic() + STEP_TIMEOUT
                while (
                    stats.consumed < stats.confirmed
                    and consuming.is_alive()
                    and time.monotonic() < deadline
                ):
                    time.sleep(0.05)
                sampler.take()
            finally:
                stop.set()
                publishing.join(STEP_TIMEOUT)
                consuming.join(STEP_TIMEOUT)
                consumer.cancel(timeout=STEP_TIMEOUT)
            if failure:
                raise failure[0]
        finally:
            setup.queue_delete(queue, timeout=STEP_TIMEOUT)


# --- the verdict --------------------------------------------------------------------


def lag_error(options: Options, start: float, stats: Stats) -> list[str]:
    """The publisher must have kept (nearly) to the rate it was given."""
    took = time.monotonic() - start
    if took > options.seconds * (1 + MAX_LAG) + 5:
        return [
            f"publishing {stats.published:,} messages took {took:.0f} s, "
            f"not {options.seconds:.0f} s: the rate was not sustained"
        ]
    return []


def verdict(options: Options, stats: Stats, sampler: Sampler) -> list[str]:
    problems = list(stats.errors)
    total = options.total
    if stats.published != total:
        problems.append(f"published {stats.published:,} of {total:,}")
    if stats.nacked:
        problems.append(f"{stats.nacked:,} publishes nacked")
    if stats.confirmed != stats.published - stats.nacked:
        problems.append(
            f"confirmed {stats.confirmed:,} of {stats.published:,} published"
        )
    if stats.consumed != stats.confirmed or stats.next_seq != stats.published:
        problems.append(
            f"consumed {stats.consumed:,} (last sequence number "
            f"{stats.next_seq - 1:,}), confirmed {stats.confirmed:,}: messages lost"
        )
    if stats.out_of_order:
        problems.append(f"{stats.out_of_order:,} deliveries out of sequence")
    at, first = sampler.baseline()
    end = sampler.samples[-1][1]
    ratio = end / first
    print(f"RSS after {at:.0f} s (the first minute): {first / 1024:.1f} MiB")
    print(f"RSS at the end ({sampler.samples[-1][0]:.0f} s):    {end / 1024:.1f} MiB")
    print(f"ratio end / first minute: {ratio:.3f} (limit {1 + options.max_growth:.2f})")
    peak = max(rss for _, rss in sampler.samples)
    print(f"peak RSS: {peak / 1024:.1f} MiB over {len(sampler.samples)} samples")
    if ratio > 1 + options.max_growth:
        problems.append(
            f"RSS grew {100 * (ratio - 1):.1f} % after the first minute "
            f"(limit {100 * options.max_growth:.0f} %)"
        )
    return problems


def parse_args(argv: list[str] | None) -> Options:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0] if __doc__ else None
    )
    parser.add_argument("--url", default=os.environ.get("AMQP_URL") or DEFAULT_URL)
    parser.add_argument("--front", choices=("aio", "blocking"), default="aio")
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--rate", type=float, default=2000.0, help="messages/s")
    parser.add_argument("--size", type=int, default=256, help="body bytes")
    parser.add_argument("--window", type=int, default=1000, help="unconfirmed max")
    parser.add_argument("--prefetch", type=int, default=500)
    parser.add_argument("--sample", type=float, default=10.0, help="seconds")
    parser.add_argument(
        "--warmup", type=float, default=60.0, help="seconds before the baseline RSS"
    )
    parser.add_argument("--max-growth", type=float, default=0.10)
    args = parser.parse_args(argv)
    options = Options(
        url=args.url,
        front=args.front,
        minutes=args.minutes,
        rate=args.rate,
        size=max(SEQ.size, args.size),
        window=args.window,
        prefetch=args.prefetch,
        sample=args.sample,
        warmup=args.warmup,
        max_growth=args.max_growth,
    )
    if options.seconds <= options.warmup:
        parser.error("--minutes must be longer than --warmup")
    return options


def main(argv: list[str] | None = None) -> int:
    options = parse_args(argv)
    queue = f"amqp-client-soak.{uuid.uuid4().hex[:12]}"
    print(
        f"soak: front={options.front} {options.minutes:g} min at "
        f"{options.rate:,.0f} msg/s x {options.size} B, confirm window "
        f"{options.window}, prefetch {options.prefetch}; queue {queue}",
        flush=True,
    )
    stats = Stats()
    sampler = Sampler(options, stats)
    sampler.take()
    began = time.monotonic()
    try:
        if options.front == "aio":
            asyncio.run(run_aio(options, queue, stats, sampler))
        else:
            run_blocking(options, queue, stats, sampler)
    except Exception as exc:
        print(f"FAILED: the run raised {exc!r}", flush=True)
        return 2
    took = time.monotonic() - began
    print(
        f"done in {took:.0f} s: published {stats.published:,}, confirmed "
        f"{stats.confirmed:,}, nacked {stats.nacked:,}, consumed {stats.consumed:,}"
    )
    problems = verdict(options, stats, sampler)
    for problem in problems:
        print(f"FAILED: {problem}")
    if not problems:
        print("OK")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
