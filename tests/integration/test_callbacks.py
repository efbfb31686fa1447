"""Consumer callbacks, ``delivery.process()`` and graceful close, against
the real broker, in both fronts (issue 16, item 3).

A callback for the asyncio front is a coroutine function; for the blocking
front a plain function, which runs on the consumer's own threads (the
scenarios see the blocking objects through helpers.AsyncView, but its
callbacks get the blocking ``Delivery`` itself). :func:`callback_for`
writes one callback body for both.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import pytest

import amqp_client
from amqp_client import blocking
from tests.integration.helpers import (
    STEP,
    AsyncView,
    Front,
    raises_at_once,
    resources,
    wait_count,
    within,
)

pytestmark = pytest.mark.integration

#: What a callback body may ask for after its work: settle it itself.
Settle = Callable[[Any], None]


class Tally:
    """What the callbacks saw, from any thread."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.in_flight = 0
        self.most = 0
        self.bodies: list[bytes] = []
        self.started = threading.Event()
        self.finished: list[bytes] = []

    def enter(self, body: bytes) -> None:
        with self.lock:
            self.in_flight += 1
            self.most = max(self.most, self.in_flight)
            self.bodies.append(body)
        self.started.set()

    def leave(self, body: bytes) -> None:
        with self.lock:
            self.in_flight -= 1
            self.finished.append(body)


def callback_for(
    front: Front,
    tally: Tally,
    *,
    delay: float = 0.0,
    fail_on: bytes | None = None,
    settle: str = "",
) -> Callable[..., Any]:
    """A callback for ``front``: counts itself in flight, waits ``delay``
    seconds, raises on the body ``fail_on``, settles the delivery itself
    when ``settle`` names how ("ack" or "reject")."""
    if front.name == "aio":

        async def on_delivery(delivery: amqp_client.aio.Delivery) -> None:
            tally.enter(delivery.body)
            try:
                await asyncio.sleep(delay)
                if delivery.body == fail_on:
                    raise RuntimeError("refused")
                if settle == "ack":
                    await delivery.ack()
                elif settle == "reject":
                    await delivery.reject(requeue=False)
            finally:
                tally.leave(delivery.body)

        return on_delivery

    def on_blocking(delivery: blocking.Delivery) -> None:
        assert threading.current_thread().name.startswith("amqp-consumer")
        tally.enter(delivery.body)
        try:
            time.sleep(delay)
            if delivery.body == fail_on:
                raise RuntimeError("refused")
            if settle == "ack":
                delivery.ack()
            elif settle == "reject":
                delivery.reject(requeue=False)
        finally:
            tally.leave(delivery.body)

    return on_blocking


@asynccontextmanager
async def process(delivery: Any, requeue: bool = False) -> AsyncIterator[None]:
    """``delivery.process(requeue)`` in either front."""
    if isinstance(delivery, AsyncView):
        with delivery._target.process(requeue):
            yield
    else:
        async with delivery.process(requeue):
            yield


async def until(
    predicate: Callable[[], bool], what: str, timeout: float = STEP
) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout} s")
        await asyncio.sleep(0.01)


async def workers_left(before: set[threading.Thread]) -> list[str]:
    """The consumer worker threads started since ``before`` still alive
    after a bounded wait for them to end."""
    deadline = time.monotonic() + 5
    while True:
        names = [
            t.name
            for t in threading.enumerate()
            if t not in before and t.name.startswith("amqp-consumer")
        ]
        if not names or time.monotonic() > deadline:
            return names
        await asyncio.sleep(0.02)


async def dead_lettered_queue(ch: Any, res: Any) -> tuple[str, str]:
    """A queue whose rejected (requeue=False) messages go to a second one."""
    dead = res.queue("dead")
    await ch.queue_declare(dead)
    queue = res.queue("work")
    await ch.queue_declare(
        queue,
        arguments={
            "x-dead-letter-exchange": "",
            "x-dead-letter-routing-key": dead,
        },
    )
    return queue, dead


async def publish(ch: Any, queue: str, bodies: list[bytes]) -> None:
    for body in bodies:
        await ch.basic_publish(body, routing_key=queue)


# --- the callback and its concurrency --------------------------------------------------


def test_concurrency_bound_is_reached_and_never_passed(front: Front) -> None:
    async def scenario(front: Front) -> None:
        tally = Tally()
        async with resources(front) as res, front.connect() as conn:
            ch = await conn.channel()
            queue = res.queue()
            await ch.queue_declare(queue)
            bodies = [b"m%d" % i for i in range(30)]
            await publish(ch, queue, bodies)
            consumer = await ch.basic_consume(
                queue, callback=callback_for(front, tally, delay=0.05), concurrency=3
            )
            await until(lambda: len(tally.finished) == 30, "30 callbacks")
            assert tally.most == 3
            assert sorted(tally.bodies) == sorted(bodies)
            await within(consumer.cancel())
            await wait_count(conn, queue, 0)

    front.run(scenario)


def test_one_at_a_time_by_default(front: Front) -> None:
    async def scenario(front: Front) -> None:
        tally = Tally()
        async with resources(front) as res, front.connect() as conn:
            ch = await conn.channel()
            queue = res.queue()
            await ch.queue_declare(queue)
            await publish(ch, queue, [b"a", b"b", b"c", b"d"])
            async with await ch.basic_consume(
                queue, callback=callback_for(front, tally, delay=0.02)
            ):
                await until(lambda: len(tally.finished) == 4, "4 callbacks")
            assert tally.most == 1
            assert tally.bodies == [b"a", b"b", b"c", b"d"]  # in order
            await wait_count(conn, queue, 0)

    front.run(scenario)


def test_a_failing_callback_rejects_and_the_consumer_goes_on(
    front: Front, caplog: pytest.LogCaptureFixture
) -> None:
    async def scenario(front: Front) -> None:
        tally = Tally()
        async with resources(front) as res, front.connect() as conn:
            ch = await conn.channel()
            queue, dead = await dead_lettered_queue(ch, res)
            await publish(ch, queue, [b"ok1", b"bad", b"ok2"])
            consumer = await ch.basic_consume(
                queue, callback=callback_for(front, tally, fail_on=b"bad")
            )
            await until(lambda: len(tally.finished) == 3, "3 callbacks")
            await within(consumer.cancel())
            assert tally.bodies == [b"ok1", b"bad", b"ok2"]
            await wait_count(conn, queue, 0)
            await wait_count(conn, dead, 1)  # rejected with requeue=False
            assert ch.is_open

    with caplog.at_level(logging.ERROR, logger="amqp_client"):
        front.run(scenario)
    failed = [r for r in caplog.records if "callback failed" in r.getMessage()]
    assert len(failed) == 1
    assert "delivery 2" in failed[0].getMessage()
    assert failed[0].exc_info is not None


def test_a_callback_that_settles_itself_is_not_settled_again(front: Front) -> None:
    async def scenario(front: Front) -> None:
        tally = Tally()
        async with resources(front) as res, front.connect() as conn:
            ch = await conn.channel()
            queue, dead = await dead_lettered_queue(ch, res)
            await publish(ch, queue, [b"x", b"y"])
            async with await ch.basic_consume(
                queue, callback=callback_for(front, tally, settle="reject")
            ):
                await until(lambda: len(tally.finished) == 2, "2 callbacks")
            await wait_count(conn, dead, 2)
            # A second settle of the same tag would have closed the channel
            # (406 PRECONDITION_FAILED, unknown delivery tag).
            await ch.queue_declare(queue, passive=True)
            assert ch.is_open

    front.run(scenario)


def test_no_ack_callback_consumer_settles_nothing(front: Front) -> None:
    async def scenario(front: Front) -> None:
        tally = Tally()
        async with resources(front) as res, front.connect() as conn:
            ch = await conn.channel()
            queue = res.queue()
            await ch.queue_declare(queue)
            await publish(ch, queue, [b"ok", b"bad"])
            async with await ch.basic_consume(
                queue,
                no_ack=True,
                callback=callback_for(front, tally, fail_on=b"bad"),
            ):
                await until(lambda: len(tally.finished) == 2, "2 callbacks")
            await ch.queue_declare(queue, passive=True)
            assert ch.is_open
            await wait_count(conn, queue, 0)

    front.run(scenario)


def test_bad_callback_arguments_fail_before_anything_is_sent(front: Front) -> None:
    async def scenario(front: Front) -> None:
        async with resources(front) as res, front.connect() as conn:
            ch = await conn.channel()
            queue = res.queue()
            await ch.queue_declare(queue)
            good = callback_for(front, Tally())
            for concurrency, error in [
                (0, ValueError),
                (-1, ValueError),
                (True, TypeError),
                (1.5, TypeError),
                ("2", TypeError),
            ]:
                exc = await raises_at_once(
                    ch.basic_consume(queue, callback=good, concurrency=concurrency)
                )
                assert isinstance(exc, error), (concurrency, exc)
            exc = await raises_at_once(ch.basic_consume(queue, callback=42))
            assert isinstance(exc, TypeError)
            exc = await raises_at_once(ch.basic_consume(queue, concurrency=2))
            assert isinstance(exc, ValueError)  # concurrency without a callback
            if front.name == "aio":

                def plain(delivery: Any) -> None:
                    pass

                exc = await raises_at_once(ch.basic_consume(queue, callback=plain))
            else:

                async def coroutine(delivery: Any) -> None:
                    pass

                exc = await raises_at_once(ch.basic_consume(queue, callback=coroutine))
            assert isinstance(exc, TypeError)
            # Nothing was started: the queue has no consumer.
            ok = await ch.queue_declare(queue, passive=True)
            assert ok.consumer_count == 0

    front.run(scenario)


def test_a_callback_consumer_is_not_iterated(front: Front) -> None:
    async def scenario(front: Front) -> None:
        async with resources(front) as res, front.connect() as conn:
            ch = await conn.channel()
            queue = res.queue()
            await ch.queue_declare(queue)
            async with await ch.basic_consume(
                queue, callback=callback_for(front, Tally())
            ) as consumer:
                with pytest.raises(amqp_client.UsageError):
                    await within(anext(consumer))

    front.run(scenario)


def test_volumes_past_the_delivery_budget(front: Front) -> None:
    # 600 messages through a budget of 16 messages / 4 KiB: reading pauses
    # and resumes many times while the callbacks take them.
    async def scenario(front: Front) -> None:
        tally = Tally()
        async with (
            resources(front) as res,
            front.connect(max_buffered_messages=16, max_buffered_bytes=4096) as conn,
        ):
            ch = await conn.channel()
            queue = res.queue()
            await ch.queue_declare(queue)
            bodies = [b"%04d" % i + b"." * 200 for i in range(600)]
            await publish(ch, queue, bodies)
            async with await ch.basic_consume(
                queue, callback=callback_for(front, tally), concurrency=4
            ):
                await until(lambda: len(tally.finished) == 600, "600 callbacks", 30)
            assert sorted(tally.bodies) == sorted(bodies)
            assert tally.most <= 4
            await wait_count(conn, queue, 0)

    front.run(scenario)


# --- process() ---------------------------------------------------------------------------


def test_process_acks_on_success_and_rejects_on_an_exception(front: Front) -> None:
    async def scenario(front: Front) -> None:
        async with resources(front) as res, front.connect() as conn:
            ch = await conn.channel()
            queue, dead = await dead_lettered_queue(ch, res)
            await publish(ch, queue, [b"ok", b"fails", b"again", b"mine"])

            delivery = await ch.basic_get(queue)
            async with process(delivery):
                assert not delivery.settled
            assert delivery.settled

            delivery = await ch.basic_get(queue)
            with pytest.raises(RuntimeError):
                async with process(delivery):
                    raise RuntimeError("refused")
            assert delivery.settled

            delivery = await ch.basic_get(queue)
            with pytest.raises(KeyError):
                async with process(delivery, requeue=True):
                    raise KeyError("later")

            delivery = await ch.basic_get(queue)
            assert delivery.body == b"again"  # requeued, at the head
            assert delivery.redelivered
            async with process(delivery):
                await delivery.nack(requeue=True)  # settled inside: nothing more
            assert delivery.settled

            await wait_count(conn, dead, 1)  # "fails"
            await wait_count(conn, queue, 2)  # "again" and "mine", requeued
            assert ch.is_open

            delivery = await ch.basic_get(queue, no_ack=True)
            assert delivery.settled  # the broker settled it as it sent it
            async with process(delivery):
                pass
            await ch.queue_declare(queue, passive=True)
            assert ch.is_open
            with pytest.raises(TypeError):
                delivery.process(requeue="yes")

    front.run(scenario)


# --- graceful close ----------------------------------------------------------------------


def test_close_waits_for_a_callback_in_flight(front: Front) -> None:
    async def scenario(front: Front) -> None:
        tally = Tally()
        async with resources(front) as res:
            conn = await front.connect()
            ch = await conn.channel()
            queue = res.queue()
            await ch.queue_declare(queue)
            await publish(ch, queue, [b"slow", b"next"])
            await ch.basic_qos(prefetch_count=2)
            await ch.basic_consume(
                queue, callback=callback_for(front, tally, delay=0.7)
            )
            await until(tally.started.is_set, "the callback")
            start = time.monotonic()
            await within(conn.close(timeout=5))
            assert time.monotonic() - start >= 0.4
            assert tally.finished == [b"slow"]  # done, and nothing after it
            async with front.connect() as other:
                await wait_count(other, queue, 1)  # "slow" acked, "next" back

    front.run(scenario)


def test_channel_close_waits_for_a_callback_in_flight(front: Front) -> None:
    async def scenario(front: Front) -> None:
        tally = Tally()
        async with resources(front) as res, front.connect() as conn:
            ch = await conn.channel()
            queue = res.queue()
            await ch.queue_declare(queue)
            await publish(ch, queue, [b"slow"])
            await ch.basic_consume(
                queue, callback=callback_for(front, tally, delay=0.5)
            )
            await until(tally.started.is_set, "the callback")
            await within(ch.close(timeout=5))
            assert tally.finished == [b"slow"]
            await wait_count(conn, queue, 0)  # acked before the close

    front.run(scenario)


def test_close_past_its_timeout_returns_the_message(front: Front) -> None:
    async def scenario(front: Front) -> None:
        tally = Tally()
        before = set(threading.enumerate())
        async with resources(front) as res:
            conn = await front.connect()
            ch = await conn.channel()
            queue = res.queue()
            await ch.queue_declare(queue)
            await publish(ch, queue, [b"stuck"])
            await ch.basic_consume(queue, callback=callback_for(front, tally, delay=2))
            await until(tally.started.is_set, "the callback")
            start = time.monotonic()
            await within(conn.close(timeout=0.3))
            assert time.monotonic() - start < 1.8
            async with front.connect() as other:
                await wait_count(other, queue, 1)  # never acked: redelivered
            # The callback's worker ends too (asyncio cancels it; a blocking
            # worker ends once its callback returns and its ack fails).
            await until(lambda: len(tally.finished) == 1, "the callback's end")
        assert await workers_left(before) == []

    front.run(scenario)


def test_close_waits_for_outstanding_confirms(front: Front) -> None:
    async def scenario(front: Front) -> None:
        async with resources(front) as res:
            conn = await front.connect()
            ch = await conn.channel()
            queue = res.queue()
            await ch.queue_declare(queue)
            await ch.confirm_select()
            confirmations = [
                await ch.basic_publish(b"c%d" % i, routing_key=queue)
                for i in range(200)
            ]
            await within(conn.close())
            assert all(c.done() for c in confirmations)
            for confirmation in confirmations:
                await within(confirmation)  # acked, none failed by the close

    front.run(scenario)


def test_close_with_timeout_zero_closes_at_once(front: Front) -> None:
    async def scenario(front: Front) -> None:
        tally = Tally()
        async with resources(front) as res:
            conn = await front.connect()
            ch = await conn.channel()
            queue = res.queue()
            await ch.queue_declare(queue)
            await publish(ch, queue, [b"stuck"])
            await ch.basic_consume(queue, callback=callback_for(front, tally, delay=1))
            await until(tally.started.is_set, "the callback")
            await within(conn.close(timeout=0))
            assert tally.finished == []
            await until(lambda: len(tally.finished) == 1, "the callback's end")
            async with front.connect() as other:
                await wait_count(other, queue, 1)

    front.run(scenario)


# --- every way out releases what it holds ---------------------------------------------


def test_cancel_returns_buffered_deliveries_and_waits_for_the_callback(
    front: Front,
) -> None:
    async def scenario(front: Front) -> None:
        tally = Tally()
        before = set(threading.enumerate())
        async with resources(front) as res, front.connect() as conn:
            ch = await conn.channel()
            queue = res.queue()
            await ch.queue_declare(queue)
            await publish(ch, queue, [b"%d" % i for i in range(20)])
            consumer = await ch.basic_consume(
                queue, callback=callback_for(front, tally, delay=0.3), concurrency=2
            )
            await until(lambda: tally.in_flight == 2, "2 callbacks")
            await within(consumer.cancel())
            assert tally.in_flight == 0  # cancel waited for both
            done = len(tally.finished)
            assert 2 <= done < 20
            await wait_count(conn, queue, 20 - done)
            assert not consumer.is_active
        assert await workers_left(before) == []

    front.run(scenario)


def test_a_channel_closed_under_a_callback_consumer(front: Front) -> None:
    async def scenario(front: Front) -> None:
        tally = Tally()
        before = set(threading.enumerate())
        async with resources(front) as res, front.connect() as conn:
            ch = await conn.channel()
            queue = res.queue()
            await ch.queue_declare(queue)
            await publish(ch, queue, [b"a", b"b", b"c"])
            await ch.basic_consume(
                queue, callback=callback_for(front, tally, delay=0.5)
            )
            await until(tally.started.is_set, "the callback")
            # A soft error closes the channel under the consumer.
            with pytest.raises(amqp_client.NotFoundError):
                await ch.queue_declare(res.queue("missing"), passive=True)
            await until(lambda: len(tally.finished) == 1, "the callback's end")
            await wait_count(conn, queue, 3)  # nothing acked: all back
            assert tally.bodies == [b"a"]  # no callback after the close
        assert await workers_left(before) == []

    front.run(scenario)


def test_a_callback_may_close_its_own_connection(front: Front) -> None:
    async def scenario(front: Front) -> None:
        closed = threading.Event()
        async with resources(front) as res:
            conn = await front.connect()
            ch = await conn.channel()
            queue = res.queue()
            await ch.queue_declare(queue)
            await publish(ch, queue, [b"stop"])
            if front.name == "aio":

                async def stop(delivery: Any) -> None:
                    await delivery.ack()
                    await conn.close(timeout=5)
                    closed.set()

                callback: Any = stop
            else:
                target = conn._target

                def stop_blocking(delivery: Any) -> None:
                    delivery.ack()
                    target.close(timeout=5)
                    closed.set()

                callback = stop_blocking
            start = time.monotonic()
            await ch.basic_consume(queue, callback=callback)
            await until(closed.is_set, "the close from the callback")
            assert time.monotonic() - start < 3  # did not wait for itself
            assert conn.is_closed
            async with front.connect() as other:
                await wait_count(other, queue, 0)

    front.run(scenario)


def test_a_consume_that_times_out_leaves_no_consumer(front: Front) -> None:
    # Its consume-ok comes after basic_consume() gave up: nobody holds that
    # consumer, so it is cancelled and its deliveries go back to the queue.
    async def scenario(front: Front) -> None:
        tally = Tally()
        async with resources(front) as res, front.connect() as conn:
            ch = await conn.channel()
            queue = res.queue()
            await ch.queue_declare(queue)
            await publish(ch, queue, [b"a", b"b"])
            for callback in (None, callback_for(front, tally)):
                with pytest.raises(TimeoutError):
                    await ch.basic_consume(queue, callback=callback, timeout=0)

            async def no_consumer() -> bool:
                ok = await ch.queue_declare(queue, passive=True)
                return bool(ok.consumer_count == 0 and ok.message_count == 2)

            deadline = time.monotonic() + STEP
            while not await no_consumer():
                assert time.monotonic() < deadline, "a consumer was left behind"
                await asyncio.sleep(0.02)
            assert tally.bodies == []
            assert ch.is_open

    front.run(scenario)
