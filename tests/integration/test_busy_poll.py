"""``connect(busy_poll=)``: a caller waiting for a reply polls the socket
for at most that long before it sleeps.

What must hold, in both fronts: the waiting caller reads its reply itself
(``polled`` counts the inputs it found), every other input read meanwhile
is routed in order and nothing is lost, a reply slower than the spin is
still read the usual way, a timeout shorter than the spin still ends the
wait, and a connection that ends during the spin ends as it would without
one. In asyncio the spin never yields to the loop, so a reply it reads
costs no loop turn; it does not run inside the routing of input (a task
started eagerly from a callback), nor on TLS (test_tls.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest

import amqp_client
from amqp_client import spec
from amqp_client.checks import BUSY_POLL_MAX
from tests.integration.helpers import (
    AioFront,
    Front,
    amqp_url,
    broker_address,
    first_call,
    next_delivery,
    unique,
    within,
)
from tests.support.proxy import Proxy

pytestmark = pytest.mark.integration

ROUND_TRIPS = 50
MESSAGES = 3_000


async def _requests(conn: Any, queue: str) -> None:
    """Round trips of every kind a caller waits for: a method's reply,
    basic.get, and confirmations awaited one at a time."""
    ch = await within(conn.channel())
    await within(ch.queue_declare(queue, exclusive=True))
    for _ in range(ROUND_TRIPS):
        ok = await within(ch.queue_declare(queue, passive=True))
        assert ok.queue == queue
    await within(ch.confirm_select())
    for i in range(20):
        await within(await within(ch.basic_publish(b"%d" % i, routing_key=queue)))
    for i in range(20):
        got = await within(ch.basic_get(queue, no_ack=True))
        assert got is not None and got.body == b"%d" % i
    assert await within(ch.basic_get(queue, no_ack=True)) is None


async def replies_scenario(front: Front, busy_poll: float | None) -> int:
    keywords: dict[str, Any] = {} if busy_poll is None else {"busy_poll": busy_poll}
    async with front.connect(**keywords) as conn:
        await _requests(conn, unique("busy-poll"))
        polled: int = conn._driver.polled
        return polled


def test_the_waiting_caller_reads_its_replies(front: Front) -> None:
    polled = front.run(replies_scenario, BUSY_POLL_MAX)
    # Each of the 90 waits spins for up to 10 ms: a broker on this machine
    # answers well within that, nearly always.
    assert polled > 0


@pytest.mark.parametrize("busy_poll", [None, 0.0])
def test_without_busy_poll_nothing_polls(front: Front, busy_poll: float | None) -> None:
    assert front.run(replies_scenario, busy_poll) == 0


async def consumer_scenario(front: Front) -> int:
    """A consumer waiting for deliveries that another connection publishes
    one at a time: what its connection's spins read."""
    queue = unique("busy-poll-consumer")
    async with (
        front.connect(busy_poll=BUSY_POLL_MAX) as conn,
        front.connect() as publisher,
    ):
        ch = await within(conn.channel())
        await within(ch.queue_declare(queue, exclusive=True))
        pub = await within(publisher.channel())
        async with await within(ch.basic_consume(queue, no_ack=True)) as consumer:
            before = conn._driver.polled
            for i in range(ROUND_TRIPS):
                await within(pub.basic_publish(b"%d" % i, routing_key=queue))
                # asyncio writes publishes once per loop turn, and the spin
                # takes none: let this one go out before the consumer waits.
                await asyncio.sleep(0)
                assert (await next_delivery(consumer)).body == b"%d" % i
            polled: int = conn._driver.polled - before
            return polled


def test_a_consumer_waiting_for_deliveries_spins(front: Front) -> None:
    assert front.run(consumer_scenario) > 0


async def fair_scenario(front: Front) -> tuple[int, int]:
    """Requests back to back on one task while another task counts its
    turns: (turns, replies the spin read)."""
    queue = unique("busy-poll-fair")
    async with front.connect(busy_poll=BUSY_POLL_MAX) as conn:
        ch = await within(conn.channel())
        await within(ch.queue_declare(queue, exclusive=True))
        turns = 0

        async def count() -> None:
            nonlocal turns
            while True:
                await asyncio.sleep(0)
                turns += 1

        counting = asyncio.ensure_future(count())
        await asyncio.sleep(0)
        before, polled = turns, conn._driver.polled
        for _ in range(ROUND_TRIPS):
            await ch.queue_declare(queue, passive=True)
        turns, polled = turns - before, conn._driver.polled - polled
        counting.cancel()
        return turns, polled


def test_aio_requests_back_to_back_leave_the_other_tasks_their_turns() -> None:
    # The spin takes no loop turn; a reply it reads is followed by one, so
    # a task doing nothing but requests never starves the others.
    turns, polled = AioFront().run(fair_scenario)
    assert polled > 0
    assert turns >= ROUND_TRIPS


async def interleaved_scenario(front: Front) -> None:
    """Deliveries arrive (past the delivery budget, so reading pauses and
    resumes) while another channel of the same connection spins for its
    replies: every delivery arrives once, in order."""
    queue = unique("busy-poll-mix")
    async with (
        front.connect(busy_poll=BUSY_POLL_MAX, max_buffered_messages=50) as conn,
        front.connect() as publisher,
    ):
        ch = await within(conn.channel())
        await within(ch.queue_declare(queue, exclusive=True))
        got: list[bytes] = []

        async def consume() -> None:
            async with await within(ch.basic_consume(queue, no_ack=True)) as consumer:
                while len(got) < MESSAGES:
                    got.append((await next_delivery(consumer)).body)

        consuming = asyncio.ensure_future(consume())
        other = await within(conn.channel())
        pub = await within(publisher.channel())
        for i in range(MESSAGES):
            await pub.basic_publish(b"%d" % i, routing_key=queue)
        round_trips = 0
        while not consuming.done():
            await within(other.queue_declare(queue, passive=True))
            round_trips += 1
        await within(consuming)
        assert got == [b"%d" % i for i in range(MESSAGES)]
        assert round_trips > 0
        assert conn._driver.polled > 0


def test_other_input_read_by_the_spin_is_routed_in_order(front: Front) -> None:
    front.run(interleaved_scenario)


@contextlib.asynccontextmanager
async def through_proxy(
    front: Front, prefix: str, **keywords: Any
) -> AsyncIterator[tuple[Proxy, Any, Any, str]]:
    """A proxy to the broker, a connection of ``front`` through it (with
    ``busy_poll=BUSY_POLL_MAX`` unless ``keywords`` say otherwise), a
    channel and an exclusive queue named from ``prefix``."""
    keywords.setdefault("busy_poll", BUSY_POLL_MAX)
    queue = unique(prefix)
    with Proxy(broker_address()) as proxy:
        async with front.connect(proxy.url(amqp_url()), **keywords) as conn:
            ch = await within(conn.channel())
            await within(ch.queue_declare(queue, exclusive=True))
            yield proxy, conn, ch, queue


async def slow_reply_scenario(front: Front) -> None:
    """Replies that come 50 ms late, after a 1 ms spin: read the usual way."""
    async with through_proxy(front, "busy-poll-slow", busy_poll=0.001) as (
        proxy,
        conn,
        ch,
        queue,
    ):
        before = conn._driver.polled
        proxy.slow(delay=0.05)
        for _ in range(5):
            ok = await within(ch.queue_declare(queue, passive=True))
            assert ok.queue == queue
        assert conn._driver.polled == before  # no spin caught one
        proxy.slow()


def test_a_reply_slower_than_the_spin_is_still_read(front: Front) -> None:
    front.run(slow_reply_scenario)


async def timeout_scenario(front: Front) -> None:
    """A timeout shorter than the spin ends the wait; the connection lives."""
    async with through_proxy(front, "busy-poll-timeout") as (proxy, _, ch, queue):
        proxy.stall()
        with pytest.raises(TimeoutError):
            await within(ch.queue_declare(queue, passive=True, timeout=0.002))
        proxy.resume()
        ok = await within(ch.queue_declare(queue, passive=True))
        assert ok.queue == queue


def test_a_timeout_shorter_than_the_spin_ends_the_wait(front: Front) -> None:
    front.run(timeout_scenario)


async def lost_during_spin_scenario(front: Front, rst: bool) -> None:
    """The broker's side goes away while a caller waits (and spins): the
    wait ends with ConnectionLost, as it does without a spin."""
    async with through_proxy(front, "busy-poll-lost") as (proxy, conn, ch, queue):
        proxy.stall()
        waiting = asyncio.ensure_future(ch.queue_declare(queue, passive=True))
        await asyncio.sleep(0.05)
        proxy.cut(rst=rst)
        with pytest.raises(amqp_client.ConnectionLost):
            await within(waiting)
        assert isinstance(await within(conn.closed), amqp_client.ConnectionLost)


@pytest.mark.parametrize("rst", [False, True], ids=["fin", "rst"])
def test_a_connection_lost_during_the_spin_ends_the_wait(
    front: Front, rst: bool
) -> None:
    front.run(lost_during_spin_scenario, rst)


async def recovery_scenario(front: Front) -> tuple[int, int]:
    """Round trips, a cut, recovery through the same proxy, round trips:
    what the spins read before and after (the new socket is the one spun
    on)."""
    queue = unique("busy-poll-recover")
    with Proxy(broker_address()) as proxy:
        async with front.connect(
            proxy.url(amqp_url()),
            busy_poll=BUSY_POLL_MAX,
            recover=True,
            recovery_delay=0.05,
        ) as conn:
            recovered = asyncio.get_running_loop().create_future()
            conn.add_on_recovered_callback(first_call(recovered))
            ch = await within(conn.channel())
            await within(ch.queue_declare(queue, auto_delete=False))
            for _ in range(ROUND_TRIPS):
                await within(ch.queue_declare(queue, passive=True))
            before = conn._driver.polled
            proxy.cut(rst=True)
            await within(recovered)
            for _ in range(ROUND_TRIPS):
                assert (await within(ch.queue_declare(queue, passive=True))).queue
            after = conn._driver.polled - before
            await within(ch.queue_delete(queue))
            return before, after


def test_spins_go_on_after_recovery(front: Front) -> None:
    before, after = front.run(recovery_scenario)
    assert before > 0 and after > 0


async def end_of_input_scenario(front: Front, rst: bool) -> None:
    """asyncio: a spin that reads the end of input (or a reset) returns at
    once, and the transport still reports the loss."""
    with Proxy(broker_address()) as proxy:
        async with front.connect(
            proxy.url(amqp_url()), busy_poll=BUSY_POLL_MAX
        ) as conn:
            driver = conn._driver
            # No await from the cut to the spin: the loop has not looked at
            # the socket, so the spin is what reads the FIN or RST (or it
            # arrives during the spin's 10 ms).
            proxy.cut(rst=rst)
            pending = asyncio.get_running_loop().create_future()
            before = driver.polled
            assert not driver.spin(pending, None)
            assert driver.polled == before and not pending.done()
            assert isinstance(await within(conn.closed), amqp_client.ConnectionLost)


@pytest.mark.parametrize("rst", [False, True], ids=["fin", "rst"])
def test_aio_spin_at_the_end_of_input_leaves_it_to_the_transport(rst: bool) -> None:
    AioFront().run(end_of_input_scenario, rst)


async def nested_scenario(front: Front) -> None:
    """asyncio: a spin started inside the routing of input (as a task that
    a callback starts eagerly would start one) returns without reading,
    though a reply waits on the socket; the transport reads it after."""
    queue = unique("busy-poll-nested")
    loop = asyncio.get_running_loop()
    async with front.connect(busy_poll=BUSY_POLL_MAX) as conn:
        ch = await within(conn.channel())
        side = await within(conn.channel())
        await within(ch.queue_declare(queue, exclusive=True))
        await within(ch.confirm_select())
        reply: asyncio.Future[Any] = loop.create_future()
        spun: list[bool] = []

        def on_return(*_: object) -> None:
            # A request whose reply is on the socket by the time we spin.
            side._state.request(spec.QueueDeclare(queue, passive=True), reply)
            time.sleep(0.05)
            spun.append(side._link.spin(reply, None))

        ch.add_on_return_callback(on_return)
        confirmation = await within(
            ch.basic_publish(b"back", routing_key=unique("nowhere"), mandatory=True)
        )
        with pytest.raises(amqp_client.MessageReturned):
            await within(confirmation)
        assert spun == [False]
        assert (await within(reply)).queue == queue
        ok = await within(ch.queue_declare(queue, passive=True))
        assert ok.queue == queue


def test_aio_spin_does_not_nest_in_the_routing_of_input() -> None:
    AioFront().run(nested_scenario)
