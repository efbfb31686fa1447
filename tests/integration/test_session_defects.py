"""Regression tests for the defects the session layer fixed.

1. A consumer that ended (left by ``break`` and the context exit,
   ``cancel()``, cancelled by the broker, or its channel closed) with
   deliveries still buffered kept them counted against the read pause
   forever: enough such endings paused reading for good. Now they are
   released, and returned to the broker unless no_ack.
2. ``cancel()`` of a consumer that fell far behind waited for a cancel-ok
   stuck behind the read pause.
3. The read pause counted messages only: large bodies filled the memory.
4. A ``Confirmation`` awaited under ``asyncio.wait_for`` that timed out
   (or from a cancelled task) was cancelled for everyone.
5. A ``channel()`` cancelled or timed out while waiting for open-ok left
   the channel open and its id taken.
6. A bad ``timeout=`` was noticed only after the request had been sent.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
from typing import Any

import pytest

from amqp_client import NotFoundError, blocking
from tests.integration.helpers import (
    STEP,
    AioFront,
    AsyncView,
    Front,
    amqp_url,
    next_delivery,
    raises_at_once,
    resources,
    unique,
    wait_count,
    within,
)

pytestmark = pytest.mark.integration

MiB = 1 << 20


async def publish_many(ch: Any, queue: str, count: int, body: bytes) -> None:
    """Publish ``count`` messages to ``queue`` (no confirms). The blocking
    front's channel publishes them all from one worker thread, not one
    thread hop per message."""
    if isinstance(ch, AsyncView):
        target = ch._target

        def publish() -> None:
            for _ in range(count):
                target.basic_publish(body, routing_key=queue)

        await asyncio.to_thread(publish)
    else:
        for _ in range(count):
            await ch.basic_publish(body, routing_key=queue)


async def reads_deliveries(conn: Any, res: Any) -> None:
    """Reading is not paused: a delivery arrives. (A round trip would not
    show it: awaiting a reply lifts a pause; a delivery is no reply.)"""
    ch = await within(conn.channel())
    queue = res.queue("probe")
    await within(ch.queue_declare(queue))
    consumer = await within(ch.basic_consume(queue, no_ack=True))
    await within(ch.basic_publish(b"probe", routing_key=queue))
    assert (await next_delivery(consumer, 5)).body == b"probe"
    await within(ch.close())


# --- 1. every way a consumer ends releases (and returns) what it buffered ---------

ENDINGS = ["exit", "cancel", "server", "close"]

#: With the old 20,000-message pause, 120 rounds leaving 199 deliveries
#: each behind paused reading for good around round 101.
ROUNDS = 120
PER_ROUND = 200
SMALL_BODY = b"0123456789abcdef"


async def server_cancel(admin: Any, cancels: asyncio.Queue[str]) -> str:
    """The tag of the broker's next basic.cancel. Round trips on ``admin``
    meanwhile: over a low limit, reading pauses and goes on only while a
    reply is awaited (the notification is no reply)."""
    async with asyncio.timeout(STEP):
        while cancels.empty():
            await admin.basic_qos(prefetch_count=0)
        return cancels.get_nowait()


async def all_buffered(ch: Any, queue: str) -> None:
    """A round trip on the consumer's channel: the broker pushed the whole
    round at basic.consume, so its reply comes after every delivery, and
    the consumer ends with all of them buffered."""
    await within(ch.queue_declare(queue, passive=True))


async def consumer_endings_scenario(
    front: Front, ending: str, rounds: int, per_round: int, limits: dict[str, int]
) -> None:
    """``rounds`` times: fill a fresh queue with ``per_round`` messages,
    consume one (ack it) and end the consumer with the rest buffered.

    The rounds go on (each step bounded), the deliveries the consumer never
    handed out are back in the queue (what the queue's delete-ok counts),
    and the connection still reads at the end.
    """
    async with resources(front) as res, front.connect(None, **limits) as conn:
        admin = await within(conn.channel())
        ch = await within(conn.channel())
        cancels: asyncio.Queue[str] = asyncio.Queue()
        ch.add_on_cancel_callback(cancels.put_nowait)
        returned: list[int] = []
        for _ in range(rounds):
            queue = res.queue(f"end-{ending}")
            if ending == "close":
                ch = await within(conn.channel())
            await within(ch.queue_declare(queue))
            await within(publish_many(ch, queue, per_round, SMALL_BODY))
            if ending == "exit":
                async with asyncio.timeout(2 * STEP):
                    async with await ch.basic_consume(queue) as consumer:
                        async for delivery in consumer:
                            await delivery.ack()
                            await all_buffered(ch, queue)
                            break
            else:
                consumer = await within(ch.basic_consume(queue))
                delivery = await next_delivery(consumer)
                await within(delivery.ack())
                await all_buffered(ch, queue)
            if ending == "cancel":
                await within(consumer.cancel())
            elif ending == "close":
                await within(ch.close())
            elif ending == "server":
                await within(admin.queue_delete(queue))
                assert await server_cancel(admin, cancels) == consumer.consumer_tag
                continue  # the queue is gone, and what it held with it
            # Deleted on the consumer's channel (after the consumer's
            # returns) or, once that is closed, after its close-ok.
            deleter = admin if ending == "close" else ch
            returned.append((await within(deleter.queue_delete(queue))).message_count)
        assert conn.is_open
        await reads_deliveries(conn, res)
        if ending != "server":
            assert returned == [per_round - 1] * rounds


@pytest.mark.parametrize("ending", ENDINGS)
def test_ended_consumers_release_their_deliveries(front: Front, ending: str) -> None:
    front.run(consumer_endings_scenario, ending, ROUNDS, PER_ROUND, {}, timeout=60)


@pytest.mark.parametrize("ending", ENDINGS)
def test_ended_consumers_release_under_low_limits(front: Front, ending: str) -> None:
    # Each round alone passes the limit: reading pauses mid-round, and the
    # consumer's end must lift the pause.
    limits = {"max_buffered_messages": 100}
    front.run(consumer_endings_scenario, ending, 10, 300, limits, timeout=60)


async def no_ack_scenario(front: Front) -> None:
    """A no_ack consumer's deliveries are the application's: after the
    consumer ends they are still handed out, none goes back to the queue,
    and they no longer hold the read pause."""
    limits = {"max_buffered_messages": 50}
    async with resources(front) as res, front.connect(None, **limits) as conn:
        ch = await within(conn.channel())
        queue = res.queue("no-ack")
        await within(ch.queue_declare(queue))
        await within(publish_many(ch, queue, 200, SMALL_BODY))
        consumer = await within(ch.basic_consume(queue, no_ack=True))
        first = await next_delivery(consumer)
        await within(consumer.cancel())
        await reads_deliveries(conn, res)  # released
        ok = await within(ch.queue_declare(queue, passive=True))
        assert ok.message_count == 0  # nothing returned
        bodies = [first.body]
        async with asyncio.timeout(10):
            bodies += [delivery.body async for delivery in consumer]
        assert bodies == [SMALL_BODY] * 200


def test_ended_no_ack_consumer_keeps_its_deliveries(front: Front) -> None:
    front.run(no_ack_scenario)


async def close_while_paused_scenario(front: Front, what: str) -> None:
    """Closing a channel or the connection while reading is paused: the
    close-ok is a reply the client awaits, so it is read at once."""
    async with resources(front) as res:
        conn = await front.connect(max_buffered_messages=10)
        try:
            ch = await within(conn.channel())
            queue = res.queue("close-paused")
            await within(ch.queue_declare(queue))
            await within(publish_many(ch, queue, 100, SMALL_BODY))
            await within(ch.basic_consume(queue))
            await asyncio.sleep(0.5)  # 100 pushed; reading paused at 10
            if what == "channel":
                if front.name == "blocking":
                    await ch.close(timeout=3)
                else:
                    await within(ch.close(), 3)
                assert conn.is_open
            else:
                started = asyncio.get_running_loop().time()
                await within(conn.close(), 15)
                took = asyncio.get_running_loop().time() - started
                assert took < 3, f"close took {took:.1f} s (the close-ok timed out)"
        finally:
            await within(conn.close(), 15)


@pytest.mark.parametrize("what", ["channel", "connection"])
def test_close_is_not_stuck_behind_the_read_pause(front: Front, what: str) -> None:
    front.run(close_while_paused_scenario, what)


# --- 2. a consumer that fell behind can be cancelled --------------------------------

BEHIND = 60_000


async def drain(consumer: Any, timeout: float) -> int:
    """Take every delivery an ended consumer still yields; how many. The
    blocking front's consumer is drained from one worker thread."""
    async with asyncio.timeout(timeout):
        if isinstance(consumer, AsyncView):
            target = consumer._target

            def take_all() -> int:
                count = 0
                while target.get(timeout) is not None:
                    count += 1
                return count

            return await asyncio.to_thread(take_all)
        return len([delivery async for delivery in consumer])


async def fallen_behind_scenario(front: Front) -> None:
    """60,000 deliveries pushed and none read: reading pauses. cancel()
    must still get its cancel-ok. (no_ack: returning 60,000 deliveries one
    basic.reject each takes RabbitMQ 3.10 about a minute; the returns are
    covered by the consumer-ending tests above.)"""
    async with resources(front) as res:
        queue = res.queue("behind")
        async with front.connect() as pub:
            pch = await within(pub.channel())
            await within(pch.queue_declare(queue))
            await within(publish_many(pch, queue, BEHIND, SMALL_BODY), 60)
        async with front.connect() as conn:
            await wait_count(conn, queue, BEHIND, timeout=30)
            ch = await within(conn.channel())
            consumer = await within(ch.basic_consume(queue, no_ack=True))
            await asyncio.sleep(3)  # the broker pushes; nothing is read
            if front.name == "blocking":
                # Its own timeout: a hung call must not outlive the test.
                await consumer.cancel(timeout=20)
            else:
                await within(consumer.cancel(), 20)
            assert conn.is_open
            await reads_deliveries(conn, res)
            ok = await within(ch.queue_declare(queue, passive=True), 5)
            assert ok.consumer_count == 0
            # A no_ack consumer's deliveries are the application's: all it
            # got are still handed out after the end (the rest never left
            # the queue).
            assert await drain(consumer, 30) == BEHIND - ok.message_count


def test_consumer_that_fell_behind_can_be_cancelled(front: Front) -> None:
    front.run(fallen_behind_scenario, timeout=100)


# --- 3. the read pause counts bytes --------------------------------------------------

BIG_COUNT = 400


def resident_bytes() -> int:
    """This process's resident set size now (not its peak)."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS in /proc/self/status")


async def byte_limit_scenario(front: Front) -> None:
    async with resources(front) as res:
        queue = res.queue("bytes")
        async with front.connect() as pub:
            pch = await within(pub.channel())
            await within(pch.queue_declare(queue))
            await within(publish_many(pch, queue, BIG_COUNT, bytes(MiB)), 60)
        async with front.connect() as conn:  # the default limits
            await wait_count(conn, queue, BIG_COUNT, timeout=30)
            ch = await within(conn.channel())
            before = resident_bytes()
            await within(ch.basic_consume(queue))
            await asyncio.sleep(3)  # the consumer reads nothing
            grown = resident_bytes() - before
            assert conn.is_open
            # 400 MiB pushed; the 64 MiB default pauses reading long before.
            assert grown < 200 * MiB, f"grew by {grown / MiB:.0f} MiB"
            await within(ch.queue_delete(queue), 30)


def test_read_pause_counts_bytes(front: Front) -> None:
    front.run(byte_limit_scenario, timeout=100)


# --- 4. asyncio: a timed-out wait for a confirmation does not cancel it --------------


async def confirmation_scenario(front: Front) -> None:
    async with resources(front) as res, front.connect() as conn:
        ch = await within(conn.channel())
        queue = res.queue("confirm")
        await within(ch.queue_declare(queue))
        await within(ch.confirm_select())

        async def outcome(confirmation: Any) -> None:
            try:
                await within(confirmation)
            except asyncio.CancelledError:
                raise AssertionError("an abandoned wait cancelled it") from None
            assert confirmation.done()

        # The timer fires before the publish is even written: the ack
        # cannot be in yet.
        confirmation = await ch.basic_publish(b"1", routing_key=queue)
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(confirmation, 1e-9)
        await outcome(confirmation)

        confirmation = await ch.basic_publish(b"2", routing_key=queue)
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0):
                await confirmation
        await outcome(confirmation)

        confirmation = await ch.basic_publish(b"3", routing_key=queue)

        async def wait() -> None:
            await confirmation

        task = asyncio.create_task(wait())
        await asyncio.sleep(0)  # the task now awaits the confirmation
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await outcome(confirmation)
        await wait_count(conn, queue, 3)


def test_abandoned_wait_does_not_cancel_confirmation() -> None:
    AioFront().run(confirmation_scenario)


# --- 5. an abandoned channel() leaves nothing open ------------------------------------

CHANNEL_MAX = 40
ABANDONED = 50


def broker_channels(connection_name: str) -> int | str:
    """The broker's count of channels on the connection named so
    (``rabbitmqctl list_connections``), or why it could not tell (the CLI
    may fail while the broker is busy)."""
    rabbitmqctl = shutil.which("rabbitmqctl")
    assert rabbitmqctl is not None, "rabbitmqctl is not installed"
    command = [rabbitmqctl, "-q", "list_connections", "client_properties"]
    command += ["channels", "--formatter", "json"]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=10)
        if done.returncode:
            return f"rabbitmqctl: exit {done.returncode}: {done.stderr.strip()}"
        rows = json.loads(done.stdout)
    except (subprocess.TimeoutExpired, ValueError) as exc:
        return f"rabbitmqctl: {exc!r}"
    for row in rows:
        for key, _, value in row["client_properties"]:
            if key == "connection_name" and value == connection_name:
                return int(row["channels"])
    return f"the broker lists no connection {connection_name!r}"


async def abandon_channel(front: Front, conn: Any, attempt: int) -> None:
    """Start a channel() and give up on it before its open-ok."""
    if front.name == "blocking":
        # The I/O thread may read the open-ok before the caller looks (the
        # machine is busy): then the call won the race, as below.
        try:
            won = await conn.channel(timeout=0)
        except TimeoutError:
            return
        assert won.is_open
        await within(won.close())
    elif attempt % 2:
        # The timer fires in the loop turn that sends channel.open. Now and
        # then the open-ok is read in that same turn and the call wins the
        # race: then it is an open channel like any other, closed here.
        try:
            won = await asyncio.wait_for(conn.channel(), 1e-9)
        except TimeoutError:
            return
        assert won.is_open
        await within(won.close())
    else:
        task = asyncio.create_task(conn.channel())
        await asyncio.sleep(0)  # channel.open is on its way
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


async def abandoned_channels_scenario(front: Front) -> None:
    name = unique("abandoned-channels")
    async with front.connect(channel_max=CHANNEL_MAX, connection_name=name) as conn:
        assert conn.channel_max == CHANNEL_MAX
        base = await within(conn.channel())
        for attempt in range(ABANDONED):
            await abandon_channel(front, conn, attempt)
            # A round trip: the abandoned channel's open-ok (and then its
            # close-ok) come meanwhile.
            await within(base.basic_qos(prefetch_count=0))
        channel = await within(conn.channel())
        assert channel.channel_id < 10
        await within(channel.queue_declare("", exclusive=True))
        # On the broker too: base and channel, nothing else.
        seen: int | str = "nothing yet"
        try:
            async with asyncio.timeout(30):
                while (seen := await asyncio.to_thread(broker_channels, name)) != 2:
                    await asyncio.sleep(0.2)
        except TimeoutError:
            raise AssertionError(f"broker-side channels: {seen!r}, not 2") from None


def test_abandoned_channel_open_leaves_nothing_open(front: Front) -> None:
    front.run(abandoned_channels_scenario)


# --- 6. a bad timeout= is refused before anything is sent -----------------------------

BAD_TIMEOUTS: list[Any] = [-1, float("nan"), float("inf"), "5", True]


def expected_error(timeout: Any) -> type[Exception]:
    return (
        ValueError
        if isinstance(timeout, float | int) and timeout is not True
        else TypeError
    )


async def refused(front: Front, awaitable: Any, timeout: Any) -> None:
    """``awaitable`` raises at once, for its bad ``timeout``."""
    if front.name == "aio":
        error = await raises_at_once(awaitable)
    else:
        with pytest.raises(Exception) as caught:
            await within(awaitable)
        error = caught.value
    assert isinstance(error, expected_error(timeout)), (timeout, error)


async def assert_no_queue(conn: Any, queue: str) -> None:
    probe = await within(conn.channel())
    with pytest.raises(NotFoundError):
        await within(probe.queue_declare(queue, passive=True))


async def bad_timeout_scenario(front: Front) -> None:
    async with resources(front) as res, front.connect() as conn:
        ch = await within(conn.channel())
        queue = res.queue("bad-timeout")
        await within(ch.queue_declare(queue))
        await within(ch.basic_publish(b"stays", routing_key=queue))
        await wait_count(conn, queue, 1)
        idle = res.queue("bad-timeout-idle")
        await within(ch.queue_declare(idle))
        consumer = await within(ch.basic_consume(idle))
        for timeout in BAD_TIMEOUTS:
            never = res.queue("never-declared")
            await refused(front, ch.queue_declare(never, timeout=timeout), timeout)
            await refused(front, ch.basic_get(queue, timeout=timeout), timeout)
            await refused(front, ch.basic_consume(queue, timeout=timeout), timeout)
            await refused(front, consumer.cancel(timeout=timeout), timeout)
            free = await within(conn.channel())
            lowest_free = free.channel_id
            await within(free.close())
            await refused(front, conn.channel(timeout=timeout), timeout)
            # Nothing took effect: no queue, no get, no consumer, no cancel,
            # no channel.
            await assert_no_queue(conn, never)
            assert ch.is_open
            ok = await within(ch.queue_declare(queue, passive=True))
            assert (ok.message_count, ok.consumer_count) == (1, 0), timeout
            ok = await within(ch.queue_declare(idle, passive=True))
            assert ok.consumer_count == 1, timeout
            free = await within(conn.channel())
            assert free.channel_id == lowest_free, timeout
            await within(free.close())
        await within(consumer.cancel())  # the refused ones did not end it
        ok = await within(ch.queue_declare(idle, passive=True))
        assert ok.consumer_count == 0


def test_bad_timeout_is_refused_before_sending(front: Front) -> None:
    front.run(bad_timeout_scenario)


def test_bad_timeout_on_confirmation_wait() -> None:
    """blocking ``Confirmation.wait(timeout=)`` checks its argument before
    waiting, pending or done, and the outcome stays."""
    with blocking.connect(amqp_url()) as conn:
        ch = conn.channel(timeout=10)
        queue = ch.queue_declare("", exclusive=True, timeout=10).queue
        ch.confirm_select(timeout=10)
        for timeout in BAD_TIMEOUTS:
            confirmation = ch.basic_publish(b"x", routing_key=queue)
            assert confirmation is not None
            with pytest.raises(expected_error(timeout)):
                confirmation.wait(timeout=timeout)  # most likely still pending
            confirmation.wait(timeout=10)
            with pytest.raises(expected_error(timeout)):
                confirmation.wait(timeout=timeout)  # done
            confirmation.wait(timeout=10)
            assert confirmation.done()
        assert ch.queue_declare(queue, passive=True, timeout=10).message_count == 5
