"""Network faults without recovery, through a TCP proxy (tests/support/proxy.py).

The proxy sits between the client and the shared broker and breaks only the
connection through it: the broker itself is never stopped or touched, so
these are ``integration`` tests. Both fronts run each scenario:

* a **stalled** connection (no byte moves either way, sockets open) is
  declared dead by the client's heartbeat check within two heartbeat
  intervals, and every waiter fails with HeartbeatTimeout;
* a connection **cut in the middle of a body frame** of a 1 MiB delivery
  fails every waiter (the delivery itself, an RPC, a confirmation,
  wait_closed) with ConnectionLost, nothing hangs and, for the blocking
  front, no thread is left behind;
* a **slow** link whose frames take longer than two heartbeats to trickle in
  is not a heartbeat timeout (any byte is a sign of life);
* a **refused** connection (accepted and closed, or nothing listening)
  fails the connect with ConnectionLost at once.
"""

from __future__ import annotations

import asyncio
import struct
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

import amqp_client
from tests.integration.helpers import (
    Front,
    amqp_url,
    resources,
    threads_left,
    wait_count,
    within,
)
from tests.support.proxy import SERVER_TO_CLIENT, Proxy

pytestmark = pytest.mark.integration

#: Slack on top of 2 x heartbeat, seconds. The core's deadline is the last
#: byte received + 2 x heartbeat, and the last byte came in before the stall,
#: so an exact clock would detect it at <= 2 x heartbeat after the stall.
#: The slack covers the timer firing late and, for the blocking front, the
#: hops from the I/O thread through the test's worker threads to its event
#: loop: milliseconds normally, up to a few hundred on this 2-CPU machine
#: when other test suites load it.
DETECTION_SLACK = 0.5

FRAME_MAX = 4096  # RabbitMQ's minimum: a 1 MiB body is 257 body frames
BODY_FRAME = FRAME_MAX  # 7 header bytes + 4,088 payload bytes + frame-end
BIG = bytes(range(256)) * 4096  # 1 MiB
#: Where the cut falls, counted from the first byte of the delivery: past
#: basic.deliver and the content header (together ~100 to ~300 bytes), 60
#: whole body frames, then 2,048 bytes: inside body frame 61 whatever the
#: exact size of the two frames before the bodies (checked below).
CUT_OFFSET = 300 + 60 * BODY_FRAME + 2048


def finish_times(
    *awaitables: Any,
) -> tuple[list[asyncio.Future[Any]], dict[int, float]]:
    """Run each awaitable as a task; record when each one finishes (by
    its position)."""
    tasks: list[asyncio.Future[Any]] = []
    times: dict[int, float] = {}

    def stamp(index: int) -> Callable[[asyncio.Future[Any]], None]:
        def done(_task: asyncio.Future[Any]) -> None:
            times.setdefault(index, time.monotonic())

        return done

    for index, awaitable in enumerate(awaitables):
        task = asyncio.ensure_future(awaitable)
        task.add_done_callback(stamp(index))
        tasks.append(task)
    return tasks, times


# --- a stalled connection: heartbeat timeout ------------------------------------------


async def stalled_scenario(
    front: Front, proxy: Proxy, heartbeat: int
) -> dict[str, float]:
    conn = await within(front.connect(proxy.url(amqp_url()), heartbeat=heartbeat), 30)
    try:
        assert conn.heartbeat == heartbeat
        ch = await within(conn.channel())
        queue = (await within(ch.queue_declare("", exclusive=True))).queue
        consumer = await within(ch.basic_consume(queue))
        await within(ch.confirm_select())
        await asyncio.sleep(heartbeat)  # some heartbeats went both ways

        began = time.monotonic()  # taken before: errs on the strict side
        proxy.stall()
        confirmation = await ch.basic_publish(b"x", routing_key=queue)
        (rpc, confirm, delivery, closed), finished = finish_times(
            ch.queue_declare(queue, passive=True),
            confirmation,
            anext(consumer),
            conn.closed,
        )
        error = await within(closed, 2 * heartbeat + 5)
        await asyncio.wait([rpc, confirm, delivery], timeout=5)
        assert len(finished) == 4, "a waiter was still pending"
        assert isinstance(error, amqp_client.HeartbeatTimeout)
        assert not conn.is_open
        for waiter in (rpc, confirm, delivery):
            with pytest.raises(amqp_client.HeartbeatTimeout):
                waiter.result()
        with pytest.raises(amqp_client.HeartbeatTimeout):
            await conn.channel()
        return {"closed": finished[3] - began, "last": max(finished.values()) - began}
    finally:
        await within(conn.close())


@pytest.mark.parametrize("heartbeat", [1, 2])
def test_stalled_connection_dies_within_two_heartbeats(
    front: Front, proxy: Proxy, heartbeat: int
) -> None:
    took = front.run(stalled_scenario, proxy, heartbeat)
    bound = 2 * heartbeat + DETECTION_SLACK
    # Every waiter (the close itself included) failed within the bound...
    assert took["last"] <= bound, f"{front.name}: dead after {took}, bound {bound} s"
    # ...and not before a whole heartbeat interval: the broker was sending
    # heartbeats every heartbeat / 2 s until the stall, so an earlier death
    # would have another cause.
    assert took["closed"] >= heartbeat, f"{front.name}: dead too soon: {took}"


# --- a cut inside a body frame ------------------------------------------------------------


def frames_of(stream: bytes) -> tuple[list[tuple[int, int, bytes]], bytes]:
    """Split a broker-to-client byte stream into whole frames (type,
    channel, payload) and the incomplete rest."""
    frames: list[tuple[int, int, bytes]] = []
    offset = 0
    while len(stream) - offset >= 7:
        kind, channel, size = struct.unpack_from(">BHI", stream, offset)
        end = offset + 7 + size
        if len(stream) < end + 1:
            break
        assert stream[end] == 0xCE, f"no frame-end at {end}"
        frames.append((kind, channel, stream[offset + 7 : end]))
        offset = end + 1
    return frames, stream[offset:]


async def mid_frame_cut_scenario(front: Front, proxy: Proxy, rst: bool) -> None:
    async with resources(front) as res:
        queue = res.queue("mid-frame-cut")
        direct = await within(front.connect())
        conn = await within(front.connect(proxy.url(amqp_url()), frame_max=FRAME_MAX))
        try:
            assert conn.frame_max == FRAME_MAX
            closed_callbacks: list[object] = []
            conn.add_on_close_callback(closed_callbacks.append)
            ch = await within(conn.channel())
            await within(ch.queue_declare(queue))
            await within(ch.basic_qos(prefetch_count=1))
            consumer = await within(ch.basic_consume(queue))
            other = await within(conn.channel())
            await within(other.confirm_select())
            publisher = await within(direct.channel())
            await within(publisher.confirm_select())

            # Freeze the proxied connection, then have the broker start the
            # 1 MiB delivery into it (it waits in the sockets), then queue
            # the other requests behind it: their replies cannot overtake
            # the delivery, which the cut below interrupts.
            proxy.stall()
            start = proxy.forwarded(SERVER_TO_CLIENT)
            await within(await publisher.basic_publish(BIG, routing_key=queue))
            # Wait until the broker handed the message to the consumer.
            await wait_count(direct, queue, 0)
            confirmation = await other.basic_publish(b"small", routing_key=queue)
            waiters, _ = finish_times(
                anext(consumer),
                other.queue_declare(queue, passive=True),
                confirmation,
                ch.basic_get(queue),
            )
            closed = asyncio.ensure_future(conn.wait_closed())
            await asyncio.sleep(0.3)  # (the blocking front's threads are waiting)
            assert not any(w.done() for w in (*waiters, closed))

            cut = proxy.cut_after(SERVER_TO_CLIENT, CUT_OFFSET, rst=rst)
            proxy.resume()
            total = await asyncio.to_thread(cut.result, 10)
            assert total == start + CUT_OFFSET

            error = await within(closed, 5)
            assert isinstance(error, amqp_client.ConnectionLost)
            assert not isinstance(error, amqp_client.HeartbeatTimeout)
            _, pending = await asyncio.wait(waiters, timeout=5)
            assert not pending, f"hung: {pending}"
            for waiter in waiters:
                with pytest.raises(amqp_client.ConnectionLost):
                    waiter.result()
            assert closed_callbacks == [error]
            assert not conn.is_open
            with pytest.raises(amqp_client.ConnectionLost):
                await ch.basic_publish(b"late", routing_key=queue)
        finally:
            await within(conn.close())
            await within(direct.close())

    # Where did the cut fall? Inside a body frame of the 1 MiB delivery,
    # after only basic.deliver, its header and body frames.
    stream = proxy.transcript(SERVER_TO_CLIENT)
    assert len(stream) == start + CUT_OFFSET
    _, rest = frames_of(stream[:start])
    assert rest == b"", "the stall began inside a frame"
    frames, partial = frames_of(stream[start:])
    kinds = [kind for kind, _, _ in frames]
    assert kinds[:2] == [1, 2], kinds[:4]
    assert frames[0][2][:4] == struct.pack(">HH", 60, 60)  # basic.deliver
    assert set(kinds[2:]) == {3}
    body_size = struct.unpack_from(">Q", frames[1][2], 4)[0]
    assert body_size == len(BIG)
    assert len(partial) > 7, "cut inside a frame header, not its payload"
    kind, channel, size = struct.unpack_from(">BHI", partial)
    assert (kind, channel) == (3, frames[0][1])
    assert len(partial) < 7 + size, "cut at a frame boundary"
    bodies = b"".join(payload for _, _, payload in frames[2:]) + partial[7:]
    assert bodies == BIG[: len(bodies)]


@pytest.mark.parametrize("rst", [False, True], ids=["fin", "rst"])
def test_cut_inside_body_frame_fails_every_waiter(
    front: Front, proxy: Proxy, rst: bool
) -> None:
    before = set(threading.enumerate())
    front.run(mid_frame_cut_scenario, proxy, rst)
    assert threads_left(before) == []


# --- a slow link, a refusing listener -----------------------------------------------------

SLOW_RATE = 30_000  # bytes/s each way
SLOW_FRAME_MAX = 131_072  # one body frame takes ~4.4 s at SLOW_RATE
SLOW_BODY = bytes(range(256)) * 800  # 204,800 B: two body frames


async def slow_link_scenario(front: Front, proxy: Proxy) -> float:
    async with resources(front) as res:
        queue = res.queue("slow-link")
        async with front.connect() as direct:
            publisher = await within(direct.channel())
            await within(publisher.queue_declare(queue))
            await within(publisher.confirm_select())
            await within(await publisher.basic_publish(SLOW_BODY, routing_key=queue))
        url = proxy.url(amqp_url())
        conn = await within(front.connect(url, heartbeat=1, frame_max=SLOW_FRAME_MAX))
        try:
            assert conn.heartbeat == 1
            ch = await within(conn.channel())
            await asyncio.to_thread(proxy.slow, SLOW_RATE)
            began = time.monotonic()
            got = await within(ch.basic_get(queue, no_ack=True), 30)
            took = time.monotonic() - began
            await asyncio.to_thread(proxy.slow)
            assert got is not None and got.body == SLOW_BODY
            # No frame arrived for far longer than 2 x heartbeat, but bytes
            # kept coming: the connection is alive.
            assert conn.is_open
            await within(ch.basic_qos(prefetch_count=1))
        finally:
            await within(conn.close())
    return took


def test_slow_link_is_not_a_heartbeat_timeout(front: Front, proxy: Proxy) -> None:
    took = front.run(slow_link_scenario, proxy)
    assert took > 4 * 1, (
        f"the link was not slow ({took:.1f} s): the test proves nothing"
    )


async def refused_scenario(front: Front, proxy: Proxy) -> float:
    began = time.monotonic()
    with pytest.raises(amqp_client.ConnectionLost):
        await within(front.connect(proxy.url(amqp_url()), connection_timeout=10), 15)
    return time.monotonic() - began


@pytest.mark.parametrize("mode", ["close", "unlisten"])
def test_refused_connection_is_connection_lost(
    front: Front, proxy: Proxy, mode: str
) -> None:
    proxy.refuse(True, mode=mode)  # type: ignore[arg-type]
    took = front.run(refused_scenario, proxy)
    assert took < 2.0, f"{front.name}: took {took:.1f} s to fail"
    assert proxy.counters()["refused"] == (1 if mode == "close" else 0)
    proxy.refuse(False)
    assert front.run(_connects, proxy)


async def _connects(front: Front, proxy: Proxy) -> bool:
    async with front.connect(proxy.url(amqp_url())) as conn:
        return bool(conn.is_open)
